"""A run split across processes (torchrun, accelerate launch) over gloo on the CPU, one thread each: the
numbers of one process with the same global batch, each process training on its share, sharded
evaluation, exactly one run folder written by the first process."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from lethe.cli import main
from tiny_run import TINY

BIN = Path(sys.executable).parent
# no attacks, no intervals, no embedding model: what is compared is the training and the probes; batch 2 x
# accumulation 2: each of the 2 processes takes one of one process's micro-batches of a step. npo-fsdp: NPO
# with the weights, gradients and optimizer states sharded (one process: the same NPO, nothing to shard)
SPLIT = [*TINY, "eval.bootstrap=0", "eval.embedding_model=", "attacks=[]", "train.batch_size=2",
         "train.grad_accum=2", "methods=[ga, {method: npo, label: npo-fsdp, train: {sharding: fsdp}}]"]


def launch(launcher: list[str], args: list[str]) -> subprocess.CompletedProcess:
    """``launcher -m lethe ARGS`` with one torch thread per process."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LETHE_NO_PROGRESS": "1"}
    return subprocess.run([*launcher, "-m", "lethe", *args], capture_output=True, text=True, env=env, timeout=300)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metrics_and_probes(run: Path) -> list:
    """Every model's metrics and probes as results.json holds them (no timings, no training statistics)."""
    models = json.loads((run / "results.json").read_text())["models"]
    return [{k: v for k, v in m.items() if k not in ("seconds", "train")} for m in models]


