"""Experiment tracking through accelerate's trackers (TensorBoard, Weights & Biases, MLflow): docs/tracking.md.

A run opens its trackers once (:func:`open_tracking`) and makes them current for its duration
(:func:`tracking`); the training loop and the run skeleton log through :func:`current`, which does
nothing when no tracker is open, so code that logs needs no plumbing and costs nothing by default.
Only the first process of a launch opens trackers (the others get an empty :class:`Tracking`).

What a tracker receives is the same everywhere: numbers only (ints and floats, NaN and infinities
included: a diverging loss is worth seeing), nested dicts flattened with ``/``, everything else
(strings, None, booleans, lists) skipped; names keep letters, digits, ``_ - . : /`` and spaces, the
characters all three trackers accept, and any other character becomes ``_``.
"""
from __future__ import annotations

import contextlib
import contextvars
import importlib.util
import json
import os
import re
from contextlib import contextmanager
from pathlib import Path

from . import dist
from .errors import LetheError, did_you_mean

TRACKERS = ("tensorboard", "wandb", "mlflow")
PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow"}  # tracker -> pip package
_UNSAFE = re.compile(r"[^\w\-. :/]")  # MLflow's rule for names, the strictest of the three


def _names(names) -> tuple[str, ...]:
    """``names`` as a tuple of distinct tracker names, in order (a single string is one name)."""
    if names is None:
        return ()
    names = (names,) if isinstance(names, str) else tuple(names)
    for name in names:
        if not isinstance(name, str):
            raise LetheError(f"track_with: tracker names are strings ({', '.join(TRACKERS)}), got {name!r}")
    return tuple(dict.fromkeys(names))


def _installed(package: str) -> bool:
    try:
        return importlib.util.find_spec(package) is not None
    except ValueError:  # imported already, without a spec
        return True


def check_trackers(names) -> None:
    """One line (LetheError) for an unknown tracker name or a tracker whose package is not installed;
    nothing is imported (``importlib.util.find_spec`` only)."""
    for name in _names(names):
        if name not in TRACKERS:
            raise LetheError(f"track_with: unknown tracker '{name}'{did_you_mean(name, TRACKERS)} "
                             f"(known: {', '.join(TRACKERS)})")
        if not _installed(PACKAGES[name]):
            raise LetheError(f"track_with={name} needs the {PACKAGES[name]} package: pip install {PACKAGES[name]}")


def _clean(key: str) -> str:
    return _UNSAFE.sub("_", key)


def _number(value):
    """``value`` as a Python int or float, or None when it is no number (a 0-d tensor or numpy scalar counts)."""
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        value = value.item()
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _numbers(values: dict, prefix: str) -> dict:
    """The numbers of ``values`` under ``prefix/``; nested dicts joined with ``/``; the rest left out."""
    out: dict = {}
    for key, value in values.items():
        name = f"{prefix}/{key}" if prefix else str(key)
        if isinstance(value, dict):
            out.update(_numbers(value, name))
            continue
        number = _number(value)
        if number is not None:
            out[_clean(name)] = number
    return out


def _flat_config(config: dict, prefix: str = "") -> dict:
    """The run config as ``{"train.lr": 0.001, "methods": '["ga", "npo"]', ...}``: nested dicts
    flattened with ``.`` (the CLI's ``key=value`` spelling), str/int/float/bool kept, the rest as JSON."""
    out: dict = {}
    for key, value in config.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            out.update(_flat_config(value, name))
        elif isinstance(value, (str, int, float, bool)):
            out[_clean(name)] = value
        else:  # None, lists, an empty dict
            out[_clean(name)] = json.dumps(value, default=str)
    return out


