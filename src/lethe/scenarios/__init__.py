"""Scenarios: unlearning settings other than the default TOFU-style job of ``lethe run``.

A scenario is a function ``run(cfg: RunConfig, log) -> Path`` registered by name; ``lethe run
scenario=<name>`` dispatches to it (``scenario=tofu``, the default, is :func:`lethe.pipeline.run`).
Its options live in ``cfg.scenario_options`` (checked by the scenario, one-line errors for unknown
keys). Every scenario writes the same run folder as the default job, through :func:`write_run`:

    config.yaml   the resolved configuration
    results.json  per-model, per-item values (whatever the scenario keeps to re-aggregate)
    summary.json  {"scenario", "benchmark", "forget_split", "rows": [{"name", "kind", "method",
                   "metrics", "intervals", "robustness", "seconds", "config", "train"}], "directions",
                   "columns" (the main table), "tradeoff" (the plot's axes), "curves" (optional,
                   per-round values), "notes", "provenance"}
    report.md / report.html / tradeoff.png

so ``lethe report`` and the HTML page serve every scenario.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..errors import LetheError
from ..registry import Registry

SCENARIOS: Registry[Callable] = Registry("scenario")
DESCRIPTIONS: dict[str, str] = {}


def register_scenario(name: str, description: str) -> Callable[[Callable], Callable]:
    def deco(fn: Callable) -> Callable:
        DESCRIPTIONS[name] = description
        return SCENARIOS.add(name, fn)

    return deco


def get_scenario(name: str) -> Callable:
    _load()
    return SCENARIOS.get(name)


def scenario_names() -> list[str]:
    _load()
    return list(SCENARIOS)


def check_options(name: str, options: dict, known: dict) -> dict:
    """``options`` merged over the defaults ``known``; an unknown key or a value of the wrong type is
    a one-line error naming ``scenario_options.<key>``."""
    import difflib

    out = dict(known)
    for key, value in (options or {}).items():
        if key not in known:
            close = difflib.get_close_matches(str(key), list(known), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise LetheError(f"scenario '{name}': unknown option scenario_options.{key}{hint} "
                             f"(known: {', '.join(sorted(known))})")
        default = known[key]
        if default is not None and not isinstance(value, type(default)) and not (
                isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool)):
            raise LetheError(f"scenario '{name}': scenario_options.{key} must be {type(default).__name__}, got {value!r}")
        out[key] = float(value) if isinstance(default, float) else value
    return out


def report_columns(wanted, known, default) -> list[str]:
    """The main table's columns: ``wanted`` (``report_columns``) checked against the scenario's metric
    keys ``known`` and ``unlearn_seconds`` (one-line error with "did you mean"), ``default`` when empty."""
    import difflib

    names = [*known, "unlearn_seconds"]
    for c in wanted:
        if c not in names:
            close = difflib.get_close_matches(str(c), names, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise LetheError(f"unknown metric '{c}' in report_columns{hint} (known: {', '.join(names)})")
    return list(wanted) or list(default)


def user_attacks(cfg) -> tuple:
    """The attacks the user asked for: ``cfg.attacks`` unless it is the default job's list (a scenario
    that runs no attacks ignores the default, and refuses an explicit request)."""
    from ..config import DEFAULT_ATTACKS

    return () if tuple(cfg.attacks) == tuple(DEFAULT_ATTACKS) else tuple(cfg.attacks)


def weight_changing_methods(cfg, defaults: tuple, scenario: str) -> tuple[list, bool]:
    """``cfg.methods`` resolved (``defaults`` when the run keeps the default job's list; returned flag:
    whether it did, for the notes); a method that does not unlearn a model by training it (inference-time,
    training-time, task vector) is a one-line error."""
    import dataclasses

    from ..config import DEFAULT_METHODS
    from ..methods import get_method
    from ..pipeline import resolve_methods

    defaulted = tuple(cfg.methods) == tuple(DEFAULT_METHODS)
    runs = resolve_methods(dataclasses.replace(cfg, methods=defaults) if defaulted else cfg)
    for mr in runs:
        kind = get_method(mr.method).kind
        if kind in ("inference", "training-time", "procedure"):
            raise LetheError(f"method '{mr.method}' ({kind}) does not unlearn a model step by step; the {scenario} "
                             "scenario needs weight-changing methods (ga, grad_diff, npo, ...)")
    return runs, defaulted


def write_run(out: Path, resolved_config: dict, summary: dict, results: dict) -> Path:
    """Write a complete run folder into ``out`` at once (a temp folder renamed at the end, so a crash
    never leaves half a run)."""
    from ..report import partial_folder, write_run_files

    if "provenance" not in results and "provenance" in summary:  # every results.json says what data it read
        results = {**results, "provenance": summary["provenance"]}
    with partial_folder(out) as tmp:
        write_run_files(tmp, resolved_config, summary, results)
    return Path(out)


_LOADED = False


def _load() -> None:
    """Import the scenario modules (their registry entries follow); lazily, so ``import lethe`` stays light."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    import importlib
    import pkgutil

    # every module of this package is a scenario and calls register_scenario (no list to keep in sync)
    for mod in sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")):
        importlib.import_module(f"{__name__}.{mod}")
