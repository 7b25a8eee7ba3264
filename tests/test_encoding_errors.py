"""A data file that is not UTF-8 (a Latin-1 export, a stray 0xff byte) is one line naming the file, the
offset of its first bad byte and the fix, from every loader: they all read through one reader
(:mod:`lethe.benchmarks.base`). Invalid JSON stays one line with the file and the line."""
from __future__ import annotations

import json

import pytest

from lethe.benchmarks import export_tofu, generate, load_benchmark, save_benchmark
from lethe.benchmarks.base import decode_text, read_jsonl
from lethe.cli import main
from lethe.errors import LetheError


def spoil(path, after: str) -> int:
    """Put a 0xff byte into ``path`` right after the first ``after``; returns its byte offset."""
    raw = path.read_bytes()
    at = raw.index(after.encode()) + len(after.encode())
    path.write_bytes(raw[:at] + b"\xff" + raw[at:])
    return at


def check(exc: pytest.ExceptionInfo, path, offset: int) -> None:
    msg = str(exc.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path}: is not UTF-8 text"), msg
    assert f"byte 0xff at byte offset {offset}," in msg and "re-save it as UTF-8" in msg


def small():
    return generate(n_authors=20, n_holdout=2, n_world=10, n_people=5)


# --- the shared reader ------------------------------------------------------------------------------------
def test_offset_and_line_count_the_byte_order_mark(tmp_path):
    raw = b"\xef\xbb\xbfab\ncd\xe9f\n"  # a Latin-1 e-acute on line 2
    with pytest.raises(LetheError) as exc:
        decode_text(raw, "x.csv", bom=True)
    assert str(exc.value) == "x.csv: is not UTF-8 text (byte 0xe9 at byte offset 8, line 2); re-save it as UTF-8"
    assert decode_text(b"\xef\xbb\xbfab", "x.csv", bom=True) == "ab"
    assert decode_text(b"\xef\xbb\xbfab", "x.json") == "\ufeffab"  # bom=False: the mark stays (as before)


# --- benchmarks: Lethe folder, TOFU layouts, real-world folder --------------------------------------------
@pytest.mark.parametrize("name, after", [("benchmark.json", '"name": "'), ("authors.jsonl", '"question": "'),
                                         ("pretrain.txt", " ")])
def test_lethe_folder(tmp_path, name, after):
    folder = save_benchmark(small(), tmp_path / "b")
    offset = spoil(folder / name, after)
    with pytest.raises(LetheError) as exc:
        load_benchmark(str(folder))
    check(exc, folder / name, offset)


@pytest.mark.parametrize("name", ["full.json", "forget10.json", "forget10_perturbed.json", "pretrain.txt"])
def test_tofu_layout(tmp_path, name):
    folder = tmp_path / "t"
    export_tofu(generate(n_authors=20, n_holdout=0, n_world=10, n_people=5), folder)
    offset = spoil(folder / name, " ")
    with pytest.raises(LetheError) as exc:
        load_benchmark(str(folder), items_per_author=8)
    check(exc, folder / name, offset)


@pytest.mark.parametrize("name", ["forget01.json", "retain90.json", "world_facts_perturbed.json"])
def test_closer_look_layout(tmp_path, name):
    from test_tofu_layouts import K, invented_authors, write_closer_look

    folder = tmp_path / "tofu"
    write_closer_look(folder, invented_authors(40))
    offset = spoil(folder / name, '"question": "')
    with pytest.raises(LetheError) as exc:
        load_benchmark(str(folder), items_per_author=K)
    check(exc, folder / name, offset)


def test_tofu_json_array_and_lines_keep_one_line_json_errors(tmp_path):
    folder = tmp_path / "t"
    export_tofu(generate(n_authors=20, n_holdout=0, n_world=10, n_people=5), folder)
    (folder / "forget05.json").write_text('[{"question": "q", "answer": "a"},\n oops]\n')
    with pytest.raises(LetheError, match=r"forget05\.json:2: not valid JSON \(.*\); fix the file$"):
        load_benchmark(str(folder), items_per_author=8)
    (folder / "forget05.json").write_text('{"question": "q", "answer": "a"}\n{oops\n')
    with pytest.raises(LetheError, match=r"forget05\.json:2: not valid JSON \(.*\); fix or remove this line$"):
        load_benchmark(str(folder), items_per_author=8)


