"""Simple negative preference optimisation (SimNPO): NPO without a reference model.

Fan et al. 2024, "Simplicity Prevails: Rethinking Negative Preference Optimization for LLM
Unlearning" (NeurIPS 2025). NPO's reward ``log(pi_theta / pi_ref)`` is replaced by SimPO's
reference-free, length-normalised reward ``(1/|y|) log pi_theta(y|x)`` with a margin delta:

    L_SimNPO = -(2/beta) E_{D_f} [ log sigmoid( -(beta/|y|) log pi_theta(y|x) - beta*delta ) ]
             = -(2/beta) E_{D_f} [ log sigmoid( beta * (NLL_avg(y|x) - delta) ) ],

with NLL_avg the mean NLL of the answer tokens. The margin enters as ``beta*delta`` as in the authors'
code (OPTML-Group/Unlearn-Simple, TOFU/dataloader.py, "simnpo_grad_diff", where it is ``gamma``); the
paper writes it without beta (the same at the default delta = 0). Full objective: L = gamma * L_SimNPO +
alpha * L_retain with their TOFU forget05 settings beta = 2.5, gamma (``npo_coeff``) = 0.1375, alpha = 1
(forget10: beta = 4.5, gamma = 0.125).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch.nn.functional as F

from ..errors import LetheError
from ..models import answer_logits
from ..ops import sequence_logprob
from . import register_method
from .retain import with_retain


@dataclass(frozen=True)
class SimNPOConfig:
    beta: float = 2.5  # inverse temperature of the length-normalised reward (TOFU forget05 setting)
    delta: float = 0.0  # reward margin (the authors' "gamma"): forget until NLL_avg exceeds it
    gamma: float = 0.1375  # weight of the forget term (the authors' npo_coeff)
    alpha: float = 1.0  # weight of the retain term (the authors' grad_diff_coeff)
    retain: str = "nll"

    def check(self):
        if not (math.isfinite(self.beta) and self.beta > 0):
            raise LetheError(f"simnpo: beta must be a finite number > 0, got {self.beta}")
        if not (math.isfinite(self.delta) and self.delta >= 0):
            raise LetheError(f"simnpo: delta (the reward margin) must be a finite number >= 0, got {self.delta}")
        if not (math.isfinite(self.gamma) and self.gamma > 0):
            raise LetheError(f"simnpo: gamma (weight of the forget term) must be a finite number > 0, got {self.gamma}")


@register_method("simnpo", config=SimNPOConfig, lr=1e-5, epochs=10,
                 space={"beta": (0.5, 5.0, "log"), "gamma": (0.05, 1.0, "log"), "alpha": (0.1, 10.0, "log")},
                 paper="Fan et al. 2024, Simplicity Prevails: Rethinking NPO for LLM Unlearning (SimNPO)")
def simnpo_loss(model, batch, ref, cfg: SimNPOConfig):
    lp, n = sequence_logprob(*answer_logits(model, batch.forget))  # (B,) log pi_theta(y|x), (B,) |y|
    # length normalisation: long and short answers get rewards on the same scale (the paper's fix
    # for NPO's bias towards long answers)
    nll_avg = -lp / n.clamp(min=1)  # (B,)
    # bounded: once NLL_avg >> delta the term saturates at 0 and its gradient fades (unlike GA)
    forget = -(2.0 / cfg.beta) * F.logsigmoid(cfg.beta * (nll_avg - cfg.delta))  # (B,)
    return with_retain(cfg.gamma * forget, {"forget_loss": float(forget.detach().mean()),
                                            "forget_nll": float(nll_avg.detach().mean())}, cfg, model, batch, ref)
