"""The one run skeleton: what every scenario does the same way.

A scenario (:class:`Scenario`) declares what differs: its typed options, its data and fixed models
(target, gold standard), how it evaluates one model, its directions, notes and report fields. The
skeleton does the rest, once:

    check config -> claim the run folder -> threads + provenance -> scenario.prepare
    -> fixed models: evaluate (cached) -> for each method: unlearn -> evaluate -> attacks -> save
    -> summary -> report

and persists ``results.json`` after every model, so a killed run keeps what it finished and
``resume=true`` (``lethe run --resume RUN``) continues it; a method that fails (NaN, out of memory,
an exception) gets a row marked failed with the reason and the others go on.

Every kind of method goes through one dispatcher (:func:`apply_method`): loss methods and
procedures train the target, inference-time methods wrap it, training-time methods build their own
models; a scenario lists the kinds it can evaluate (``method_kinds``) and every other kind is the same
one-line error in every scenario.
"""
from __future__ import annotations

import dataclasses
import os
import platform
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .. import __version__
from ..config import DEFAULT_METHODS, RunConfig, to_dict
from ..errors import LetheError
from ..rundir import RunFolder, check_name, folder_bytes, stale_runs

KINDS = ("loss", "procedure", "inference", "training-time")
KIND_WORDS = {"inference": "an inference-time method (it wraps the model, no weights change)",
              "training-time": "a training-time method (it trains its own shard models)",
              "procedure": "a weight-arithmetic procedure (task vector)", "loss": "a loss method"}


def set_threads(n: int = 0) -> int:
    """Torch threads: ``n``, else OMP_NUM_THREADS, else the usable cores. Returns the count."""
    import torch

    if n <= 0:
        env = os.environ.get("OMP_NUM_THREADS", "")
        n = int(env) if env.isdigit() and int(env) > 0 else len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(n)
    return n


def jsonable(v) -> bool:
    import json

    try:
        json.dumps(v)
        return True
    except (TypeError, ValueError):
        return False


# ------------------------------------------------------------------------------------------------
# Methods: one resolver, one dispatcher


@dataclass(frozen=True)
class MethodRun:
    label: str
    method: str
    options: dict
    train: object  # TrainConfig


