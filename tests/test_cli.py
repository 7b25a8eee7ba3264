"""End-to-end CLI tests on tiny models built offline, and the bad-input contract:
one-line error naming the file/field and the fix, exit code 2, no traceback, no partial results."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from lethe.cli import main

os.environ.setdefault("LETHE_NO_PROGRESS", "1")

from tiny_run import TINY  # noqa: E402  (a miniature of the miniature: 20 authors, a 32-wide model)


def tiny_benchmark():
    """The benchmark of the TINY runs, built as `lethe run` builds it from the overrides."""
    from lethe.benchmarks import load_benchmark

    opts = {o.split("=")[0].split(".")[1]: int(o.split("=")[1]) for o in TINY if o.startswith("benchmark_options.")}
    return load_benchmark("lethe-authors", **opts)


def r1_target(root):
    """The built-in target model folder of the session's tiny run (its provenance names it)."""
    from pathlib import Path

    return Path(json.loads((root / "runs" / "r1" / "summary.json").read_text())["provenance"]["model"])


def run_cli(args, capsys):
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def builtin_run(tiny_run):
    """The session's one run of the whole built-in pipeline (conftest.tiny_run)."""
    return tiny_run


def test_run_builtin_end_to_end(builtin_run):
    root, code = builtin_run
    assert code == 0
    run = root / "runs" / "r1"
    for name in ("config.yaml", "results.json", "summary.json", "report.md", "report.html", "tradeoff.png"):
        assert (run / name).is_file(), name
    summary = json.loads((run / "summary.json").read_text())
    names = [r["name"] for r in summary["rows"]]
    assert names == ["target", "retain model", "ga", "npo", "idk+ap"]
    bench = tiny_benchmark()
    assert summary["benchmark"] == {"name": "lethe-authors", "version": bench.version,
                                    "fingerprint": bench.fingerprint()}
    retain_row = summary["rows"][1]
    assert retain_row["metrics"]["forget_quality"] == pytest.approx(1.0)
    for row in summary["rows"]:
        assert 0.0 <= row["metrics"]["forget_quality"] <= 1.0
        assert 0.0 <= row["metrics"]["model_utility"] <= 1.0
    results = json.loads((run / "results.json").read_text())
    forget = results["models"][2]["splits"]["forget"]
    n_forget = 2 * 8  # forget10 of 20 authors = 2 authors x 8 facts
    assert len(forget["probes"]["ids"]) == n_forget
    assert len(forget["metrics"]["rouge_l"]["per_sample"]) == n_forget
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=os.path.dirname(__file__), capture_output=True, text=True)
    if head.returncode == 0:  # a checkout: the run records the commit it ran
        assert results["provenance"]["git_sha"] == head.stdout.strip() and len(head.stdout.strip()) == 40
    md = (run / "report.md").read_text()
    for n in names:
        assert n in md
    # membership inference on forget (members) vs holdout (never trained): the target leaks, the retain model is the yardstick
    rows = {r["name"]: r["metrics"] for r in summary["rows"]}
    assert rows["retain model"]["privleak"] == 0.0
    assert rows["target"]["mia_loss"] > rows["retain model"]["mia_loss"] and rows["target"]["privleak"] < 0
    for r in rows.values():
        assert 0.0 <= r["mia_min_k"] <= 1.0 and 0.0 <= r["forget_extraction_strength"] <= 1.0
        # bootstrap intervals for every model: contain the point value for means, valid for the p-value
    for row in summary["rows"]:
        iv, m = row["intervals"], row["metrics"]
        for key in ("model_utility", "forget_rouge_l", "retain_probability"):
            assert iv[key][0] <= m[key] + 1e-9 and m[key] - 1e-9 <= iv[key][1], (row["name"], key)
        if row["kind"] != "retain":  # the retain model's forget quality is 1 by definition: no interval
            assert 0.0 <= iv["forget_quality"][0] <= iv["forget_quality"][1] <= 1.0
    assert "## 95 % confidence intervals" in md and "95 % confidence intervals" in (run / "report.html").read_text()
    # no leftover temp folder beside the run
    assert not list((root / "runs").glob(".*partial"))


