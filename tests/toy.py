"""The toy causal LM of the hand-computed tests: a bigram, whose next-token distribution depends only
on the current token, so every log-prob, loss and gradient can be written down from its table."""
from __future__ import annotations

from types import SimpleNamespace

import torch
from torch import nn


class Bigram(nn.Module):
    """logits = W[current token] (+ b): ``probs`` are the rows p(. | current token) and W = log probs,
    so softmax gives them back. ``bias`` adds a zero bias, a second parameter tensor (a gradient norm's
    mean over tensors and its global L2 norm then differ; one tensor can be frozen alone).

    ``forward`` takes no ``logits_to_keep``: every position is projected, the path of models without it."""

    def __init__(self, probs, dtype=torch.float32, bias: bool = False):
        super().__init__()
        self.W = nn.Parameter(torch.log(torch.tensor(probs)).to(dtype))
        self.b = nn.Parameter(torch.zeros(len(probs), dtype=dtype)) if bias else None

    def forward(self, input_ids, attention_mask=None, labels=None):
        logits = self.W[input_ids]  # (B, T, V)
        return SimpleNamespace(logits=logits if self.b is None else logits + self.b)
