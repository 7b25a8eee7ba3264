"""Inference-time methods (``lethe.inference``) in the method registry, so that ``lethe run``,
``lethe ls`` and configs name them like any other method. They change prompts, outputs or how
logits are read, never the target's weights (``InferenceMethod``); :func:`build` sets one up by name
(``lethe.methods.build_inference``)."""
from __future__ import annotations

import dataclasses
import time
from types import MappingProxyType

from ..errors import LetheError
from ..inference import InferenceSetup

from ..inference import (GuardrailConfig, ICULConfig, OutputFilterConfig, ULDConfig, build_guardrail, build_icul,
                         build_output_filter, build_uld)
from . import register_inference

register_inference("icul", config=ICULConfig, paper=(
    "Pawelczyk, Neel & Lakkaraju 2024, In-Context Unlearning: Language Models as Few-Shot Unlearners (ICML)"
))(build_icul)
register_inference("guardrail", config=GuardrailConfig, paper=(
    "Thaker, Maurya, Hu, Wu & Smith 2024, Guardrail Baselines for Unlearning in LLMs (prompting)"))(build_guardrail)
register_inference("output_filter", config=OutputFilterConfig, paper=(
    "Thaker, Maurya, Hu, Wu & Smith 2024, Guardrail Baselines for Unlearning in LLMs (filtering)"))(build_output_filter)
register_inference("uld", config=ULDConfig, paper=(
    "Ji et al. 2024, Reversing the Forget-Retain Objectives: An Efficient LLM Unlearning Framework from "
    "Logit Difference (NeurIPS)"))(build_uld)


def _registered() -> dict:
    """The inference-time methods of the one method registry (``lethe.methods``), by name."""
    from . import METHODS, InferenceMethod

    return {name: spec for name, spec in METHODS.items() if isinstance(spec, InferenceMethod)}


def __getattr__(name: str):
    # INFERENCE_METHODS: a read-only view of the registry, {name: (config, build, paper)}, derived on
    # access (the registrations below fill it)
    if name == "INFERENCE_METHODS":
        return MappingProxyType({n: (s.config, s.build, s.paper) for n, s in _registered().items()})
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def make_config(name: str, options: dict | None = None):
    """The method's frozen config from user options, checking names, types and values."""
    methods = _registered()
    if name not in methods:
        import difflib

        close = difflib.get_close_matches(name, list(methods), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise LetheError(f"unknown inference method '{name}'{hint} (known: {', '.join(sorted(methods))})")
    config = methods[name].config
    fields = {f.name: f for f in dataclasses.fields(config)}
    values = dict(options or {})
    for key, value in values.items():
        if key not in fields:
            raise LetheError(f"{name}: unknown option '{key}' (options: {', '.join(fields)})")
        default = fields[key].default
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, float):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            value = float(value) if ok else value
        elif isinstance(default, int):
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif isinstance(default, tuple):
            ok = isinstance(value, (list, tuple))
            value = tuple(value) if ok else value
        else:
            ok = isinstance(value, type(default))
        if not ok:
            raise LetheError(f"{name}: option '{key}' must be {type(default).__name__}, got {value!r}")
        values[key] = value
    cfg = config(**values)
    cfg.check()
    return cfg


def build(name: str, model, tokenizer, forget: list, retain: list, cfg=None, train=None,
          seed: int = 0) -> InferenceSetup:
    """Set up inference-time method ``name`` on ``model`` for ``forget`` (keeping ``retain``).

    ``cfg``: the method's config, a dict of options, or None (the defaults). ``train``: the
    ``TrainConfig`` of methods that train something (ULD's assistant). Returns an
    :class:`InferenceSetup`; ``stats["build_seconds"]`` is the wall time of the set-up.
    """
    if cfg is None or isinstance(cfg, dict):
        cfg = make_config(name, cfg)
    else:
        make_config(name)  # the name check
        config = _registered()[name].config
        if not isinstance(cfg, config):
            raise TypeError(f"{name}: expected a {config.__name__}, got {type(cfg).__name__}")
        cfg.check()
    if not forget:
        raise LetheError(f"{name}: the forget set is empty: nothing to unlearn; check the forget split or data file")
    t0 = time.perf_counter()
    setup = _registered()[name].build(model, tokenizer, forget, retain, cfg, train, seed)
    setup.stats = {"method": name, **setup.stats, "build_seconds": time.perf_counter() - t0}
    return setup
