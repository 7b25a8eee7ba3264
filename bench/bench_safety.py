#!/usr/bin/env python
"""The safety scenario's cost: seconds per phase of one model's safety evaluation, and peak memory.

    .venv/bin/python bench/bench_safety.py                    # built-in target, 2 threads
    .venv/bin/python bench/bench_safety.py --threads 1 --out bench/results/safety.json

On the built-in ``lethe-safety`` target (trained once and cached, as ``lethe safety`` does):
the whole :func:`lethe.scenarios.safety.evaluate_model` with the default attacks (ten jailbreak
transforms + GCG), the seconds of every attack (its prompts' generation and judging; GCG includes the
suffix search), GCG's seconds per step, and the peak RSS of this process. Unlearning throughput is
bench/bench.py's.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--cache-dir", default=".lethe-cache")
    p.add_argument("--out", default="bench/results/safety.json")
    args = p.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))

    from lethe.config import RunConfig
    from lethe.judges import make_judge
    from lethe.models import load_model
    from lethe.provenance import set_threads
    from lethe.scenarios.safety import OPTIONS, attack_names, build_models, evaluate_model, load_sets

    threads = set_threads(args.threads)
    cfg = RunConfig()
    opts = dict(OPTIONS)
    sets = load_sets(opts)
    t0 = time.perf_counter()
    target, _, _ = build_models(sets.builtin, cfg.tiny_model, opts, args.cache_dir, log=lambda *a: None)
    build_seconds = time.perf_counter() - t0
    model, tok = load_model(target)
    attacks = attack_names(opts["attacks"])
    judge = make_judge("answer_match")
    res = evaluate_model(model, tok, sets, judge, attacks, opts, cfg.attack_options, "target", "target", cfg.eval,
                         log=lambda *a: None)
    per_attack = {a: round(info["seconds"], 3) for a, info in res["attacks"].items()}
    gcg = res["attacks"]["gcg"]
    figures = {
        "threads": threads,
        "models_seconds": round(build_seconds, 2),  # ~0 when cached
        "evaluate_seconds": round(res["eval_seconds"], 2),
        "attack_seconds": per_attack,
        "attacks_total_seconds": round(sum(per_attack.values()), 2),
        "gcg_steps": gcg["steps"],
        "gcg_seconds_per_step": round(gcg["seconds"] / max(gcg["steps"], 1), 4),
        "items": {"harmful": sum(len(v) for v in sets.harmful.values()),
                  "benign": sum(len(v) for v in sets.benign.values()),
                  "utility": {k: len(v) for k, v in sets.utility.items()}},
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "harmful_rate": res["summary"]["harmful_rate"],
    }
    print(f"safety evaluation of the built-in target ({threads} threads): {figures['evaluate_seconds']:.1f} s, "
          f"attacks {figures['attacks_total_seconds']:.1f} s of it")
    for a, s in per_attack.items():
        print(f"  {a:<20} {s:6.2f} s")
    print(f"  GCG: {gcg['steps']} steps, {figures['gcg_seconds_per_step'] * 1000:.0f} ms per step")
    print(f"peak RSS {figures['peak_rss_mb']:.0f} MB")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    import torch

    out.write_text(json.dumps({"figures": figures, "provenance": {
        "python": sys.version.split()[0], "torch": torch.__version__, "platform": platform.platform(),
        "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d %H:%M:%S")}}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