def test_second_run_starts_from_model_cache(builtin_run, capsys):
    root, _ = builtin_run
    code, out, _ = run_cli(["run", *TINY, f"cache_dir={root / 'cache'}", f"output={root / 'runs'}", "name=r2",
                            "methods=[ga]"], capsys)
    assert code == 0
    assert "from cache" in out
    assert "evaluating the target" not in out  # the untouched target's evaluation is cached too


def test_every_kind_of_method_runs_through_lethe_run(builtin_run, capsys):
    """Model composition, inference-time methods and a stateful loss go through the same pipeline,
    probes and metrics; inference-time rows record that no weights changed."""
    root, _ = builtin_run
    code, out, err = run_cli(["run", *TINY, f"cache_dir={root / 'cache'}", f"output={root / 'runs'}", "name=kinds",
                              "save_models=true", "methods=[task_vector, output_filter, icul, uld]",
                              "attacks=[]"], capsys)  # the attacks: the next test
    assert code == 0, err
    summary = json.loads((root / "runs" / "kinds" / "summary.json").read_text())
    rows = {r["name"]: r for r in summary["rows"]}
    assert set(rows) == {"target", "retain model", "task_vector", "output_filter", "icul", "uld"}
    for name in ("task_vector", "output_filter", "icul", "uld"):
        assert 0.0 <= rows[name]["metrics"]["model_utility"] <= 1.0
        assert 0.0 <= rows[name]["metrics"]["forget_quality"] <= 1.0
    # a filter changes only the text: every log-prob metric equals the target's
    for key in ("forget_probability", "retain_probability", "forget_truth_ratio"):
        assert rows["output_filter"]["metrics"][key] == pytest.approx(rows["target"]["metrics"][key])
    assert rows["output_filter"]["train"]["inference_time"] is True
    # a filter hides text from users, not membership from the model's probabilities
    assert rows["output_filter"]["metrics"]["privleak"] == pytest.approx(rows["target"]["metrics"]["privleak"])
    models = root / "runs" / "kinds" / "models"
    assert (models / "task_vector").is_dir() and not (models / "icul").exists()


def test_attacks_run_on_every_unlearned_model_and_the_retain_control(builtin_run, capsys):
    root, _ = builtin_run
    code, out, err = run_cli(["run", *TINY, f"cache_dir={root / 'cache'}", f"output={root / 'runs'}", "name=att",
                              "methods=[ga, output_filter]", "attacks=[relearn, quantize_8bit, paraphrase]",
                              "attack_options={relearn: {lr: 0.01, steps: 5}}"], capsys)
    assert code == 0, err
    summary = json.loads((root / "runs" / "att" / "summary.json").read_text())
    rows = {r["name"]: r for r in summary["rows"]}
    for name in ("retain model", "ga"):
        rob = rows[name]["robustness"]
        assert set(rob) == {"relearn", "quantize_8bit", "paraphrase"}
        n_forget = 16
        assert rob["relearn"]["items"] == n_forget // 2 and rob["quantize_8bit"]["items"] == n_forget
        assert rob["paraphrase"]["items"] == n_forget  # every built-in item has a paraphrased question
        # the model is unchanged: "before" is the evaluation's own value on the original questions
        assert rob["paraphrase"]["before"]["forget_rouge_l"] == pytest.approx(rows[name]["metrics"]["forget_rouge_l"])
        assert rob["relearn"]["info"]["steps"] == 5
        for attack in rob.values():
            assert set(attack["before"]) == set(attack["after"]) == {"forget_probability", "forget_rouge_l",
                                                                      "forget_truth_ratio"}
        # 8-bit rounding barely moves a model; the full-set "before" equals the evaluation's own value
        q = rob["quantize_8bit"]
        assert q["before"]["forget_probability"] == pytest.approx(rows[name]["metrics"]["forget_probability"])
        assert abs(q["after"]["forget_probability"] - q["before"]["forget_probability"]) < 0.05
    assert not rows["output_filter"]["robustness"]  # inference-time: no weights to attack
    md = (root / "runs" / "att" / "report.md").read_text()
    assert "## Robustness: does the knowledge come back?" in md and "| ga | relearn | 8 |" in md


