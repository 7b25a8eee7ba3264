"""Where generation stops, and which inputs do not fit the model.

A chat model ends its turn with its own token (Llama-3 ``<|eot_id|>``, Gemma ``<end_of_turn>``,
Phi-3 ``<|end|>``, ChatML ``<|im_end|>``), often not the tokenizer's EOS. ``generate(eos_token_id=...)``
*replaces* the model's ``generation_config`` stop list, so passing the tokenizer's EOS alone lets such a
model run to ``max_new_tokens`` after its answer (and ROUGE against the reference drops). Every
``model.generate`` call in Lethe passes :func:`stop_token_ids` instead.
"""
from __future__ import annotations

from .data import special_ids, turn_end_ids

# End-of-turn tokens of common chat formats, looked up when the chat template names none
# (a base model's tokenizer without a template that still has the instruct vocabulary).
KNOWN_TURN_ENDS = ("<|eot_id|>", "<end_of_turn>", "<|end|>", "<|im_end|>")


def _as_list(value) -> list[int]:
    if value is None:
        return []
    if isinstance(value, int):
        return [value]
    return [int(v) for v in value]


def end_of_turn_ids(tokenizer) -> list[int]:
    """The special tokens that close an assistant turn: those of :func:`lethe.data.turn_end_ids`;
    when the template gives none besides EOS, the known end-of-turn tokens (:data:`KNOWN_TURN_ENDS`)
    that the tokenizer has as special tokens."""
    special = special_ids(tokenizer)
    found = [i for i in turn_end_ids(tokenizer) if i in special and i != tokenizer.eos_token_id]
    if found:
        return found
    vocab = tokenizer.get_vocab()
    return [vocab[name] for name in KNOWN_TURN_ENDS if name in vocab and vocab[name] in special]


def stop_token_ids(model, tokenizer) -> list[int]:
    """Ids that end a generation: the model's ``generation_config.eos_token_id`` (int or list; the
    config's when the model has no generation config), the tokenizer's EOS and the chat template's
    end-of-turn token, without duplicates, in that order."""
    gen_cfg = getattr(model, "generation_config", None)
    src = gen_cfg if gen_cfg is not None else getattr(model, "config", None)
    ids = _as_list(getattr(src, "eos_token_id", None))
    ids += _as_list(tokenizer.eos_token_id)
    ids += end_of_turn_ids(tokenizer)
    return list(dict.fromkeys(ids))


def length_warnings(encoder, splits: dict, positions: int | None, short: int = 2) -> list[str]:
    """One line per split whose inputs do not fit: prompts longer than the model's ``positions``
    (``lethe.models.max_positions(model)``; the model never saw such positions) and answers that
    ``encoder.max_length`` cuts to ``short`` tokens or fewer (scored on next to nothing). Splits
    where everything fits give no line. ``splits``: name -> QA items (``Benchmark.splits``)."""
    lines = []
    for name, items in splits.items():
        n_long = n_short = 0
        for it in items:
            n_prompt, n_answer = encoder.lengths(it)
            if positions is not None and n_prompt > positions:
                n_long += 1
            kept = max(0, min(n_answer, encoder.max_length - n_prompt))
            if kept < n_answer and kept <= short:
                n_short += 1
        parts = []
        if n_long:
            parts.append(f"{n_long} of {len(items)} prompts exceed the model's {positions} positions")
        if n_short:
            parts.append(f"{n_short} of {len(items)} answers truncated to <= {short} tokens by "
                         f"max_length {encoder.max_length}")
        if parts:
            lines.append(f"{name}: " + "; ".join(parts))
    return lines
