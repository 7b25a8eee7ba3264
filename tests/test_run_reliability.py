"""The run protects its work and its neighbours: safe names, one claim per name, early write checks,
results after every model, failed methods as rows, report failures, resume after ``kill -9``,
damaged cache entries, and one-line errors instead of tracebacks."""
from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lethe.cli import main
from lethe.errors import LetheError
from lethe.rundir import RunFolder, check_name, stale_runs

from tiny_run import TINY  # noqa: E402


def run_cli(args, capsys):
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def one_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# ------------------------------------------------------------------------------------------------
# Names, claims and the output folder: refused before any model work


@pytest.mark.parametrize("name", ["..", ".", "../../x", "/tmp/abs", "a/b", "a\\b", "bad\nname", "tab\tname",
                                  ".hidden", ""])
def test_check_name_refuses_anything_but_one_plain_component(name):
    with pytest.raises(LetheError):
        check_name(name, "run name")


@pytest.mark.parametrize("name", ["r1", "npo+kl", "idk+ap", "run.2026-12-06", "über", "a b"])
def test_check_name_keeps_plain_names(name):
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["..", ".", "../../x", "/abs/x"])
def test_unsafe_run_names_touch_nothing(name, tmp_path, capsys):
    out = tmp_path / "out" / "runs"
    out.mkdir(parents=True)
    (out / "other-run").mkdir()
    (out / "other-run" / "summary.json").write_text("{}")
    (tmp_path / "out" / "keep.txt").write_text("mine")
    t0 = time.perf_counter()
    code, _, err = run_cli(["run", *TINY, f"output={out}", f"name={name}", "overwrite=true", "methods=[ga]",
                            f"cache_dir={tmp_path / 'cache'}"], capsys)
    assert code == 2 and "run name" in one_line(err)
    assert time.perf_counter() - t0 < 20  # refused before any model is built
    assert (out / "other-run" / "summary.json").exists() and (tmp_path / "out" / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in out.iterdir()) == ["other-run"] and not (tmp_path / "cache").exists()


def test_unsafe_method_label_is_refused(tmp_path, capsys):
    code, _, err = run_cli(["run", *TINY, f"output={tmp_path / 'runs'}", "name=x", "save_models=true",
                            "methods=[{method: ga, label: ../../dir}]", f"cache_dir={tmp_path / 'cache'}"], capsys)
    assert code == 2 and "method label '../../dir'" in one_line(err)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "dir").exists()


def test_overwrite_replaces_only_a_run_folder(tmp_path, capsys):
    mine = tmp_path / "runs" / "x"
    mine.mkdir(parents=True)
    (mine / "thesis.tex").write_text("years of work")
    code, _, err = run_cli(["run", *TINY, f"output={tmp_path / 'runs'}", "name=x", "overwrite=true",
                            "methods=[ga]", f"cache_dir={tmp_path / 'cache'}"], capsys)
    assert code == 2 and "not a Lethe run folder" in one_line(err)
    assert (mine / "thesis.tex").read_text() == "years of work"


def test_a_second_run_with_the_same_name_stops_at_once(tmp_path, capsys):
    """A live process holds the name: the second run stops with exit 2 and touches nothing."""
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        runs = tmp_path / "runs"
        runs.mkdir()
        import socket

        from lethe.rundir import _start_ticks

        (runs / ".x.lock").write_text(json.dumps({"host": socket.gethostname(), "pid": holder.pid,
                                                   "started_ticks": _start_ticks(holder.pid), "since": "now"}))
        t0 = time.perf_counter()
        code, _, err = run_cli(["run", *TINY, f"output={runs}", "name=x", "methods=[ga]",
                                f"cache_dir={tmp_path / 'cache'}"], capsys)
        assert code == 2 and f"pid {holder.pid}" in one_line(err) and "another process" in err
        assert time.perf_counter() - t0 < 20 and not (tmp_path / "cache").exists()
        assert sorted(p.name for p in runs.iterdir()) == [".x.lock"]
    finally:
        holder.kill()
        holder.wait()


