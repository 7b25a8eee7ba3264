"""``lethe run`` and ``lethe attack``: the job of a scenario (the default ``tofu`` or any of
``lethe ls scenarios``), run by the one skeleton of ``lethe.scenarios._run``; and the robustness
attacks on one saved model.

One model's evaluation lives in ``lethe.evaluation``, the built-in models in ``lethe.builtin``.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from .config import RunConfig
from .errors import LetheError


def run(cfg: RunConfig | None = None, log=print, evaluate_only: bool = False) -> Path:
    """Run the scenario of ``cfg`` (default: the tofu job); returns the run folder.

    ``evaluate_only``: evaluate the target (and retain) model without unlearning (``lethe eval``).
    """
    from .scenarios import get_scenario
    from .scenarios._run import run_scenario

    cfg = cfg or RunConfig()
    if evaluate_only and cfg.scenario != "tofu":
        raise LetheError(f"`lethe eval` evaluates the tofu scenario only; run scenario={cfg.scenario} with `lethe run`")
    return run_scenario(get_scenario(cfg.scenario), cfg, log, evaluate_only)


def attack_model(cfg: RunConfig, model_path: str, log=print) -> dict:
    """``lethe attack``: evaluate one saved model on the forget split of ``cfg``'s benchmark, run the
    attacks (``cfg.attacks``, by default :data:`lethe.config.DEFAULT_ATTACKS`), and return ``{"model", "benchmark",
    "forget_split", "before", "robustness"}`` (per attack: before -> after on the items it did not train on)."""
    from .attacks import expand_attacks
    from .benchmarks import load_benchmark
    from .evaluation import evaluate
    from .models import load_model, placed, placement
    from .provenance import provenance, set_threads
    from .scenarios.tofu import ROBUSTNESS_KEYS, attack_and_evaluate

    cfg.check_placement()
    with placed(placement(cfg.device, cfg.model_dtype, cfg.attn_implementation, cfg.eval.sharding)):
        attacks = tuple(expand_attacks(cfg.attacks))
        if not attacks:
            raise LetheError("no attacks to run: give attacks=[relearn, quantize_4bit, paraphrase, jailbreak, ...]")
        cfg = dataclasses.replace(cfg, attacks=attacks)
        cfg.eval.check()
        threads = set_threads(cfg.threads)
        bench = load_benchmark(cfg.benchmark, **cfg.benchmark_options)
        forget = bench.forget(cfg.forget_split)
        model, tok = load_model(model_path, cfg.trust_remote_code)
        eval_cfg = dataclasses.replace(cfg.eval, bootstrap=0, lm_eval_tasks=(), lm_eval_include="")
        log(f"evaluating {model_path} on {len(forget)} forget items of {cfg.forget_split}")
        res = evaluate(model, tok, {"forget": forget}, Path(model_path).name, "model", eval_cfg)
        robustness = attack_and_evaluate(cfg, model, tok, res, bench, log)
        return {"model": str(model_path), "benchmark": {"name": bench.name, "version": bench.version},
                "forget_split": cfg.forget_split, "attacks": list(attacks),
                "before": {k: v for k, v in res.summary.items() if k in ROBUSTNESS_KEYS},
                "robustness": robustness, "provenance": provenance(cfg, threads, bench)}