def test_attack_subcommand_on_a_saved_model(builtin_run, tmp_path, capsys):
    root, _ = builtin_run
    target = r1_target(root)
    out = tmp_path / "attacks.json"
    code, stdout, err = run_cli(["attack", str(target), *TINY, f"cache_dir={root / 'cache'}",
                                 "attacks=[quantize_8bit, paraphrase, jailbreak_base64]", "--out", str(out)], capsys)
    assert code == 0, err
    res = json.loads(out.read_text())
    assert res["attacks"] == ["quantize_8bit", "paraphrase", "jailbreak_base64"]
    assert set(res["robustness"]) == set(res["attacks"])
    for r in res["robustness"].values():
        assert r["items"] == 16 and r["before"] == pytest.approx(res["before"])  # all forget items, model unchanged
    assert "paraphrase | 16 |" in stdout
    code, _, err = run_cli(["attack", str(tmp_path / "nothing-here"), *TINY], capsys)
    assert code == 2 and "no such model folder" in err


def test_evaluation_during_unlearning_picks_and_records_the_best_checkpoint(builtin_run, capsys):
    root, _ = builtin_run
    code, _, err = run_cli(["run", *TINY, f"cache_dir={root / 'cache'}", f"output={root / 'runs'}", "name=best",
                            "methods=[ga]", "train.eval_every=1", "train.best_by=forget_quality"], capsys)
    assert code == 0, err
    summary = json.loads((root / "runs" / "best" / "summary.json").read_text())
    ga = next(r for r in summary["rows"] if r["name"] == "ga")
    checkpoints, best = ga["train"]["checkpoints"], ga["train"]["best"]
    assert [c["step"] for c in checkpoints] == list(range(1, ga["train"]["steps"] + 1))
    top = max(c["forget_quality"] for c in checkpoints)
    assert best["by"] == "forget_quality" and best["value"] == top
    assert checkpoints[best["step"] - 1]["forget_quality"] == top  # the first step reaching the top
    # the returned model is that checkpoint: its final evaluation agrees with the checkpoint's
    assert ga["metrics"]["forget_quality"] == pytest.approx(top)
    assert any(n.startswith("ga: checkpoint chosen by forget_quality") for n in summary["notes"])
    code, _, err = run_cli(["run", *TINY, f"cache_dir={root / 'cache'}", "methods=[ga]", "train.eval_every=1",
                            "train.best_by=forget_qualty"], capsys)
    assert code == 2 and "did you mean 'forget_quality'" in err


