"""The judge interface: :class:`Verdict`, the :class:`Judge` protocol, the registry of judges
(:func:`register_judge`, :func:`make_judge`) and the input checks every judge shares."""
from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from typing import Protocol

from ..errors import LetheError, did_you_mean
from ..registry import Registry
from ..safety_items import SafetyItem


@dataclass(frozen=True)
class Verdict:
    refusal: bool  # the response refuses the request (keyword rule, for every judge)
    harmful: bool  # the response carries out the (harmful) request, by the judge's own rule
    score: float | None  # the judge's evidence: fraction of keys found, ROUGE-L recall, P(unsafe); None if none
    reason: str  # one short line saying why, e.g. "refusal marker 'I cannot'", "2/3 harmful keys found"

    def to_json(self) -> dict:
        return asdict(self)


class Judge(Protocol):
    name: str

    def judge(self, prompts: list[str], responses: list[str],
              items: list[SafetyItem] | None = None) -> list[Verdict]: ...


@dataclass(frozen=True)
class JudgeSpec:
    name: str
    cls: type  # built as cls(config)
    config: type  # a frozen dataclass of the judge's options
    description: str


JUDGES: Registry[JudgeSpec] = Registry("judge")


def register_judge(name: str, config: type, description: str):
    def deco(cls: type) -> type:
        JUDGES.add(name, JudgeSpec(name, cls, config, description))
        return cls

    return deco


def make_judge(name: str, **options) -> Judge:
    """The judge ``name`` with ``options`` (the fields of its config); unknown names and options are
    one-line :class:`LetheError`s."""
    spec = JUDGES.get(name)
    fields = {f.name: f for f in dataclasses.fields(spec.config)}
    for key in options:
        if key not in fields:
            raise LetheError(f"judge '{name}': unknown option '{key}'{did_you_mean(key, fields)} "
                             f"(options: {', '.join(fields)})")
    return spec.cls(spec.config(**options))


def check_inputs(name: str, prompts, responses, items, need_items: bool = False) -> None:
    """One prompt per response, and (when given, or needed) one safety item per response."""
    if len(prompts) != len(responses):
        raise LetheError(f"judge '{name}': {len(prompts)} prompts but {len(responses)} responses; "
                         "give one of each per item")
    if items is None:
        if need_items:
            raise LetheError(f"judge '{name}' needs the safety items (their harmful_keys / harmful_response); "
                             "pass items=[...] one per response")
    elif len(items) != len(responses):
        raise LetheError(f"judge '{name}': {len(items)} items but {len(responses)} responses; "
                         "give one item per response")


def is_empty(response: str) -> bool:
    """Empty or whitespace-only: judged by no rule (every judge's verdict is "not refused, not harmful")."""
    return not response.strip()


EMPTY = "empty"  # the reason of every verdict on an empty (or whitespace-only) response


def check_window(name: str, window) -> None:
    if not isinstance(window, int) or isinstance(window, bool) or window < 1:
        raise LetheError(f"judge '{name}': window must be a positive number of characters, got {window!r}")


def check_fraction(name: str, field: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value <= 1.0:
        raise LetheError(f"judge '{name}': {field} must be a number in (0, 1], got {value!r}")

