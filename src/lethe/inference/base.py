"""What every inference-time method builds (:class:`InferenceSetup`) and the one-line error for a bad option."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import LetheError


@dataclass
class InferenceSetup:
    """What the probes use to evaluate an inference-time method (see ``lethe.inference``)."""

    model: Any
    encoder: Any
    postprocess: Callable[[list[str], list[str]], list[str]] | None = None
    stats: dict = field(default_factory=dict)


def option_error(method: str, option: str, why: str) -> LetheError:
    """``<method>: option '<option>' <why>; set it with <option>=...``"""
    return LetheError(f"{method}: option '{option}' {why}; set it with {option}=...")
