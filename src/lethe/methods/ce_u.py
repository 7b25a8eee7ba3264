"""Cross-entropy unlearning (CE-U): cross-entropy against the model's own prediction minus the answer.

Yang 2025, "CE-U: Cross Entropy Unlearning" (arXiv:2503.01224). At every forget-answer position the
target distribution is the model's own (detached) next-token distribution with the true token's
logit set to -inf, i.e. renormalised over every other token:

    q_t(v)  = softmax( sg[z_t] with z_t[y_t] = -inf )(v),  i.e.  q_t(y_t) = 0,
              q_t(v) = p_t(v) / (1 - p_t(y_t))  for v != y_t,
    L_CE-U  = (1/|D_f|) sum_{(x,y)} mean_t H(q_t, p_theta(. | x, y_<t)),
    H(q, p) = -sum_v q(v) log p(v),

with the mean over the trained answer tokens of each sequence. Its gradient on the logits is
p_theta - q_t, an update towards a fixed target that keeps the model's ranking of every other token:
the paper's remedy for GA's gradients vanishing when the model is confident and exploding once the
answer is unlikely. As in the paper's settings (a footnote; open-unlearning's src/trainer/unlearn/ceu.py,
ignore_first_n_answer_tokens = 1) the first answer token of each sequence is not trained. The paper uses
no retain data, so the default retain term is "none"; any retain term composes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import LetheError
from ..models import answer_logits
from ..ops import IGNORE, answer_positions, masked_mean
from . import register_method
from .retain import with_retain


@dataclass(frozen=True)
class CEUConfig:
    ignore_first: int = 1  # answer tokens not trained at the start of each answer (the paper's footnote)
    alpha: float = 1.0  # weight of the retain term
    retain: str = "none"  # the paper trains on forget data only

    def check(self):
        if isinstance(self.ignore_first, bool) or self.ignore_first < 0:
            raise LetheError(f"ce_u: ignore_first (answer tokens left untrained) must be an integer >= 0, "
                             f"got {self.ignore_first!r}")


def _ce_u_target(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """CE-U's target q (B, T, V) float32: softmax of the detached logits (B, T, V) with the logit of
    ``targets`` (B, T) at -inf; from the logits, not as p / (1 - p_y), so exact when p_y rounds to 1."""
    z = logits.detach().float().scatter(-1, targets.unsqueeze(-1), -math.inf)  # (B, T, V)
    return torch.softmax(z, dim=-1)


@register_method("ce_u", config=CEUConfig, paper="Yang 2025, CE-U: Cross Entropy Unlearning (arXiv:2503.01224)",
                 lr=1e-5, epochs=10)
def ce_u_loss(model, batch, ref, cfg: CEUConfig):
    logits, labels = answer_logits(model, batch.forget)  # (B, T', V), (B, T')
    logits, targets = logits[:, :-1], labels[:, 1:]  # position t predicts token t+1 (ops.shift)
    mask = answer_positions(labels)  # (B, T'-1)
    # leave the first `ignore_first` answer tokens of every sequence untrained
    mask = mask * (mask.cumsum(dim=-1) > cfg.ignore_first)
    q = _ce_u_target(logits, targets.masked_fill(targets == IGNORE, 0))  # (B, T'-1, V)
    logp = F.log_softmax(logits.float(), dim=-1)  # (B, T'-1, V) float32 under bf16 autocast too
    # where q is 0 (the true token; tokens a model masks with -inf logits) 0 * log p must be 0, not nan
    ce = -(q * logp.masked_fill(q == 0, 0.0)).sum(-1)  # (B, T'-1) H(q, p_theta)
    forget = masked_mean(ce, mask)  # (B,)
    return with_retain(forget, {"forget_loss": float(forget.detach().mean())}, cfg, model, batch, ref)
