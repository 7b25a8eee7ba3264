"""The four kinds of method, each a frozen spec with one callable that does the work (the contracts:
docs/architecture.md, "Adding a method"): :class:`LossMethod` (``loss``), :class:`ProcedureMethod`
(``run``), :class:`InferenceMethod` (``build``) and :class:`TrainingTimeMethod` (``train``).
``apply`` is what "unlearn this model" means for each kind: the loss loop, the procedure, or a
one-line refusal naming what to call instead; callers never branch on the kind to get there.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

from ..errors import LetheError
from .retain import check_retain


@dataclass(frozen=True, kw_only=True)
class Method:
    """What every method has: its name, frozen config class, survey family, paper and the paper's
    training defaults (lr, epochs, ...)."""

    name: str
    config: type
    family: str
    paper: str = ""
    defaults: dict = field(default_factory=dict)
    # what `lethe sweep` searches beside train.lr and train.epochs: {option: (low, high, "log" | "linear")}
    space: dict = field(default_factory=dict)

    kind: ClassVar[str]
    work_field: ClassVar[str]  # the field holding the kind's callable
    params: ClassVar[tuple[str, ...]]  # that callable's parameters, in order
    saves_model: ClassVar[bool]  # whether ``lethe unlearn`` has one unlearned model to save
    no_model: ClassVar[str] = ""  # why not, where it has none
    refusal: ClassVar[str] = ""  # why ``apply`` refuses, and what to call instead ({name}: the method)

    @property
    def work(self) -> Callable:  # the one callable that does the method's work, whatever its kind
        return getattr(self, self.work_field)

    def make_config(self, overrides: dict[str, Any] | None = None):
        """Build the method's frozen config, checking names and types of user overrides."""
        overrides = dict(overrides or {})
        fields = {f.name: f for f in dataclasses.fields(self.config)}
        for key, value in overrides.items():
            if key not in fields:
                options = ", ".join(fields) or "none"
                raise LetheError(f"method '{self.name}': unknown option '{key}' (options: {options})")
            default = fields[key].default
            if isinstance(default, tuple) and isinstance(value, list):  # YAML lists for tuple options
                overrides[key] = value = tuple(value)
            if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
                overrides[key] = float(value)
            elif default is not dataclasses.MISSING and not isinstance(overrides[key], type(default)):
                kind = type(default).__name__
                raise LetheError(f"method '{self.name}': option '{key}' must be {kind}, got {value!r}")
        cfg = self.config(**overrides)
        if hasattr(cfg, "check"):
            cfg.check()
        return cfg

    def parts(self, cfg) -> frozenset:
        """Batch parts the training loop encodes for this config: none unless the method is a loss
        (scenarios ask every weight-changing method, e.g. whether it trains answers to questions)."""
        return frozenset()

    def apply(self, model, tokenizer, forget, retain, train, options: dict | None = None, *,
              idk_answers=None, description: str | None = None, eval_hook=None, best_direction: str = "higher"):
        """Unlearn ``forget`` from ``model``: ``(model, TrainStats)``. Kinds that change no given
        model's weights refuse here, naming what to call instead (after checking the options, so a bad
        option is still the first error)."""
        self.make_config(options)
        train.check()
        raise LetheError(f"method '{self.name}' is {self.refusal.format(name=self.name)}")


