"""Inference-time unlearning: the target's weights stay; a method changes what the model is asked
(``prompts``: ``icul``, ``guardrail``), what it answers (``output_filter``) or how its logits are read
(``uld``, on :class:`CombinedLM`). Each builds an :class:`InferenceSetup` (model, encoder, postprocess)
that the probes evaluate like any model; answers stay the only scored tokens. Set one up by name with
``lethe.methods.build_inference`` (docs/paper_index.md lists the papers).
"""
from __future__ import annotations

from .base import InferenceSetup
from .combined import CombinedLM
from .entities import forget_entities
from .output_filter import REFUSAL, OutputFilter, OutputFilterConfig, build_output_filter
from .prompts import GuardrailConfig, ICULConfig, PromptEncoder, build_guardrail, build_icul
from .uld import ULDConfig, ULDModel, build_uld, relative_top_mask, train_assistant

__all__ = [
    "InferenceSetup", "CombinedLM", "forget_entities", "PromptEncoder", "ICULConfig", "build_icul", "GuardrailConfig",
    "build_guardrail", "REFUSAL", "OutputFilterConfig", "OutputFilter", "build_output_filter", "ULDConfig",
    "ULDModel", "build_uld", "relative_top_mask", "train_assistant",
]
