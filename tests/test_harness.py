"""lethe.harness: lm-evaluation-harness on a tiny Llama, cross-checked against log-probs computed here.

The model is built offline (conftest's tokenizer + random-init tiny Llama), saved with save_pretrained
and loaded back, as a user's model folder would be. The MCQ task reads a JSONL in tmp_path.
"""
from __future__ import annotations

import json
import socket
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("lm_eval")

from lethe.errors import LetheError
from lethe.harness import (
    HarnessResult,
    flat_summary,
    harness_main,
    run_harness,
    write_mcq_task,
)

QUESTIONS = [
    ("Where was Alice Moon born?", ["Paris", "Lima", "Oslo", "Rome"]),
    ("What does Alice Moon write?", ["poems about the sea", "novels about trains", "plays"]),
    ("Where was Bruno Vale born?", ["Lima", "Paris", "Rome"]),
    ("What does Bruno Vale write?", ["novels", "songs about rivers", "poems", "letters"]),
    ("Where was Clara Reed born?", ["Oslo", "Lima"]),
    ("What does Clara Reed write?", ["plays about cats", "songs", "novels about the sea"]),
    ("Where is the station?", ["near the park", "by the river", "in Rome"]),
    ("What does the cat eat?", ["fish", "the mat", "poems"]),
]
N_RIGHT = 5  # rows 0-4 get the model's own pick as the answer, rows 5-7 another choice: acc = 5/8


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tokenizer, make_tiny):
    from lethe.models import save_model

    return save_model(make_tiny(tokenizer, seed=3), tokenizer, tmp_path_factory.mktemp("harness") / "model")


@pytest.fixture(scope="module")
def loaded(model_dir):
    from lethe.models import load_model

    return load_model(model_dir)


def prompt(question: str) -> str:
    return f"Question: {question}\nAnswer:"  # the template's doc_to_text; target_delimiter " "


def choice_logprobs(model, tok, question: str, choices: list[str]) -> np.ndarray:
    """sum_t log p(continuation token t | prompt, earlier tokens) per choice, straight from the model."""
    ctx = tok(prompt(question))["input_ids"]
    out = []
    with torch.no_grad():
        for c in choices:
            cont = tok(" " + c, add_special_tokens=False)["input_ids"]
            ids = torch.tensor([ctx + cont])
            logp = torch.log_softmax(model(ids).logits[0].double(), dim=-1)  # (T, V)
            pos = torch.arange(len(ctx) - 1, len(ctx) + len(cont) - 1)  # positions predicting the choice
            out.append(float(logp[pos, torch.tensor(cont)].sum()))
    return np.array(out)


@pytest.fixture(scope="module")
def task(loaded, tmp_path_factory):
    """The MCQ task, its independent log-probs, and the expected per-row acc / acc_norm."""
    model, tok = loaded
    lps = [choice_logprobs(model, tok, q, ch) for q, ch in QUESTIONS]
    rows, right, right_norm = [], [], []
    for i, ((q, ch), lp) in enumerate(zip(QUESTIONS, lps)):
        top = np.sort(lp)[::-1]
        assert top[0] - top[1] > 1e-3, "near tie: the exact cross-check would hinge on rounding"
        pick = int(np.argmax(lp))
        answer = pick if i < N_RIGHT else (pick + 1) % len(ch)
        rows.append({"question": q, "choices": ch, "answer": answer})
        right.append(float(pick == answer))
        right_norm.append(float(int(np.argmax(lp / np.array([len(c) for c in ch]))) == answer))
    folder = tmp_path_factory.mktemp("tasks")
    write_mcq_task(folder, "lethe_toy_mcq", rows)
    return {"folder": str(folder), "rows": rows, "lps": lps, "right": right, "right_norm": right_norm}


@pytest.fixture(scope="module")
def result(loaded, task):
    model, tok = loaded
    return run_harness(model, tok, ["lethe_toy_mcq"], include_path=task["folder"], batch_size=4)


def test_accuracy_matches_direct_log_probs(result, task):
    m = result.metrics["lethe_toy_mcq"]
    assert m["acc"] == sum(task["right"]) / len(task["right"]) == N_RIGHT / len(QUESTIONS)
    assert m["acc_norm"] == sum(task["right_norm"]) / len(task["right_norm"])
    assert m["acc_stderr"] == pytest.approx(np.std(task["right"], ddof=1) / np.sqrt(len(QUESTIONS)))
    assert result.n_samples == {"lethe_toy_mcq": len(QUESTIONS)}
    samples = result.samples["lethe_toy_mcq"]
    json.dumps(samples, allow_nan=False)  # JSON-ready
    for s in sorted(samples, key=lambda s: s["doc_id"]):
        i, (q, ch) = s["doc_id"], QUESTIONS[s["doc_id"]]
        assert s["arguments"] == [[prompt(q), " " + c] for c in ch]  # the strings scored above
        lls = [r[0][0] for r in s["resps"]]
        np.testing.assert_allclose(lls, task["lps"][i], atol=1e-4)
        assert s["acc"] == task["right"][i]


