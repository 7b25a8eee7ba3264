"""``lethe run``: the job of a scenario (the default ``tofu`` or any of ``lethe ls scenarios``).

:func:`run` hands the config to the scenario; the run itself is the one skeleton of
``lethe.scenarios._run``. The other names here are kept for code written against earlier releases:
they live in ``lethe.evaluation`` (one model's TOFU-style evaluation), ``lethe.builtin`` (the built-in
models), ``lethe.scenarios._run`` (methods, provenance) and ``lethe.scenarios.tofu``.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from . import __version__  # noqa: F401
from .builtin import (MODEL_RECIPE, Models, build_builtin_models, builtin_finetune_config,  # noqa: F401
                      builtin_model_root, content_hash, record_training_seconds, recorded_training_seconds)
from .config import RunConfig
from .errors import LetheError
from .evaluation import (EVAL_RECIPE, EVAL_ROLES, MIA_ATTACKS_RUN, MODEL_GROUPS, eval_splits, evaluate,  # noqa: F401
                         extraction, input_length_notes, membership, missing_holdout_note, reference_token_probes)
from .results import SCHEMA_VERSION  # noqa: F401
from .scenarios.tofu import ROBUSTNESS_KEYS, eval_cache_key, prepare_models, published_retain_result  # noqa: F401
from .scenarios._run import (MethodRun, check_columns, git_sha, jsonable, provenance, resolve_methods,  # noqa: F401
                             set_threads)

_hash = content_hash
_git_sha = git_sha
_jsonable = jsonable


def directions() -> dict[str, str]:
    from .scenarios.tofu import directions as tofu_directions

    return tofu_directions()


def check_report_columns(columns, what: str = "report_columns") -> list[str]:
    return check_columns(columns, directions(), what)


def attack_and_evaluate(cfg, model, tok, res, bench, log=print) -> dict:
    from .scenarios.tofu import attack_and_evaluate as tofu_attacks

    return tofu_attacks(cfg, model, tok, res, bench, log)


def run_dir_for(cfg: RunConfig) -> Path:
    """The run folder of a scenario that does not run on the skeleton yet: claimed at once (see
    ``lethe.rundir``); ``scenarios.write_run`` fills it and lets the name go."""
    from .rundir import RunFolder

    folder = RunFolder(cfg.output, cfg.name).claim(cfg.overwrite, False, build=False)
    _CLAIMED[str(folder.final)] = folder
    return folder.final


_CLAIMED: dict = {}


def _cached_eval(path: Path, compute):
    """Evaluation results of an untouched model (target, retain model) are computed once per cache key;
    a damaged cache entry is computed again and replaced."""
    import json

    from .benchmarks.base import atomic_write_text
    from .results import ModelResult

    if path.exists():
        try:
            return ModelResult.from_json(json.loads(path.read_text(encoding="utf-8")), str(path))
        except (ValueError, LetheError):
            pass
    res = compute()
    atomic_write_text(path, json.dumps(res.to_json()))
    return res


def run(cfg: RunConfig | None = None, log=print, evaluate_only: bool = False) -> Path:
    """Run the scenario of ``cfg`` (default: the tofu job); returns the run folder.

    ``evaluate_only``: evaluate the target (and retain) model without unlearning (``lethe eval``).
    """
    from .scenarios import get_scenario
    from .scenarios._run import Scenario, run_scenario

    cfg = cfg or RunConfig()
    scenario = get_scenario(cfg.scenario)
    if isinstance(scenario, Scenario):
        if evaluate_only and cfg.scenario != "tofu":
            raise LetheError(f"`lethe eval` evaluates the tofu scenario only; run scenario={cfg.scenario} with `lethe run`")
        return run_scenario(scenario, cfg, log, evaluate_only)
    if evaluate_only:
        raise LetheError(f"`lethe eval` evaluates the tofu scenario only; run scenario={cfg.scenario} with `lethe run`")
    if cfg.retain_model and cfg.scenario in SCENARIOS_WITHOUT_RETAIN_MODEL:
        raise LetheError(f"scenario '{cfg.scenario}' takes no retain_model: "
                         f"{SCENARIOS_WITHOUT_RETAIN_MODEL[cfg.scenario]}; drop retain_model=")
    try:
        return scenario(cfg, log)
    finally:  # the scenario's write_run filled the folder (or it failed): the name is free again
        for folder in _CLAIMED.values():
            folder.release()
        _CLAIMED.clear()


# scenarios whose gold standard is not a model the user can give: retain_model= would be ignored, so it is refused
SCENARIOS_WITHOUT_RETAIN_MODEL = {
    "continual": "each round's gold standard is a built-in model trained without the requests so far "
                 "(scenario_options.gold_standard), or none on a user's model",
    "multilingual": "it trains its own target and retain model on the built-in benchmark",
    "real_world": "on a user's model there is no gold standard (a model cannot be retrained without its "
                  "pretraining knowledge); the built-in run trains its own",
}


def attack_model(cfg: RunConfig, model_path: str, log=print) -> dict:
    """``lethe attack``: evaluate one saved model on the forget split of ``cfg``'s benchmark, run the
    attacks (``cfg.attacks``, by default :data:`lethe.config.DEFAULT_ATTACKS`), and return ``{"model", "benchmark",
    "forget_split", "before", "robustness"}`` (per attack: before -> after on the items it did not train on)."""
    from .attacks import expand_attacks
    from .benchmarks import load_benchmark
    from .models import load_model

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

