"""Probes: batched model calls whose outputs every metric reads.

A probe runs the model once per split (answer log-probs for the answer, its paraphrase and the wrong
answers; one greedy generation per question). Metrics (``lethe.metrics``) are pure functions of a
:class:`SplitProbes`, so ten metrics on a split cost one scoring pass and one generation pass.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class SplitProbes:
    """Per-item model outputs on one evaluation split (N items, K wrong answers each).

    Log-probs are sums over the answer tokens of log p(token | question, previous answer tokens);
    token counts let metrics normalise per token (TOFU does).
    """

    ids: list[str]
    answer_logprob: np.ndarray  # (N,)
    answer_ntokens: np.ndarray  # (N,)
    paraphrase_logprob: np.ndarray  # (N,)
    paraphrase_ntokens: np.ndarray  # (N,)
    perturbed_logprob: np.ndarray  # (N, K)
    perturbed_ntokens: np.ndarray  # (N, K)
    generations: list[str] = field(default_factory=list)  # (N,) greedy answers
    references: list[str] = field(default_factory=list)  # (N,) ground-truth answers

    def __len__(self) -> int:
        return len(self.ids)
