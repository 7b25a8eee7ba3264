"""Input checks shared by the attacks: probes come from code, but a wrong shape must fail loudly.

Which positions a per-token metric reads (``keep_last``): the last element of each probe array is the
EOS that :meth:`lethe.data.Encoder.qa` / ``Encoder.text`` append. open-unlearning's per-token helpers
(``src/evals/metrics/utils.py``: ``tokenwise_logprobs``, ``tokenwise_vocab_logprobs``) drop the last
*labelled* position (``(labels != IGNORE_INDEX).nonzero()[:-1]``); Min-K%, Min-K%++, the gradient norm,
exact memorisation and extraction strength read them, while LOSS, zlib and the reference attack read
``evaluate_probability``, which keeps every labelled token. ``keep_last=False`` reproduces that;
``keep_last=True`` scores every position (``docs/metrics.md``, "Which tokens").
"""
from __future__ import annotations

import numpy as np


def token_arrays(values, name: str) -> list[np.ndarray]:
    """A list of N non-empty, finite 1-D float64 arrays (one per sequence)."""
    out = []
    for i, v in enumerate(values):
        a = np.asarray(v, dtype=np.float64)
        if a.ndim != 1 or a.size == 0:
            raise ValueError(f"{name}[{i}] has shape {a.shape}; expected a non-empty 1-D array over the sequence's "
                             "scored tokens (a sequence without scored tokens has no score)")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name}[{i}] contains NaN or inf; per-token values must be finite")
        out.append(a)
    if not out:
        raise ValueError(f"{name} is empty; a score over zero sequences is undefined")
    return out


def drop_last(arrays: list[np.ndarray], name: str, keep_last: bool) -> list[np.ndarray]:
    """``arrays`` without each sequence's last scored position (open-unlearning's ``[:-1]``) unless
    ``keep_last``; an empty answer (only the EOS) is an error (open-unlearning scores it 0 or None)."""
    if keep_last:
        return arrays
    for i, a in enumerate(arrays):
        if a.size < 2:
            raise ValueError(f"{name}[{i}] has {a.size} scored token; without its last position (the EOS, dropped as "
                             "open-unlearning does) nothing is left to score: give the item a non-empty answer, or "
                             "pass keep_last=True")
    return [a[:-1] for a in arrays]


def same_lengths(a: list[np.ndarray], b: list[np.ndarray], name_a: str, name_b: str) -> None:
    if len(a) != len(b):
        raise ValueError(f"{name_a} has {len(a)} sequences but {name_b} has {len(b)}; they must match")
    for i, (x, y) in enumerate(zip(a, b)):
        if x.shape != y.shape:
            raise ValueError(f"{name_a}[{i}] has {x.size} tokens but {name_b}[{i}] has {y.size}; "
                             "both must come from the same scoring pass over the same sequences")


def mean_logprob(logprobs, name: str = "logprobs") -> np.ndarray:
    """(N,) mean per-token log-prob = minus the mean answer NLL of each sequence, over every scored
    token, EOS included (open-unlearning's ``evaluate_probability`` ``avg_loss``, negated)."""
    return np.asarray([a.mean() for a in token_arrays(logprobs, name)], dtype=np.float64)
