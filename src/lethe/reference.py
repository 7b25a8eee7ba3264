"""One reference-model interface, three back-ends (DESIGN.md, principle 2).

- :class:`FrozenReference`: a frozen copy of the model before unlearning;
- :class:`AdapterOffReference`: the same LoRA-wrapped model with its adapter switched off (no copy);
- :class:`PrecomputedReference`: per-sequence log-probs computed once before training, for methods
  that need nothing else (NPO, DPO): no second model sits in memory.
"""
from __future__ import annotations

import contextlib

import torch

from .models import answer_logits, decoder_layers
from .ops import sequence_logprob


class Reference:
    def answer_logits(self, enc) -> tuple[torch.Tensor, torch.Tensor]:
        """Reference logits at the scored positions and the matching labels (see ``models.answer_logits``)."""
        raise NotImplementedError

    def sequence_logprob(self, enc, keys: list[str] | None, kind: str) -> torch.Tensor:  # (B,)
        lp, _ = sequence_logprob(*self.answer_logits(enc))
        return lp

    def hidden_states(self, enc, layer: int) -> torch.Tensor:
        """The reference's hidden states after decoder layer ``layer`` (0-based): (B, T, H)."""
        raise NotImplementedError(f"{type(self).__name__} has no hidden states")


def hidden_states(model, enc, layer: int) -> torch.Tensor:
    """Output of decoder layer ``layer`` (0-based), read by a forward hook on that layer: (B, T, H).

    Not ``output_hidden_states``: Hugging Face gives the last layer's output after the final norm. The layer
    list is ``models.decoder_layers``, the one rule for every architecture.
    """
    box = {}

    def hook(module, args, output):
        box["h"] = output[0] if isinstance(output, tuple) else output

    handle = decoder_layers(model)[1][layer].register_forward_hook(hook)
    try:
        model(input_ids=enc.input_ids, attention_mask=enc.attention_mask, logits_to_keep=1)
    finally:
        handle.remove()
    return box["h"]


class FrozenReference(Reference):
    def __init__(self, model):
        self.model = model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def answer_logits(self, enc):
        return answer_logits(self.model, enc)

    @torch.no_grad()
    def hidden_states(self, enc, layer):
        return hidden_states(self.model, enc, layer)


class AdapterOffReference(Reference):
    """The peft model with ``disable_adapter()``: exactly the base weights, no copy."""

    def __init__(self, peft_model):
        self.model = peft_model

    @torch.no_grad()
    def answer_logits(self, enc):
        with self.model.disable_adapter():
            return answer_logits(self.model, enc)

    @torch.no_grad()
    def hidden_states(self, enc, layer):
        with self.model.disable_adapter():
            return hidden_states(self.model, enc, layer)


class PrecomputedReference(Reference):
    """Per-sequence reference log-probs looked up by (kind, item key)."""

    def __init__(self, table: dict[tuple[str, str], float]):
        self.table = table

    def answer_logits(self, enc):
        raise RuntimeError("this method was set up with precomputed reference log-probs only; it cannot ask for logits")

    def sequence_logprob(self, enc, keys, kind):
        vals = [self.table[(kind, k)] for k in keys]
        return torch.tensor(vals, dtype=torch.float32, device=enc.input_ids.device)


@contextlib.contextmanager
def eval_mode(model):
    was = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was)
