"""Gradient ascent (GA): maximise the NLL of the forget answers.

Maini et al. 2024 (TOFU), Sec. 4: L_GA = -(1/|D_f|) sum_{(x,y) in D_f} NLL(y | x).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..models import answer_logits
from ..ops import sequence_nll
from . import register_method
from .retain import check_retain, retain_term


@dataclass(frozen=True)
class GAConfig:
    retain: str = "none"  # plain GA has no retain term
    alpha: float = 1.0

    def check(self):
        check_retain(self.retain, self.alpha)


@register_method("ga", config=GAConfig, paper="Maini et al. 2024, TOFU (gradient ascent baseline)", lr=1e-5, epochs=5)
def ga_loss(model, batch, ref, cfg: GAConfig):
    f = batch.forget
    logits, labels = answer_logits(model, f)  # (B, T', V), (B, T')
    nll = sequence_nll(logits, labels)  # (B,)
    r, r_mean = retain_term(cfg.retain, model, batch, ref)
    return -nll + cfg.alpha * r, {"forget_nll": float(nll.detach().mean()), "retain_loss": r_mean}
