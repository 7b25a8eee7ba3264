"""Gradient-norm attack (Wang et al. 2024, "Pandora's White-Box: Precise Training Data Detection and
Extraction in Large Language Models", arXiv 2402.17012; as in open-unlearning's ``mia_gradnorm``):
training drives the loss of its own examples to a minimum, where the gradient is small.

    g_ij    = || grad_{theta_j} NLL_i(theta) ||_2      for each parameter tensor theta_j
    score_i = - (1/P_i) sum_j g_ij                     (aggregate="mean", the default; higher = member)
    score_i = - sqrt( sum_j g_ij^2 )                   (aggregate="global": the L2 norm of the whole gradient)

NLL_i: the mean NLL over the answer's scored tokens but the EOS, over the P_i parameter tensors the loss
reaches (:func:`lethe.probes_tokens.gradient_norms`). The default is open-unlearning's
(``GradNormAttack.compute_batch_values``: ``torch.stack([p.grad.norm(p=2) for p in params if p.grad is
not None]).mean()``); ``"global"`` does not depend on how the parameters are split into tensors.
"""
from __future__ import annotations

import numpy as np

AGGREGATES = ("mean", "global")


def _per_sequence(grad_norms) -> list[np.ndarray]:
    if grad_norms is None or len(grad_norms) == 0:
        raise ValueError("the gradient-norm attack needs the per-tensor gradient norms of each sequence "
                         "(set TokenProbes.grad_norms = lethe.probes_tokens.gradient_norms(model, seqs, pad_id))")
    out = []
    for i, g in enumerate(grad_norms):
        a = np.asarray(g, dtype=np.float64)
        if a.ndim == 0:  # one norm per sequence, already aggregated (Lethe's results before per-tensor norms)
            a = a.reshape(1)
        if a.ndim != 1 or a.size == 0:
            raise ValueError(f"grad_norms[{i}] has shape {a.shape}; expected the 1-D per-tensor norms of sequence {i}")
        if not np.all(np.isfinite(a)) or np.any(a < 0):
            raise ValueError(f"grad_norms[{i}]: gradient norms must be finite and >= 0")
        out.append(a)
    return out


def gradnorm_values(grad_norms, aggregate: str = "mean") -> np.ndarray:
    """Per-sequence per-tensor L2 norms (or one already aggregated norm) -> (N,) their "mean" or "global" norm."""
    if aggregate not in AGGREGATES:
        raise ValueError(f"gradient-norm attack: aggregate must be one of {', '.join(AGGREGATES)}, got {aggregate!r}")
    per = _per_sequence(grad_norms)
    if aggregate == "mean":
        return np.asarray([a.mean() for a in per], dtype=np.float64)
    return np.asarray([np.sqrt(np.square(a).sum()) for a in per], dtype=np.float64)


def gradnorm_scores(grad_norms, aggregate: str = "mean") -> np.ndarray:
    """(N,) scores = -gradient norm, higher = member (open-unlearning's score is the norm; its AUC
    labels are flipped to match)."""
    return -gradnorm_values(grad_norms, aggregate)
