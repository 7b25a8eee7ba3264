"""Weighted gradient ascent (WGA): token-wise GA, each token weighted by its own probability.

Wang et al. 2025, "Rethinking LLM Unlearning Objectives: A Gradient Perspective and Go Beyond"
(ICLR). GA's gradient on a token is scaled by 1/p; WGA cancels it with a detached weight p^beta, so
already unlikely (forgotten) tokens stop dominating the update:

    L_WGA = (1/|D_f|) sum_{(x,y)} (1/|y|) sum_t  w_t * log p_theta(y_t | x, y_<t),
    w_t   = sg[ p_theta(y_t | x, y_<t) ]^beta   (sg = stop-gradient),

minimised; beta = 0 is plain GA. Default beta = 1 (the authors' tmlr-group/G-effect, dataloader.py, loss
"wga", and open-unlearning's WGA.yaml, with its NLL retain term, alpha = 1). The reference code averages
tokens over the whole batch; Lethe within each sequence first (DESIGN.md, principle 9).
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
class WGAConfig:
    beta: float = 1.0  # power of the token-probability weight (0 = plain GA)
    alpha: float = 1.0  # weight of the retain term
    retain: str = "nll"

    def check(self):
        if not (math.isfinite(self.beta) and self.beta >= 0):
            raise LetheError(f"wga: beta (power of the token weight) must be a finite number >= 0, got {self.beta}")


@register_method("wga", config=WGAConfig, lr=1e-5, epochs=5,
                 space={"beta": (0.5, 2.0, "log"), "alpha": (0.1, 10.0, "log")},
                 paper="Wang et al. 2025, Rethinking LLM Unlearning Objectives: A Gradient Perspective (WGA)")
def wga_loss(model, batch, ref, cfg: WGAConfig):
    logp, mask = token_logprobs(*answer_logits(model, batch.forget))  # (B, T'-1) log p(y_t | x, y_<t) in fp32, mask
    # detached: the weight rescales each token's GA gradient, it is not itself optimised
    w = logp.detach().exp().pow(cfg.beta)  # (B, T'-1)
    forget = masked_mean(w * logp, mask)  # (B,) minimising pushes weighted log-probs down
    return with_retain(forget, {"forget_loss": float(forget.detach().mean()),
                                "forget_nll": float(masked_mean(-logp.detach(), mask).mean()),
                                "token_weight": float(masked_mean(w, mask).mean())}, cfg, model, batch, ref)
