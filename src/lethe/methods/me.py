"""Maximum entropy (ME) on forget answers, with a retain term (ME+GD by default).

Yuan et al. 2025, "A Closer Look at Machine Unlearning for Large Language Models" (ICLR), the ME
objective (reference code: `get_me_loss`): push the next-token distribution on every forget-answer
token towards uniform,

    L_ME = (1/|D_f|) sum_{(x,y)} (1/|y|) sum_t KL( U || p_theta(. | x, y_<t) ),

then L = gamma * L_ME + alpha * L_retain with the paper's gamma = 0.1, alpha = 1 (its ME+GD script).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import LetheError
from ..models import answer_logits
from ..ops import answer_positions, kl_uniform_per_token, masked_mean
from . import register_method
from .retain import with_retain


@dataclass(frozen=True)
class MEConfig:
    gamma: float = 0.1  # weight of the forget (entropy) term: forget_coeff in the paper's scripts
    alpha: float = 1.0  # weight of the retain term
    retain: str = "nll"

    def check(self):
        if self.gamma <= 0:
            raise LetheError(f"me: gamma must be > 0, got {self.gamma}")


@register_method("me", config=MEConfig, paper="Yuan et al. 2025, A Closer Look at Machine Unlearning for LLMs (ME)",
                 space={"gamma": (0.01, 1.0, "log"), "alpha": (0.1, 10.0, "log")},
                 lr=1e-5, epochs=5)
def me_loss(model, batch, ref, cfg: MEConfig):
    logits, labels = answer_logits(model, batch.forget)  # (B, T', V), (B, T')
    kl_u = kl_uniform_per_token(logits[:, :-1])  # (B, T'-1)
    forget = masked_mean(kl_u, answer_positions(labels))  # (B,)
    return with_retain(cfg.gamma * forget, {"forget_kl_uniform": float(forget.detach().mean())}, cfg, model, batch, ref)
