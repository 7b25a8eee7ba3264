"""Inference-time methods (``lethe.inference``) in the one method registry, named like any other method;
:func:`build` (``lethe.methods.build_inference``) sets one up by name."""
from __future__ import annotations

import time

from ..errors import LetheError, did_you_mean
from ..inference import (GuardrailConfig, ICULConfig, InferenceSetup, OutputFilterConfig, ULDConfig, build_guardrail,
                         build_icul, build_output_filter, build_uld)
from . import METHODS, InferenceMethod, register_inference

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


def build(name: str, model, tokenizer, forget: list, retain: list, cfg=None, train=None,
          seed: int = 0) -> InferenceSetup:
    """Set up inference-time method ``name`` on ``model`` for ``forget`` (keeping ``retain``). ``cfg``: its
    config, a dict of options or None; ``train``: the ``TrainConfig`` of methods that train something (ULD's
    assistant). ``stats["build_seconds"]`` of the :class:`InferenceSetup`: the wall time of the set-up."""
    methods = {n: spec for n, spec in METHODS.items() if isinstance(spec, InferenceMethod)}
    if name not in methods:
        raise LetheError(f"unknown inference method '{name}'{did_you_mean(name, methods)} "
                         f"(known: {', '.join(sorted(methods))})")
    spec = methods[name]
    if cfg is None or isinstance(cfg, dict):
        cfg = spec.make_config(cfg)
    elif not isinstance(cfg, spec.config):
        raise TypeError(f"{name}: expected a {spec.config.__name__}, got {type(cfg).__name__}")
    else:
        cfg.check()
    if not forget:
        raise LetheError(f"{name}: the forget set is empty: nothing to unlearn; check the forget split or data file")
    t0 = time.perf_counter()
    setup = spec.build(model, tokenizer, forget, retain, cfg, train, seed)
    setup.stats = {"method": name, **setup.stats, "build_seconds": time.perf_counter() - t0}
    return setup