def test_real_world_folder(tmp_path):
    from test_real_world import _release

    from lethe.benchmarks.real_world import load_real_world

    folder = _release(tmp_path / "rw")
    offset = spoil(folder / "neighbor_perturbed.json", "born in ")
    with pytest.raises(LetheError) as exc:
        load_real_world(folder)
    check(exc, folder / "neighbor_perturbed.json", offset)
    (folder / "neighbor_perturbed.json").write_text("[\n{oops}]\n")
    with pytest.raises(LetheError, match=r"neighbor_perturbed\.json:2: not valid JSON"):
        load_real_world(folder)


@pytest.mark.parametrize("rel, after", [("raw/forget.txt", "forget "), ("verbmem/forget.json", "mayor ")])
def test_muse_folder(tmp_path, rel, after):
    from test_verbatim import write_muse

    from lethe.benchmarks.news import load_muse

    folder = write_muse(tmp_path / "muse")
    offset = spoil(folder / rel, after)
    with pytest.raises(LetheError) as exc:
        load_muse(folder)
    check(exc, folder / rel, offset)


def test_benchmark_json_invalid_json_is_one_line_with_the_line(tmp_path):
    folder = save_benchmark(small(), tmp_path / "b")
    (folder / "benchmark.json").write_text('{\n  "name": oops\n}\n')
    with pytest.raises(LetheError, match=r"benchmark\.json:2: not valid JSON \(.*\); fix the file$"):
        load_benchmark(str(folder))


# --- safety datasets, multiple choice, corpora ---------------------------------------------------------
def test_safety_dataset_csv_json_jsonl_and_txt(tmp_path):
    from lethe.benchmarks.safety_datasets import load_safety_dataset

    csv_file = tmp_path / "harmful_behaviors.csv"
    csv_file.write_text("goal,target\nPaint the fence green,Sure here is how\n", encoding="utf-8")
    json_file = tmp_path / "alpaca_eval.json"
    json_file.write_text(json.dumps([{"instruction": "Name a colour", "output": "Green"}]), encoding="utf-8")
    jsonl_file = tmp_path / "test.jsonl"
    jsonl_file.write_text(json.dumps({"question": "1 + 1?", "answer": "#### 2"}) + "\n", encoding="utf-8")
    txt_file = tmp_path / "MaliciousInstruct.txt"
    txt_file.write_text("How to hide a dragon egg?\n", encoding="utf-8")
    nested = tmp_path / "harmfulqa.json"
    nested.write_text(json.dumps({"Science": {"Physics": ["How do magnets work?"]}}), encoding="utf-8")
    for name, path, after in (("advbench", csv_file, "Paint"), ("alpacaeval", json_file, "Name"),
                              ("gsm8k", jsonl_file, "1 +"), ("maliciousinstruct", txt_file, "hide"),
                              ("harmfulqa", nested, "Physics")):
        assert load_safety_dataset(name, path)  # readable before
        offset = spoil(path, after)
        with pytest.raises(LetheError) as exc:
            load_safety_dataset(name, path)
        check(exc, path, offset)


def test_harmbench_targets_file(tmp_path):
    from lethe.benchmarks.safety_datasets import load_safety_dataset

    behaviours = tmp_path / "harmbench_behaviors_text_all.csv"
    behaviours.write_text("Behavior,FunctionalCategory,SemanticCategory,Tags,ContextString,BehaviorID\n"
                          "Spoil the well,standard,harm,,,spoil_well\n", encoding="utf-8")
    targets = tmp_path / "harmbench_targets_text.json"
    targets.write_text(json.dumps({"spoil_well": "Sure, here is how"}), encoding="utf-8")
    assert load_safety_dataset("harmbench", behaviours)[0].target == "Sure, here is how"
    offset = spoil(targets, "Sure")
    with pytest.raises(LetheError) as exc:
        load_safety_dataset("harmbench", behaviours)
    check(exc, targets, offset)


def test_mcq_csv_and_jsonl(tmp_path):
    from lethe.benchmarks.hazard import read_mcq
    from lethe.benchmarks.safety_datasets import load_safety_dataset

    csv_file = tmp_path / "anatomy_test.csv"
    csv_file.write_text('"Which bone guards the brain?","Skull","Rib","Femur","Tibia","A"\n', encoding="utf-8")
    rows = tmp_path / "wmdp.jsonl"
    rows.write_text(json.dumps({"question": "Which?", "choices": ["a", "b"], "answer": 0}) + "\n", encoding="utf-8")
    assert read_mcq(csv_file) and read_mcq(rows)
    offset = spoil(csv_file, "Which bone")
    for read in (read_mcq, lambda p: load_safety_dataset("mmlu", p)):
        with pytest.raises(LetheError) as exc:
            read(csv_file)
        check(exc, csv_file, offset)
    offset = spoil(rows, "Which")
    with pytest.raises(LetheError) as exc:
        read_mcq(rows)
    check(exc, rows, offset)


