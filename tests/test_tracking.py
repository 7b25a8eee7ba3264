"""Experiment tracking (lethe.tracking): TensorBoard event files read back scalar by scalar, W&B through
accelerate's own tracker class over a stand-in ``wandb`` module, the first process alone writing, the
current tracking of a block, and one-line errors for unknown or missing trackers."""
from __future__ import annotations

import importlib.machinery
import importlib.util
import math
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from lethe import dist
from lethe.errors import LetheError
from lethe.tracking import TRACKERS, Tracking, check_trackers, current, open_tracking, tracking

CONFIG = {"scenario": "tofu", "train": {"lr": 0.001, "epochs": 5.0, "batch_size": 16}, "methods": ["ga", "npo"],
          "model": "", "retain_model": None, "method_options": {}, "save_models": False}


def scalars(folder: Path) -> dict:
    """``{tag: [(step, value), ...]}`` of the event files directly in ``folder``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def stored_hparams(folder: Path) -> dict:
    """The hyperparameters TensorBoard's HPARAMS tab shows (the event file in a subfolder of ``folder``)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    (events,) = folder.glob("*/events.out.tfevents.*")
    acc = EventAccumulator(str(events.parent))
    acc.Reload()
    info = plugin_data_pb2.HParamsPluginData.FromString(
        acc.PluginTagToContent("hparams")["_hparams_/session_start_info"]).session_start_info
    return {k: getattr(v, v.WhichOneof("kind")) for k, v in info.hparams.items()}


@pytest.fixture
def tb(tmp_path):
    pytest.importorskip("tensorboard")
    return tmp_path / "tracking"


def test_tensorboard_steps_final_metrics_and_config_read_back(tb):
    t = open_tracking(["tensorboard"], "lethe", tb, "run1", CONFIG)
    assert t.names == ("tensorboard",) and current() is not t
    with tracking(t):
        assert current() is t
        for step, loss in enumerate([2.5, 2.25, 1.75], start=1):  # float32-exact values: TB stores float32
            current().log({"loss": loss, "lr": 0.001 * step}, step=step, prefix="train/unlearn npo")
        current().log({"eval_step": 3, "forget_quality": np.float32(0.5), "model_utility": torch.tensor(0.25)},
                      step=3, prefix="eval/npo")
        current().log({"forget_quality": 0.125, "rouge": {"forget": 0.375, "retain": 0.75}, "status": "ok",
                       "missing": None, "failed": False, "per_sample": [1.0, 2.0]}, prefix="final/npo (beta=0.2)")
    assert current() is not t  # the block closed it and restored the no-op tracking
    got = scalars(tb)
    lr = [float(np.float32(0.001 * s)) for s in (1, 2, 3)]
    assert got == {
        "train/unlearn npo/loss": [(1, 2.5), (2, 2.25), (3, 1.75)],
        "train/unlearn npo/lr": list(zip((1, 2, 3), lr)),
        "eval/npo/eval_step": [(3, 3.0)],
        "eval/npo/forget_quality": [(3, 0.5)],  # a numpy scalar and a 0-d tensor count as numbers
        "eval/npo/model_utility": [(3, 0.25)],
        # no step: TensorBoard's 0; nested dicts joined with "/"; "(", ")" and "=" become "_"; strings,
        # None, booleans and lists left out
        "final/npo _beta_0.2_/forget_quality": [(0, 0.125)],
        "final/npo _beta_0.2_/rouge/forget": [(0, 0.375)],
        "final/npo _beta_0.2_/rouge/retain": [(0, 0.75)],
    }
    flat = {"scenario": "tofu", "train.lr": 0.001, "train.epochs": 5.0, "train.batch_size": 16,
            "methods": '["ga", "npo"]', "model": "", "retain_model": "null", "method_options": "{}",
            "save_models": False}
    assert stored_hparams(tb) == {**flat, "train.batch_size": 16.0, "save_models": 0.0}  # TB numbers are floats
    (yml,) = tb.glob("*/hparams.yml")
    assert yaml.safe_load(yml.read_text()) == flat


def test_nan_and_infinity_are_logged_as_they_are(tb):
    with tracking(open_tracking("tensorboard", "lethe", tb, "run1", {})):
        current().log({"loss": float("nan"), "grad": float("inf"), "low": -math.inf}, step=7, prefix="train/ga")
        current().log({"note": "text only", "flag": True}, step=8, prefix="train/ga")  # nothing to write
    got = scalars(tb)
    assert sorted(got) == ["train/ga/grad", "train/ga/loss", "train/ga/low"]
    (step, loss), = got["train/ga/loss"]
    assert step == 7 and math.isnan(loss)
    assert got["train/ga/grad"] == [(7, math.inf)] and got["train/ga/low"] == [(7, -math.inf)]


