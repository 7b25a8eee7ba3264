"""Inference-time unlearning: the target's weights stay; a method changes what the model is asked
(``prompts``: ``icul``, ``guardrail``), what it answers (``output_filter``) or how its logits are read
(``uld``, on :class:`CombinedLM`). Each builds an :class:`InferenceSetup` (model, encoder, postprocess)
that the probes evaluate like any model; answers stay the only scored tokens. Set one up by name with
``lethe.methods.build_inference`` (docs/paper_index.md lists the papers).
"""
from __future__ import annotations

from .base import InferenceSetup  # noqa: F401
from .combined import CombinedLM  # noqa: F401
from .entities import forget_entities  # noqa: F401
from .output_filter import REFUSAL, OutputFilter, OutputFilterConfig, build_output_filter  # noqa: F401
from .prompts import GuardrailConfig, ICULConfig, PromptEncoder, build_guardrail, build_icul  # noqa: F401
from .uld import ULDConfig, ULDModel, build_uld, relative_top_mask, train_assistant  # noqa: F401