def test_lm_eval_tasks_in_a_run_and_the_harness_subcommand(builtin_run, tmp_path, capsys):
    from lethe.harness import write_mcq_task

    root, _ = builtin_run
    rows = [{"question": f"Which word is number {i}?", "choices": ["alpha", "beta", "gamma"], "answer": i % 3}
            for i in range(6)]
    write_mcq_task(tmp_path / "tasks", "tiny_mcq", rows)
    code, _, err = run_cli(["run", *TINY, f"cache_dir={root / 'cache'}", f"output={root / 'runs'}", "name=lmeval",
                            "methods=[ga, icul]", "attacks=[]", "eval.lm_eval_tasks=[tiny_mcq]",
                            f"eval.lm_eval_include={tmp_path / 'tasks'}"], capsys)
    assert code == 0, err
    summary = json.loads((root / "runs" / "lmeval" / "summary.json").read_text())
    rows_by = {r["name"]: r for r in summary["rows"]}
    for name in ("target", "retain model", "ga"):
        acc = rows_by[name]["metrics"]["lm_eval_tiny_mcq_acc"]
        assert acc in {k / 6 for k in range(7)}  # an accuracy over six documents
    assert "lm_eval_tiny_mcq_acc" not in rows_by["icul"]["metrics"]  # a prompt method: not the raw model's score
    assert summary["directions"]["lm_eval_tiny_mcq_acc"] == "higher"
    target = r1_target(root)
    out = tmp_path / "h.json"
    code, stdout, err = run_cli(["harness", str(target), "--tasks", "tiny_mcq", "--include", str(tmp_path / "tasks"),
                                 "--out", str(out)], capsys)
    assert code == 0, err
    doc = json.loads(out.read_text())
    assert doc["summary"]["lm_eval_tiny_mcq_acc"] == rows_by["target"]["metrics"]["lm_eval_tiny_mcq_acc"]
    code, _, err = run_cli(["harness", str(target)], capsys)
    assert code == 2 and "name at least one lm-eval task" in err


def test_reference_and_gradnorm_mia_in_a_run(builtin_run, capsys):
    """eval.mia_reference=base scores forget vs holdout against the built-in base model; recomputed here
    from the models' own token scores, the AUC agrees."""
    from lethe.benchmarks import load_benchmark
    from lethe.data import Encoder
    from lethe.metrics.mia import mia_reference
    from lethe.models import load_model
    from lethe.probes_tokens import token_scores

    root, _ = builtin_run
    code, _, err = run_cli(["run", *TINY, f"cache_dir={root / 'cache'}", f"output={root / 'runs'}", "name=mia",
                            "methods=[ga]", "attacks=[]", "eval.mia_reference=base", "eval.mia_gradnorm=true"], capsys)
    assert code == 0, err
    summary = json.loads((root / "runs" / "mia" / "summary.json").read_text())
    for row in summary["rows"]:
        for key in ("mia_reference", "mia_gradnorm"):
            assert 0.0 <= row["metrics"][key] <= 1.0, (row["name"], key)
    assert summary["directions"]["mia_reference"] == "lower"
    folder = r1_target(root)
    bench = load_benchmark("lethe-authors", n_authors=20, n_holdout=2, n_world=30, n_people=12)
    target, tok = load_model(folder)
    base, _ = load_model(folder.parent / "base")
    enc = Encoder(tok)

    def scores(model, items):
        return token_scores(model, [enc.qa(it.question, it.answer) for it in items], tok.pad_token_id)

    forget, holdout = bench.forget("forget10"), bench.splits["holdout"]
    want = mia_reference(scores(target, forget), scores(target, holdout), scores(base, forget), scores(base, holdout))
    row = next(r for r in summary["rows"] if r["name"] == "target")
    assert row["metrics"]["mia_reference"] == pytest.approx(want.value)


def test_unlearn_refuses_an_inference_time_method(builtin_run, capsys):
    root, _ = builtin_run
    code, _, err = run_cli(["unlearn", "icul", *TINY, f"cache_dir={root / 'cache'}", f"output={root / 'runs'}"], capsys)
    assert code == 2 and "inference-time method" in err and "lethe run methods=[icul]" in err


def test_output_folder_exists_is_an_error(builtin_run, capsys):
    root, _ = builtin_run
    code, _, err = run_cli(["run", *TINY, f"cache_dir={root / 'cache'}", f"output={root / 'runs'}", "name=r1"], capsys)
    assert code == 2
    assert "r1: output folder exists" in err and "overwrite=true" in err


def test_report_subcommand_rewrites_report(builtin_run, capsys):
    root, _ = builtin_run
    run = root / "runs" / "r1"
    (run / "report.md").unlink()
    code, out, _ = run_cli(["report", str(run)], capsys)
    assert code == 0 and (run / "report.md").is_file()