def test_other_processes_write_nothing(tb, monkeypatch):
    monkeypatch.setattr(dist, "is_main", lambda: False)
    t = open_tracking(["tensorboard"], "lethe", tb, "run1", CONFIG)
    assert not t and t.names == ()
    with tracking(t):
        current().log({"loss": 1.0}, step=1, prefix="train/ga")
    assert not tb.exists()


def test_current_outside_inside_and_nested_blocks():
    outside = current()
    assert not outside and outside.names == ()
    outside.log({"loss": 1.0}, step=1)  # nothing open: nothing happens
    outside.close()
    outer, inner = Tracking(), Tracking()
    with tracking(outer):
        assert current() is outer
        with tracking(inner) as t:
            assert t is inner and current() is inner
        assert current() is outer
    assert current() is outside


def test_the_block_closes_its_tracking_on_an_error(tb):
    t = open_tracking(["tensorboard"], "lethe", tb, "run1", {})
    with pytest.raises(RuntimeError), tracking(t):
        current().log({"loss": 1.5}, step=1)
        raise RuntimeError("a method failed")
    assert not t and current() is not t
    assert scalars(tb) == {"loss": [(1, 1.5)]}


def test_unknown_tracker_is_one_line_with_a_suggestion():
    with pytest.raises(LetheError) as e:
        check_trackers(["tensorbord"])
    msg = str(e.value)
    assert "\n" not in msg and "unknown tracker 'tensorbord'" in msg and "did you mean 'tensorboard'?" in msg
    with pytest.raises(LetheError, match="tracker names are strings"):
        check_trackers(["wandb", 3])
    check_trackers([])
    check_trackers(None)


@pytest.mark.parametrize("name", ["wandb", "mlflow", "tensorboard"])
def test_missing_package_names_the_pip_install(name, monkeypatch, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda pkg, *a: None if pkg == name else real(pkg, *a))
    with pytest.raises(LetheError) as e:
        check_trackers(["tensorboard", "wandb", "mlflow"] if name == "tensorboard" else [name])
    assert str(e.value) == f"track_with={name} needs the {name} package: pip install {name}"
    with pytest.raises(LetheError, match=f"pip install {name}"):
        open_tracking([name], "lethe", tmp_path / "tracking", "run1", {})
    assert not (tmp_path / "tracking").exists()
    assert set(TRACKERS) == {"tensorboard", "wandb", "mlflow"}


class FakeRun:
    """What accelerate's WandBTracker calls on a ``wandb`` run."""

    def __init__(self, init):
        self.init, self.logged, self.axes, self.finished = init, [], {}, False

    def log(self, values, step=None):
        self.logged.append((dict(values), step))

    def define_metric(self, name, step_metric=None):
        self.axes[name] = step_metric

    def finish(self):
        self.finished = True


@pytest.fixture
def fake_wandb(monkeypatch):
    """A stand-in ``wandb`` module (init, config.update), found by find_spec through its spec."""
    mod = types.ModuleType("wandb")
    mod.__spec__ = importlib.machinery.ModuleSpec("wandb", None)
    mod.runs, mod.configs = [], []

    def init(**kwargs):
        if kwargs.get("project") == "offline-fails":
            raise ConnectionError("api.wandb.ai unreachable\nretrying")
        mod.runs.append(FakeRun(kwargs))
        return mod.runs[-1]

    mod.init = init
    mod.config = types.SimpleNamespace(update=lambda values, allow_val_change=False: mod.configs.append(values))
    monkeypatch.setitem(sys.modules, "wandb", mod)
    monkeypatch.delenv("WANDB_DIR", raising=False)
    return mod


def test_wandb_gives_each_prefix_its_own_step_axis(fake_wandb, tmp_path):
    with tracking(open_tracking(["wandb"], "unlearning", tmp_path / "tracking", "run1", CONFIG)) as t:
        assert t.names == ("wandb",)
        for step in (1, 2):
            current().log({"loss": 3.0 - step}, step=step, prefix="train/unlearn ga")
        current().log({"loss": 0.5}, step=1, prefix="train/unlearn npo")  # its steps start again at 1
        current().log({"forget_quality": 0.25}, prefix="final/ga")
    (run,) = fake_wandb.runs
    assert run.init == {"project": "unlearning", "name": "run1", "dir": str(tmp_path / "tracking")}
    assert (tmp_path / "tracking").is_dir()
    assert fake_wandb.configs == [{"scenario": "tofu", "train.lr": 0.001, "train.epochs": 5.0,
                                   "train.batch_size": 16, "methods": '["ga", "npo"]', "model": "",
                                   "retain_model": "null", "method_options": "{}", "save_models": False}]
    # W&B's own step only grows: Lethe's steps travel as <prefix>/step, every metric plotted against its prefix's
    assert run.logged == [
        ({"train/unlearn ga/loss": 2.0, "train/unlearn ga/step": 1}, None),
        ({"train/unlearn ga/loss": 1.0, "train/unlearn ga/step": 2}, None),
        ({"train/unlearn npo/loss": 0.5, "train/unlearn npo/step": 1}, None),
        ({"final/ga/forget_quality": 0.25}, None),
    ]
    assert run.axes == {"train/unlearn ga/loss": "train/unlearn ga/step",
                        "train/unlearn npo/loss": "train/unlearn npo/step"}
    assert run.finished