@dataclass(frozen=True, kw_only=True)
class LossMethod(Method):
    """A loss for the training loop (``lethe.train.unlearn``; ``apply`` refuses: the trainer imports this).
    ``needs_ref``: "none" | "logprobs" (per-sequence, precomputable) | "logits" (a model); ``needs``: batch
    parts besides the forget sequences; ``setup(SetupContext) -> MethodState``: once before training, for
    stateful methods (the loss then takes the state as a fifth argument).
    """

    loss: Callable
    family: str = "post-training / untargeted"
    needs_ref: str = "none"
    needs: frozenset = field(default_factory=frozenset)
    setup: Callable | None = None

    kind: ClassVar[str] = "loss"
    work_field: ClassVar[str] = "loss"
    params: ClassVar[tuple[str, ...]] = ("model", "batch", "ref", "cfg")  # + "state" with a setup
    saves_model: ClassVar[bool] = True

    def make_config(self, overrides: dict[str, Any] | None = None):
        """As :meth:`Method.make_config`, then the retain options (``retain``, ``alpha``) where the config has them."""
        cfg = super().make_config(overrides)
        if hasattr(cfg, "retain"):
            check_retain(cfg.retain, cfg.alpha)
        return cfg

    def parts(self, cfg) -> frozenset:  # the retain term can add some
        extra = {"retain"} if getattr(cfg, "retain", "none") != "none" else set()
        if getattr(cfg, "retain", None) == "ap":
            extra.add("retain_idk")
        return self.needs | extra

    def ref_kind(self, cfg) -> str:  # the reference the loss reads with this config
        return "logits" if getattr(cfg, "retain", None) == "kl" else self.needs_ref

    refusal: ClassVar[str] = "a loss: lethe.unlearn (lethe.train.unlearn) trains it in the loop"


@dataclass(frozen=True, kw_only=True)
class ProcedureMethod(Method):
    """Weight arithmetic around its own fine-tune (task vectors): no loss for the loop, one call that
    returns the unlearned model and the fine-tune's statistics."""

    run: Callable
    family: str = "model composition"

    kind: ClassVar[str] = "procedure"
    work_field: ClassVar[str] = "run"
    params: ClassVar[tuple[str, ...]] = ("model", "tokenizer", "forget", "retain", "train", "cfg", "description")
    saves_model: ClassVar[bool] = True

    def apply(self, model, tokenizer, forget, retain, train, options: dict | None = None, *,
              idk_answers=None, description: str | None = None, eval_hook=None, best_direction: str = "higher"):
        """``idk_answers`` and ``best_direction`` do not apply: a procedure trains no refusals and
        returns its one result, so nothing is evaluated during it (``eval_hook`` unused)."""
        cfg = self.make_config(options)
        train.check()
        if train.eval_every and eval_hook is None:  # the same contract as a loss method's
            raise LetheError("train.eval_every is set but nothing evaluates during unlearning here; run through "
                             "`lethe run` (which evaluates) or pass eval_hook=")
        return self.run(model, tokenizer, forget, retain, train, cfg, description)


@dataclass(frozen=True, kw_only=True)
class InferenceMethod(Method):
    """Leaves the target's weights alone: changes prompts, outputs or how logits are read
    (``lethe.methods.build_inference`` checks the options, times the set-up and calls ``build``)."""

    build: Callable
    family: str = "inference-time"

    kind: ClassVar[str] = "inference"
    work_field: ClassVar[str] = "build"
    params: ClassVar[tuple[str, ...]] = ("model", "tokenizer", "forget", "retain", "cfg", "train", "seed")
    saves_model: ClassVar[bool] = False
    no_model: ClassVar[str] = "an inference-time method: there is no unlearned model to save"
    refusal: ClassVar[str] = ("an inference-time method: it changes prompts or outputs, not weights; build it with "
                              "lethe.methods.build_inference (lethe run evaluates it like the others)")


@dataclass(frozen=True, kw_only=True)
class TrainingTimeMethod(Method):
    """Trains its own models from the built-in base model and deletes the forget split from them
    (SISA): there is no given model to unlearn from."""

    train: Callable
    family: str = "training-time / exact"

    kind: ClassVar[str] = "training-time"
    work_field: ClassVar[str] = "train"
    params: ClassVar[tuple[str, ...]] = ("bench", "forget_split", "tiny", "cache_dir", "cfg", "log")
    saves_model: ClassVar[bool] = False
    no_model: ClassVar[str] = ("a training-time method: its unlearned model is an ensemble of shard models, "
                               "not one model to save")
    refusal: ClassVar[str] = ("a training-time method: it trains its own shard models instead of unlearning from a "
                              "given model; evaluate it with: lethe run methods=[{name}]")


KINDS: tuple[type[Method], ...] = (LossMethod, ProcedureMethod, InferenceMethod, TrainingTimeMethod)

