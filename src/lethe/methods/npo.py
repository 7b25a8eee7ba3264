"""Negative preference optimisation (NPO).

Zhang et al. 2024, "Negative Preference Optimization: Towards a Balanced Approach to Machine
Unlearning", Eq. 3:

    L_NPO = -(2/beta) E_{D_f} [ log sigmoid( -beta * log( pi_theta(y|x) / pi_ref(y|x) ) ) ]

with sequence log-probs summed over answer tokens; the constant reference log-probs are computed once
before training. Retain term: "nll" (NPO+RT, the paper's recommended variant), "kl" or "none".
"""
from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F

from ..errors import LetheError
from ..models import answer_logits
from ..ops import sequence_logprob
from . import register_method
from .retain import with_retain


@dataclass(frozen=True)
class NPOConfig:
    beta: float = 0.1  # inverse temperature of the implicit reward (Eq. 3)
    alpha: float = 1.0  # weight of the retain term
    retain: str = "nll"

    def check(self):
        if self.beta <= 0:
            raise LetheError(f"npo: beta must be > 0, got {self.beta}")


@register_method("npo", config=NPOConfig, needs_ref="logprobs",
                 space={"beta": (0.05, 1.0, "log"), "alpha": (0.1, 10.0, "log")},
                 paper="Zhang et al. 2024, NPO, Eq. 3", lr=1e-5, epochs=10)
def npo_loss(model, batch, ref, cfg: NPOConfig):
    f = batch.forget
    lp, _ = sequence_logprob(*answer_logits(model, f))  # (B,) log pi_theta(y|x)
    log_ratio = lp - ref.sequence_logprob(f, batch.forget_keys, "forget")  # (B,) log pi_theta(y|x) / pi_ref(y|x)
    forget = -(2.0 / cfg.beta) * F.logsigmoid(-cfg.beta * log_ratio)  # (B,)
    return with_retain(forget, {"forget_loss": float(forget.detach().mean()),
                                "log_ratio": float(log_ratio.detach().mean())}, cfg, model, batch, ref)
