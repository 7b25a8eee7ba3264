"""Prompt formatting, answer masks, typed batches and collation. Question and answer are tokenised
separately (no BPE merge crosses the boundary: the answer mask is exact); only answer tokens are scored,
ending as the chat template ends a turn (``turn_end_ids``). Training batches are right-padded,
generation prompts left-padded."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .ops import IGNORE

FALLBACK_PROMPT = "Question: {question}\nAnswer:"


def prompt_text(tokenizer, question: str) -> str:
    """The text the model sees before its answer: the tokenizer's chat template when it has one."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True
        )
    return FALLBACK_PROMPT.format(question=question)


def bos_ids(tokenizer) -> list[int]:
    """``[BOS]``, or ``[]`` for a tokenizer without one."""
    return [] if tokenizer.bos_token_id is None else [tokenizer.bos_token_id]


def prompt_ids(tokenizer, question: str) -> list[int]:
    ids = tokenizer(prompt_text(tokenizer, question), add_special_tokens=False)["input_ids"]
    bos = bos_ids(tokenizer)  # a chat template writes its own BOS; the plain fallback needs the tokenizer's
    return ids if ids[:1] == bos else bos + ids


# Stands in for an assistant reply when the chat template is rendered to see what follows a reply:
# one plain word, so no template's ``| trim`` or capitalisation can alter it.
_REPLY_MARKER = "LetheReplyMarker7"


def turn_end_ids(tokenizer) -> list[int]:
    """The ids that end an assistant reply: what the chat template writes after the reply, up to and
    including its first special token (Llama-3 ``<|eot_id|>``, Gemma ``<end_of_turn>``, ...); ``[eos]``
    without a chat template, or when the template writes no special token after a reply. What follows
    that token (a newline, Phi-3's closing EOS) is never generated, so it is not scored either (unlike
    open-unlearning's ``preprocess_chat_instance``): see docs/metrics.md, "How answers end"."""
    eos = [] if tokenizer.eos_token_id is None else [tokenizer.eos_token_id]
    if not getattr(tokenizer, "chat_template", None):
        return eos
    from jinja2 import TemplateError

    try:
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": "Q"}, {"role": "assistant", "content": _REPLY_MARKER}],
            tokenize=False, add_generation_prompt=False)
    except (TemplateError, ValueError, TypeError, KeyError, IndexError):
        return eos  # a template that cannot render a reply (e.g. one written for prompts only)
    if not isinstance(text, str) or _REPLY_MARKER not in text:
        return eos  # a template that drops assistant messages: nothing to learn from it
    after = text[text.rindex(_REPLY_MARKER) + len(_REPLY_MARKER):]
    ids = tokenizer(after, add_special_tokens=False)["input_ids"] if after else []
    special = special_ids(tokenizer)
    ends = [i for i, tok_id in enumerate(ids) if tok_id in special]
    return list(ids[: ends[0] + 1]) if ends else eos


def special_ids(tokenizer) -> set[int]:
    """Ids of the tokenizer's special tokens: BOS/EOS/... and every added token marked special
    (``<|eot_id|>`` and kin are added tokens, not always listed in ``all_special_ids``)."""
    ids = set(tokenizer.all_special_ids)
    decoder = getattr(tokenizer, "added_tokens_decoder", None) or {}
    ids.update(i for i, t in decoder.items() if getattr(t, "special", False))
    return ids


def answer_text(prompt: str, answer: str) -> str:
    """The text an answer is tokenised from: a new word after the prompt, so it gets its leading space
    unless the prompt ends in one."""
    return answer if (not prompt or prompt[-1].isspace()) else " " + answer


def answer_ids(tokenizer, prompt: str, answer: str, end: list[int] | None = None) -> list[int]:
    """The answer's ids, ended as the chat template ends a reply (``end``, by default
    :func:`turn_end_ids`)."""
    ids = tokenizer(answer_text(prompt, answer), add_special_tokens=False)["input_ids"]
    return ids + list(turn_end_ids(tokenizer) if end is None else end)


@dataclass(frozen=True)
class Sequence:
    """One tokenised example: ``ids`` with the first ``n_prompt`` tokens unscored."""

    ids: tuple[int, ...]
    n_prompt: int


