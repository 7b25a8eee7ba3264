"""ROC AUC of a membership score, shared by every attack.

Convention (all of ``lethe.metrics.mia``): a score is HIGHER for "more likely a member"; the members
(positives) are the forget items, the non-members the never-trained holdout items. Then

    AUC = P(s_member > s_nonmember) + 1/2 P(s_member = s_nonmember)
        = U / (n_member * n_nonmember)

with U the Mann-Whitney statistic of the members (ties count one half): the ``roc_auc_score`` of
open-unlearning's ``mia_auc`` (lower-for-members scores, flipped labels). MUSE reports 1 - AUC
(:func:`lethe.metrics.mia.privleak`).
"""
from __future__ import annotations

import numpy as np


def _scores(x, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D list of scores, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or inf; membership scores must be finite")
    return a


def roc_auc(members, nonmembers) -> float:
    """AUC of ``members`` against ``nonmembers`` scores (higher = member), ties counted half, in
    O((n + m) log m) by binary search in the sorted non-member scores."""
    pos = _scores(members, "member scores")
    neg = np.sort(_scores(nonmembers, "non-member scores"))
    below = np.searchsorted(neg, pos, side="left")  # (n,) non-members strictly below
    at_or_below = np.searchsorted(neg, pos, side="right")  # (n,) ... plus those tied
    u = below.sum() + 0.5 * (at_or_below - below).sum()
    return float(u / (pos.size * neg.size))
