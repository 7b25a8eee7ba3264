"""Gradient difference: ascend on forget answers, descend on retain answers.

Liu et al. 2022 / Maini et al. 2024 (TOFU): L = -NLL(D_f) + alpha * NLL(D_r).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..models import answer_logits
from ..ops import sequence_nll
from . import register_method
from .retain import check_retain, retain_term


@dataclass(frozen=True)
class GradDiffConfig:
    alpha: float = 1.0  # weight of the retain NLL
    retain: str = "nll"

    def check(self):
        check_retain(self.retain, self.alpha)


@register_method("grad_diff", config=GradDiffConfig, needs=("retain",),
                 paper="Liu et al. 2022; Maini et al. 2024, TOFU (gradient difference)", lr=1e-5, epochs=5)
def grad_diff_loss(model, batch, ref, cfg: GradDiffConfig):
    f = batch.forget
    logits, labels = answer_logits(model, f)  # (B, T', V), (B, T')
    nll = sequence_nll(logits, labels)  # (B,)
    r, r_mean = retain_term(cfg.retain, model, batch, ref)
    return -nll + cfg.alpha * r, {"forget_nll": float(nll.detach().mean()), "retain_loss": r_mean}
