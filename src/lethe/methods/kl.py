"""KL minimisation: gradient ascent on forget answers + KL to the reference model on retain answers.

Maini et al. 2024 (TOFU), Sec. 4: L = -NLL(D_f) + alpha * (1/|D_r|) sum KL(p_ref(.|x) || p_theta(.|x)),
the KL taken per answer token and averaged.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..models import answer_logits
from ..ops import sequence_nll
from . import register_method
from .retain import check_retain, retain_term


@dataclass(frozen=True)
class KLConfig:
    alpha: float = 1.0
    retain: str = "kl"

    def check(self):
        check_retain(self.retain, self.alpha)


@register_method("kl", config=KLConfig, needs=("retain",), needs_ref="logits",
                 paper="Maini et al. 2024, TOFU (KL minimisation)", lr=1e-5, epochs=5)
def kl_loss(model, batch, ref, cfg: KLConfig):
    f = batch.forget
    logits, labels = answer_logits(model, f)  # (B, T', V), (B, T')
    nll = sequence_nll(logits, labels)
    r, r_mean = retain_term(cfg.retain, model, batch, ref)
    return -nll + cfg.alpha * r, {"forget_nll": float(nll.detach().mean()), "retain_loss": r_mean}
