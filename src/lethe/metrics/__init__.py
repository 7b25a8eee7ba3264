"""Metrics: pure functions of probe outputs, registered by name with their direction.

A metric reads a :class:`lethe.probes.SplitProbes` (level ``"split"``: one per-sample value per item)
or other results (level ``"aggregate"``: forget quality, model utility, ...) and returns a
:class:`MetricResult`. ``higher_is_better`` is declared here and nowhere else; a ``knowledge`` metric is
flipped on a forget split by :func:`lethe.metrics.suites.directions`. See ``docs/metrics.md``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..registry import Registry


@dataclass(frozen=True)
class MetricResult:
    value: float  # the aggregate (usually the mean of per_sample)
    per_sample: list[float]  # one per item; [] for set-level statistics such as a KS p-value

    @classmethod
    def of(cls, per_sample) -> MetricResult:
        """The mean of ``per_sample`` (NaN for no items) with the per-sample values as floats."""
        per = np.asarray(per_sample, dtype=np.float64)
        return cls(float(per.mean()) if per.size else float("nan"), per.tolist())


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
    """Register ``fn`` under ``name``; the function itself is returned unchanged."""
    if level not in LEVELS:
        raise ValueError(f"metric '{name}': level must be one of {LEVELS}, got '{level}'")

    def deco(fn: Callable) -> Callable:
        METRICS.add(name, MetricSpec(name, fn, bool(higher_is_better), description, level, bool(knowledge)))
        return fn

    return deco


# Importing the metric modules registers their metrics (must come after register_metric is defined).
# The order is the registry's listing order.
from . import tofu, extraction, mia, semantic, likelihood, mcq, muse, safety  # noqa: E402,F401,I001
from .extraction import exact_memorization, extraction_strength  # noqa: E402
from .mia import mia_auc, privleak  # noqa: E402
from .tofu import (MODEL_UTILITY_KEYS, forget_quality, model_utility, normalized_probability,  # noqa: E402
                   probability, rouge_l_recall, split_metrics, tofu_summary, truth_ratio, truth_ratio_forget,
                   truth_ratio_values)

__all__ = ["METRICS", "MODEL_UTILITY_KEYS", "MetricResult", "MetricSpec", "exact_memorization", "extraction",
           "extraction_strength", "forget_quality", "mia", "mia_auc", "model_utility", "normalized_probability",
           "privleak", "probability", "register_metric", "rouge_l_recall", "split_metrics", "tofu", "tofu_summary",
           "truth_ratio", "truth_ratio_forget", "truth_ratio_values"]
