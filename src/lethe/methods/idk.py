"""IDK fine-tuning: teach "I don't know"-style answers to the forget questions.

Maini et al. 2024 (TOFU), Sec. 4 ("preference optimisation" baseline without the preference term):
L = NLL(idk | x) on D_f + alpha * retain term. ``retain="ap"`` is IDK+AP (Yuan et al. 2025, "A Closer
Look at Machine Unlearning for LLMs"): answer preservation keeps the true retain answers more likely than
a refusal, so the model does not refuse everything. IDK answers: lethe/resources/idk.txt.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import LetheError
from ..models import answer_logits
from ..ops import sequence_nll
from . import register_method
from .retain import with_retain


@dataclass(frozen=True)
class IDKConfig:
    alpha: float = 1.0
    retain: str = "nll"  # "nll" = IDK+GD; "ap" = IDK+AP
    beta: float = 0.1  # temperature of the AP term (used when retain == "ap")

    def check(self):
        if self.beta <= 0:
            raise LetheError(f"idk: beta must be > 0, got {self.beta}")


@register_method("idk", config=IDKConfig, needs=("forget_idk",), family="post-training / targeted",
                 space={"alpha": (0.1, 10.0, "log")},
                 paper="Maini et al. 2024 (TOFU IDK); Yuan et al. 2025 (IDK+AP)", lr=1e-5, epochs=5)
def idk_loss(model, batch, ref, cfg: IDKConfig):
    forget = sequence_nll(*answer_logits(model, batch.forget_idk))  # (B,) NLL of the IDK answer
    return with_retain(forget, {"idk_nll": float(forget.detach().mean())}, cfg, model, batch, ref, beta=cfg.beta)
