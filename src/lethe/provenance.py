"""What every result records about how it was made (DESIGN principle 7): package versions and git SHA,
time, the data's name, version, spec and content hash, hardware, threads, world size, evaluation
recipe and seeds; and the torch threads a run uses."""
from __future__ import annotations

import dataclasses
import os
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path

from . import __version__, dist
from .builtin import content_hash
from .config import RunConfig
from .evaluation import EVAL_RECIPE
from .models import current_placement


def thread_count(n: int = 0) -> int:
    """The torch threads ``threads=n`` means: ``n``, else OMP_NUM_THREADS, else the usable cores."""
    env = os.environ.get("OMP_NUM_THREADS", "")
    if n <= 0 and env.isdigit() and int(env) > 0:
        return int(env)
    if n <= 0:
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return n


def set_threads(n: int = 0) -> int:
    """Torch threads as :func:`thread_count` says. Returns the count."""
    import torch

    n = thread_count(n)
    torch.set_num_threads(n)
    return n


def git_sha() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True,
                             timeout=5)
        return out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def provenance(cfg: RunConfig, threads: int, data) -> dict:
    """Package versions and git SHA, time, the data's name/version/spec and content hash, hardware,
    world size, evaluation recipe and seeds; the forget split's hash where the data has one."""
    import torch
    import transformers

    fingerprint = data.fingerprint() if hasattr(data, "fingerprint") else content_hash(
        {"name": data.name, "version": data.version, "spec": data.spec})
    out = {
        "lethe_version": __version__, "git_sha": git_sha(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "benchmark": {"name": data.name, "version": data.version, "spec": data.spec, "fingerprint": fingerprint},
        "torch": torch.__version__, "transformers": transformers.__version__,
        "hardware": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                     "cpus": os.cpu_count(), "torch_threads": threads,
                     "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
        "world_size": dist.world(),  # the processes the run was split across; 1: not split
        "placement": dataclasses.asdict(current_placement()),  # where the models ran, in which dtype
        "eval_recipe": EVAL_RECIPE,
        "seeds": {"run": cfg.seed, "train": cfg.train.seed, "tiny_model": cfg.tiny_model.seed},
    }
    if dist.world() > 1:
        out["parallel"] = {"training": "data parallel: each process its share of every step, gradients summed once "
                           "a step", "evaluation": "batches split across the processes, gathered in item order",
                           "files": "written by the first process"}
    if hasattr(data, "split_fingerprint") and getattr(data, "forget_sets", {}).get(cfg.forget_split):
        out["forget_split"] = {k: v for k, v in data.split_fingerprint(cfg.forget_split).items() if k != "ids"}
    return out