def test_wandb_dir_from_the_environment_and_a_failed_start(fake_wandb, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "elsewhere"))
    open_tracking(["wandb"], "p", tmp_path / "tracking", "run1", {}).close()
    assert fake_wandb.runs[0].init == {"project": "p", "name": "run1"}
    with pytest.raises(LetheError) as e:
        open_tracking(["wandb"], "offline-fails", tmp_path / "tracking", "run1", {})
    assert str(e.value) == ("track_with=wandb: the tracker could not start (ConnectionError: api.wandb.ai "
                            "unreachable); docs/tracking.md says how to configure it")


def test_a_failed_start_closes_the_trackers_already_open(fake_wandb, tb):
    with pytest.raises(LetheError, match="track_with=wandb"):
        open_tracking(["tensorboard", "wandb"], "offline-fails", tb, "run1", {})
    (events,) = tb.glob("events.out.tfevents.*")  # TensorBoard had started: its writer was closed, not left open
    assert scalars(tb) == {}


SCRIPT = """
import sys
from lethe import dist
from lethe.tracking import current, open_tracking, tracking

with tracking(open_tracking(["tensorboard"], "lethe", sys.argv[1], "two", {"seed": 0})) as t:
    current().log({"loss": 1.0 + dist.rank()}, step=1, prefix="train/ga")
    print(f"rank {dist.rank()} of {dist.world()}: {list(t.names)}")
"""


@pytest.mark.slow
def test_torchrun_two_processes_one_writer(tb, tmp_path):
    script = tmp_path / "log.py"
    script.write_text(textwrap.dedent(SCRIPT))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([str(Path(sys.executable).parent / "torchrun"), "--standalone", "--nproc_per_node", "2",
                           str(script), str(tb)], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "rank 0 of 2: ['tensorboard']" in done.stdout and "rank 1 of 2: []" in done.stdout
    assert len(list(tb.glob("events.out.tfevents.*"))) == 1
    assert scalars(tb) == {"train/ga/loss": [(1, 1.0)]}


def test_a_run_logs_each_step_the_evaluations_during_unlearning_and_the_final_metrics(tiny_run, tmp_path):
    """``lethe run track_with=[tensorboard]``: per step the loss and learning rate of every training (the
    unlearning and the relearning attack, named after the method), the evaluations during unlearning, and
    every model's final summary: the numbers results.json holds."""
    import json

    from lethe.cli import main
    from tiny_run import TINY

    pytest.importorskip("tensorboard")
    root, _ = tiny_run
    args = [*TINY, f"cache_dir={root / 'cache'}", f"output={tmp_path}", "name=t", "methods=[ga]", "eval.bootstrap=0",
            "eval.embedding_model=", "attacks=[relearn]", "train.eval_every=2", "track_with=[tensorboard]"]
    assert main(["run", *args]) == 0
    run = tmp_path / "t"
    logged = scalars(run / "tracking")
    summary = json.loads((run / "summary.json").read_text())
    ga = next(r for r in summary["rows"] if r["name"] == "ga")
    steps = ga["train"]["steps"]
    loss = logged["train/ga/unlearn ga/loss"]
    assert [s for s, _ in loss] == list(range(1, steps + 1))
    assert loss[-1][1] == pytest.approx(ga["train"]["final_loss"], rel=1e-6)  # float32 in the event file
    assert [s for s, _ in logged["train/ga/unlearn ga/lr"]] == list(range(1, steps + 1))
    assert len(logged["train/ga/relearn attack/loss"]) == 10  # the relearning attack's steps (relearn.steps)
    checkpoints = ga["train"]["checkpoints"]
    assert [s for s, _ in logged["eval/ga/forget_rouge_l"]] == [c["step"] for c in checkpoints]
    for row in summary["rows"]:  # target, retain model, ga
        for key in ("forget_rouge_l", "forget_truth_ratio", "model_utility"):
            assert logged[f"final/{row['name']}/{key}"][0][1] == pytest.approx(row["metrics"][key], rel=1e-6)
