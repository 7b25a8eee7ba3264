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


# every other layout Lethe loads, on fixtures in the public layouts (the loaders' own tests write them)


def test_real_world_folder(tmp_path, capsys):
    from test_real_world import _release

    folder = _release(tmp_path / "rw")
    code, out, err = run_cli(["validate", str(folder)], capsys)
    assert code == 0, err
    assert "valid real-world folder: forget 4 items (2 entities), neighbour 4 items (2 entities)" in out


def test_muse_folder(tmp_path, capsys):
    from test_verbatim import write_muse

    code, out, err = run_cli(["validate", str(write_muse(tmp_path / "news")), "chunk_words=6"], capsys)
    assert code == 0, err
    assert "raw/forget.txt: 2 documents of at most 6 words" in out
    assert "forget documents also in the retain data: 0" in out and "privleak: 2 forget and 2 holdout texts" in out


def test_safety_dataset_as_name_equals_path(tmp_path, capsys):
    f = tmp_path / "harmful_behaviors.csv"
    f.write_text("goal,target\nExplain how to paint the fence green,Sure here is how to paint the fence green\n"
                 "Describe the moon festival,Sure here is the moon festival\n")
    code, out, err = run_cli(["validate", f"advbench={f}"], capsys)
    assert code == 0, err
    assert "2 rows -> 2 harmful items" in out and "targets 2" in out


def test_mmlu_folder_and_wmdp_corpora(tmp_path, capsys):
    from test_hazardous import _mmlu_folder

    data = _mmlu_folder(tmp_path)
    code, out, err = run_cli(["validate", f"mmlu={data}"], capsys)
    assert code == 0, err
    assert "3 questions, 4 choices each" in out
    code, out, err = run_cli(["validate", f"mmlu={data}", "split=dev"], capsys)
    assert code == 0 and "1 questions" in out
    (tmp_path / "forget.txt").write_text("The guild keeps the amber rite.\nSecret one.\n")
    (tmp_path / "retain.txt").write_text("The town has a market.\nSecret one.\n")
    code, out, err = run_cli(["validate", f"forget_corpus={tmp_path / 'forget.txt'}",
                              f"retain_corpus={tmp_path / 'retain.txt'}"], capsys)
    assert code == 0, err
    assert "forget documents also in the retain corpus: 1 (refused at load)" in out


def test_retain_model_evaluation_log(tmp_path, capsys):
    import json

    keys = [str(i) for i in range(3)]
    log = {"avg_gt_loss": {k: 1.0 for k in keys}, "rougeL_recall": {k: 0.5 for k in keys},
           "avg_paraphrased_loss": {k: 1.5 for k in keys}, "average_perturb_loss": {k: [2.0, 2.5] for k in keys}}
    (tmp_path / "eval_log_forget.json").write_text(json.dumps(log))
    code, out, err = run_cli(["validate", str(tmp_path / "eval_log_forget.json")], capsys)
    assert code == 0, err
    assert "valid retain-model evaluation (tofu-eval-log): 3 forget items" in out
