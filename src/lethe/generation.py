"""Where generation stops (:func:`stop_token_ids`, passed to every ``model.generate`` of Lethe: a
chat model's end-of-turn token is often not the tokenizer's EOS; docs/metrics.md, "How answers end"),
and which inputs do not fit the model.
"""
from __future__ import annotations

from .data import special_ids, turn_end_ids

# End-of-turn tokens of common chat formats, looked up when the chat template names none
# (a base model's tokenizer without a template that still has the instruct vocabulary).
KNOWN_TURN_ENDS = ("<|eot_id|>", "<end_of_turn>", "<|end|>", "<|im_end|>")


def id_list(value) -> list[int]:
    """An ``eos_token_id``-style value (None, an int or several) as a list of ids."""
    return [] if value is None else [value] if isinstance(value, int) else [int(v) for v in value]


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
    ids = id_list(getattr(src, "eos_token_id", None)) + id_list(tokenizer.eos_token_id) + end_of_turn_ids(tokenizer)
    return list(dict.fromkeys(ids))


def length_warnings(encoder, splits: dict, positions: int | None, short: int = 2) -> list[str]:
    """One line per split whose inputs do not fit: prompts longer than the model's ``positions``
    (``lethe.models.max_positions(model)``; the model never saw such positions) and answers that
    ``encoder.max_length`` cuts to ``short`` tokens or fewer (scored on next to nothing). Splits
    where everything fits give no line. ``splits``: name -> QA items (``Benchmark.splits``)."""
    lines = []
    for name, items in splits.items():
        lengths = encoder.lengths_many(items)  # (prompt, answer) tokens
        n_long = sum(positions is not None and p > positions for p, _ in lengths)
        kept = [(max(0, min(a, encoder.max_length - p)), a) for p, a in lengths]  # (answer tokens kept, of)
        n_short = sum(k < a and k <= short for k, a in kept)
        parts = [f"{n_long} of {len(items)} prompts exceed the model's {positions} positions"] if n_long else []
        if n_short:
            parts.append(f"{n_short} of {len(items)} answers truncated to <= {short} tokens by "
                         f"max_length {encoder.max_length}")
        if parts:
            lines.append(f"{name}: " + "; ".join(parts))
    return lines
