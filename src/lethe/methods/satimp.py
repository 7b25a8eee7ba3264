"""SatImp: gradient ascent reweighted by saturation x importance, token by token.

Yang et al. 2025, "Exploring Criteria of Loss Reweighting to Enhance LLM Unlearning" (ICML),
Sec. 5. Saturation weights (p^beta1, as WGA) spend less effort on already unlikely tokens; importance
weights ((1 - p)^beta2) emphasise tokens the model is unsure of. SatImp multiplies the two (detached):

    L_SatImp = (1/|D_f|) sum_{(x,y)} (1/|y|) sum_t  w_t * log p_theta(y_t | x, y_<t),
    w_t      = sg[p_t]^beta1 * (1 - sg[p_t])^beta2,   p_t = p_theta(y_t | x, y_<t),

minimised, then L = L_SatImp + alpha * L_retain; beta1 = beta2 = 0 is plain GA. Defaults beta1 = 5,
beta2 = 1 (open-unlearning's SatImp) and alpha = 0.1 on an NLL retain term (the authors' "satimp_gd",
tmlr-group/SatImp dataloader/dataloader_sat.py, coeff = 0.1 in config/forget_sat.yaml). The reference
averages tokens over the whole batch; Lethe within each sequence first (DESIGN.md, principle 9).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import LetheError
from ..models import answer_logits
from ..ops import masked_mean, token_logprobs
from . import register_method
from .retain import with_retain


@dataclass(frozen=True)
class SatImpConfig:
    beta1: float = 5.0  # power of the saturation weight p^beta1
    beta2: float = 1.0  # power of the importance weight (1 - p)^beta2
    alpha: float = 0.1  # weight of the retain term (forget : retain = 10 : 1 in the paper)
    retain: str = "nll"

    def check(self):
        for name in ("beta1", "beta2"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise LetheError(f"satimp: {name} (power of a token weight) must be a finite number >= 0, got {value}")


@register_method("satimp", config=SatImpConfig, lr=1e-5, epochs=5,
                 space={"beta1": (1.0, 10.0, "log"), "beta2": (0.5, 2.0, "log"), "alpha": (0.01, 1.0, "log")},
                 paper="Yang et al. 2025, Exploring Criteria of Loss Reweighting to Enhance LLM Unlearning (SatImp)")
def satimp_loss(model, batch, ref, cfg: SatImpConfig):
    logp, mask = token_logprobs(*answer_logits(model, batch.forget))  # (B, T'-1) log p(y_t | x, y_<t) in fp32, mask
    p = logp.detach().exp()  # (B, T'-1) detached: weights rescale gradients, they are not optimised
    w = p.pow(cfg.beta1) * (1.0 - p).pow(cfg.beta2)  # (B, T'-1) saturation x importance
    forget = masked_mean(w * logp, mask)  # (B,) minimising pushes weighted log-probs down
    return with_retain(forget, {"forget_loss": float(forget.detach().mean()),
                                "forget_nll": float(masked_mean(-logp.detach(), mask).mean()),
                                "token_weight": float(masked_mean(w, mask).mean())}, cfg, model, batch, ref)
