"""Unlearning methods: each one a frozen config + a loss, registered by the paper's short name.

Most methods are losses, ``loss(model, batch: UnlearnBatch, ref: Reference | None, cfg[, state]) ->
(per_sequence_loss (B,), stats)``; the other kinds have their own small contracts (``methods/kinds.py``),
all in the one registry ``METHODS`` (docs/architecture.md, "Adding a method").

Config conventions the loop relies on: ``retain`` names the retain term (``retain.RETAIN_TERMS``)
and ``alpha`` is its weight; nothing else may be called ``alpha``. ``train.sam_rho`` takes the
forget-only loss by setting ``retain="none"`` (or ``alpha=0`` where a method has no ``retain``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from ..registry import Registry
from .kinds import KINDS, InferenceMethod, LossMethod, Method, ProcedureMethod, TrainingTimeMethod  # noqa: F401


@dataclass
class SetupContext:
    """What a method's ``setup`` sees (the model to train is LoRA-wrapped when asked)."""

    model: Any
    tokenizer: Any
    forget: list  # list[QAItem]
    retain: list  # list[QAItem]
    cfg: Any
    train: Any  # TrainConfig
    device: Any


@dataclass
class MethodState:
    """What ``setup`` hands to the training loop and the loss."""

    # one alternative answer per forget item (same order), encoded as ``batch.forget_alt`` (reference
    # log-probs precomputed, kind "forget_alt")
    forget_alt: list[str] | None = None
    trainable: Callable[[str], bool] | None = None  # parameter-name predicate; the rejected are frozen
    data: dict = field(default_factory=dict)  # anything else the loss needs (tensors, a layer index, ...)


METHODS: Registry[Method] = Registry("method")

# the taxonomy of the LLM-unlearning survey (training-time / post-training / inference-time), in order
FAMILIES = (
    "training-time / exact",
    "post-training / untargeted",
    "post-training / targeted",
    "post-training / safety",
    "model composition",
    "inference-time",
)


def _registrar(kind: type, name: str, **spec) -> Callable:
    """A decorator adding ``fn`` to the registry as a ``kind`` spec, in the kind's own callable field."""
    def deco(fn: Callable) -> Callable:
        METHODS.add(name, kind(name=name, **{kind.work_field: fn}, **spec))
        return fn

    return deco


def register_method(name: str, config: type, needs_ref: str = "none", needs: tuple[str, ...] = (),
                    family: str = "post-training / untargeted", paper: str = "", setup: Callable | None = None,
                    space: dict | None = None, **defaults):
    """Register a loss (:class:`LossMethod`); ``defaults``: the paper's training settings (lr, epochs, ...);
    ``space``: the options ``lethe sweep`` searches (:attr:`Method.space`). The other kinds have their own
    ``register_*``, each taking only the fields its kind has."""
    if "kind" in defaults:
        raise TypeError(f"method '{name}': register_method registers losses; use register_procedure, "
                        "register_inference or register_training_time for the other kinds")
    return _registrar(LossMethod, name, config=config, needs_ref=needs_ref, needs=frozenset(needs), family=family,
                      paper=paper, defaults=defaults, setup=setup, space=dict(space or {}))


def register_procedure(name: str, config: type, family: str = "model composition", paper: str = "",
                       space: dict | None = None, **defaults):
    """Register ``run(model, tokenizer, forget, retain, train, cfg, description) -> (model, TrainStats)``."""
    return _registrar(ProcedureMethod, name, config=config, family=family, paper=paper, defaults=defaults,
                      space=dict(space or {}))


def register_inference(name: str, config: type, family: str = "inference-time", paper: str = ""):
    """Register ``build(model, tokenizer, forget, retain, cfg, train, seed) -> InferenceSetup``."""
    return _registrar(InferenceMethod, name, config=config, family=family, paper=paper)


def register_training_time(name: str, config: type, family: str = "training-time / exact", paper: str = ""):
    """Register ``train(bench, forget_split, tiny, cache_dir, cfg, log) -> (model, tokenizer, stats)``."""
    return _registrar(TrainingTimeMethod, name, config=config, family=family, paper=paper)


def get_method(name: str) -> Method:
    return METHODS.get(name)


from . import altpo, ce_u, dpo, ga, grad_diff, idk, kl, me, npo, rmu, safe_unlearning  # noqa: E402,F401
from . import satimp, simnpo, task_vector, undial, wga  # noqa: E402,F401
from . import inference_time  # noqa: E402,F401  (icul, guardrail, output_filter, uld)
from .inference_time import build as build_inference  # noqa: E402,F401
from . import sisa  # noqa: E402,F401