def test_external_model_folder_and_retain_results(builtin_run, tmp_path, capsys):
    """A user's model goes through the same from_pretrained path as a hub model; the gold standard
    can be the retain model's results file."""
    root, _ = builtin_run
    models = r1_target(root).parent
    code, _, err = run_cli(["run", *TINY, f"model={models / 'target'}",
                            f"retain_model={root / 'runs' / 'r1' / 'results.json'}",
                            f"output={tmp_path}", "name=ext", "methods=[grad_diff]"], capsys)
    assert code == 0, err
    summary = json.loads((tmp_path / "ext" / "summary.json").read_text())
    assert [r["name"] for r in summary["rows"]] == ["target", "retain model", "grad_diff"]
    whole = json.loads((root / "runs" / "r1" / "summary.json").read_text())
    # the same target model judged against the same retain results: the forget quality of the built-in run
    assert summary["rows"][0]["metrics"]["forget_quality"] == pytest.approx(whole["rows"][0]["metrics"]["forget_quality"])
    assert 0.0 <= summary["rows"][2]["metrics"]["forget_quality"] <= 1.0


def test_external_model_without_retain_model_says_so(builtin_run, tmp_path, capsys):
    root, _ = builtin_run
    models = r1_target(root).parent
    code, _, err = run_cli(["eval", *TINY, f"model={models / 'target'}", f"output={tmp_path}", "name=ev"], capsys)
    assert code == 0, err
    summary = json.loads((tmp_path / "ev" / "summary.json").read_text())
    assert "forget_quality" not in summary["rows"][0]["metrics"]
    assert any("no retain model" in n for n in summary["notes"])


# ---------------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize("override, expected", [
    ("methods=[npoo]", "unknown method 'npoo'; did you mean 'npo'?"),
    ("train.lr=-1", "train.lr must be > 0"),
    ("train.batch_size=0", "train.batch_size must be >= 1"),
    ("report_columns=[forget_qualty]", "unknown metric 'forget_qualty' in report_columns; did you mean 'forget_quality'?"),
    ("forget_split=forget50", "unknown forget split 'forget50'"),
    ("trainn.lr=1", "unknown config key 'trainn'"),
    ("methods=[{method: npo, beta: -1}]", "npo: beta must be > 0"),
    ("methods=[{method: npo, betta: 1}]", "method 'npo': unknown option 'betta'"),
    ("train.precision=fp16", "train.precision must be one of fp32, bf16"),
    ("eval.precision=fp8", "eval.precision must be one of fp32, bf16"),
    ("eval.batch_size=0", "eval.batch_size must be >= 1"),
    ("eval.bootstrap=-5", "eval.bootstrap must be >= 0"),
    ("attacks=[relearnn]", "unknown attack 'relearnn'; did you mean 'relearn'?"),
])
def test_bad_settings_exit_2_with_one_line(override, expected, tmp_path, capsys):
    code, _, err = run_cli(["run", *TINY, override, f"cache_dir={tmp_path / 'c'}", f"output={tmp_path / 'runs'}"], capsys)
    assert code == 2
    assert expected in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_malformed_jsonl_row(tmp_path, capsys):
    f = tmp_path / "data.jsonl"
    f.write_text('{"id": "a", "question": "q?", "answer": "a."}\n{"id": "b", "question": \n')
    code, _, err = run_cli(["validate", str(f)], capsys)
    assert code == 2 and f"{f}:2: not valid JSON" in err


def test_missing_column(tmp_path, capsys):
    f = tmp_path / "data.jsonl"
    f.write_text('{"id": "a", "question": "q?"}\n')
    code, _, err = run_cli(["validate", str(f)], capsys)
    assert code == 2 and f"{f}:1: field 'answer'" in err


