"""Output filter (Thaker et al. 2024, the "filtering" baselines): the model answers as usual, and an
answer is replaced by a refusal when it names or reproduces forget data."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from ..data import Encoder
from ..metrics.rouge import lcs_length, rouge_tokenizer
from .base import InferenceSetup, check_options, option_error
from .entities import entity_names, names_pattern

REFUSAL = "I'm sorry, I can't answer that."


@dataclass(frozen=True)
class OutputFilterConfig:
    """An answer is replaced by ``refusal`` when the question names a forget entity (an input filter by
    keyword) or when the ROUGE-L recall of a forget answer against the generation (rouge-score, Porter
    stemmer, as the TOFU metric) is >= ``threshold``.

    The default 0.8 asks for four fifths of a forget answer's words, in order. Short templated answers
    share much of their wording ("Jade Feather winner, 1987." / "Jade Feather winner, 1995." score
    0.75): on the built-in benchmark (forget10) the retain set's own true answers are refused at 0.75
    in 4.9 % of cases, at 0.8 in 0.1 %."""

    threshold: float = 0.8
    refusal: str = REFUSAL
    check_question: bool = True
    check_answer: bool = True
    names: tuple[str, ...] = ()  # empty: forget_entities(forget, retain, min_share)
    min_share: float = 0.5

    def __post_init__(self):
        if isinstance(self.names, list):
            object.__setattr__(self, "names", tuple(self.names))

    def check(self) -> None:
        check_options("output_filter", self, {
            "threshold": (0 < self.threshold <= 1, "in (0, 1]"),
            "refusal": (bool(self.refusal.strip()), "a non-empty text")})
        if not (self.check_question or self.check_answer):
            raise option_error("output_filter", "check_answer",
                               "and check_question are both off: the filter would do nothing")
        check_options("output_filter", self, {
            "names": (all(isinstance(n, str) and n.strip() for n in self.names), "a list of non-empty strings"),
            "min_share": (0 < self.min_share <= 1, "in (0, 1]")})


class OutputFilter:
    """``postprocess(questions, generations)``: refuses answers that leak forget data (only the text a
    user sees: log-prob metrics read the target unchanged)."""

    def __init__(self, forget_answers: list[str], names: list[str], cfg: OutputFilterConfig):
        self.cfg = cfg
        self.names = list(names)
        self._pattern = names_pattern(self.names) if self.names else None
        self._tok = rouge_tokenizer(True)  # the tokenizer RougeScorer(use_stemmer=True) uses
        self._answers = [t for t in (self._tok.tokenize(a) for a in dict.fromkeys(forget_answers)) if t]
        self.refused = Counter(question=0, answer=0)  # running counts

    def max_recall(self, generation: str) -> float:
        """Highest ``RougeScorer(["rougeL"], use_stemmer=True).score(answer, generation).recall`` over the
        forget answers; answers whose bag-of-words overlap (an upper bound of the LCS) cannot beat it are skipped."""
        gen = self._tok.tokenize(generation)
        counts = Counter(gen)
        best = 0.0
        for ref in self._answers:  # an empty generation overlaps nothing: 0.0
            overlap = sum((Counter(ref) & counts).values())  # shared tokens, with multiplicity
            if overlap / len(ref) > best:
                best = max(best, lcs_length(ref, gen) / len(ref))
        return best

    def reason(self, question: str, generation: str) -> str:  # "question", "answer" or "" (kept)
        if self.cfg.check_question and self._pattern and self._pattern.search(question):
            return "question"
        if self.cfg.check_answer and self.max_recall(generation) >= self.cfg.threshold:
            return "answer"
        return ""

    def __call__(self, questions: list[str], generations: list[str]) -> list[str]:
        if len(questions) != len(generations):
            raise ValueError(f"{len(questions)} questions but {len(generations)} generations")
        reasons = [self.reason(q, g) for q, g in zip(questions, generations)]
        self.refused.update(why for why in reasons if why)
        return [self.cfg.refusal if why else g for why, g in zip(reasons, generations)]


def build_output_filter(model, tokenizer, forget, retain, cfg: OutputFilterConfig, train=None,
                        seed: int = 0) -> InferenceSetup:
    names = (entity_names(cfg.names, forget, retain, cfg.min_share, "output_filter") if cfg.check_question
             else list(cfg.names))
    filt = OutputFilter([it.answer for it in forget], names, cfg)
    return InferenceSetup(model, Encoder(tokenizer), filt, {"names": names, "threshold": cfg.threshold})