class Tracking:
    """The open trackers of one run; every method is a no-op on processes other than the first and when
    none is open. ``trackers``: ``(name, accelerate tracker)`` pairs, started."""

    def __init__(self, trackers=()):
        self._trackers = list(trackers)
        self._wandb_steps: set[str] = set()  # W&B metrics given their own step axis (define_metric)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self._trackers)

    def __bool__(self) -> bool:
        return bool(self._trackers)

    def log(self, values: dict, step: int | None = None, prefix: str = "") -> None:
        """Log the numbers of ``values`` (see the module docstring), named ``prefix/key`` when ``prefix``,
        at ``step`` (None: the tracker's own count)."""
        if not self._trackers:
            return
        numbers = _numbers(values, prefix)
        if not numbers:
            return
        step = None if step is None else int(step)
        for name, tracker in self._trackers:
            if name == "wandb" and step is not None:
                self._log_wandb(tracker, numbers, step, prefix)
            else:
                tracker.log(numbers, step=step)

    def _log_wandb(self, tracker, numbers: dict, step: int, prefix: str) -> None:
        """W&B keeps one step counter per run that must only grow, while each training run of a Lethe
        run counts its steps from 1: each prefix gets its own step metric (``<prefix>/step``)."""
        axis = _clean(f"{prefix}/step" if prefix else "step")
        for key in numbers:
            if key not in self._wandb_steps and key != axis:
                tracker.tracker.define_metric(key, step_metric=axis)
                self._wandb_steps.add(key)
        tracker.log({**numbers, axis: step})

    def close(self) -> None:
        """Finish every tracker (each once; the first error, if any, is raised after all have finished)."""
        trackers, self._trackers = self._trackers, []
        error = None
        for _, tracker in trackers:
            try:
                tracker.finish()
            except Exception as exc:  # finish the others before reporting it
                error = error or exc
        if error is not None:
            raise error


_NONE = Tracking()
_CURRENT: contextvars.ContextVar[Tracking] = contextvars.ContextVar("lethe_tracking", default=_NONE)


def open_tracking(names, project: str, logging_dir, run_name: str, config: dict) -> Tracking:
    """Open the named trackers (accelerate's tracker classes) and store ``config`` (the resolved run
    config, a plain dict) once in each. TensorBoard writes under ``logging_dir``; W&B (project
    ``project``, run ``run_name``) keeps its local files there unless ``WANDB_DIR`` is set; W&B and MLflow
    otherwise follow their own environment (``WANDB_MODE``, ``MLFLOW_TRACKING_URI``, ...). On the other
    processes of a launch, and without names, an empty Tracking."""
    names = _names(names)
    check_trackers(names)
    if not names:
        return Tracking()
    import torch
    from accelerate import PartialState

    dist.init()  # a launch's process group first: before it, every process would take itself for the first
    if not dist.is_main():
        return Tracking()
    PartialState(cpu=not torch.cuda.is_available())  # accelerate's trackers need its state (loop.accelerator's)
    from accelerate.tracking import MLflowTracker, TensorBoardTracker, WandBTracker

    logging_dir = Path(logging_dir)
    flat = _flat_config(config)
    opened: list = []
    for name in names:
        try:
            if name == "tensorboard":
                tracker = TensorBoardTracker(".", logging_dir)
            elif name == "wandb":
                where = {} if os.environ.get("WANDB_DIR") else {"dir": str(logging_dir)}
                if where:
                    logging_dir.mkdir(parents=True, exist_ok=True)
                tracker = WandBTracker(project, name=run_name, **where)
            else:
                tracker = MLflowTracker(experiment_name=project, run_name=run_name)
            tracker.main_process_only = False  # Lethe decides which process logs (dist.is_main)
            if hasattr(tracker, "start"):  # older accelerate starts its trackers in __init__
                tracker.start()
            opened.append((name, tracker))
            tracker.store_init_configuration(flat)
        except Exception as exc:
            with contextlib.suppress(Exception):  # the error to report is the one that stopped the start
                Tracking(opened).close()
            text = str(exc).strip().splitlines()
            raise LetheError(f"track_with={name}: the tracker could not start ({type(exc).__name__}: "
                             f"{text[0] if text else ''}); docs/tracking.md says how to configure it") from exc
    return Tracking(opened)


def current() -> Tracking:
    """The Tracking of the enclosing :func:`tracking` block, else one that does nothing."""
    return _CURRENT.get()


_SCOPE: contextvars.ContextVar[str] = contextvars.ContextVar("lethe_tracking_scope", default="")


@contextmanager
def scoped(label: str):
    """Inside the block, :func:`prefix` names what is logged after ``label`` (a method's label, a model's name)."""
    token = _SCOPE.set(label)
    try:
        yield
    finally:
        _SCOPE.reset(token)


def prefix(kind: str, description: str = "") -> str:
    """``kind/<scope>/<description>`` without the empty parts: ``train/npo/unlearn npo``, ``eval/npo``."""
    return "/".join(part for part in (kind, _SCOPE.get(), description) if part)


@contextmanager
def tracking(t: Tracking):
    """``t`` is :func:`current` inside the block (nested blocks restore the outer one); closed at the end."""
    token = _CURRENT.set(t)
    try:
        yield t
    finally:
        _CURRENT.reset(token)
        t.close()
