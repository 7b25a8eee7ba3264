"""KL minimisation: gradient ascent on forget answers + KL to the reference model on retain answers.

Maini et al. 2024 (TOFU), Sec. 4: L = -NLL(D_f) + alpha * (1/|D_r|) sum KL(p_ref(.|x) || p_theta(.|x)),
the KL taken per answer token and averaged: GA's loss with the KL retain term.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import register_method
from .ga import ga_loss


@dataclass(frozen=True)
class KLConfig:
    alpha: float = 1.0
    retain: str = "kl"


register_method("kl", config=KLConfig, needs=("retain",), needs_ref="logits",
                space={"alpha": (0.1, 10.0, "log")},
                paper="Maini et al. 2024, TOFU (KL minimisation)", lr=1e-5, epochs=5)(ga_loss)
