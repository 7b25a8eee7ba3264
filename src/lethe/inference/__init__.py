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

Methods (registered in ``lethe.methods.METHODS`` by ``lethe.methods.inference_time``, which also
sets one up by name: ``lethe.methods.build_inference``): ``icul`` (Pawelczyk et al. 2024),
``guardrail`` and ``output_filter`` (Thaker et al. 2024), ``uld`` (Ji et al. 2024).

    setup = build_inference("icul", model, tokenizer, forget, retain, ICULConfig(n_retain=2))
    probes = probe_split(setup.model, tokenizer, items, encoder=setup.encoder)

One module per method family: ``prompts`` (``icul``, ``guardrail``), ``output_filter``, ``uld``;
``entities`` (the forget names the guardrail and the filter use), ``combined`` (:class:`CombinedLM`,
also SISA's ensemble), ``base`` (:class:`InferenceSetup`).
"""
from __future__ import annotations

from .base import InferenceSetup
from .combined import CombinedLM
from .entities import STOP_WORDS, forget_entities, names_pattern
from .output_filter import REFUSAL, OutputFilter, OutputFilterConfig, build_output_filter
from .prompts import (GUARDRAIL_TEMPLATE, GuardrailConfig, ICULConfig, ICULPrefix, PromptEncoder, build_guardrail,
                      build_icul, guardrail_prefix)
from .uld import ULDConfig, ULDModel, build_uld, relative_top_mask, train_assistant, truncated_copy

__all__ = [
    "InferenceSetup", "CombinedLM",
    "PromptEncoder", "ICULConfig", "ICULPrefix", "build_icul",
    "GUARDRAIL_TEMPLATE", "GuardrailConfig", "guardrail_prefix", "build_guardrail",
    "STOP_WORDS", "forget_entities", "names_pattern",
    "REFUSAL", "OutputFilterConfig", "OutputFilter", "build_output_filter",
    "ULDConfig", "ULDModel", "build_uld", "relative_top_mask", "train_assistant", "truncated_copy",
]