class Encoder:
    """Tokenises questions, answers and plain text, caching prompts (many answers share one)."""

    def __init__(self, tokenizer, max_length: int = 512):
        self.tokenizer = tokenizer
        self.max_length = max_length
        self._prompts: dict[str, tuple[str, list[int]]] = {}
        self._answers: dict[tuple[str, str], list[int]] = {}  # (question, answer) -> answer ids + turn end
        self.turn_end = turn_end_ids(tokenizer)  # what every answer ends with

    def prompt(self, question: str) -> list[int]:
        return self._prompt(question)[1]

    def rewrite(self, question: str) -> str:
        """The text the chat template receives in place of ``question`` (a prompt method's prefix + it)."""
        return question

    def _prompt(self, question: str) -> tuple[str, list[int]]:
        if question not in self._prompts:  # cached per original question; the template is rendered once
            self._prompt_many([question])
        return self._prompts[question]

    def _prompt_many(self, questions) -> None:
        """Cache the prompts of ``questions`` (their ids from one batched tokenizer call, the same as one by one)."""
        todo = [q for q in dict.fromkeys(questions) if q not in self._prompts]
        if not todo:
            return
        texts = [prompt_text(self.tokenizer, self.rewrite(q)) for q in todo]
        bos = bos_ids(self.tokenizer)  # a chat template writes its own BOS; the plain fallback needs the tokenizer's
        for q, text, ids in zip(todo, texts, self.tokenizer(texts, add_special_tokens=False)["input_ids"]):
            ids = list(ids)
            self._prompts[q] = (text, ids if ids[:1] == bos else bos + ids)

    def qa(self, question: str, answer: str) -> Sequence:
        return self._sequence(*self.parts(question, answer))

    def _sequence(self, p: list[int], a: list[int]) -> Sequence:
        ids = (p + a)[: self.max_length]
        return Sequence(tuple(ids), min(len(p), len(ids) - 1))

    def qa_many(self, pairs) -> list[Sequence]:
        """``[self.qa(q, a) for q, a in pairs]``, the answers tokenised in one batched tokenizer call (the
        same ids as one by one) and each distinct pair encoded once per encoder: evaluation scores the same
        forget answers for the TOFU suite and for membership inference."""
        return [self._sequence(p, a) for p, a in self.parts_many(pairs)]

    def parts_many(self, pairs) -> list[tuple[list[int], list[int]]]:
        """``[self.parts(q, a) for q, a in pairs]`` (see :meth:`qa_many`)."""
        pairs = list(pairs)
        cache = self._answers
        self._prompt_many(q for q, _ in pairs)
        todo = list(dict.fromkeys(pair for pair in pairs if pair not in cache))
        if todo:
            texts = [answer_text(self._prompt(q)[0], a) for q, a in todo]
            ids = self.tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []
            cache.update((pair, list(x) + self.turn_end) for pair, x in zip(todo, ids))
        return [(self._prompt(q)[1], list(cache[(q, a)])) for q, a in pairs]

    def parts(self, question: str, answer: str) -> tuple[list[int], list[int]]:
        """(prompt ids, answer ids) of a Q&A pair before ``max_length`` cuts them."""
        return self.parts_many([(question, answer)])[0]

    def item(self, item) -> Sequence:
        """A Q&A item as (prompt, scored answer); an item without a question is plain text (a document
        of a verbatim-forgetting corpus, MUSE-style), every token of it scored."""
        return self.qa(item.question, item.answer) if item.question else self.text(item.answer)

    def text(self, text: str) -> Sequence:
        """Plain text (pretraining sentences): every token after BOS is scored. A document is no chat
        turn: it ends with the tokenizer's EOS whatever the chat template."""
        p, a = self.text_parts(text)
        return Sequence(tuple((p + a)[: self.max_length]), len(p))

    def text_parts(self, text: str) -> tuple[list[int], list[int]]:
        """([BOS] or [], the text's ids + EOS) before ``max_length`` cuts them."""
        tok = self.tokenizer
        eos = [] if tok.eos_token_id is None else [tok.eos_token_id]
        return bos_ids(tok), tok(text, add_special_tokens=False)["input_ids"] + eos

    def lengths(self, item) -> tuple[int, int]:
        """(prompt tokens, answer tokens) of an item as :meth:`item` encodes it, before truncation."""
        return self.lengths_many([item])[0]

    def lengths_many(self, items) -> list[tuple[int, int]]:
        """``[self.lengths(it) for it in items]``, the Q&A items' answers tokenised in one call."""
        items = list(items)
        qa = iter(self.parts_many([(it.question, it.answer) for it in items if it.question]))
        parts = [next(qa) if it.question else self.text_parts(it.answer) for it in items]
        return [(len(p), len(a)) for p, a in parts]


@dataclass
class Encoded:
    """A padded batch: input_ids, attention_mask and labels are (B, T)."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor

    def to(self, device) -> "Encoded":
        return Encoded(self.input_ids.to(device), self.attention_mask.to(device), self.labels.to(device))

    def __len__(self) -> int:
        return self.input_ids.size(0)


def collate(seqs: list[Sequence], pad_id: int, side: str = "right") -> Encoded:
    """Pad to the longest sequence; labels are IGNORE on the prompt and the padding."""
    T = max(len(s.ids) for s in seqs)
    ids = torch.full((len(seqs), T), pad_id, dtype=torch.long)
    att = torch.zeros((len(seqs), T), dtype=torch.long)
    lab = torch.full((len(seqs), T), IGNORE, dtype=torch.long)
    for i, s in enumerate(seqs):
        n = len(s.ids)
        sl = slice(0, n) if side == "right" else slice(T - n, T)
        row = torch.tensor(s.ids)
        ids[i, sl] = row
        att[i, sl] = 1
        lab[i, sl][s.n_prompt :] = row[s.n_prompt :]  # the prompt stays IGNORE
    return Encoded(ids, att, lab)


def collate_prompts(prompts: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad prompts for batched generation: input_ids and attention_mask (B, T)."""
    enc = collate([Sequence(tuple(p), len(p)) for p in prompts], pad_id, side="left")
    return enc.input_ids, enc.attention_mask


@dataclass
class UnlearnBatch:
    """What a method's loss sees at one step (B pairs)."""

    forget: Encoded  # (question, true answer) of forget items
    retain: Encoded | None = None  # paired retain items
    forget_idk: Encoded | None = None  # the forget questions with an "I don't know"-style answer
    retain_idk: Encoded | None = None  # the retain questions with one
    forget_keys: list[str] | None = None  # the forget items' ids (keys of precomputed reference log-probs)
    forget_alt: Encoded | None = None  # forget questions with an alternative answer from the method's setup (AltPO)

    def to(self, device) -> "UnlearnBatch":
        return UnlearnBatch(**{k: v.to(device) if isinstance(v, Encoded) else v for k, v in vars(self).items()})
