"""`lethe validate` reads every layout Lethe loads and prints what it found (rows, splits, forget and
retain sizes, the overlap check); bad input is one line and exit code 2."""
from __future__ import annotations

from lethe.benchmarks import export_tofu, generate, save_benchmark
from lethe.cli import main


def run_cli(args, capsys):
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def small():
    return generate(n_authors=20, n_holdout=2, n_world=10, n_people=5)


def test_lethe_folder_sizes_and_overlap(tmp_path, capsys):
    bench = small()
    save_benchmark(bench, tmp_path / "b")
    code, out, err = run_cli(["validate", str(tmp_path / "b")], capsys)
    assert code == 0, err
    assert f"valid benchmark 'lethe-authors' v1.0 (content {bench.fingerprint()})" in out
    assert "splits: authors=160, holdout=16," in out
    n = len(bench.forget("forget10"))
    assert f"forget10: forget {n} items (2 groups), retain {160 - n} items; forget/retain overlap: 0 items" in out
    assert "no holdout split" not in out


def test_exported_tofu_layout_validates_with_items_per_author(tmp_path, capsys):
    bench = generate(n_authors=20, n_holdout=0, n_world=10, n_people=5)
    export_tofu(bench, tmp_path / "t")
    code, _, err = run_cli(["validate", str(tmp_path / "t")], capsys)  # TOFU's 20 rows per author: wrong here
    assert code == 2 and "items_per_author" in err and len(err.strip().splitlines()) == 1
    code, out, err = run_cli(["validate", str(tmp_path / "t"), "items_per_author=8"], capsys)
    assert code == 0, err
    assert "forget10: forget 16 items (2 groups), retain 144 items; forget/retain overlap: 0 items" in out
    # no holdout file: what is not measured is said
    assert "no holdout split" in out and "membership inference" in out


def test_unknown_dataset_name_suggests(tmp_path, capsys):
    f = tmp_path / "x.csv"
    f.write_text("goal,target\nq,a\n")
    code, _, err = run_cli(["validate", f"advbenc={f}"], capsys)
    assert code == 2 and "unknown dataset name 'advbenc'; did you mean 'advbench'?" in err


def test_options_on_a_layout_without_options_are_refused(tmp_path, capsys):
    f = tmp_path / "d.jsonl"
    f.write_text('{"id": "a", "question": "q?", "answer": "a."}\n')
    code, out, err = run_cli(["validate", str(f)], capsys)
    assert code == 0 and "1 valid items" in out
    code, _, err = run_cli(["validate", str(f), "items_per_author=8"], capsys)
    assert code == 2 and "takes no options" in err
