"""Pure tensor maths shared by training AND evaluation.

The training NLL and the evaluation "probability" metric both call :func:`token_logprobs`, so a
model scored by Lethe is scored with exactly the quantity it was trained on.

Shapes: B = batch, T = sequence length, V = vocabulary. ``labels`` hold the target token id at
every position whose token is scored (the answer) and ``IGNORE`` (-100) elsewhere, aligned with
``input_ids`` (the shift to next-token prediction happens here, once).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

IGNORE = -100


def shift(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Align position t's logits with token t+1: returns logits (B, T-1, V), labels (B, T-1)."""
    return logits[:, :-1, :], labels[:, 1:]


def token_logprobs(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probability of each scored token.

    Returns ``(logp, mask)``, both (B, T-1): ``logp[b, t] = log p(labels[b, t+1] | prefix)`` where
    scored, 0 elsewhere; ``mask`` is 1.0 where scored.
    """
    logits, labels = shift(logits, labels)
    mask = labels != IGNORE  # (B, T-1)
    safe = labels.masked_fill(~mask, 0)
    # cross_entropy is -log softmax at the target: fused and memory-light (no (B,T,V) log-softmax kept)
    nll = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), safe.reshape(-1), reduction="none")
    logp = -nll.view_as(safe) * mask  # (B, T-1)
    return logp, mask.to(logp.dtype)


def sequence_logprob(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum of answer-token log-probs per sequence and the number of answer tokens: (B,), (B,)."""
    logp, mask = token_logprobs(logits, labels)
    return logp.sum(-1), mask.sum(-1)


def sequence_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-sequence mean negative log-likelihood over answer tokens: (B,) (the loop averages over
    sequences, so the loss does not depend on how a batch is split: ``lethe.loop``)."""
    logp, n = sequence_logprob(logits, labels)
    return -logp / n.clamp(min=1)


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` over positions where ``mask`` is 1, along the last dim: (B, T) -> (B,)."""
    return (values * mask).sum(-1) / mask.sum(-1).clamp(min=1)


def answer_positions(labels: torch.Tensor) -> torch.Tensor:
    """Mask (B, T-1) of positions whose next token is an answer token (where losses apply)."""
    return (labels[:, 1:] != IGNORE).float()


def kl_per_token(logits_p: torch.Tensor, logits_q: torch.Tensor) -> torch.Tensor:
    """KL(p || q) at every position, from logits: (B, T, V) x2 -> (B, T)."""
    logp = F.log_softmax(logits_p.float(), dim=-1)
    logq = F.log_softmax(logits_q.float(), dim=-1)
    return (logp.exp() * (logp - logq)).sum(-1)


def kl_uniform_per_token(logits: torch.Tensor) -> torch.Tensor:
    """KL(U || p) against the uniform distribution U over the vocabulary: (B, T, V) -> (B, T).

    KL(U || p) = sum_v (1/V) (log(1/V) - log p_v) = -log V - mean_v log p_v; it is 0 exactly when p is
    uniform (the maximum-entropy target of ME, Yuan et al. 2025).
    """
    logp = F.log_softmax(logits.float(), dim=-1)
    return -math.log(logits.size(-1)) - logp.mean(-1)
