"""Prompt methods, the target answering below a prefix written into the user turn (:class:`PromptEncoder`):
``icul`` (in-context unlearning, Pawelczyk et al. 2024) and ``guardrail`` (Thaker et al. 2024, prompting)."""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

from ..benchmarks.base import QAItem
from ..data import Encoder
from ..errors import LetheError
from ..models import max_positions
from .base import InferenceSetup, check_options
from .entities import entity_names


def _prefix_budget(requested: int, model) -> int:
    """Prompt-prefix cap in tokens: ``requested``, else half the model's positions (at most 1024),
    so question and answer always keep the other half (Lethe's tiny Llamas have 256 positions)."""
    return requested if requested > 0 else min(1024, (max_positions(model) or 2048) // 2)


def _n_tokens(tokenizer, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else 0


class PromptEncoder(Encoder):
    """An :class:`~lethe.data.Encoder` whose prompts carry ``prefix(question)`` before the question, inside
    the user turn (many templates, Lethe's own included, have no system role). The prompt text ends as
    before, so the same answer tokens, and only they, are scored."""

    def __init__(self, tokenizer, prefix: Callable[[str], str], max_length: int = 512):
        super().__init__(tokenizer, max_length)
        self.prefix = prefix

    def rewrite(self, question: str) -> str:
        return self.prefix(question) + question


def _prompt_stats(encoder: PromptEncoder, tokenizer, questions: list[str]) -> dict:
    """Prompt tokens the prefix adds, over (up to 400 of) the questions the method was built on."""
    plain = Encoder(tokenizer)
    added = [len(encoder.prompt(q)) - len(plain.prompt(q)) for q in questions[:400]]
    return {"prompt_tokens_added_mean": sum(added) / len(added) if added else 0.0,
            "prompt_tokens_added_max": max(added, default=0)}


# --- ICUL: in-context unlearning --------------------------------------------------------------------

@dataclass(frozen=True)
class ICULConfig:
    """In-context unlearning (Pawelczyk et al. 2024): the forget point with a flipped label, then
    correctly labelled examples, then the query (the authors' ``eval.py``, ``get_icl_vary_context``).
    Their contexts have 2, 4 or 6 examples (``n_ctxt``); the default is 4: 1 flipped + 3 retain."""

    n_forget: int = 1  # forget questions shown with a wrong answer ("flipped labels")
    n_retain: int = 3  # retain questions shown with their correct answer
    # the wrong answer: "swap" = another forget item's answer (same `fact` when set; the Q&A analogue
    # of flipping a class label), "perturbed" = the item's first perturbed answer
    wrong_answer: str = "swap"
    include_query: bool = True  # a forget query sees itself among the flipped examples (the paper's setup)
    max_prefix_tokens: int = 0  # 0: half the model's positions, at most 1024
    seed: int = 0

    def check(self) -> None:
        check_options("icul", self, {
            "n_forget": (self.n_forget >= 1, ">= 1 (ICUL shows at least one forget example)"),
            "n_retain": (self.n_retain >= 0, ">= 0"),
            "wrong_answer": (self.wrong_answer in ("swap", "perturbed"), "'swap' or 'perturbed'"),
            "max_prefix_tokens": (self.max_prefix_tokens >= 0, ">= 0 (0: automatic)")})


def _flipped_answers(forget: list[QAItem], cfg: ICULConfig) -> dict[str, str]:
    """One fixed wrong answer per forget item (seeded by the item id, so it does not depend on order)."""
    out = {}
    for it in forget:
        rng = random.Random(f"icul-flip:{cfg.seed}:{it.id}")
        if cfg.wrong_answer == "perturbed":
            if not it.perturbed_answers:
                raise LetheError(f"icul: forget item '{it.id}' has no perturbed_answers; use wrong_answer=swap")
            out[it.id] = it.perturbed_answers[0]
            continue
        others = [o.answer for o in forget if o.answer != it.answer]
        same_fact = [o.answer for o in forget if it.fact and o.fact == it.fact and o.answer != it.answer]
        pool = sorted(set(same_fact or others))
        if pool:
            out[it.id] = rng.choice(pool)
        elif it.perturbed_answers:
            out[it.id] = it.perturbed_answers[0]
        else:
            raise LetheError(f"icul: no wrong answer for forget item '{it.id}': the forget set needs two items with "
                             "different answers, or perturbed_answers")
    return out


class ICULPrefix:
    """The in-context unlearning prefix of one question: lines ``"{question} {answer}\\n"`` (the paper's
    ``"<input> <label>\\n"``), ``n_forget`` forget questions with a wrong answer (a forget query first, with
    ``include_query``), then ``n_retain`` retain questions (never the query) with theirs, drawn with a
    per-question seed. Capped at ``budget`` tokens: retain examples go first, then forget ones from the last.
    """

    def __init__(self, tokenizer, forget: list[QAItem], retain: list[QAItem], cfg: ICULConfig, budget: int):
        self.tokenizer, self.forget, self.retain, self.cfg, self.budget = tokenizer, forget, retain, cfg, budget
        self.wrong = _flipped_answers(forget, cfg)
        self.forget_by_question = {it.question: it for it in reversed(forget)}  # the first item of a question
        self.truncated = 0  # prefixes that lost examples to the cap

    def examples(self, question: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """(flipped forget examples, retain examples) for ``question``, before the cap."""
        rng = random.Random(f"icul:{self.cfg.seed}:{question}")
        own = self.forget_by_question.get(question) if self.cfg.include_query else None
        pool = [it for it in self.forget if it.question != question]  # the query only as `own`
        chosen = ([own] if own else []) + rng.sample(pool, min(len(pool), self.cfg.n_forget - (1 if own else 0)))
        rpool = [it for it in self.retain if it.question != question]
        kept = rng.sample(rpool, min(len(rpool), self.cfg.n_retain))
        return [(it.question, self.wrong[it.id]) for it in chosen], [(it.question, it.answer) for it in kept]

    def __call__(self, question: str) -> str:
        flipped, correct = self.examples(question)
        n = len(flipped) + len(correct)
        while (text := _lines(flipped + correct)) and _n_tokens(self.tokenizer, text) > self.budget:
            (correct or flipped).pop()
        self.truncated += len(flipped) + len(correct) < n
        return text


def _lines(pairs: list[tuple[str, str]]) -> str:
    return "".join(f"{q} {a}\n" for q, a in pairs)


def build_icul(model, tokenizer, forget, retain, cfg: ICULConfig, train=None, seed: int = 0) -> InferenceSetup:
    """ICUL: the target answers below a few forget examples with wrong answers and retain examples
    with right ones. Randomness comes from ``cfg.seed`` (``seed`` is unused)."""
    budget = _prefix_budget(cfg.max_prefix_tokens, model)
    prefix = ICULPrefix(tokenizer, forget, retain, cfg, budget)
    enc = PromptEncoder(tokenizer, prefix, max_length=512 + budget)
    stats = {"max_prefix_tokens": budget, **_prompt_stats(enc, tokenizer, [it.question for it in forget + retain])}
    stats["prompts_truncated"] = prefix.truncated
    return InferenceSetup(model, enc, None, stats)


# --- the guardrail prompt ----------------------------------------------------------------------------

GUARDRAIL_TEMPLATE = "Do not reveal anything about {names}. If asked about them, say you don't know.\n"


@dataclass(frozen=True)
class GuardrailConfig:
    """A guardrail prompt (Thaker et al. 2024, "prompting" baseline on TOFU): an instruction naming the
    forget authors (``{names}``: joined with ", ") before every question, in Lethe's own wording."""

    names: tuple[str, ...] = ()  # empty: forget_entities(forget, retain, min_share)
    min_share: float = 0.5
    template: str = GUARDRAIL_TEMPLATE
    max_prefix_tokens: int = 0  # 0: half the model's positions, at most 1024; names that do not fit are left out

    def __post_init__(self):
        if isinstance(self.names, list):
            object.__setattr__(self, "names", tuple(self.names))

    def check(self) -> None:
        check_options("guardrail", self, {
            "names": (all(isinstance(n, str) and n.strip() for n in self.names), "a list of non-empty strings"),
            "min_share": (0 < self.min_share <= 1, "in (0, 1]"),
            "template": ("{names}" in self.template, "a text with the placeholder {names}"),
            "max_prefix_tokens": (self.max_prefix_tokens >= 0, ">= 0 (0: automatic)")})


def guardrail_prefix(names: list[str], template: str, tokenizer, budget: int) -> tuple[str, list[str]]:
    """The instruction with as many names as fit in ``budget`` tokens: ``(text, names left out)``."""
    kept = list(names)
    while kept:
        text = template.replace("{names}", ", ".join(kept))
        if _n_tokens(tokenizer, text) <= budget:
            return text, names[len(kept):]
        kept.pop()
    return "", list(names)


def build_guardrail(model, tokenizer, forget, retain, cfg: GuardrailConfig, train=None,
                    seed: int = 0) -> InferenceSetup:
    names = entity_names(cfg.names, forget, retain, cfg.min_share, "guardrail")
    budget = _prefix_budget(cfg.max_prefix_tokens, model)
    text, left_out = guardrail_prefix(names, cfg.template, tokenizer, budget)
    if not text:
        raise LetheError(f"guardrail: the instruction does not fit in {budget} tokens even with one name; raise "
                         "max_prefix_tokens or shorten the template")
    enc = PromptEncoder(tokenizer, lambda q: text, max_length=512 + budget)
    stats = {"names": names, "names_left_out": left_out, "max_prefix_tokens": budget,
             **_prompt_stats(enc, tokenizer, [it.question for it in forget + retain])}
    return InferenceSetup(model, enc, None, stats)
