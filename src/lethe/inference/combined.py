"""Several causal LMs over one vocabulary read as one model (ULD's logit difference, SISA's ensemble)."""
from __future__ import annotations

import torch
from transformers.modeling_outputs import CausalLMOutputWithPast

from ..errors import LetheError
from ..generation import id_list


class CombinedLM(torch.nn.Module):
    """The next-token logits are a fixed function ``mix`` of the members' logits. ``forward`` takes the
    probes' arguments; ``generate`` is plain greedy decoding (not the members' ``generation_config``), one
    KV cache per member, positions from the attention mask as Hugging Face does. A subclass gives
    ``members()`` (in ``mix``'s order), ``mix(logits)`` ((.., V) tensors -> (.., V)) and ``label`` (its name
    in error messages).
    """

    label = "combined"

    def members(self) -> list:
        raise NotImplementedError

    def mix(self, logits: list[torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    @property
    def config(self):  # what evaluate's attention / precision switches read
        return self.members()[0].config

    @property
    def device(self):
        return next(self.members()[0].parameters()).device

    def set_attn_implementation(self, impl: str) -> None:
        for m in self.members():
            m.set_attn_implementation(impl)

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, logits_to_keep=0, **kwargs):
        if kwargs.pop("past_key_values", None) is not None or kwargs.pop("use_cache", False):
            raise TypeError(f"{type(self).__name__}.forward keeps no KV cache; generate() keeps one per model")
        args = dict(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                    logits_to_keep=logits_to_keep, use_cache=False, **kwargs)
        return CausalLMOutputWithPast(logits=self.mix([m(**args).logits for m in self.members()]))  # (B, T', V)

    @torch.no_grad()
    def generate(self, input_ids, attention_mask=None, max_new_tokens: int = 20, do_sample: bool = False,
                 pad_token_id=None, eos_token_id=None, **kwargs):
        """Prompt + greedy ids (B, T + n), finished rows padded with ``pad_token_id``, until every row has
        produced an EOS or after ``max_new_tokens``."""
        if do_sample or kwargs.get("num_beams", 1) != 1:
            raise LetheError(f"{self.label}: only greedy decoding is implemented (do_sample=False, num_beams=1)")
        unknown = set(kwargs) - {"num_beams", "use_cache"}
        if unknown:
            raise TypeError(f"{type(self).__name__}.generate: unsupported arguments {sorted(unknown)}")
        members = self.members()
        B = input_ids.size(0)
        att = torch.ones_like(input_ids) if attention_mask is None else attention_mask.long()
        eos = id_list(eos_token_id)
        pad = pad_token_id if pad_token_id is not None else (eos[0] if eos else 0)
        eos_t = torch.tensor(eos, dtype=torch.long, device=input_ids.device)
        step_ids, step_pos = input_ids, (att.cumsum(-1) - 1).masked_fill(att == 0, 0)  # (B, T): first real token at 0
        caches = [None] * len(members)
        unfinished = torch.ones(B, dtype=torch.bool, device=input_ids.device)
        new = []
        for _ in range(max_new_tokens):
            outs = [m(input_ids=step_ids, attention_mask=att, position_ids=step_pos, past_key_values=c,
                      use_cache=True, logits_to_keep=1) for m, c in zip(members, caches)]
            caches = [o.past_key_values for o in outs]
            nxt = self.mix([o.logits[:, -1] for o in outs]).argmax(-1)  # (B,)
            nxt = torch.where(unfinished, nxt, torch.full_like(nxt, pad))
            new.append(nxt)
            unfinished &= ~torch.isin(nxt, eos_t)  # no stop ids: never finished
            if not bool(unfinished.any()):
                break
            att = torch.cat([att, att.new_ones(B, 1)], dim=1)  # (B, T + step)
            step_pos = step_pos[:, -1:] + 1  # (B, 1)
            step_ids = nxt[:, None]  # (B, 1)
        return torch.cat([input_ids, torch.stack(new, dim=1)], dim=1) if new else input_ids
