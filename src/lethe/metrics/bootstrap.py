"""Bootstrap confidence intervals for every aggregate, from the per-sample values Lethe keeps.

Percentile intervals (Efron & Tibshirani 1993, ch. 13): the (1-c)/2 and (1+c)/2 quantiles of the
statistic over ``n_resamples`` seeded resamples. Items are resampled per split (jointly for a split's
metrics), splits and the two samples of forget quality independently (``docs/metrics.md``).
"""
from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

from ..errors import LetheError
from .semantic import FORGET_EFFICACY_PARTS, REQUIRED_PARTS, UTILITY_PARTS, forget_efficacy, model_utility_semantic
from .tofu import MODEL_UTILITY_KEYS, UTILITY_SPLITS, model_utility


def _quantiles(stats: np.ndarray, confidence: float) -> tuple[float, float]:
    if not 0 < confidence < 1:
        raise LetheError(f"confidence must be in (0, 1), got {confidence}")
    lo, hi = np.quantile(stats, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(lo), float(hi)


def bootstrap_ci(values, statistic: Callable[[np.ndarray], float] = np.mean, n_resamples: int = 1000,
                 confidence: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile interval of ``statistic`` over resamples (with replacement) of ``values``."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        raise LetheError("bootstrap needs at least one per-sample value")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(n_resamples, x.size))  # (R, N)
    stats = x[idx].mean(axis=1) if statistic is np.mean else np.array([statistic(x[i]) for i in idx])  # (R,)
    return _quantiles(stats, confidence)


def bootstrap_splits(per_split: Mapping[str, Mapping[str, np.ndarray]],
                     aggregate: Callable[[dict[str, float]], float], n_resamples: int = 1000,
                     confidence: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Interval of ``aggregate({"<split>_<metric>": mean})`` with items resampled per split;
    ``per_split[split][metric]`` holds one value per item of that split."""
    arrays = {s: {m: np.asarray(v, dtype=np.float64) for m, v in ms.items()} for s, ms in per_split.items()}
    rng = np.random.default_rng(seed)
    columns = {}  # "<split>_<metric>" -> (R,) resampled means; one index matrix per split
    for s, ms in arrays.items():
        lengths = {len(v) for v in ms.values()}
        if len(lengths) != 1 or 0 in lengths:
            raise LetheError(f"bootstrap: split '{s}' needs the same, non-zero number of values for every metric")
        n = lengths.pop()
        idx = rng.integers(0, n, size=(n_resamples, n))  # (R, N_s), shared by the split's metrics
        for m, v in ms.items():
            columns[f"{s}_{m}"] = v[idx].mean(axis=1)
    stats = np.array([aggregate({k: float(c[r]) for k, c in columns.items()}) for r in range(n_resamples)])
    return _quantiles(stats, confidence)


def bootstrap_two_sample(a, b, statistic: Callable[[np.ndarray, np.ndarray], float], n_resamples: int = 1000,
                         confidence: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Interval of a two-sample statistic (e.g. the forget-quality KS p-value), each sample resampled
    independently."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.size == 0 or b.size == 0:
        raise LetheError("bootstrap needs at least one value in each sample")
    rng = np.random.default_rng(seed)
    stats = np.array([statistic(a[rng.integers(0, a.size, a.size)], b[rng.integers(0, b.size, b.size)])
                      for _ in range(n_resamples)])
    return _quantiles(stats, confidence)


def summary_intervals(metrics: Mapping[str, Mapping[str, object]], forget_log_r=None, retain_log_r=None,
                      n_resamples: int = 1000, confidence: float = 0.95,
                      seed: int = 0) -> dict[str, tuple[float, float]]:
    """Intervals of every ``<split>_<metric>`` of ``metrics`` (:class:`~lethe.metrics.MetricResult`) with
    per-sample values, model utility when its nine numbers are there, forget quality given both log R."""
    from scipy.stats import ks_2samp

    out: dict[str, tuple[float, float]] = {}
    for split, ms in metrics.items():
        for name, res in ms.items():
            if len(res.per_sample):
                out[f"{split}_{name}"] = bootstrap_ci(res.per_sample, n_resamples=n_resamples,
                                                      confidence=confidence, seed=seed)
    if all(s in metrics for s in UTILITY_SPLITS):
        per_split = {s: {m: metrics[s][m].per_sample for m in metrics[s] if f"{s}_{m}" in MODEL_UTILITY_KEYS}
                     for s in UTILITY_SPLITS}
        out["model_utility"] = bootstrap_splits(per_split, model_utility, n_resamples, confidence, seed)
    out.update(_semantic_intervals(metrics, n_resamples, confidence, seed))
    if forget_log_r is not None and retain_log_r is not None:
        out["forget_quality"] = bootstrap_two_sample(forget_log_r, retain_log_r,
                                                     lambda x, y: float(ks_2samp(x, y).pvalue),
                                                     n_resamples, confidence, seed)
    return out


def _semantic_intervals(metrics, n_resamples: int, confidence: float, seed: int) -> dict[str, tuple[float, float]]:
    """Forget Efficacy and the semantic model utility (each split's items resampled jointly for its
    measures), when their TOFU parts exist."""
    def parts(split, names):
        ms = metrics.get(split, {})
        return {m: ms[m].per_sample for m in names if m in ms and len(ms[m].per_sample)}

    out = {}
    forget = parts("forget", FORGET_EFFICACY_PARTS)
    if all(m in forget for m in REQUIRED_PARTS):
        out["forget_efficacy"] = bootstrap_splits({"forget": forget}, lambda v: forget_efficacy(v)[0],
                                                  n_resamples, confidence, seed)
    utility = {s: parts(s, UTILITY_PARTS) for s in UTILITY_SPLITS}
    if all(m in utility[s] for s in UTILITY_SPLITS for m in REQUIRED_PARTS):
        out["model_utility_semantic"] = bootstrap_splits(utility, lambda v: model_utility_semantic(v)[0],
                                                         n_resamples, confidence, seed)
    return out