def resolve_methods(cfg: RunConfig, directions: dict | None = None) -> list[MethodRun]:
    """Method entries: a name, or {"method": name, "label": ..., "train": {...}, <option>: value}.
    Options, training settings and labels are checked now, before any model work."""
    from ..config import build
    from ..methods import get_method
    from ..config import TrainConfig

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
    import difflib

    known = [*directions, "unlearn_seconds"] if what == "report_columns" else list(directions)
    for c in columns:
        if c not in known:
            close = difflib.get_close_matches(str(c), known, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise LetheError(f"unknown metric '{c}' in {what}{hint} (known: {', '.join(known)})")
    return list(columns)


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


def apply_method(run: "Run", mr: MethodRun) -> Applied:
    """The one dispatcher over method kinds (``lethe.methods.kinds``): a training-time method trains its
    own models, an inference-time method wraps the target, a loss or a procedure unlearns it
    (``spec.apply``: the loss loop or the procedure)."""
    from ..methods import InferenceMethod, TrainingTimeMethod, get_method
    from ..models import load_model

    spec = get_method(mr.method)
    forget, retain = run.scenario.unlearning_data(run)
    t0 = time.perf_counter()
    if isinstance(spec, TrainingTimeMethod):  # SISA: trains (or reuses) its shard models, deletes the forget split
        model, tok, stats = spec.train(run.data, run.cfg.forget_split, run.cfg.tiny_model, run.cfg.cache_dir,
                                       spec.make_config(mr.options), log=run.log)
        wall = time.perf_counter() - t0
        from ..builtin import builtin_finetune_config

        return Applied(model, tok, {k: v for k, v in stats.items() if jsonable(v)},
                       {"unlearn": stats.get("deletion_seconds", wall), "wall": wall},
                       to_dict(builtin_finetune_config(run.cfg.tiny_model)), save=False)
    model, tok = load_model(run.target, run.cfg.trust_remote_code)
    t0 = time.perf_counter()
    if isinstance(spec, InferenceMethod):
        from ..methods import build_inference  # checks the options, times the set-up, calls spec.build

        setup = build_inference(mr.method, model, tok, forget, retain, mr.options, mr.train, seed=mr.train.seed)
        built = time.perf_counter() - t0
        run.log(f"{mr.label}: inference-time method built in {built:.1f} s (weights unchanged)")
        return Applied(setup.model, tok, {"inference_time": True, **{k: v for k, v in setup.stats.items() if jsonable(v)}},
                       {"unlearn": built}, to_dict(mr.train), setup.encoder, setup.postprocess, save=False)
    hook, direction = run.scenario.eval_hook(run, mr, tok)
    from ..train import unlearn  # a loss trains in the loop; a procedure runs by its own contract

    model, stats = unlearn(model, tok, mr.method, forget, retain, mr.train, mr.options,
                           idk_answers=run.scenario.idk_answers(run), description=f"unlearn {mr.label}",
                           eval_hook=hook, best_direction=direction)
    run.log(f"{mr.label}: {stats.steps} steps, {stats.tokens_per_second:,.0f} tokens/s, "
            f"final loss {stats.losses[-1] if stats.losses else float('nan'):.3f}")
    if stats.best:
        run.log(f"{mr.label}: best checkpoint by {stats.best['by']} ({stats.best['direction']} is better): "
                f"step {stats.best['step']} of {stats.steps} ({stats.best['value']:.4g})")
    return Applied(model, tok, stats.to_json(), {"unlearn": time.perf_counter() - t0}, to_dict(mr.train))


# ------------------------------------------------------------------------------------------------
# Scenarios


@dataclass
class Result:
    """One model's result in a scenario without the TOFU probes (``lethe.results.ModelResult`` is the
    tofu one): its summary values (the report's metrics), and ``record``: whatever per-item values the
    scenario keeps in results.json to re-aggregate."""

    name: str
    kind: str  # "target" | "retain" | "method"
    summary: dict = field(default_factory=dict)
    record: dict = field(default_factory=dict)
    method: str | None = None
    intervals: dict = field(default_factory=dict)
    robustness: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    directions: dict = field(default_factory=dict)

    def summary_row(self) -> dict:
        return {"name": self.name, "kind": self.kind, "method": self.method, "metrics": self.summary,
                "intervals": self.intervals, "robustness": self.robustness, "seconds": self.seconds,
                "config": self.config, "train": self.train}

    def to_json(self) -> dict:
        return {"name": self.name, "kind": self.kind, "method": self.method, "summary": self.summary,
                "intervals": self.intervals, "robustness": self.robustness, "seconds": self.seconds,
                "train": self.train, "config": self.config, "directions": self.directions, "record": self.record}

    @classmethod
    def from_json(cls, d: dict) -> "Result":
        return cls(**{k: d[k] for k in ("name", "kind", "summary", "record", "method", "intervals", "robustness",
                                        "seconds", "train", "config", "directions") if k in d})



@dataclass
class Fixed:
    """A model the run evaluates as it is: the target, the gold standard."""

    name: str
    kind: str  # "target" | "retain"
    source: str  # model folder or hub id
    cache: Path | None = None  # where its evaluation is cached (None: evaluated every run)
    result: Any = None  # a result known without evaluating (a retain model's results file or published log)


class Scenario:
    """What a scenario declares; the defaults are the plain job's. Subclasses override what differs."""

    name = ""
    description = ""
    options: type | None = None  # a dataclass of the scenario's options (scenario_options), or None
    default_methods: tuple | None = None  # used when the run keeps the default job's method list
    method_kinds: tuple = KINDS  # kinds of method the scenario can evaluate
    runs_attacks = True
    retain_model_refused = ""  # why retain_model= would be ignored ("": accepted)

    # -- before any work ---------------------------------------------------------------------------
    def default_name(self, run: "Run") -> str:
        return f"{self.name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"

    def configure(self, run: "Run") -> None:
        """The scenario's own defaults into ``run.cfg`` (e.g. smaller models), before anything is
        resolved; the run folder's config.yaml records the adjusted config."""

    def check(self, run: "Run") -> None:
        """Config checks of the scenario (one-line errors), before the run folder is claimed; the
        methods are resolved (``run.method_runs``) and may be adjusted here."""

    def directions(self, run: "Run") -> dict:
        raise NotImplementedError

    def skip_method(self, run: "Run", mr: MethodRun) -> str:
        """Why a method of a kind the scenario runs cannot apply here ("" = it runs); said in the notes
        (e.g. a method that trains answers to questions, in a scenario of documents)."""
        return ""

    # -- the run -----------------------------------------------------------------------------------
    def prepare(self, run: "Run") -> None:
        """Load the data (``run.data``), find or build the fixed models (``run.target``, ``run.fixed``)."""
        raise NotImplementedError

    def unlearning_data(self, run: "Run") -> tuple[list, list]:
        """(forget, retain) items the methods train on."""
        raise NotImplementedError

    def idk_answers(self, run: "Run") -> list[str] | None:
        """The refusals that methods which learn to refuse (idk, safe_unlearning) train on (None: Lethe's
        own list, ``resources/idk.txt``)."""
        return None

    def evaluate(self, run: "Run", model, tok, name: str, kind: str, retain_result=None, applied: Applied | None = None):
        """One model's result object (``summary_row()``, ``to_json()``)."""
        raise NotImplementedError

    def run_method(self, run: "Run", mr: MethodRun):
        """One method on the target: ``(result, Applied)``. The skeleton then records its cost and
        settings, attacks and saves ``Applied.model``. A scenario whose method is more than one step
        (continual: a sequence of rounds) overrides this."""
        applied = apply_method(run, mr)
        return self.evaluate(run, applied.model, applied.tokenizer, mr.label, "method", run.retain_result, applied), applied

    def load_result(self, data: dict):
        """A result object back from its ``to_json()`` (cached fixed models, resumed runs)."""
        return Result.from_json(data)

    def eval_hook(self, run: "Run", mr: MethodRun, tok):
        """``(hook(model, step) -> summary, direction of train.best_by)`` for ``train.eval_every``."""
        if mr.train.eval_every:
            raise LetheError(f"train.eval_every: the {self.name} scenario does not evaluate during unlearning; drop it")
        return None, "higher"

    def attack(self, run: "Run", model, tok, result) -> dict:
        return {}

    def finish(self, run: "Run", results: list) -> tuple[dict, dict]:
        """``(summary fields, results.json fields)`` beyond the skeleton's (notes go to ``run.notes``)."""
        return {}, {}


@dataclass
class Run:
    """Everything one run knows; the scenario fills ``data``, ``target``, ``fixed`` and ``state``."""

    scenario: Scenario
    cfg: RunConfig
    opts: Any
    log: Any
    evaluate_only: bool = False
    folder: RunFolder | None = None
    threads: int = 0
    data: Any = None
    target: str = ""
    fixed: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    method_runs: list = field(default_factory=list)
    methods_defaulted: bool = False
    retain_result: Any = None
    state: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)
    t_start: float = field(default_factory=time.perf_counter)


