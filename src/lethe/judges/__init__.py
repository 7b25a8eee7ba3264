"""Judges: did the model refuse a request, and did its response carry the harmful content?

A judge maps ``(prompts, responses, items)`` to one :class:`Verdict` per response. Three judges, from
cheapest to most faithful:

- ``refusal`` (:mod:`.refusal`): keyword matching against :data:`REFUSAL_MARKERS` (the GCG test
  prefixes plus common refusal phrases). The usual "keyword attack-success rate": anything that is not
  a refusal counts as harmful, gibberish included.
- ``answer_match`` (:mod:`.answer_match`): for benchmarks that know the harmful content (Lethe's
  fictional safety benchmark gives each harmful item ``harmful_keys``): harmful = not a refusal AND the
  response contains enough of the item's keys (or, without keys, enough of its ``harmful_response`` by
  ROUGE-L recall).
- ``classifier`` (:mod:`.classifier`): a safety classifier model (a sequence classifier, or a
  LlamaGuard / HarmBench-style causal LM judge read from its next-token log-probabilities, so the
  verdict is deterministic).

Every judge reports ``refusal`` with the keyword rule, so refusal rates are comparable across judges;
they differ in how they decide ``harmful``. Build one with :func:`make_judge`::

    judge = make_judge("answer_match", min_fraction=0.5)
    verdicts = judge.judge(prompts, responses, items)

The interface and the registry live in :mod:`.base`; importing this package registers the three judges.
"""
from __future__ import annotations

from .answer_match import AnswerMatchConfig, AnswerMatchJudge, helpful_match, keys_found
from .base import EMPTY, JUDGES, Judge, JudgeSpec, Verdict, make_judge, register_judge
from .classifier import (
    CHAT_VERDICT_WORDS,
    DEFAULT_UNSAFE_LABELS,
    HARMBENCH_STYLE_TEMPLATE,
    SEQUENCE_TEMPLATE,
    TEMPLATE_VERDICT_WORDS,
    ClassifierConfig,
    ClassifierJudge,
    fill_template,
    first_token,
)
from .refusal import (
    COMMON_REFUSALS,
    DEFAULT_WINDOW,
    GCG_TEST_PREFIXES,
    REFUSAL_MARKERS,
    RefusalConfig,
    RefusalJudge,
    find_refusal_marker,
    is_refusal,
    normalise,
)

__all__ = [
    "AnswerMatchConfig",
    "AnswerMatchJudge",
    "CHAT_VERDICT_WORDS",
    "COMMON_REFUSALS",
    "ClassifierConfig",
    "ClassifierJudge",
    "DEFAULT_UNSAFE_LABELS",
    "DEFAULT_WINDOW",
    "EMPTY",
    "GCG_TEST_PREFIXES",
    "HARMBENCH_STYLE_TEMPLATE",
    "JUDGES",
    "Judge",
    "JudgeSpec",
    "REFUSAL_MARKERS",
    "RefusalConfig",
    "RefusalJudge",
    "SEQUENCE_TEMPLATE",
    "TEMPLATE_VERDICT_WORDS",
    "Verdict",
    "fill_template",
    "find_refusal_marker",
    "first_token",
    "helpful_match",
    "is_refusal",
    "keys_found",
    "make_judge",
    "normalise",
    "register_judge",
]
