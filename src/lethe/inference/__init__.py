"""Inference-time unlearning: methods that leave the target's weights alone and change what the model
is asked (a prompt prefix), what it answers (a filter on the generated text), or how its logits are
read (a second model's logits subtracted).

Lethe evaluates them with the same probes and metrics as weight-changing methods. Each method builds
an :class:`InferenceSetup` holding what the probes need:

* ``model``: an ``nn.Module`` the probes call like a Hugging Face causal LM
  (``model(input_ids=, attention_mask=, logits_to_keep=).logits`` and ``model.generate(...)``); the
  target itself for the prompt and filter methods, a logit-difference wrapper for ULD;
* ``encoder``: an :class:`~lethe.data.Encoder`; prompt methods return a :class:`PromptEncoder` that
  writes their text before the question. Answers are tokenised exactly as before and stay the only
  scored tokens, so log-prob metrics compare like with like;
* ``postprocess``: ``None`` or ``f(questions, generations) -> generations``, applied to the greedy
  answers before the metrics read them (the output filter).

Methods (``INFERENCE_METHODS``): ``icul`` (Pawelczyk et al. 2024), ``guardrail`` and
``output_filter`` (Thaker et al. 2024), ``uld`` (Ji et al. 2024).

    setup = build("icul", model, tokenizer, forget, retain, ICULConfig(n_retain=2))
    probes = probe_split(setup.model, tokenizer, items, encoder=setup.encoder)

One module per method family: ``prompts`` (``icul``, ``guardrail``), ``output_filter``, ``uld``;
``entities`` (the forget names the guardrail and the filter use), ``combined`` (:class:`CombinedLM`,
also SISA's ensemble), ``base`` (:class:`InferenceSetup`).
"""
from __future__ import annotations

import dataclasses
import time
from typing import Callable

from ..benchmarks.base import QAItem
from ..errors import LetheError
from .base import InferenceSetup
from .combined import CombinedLM
from .entities import STOP_WORDS, forget_entities, names_pattern
from .output_filter import REFUSAL, OutputFilter, OutputFilterConfig, build_output_filter
from .prompts import (GUARDRAIL_TEMPLATE, GuardrailConfig, ICULConfig, ICULPrefix, PromptEncoder, build_guardrail,
                      build_icul, guardrail_prefix)
from .uld import ULDConfig, ULDModel, build_uld, relative_top_mask, train_assistant, truncated_copy

__all__ = [
    "INFERENCE_METHODS", "build", "make_config", "InferenceSetup", "CombinedLM",
    "PromptEncoder", "ICULConfig", "ICULPrefix", "build_icul",
    "GUARDRAIL_TEMPLATE", "GuardrailConfig", "guardrail_prefix", "build_guardrail",
    "STOP_WORDS", "forget_entities", "names_pattern",
    "REFUSAL", "OutputFilterConfig", "OutputFilter", "build_output_filter",
    "ULDConfig", "ULDModel", "build_uld", "relative_top_mask", "train_assistant", "truncated_copy",
]

INFERENCE_METHODS: dict[str, tuple[type, Callable, str]] = {
    "icul": (ICULConfig, build_icul,
             "Pawelczyk, Neel & Lakkaraju 2024, In-Context Unlearning: Language Models as Few-Shot Unlearners (ICML)"),
    "guardrail": (GuardrailConfig, build_guardrail,
                  "Thaker, Maurya, Hu, Wu & Smith 2024, Guardrail Baselines for Unlearning in LLMs (prompting)"),
    "output_filter": (OutputFilterConfig, build_output_filter,
                      "Thaker, Maurya, Hu, Wu & Smith 2024, Guardrail Baselines for Unlearning in LLMs (filtering)"),
    "uld": (ULDConfig, build_uld,
            ("Ji et al. 2024, Reversing the Forget-Retain Objectives: An Efficient LLM Unlearning Framework from "
             "Logit Difference (NeurIPS)")),
}


def make_config(name: str, options: dict | None = None):
    """The method's frozen config from user options, checking names, types and values."""
    if name not in INFERENCE_METHODS:
        import difflib

        close = difflib.get_close_matches(name, list(INFERENCE_METHODS), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise LetheError(f"unknown inference method '{name}'{hint} (known: {', '.join(sorted(INFERENCE_METHODS))})")
    config = INFERENCE_METHODS[name][0]
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


def build(name: str, model, tokenizer, forget: list[QAItem], retain: list[QAItem], cfg=None, train=None,
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
        if not isinstance(cfg, INFERENCE_METHODS[name][0]):
            raise TypeError(f"{name}: expected a {INFERENCE_METHODS[name][0].__name__}, got {type(cfg).__name__}")
        cfg.check()
    if not forget:
        raise LetheError(f"{name}: the forget set is empty: nothing to unlearn; check the forget split or data file")
    t0 = time.perf_counter()
    setup = INFERENCE_METHODS[name][1](model, tokenizer, forget, retain, cfg, train, seed)
    setup.stats = {"method": name, **setup.stats, "build_seconds": time.perf_counter() - t0}
    return setup
