"""What every inference-time method builds (:class:`InferenceSetup`) and the one-line errors for bad options."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import LetheError


@dataclass
class InferenceSetup:
    """What the probes use to evaluate an inference-time method.

    ``model``: called by the probes like a Hugging Face causal LM (the target, or a logit-difference
    wrapper); ``encoder``: a :class:`~lethe.data.Encoder` (a prompt method's writes its prefix before
    the question); ``postprocess``: ``None`` or ``f(questions, generations) -> generations``, applied to
    the greedy answers before the metrics read them (the output filter)."""

    model: Any
    encoder: Any
    postprocess: Callable[[list[str], list[str]], list[str]] | None = None
    stats: dict = field(default_factory=dict)


def option_error(method: str, option: str, why: str) -> LetheError:
    """``<method>: option '<option>' <why>; set it with <option>=...``"""
    return LetheError(f"{method}: option '{option}' {why}; set it with {option}=...")


def check_options(method: str, cfg, rules: dict[str, tuple[bool, str]]) -> None:
    """Raise ``<method>: option '<option>' must be <rule>, got <value>`` for the first invalid ``option: (valid,
    rule)``."""
    for option, (valid, rule) in rules.items():
        if not valid:
            raise option_error(method, option, f"must be {rule}, got {getattr(cfg, option)!r}")
