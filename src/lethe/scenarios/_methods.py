"""Methods in a run: one resolver (names, options, labels, training settings, checked before any model
work) and one dispatcher over method kinds (:func:`apply_method`: loss methods and procedures train
the target, inference-time methods wrap it, training-time methods build their own models). A
scenario lists the kinds it can evaluate (``method_kinds``); every other kind is the same one-line
error in every scenario.
"""
from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from typing import Any

from ..builtin import builtin_finetune_config
from ..config import DEFAULT_METHODS, RunConfig, TrainConfig, build, to_dict
from ..errors import LetheError, did_you_mean
from ..models import load_model
from ..rundir import check_name


KINDS = ("loss", "procedure", "inference", "training-time")
QUESTION_PARTS = {"forget_idk", "retain_idk", "forget_alt"}  # batch parts that answer a question
KIND_WORDS = {"inference": "an inference-time method (it wraps the model, no weights change)",
              "training-time": "a training-time method (it trains its own shard models)",
              "procedure": "a weight-arithmetic procedure (task vector)", "loss": "a loss method"}


def jsonable(v) -> bool:
    try:
        json.dumps(v)
        return True
    except (TypeError, ValueError):
        return False


@dataclass(frozen=True)
class MethodRun:
    label: str
    method: str
    options: dict
    train: object  # TrainConfig


def resolve_methods(cfg: RunConfig, directions: dict | None = None) -> list[MethodRun]:
    """Method entries: a name, or {"method": name, "label": ..., "train": {...}, <option>: value}.
    Options, training settings and labels are checked now, before any model work."""
    from ..methods import get_method

    runs, labels = [], set()
    if not cfg.methods:
        raise LetheError("no methods to run: set methods=[ga,npo,...]")
    for entry in cfg.methods:
        if isinstance(entry, str):
            entry = {"method": entry}
        if not isinstance(entry, dict) or "method" not in entry:
            raise LetheError(f"method entry {entry!r} must be a name or a mapping with a 'method' key")
        entry = dict(entry)
        name = entry.pop("method")
        spec = get_method(name)
        train_over = entry.pop("train", {}) or {}
        label = entry.pop("label", None)
        options = {**cfg.method_options.get(name, {}), **entry}
        mcfg = spec.make_config(options)  # validates option names and values now, not after training
        if label is None:
            default_retain = getattr(spec.config(), "retain", None)
            label = name if getattr(mcfg, "retain", None) == default_retain else f"{name}+{mcfg.retain}"
        check_name(label, "method label")
        if label in labels:
            raise LetheError(f"two method entries share the label '{label}'; give one a distinct label")
        labels.add(label)
        train_cfg = build(TrainConfig, {**to_dict(cfg.train), **train_over}, prefix="train.")
        train_cfg.check()
        if train_cfg.best_by and directions is not None:
            check_columns([train_cfg.best_by], directions, what="train.best_by")
        runs.append(MethodRun(label, name, options, train_cfg))
    return runs


def check_columns(columns, directions: dict, what: str = "report_columns") -> list[str]:
    """``columns`` checked against the metric keys of ``directions`` (and ``unlearn_seconds`` for the
    report): an unknown key is a one-line error with "did you mean"."""
    known = [*directions, "unlearn_seconds"] if what == "report_columns" else list(directions)
    for c in columns:
        if c not in known:
            raise LetheError(f"unknown metric '{c}' in {what}{did_you_mean(str(c), known)} (known: {', '.join(known)})")
    return list(columns)


def trains_answers(mr: MethodRun) -> bool:
    """Whether the method trains answers to questions (``QUESTION_PARTS``): documents have none."""
    from ..methods import get_method

    spec = get_method(mr.method)
    return bool(spec.parts(spec.make_config(mr.options)) & QUESTION_PARTS)


@dataclass
class Applied:
    """A method applied to the target: the model to evaluate (``save``: whether it is one model to
    save), how to prompt and filter it (inference-time methods), and what it cost."""

    model: Any
    tokenizer: Any
    train: dict
    seconds: dict
    config_train: dict
    encoder: Any = None
    postprocess: Any = None
    save: bool = True


