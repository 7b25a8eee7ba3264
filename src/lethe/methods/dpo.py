"""DPO for unlearning (IdkDPO): prefer an "I don't know" answer to the true answer.

Rafailov et al. 2023, "Direct Preference Optimization", Eq. 7, applied to unlearning by Maini et al.
2024 (TOFU, Sec. 4) with the IDK answer as the preferred response y_w and the true forget answer as
the rejected one y_l; scaled as in the TOFU code of Zhang et al. 2024 (NPO), their IdkDPO baseline:

    L_DPO = -(2/beta) E_{D_f} [ log sigmoid( beta * ( log pi_theta(idk|x) / pi_ref(idk|x)
                                                     - log pi_theta(y|x)   / pi_ref(y|x) ) ) ]

with sequence log-probs summed over answer tokens. The factor 2/beta (NPO's scaling, kept by
open-unlearning's DPO) makes the starting gradient independent of beta; TOFU's own code uses 1 with
beta = 0.1. The reference log-probs are constant: computed once before training. Retain term: "nll"
(IdkDPO + GD, as in the NPO paper and open-unlearning), "kl", "ap" or "none" (TOFU's original).
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
class DPOConfig:
    beta: float = 0.1  # inverse temperature of the implicit reward (DPO Eq. 7)
    alpha: float = 1.0  # weight of the retain term
    retain: str = "nll"

    def check(self):
        if self.beta <= 0:
            raise LetheError(f"dpo: beta must be > 0, got {self.beta}")


@register_method("dpo", config=DPOConfig, needs_ref="logprobs", needs=("forget_idk",),
                 space={"beta": (0.05, 1.0, "log"), "alpha": (0.1, 10.0, "log")},
                 family="post-training / targeted", lr=1e-5, epochs=10,
                 paper="Rafailov et al. 2023, DPO Eq. 7; IdkDPO of TOFU (Maini et al. 2024) and NPO (Zhang et al. 2024)")
def dpo_loss(model, batch, ref, cfg: DPOConfig):
    keys = batch.forget_keys
    win_logits, win_labels = answer_logits(model, batch.forget_idk)  # (B, T', V): the IDK answer, preferred
    lose_logits, lose_labels = answer_logits(model, batch.forget)  # (B, T'', V): the true answer, rejected
    lp_win, _ = sequence_logprob(win_logits, win_labels)  # (B,) log pi_theta(idk|x)
    lp_lose, _ = sequence_logprob(lose_logits, lose_labels)  # (B,) log pi_theta(y|x)
    ratio_win = lp_win - ref.sequence_logprob(batch.forget_idk, keys, "forget_idk")  # (B,)
    ratio_lose = lp_lose - ref.sequence_logprob(batch.forget, keys, "forget")  # (B,)
    forget = -(2.0 / cfg.beta) * F.logsigmoid(cfg.beta * (ratio_win - ratio_lose))  # (B,)
    stats = {"forget_loss": float(forget.detach().mean()), "log_ratio_idk": float(ratio_win.detach().mean()),
             "log_ratio_forget": float(ratio_lose.detach().mean())}
    return with_retain(forget, stats, cfg, model, batch, ref, beta=cfg.beta)