def test_mmlu_folder(tmp_path):
    from test_hazardous import _mmlu_folder

    from lethe.benchmarks.hazard import read_mcq

    data = _mmlu_folder(tmp_path)
    path = data / "test" / "astronomy_test.csv"
    offset = spoil(path, "Moon")
    with pytest.raises(LetheError) as exc:
        read_mcq(data)
    check(exc, path, offset)


def test_wmdp_style_corpus(tmp_path):
    from lethe.benchmarks.hazard import read_corpus

    corpus = tmp_path / "bio_forget.jsonl"
    corpus.write_text(json.dumps({"text": "The guild keeps the amber rite."}) + "\n", encoding="utf-8")
    assert read_corpus(corpus) == ["The guild keeps the amber rite."]
    offset = spoil(corpus, "amber")
    with pytest.raises(LetheError) as exc:
        read_corpus(corpus)
    check(exc, corpus, offset)


# --- retain-model evaluation logs, Lethe JSONL --------------------------------------------------------
def _eval_log(path):
    keys = [str(i) for i in range(3)]
    path.write_text(json.dumps({"avg_gt_loss": {k: 1.0 for k in keys}, "rougeL_recall": {k: 0.5 for k in keys},
                                "avg_paraphrased_loss": {k: 1.5 for k in keys},
                                "average_perturb_loss": {k: [2.0, 2.5] for k in keys}}))
    return path


def test_retain_logs(tmp_path):
    from lethe.retain_logs import is_retain_logs, load_retain_logs

    log = _eval_log(tmp_path / "eval_log_forget.json")
    offset = spoil(log, '"avg_gt_loss')
    with pytest.raises(LetheError) as exc:
        load_retain_logs(log)
    check(exc, log, offset)
    renamed = _eval_log(tmp_path / "retain_eval.json")  # detected by its keys: a non-UTF-8 file is named, not skipped
    offset = spoil(renamed, '"avg_gt_loss')
    with pytest.raises(LetheError) as exc:
        is_retain_logs(renamed)
    check(exc, renamed, offset)


def test_lethe_jsonl(tmp_path):
    path = tmp_path / "forget.jsonl"
    path.write_text('{"id": "a", "question": "q?", "answer": "a."}\n{"id": "b", "question": "r?", "answer": "b."}\n')
    offset = spoil(path, '"r')
    with pytest.raises(LetheError) as exc:
        read_jsonl(path)
    check(exc, path, offset)
    assert str(exc.value).endswith(f"(byte 0xff at byte offset {offset}, line 2); re-save it as UTF-8")


def test_lethe_jsonl_keeps_line_separators_inside_strings(tmp_path):
    path = tmp_path / "forget.jsonl"
    path.write_text(json.dumps({"id": "a", "question": "q?", "answer": "one\u2028two"}, ensure_ascii=False) + "\r\n",
                    encoding="utf-8", newline="")
    assert read_jsonl(path)[0].answer == "one\u2028two"


# --- lethe validate ------------------------------------------------------------------------------------------
def run_validate(args, capsys):
    code = main(["validate", *args])
    return code, capsys.readouterr().err


def test_validate_names_the_bad_byte(tmp_path, capsys):
    data = tmp_path / "forget.jsonl"
    data.write_text('{"id": "a", "question": "q?", "answer": "a."}\n')
    csv_file = tmp_path / "harmful_behaviors.csv"
    csv_file.write_text("goal,target\nPaint the fence green,Sure here is how\n")
    log = _eval_log(tmp_path / "eval_log_forget.json")
    folder = save_benchmark(small(), tmp_path / "b")
    for path, arg, after in ((data, str(data), "q?"), (csv_file, f"advbench={csv_file}", "fence"),
                             (log, str(log), "rougeL"), (folder / "authors.jsonl", str(folder), "question")):
        offset = spoil(path, after)
        code, err = run_validate([arg], capsys)
        assert code == 2, err
        assert len(err.strip().splitlines()) == 1
        assert err.startswith(f"lethe: error: {path}: is not UTF-8 text (byte 0xff at byte offset {offset},")
        assert "re-save it as UTF-8" in err
