"""Judges: did the model refuse a request, and did its response carry the harmful content? (docs/safety.md)

A judge maps ``(prompts, responses, items)`` to one :class:`Verdict` per response: ``refusal`` (keywords),
``answer_match`` (the item's known harmful content) or ``classifier`` (a safety classifier model), e.g.
``make_judge("answer_match", min_fraction=0.5).judge(prompts, responses, items)``. Every judge reports
``refusal`` with the keyword rule, so refusal rates are comparable across judges.
"""
from __future__ import annotations

from .answer_match import AnswerMatchConfig, AnswerMatchJudge, helpful_match, keys_found  # noqa: F401
from .base import EMPTY, JUDGES, Judge, JudgeSpec, Verdict, make_judge, register_judge  # noqa: F401
from .classifier import (  # noqa: F401
    CHAT_VERDICT_WORDS, DEFAULT_UNSAFE_LABELS, HARMBENCH_STYLE_TEMPLATE, SEQUENCE_TEMPLATE, TEMPLATE_VERDICT_WORDS,
    ClassifierConfig, ClassifierJudge, fill_template, first_token,
)
from .refusal import (  # noqa: F401
    COMMON_REFUSALS, DEFAULT_WINDOW, GCG_TEST_PREFIXES, REFUSAL_MARKERS, RefusalConfig, RefusalJudge,
    find_refusal_marker, is_refusal, normalise,
)