def build_options(scenario: Scenario, given: dict):
    """The scenario's options dataclass from ``scenario_options`` (the one config builder: unknown keys
    with "did you mean", types); a scenario without options refuses any."""
    from ..config import build

    if scenario.options is None:
        if given:
            raise LetheError(f"scenario_options {sorted(given)} given, but the {scenario.name} scenario takes none")
        return None
    return build(scenario.options, dict(given or {}), prefix="scenario_options.")


def _method_runs(run: Run, directions: dict) -> list[MethodRun]:
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


def git_sha() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def provenance(cfg: RunConfig, threads: int, data) -> dict:
    """Package versions and git SHA, time, the data's name/version/spec and content hash, hardware,
    world size, evaluation recipe and seeds; the forget split's hash where the data has one."""
    import torch
    import transformers

    from ..builtin import content_hash
    from ..evaluation import EVAL_RECIPE

    fingerprint = data.fingerprint() if hasattr(data, "fingerprint") else content_hash(
        {"name": data.name, "version": data.version, "spec": data.spec})
    out = {
        "lethe_version": __version__, "git_sha": git_sha(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "benchmark": {"name": data.name, "version": data.version, "spec": data.spec, "fingerprint": fingerprint},
        "torch": torch.__version__, "transformers": transformers.__version__,
        "hardware": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                     "cpus": os.cpu_count(), "torch_threads": threads,
                     "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
        "world_size": int(os.environ.get("WORLD_SIZE", "1")),
        "eval_recipe": EVAL_RECIPE,
        "seeds": {"run": cfg.seed, "train": cfg.train.seed, "tiny_model": cfg.tiny_model.seed},
    }
    if hasattr(data, "split_fingerprint") and getattr(data, "forget_sets", {}).get(cfg.forget_split):
        out["forget_split"] = {k: v for k, v in data.split_fingerprint(cfg.forget_split).items() if k != "ids"}
    return out


def failed_row(mr: MethodRun, error: str, seconds: float) -> dict:
    return {"name": mr.label, "kind": "method", "method": mr.method, "status": "failed", "error": error,
            "metrics": {}, "intervals": {}, "robustness": {}, "seconds": {"wall": seconds}, "config": {}, "train": {}}


def _error_text(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if not isinstance(exc, LetheError) else text


def run_scenario(scenario: Scenario, cfg: RunConfig, log=print, evaluate_only: bool = False) -> Path:
    """Run ``scenario`` with ``cfg``; returns the run folder. See the module docstring."""
    import json

    import yaml

    if cfg.retain_model and scenario.retain_model_refused:
        raise LetheError(f"scenario '{scenario.name}' takes no retain_model: {scenario.retain_model_refused}; "
                         "drop retain_model=")
    run = Run(scenario, cfg, build_options(scenario, cfg.scenario_options), log, evaluate_only)
    scenario.configure(run)
    cfg = run.cfg
    cfg.eval.check()
    if not cfg.model:  # the built-in models: their recipe is checked before anything is trained
        cfg.tiny_model.check()
    if cfg.attacks:
        from ..attacks import expand_attacks

        if not scenario.runs_attacks and tuple(cfg.attacks) != tuple(RunConfig().attacks):
            raise LetheError(f"the {scenario.name} scenario runs no robustness attacks; drop attacks=[...]")
        if scenario.runs_attacks:
            run.cfg = cfg = dataclasses.replace(cfg, attacks=tuple(expand_attacks(cfg.attacks)))
        else:
            run.cfg = cfg = dataclasses.replace(cfg, attacks=())
    directions = scenario.directions(run)
    run.method_runs = _method_runs(run, directions)  # user errors surface before any training
    scenario.check(run)
    cfg = run.cfg
    columns = check_columns(cfg.report_columns, directions)

    if getattr(cfg, "resume", False) and not cfg.name:
        raise LetheError("resume=true needs the run's name=... (or use lethe run --resume runs/<name>)")
    name = cfg.name or scenario.default_name(run)
    run.folder = folder = RunFolder(cfg.output, name).claim(cfg.overwrite, getattr(cfg, "resume", False), log)
    try:
        resolved = {**to_dict(dataclasses.replace(cfg, name=name)), "scenario_options": to_dict(run.opts) if run.opts else {}}
        resolved.pop("resume", None)
        _check_resume_config(folder, resolved)
        folder.write_text("config.yaml", yaml.safe_dump(resolved, sort_keys=False))  # the writability check too
        for stale in stale_runs(cfg.output):
            if stale != folder.partial:
                log(f"note: {stale} is an unfinished run (its process is gone): lethe run --resume "
                    f"{stale.parent / stale.name[1:-len('.partial')]} continues it, or delete the folder")
        needs_models = len(run.method_runs) if cfg.save_models else 0
        if needs_models and folder_bytes(cfg.model):
            folder.check_space(needs_models * folder_bytes(cfg.model), f"{needs_models} saved models")
        run.threads = set_threads(cfg.threads)
        scenario.prepare(run)
        if needs_models and folder_bytes(run.target) and not cfg.model:
            folder.check_space(needs_models * folder_bytes(run.target), f"{needs_models} saved models")
        run.provenance = provenance(cfg, run.threads, run.data)
        results, failed = _evaluate_all(run, folder)
        summary = _summary(run, results, failed, directions, columns)
        extra_summary, extra_results = scenario.finish(run, results)
        summary.update(extra_summary)
        summary["notes"] = list(run.notes) + summary.get("notes", [])
        _write_results(run, folder, results, failed, extra_results)
        folder.write_text("summary.json", json.dumps(summary, indent=2))
        try:
            from ..report import write_report

            write_report(folder.partial, summary)
        except Exception as exc:  # the results are safe; the report can be drawn again
            out = folder.finish()
            raise ReportFailed(f"the report could not be drawn ({_error_text(exc)}); the results are in {out}: "
                               f"lethe report {out} draws it again") from None
        return folder.finish()
    except BaseException:
        folder.discard_if_empty(log)
        raise
    finally:
        folder.release()


class ReportFailed(LetheError):
    """The run finished and its results are written, but the report failed to draw."""


def _check_resume_config(folder: RunFolder, resolved: dict) -> None:
    if not folder.resumed:
        return
    import yaml

    path = folder.partial / "config.yaml"
    if not path.exists():
        return
    saved = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    ignore = {"overwrite", "threads", "resume"}
    for key in sorted(set(saved) | set(resolved)):
        if key not in ignore and saved.get(key) != resolved.get(key):
            raise LetheError(f"resume: {key} differs from the run being resumed ({saved.get(key)!r} there, "
                             f"{resolved.get(key)!r} now); resume with the run's own config.yaml")


def _evaluate_all(run: Run, folder: RunFolder) -> tuple[list, list[dict]]:
    """Fixed models, then every method; results.json after each model; failures kept as rows."""
    import gc

    from ..models import load_model, save_model

    scenario, cfg = run.scenario, run.cfg
    done = {}
    previous = folder.read_results() if folder.resumed else None
    if previous:
        for entry in previous.get("models", []):
            done[entry["name"]] = entry
    results: list = []
    failed: list[dict] = []
    fixed = {}
    for fx in sorted(run.fixed, key=lambda f: f.kind != "retain"):  # the gold standard first: others compare with it
        fixed[fx.name] = fx.result if fx.result is not None else fixed_result(run, fx, done)
        if fx.kind == "retain":
            run.retain_result = fixed[fx.name]
    results += [fixed[fx.name] for fx in run.fixed]
    _write_results(run, folder, results, failed)
    for fx, res in zip(run.fixed, list(results)):
        if fx.kind == "retain" and cfg.attacks and fx.source and not res.robustness:  # the control
            model, tok = load_model(fx.source, cfg.trust_remote_code)
            res.robustness = scenario.attack(run, model, tok, res)
            del model
            _write_results(run, folder, results, failed)
    for mr in run.method_runs:
        if mr.label in done:
            results.append(scenario.load_result(done[mr.label]))
            run.log(f"{mr.label}: finished before, kept")
            continue
        t0 = time.perf_counter()
        try:
            res, applied = scenario.run_method(run, mr)
            res.method = mr.method
            res.seconds.update(applied.seconds)
            res.train = applied.train
            res.config = {**res.config, "method": mr.method, "options": mr.options, "train": applied.config_train}
            if cfg.attacks and applied.save and hasattr(applied.model, "config"):
                res.robustness = scenario.attack(run, applied.model, applied.tokenizer, res)
            if cfg.save_models and applied.save:
                save_model(applied.model, applied.tokenizer, folder.partial / "models" / mr.label)
        except Exception as exc:  # one method's NaN / OOM / bug: its row says why, the others go on
            reason = _error_text(exc)
            run.log(f"{mr.label}: FAILED: {reason}")
            failed.append(failed_row(mr, reason, time.perf_counter() - t0))
            _write_results(run, folder, results, failed)
            continue
        finally:
            gc.collect()
        results.append(res)
        _write_results(run, folder, results, failed)
    return results, failed


def fixed_result(run: Run, fx: Fixed, done: dict | None = None, evaluate=None):
    """A fixed model's result: from its cache entry, from the resumed run (``done``: results by name),
    or evaluated now by ``evaluate(model, tok)`` (default: the scenario's ``evaluate``)."""
    import json

    from ..benchmarks.base import atomic_write_text
    from ..models import load_model

    if fx.cache is not None and fx.cache.exists():
        try:
            return run.scenario.load_result(json.loads(fx.cache.read_text(encoding="utf-8")))
        except (ValueError, LetheError, KeyError, TypeError):
            run.log(f"cache entry {fx.cache} is damaged: evaluating the {fx.name} again and replacing it")
    elif done and fx.name in done:
        return run.scenario.load_result(done[fx.name])
    run.log(f"evaluating the {fx.name}")
    model, tok = load_model(fx.source, run.cfg.trust_remote_code)
    res = evaluate(model, tok) if evaluate else run.scenario.evaluate(run, model, tok, fx.name, fx.kind,
                                                                      run.retain_result)
    del model
    if fx.cache is not None:
        try:
            atomic_write_text(fx.cache, json.dumps(res.to_json()))
        except OSError as exc:
            run.log(f"note: could not write the cache entry {fx.cache} ({exc.strerror}); it is evaluated again next run")
    return res


def _write_results(run: Run, folder: RunFolder, results: list, failed: list[dict], extra: dict | None = None) -> None:
    import json

    data = {"schema": _schema(), "scenario": run.scenario.name, **run.state.get("results_head", {}),
            "provenance": run.provenance, **(extra or {}),
            "models": [r.to_json() for r in results], "failed": failed}
    folder.write_text("results.json", json.dumps(data))


def _schema() -> int:
    from ..results import SCHEMA_VERSION

    return SCHEMA_VERSION


def _summary(run: Run, results: list, failed: list[dict], directions: dict, columns: list) -> dict:
    extra_dirs = {k: v for r in results for k, v in (getattr(r, "directions", None) or {}).items()}
    rows = [r.summary_row() for r in results] + failed
    return {"scenario": run.scenario.name, "lethe_version": __version__,
            "rows": rows, "directions": {**directions, **extra_dirs}, "columns": columns or None,
            "failed": [f"{f['name']}: {f['error']}" for f in failed]}