def test_run_leaves_model_and_global_state_alone(loaded, task):
    model, tok = loaded
    model.train()
    model.model.layers[0].eval()  # a mixed state must come back exactly, not as all-train
    threads, rng, dtype = torch.get_num_threads(), torch.get_rng_state(), model.dtype
    try:
        run_harness(model, tok, ["lethe_toy_mcq"], include_path=task["folder"], limit=1, log_samples=False)
        assert model.training and not model.model.layers[0].training and model.lm_head.training
        assert torch.get_num_threads() == threads and model.dtype == dtype
        assert torch.equal(torch.get_rng_state(), rng)  # lm-eval seeds torch; the caller's stream continues
    finally:
        model.eval()


def test_no_chat_template_and_pad_equal_to_eos(loaded, task):
    import copy

    model, tok = loaded
    plain = copy.deepcopy(tok)
    plain.chat_template = None
    plain.pad_token = plain.eos_token  # what ensure_pad_token does for most hub tokenizers
    res = run_harness(model, plain, ["lethe_toy_mcq"], include_path=task["folder"], batch_size=3, log_samples=False)
    assert res.metrics["lethe_toy_mcq"]["acc"] == N_RIGHT / len(QUESTIONS)
    assert plain.pad_token_id == plain.eos_token_id


def test_limit_takes_the_first_documents(loaded, task):
    model, tok = loaded
    res = run_harness(model, tok, ["lethe_toy_mcq"], include_path=task["folder"], limit=3)
    assert res.n_samples == {"lethe_toy_mcq": 3}
    assert sorted(s["doc_id"] for s in res.samples["lethe_toy_mcq"]) == [0, 1, 2]
    assert res.metrics["lethe_toy_mcq"]["acc"] == sum(task["right"][:3]) / 3


def test_no_network_access(loaded, task, monkeypatch):
    import datasets

    tried = []

    def refuse(*args, **kwargs):
        tried.append(args[:2])
        raise OSError("network disabled by the test")

    # datasets pings a download counter unless HF offline mode is on; force it off so the test can fail
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    model, tok = loaded
    res = run_harness(model, tok, ["lethe_toy_mcq"], include_path=task["folder"], limit=2, log_samples=False)
    assert tried == [] and res.n_samples == {"lethe_toy_mcq": 2}


def _unknown_task_message(loaded, tmp_path) -> str:
    write_mcq_task(tmp_path, "mytask", [{"question": "q?", "choices": ["a", "b"], "answer": 0}])
    (tmp_path / "bad.yaml").write_text("task: bad\ndoc_to_text: [unclosed\n")  # lm-eval skips it silently
    with pytest.raises(LetheError, match=r"unknown lm-eval task 'mytaskk'; did you mean 'mytask'\?") as e:
        run_harness(*loaded, ["mytaskk"], include_path=str(tmp_path))
    msg = str(e.value)
    assert f"include_path {tmp_path} " in msg and "bad.yaml could not be read" in msg and "\n" not in msg
    return msg


def test_unknown_task_names_task_include_path_and_unreadable_yaml(loaded, tmp_path, monkeypatch):
    # lm-eval's own TaskManager reads the folder; only its index of the ~15k built-in task YAMLs (~8 s, the
    # same for every name) is left out here: test_unknown_task_among_the_built_in_tasks runs it whole
    import lm_eval.tasks

    class FolderOnly(lm_eval.tasks.TaskManager):
        def __init__(self, *args, include_defaults=True, **kwargs):
            super().__init__(*args, include_defaults=False, **kwargs)

    monkeypatch.setattr(lm_eval.tasks, "TaskManager", FolderOnly)
    assert "lm-eval's built-in tasks" in _unknown_task_message(loaded, tmp_path)


@pytest.mark.slow
def test_unknown_task_among_the_built_in_tasks(loaded, tmp_path):
    _unknown_task_message(loaded, tmp_path)  # the same message with the built-in index read whole
    with pytest.raises(LetheError, match=r"unknown lm-eval task 'arc_esy'; did you mean 'arc_easy'\?") as e:
        run_harness(*loaded, ["arc_esy"])  # a built-in name, suggested from that index
    assert "(looked in no include_path; lm-eval's built-in tasks)" in str(e.value)