def test_a_lock_of_a_dead_process_is_taken_over(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    import socket

    (tmp_path / ".x.lock").write_text(json.dumps({"host": socket.gethostname(), "pid": dead.pid}))
    folder = RunFolder(tmp_path, "x").claim()
    assert json.loads((tmp_path / ".x.lock").read_text())["pid"] == os.getpid() and folder.partial.is_dir()
    folder.release()
    assert not (tmp_path / ".x.lock").exists()


def test_two_claims_in_one_process_exclude_each_other(tmp_path):
    first = RunFolder(tmp_path, "x").claim()
    with pytest.raises(LetheError, match="another process"):
        RunFolder(tmp_path, "x").claim()
    first.release()
    RunFolder(tmp_path, "x").claim(overwrite=True).release()


def test_output_that_is_a_file(tmp_path, capsys):
    (tmp_path / "runs").write_text("not a folder")
    code, _, err = run_cli(["run", *TINY, f"output={tmp_path / 'runs'}", "name=x", "methods=[ga]",
                            f"cache_dir={tmp_path / 'cache'}"], capsys)
    assert code == 2 and "is a file, not a folder" in one_line(err)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_output(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        code, _, err = run_cli(["run", *TINY, f"output={ro}", "name=x", "methods=[ga]",
                                f"cache_dir={tmp_path / 'cache'}"], capsys)
    finally:
        ro.chmod(0o755)
    assert code == 2 and "permission denied" in one_line(err) and not (tmp_path / "cache").exists()


def test_read_only_file_system_is_one_line(tmp_path, monkeypatch, capsys):
    """EROFS (a read-only mount; root ignores folder permissions, a mount it cannot)."""
    real_open = os.open

    def read_only(path, flags, *a):
        if str(path).startswith(str(tmp_path / "runs")):
            raise OSError(errno.EROFS, "Read-only file system")
        return real_open(path, flags, *a)

    (tmp_path / "runs").mkdir()
    monkeypatch.setattr("lethe.rundir.os.open", read_only)
    code, _, err = run_cli(["run", *TINY, f"output={tmp_path / 'runs'}", "name=x", "methods=[ga]",
                            f"cache_dir={tmp_path / 'cache'}"], capsys)
    assert code == 2 and "the file system is read-only" in one_line(err) and not (tmp_path / "cache").exists()


def test_full_disk_is_one_line_and_keeps_the_last_results(tmp_path, monkeypatch):
    folder = RunFolder(tmp_path, "x").claim()
    folder.write_text("results.json", '{"models": [1]}')

    def full(path, text):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("lethe.benchmarks.base.atomic_write_text", full)
    with pytest.raises(LetheError, match="cannot write: the disk is full"):
        folder.write_text("results.json", '{"models": [1, 2]}')
    assert json.loads((folder.partial / "results.json").read_text()) == {"models": [1]}
    folder.release()


def test_free_space_is_checked_for_saved_models(tmp_path, monkeypatch, capsys):
    """save_models with a local model: the space its copies need is checked before any model work."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"\0" * 4096)
    monkeypatch.setattr("shutil.disk_usage", lambda p: type("U", (), {"free": 1000, "total": 10 ** 9, "used": 0})())
    code, _, err = run_cli(["run", f"model={model}", "benchmark=lethe-authors", f"output={tmp_path / 'runs'}",
                            "name=x", "methods=[ga, npo]", "save_models=true", f"cache_dir={tmp_path / 'cache'}"], capsys)
    assert code == 2 and "2 saved models need" in one_line(err)


def test_free_space_of_an_adapter_target_counts_its_base(tmp_path):
    """A LoRA adapter folder loads merged into its base: its saved copies are the base's size, not the adapter's."""
    from lethe.rundir import folder_bytes

    base, adapter = tmp_path / "base", tmp_path / "adapter"
    base.mkdir()
    adapter.mkdir()
    (base / "config.json").write_text("{}")
    (base / "model.safetensors").write_bytes(b"\0" * 4096)
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(base)}))
    (adapter / "adapter_model.safetensors").write_bytes(b"\0" * 100)
    own = sum(f.stat().st_size for f in adapter.iterdir())
    assert folder_bytes(adapter) == own + folder_bytes(base) and folder_bytes(base) == 4096 + 2
    assert folder_bytes("owner/hub-model") == 0


def test_no_model_given_sizes_nothing_in_the_working_directory(tmp_path, monkeypatch):
    """model= empty (the built-in target) is no folder: the free-space check does not walk the directory the run
    was started in (it once summed a whole checkout, virtual environment included, before every saving run)."""
    from lethe.rundir import folder_bytes

    (tmp_path / "big.bin").write_bytes(b"\0" * 1000)
    monkeypatch.chdir(tmp_path)
    assert folder_bytes(".") == 1000 and folder_bytes("") == 0


def test_stale_partial_folders_are_listed_resumed_or_cleaned(tmp_path):
    (tmp_path / ".old.partial").mkdir()
    (tmp_path / ".old.partial" / "results.json").write_text('{"models": []}')
    assert stale_runs(tmp_path) == [tmp_path / ".old.partial"]
    with pytest.raises(LetheError, match="--resume"):
        RunFolder(tmp_path, "old").claim()
    said = []
    resumed = RunFolder(tmp_path, "old").claim(resume=True, log=said.append)
    assert resumed.resumed and resumed.read_results() == {"models": []} and "resuming" in said[0]
    resumed.release()
    cleaned = RunFolder(tmp_path, "old").claim(overwrite=True, log=said.append)
    assert "removing the unfinished run" in said[-1] and list(cleaned.partial.iterdir()) == []
    cleaned.release()


# ------------------------------------------------------------------------------------------------
# Failures inside a run: the others go on, the results stay


def test_a_failing_method_gets_a_row_and_the_others_go_on(tiny_run, tmp_path, capsys):
    root, _ = tiny_run
    code, _, err = run_cli(["run", *TINY, f"cache_dir={root / 'cache'}", f"output={tmp_path}", "name=f",
                            "attacks=[]", "methods=[{method: ga, label: boom, train: {lr: 1.0e+30, max_grad_norm: 0}}, ga]"],
                           capsys)
    assert code == 1
    assert "1 of 2 methods failed" in err and "boom" in err and "lethe run --resume" in err
    summary = json.loads((tmp_path / "f" / "summary.json").read_text())
    rows = {r["name"]: r for r in summary["rows"]}
    assert rows["boom"]["status"] == "failed" and "lower train.lr" in rows["boom"]["error"]
    assert rows["ga"]["metrics"]["forget_rouge_l"] >= 0 and "status" not in rows["ga"]
    results = json.loads((tmp_path / "f" / "results.json").read_text())
    assert [m["name"] for m in results["models"]] == ["target", "retain model", "ga"]
    assert [f["name"] for f in results["failed"]] == ["boom"]
    assert "boom" in (tmp_path / "f" / "report.md").read_text()


def test_a_report_that_fails_to_draw_leaves_the_results(tiny_run, tmp_path, capsys, monkeypatch):
    root, _ = tiny_run

    def broken(*a, **k):
        raise ValueError("a plot went wrong")

    monkeypatch.setattr("lethe.report.write_report", broken)
    code, _, err = run_cli(["run", *TINY, f"cache_dir={root / 'cache'}", f"output={tmp_path}", "name=p",
                            "attacks=[]", "methods=[ga]"], capsys)
    assert code == 1 and "a plot went wrong" in err and f"lethe report {tmp_path / 'p'}" in err
    assert json.loads((tmp_path / "p" / "summary.json").read_text())["rows"][2]["name"] == "ga"
    assert (tmp_path / "p" / "results.json").is_file() and not (tmp_path / "p" / "report.md").exists()
    monkeypatch.undo()
    code, _, _ = run_cli(["report", str(tmp_path / "p")], capsys)
    assert code == 0 and (tmp_path / "p" / "report.md").is_file()


def test_a_damaged_cached_evaluation_is_computed_again(tiny_run, tmp_path, capsys):
    import shutil

    root, _ = tiny_run
    shutil.copytree(root / "cache", tmp_path / "cache")  # the session's cache stays whole for the other tests
    cache = tmp_path / "cache" / "evals"
    entries = sorted(cache.glob("*-target-*.json"))
    good = {e: json.loads(e.read_text()) for e in entries}
    for e in entries:
        e.write_text('{"name": "target", "splits": ')  # a write cut short
    code, out, _ = run_cli(["eval", *TINY, f"cache_dir={tmp_path / 'cache'}", f"output={tmp_path / 'runs'}",
                            "name=e"], capsys)
    assert code == 0 and "is damaged" in out
    rebuilt = [e for e in entries if e.read_text().startswith('{"name": "target", "kind"')]
    assert len(rebuilt) == 1 and json.loads(rebuilt[0].read_text())["summary"] == good[rebuilt[0]]["summary"]


def test_a_damaged_cached_model_is_trained_again(tmp_path, capsys):
    from lethe.builtin import build_builtin_models
    from lethe.config import TinyModelConfig
    from test_cli import tiny_benchmark

    tiny = TinyModelConfig(hidden_size=32, intermediate_size=64, num_layers=1, num_heads=2, vocab_size=400,
                           base_epochs=1, finetune_epochs=1)
    bench = tiny_benchmark()
    models = build_builtin_models(bench, "forget10", tiny, tmp_path, log=lambda *a: None)
    weights = Path(models.target) / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    said = []
    build_builtin_models(bench, "forget10", tiny, tmp_path, log=said.append)
    assert any("damaged" in s and "training it again" in s for s in said)
    from lethe.models import load_model

    load_model(models.target)


def test_custom_model_code_needs_trust_remote_code(tmp_path):
    from lethe.models import load_model

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "mine", "auto_map": {
        "AutoModelForCausalLM": "modeling_mine.MineForCausalLM"}}))
    with pytest.raises(LetheError, match="trust_remote_code=true"):
        load_model(tmp_path)


# ------------------------------------------------------------------------------------------------
# Resume: a run killed with kill -9 ends with the numbers of an uninterrupted one

METHODS = "methods=[ga, npo]"  # the session's run has these and idk+ap


def test_resume_after_kill_9_gives_the_uninterrupted_numbers(tiny_run, tmp_path, capsys):
    root, code = tiny_run
    assert code == 0
    runs = tmp_path / "runs"
    args = ["run", *TINY, f"cache_dir={root / 'cache'}", f"output={runs}", "name=k", METHODS, "attacks=[]"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LETHE_NO_PROGRESS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from lethe.cli import main; sys.exit(main(sys.argv[1:]))",
                             *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    partial = runs / ".k.partial" / "results.json"
    deadline = time.time() + 600
    try:
        while time.time() < deadline and proc.poll() is None:
            if partial.exists():
                try:
                    names = [m["name"] for m in json.loads(partial.read_text())["models"]]
                except ValueError:
                    names = []
                if "ga" in names:
                    break
            time.sleep(0.2)
        assert proc.poll() is None, "the run ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    kept = [m["name"] for m in json.loads(partial.read_text())["models"]]
    assert "ga" in kept and "npo" not in kept
    # the name is still taken by the unfinished run: a fresh start is refused, with the way out
    code, _, err = run_cli(args, capsys)
    assert code == 2 and "--resume" in one_line(err)
    code, out, _ = run_cli(["run", "--resume", str(runs / "k")], capsys)
    assert code == 0 and "ga: finished before, kept" in out
    assert not (runs / ".k.partial").exists() and not (runs / ".k.lock").exists()
    resumed = json.loads((runs / "k" / "summary.json").read_text())
    whole = json.loads((root / "runs" / "r1" / "summary.json").read_text())
    assert [r["name"] for r in resumed["rows"]] == ["target", "retain model", "ga", "npo"]
    rows = {r["name"]: r for r in whole["rows"]}
    for a in resumed["rows"]:
        assert a["metrics"] == rows[a["name"]]["metrics"], a["name"]
        assert a["intervals"] == rows[a["name"]]["intervals"], a["name"]


def test_resume_refuses_other_settings(tiny_run, tmp_path, capsys):
    root, _ = tiny_run
    code, _, err = run_cli(["run", "--resume", str(root / "runs" / "r1"), "train.lr=0.5"], capsys)
    assert code == 2 and "drop train.lr" in one_line(err)
    code, _, err = run_cli(["run", "--resume", str(tmp_path / "nothing")], capsys)
    assert code == 2 and "no run to resume" in one_line(err)


@pytest.mark.parametrize("override, key", [("tiny_model.hidden_size=30", "tiny_model.hidden_size"),
                                           ("tiny_model.vocab_size=10", "tiny_model.vocab_size"),
                                           ("tiny_model.lr=-1", "tiny_model.lr")])
def test_invalid_tiny_model_values_stop_before_any_work(override, key, tmp_path, capsys):
    code, _, err = run_cli(["run", *TINY, override, f"output={tmp_path / 'runs'}", "name=x", "methods=[ga]",
                            f"cache_dir={tmp_path / 'cache'}"], capsys)
    assert code == 2 and key in one_line(err)
    assert not (tmp_path / "cache").exists() and not (tmp_path / "runs").exists()


def test_non_utf8_config_file_is_one_line(tmp_path, capsys):
    cfg = tmp_path / "run.yaml"
    cfg.write_bytes(b"methods: [ga]\nname: caf\xe9\n")
    code, _, err = run_cli(["run", str(cfg)], capsys)
    assert code == 2 and "not UTF-8" in one_line(err) and str(cfg) in err


class _Stop(Exception):
    pass


@pytest.mark.parametrize("scenario", ["tofu", "continual", "hazardous", "verbatim", "real_world", "multilingual",
                                      "safety"])
def test_a_runs_own_config_yaml_passes_the_checks_again(scenario, tmp_path, monkeypatch):
    """`lethe run --resume` re-reads config.yaml: what a run records (its attacks after the scenario's
    choices, its options in full) must pass the scenario's checks again. Stops before any model work."""
    import dataclasses

    import lethe.scenarios._run as run_mod
    from lethe.config import load_config
    from lethe.pipeline import run

    written = {}

    class Folder:
        resumed, partial = False, tmp_path

        def __init__(self, output, name):
            self.name = name

        def claim(self, *a, **k):
            return self

        def write_text(self, name, text):
            written[name] = text
            raise _Stop

        def discard_if_empty(self, log=print):
            pass

        def release(self):
            pass

    monkeypatch.setattr(run_mod, "RunFolder", Folder)
    with pytest.raises(_Stop):
        run(load_config(None, [f"scenario={scenario}", "name=x", f"output={tmp_path}"]), log=lambda *a: None)
    saved = tmp_path / "config.yaml"
    saved.write_text(written["config.yaml"])
    written.clear()
    with pytest.raises(_Stop):
        run(dataclasses.replace(load_config(saved), resume=True), log=lambda *a: None)
    assert written["config.yaml"] == saved.read_text()  # the same resolved config: resume compares them
