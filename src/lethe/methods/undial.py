"""UNDIAL: unlearning by self-distillation on adjusted logits.

Dong et al. 2025, "UNDIAL: Self-Distillation with Adjusted Logits for Robust Unlearning in Large
Language Models" (NAACL 2025; arXiv 2402.10052). At every answer position t the frozen reference (the
model before unlearning) gives logits z_t; the logit of the true next token y_t is lowered by a fixed
strength gamma, and the model is distilled toward the softmax of the adjusted logits:

    q_t = softmax(z_t - gamma * onehot(y_t))
    L_UNDIAL = mean_t H(q_t, p_theta(.|x, y_<t)) = mean_t -sum_v q_t[v] log p_theta(v|x, y_<t)

The target depends on the reference only, so the loss is an ordinary minimisation with a bounded
optimum (p_theta = q_t), unlike gradient ascent. Cross-entropy and KL(q_t || p_theta) differ by a
constant, the entropy of q_t; Lethe reports the cross-entropy, as the authors' code and open-unlearning.

Lethe averages over the answer tokens of each sequence (the authors' code over every token of a
plain-text sequence; open-unlearning over every position, prompt included). The paper uses no retain
term; ``retain`` can add one, as open-unlearning's UNDIAL does through its GradDiff base (alpha 0 there).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import LetheError
from ..models import answer_logits
from ..ops import answer_positions, masked_mean, shift
from . import register_method
from .retain import with_retain


@dataclass(frozen=True)
class UNDIALConfig:
    # strength of the adjustment: how far the true token's logit is lowered (the authors sweep 3, 10,
    # 30; open-unlearning's UNDIAL.yaml uses 10, where it is called "beta", the original code "di_strength")
    gamma: float = 10.0
    alpha: float = 1.0  # weight of the retain term (when one is chosen)
    retain: str = "none"  # the paper trains on the forget set only

    def check(self):
        if self.gamma < 0:
            raise LetheError(f"undial: gamma must be >= 0 (0 distils the reference unchanged), got {self.gamma}")


def adjusted_target(ref_logits: torch.Tensor, targets: torch.Tensor, gamma: float) -> torch.Tensor:
    """softmax(z - gamma * onehot(y)) in float32: (B, T, V), (B, T) -> (B, T, V); ``targets`` must be
    valid token ids everywhere (fill ignored positions with any id first)."""
    z = ref_logits.float()
    lowered = torch.full(targets.shape + (1,), -gamma, dtype=z.dtype, device=z.device)  # (B, T, 1)
    z = z.scatter_add(-1, targets.unsqueeze(-1), lowered)  # out of place: the reference's logits stay intact
    return F.softmax(z, dim=-1)


@register_method("undial", config=UNDIALConfig, needs_ref="logits",
                 space={"gamma": (1.0, 30.0, "log")},
                 paper="Dong et al. 2025, UNDIAL (NAACL), adjusted-logit self-distillation", lr=1e-4, epochs=10)
def undial_loss(model, batch, ref, cfg: UNDIALConfig):
    f = batch.forget
    logits, labels = answer_logits(model, f)  # (B, T', V), (B, T')
    ref_logits, _ = ref.answer_logits(f)  # (B, T', V): the same cut, it depends on the labels only
    logits, targets = shift(logits, labels)  # (B, T'-1, V), (B, T'-1): position t predicts token t+1
    mask = answer_positions(labels)  # (B, T'-1)
    y = targets.masked_fill(mask == 0, 0)  # any id where nothing is scored: those positions are masked out
    q = adjusted_target(ref_logits[:, :-1], y, cfg.gamma)  # (B, T'-1, V), no gradient: the reference is frozen
    logp = F.log_softmax(logits.float(), dim=-1)  # (B, T'-1, V)
    ce = -(q * logp).sum(-1)  # (B, T'-1) H(q_t, p_theta)
    forget = masked_mean(ce, mask)  # (B,) mean over the answer tokens of each sequence
    with torch.no_grad():
        nll = masked_mean(-logp.gather(-1, y.unsqueeze(-1)).squeeze(-1), mask)  # (B,) the model's NLL of y
        p_true = masked_mean(q.gather(-1, y.unsqueeze(-1)).squeeze(-1), mask)  # (B,) the target's p(y)
    return with_retain(forget, {"forget_loss": float(forget.detach().mean()), "forget_nll": float(nll.mean()),
                                "target_p_true": float(p_true.mean())}, cfg, model, batch, ref)