def test_two_processes_give_the_numbers_of_one(tiny_run, tmp_path):
    root, code = tiny_run
    assert code == 0
    common = [*SPLIT, f"cache_dir={root / 'cache'}", f"output={tmp_path / 'runs'}", "save_models=true"]
    assert main(["run", *common, "name=one"]) == 0
    done = launch([str(BIN / "torchrun"), "--standalone", "--nproc_per_node", "2"], ["run", *common, "name=two"])
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("run folder:") == 1  # the first process speaks, the other is quiet
    one, two = tmp_path / "runs" / "one", tmp_path / "runs" / "two"
    # exactly one complete run folder, nothing left beside it
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["one", "two"]
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())
    # the unlearned models, saved by the first process: GA's weights are one process's, bit for bit
    from safetensors.torch import load_file

    assert sorted(p.name for p in (two / "models").iterdir()) == ["ga", "npo-fsdp"]
    a, b = (load_file(run / "models" / "ga" / "model.safetensors") for run in (one, two))
    assert a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a)
    # every metric and probe of every model is the one process's, to the last bit, but for the sharded
    # training: its gradient norm for the clipping sums the shards' parts in another order
    (fsdp_one, *exact_one), (fsdp_two, *exact_two) = ([m for m in metrics_and_probes(run) if m["name"] == "npo-fsdp"]
                                                      + [m for m in metrics_and_probes(run) if m["name"] != "npo-fsdp"]
                                                      for run in (one, two))
    assert exact_two == exact_one
    assert fsdp_two["summary"].keys() == fsdp_one["summary"].keys()
    for key, value in fsdp_one["summary"].items():
        assert fsdp_two["summary"][key] == pytest.approx(value, rel=1e-5, abs=1e-9), key
    assert summary_rows(two)[:3] == summary_rows(one)[:3]  # target, retain model, ga
    results = json.loads((two / "results.json").read_text())
    assert results["provenance"]["world_size"] == 2 and "parallel" in results["provenance"]
    assert json.loads((one / "results.json").read_text())["provenance"]["world_size"] == 1
    n_forget = len(results["models"][0]["splits"]["forget"]["probes"]["answer_logprob"])
    for m in results["models"][2:]:  # the methods (train.epochs=1: every forget item once)
        train = m["train"]
        assert train["world_size"] == 2 and train["sequences"] == n_forget
        assert train["rank_sequences"] == [n_forget // 2, n_forget // 2]  # each process half of every step
        assert train["sharding"] == ("fsdp" if m["name"] == "npo-fsdp" else "none")
    for m in json.loads((one / "results.json").read_text())["models"][2:]:
        assert m["train"]["world_size"] == 1 and m["train"]["rank_sequences"] == [n_forget]


def summary_rows(run: Path) -> list:
    rows = json.loads((run / "summary.json").read_text())["rows"]
    return [{k: v for k, v in r.items() if k not in ("seconds", "train")} for r in rows]


@pytest.mark.slow
def test_accelerate_launch_splits_the_evaluation_and_the_attacks(tiny_run, tmp_path):
    """``accelerate launch --multi_gpu --num_processes 2 -m lethe eval`` (accelerate's launcher of several
    processes; on a CPU they join over gloo): the evaluation of one process, with the embedding model and
    bootstrap intervals; the default attacks on the retain model (the relearning attack trains with one
    micro-batch a step, split in two: equal to float rounding)."""
    root, _ = tiny_run
    target = Path(json.loads((root / "runs" / "r1" / "summary.json").read_text())["provenance"]["model"])
    args = [*TINY, f"model={target}", f"retain_model={target.parent / 'retain-forget10'}", f"output={tmp_path}"]
    assert main(["eval", *args, "name=one"]) == 0
    launcher = [str(BIN / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(free_port())]
    done = launch(launcher, ["eval", *args, "name=two"])
    assert done.returncode == 0, done.stderr[-3000:]
    one, two = metrics_and_probes(tmp_path / "one"), metrics_and_probes(tmp_path / "two")
    attacked = [(m.pop("robustness"), n.pop("robustness")) for m, n in zip(one, two)]
    assert two == one
    assert any(a for a, _ in attacked)  # the retain model, the control
    for a, b in attacked:
        assert set(a) == set(b) and all(a[k]["before"] == b[k]["before"] for k in a)
        assert all(b[k]["after"][m] == pytest.approx(v, rel=1e-5) for k in a for m, v in a[k]["after"].items())
    assert json.loads((tmp_path / "two" / "results.json").read_text())["provenance"]["world_size"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "two"]


@pytest.mark.slow
def test_torchrun_finetune_writes_one_folder_of_one_process_models(tmp_path):
    """``torchrun -m lethe finetune`` on a TOFU-layout folder: one out folder, written by the first process,
    models equal to one process's up to float rounding (each step's batch is split in two)."""
    from safetensors.torch import load_file

    from lethe.benchmarks import export_tofu, generate

    export_tofu(generate(n_authors=10, n_holdout=1, n_world=3, n_people=3), tmp_path / "tofu")
    args = [f"benchmark={tmp_path / 'tofu'}", "benchmark_options.items_per_author=8", "tiny_model.hidden_size=16",
            "tiny_model.intermediate_size=32", "tiny_model.num_layers=1", "tiny_model.num_heads=2",
            "tiny_model.vocab_size=300", "tiny_model.base_epochs=1", "tiny_model.finetune_epochs=2"]
    assert main(["finetune", *args, f"out={tmp_path / 'one'}", f"cache_dir={tmp_path / 'c1'}"]) == 0
    done = launch([str(BIN / "torchrun"), "--standalone", "--nproc_per_node", "2"],
                  ["finetune", *args, f"out={tmp_path / 'two'}", f"cache_dir={tmp_path / 'c2'}"])
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("target model:") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c1", "c2", "one", "tofu", "two"]
    for name in ("target", "retain"):
        a, b = (load_file(tmp_path / run / name / "model.safetensors") for run in ("one", "two"))
        assert a.keys() == b.keys()
        for key in a:
            torch_close(a[key], b[key])


def torch_close(a, b) -> None:
    import torch

    torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_torchrun_attack_writes_the_one_process_json(tiny_run, tmp_path):
    """``torchrun -m lethe attack MODEL --out F``: the first process writes F; the evaluation before the attacks
    is one process's to the last bit, the relearned numbers to float rounding (its step is split in two)."""
    root, _ = tiny_run
    target = str(Path(json.loads((root / "runs" / "r1" / "summary.json").read_text())["provenance"]["model"]))
    args = [target, *TINY, "attacks=[relearn, quantize_8bit]", "eval.embedding_model="]
    assert main(["attack", *args, "--out", str(tmp_path / "one.json")]) == 0
    done = launch([str(BIN / "torchrun"), "--standalone", "--nproc_per_node", "2"],
                  ["attack", *args, "--out", str(tmp_path / "two.json")])
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("wrote ") == 1 and sorted(p.name for p in tmp_path.iterdir()) == ["one.json", "two.json"]
    one, two = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("one", "two"))
    assert two["before"] == one["before"] and two["provenance"]["world_size"] == 2
    for name in ("relearn", "quantize_8bit"):
        assert two["robustness"][name]["before"] == one["robustness"][name]["before"]
        for key, value in one["robustness"][name]["after"].items():
            assert two["robustness"][name]["after"][key] == pytest.approx(value, rel=1e-5, abs=1e-9)
