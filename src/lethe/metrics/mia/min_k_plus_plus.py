"""Min-K%++ attack (Zhang et al. 2025, "Min-K%++: Improved Baseline for Detecting Pre-Training Data
from Large Language Models", ICLR; arXiv 2404.02936, Eq. 3-4): training makes the true token a
local maximum of the likelihood, so normalise each token's log-prob by the next-token distribution:

    z_t = ( log p(x_t | x_<t) - mu_t ) / sigma_t
    mu_t    = E_{z ~ p(.|x_<t)} [ log p(z | x_<t) ]
    sigma_t = sqrt( E_{z ~ p(.|x_<t)} [ (log p(z | x_<t) - mu_t)^2 ] )

    score_i = mean of the k% lowest z_t of sequence i                (higher = member)

with Min-K%'s k rule and default (:func:`lethe.metrics.mia.min_k.k_count`), over every scored token but
the last (the EOS), as open-unlearning's ``tokenwise_vocab_logprobs`` (``keep_last=True`` keeps it); mu
and sigma from :func:`lethe.probes_tokens.token_scores`. sigma is floored at 1e-3 (variance 1e-6,
open-unlearning's clamp): a one-hot next-token distribution has sigma = 0 (the reference code divides by 0).
"""
from __future__ import annotations

import numpy as np

from ._tokens import drop_last, same_lengths, token_arrays
from .min_k import DEFAULT_K, check_k, lowest_k_mean

SIGMA_FLOOR = 1e-3  # = sqrt(1e-6)


def normalized_token_scores(logprobs, mu, sigma) -> list[np.ndarray]:
    """Per-token z_t = (log p(x_t) - mu_t) / max(sigma_t, 1e-3) -> N arrays."""
    lp, m, s = token_arrays(logprobs, "logprobs"), token_arrays(mu, "mu"), token_arrays(sigma, "sigma")
    same_lengths(lp, m, "logprobs", "mu")
    same_lengths(lp, s, "logprobs", "sigma")
    for i, x in enumerate(s):
        if np.any(x < 0):
            raise ValueError(f"sigma[{i}] has a negative value; a standard deviation is >= 0")
    return [(a - b) / np.maximum(c, SIGMA_FLOOR) for a, b, c in zip(lp, m, s)]


def min_k_plus_plus_scores(logprobs, mu, sigma, k: float = DEFAULT_K, keep_last: bool = False) -> np.ndarray:
    """(N,) Min-K%++ scores, higher = member (minus open-unlearning's ``MinKPlusPlusAttack`` score)."""
    k = check_k(k)
    z = drop_last(normalized_token_scores(logprobs, mu, sigma), "logprobs", keep_last)
    return np.asarray([lowest_k_mean(a, k) for a in z], dtype=np.float64)
