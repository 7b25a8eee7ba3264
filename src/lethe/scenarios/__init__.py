"""Scenarios: the unlearning settings of ``lethe run scenario=<name>`` (``lethe ls scenarios``).

A scenario is a :class:`lethe.scenarios._run.Scenario` registered by name; it declares what differs
and the one run skeleton (``_run.run_scenario``) does the rest. Every scenario writes the same run folder:

    config.yaml   the resolved configuration
    results.json  per-model values (whatever the scenario keeps to re-aggregate), written after every model
    summary.json  {"scenario", "benchmark", "forget_split", "rows": [{"name", "kind", "method",
                   "metrics", "intervals", "robustness", "seconds", "config", "train"}], "directions",
                   "columns" (the main table), "tradeoff" (the plot's axes), "curves" (optional,
                   per-round values), "failed", "notes", "provenance"}
    report.md / report.html / tradeoff.png

so ``lethe report`` and the HTML page serve every scenario. ``docs/architecture.md`` says how to add one.
"""
from __future__ import annotations

import functools
import importlib
import pkgutil
from typing import Callable

from ..registry import Registry

SCENARIOS: Registry = Registry("scenario")
DESCRIPTIONS: dict[str, str] = {}


def register_scenario(name: str, description: str) -> Callable:
    """``register_scenario(name, description)(instance)``: the scenario object ``lethe run`` finds by name."""
    def deco(scenario):
        DESCRIPTIONS[name] = description
        return SCENARIOS.add(name, scenario)

    return deco


def get_scenario(name: str):
    _load()
    return SCENARIOS.get(name)


def scenario_names() -> list[str]:
    _load()
    return list(SCENARIOS)


@functools.cache
def _load() -> None:
    """Import the scenario modules (their registry entries follow); lazily, so ``import lethe`` stays light."""
    # every module of this package registers its scenario (no list to keep in sync)
    for mod in sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")):
        importlib.import_module(f"{__name__}.{mod}")
