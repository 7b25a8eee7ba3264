"""Multiple-choice probes: the log-likelihood of every choice of every question, in one batched pass.

Formats (``fmt``): ``"letter"``, lm-evaluation-harness's zero-shot WMDP / MMLU prompt scored on " A",
" B", ... (lm-eval's ``acc``; for real models); ``"choice"``, each choice's own text as the continuation
of the item's cloze ``stem`` or of the question (what a tiny model can answer). Context and continuation
are tokenised separately (BOS first, no EOS), so exactly the continuation's tokens are scored; the
metric (:mod:`lethe.metrics.mcq`) normalises. The prompts in full: docs/hazardous.md.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import LetheError
from .metrics.mcq import NORMALIZATIONS
from .probes import score_sequences

FORMATS = ("choice", "letter")
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass
class MCQProbes:
    """Per-choice outputs on N questions of C choices each (summed log-probs of the continuation tokens)."""

    ids: list[str]
    choice_logprob: np.ndarray  # (N, C)
    choice_ntokens: np.ndarray  # (N, C) continuation tokens
    choice_nchars: np.ndarray  # (N, C) continuation characters (lm-eval's acc_norm length)
    answer: np.ndarray  # (N,) index of the right choice
    normalize: str = "token"  # how mcq_accuracy turns log-probs into scores: "token" | "char" | "none"

    def __len__(self) -> int:
        return len(self.ids)


def header(subject: str) -> str:
    return f"The following are multiple choice questions (with answers) about {subject}.\n\n" if subject else ""


def format_item(item, fmt: str = "choice") -> tuple[str, list[str]]:
    """``(context, continuations)`` of one MCQ item in format ``fmt`` (see the module docstring)."""
    if fmt == "letter":
        if len(item.choices) > len(LETTERS):
            raise LetheError(f"question '{item.id}': {len(item.choices)} choices, the letter format has {len(LETTERS)}")
        options = "".join(f"{LETTERS[j]}. {c}\n" for j, c in enumerate(item.choices))
        return f"{header(item.subject)}{item.question.strip()}\n{options}Answer:", [
            f" {LETTERS[j]}" for j in range(len(item.choices))]
    if fmt == "choice":
        context = item.stem or f"{header(item.subject)}{item.question.strip()}\nAnswer:"
        return context, [f" {c.strip()}" for c in item.choices]
    raise LetheError(f"unknown multiple-choice format '{fmt}'; use one of {', '.join(FORMATS)}")


def mcq_sequences(tokenizer, items, fmt: str = "choice"):
    """One :class:`lethe.data.Sequence` per (item, choice), item-major: ``N * C`` sequences."""
    from .data import Sequence, bos_ids

    seqs = []
    for it in items:
        context, conts = format_item(it, fmt)
        c_ids = bos_ids(tokenizer) + tokenizer(context, add_special_tokens=False)["input_ids"]
        for cont in conts:
            ids = tokenizer(cont, add_special_tokens=False)["input_ids"]
            seqs.append(Sequence(tuple(c_ids + ids), len(c_ids)))
    return seqs


def probe_mcq(model, tokenizer, items, fmt: str = "choice", normalize: str = "token",
              batch_size: int = 64) -> MCQProbes:
    """Score every choice of every item (batched by :func:`lethe.probes.score_sequences`)."""
    if not items:
        raise LetheError("cannot evaluate an empty multiple-choice set")
    if normalize not in NORMALIZATIONS:
        raise LetheError(f"unknown normalisation '{normalize}'; use one of {', '.join(NORMALIZATIONS)}")
    C = len(items[0].choices)
    bad = next((it for it in items if len(it.choices) != C), None)
    if bad is not None:
        raise LetheError(f"question '{bad.id}' has {len(bad.choices)} choices, the first one {C}; score sets with "
                         "the same number of choices")
    seqs = mcq_sequences(tokenizer, items, fmt)
    lp, nt = score_sequences(model, seqs, tokenizer.pad_token_id, batch_size)
    # lm-eval's acc_norm divides by the choice's length in characters, the delimiter space not counted
    nchars = np.array([[len(c.lstrip()) for c in format_item(it, fmt)[1]] for it in items], dtype=np.int64)
    return MCQProbes(ids=[it.id for it in items], choice_logprob=lp.reshape(len(items), C),
                     choice_ntokens=nt.reshape(len(items), C), choice_nchars=nchars,
                     answer=np.array([it.answer for it in items], dtype=np.int64), normalize=normalize)