def apply_method(run, mr: MethodRun) -> Applied:
    """The one dispatcher over method kinds (``lethe.methods.kinds``) for a run (``_run.Run``): a
    training-time method trains its own models, an inference-time method wraps the target, a loss or
    a procedure unlearns it (``lethe.train.unlearn``: the loop, or the procedure's own contract)."""
    from ..loop import rounding_note
    from ..methods import InferenceMethod, TrainingTimeMethod, build_inference, get_method
    from ..train import unlearn  # a loss trains in the loop; a procedure runs by its own contract

    spec = get_method(mr.method)
    forget, retain = run.scenario.unlearning_data(run)
    t0 = time.perf_counter()
    if isinstance(spec, TrainingTimeMethod):  # SISA: trains (or reuses) its shard models, deletes the forget split
        model, tok, stats = spec.train(run.data, run.cfg.forget_split, run.cfg.tiny_model, run.cfg.cache_dir,
                                       spec.make_config(mr.options), log=run.log)
        wall = time.perf_counter() - t0
        return Applied(model, tok, {k: v for k, v in stats.items() if jsonable(v)},
                       {"unlearn": stats.get("deletion_seconds", wall), "wall": wall},
                       to_dict(builtin_finetune_config(run.cfg.tiny_model)), save=False)
    model, tok = load_model(run.target, run.cfg.trust_remote_code)
    t0 = time.perf_counter()
    if isinstance(spec, InferenceMethod):  # build_inference checks the options and calls spec.build
        setup = build_inference(mr.method, model, tok, forget, retain, mr.options, mr.train, seed=mr.train.seed)
        built = time.perf_counter() - t0
        run.log(f"{mr.label}: inference-time method built in {built:.1f} s (weights unchanged)")
        return Applied(setup.model, tok, {"inference_time": True, **{k: v for k, v in setup.stats.items() if jsonable(v)}},
                       {"unlearn": built}, to_dict(mr.train), setup.encoder, setup.postprocess, save=False)
    hook, direction = run.scenario.eval_hook(run, mr, tok)
    model, stats = unlearn(model, tok, mr.method, forget, retain, mr.train, mr.options,
                           idk_answers=run.scenario.idk_answers(run), description=f"unlearn {mr.label}",
                           eval_hook=hook, best_direction=direction)
    run.log(f"{mr.label}: {stats.steps} steps, {stats.tokens_per_second:,.0f} tokens/s, "
            f"final loss {stats.losses[-1] if stats.losses else float('nan'):.3f}")
    if stats.best:
        run.log(f"{mr.label}: best checkpoint by {stats.best['by']} ({stats.best['direction']} is better): "
                f"step {stats.best['step']} of {stats.steps} ({stats.best['value']:.4g})")
    if note := rounding_note(mr.label, stats, mr.train):
        run.log(f"note: {note}")
        run.notes.append(note)
    return Applied(model, tok, stats.to_json(), {"unlearn": time.perf_counter() - t0}, to_dict(mr.train))


def method_runs(run, directions: dict) -> list[MethodRun]:
    """The run's methods (``lethe.scenarios._run.Run``): the scenario's defaults where the run keeps the
    default job's list; each of a kind the scenario evaluates (else one line) and not skipped by it."""
    cfg = run.cfg
    if run.evaluate_only:
        return []
    defaulted = run.scenario.default_methods is not None and tuple(cfg.methods) == tuple(DEFAULT_METHODS)
    if defaulted:
        cfg = dataclasses.replace(cfg, methods=tuple(run.scenario.default_methods))
        run.methods_defaulted = True
    from ..methods import get_method

    if not cfg.methods:  # methods=[]: the fixed models only
        run.notes.append("methods=[]: the target and the gold standard are evaluated, nothing is unlearned")
        return []
    kept = []
    for mr in resolve_methods(cfg, directions):
        kind = get_method(mr.method).kind
        if kind not in run.scenario.method_kinds:
            raise LetheError(f"method '{mr.method}' is {KIND_WORDS[kind]}; the {run.scenario.name} scenario evaluates "
                             f"{', '.join(k + ' methods' for k in run.scenario.method_kinds)} only; drop it from methods=")
        reason = run.scenario.skip_method(run, mr)
        if reason:
            run.notes.append(f"{mr.label}: skipped ({reason})")
        else:
            kept.append(mr)
    return kept
