"""Extraction metrics: how much of an answer the model reproduces token by token under greedy
decoding, teacher-forced (position t is predicted from the true prefix x_<t).

Both read the argmax hits of :class:`lethe.probes_tokens.TokenProbes` and equal open-unlearning's
(``src/evals/metrics/memorization.py``) by default: every scored token but the last (the EOS;
``keep_last=True`` keeps it, :func:`lethe.metrics.mia._tokens.drop_last`). Registered at the
``aggregate`` level (they read ``TokenProbes``), each still with one per-sample value per item.
"""
from __future__ import annotations

import numpy as np

from ..probes_tokens import TokenProbes
from . import MetricResult, register_metric
from .mia._tokens import drop_last


def _hits(values, keep_last: bool = True) -> list[np.ndarray]:
    out = []
    for i, v in enumerate(values):
        a = np.asarray(v)
        if a.ndim != 1 or a.size == 0:
            raise ValueError(f"argmax_hit[{i}] has shape {a.shape}; expected a non-empty 1-D array over the answer "
                             "tokens (an empty answer has no memorisation score)")
        if a.dtype != np.bool_:
            if not np.all((a == 0) | (a == 1)):
                raise ValueError(f"argmax_hit[{i}] must be booleans (or 0/1), got values {np.unique(a)[:5]}")
            a = a.astype(bool)
        out.append(a)
    if not out:
        raise ValueError("argmax_hit is empty; a metric over zero items is undefined")
    return drop_last(out, "argmax_hit", keep_last)


def exact_memorization_values(argmax_hit, keep_last: bool = False) -> np.ndarray:
    """(N,) EM_i = (1/|y_i|) sum_t 1[ argmax_z p(z | x_i, y_i<t) = y_it ] over the scored positions
    y_i (the EOS left out unless ``keep_last``). open-unlearning: ``(preds == labels).sum() / len(labels)``."""
    return np.asarray([h.mean() for h in _hits(argmax_hit, keep_last)], dtype=np.float64)


def extraction_strength_values(argmax_hit, keep_last: bool = False, allow_empty_suffix: bool = False) -> np.ndarray:
    """(N,) ES_i = 1 - k*_i / n_i, n_i = |y_i| the scored positions (the EOS left out unless
    ``keep_last``), k*_i = the smallest k such that every argmax prediction from answer position k
    on is correct, searched over k in {0, ..., n_i - 1} (open-unlearning's loop ``for k in range(n): if
    preds[k:] == labels[k:]: break`` never reaches k = n: ES = 1/n_i when even the last token is wrong)
    or over {0, ..., n_i} with ``allow_empty_suffix`` (ES = 0 there).
    """
    out = []
    for h in _hits(argmax_hit, keep_last):
        wrong = np.flatnonzero(~h)  # positions of mispredicted tokens
        k_star = 0 if wrong.size == 0 else int(wrong[-1]) + 1  # first position after the last miss
        if not allow_empty_suffix:
            k_star = min(k_star, h.size - 1)  # open-unlearning's loop stops at k = n - 1
        out.append(1.0 - k_star / h.size)
    return np.asarray(out, dtype=np.float64)


@register_metric(
    "exact_memorization", higher_is_better=True, knowledge=True, level="aggregate",
    description="fraction of answer tokens the greedy (argmax) next-token prediction gets right, "
    "teacher-forced (Tirumala et al. 2022; open-unlearning 'exact_memorization'); reads TokenProbes",
)
def exact_memorization(p: TokenProbes, keep_last: bool = False) -> MetricResult:
    """Exact memorisation (Tirumala et al. 2022, "Memorization Without Overfitting", NeurIPS): mean_i EM_i
    of :func:`exact_memorization_values`."""
    return MetricResult.of(exact_memorization_values(p.argmax_hit, keep_last))


@register_metric(
    "extraction_strength", higher_is_better=True, knowledge=True, level="aggregate",
    description="1 - k*/|y|, k* = the shortest true answer prefix after which greedy (argmax) "
    "predictions reproduce the rest of the answer, teacher-forced (Carlini et al. 2021; open-unlearning "
    "'extraction_strength'); reads TokenProbes",
)
def extraction_strength(p: TokenProbes, keep_last: bool = False, allow_empty_suffix: bool = False) -> MetricResult:
    """Extraction strength (Carlini et al. 2021 notion of extractability; the form of Wang et al.
    2025, "Towards Effective Evaluations and Comparisons for LLM Unlearning Methods", ICLR): mean_i ES_i
    of :func:`extraction_strength_values`, ES_i = 1 - (1/|y_i|) min{ k : every teacher-forced argmax
    prediction at answer positions k, ..., |y_i|-1 is correct }."""
    return MetricResult.of(extraction_strength_values(p.argmax_hit, keep_last, allow_empty_suffix))
