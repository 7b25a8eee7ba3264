"""Gradient difference: ascend on forget answers, descend on retain answers.

Liu et al. 2022 / Maini et al. 2024 (TOFU): L = -NLL(D_f) + alpha * NLL(D_r), GA's loss with the NLL retain term.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import register_method
from .ga import ga_loss


@dataclass(frozen=True)
class GradDiffConfig:
    alpha: float = 1.0  # weight of the retain NLL
    retain: str = "nll"


register_method("grad_diff", config=GradDiffConfig, needs=("retain",),
                space={"alpha": (0.1, 10.0, "log")},
                paper="Liu et al. 2022; Maini et al. 2024, TOFU (gradient difference)", lr=1e-5, epochs=5)(ga_loss)