def test_empty_forget_set(tmp_path, capsys):
    code, _, err = run_cli(["export", str(tmp_path / "b"), "n_authors=20", "n_holdout=2"], capsys)
    assert code == 0
    meta = json.loads((tmp_path / "b" / "benchmark.json").read_text())
    meta["forget_sets"]["forget10"] = []
    (tmp_path / "b" / "benchmark.json").write_text(json.dumps(meta))
    no_bench_options = [o for o in TINY if not o.startswith("benchmark_options")]
    code, _, err = run_cli(["run", *no_bench_options, f"benchmark={tmp_path / 'b'}", "model=nowhere",
                            f"output={tmp_path / 'r'}"], capsys)
    assert code == 2 and "benchmark.json: field 'forget_sets': 'forget10' must be a non-empty list" in err


def test_model_folder_without_tokenizer(tmp_path, capsys):
    from lethe.models import tiny_llama

    tiny_llama(64, 16, 1, 2, 32).save_pretrained(tmp_path / "m")
    code, _, err = run_cli(["eval", *TINY, f"model={tmp_path / 'm'}", f"output={tmp_path / 'r'}"], capsys)
    assert code == 2 and f"{tmp_path / 'm'}: no tokenizer found" in err
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


def test_help_is_fast_and_light():
    code = subprocess.run([sys.executable, "-c", "import sys, lethe.cli as c; c.build_parser();"
                           "print(int('torch' in sys.modules))"], capture_output=True, text=True)
    assert code.stdout.strip() == "0"  # no torch import for --help


