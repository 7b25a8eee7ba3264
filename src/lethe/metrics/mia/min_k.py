"""Min-K% Prob attack (Shi et al. 2024, "Detecting Pretraining Data from Large Language Models",
ICLR, Sec. 3): a member has few outlier tokens of very low probability.

    score_i = (1/|K_i|) sum_{t in K_i} log p(x_it | x_i<t)          (higher = member)

where K_i holds the k% lowest-probability tokens of sequence i. Default k = 40%, open-unlearning's
TOFU and MUSE configs (``configs/eval/{tofu,muse}_metrics/mia_min_k*.yaml``: ``k: 0.4``, overriding the 0.2
of ``MinKProbAttack.setup``) and MUSE's PrivLeak attack ("forget_holdout_Min-40%"); the paper's is 20%.

Which tokens: every scored token but the last (the EOS), as open-unlearning's ``tokenwise_logprobs``
(:func:`lethe.metrics.mia._tokens.drop_last`). How many: |K| = max(1, floor(k n)), the reference code's
``int(len * k)`` with open-unlearning's ``max(1, ...)`` (the original averages an empty slice, NaN). A 1e-9
guard keeps float rounding from dropping a token (0.29 * 100 = 28.999999999999996 counts 29).
"""
from __future__ import annotations

import math

import numpy as np

from ._tokens import drop_last, token_arrays

DEFAULT_K = 0.4


def k_count(n: int, k: float) -> int:
    """Number of lowest tokens Min-K% averages for a sequence of n tokens: max(1, floor(k n))."""
    return max(1, math.floor(n * k + 1e-9))


def check_k(k: float) -> float:
    k = float(k)
    if not 0.0 < k <= 1.0:
        raise ValueError(f"Min-K%: k is a fraction of the tokens in (0, 1], got {k} (20% is k=0.2)")
    return k


def lowest_k_mean(values: np.ndarray, k: float) -> float:
    """Mean of the max(1, floor(k n)) smallest of the n ``values``."""
    return float(np.sort(values)[: k_count(values.size, k)].mean())


def min_k_scores(logprobs, k: float = DEFAULT_K, keep_last: bool = False) -> np.ndarray:
    """``logprobs``: N per-token log-prob arrays -> (N,) Min-K% scores, higher = member: minus
    open-unlearning's ``MinKProbAttack.compute_score``, ``-mean(sort(lp)[:max(1, int(len(lp) * k))])``."""
    k = check_k(k)
    lp = drop_last(token_arrays(logprobs, "logprobs"), "logprobs", keep_last)
    return np.asarray([lowest_k_mean(a, k) for a in lp], dtype=np.float64)
