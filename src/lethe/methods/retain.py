"""Composable retain terms: methods add ``alpha * retain_term(...)`` to their forget term."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import LetheError
from ..models import answer_logits
from ..ops import answer_positions, kl_per_token, masked_mean, sequence_logprob, sequence_nll

RETAIN_TERMS = ("nll", "kl", "ap", "none")


def check_retain(name: str, alpha: float) -> None:
    """The retain options of every loss config (``LossMethod.make_config`` checks them)."""
    if name not in RETAIN_TERMS:
        raise LetheError(f"unknown retain term '{name}' (choose one of: {', '.join(RETAIN_TERMS)})")
    if alpha < 0:
        raise LetheError(f"retain weight alpha must be >= 0, got {alpha}")


def retain_term(name: str, model, batch, ref, beta: float = 0.1) -> tuple[torch.Tensor, float]:
    """Per-sequence retain loss (B,) and its mean, for one of ``RETAIN_TERMS``."""
    if name == "none":
        return torch.zeros(len(batch.forget), device=batch.forget.input_ids.device), 0.0
    r = batch.retain
    out, labels = answer_logits(model, r)  # (B, T', V), (B, T')
    if name == "nll":
        # gradient descent on retain data ("GD"): mean NLL of the retain answers
        loss = sequence_nll(out, labels)
    elif name == "kl":
        # KL(reference || model) on retain answer tokens (TOFU's "KL" regulariser)
        ref_logits, _ = ref.answer_logits(r)  # the same positions: the cut depends on the labels only
        kl = kl_per_token(ref_logits[:, :-1], out[:, :-1])  # (B, T'-1)
        loss = masked_mean(kl, answer_positions(labels))
    elif name == "ap":
        # Answer preservation (Yuan et al. 2025, AP regulariser, their losses.py `ap_loss`):
        # -(1/beta) log sigmoid(beta (log p(y|x) - log p(idk|x))),
        # keeps the true retain answer more likely than an "I don't know" answer.
        idk_logits, idk_labels = answer_logits(model, batch.retain_idk)
        lp_true, _ = sequence_logprob(out, labels)
        lp_idk, _ = sequence_logprob(idk_logits, idk_labels)
        loss = -F.logsigmoid(beta * (lp_true - lp_idk)) / beta
    else:
        raise LetheError(f"unknown retain term '{name}'")
    return loss, float(loss.detach().mean())


def with_retain(forget: torch.Tensor, stats: dict, cfg, model, batch, ref, beta: float = 0.1):
    """``forget + cfg.alpha * retain term`` per sequence (B,), and ``stats`` with the retain loss added."""
    r, r_mean = retain_term(cfg.retain, model, batch, ref, beta=beta)
    return forget + cfg.alpha * r, {**stats, "retain_loss": r_mean}