def test_relative_data_file_is_explained(loaded, tmp_path, monkeypatch):
    yaml_path = write_mcq_task(tmp_path, "rel", [{"question": "q?", "choices": ["a", "b"], "answer": 0}])
    yaml_path.write_text(yaml_path.read_text().replace(str(tmp_path / "rel.jsonl"), "rel.jsonl"))
    monkeypatch.chdir(tmp_path.parent)  # a relative path is looked up here, not next to the YAML
    with pytest.raises(LetheError, match="data_files must be an absolute path"):
        run_harness(*loaded, ["rel"], include_path=str(tmp_path))


def test_missing_lm_eval_says_how_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "lm_eval", None)  # import lm_eval now raises ImportError
    with pytest.raises(LetheError, match="pip install lm-eval"):
        run_harness(object(), object(), ["x"])


@pytest.mark.parametrize("row, field", [
    ({"question": "q", "choices": ["a", "b"], "answer": 2}, "answer"),
    ({"question": "q", "choices": ["a", "b"], "answer": "c"}, "answer"),
    ({"question": "q", "choices": ["a"], "answer": 0}, "choices"),
    ({"question": "", "choices": ["a", "b"], "answer": 0}, "question"),
])
def test_write_mcq_task_rejects_bad_rows(tmp_path, row, field):
    with pytest.raises(LetheError, match=rf"rows:1: field '{field}'"):
        write_mcq_task(tmp_path, "t", [{"question": "ok", "choices": ["x", "y"], "answer": "y"}, row])
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_write_mcq_task_files(tmp_path):
    import yaml

    path = write_mcq_task(tmp_path / "sub", "mine", [{"question": "q?", "choices": ["a", "b"], "answer": "b"}])
    cfg = yaml.safe_load(path.read_text())
    data = cfg["dataset_kwargs"]["data_files"]["test"]
    assert cfg["task"] == "mine" and cfg["output_type"] == "multiple_choice" and cfg["dataset_path"] == "json"
    assert data == str((tmp_path / "sub" / "mine.jsonl").resolve())
    rows = [json.loads(line) for line in Path(data).read_text().splitlines()]
    assert rows == [{"question": "q?", "choices": ["a", "b"], "answer": 1}]  # the answer's text became its index


def test_flat_keys():
    res = HarnessResult(
        metrics={"arc_easy": {"acc": 0.5, "acc_stderr": 0.1, "acc_norm": 0.6, "acc_norm_stderr": None},
                 "gsm8k": {"exact_match,strict-match": 0.2, "exact_match_stderr,strict-match": 0.01},
                 "wikitext": {"word_perplexity": 30.0}},
        lm_eval_version="0.4.13", seconds=1.0,
        higher_is_better={"arc_easy": {"acc": True, "acc_norm": True}, "gsm8k": {"exact_match": True},
                          "wikitext": {"word_perplexity": False}})
    values, directions = flat_summary(res)
    assert values == {"lm_eval_arc_easy_acc": 0.5, "lm_eval_arc_easy_acc_norm": 0.6,
                      "lm_eval_gsm8k_exact_match_strict_match": 0.2, "lm_eval_wikitext_word_perplexity": 30.0}
    assert directions == {"lm_eval_arc_easy_acc": "higher", "lm_eval_arc_easy_acc_norm": "higher",
                          "lm_eval_gsm8k_exact_match_strict_match": "higher",
                          "lm_eval_wikitext_word_perplexity": "lower"}


def test_flat_keys_of_a_real_run(result):
    values, directions = flat_summary(result)
    assert values == {"lm_eval_lethe_toy_mcq_acc": result.metrics["lethe_toy_mcq"]["acc"],
                      "lm_eval_lethe_toy_mcq_acc_norm": result.metrics["lethe_toy_mcq"]["acc_norm"]}
    assert set(directions.values()) == {"higher"} and directions.keys() == values.keys()


def test_harness_main_writes_json(model_dir, task, tmp_path, capsys):
    out = tmp_path / "res" / "harness.json"
    doc = harness_main(str(model_dir), ["lethe_toy_mcq"], task["folder"], 4, str(out))
    on_disk = json.loads(out.read_text())
    assert on_disk == doc
    assert doc["summary"]["lm_eval_lethe_toy_mcq_acc"] == sum(task["right"][:4]) / 4
    assert doc["config"]["limit"] == 4 and doc["lm_eval_version"] and doc["samples"]["lethe_toy_mcq"]
    assert "lethe_toy_mcq  acc" in capsys.readouterr().out
    assert [p.name for p in out.parent.iterdir()] == ["harness.json"]  # no temp file left behind
