"""Unlearning methods: each one a frozen config + a loss, registered by the paper's short name.

The loss contract::

    loss(model, batch: UnlearnBatch, ref: Reference | None, cfg) -> (per_sequence_loss (B,), stats)

The training loop sums per-sequence losses and divides by the number of forget sequences in the
optimizer step, so the update does not depend on how a batch is split (DESIGN.md, principle 9).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import LetheError
from ..registry import Registry


@dataclass(frozen=True)
class MethodSpec:
    name: str
    loss: Callable
    config: type
    needs_ref: str  # "none" | "logprobs" (per-sequence, precomputable) | "logits" (a model)
    needs: frozenset = field(default_factory=frozenset)  # batch parts: retain, forget_idk, retain_idk
    family: str = "post-training / untargeted"
    paper: str = ""
    defaults: dict = field(default_factory=dict)  # training defaults from the paper (lr, epochs, ...)

    def make_config(self, overrides: dict[str, Any] | None = None):
        """Build the method's frozen config, checking names and types of user overrides."""
        overrides = dict(overrides or {})
        fields = {f.name: f for f in dataclasses.fields(self.config)}
        for key, value in overrides.items():
            if key not in fields:
                raise LetheError(
                    f"method '{self.name}': unknown option '{key}' (options: {', '.join(fields) or 'none'})"
                )
            default = fields[key].default
            if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
                overrides[key] = float(value)
            elif default is not dataclasses.MISSING and not isinstance(overrides[key], type(default)):
                raise LetheError(
                    f"method '{self.name}': option '{key}' must be {type(default).__name__}, got {value!r}"
                )
        cfg = self.config(**overrides)
        check = getattr(cfg, "check", None)
        if check:
            check()
        return cfg

    def parts(self, cfg) -> frozenset:
        """Batch parts needed for this config (the retain term can add some)."""
        extra = {"retain"} if getattr(cfg, "retain", "none") != "none" else set()
        if getattr(cfg, "retain", None) == "ap":
            extra.add("retain_idk")
        return self.needs | extra

    def ref_kind(self, cfg) -> str:
        if getattr(cfg, "retain", None) == "kl":
            return "logits"
        return self.needs_ref


METHODS: Registry[MethodSpec] = Registry("method")


def register_method(name: str, config: type, needs_ref: str = "none", needs: tuple[str, ...] = (),
                    family: str = "post-training / untargeted", paper: str = "", **defaults):
    def deco(fn: Callable) -> Callable:
        METHODS.add(name, MethodSpec(name, fn, config, needs_ref, frozenset(needs), family, paper, defaults))
        return fn

    return deco


def get_method(name: str) -> MethodSpec:
    return METHODS.get(name)


# one import line per method file
from . import ga, grad_diff, idk, kl, me, npo  # noqa: E402,F401
