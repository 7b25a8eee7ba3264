"""Metrics: pure functions of probe outputs, registered by name with their direction.

A metric never loads data and never runs the model; it reads a :class:`lethe.probes.SplitProbes`
(or, for aggregate metrics, other metric results) and returns a :class:`MetricResult` that keeps one
value per item, so forget quality, confidence intervals and re-aggregation need no recomputation.

Two levels:

* ``"split"``: ``fn(probes: SplitProbes) -> MetricResult`` with one per-sample value per item;
* ``"aggregate"``: combines several results or models (forget quality, model utility); its
  signature is documented on the function itself.

Direction (``higher_is_better``) is the metric's own direction, declared here and nowhere else. A
*knowledge* metric (``knowledge=True``) measures how well the model knows an item, its better
direction being "knows it better" (probability, ROUGE-L, accuracy up; NLL down). On a *forget* split
unlearning wants the opposite, so :func:`lethe.metrics.suites.directions` flips it there; the
yardstick is still the retain model's value, not an extreme (see ``docs/metrics.md``). The other
metrics (forget quality, MIA AUCs, fluency, ...) state the goal itself and are never flipped.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..registry import Registry


@dataclass(frozen=True)
class MetricResult:
    value: float  # the aggregate (usually the mean of per_sample)
    per_sample: list[float]  # one per item; [] for set-level statistics such as a KS p-value


@dataclass(frozen=True)
class MetricSpec:
    name: str
    fn: Callable
    higher_is_better: bool
    description: str
    level: str  # "split" | "aggregate"
    knowledge: bool = False  # its better direction = the model knows the item better (flipped on forget splits)


LEVELS = ("split", "aggregate")

METRICS: Registry[MetricSpec] = Registry("metric")


def register_metric(
    name: str, higher_is_better: bool, description: str, level: str = "split", knowledge: bool = False
) -> Callable[[Callable], Callable]:
    """Register ``fn`` under ``name``; the function itself is returned unchanged. ``knowledge``: the
    metric measures how well the model knows an item (its direction flips on a forget split)."""
    if level not in LEVELS:
        raise ValueError(f"metric '{name}': level must be one of {LEVELS}, got '{level}'")

    def deco(fn: Callable) -> Callable:
        METRICS.add(name, MetricSpec(name, fn, bool(higher_is_better), description, level, bool(knowledge)))
        return fn

    return deco


# Importing the suites registers their metrics (must come after register_metric is defined).
from . import tofu  # noqa: E402
from .tofu import (  # noqa: E402
    MODEL_UTILITY_KEYS,
    forget_quality,
    model_utility,
    normalized_probability,
    probability,
    rouge_l_recall,
    split_metrics,
    tofu_summary,
    truth_ratio,
    truth_ratio_forget,
    truth_ratio_values,
)

__all__ = [
    "METRICS",
    "MODEL_UTILITY_KEYS",
    "MetricResult",
    "MetricSpec",
    "forget_quality",
    "model_utility",
    "normalized_probability",
    "probability",
    "register_metric",
    "rouge_l_recall",
    "split_metrics",
    "tofu",
    "tofu_summary",
    "truth_ratio",
    "truth_ratio_forget",
    "truth_ratio_values",
]

# Membership inference (MUSE PrivLeak, six attacks) and extraction metrics; they read per-token probes
# (lethe.probes_tokens.TokenProbes), so they register at the aggregate level.
from . import extraction, mia, semantic  # noqa: E402
from .extraction import exact_memorization, extraction_strength  # noqa: E402
from .mia import mia_auc, privleak  # noqa: E402

__all__ += ["exact_memorization", "extraction", "extraction_strength", "mia", "mia_auc", "privleak"]
from . import likelihood, mcq, muse  # noqa: E402
from . import safety  # noqa: E402,F401  (the safety scenario's rates, registered with their directions)