def test_cli_user_error_exit_code_in_subprocess(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "lethe.cli", "validate", str(tmp_path / "missing.jsonl")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"lethe: error: {tmp_path / 'missing.jsonl'}: file not found"


def test_python_dash_m_lethe_is_the_lethe_command(tmp_path):
    """``python -m lethe`` (what torchrun -m and accelerate launch -m run): same output, same exit codes."""
    ok = subprocess.run([sys.executable, "-m", "lethe", "ls", "scenarios"], capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.splitlines()[0] == "scenarios (lethe run scenario=NAME):"
    bad = subprocess.run([sys.executable, "-m", "lethe", "validate", str(tmp_path / "missing.jsonl")],
                         capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.strip() == f"lethe: error: {tmp_path / 'missing.jsonl'}: file not found"


def test_a_launch_of_several_processes_refuses_the_commands_it_does_not_split(monkeypatch, capsys):
    """Under torchrun / accelerate launch with N > 1, harness would repeat everything in every process."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    for command in (["harness", "some/model"],):
        code, out, err = run_cli(command, capsys)
        assert code == 2 and out == "", command
        assert err.strip() == (f"lethe: error: this is one of 2 processes (WORLD_SIZE=2), but `lethe {command[0]}` is "
                               "not split across processes: each would repeat it; launch one process"), command
    assert run_cli(["ls", "judges"], capsys)[0] == 0  # listing and reporting commands run no model
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")  # accelerate launch --config_file <a DeepSpeed config>
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "deepspeed" else find_spec(name, *a))
    code, _, err = run_cli(["run"], capsys)
    assert code == 2 and err.strip() == ("lethe: error: this launch's accelerate config asks for DeepSpeed, and the "
                                         "deepspeed package is not installed (pip install deepspeed)")
    monkeypatch.delenv("ACCELERATE_USE_DEEPSPEED")
    monkeypatch.setenv("WORLD_SIZE", "1")
    err = run_cli(["attack", "some/model", "nosuchkey=1"], capsys)[2]  # one process: on to the settings
    assert "unknown config key 'nosuchkey'" in err and "WORLD_SIZE" not in err


def test_ls_lists_methods_and_metrics(capsys):
    code, out, _ = run_cli(["ls"], capsys)
    assert code == 0
    for name in ("ga", "grad_diff", "kl", "npo", "me", "idk", "forget_quality", "model_utility", "lethe-authors"):
        assert name in out


# ---------------------------------------------------------------------------------------------
# the gold standard must be the gold standard of THIS data


def _retain_run(root, tmp_path, capsys, results, *extra):
    models = r1_target(root).parent
    return run_cli(["run", *TINY, f"model={models / 'target'}", f"retain_model={results}", f"output={tmp_path}",
                    "name=ext", "methods=[grad_diff]", *extra], capsys)


def test_results_record_what_the_retain_model_must_match(builtin_run):
    root, _ = builtin_run
    results = json.loads((root / "runs" / "r1" / "results.json").read_text())
    bench = tiny_benchmark()
    forget = bench.forget("forget10")
    assert results["forget_items"]["ids"] == [it.id for it in forget]
    assert results["forget_items"]["sha256"] == bench.split_fingerprint("forget10")["sha256"]
    assert results["provenance"]["forget_split"] == {"name": "forget10", "items": len(forget),
                                                     "sha256": results["forget_items"]["sha256"]}
    assert results["provenance"]["benchmark"]["fingerprint"] == bench.fingerprint()


def test_retain_results_of_another_benchmark_seed_are_refused(builtin_run, tmp_path, capsys):
    """Same ids (a000_00 ...), other authors: forget quality would silently change; it is refused."""
    root, _ = builtin_run
    code, _, err = _retain_run(root, tmp_path, capsys, root / "runs" / "r1" / "results.json",
                               "benchmark_options.seed=7")
    assert code == 2
    assert "its retain model was evaluated on forget split 'forget10'" in err and "sha256" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "ext").exists()


def test_retain_results_without_fingerprints_are_checked_on_the_answers(builtin_run, tmp_path, capsys):
    """A results file written before the fingerprints were recorded: the forget answers themselves are compared."""
    root, _ = builtin_run
    data = json.loads((root / "runs" / "r1" / "results.json").read_text())
    del data["provenance"]["forget_split"], data["forget_items"], data["provenance"]["eval_recipe"]
    old = tmp_path / "old.json"
    old.write_text(json.dumps(data))
    code, _, err = _retain_run(root, tmp_path, capsys, old, "benchmark_options.seed=7")
    assert code == 2 and "evaluated on other answers for" in err and "forget items" in err
    code, _, err = _retain_run(root, tmp_path, capsys, old)  # the same data: accepted ...
    assert code == 0, err
    summary = json.loads((tmp_path / "ext" / "summary.json").read_text())
    rows = {r["name"]: r["metrics"] for r in summary["rows"]}
    assert 0 <= rows["grad_diff"]["forget_quality"] <= 1  # ... forget quality from its probes
    # ... but its MIA numbers come from an unrecorded recipe (Min-K% at another k): no PrivLeak against them
    assert "mia_min_k" not in rows["retain model"] and "privleak" not in rows["grad_diff"]
    assert any("evaluation recipe 'unrecorded'" in n and "PrivLeak is not reported" in n for n in summary["notes"])


def test_results_file_without_a_retain_row_is_an_error(builtin_run, tmp_path, capsys):
    root, _ = builtin_run
    data = json.loads((root / "runs" / "r1" / "results.json").read_text())
    data["models"] = [m for m in data["models"] if m["kind"] != "retain"]
    path = tmp_path / "no_retain.json"
    path.write_text(json.dumps(data))
    code, _, err = _retain_run(root, tmp_path, capsys, path)
    assert code == 2
    assert "holds no retain-model row (models: target, ga, npo, idk+ap)" in err


def test_retain_model_with_the_builtin_models_is_refused(builtin_run, tmp_path, capsys):
    root, _ = builtin_run
    code, _, err = run_cli(["run", *TINY, f"cache_dir={root / 'cache'}", f"output={tmp_path}", "name=x",
                            f"retain_model={root / 'runs' / 'r1' / 'results.json'}"], capsys)
    assert code == 2 and "goes with model=" in err and "trains its own retain model" in err


def test_published_tofu_retain_log_is_the_gold_standard(builtin_run, tmp_path, capsys):
    """retain_model= TOFU's eval_log_forget.json (locuslab/tofu layout): forget quality equals TOFU's own
    aggregate_eval_stat.get_forget_quality on the two models' logs, and the source is in the provenance."""
    import numpy as np
    from scipy.stats import ks_2samp

    from lethe.retain_logs import tofu_forget_quality

    root, _ = builtin_run
    r1 = json.loads((root / "runs" / "r1" / "results.json").read_text())
    forget = next(m for m in r1["models"] if m["kind"] == "retain")["splits"]["forget"]["probes"]
    n = len(forget["ids"])
    rng = np.random.default_rng(0)
    keys = [str(i) for i in range(n)]
    retain_log = {  # invented losses in the published file's layout: string index keys, 5 perturbed losses each
        "avg_gt_loss": {k: float(v) for k, v in zip(keys, rng.uniform(1, 3, n))},
        "rougeL_recall": {k: 0.3 for k in keys},
        "avg_paraphrased_loss": {k: float(v) for k, v in zip(keys, rng.uniform(1, 3, n))},
        "average_perturb_loss": {k: [float(x) for x in rng.uniform(1, 3, 5)] for k in keys},
        "generated_text": {k: ["[INST] q [/INST]", "a generation", ans] for k, ans in zip(keys, forget["references"])},
    }
    path = tmp_path / "eval_log_forget.json"
    path.write_text(json.dumps(retain_log))
    code, _, err = _retain_run(root, tmp_path, capsys, path)
    assert code == 0, err
    results = json.loads((tmp_path / "ext" / "results.json").read_text())
    assert results["provenance"]["retain_model"]["logs"]["layout"] == "tofu-eval-log"
    assert results["provenance"]["retain_model"]["logs"]["items"] == n
    summary = json.loads((tmp_path / "ext" / "summary.json").read_text())
    assert any("gold standard: the published evaluation" in note for note in summary["notes"])
    for row in results["models"]:
        if row["kind"] == "retain":
            assert row["summary"]["forget_rouge_l"] == pytest.approx(0.3)  # the published number
            continue
        p = row["splits"]["forget"]["probes"]
        unlearn_log = {"avg_paraphrased_loss": {k: -lp / nt for k, lp, nt in
                                                zip(keys, p["paraphrase_logprob"], p["paraphrase_ntokens"])},
                       "average_perturb_loss": {k: [-lp / nt for lp, nt in zip(lps, nts)] for k, lps, nts in
                                                zip(keys, p["perturbed_logprob"], p["perturbed_ntokens"])}}
        # TOFU's aggregate_eval_stat.get_forget_quality, written out
        def ratio(log):
            para = np.array(list(log["avg_paraphrased_loss"].values()))
            pert = np.array(list(log["average_perturb_loss"].values())).mean(axis=-1)
            return np.exp(pert - para)

        want = ks_2samp(ratio(unlearn_log), ratio(retain_log)).pvalue
        assert row["summary"]["forget_quality"] == pytest.approx(want, rel=1e-9), row["name"]
        assert tofu_forget_quality(unlearn_log, retain_log) == pytest.approx(want, rel=1e-9)


@pytest.mark.parametrize("scenario", ["continual", "multilingual", "real_world"])
def test_retain_model_is_refused_where_a_scenario_would_ignore_it(scenario, tmp_path, capsys):
    code, _, err = run_cli(["run", f"scenario={scenario}", f"retain_model={tmp_path / 'r.json'}",
                            f"output={tmp_path / 'runs'}", f"cache_dir={tmp_path / 'c'}"], capsys)
    assert code == 2 and f"scenario '{scenario}' takes no retain_model" in err and "drop retain_model=" in err
    assert not (tmp_path / "runs").exists()
