"""Gradient ascent (GA): maximise the NLL of the forget answers.

Maini et al. 2024 (TOFU), Sec. 4: L_GA = -(1/|D_f|) sum_{(x,y) in D_f} NLL(y | x).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..models import answer_logits
from ..ops import sequence_nll
from . import register_method
from .retain import with_retain


@dataclass(frozen=True)
class GAConfig:
    retain: str = "none"  # plain GA has no retain term
    alpha: float = 1.0


@register_method("ga", config=GAConfig, paper="Maini et al. 2024, TOFU (gradient ascent baseline)", lr=1e-5, epochs=5)
def ga_loss(model, batch, ref, cfg):
    """-NLL of the forget answers + alpha * the config's retain term (GA, grad_diff and kl differ only there)."""
    nll = sequence_nll(*answer_logits(model, batch.forget))  # (B,)
    return with_retain(-nll, {"forget_nll": float(nll.detach().mean())}, cfg, model, batch, ref)
