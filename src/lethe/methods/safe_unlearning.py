"""Safe Unlearning: unlearn harmful responses, learn refusals, keep helpful answers.

Zhang et al. 2024, "Safe Unlearning: A Surprisingly Effective and Generalizable Solution to Defend
Against Jailbreak Attacks" (arXiv 2407.02855; later titled "From Theft to Bomb-Making: The Ripple
Effect of Unlearning in Defending Against Jailbreak Attacks"). Three terms, weighted as in the
authors' code (thu-coai/SafeUnlearning, ft_code/trainers.py and run_decoderonly_hf.sh):

    L = gamma * L_h + theta * L_r + alpha * L_g
    L_h = -log sigmoid( -beta * ( mean_t log pi_theta(y_h|x_h) - mean_t log pi_ref(y_h|x_h) ) )
    L_r = NLL(refusal | x_h),    L_g = NLL(helpful answer | x_g)

with gamma = 0.3, theta = 0.5, alpha = 1, beta = 1. The authors call the weight of L_h "alpha" and
give L_g no weight; Lethe keeps its own convention (alpha weighs the retain term, gamma the forget
term, as in ``me``), so options mean the same thing across methods.

L_h is NPO on the harmful responses with length-normalised log-probs (the mean over answer tokens, as
the authors' code; the precomputed reference sums are divided by the same counts) and no 2/beta factor.

Batch parts: ``forget`` = (harmful prompt, harmful response) -> L_h; ``forget_idk`` = (harmful prompt,
refusal) -> L_r; ``retain`` = (benign prompt, helpful answer) -> L_g, Lethe's "nll" retain term (``retain``
can swap it for "kl", "ap" or "none"). On the fictitious-author benchmark Lethe's IDK answers play the
refusals' part and the retain QA pairs the helpful answers'.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F

from ..errors import LetheError
from ..models import answer_logits
from ..ops import sequence_logprob, sequence_nll
from . import register_method
from .retain import with_retain


@dataclass(frozen=True)
class SafeUnlearningConfig:
    beta: float = 1.0  # inverse temperature of the NPO term L_h
    gamma: float = 0.3  # weight of L_h, NPO on the harmful responses (the authors' "alpha")
    theta: float = 0.5  # weight of L_r, the refusal NLL
    alpha: float = 1.0  # weight of L_g, the retain term (helpful answers to benign prompts)
    retain: str = "nll"

    def check(self):
        if self.beta <= 0:
            raise LetheError(f"safe_unlearning: beta must be > 0, got {self.beta}")
        if self.gamma < 0:
            raise LetheError(f"safe_unlearning: gamma (weight of the unlearning term) must be >= 0, got {self.gamma}")
        if self.theta < 0:
            raise LetheError(f"safe_unlearning: theta (weight of the refusal term) must be >= 0, got {self.theta}")


@register_method("safe_unlearning", config=SafeUnlearningConfig, needs_ref="logprobs", needs=("forget_idk",),
                 space={"gamma": (0.1, 1.0, "log"), "theta": (0.1, 1.0, "log"), "alpha": (0.1, 10.0, "log")},
                 family="post-training / safety", lr=2e-5, epochs=5,
                 paper="Zhang et al. 2024, Safe Unlearning (jailbreak defence): NPO + refusal SFT + helpful SFT")
def safe_unlearning_loss(model, batch, ref, cfg: SafeUnlearningConfig):
    f = batch.forget
    lp, n = sequence_logprob(*answer_logits(model, f))  # (B,), (B,) summed log-prob and answer-token count
    lp_ref = ref.sequence_logprob(f, batch.forget_keys, "forget")  # (B,) summed, precomputed
    log_ratio = (lp - lp_ref) / n.clamp(min=1)  # (B,) per token: the authors length-normalise both log-probs
    unlearn = -F.logsigmoid(-cfg.beta * log_ratio)  # (B,) L_h
    refusal = sequence_nll(*answer_logits(model, batch.forget_idk))  # (B,) L_r
    stats = {"forget_loss": float(unlearn.detach().mean()), "log_ratio": float(log_ratio.detach().mean()),
             "refusal_nll": float(refusal.detach().mean())}
    # + alpha * L_g, the retain term (AP, if chosen, at its own beta 0.1)
    return with_retain(cfg.gamma * unlearn + cfg.theta * refusal, stats, cfg, model, batch, ref)
