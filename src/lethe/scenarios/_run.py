"""The one run skeleton: what every scenario does the same way (docs/architecture.md, "One run").

A scenario (:class:`Scenario`) declares what differs; the skeleton checks the config, claims the run
folder, evaluates the fixed models and every method (unlearn -> evaluate -> attacks -> save) and writes
``results.json`` after every model (resume, failed methods as rows), then the summary and the report.
"""
from __future__ import annotations

import dataclasses
import gc
import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from .. import __version__, dist
from ..benchmarks.base import atomic_write_text
from ..config import RunConfig, build, to_dict, with_defaults
from ..errors import LetheError
from ..models import current_placement, load_model, placed, placement, save_model
from ..provenance import provenance, set_threads
from ..results import SCHEMA_VERSION
from ..rundir import RunFolder, stale_runs
from ..tracking import check_trackers, current, open_tracking, scoped, tracking
from ._methods import KINDS, Applied, MethodRun, apply_method, check_columns, method_runs, trains_answers


_JSON_KEYS = ("name", "kind", "method", "summary", "intervals", "robustness", "seconds", "train", "config",
              "directions", "record")


@dataclass
class Result:
    """One model's result in a scenario without the TOFU probes (those have ``lethe.results.ModelResult``):
    the report's metrics (``summary``) and whatever per-item values it keeps to re-aggregate (``record``)."""

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
        return {k: getattr(self, k) for k in _JSON_KEYS}

    @classmethod
    def from_json(cls, d: dict) -> "Result":
        return cls(**{k: d[k] for k in _JSON_KEYS if k in d})


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
    shards_evaluation = True  # its evaluation goes through lethe.evaluation.evaluate (eval.sharding applies)
    retain_model_refused = ""  # why retain_model= would be ignored ("": accepted)
    # what a results file lacks where the scenario compares model outputs: retain_model= is then a model, with model=
    retain_results_lack = ""
    result_type: type = Result  # what load_result reads back (``from_json``)
    columns: tuple = ()  # the report's main table when report_columns is not given (() = every metric)
    forget_label = ""  # the summary's forget_split ("": cfg.forget_split)
    question_methods_skipped = ""  # why methods that train answers to questions are skipped ("": they run)
    # (forget metric, utility metric): what `lethe sweep` trades by default, selecting by the first while keeping
    # 0.95 of the target's second; a scenario that declares them gives its directions without a run (() = it is
    # not swept)
    sweep_objectives: tuple = ()

    # -- before any work ---------------------------------------------------------------------------
    def default_name(self, run: "Run") -> str:
        return f"{self.name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"

    def configure(self, run: "Run") -> None:
        """The scenario's own defaults into ``run.cfg`` before anything is resolved (config.yaml records them)."""

    def check(self, run: "Run") -> None:
        """Config checks (one-line errors) before the run folder is claimed; may adjust ``run.method_runs``."""

    def directions(self, run: "Run") -> dict:
        raise NotImplementedError

    def trial_options(self, read: set) -> dict:
        """``scenario_options`` a sweep's trial sets for its cheap suite, where none of the metrics the sweep reads
        (``read``) needs what they leave out."""
        return {}

    def skip_method(self, run: "Run", mr: MethodRun) -> str:
        """Why a method cannot apply here ("" = it runs), said in the notes (default: one that trains answers to
        questions where :attr:`question_methods_skipped` says why)."""
        return self.question_methods_skipped if self.question_methods_skipped and trains_answers(mr) else ""

    # -- the run -----------------------------------------------------------------------------------
    def prepare(self, run: "Run") -> None:
        """Load the data (``run.data``), find or build the fixed models (``run.target``, ``run.fixed``)."""
        raise NotImplementedError

    def unlearning_data(self, run: "Run") -> tuple[list, list]:
        """(forget, retain) items the methods train on."""
        raise NotImplementedError

    def idk_answers(self, run: "Run") -> list[str] | None:
        """The refusals that idk and safe_unlearning train on (None: Lethe's own, ``resources/idk.txt``)."""
        return None

    def evaluate(self, run: "Run", model, tok, name: str, kind: str, retain_result=None, applied: Applied | None = None):
        """One model's result object (``summary_row()``, ``to_json()``)."""
        raise NotImplementedError

    def run_method(self, run: "Run", mr: MethodRun):
        """One method on the target: ``(result, Applied)``; the skeleton then records its cost and settings,
        attacks and saves ``Applied.model``. Continual (a sequence of rounds) overrides it."""
        applied = apply_method(run, mr)
        return self.evaluate(run, applied.model, applied.tokenizer, mr.label, "method", run.retain_result, applied), applied

    def load_result(self, data: dict):
        """A result object back from its ``to_json()`` (cached fixed models, resumed runs)."""
        return self.result_type.from_json(data)

    def eval_hook(self, run: "Run", mr: MethodRun, tok):
        """``(hook(model, step) -> summary, direction of train.best_by)`` for ``train.eval_every``."""
        if mr.train.eval_every:
            raise LetheError(f"train.eval_every: the {self.name} scenario does not evaluate during unlearning; drop it")
        return None, "higher"

    def attack(self, run: "Run", model, tok, result) -> dict:
        return {}

    def finish(self, run: "Run", results: list) -> tuple[dict, dict]:
        """``(summary fields, results.json fields)`` beyond the skeleton's: benchmark, forget split, columns
        (``run.state["columns"]`` or :attr:`columns`), provenance (with ``run.state["provenance"]``)."""
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
    """The scenario's options dataclass from ``scenario_options`` (the one config builder); none if it has none."""
    if scenario.options is None:
        if given:
            raise LetheError(f"scenario_options {sorted(given)} given, but the {scenario.name} scenario takes none")
        return None
    return build(scenario.options, dict(given or {}), prefix="scenario_options.")


def failed_row(mr: MethodRun, error: str, seconds: float) -> dict:
    return {"name": mr.label, "kind": "method", "method": mr.method, "status": "failed", "error": error,
            "metrics": {}, "intervals": {}, "robustness": {}, "seconds": {"wall": seconds}, "config": {}, "train": {}}


def _error_text(exc: BaseException) -> str:
    text = (str(exc).strip().splitlines() or [""])[0]
    return text if isinstance(exc, LetheError) else f"{type(exc).__name__}: {text}"


def run_scenario(scenario: Scenario, cfg: RunConfig, log=print, evaluate_only: bool = False) -> Path:
    """Run ``scenario`` with ``cfg``; returns the run folder. Every model it loads goes to ``cfg.device``
    in ``cfg.model_dtype`` (:func:`lethe.models.placed`)."""
    cfg.check_placement()
    with placed(placement(cfg.device, cfg.model_dtype, cfg.attn_implementation, cfg.eval.sharding)):
        return _run_scenario(scenario, cfg, log, evaluate_only)


def _run_scenario(scenario: Scenario, cfg: RunConfig, log, evaluate_only: bool) -> Path:
    if cfg.retain_model and scenario.retain_model_refused:
        raise LetheError(f"scenario '{scenario.name}' takes no retain_model: {scenario.retain_model_refused}; "
                         "drop retain_model=")
    run = Run(scenario, cfg, build_options(scenario, cfg.scenario_options), log, evaluate_only)
    scenario.configure(run)
    cfg = run.cfg
    cfg.eval.check()
    if cfg.eval.sharding != "none" and not scenario.shards_evaluation:
        raise LetheError(f"the {scenario.name} scenario evaluates through passes of its own, which eval.sharding does "
                         "not shard; set eval.sharding=none")
    if not cfg.model:  # the built-in models: their recipe is checked before anything is trained
        cfg.tiny_model.check()
    if cfg.attacks:
        from ..attacks import expand_attacks

        if not scenario.runs_attacks and tuple(cfg.attacks) != tuple(RunConfig().attacks):
            raise LetheError(f"the {scenario.name} scenario runs no robustness attacks; drop attacks=[...]")
        attacks = tuple(expand_attacks(cfg.attacks)) if scenario.runs_attacks else ()
        run.cfg = cfg = dataclasses.replace(cfg, attacks=attacks)
    directions = scenario.directions(run)
    run.method_runs = method_runs(run, directions)  # user errors surface before any training
    scenario.check(run)
    cfg = run.cfg
    if cfg.retain_model and scenario.retain_results_lack:
        if not cfg.model:
            raise LetheError(f"scenario '{scenario.name}': retain_model= goes with model= (the built-in run trains its "
                             "own retain model); drop retain_model or give model=")
        if cfg.retain_model.endswith(".json"):
            raise LetheError(f"scenario '{scenario.name}': retain_model must be a model folder or hub id (a results "
                             f"file holds no {scenario.retain_results_lack})")
    columns = check_columns(cfg.report_columns, directions)
    check_trackers(cfg.track_with)

    if cfg.resume and not cfg.name:
        raise LetheError("resume=true needs the run's name=... (or use lethe run --resume runs/<name>)")
    name = dist.broadcast(cfg.name or scenario.default_name(run))  # several processes: the first one's clock
    run.folder = folder = RunFolder(cfg.output, name).claim(cfg.overwrite, cfg.resume, log)
    try:
        resolved = {**to_dict(dataclasses.replace(cfg, name=name)), "scenario_options": to_dict(run.opts) if run.opts else {}}
        resolved.pop("resume", None)
        _check_resume_config(folder, resolved, run.opts)
        folder.write_text("config.yaml", yaml.safe_dump(resolved, sort_keys=False))  # the writability check too
        tracker = open_tracking(cfg.track_with, cfg.track_project, folder.partial / "tracking", name, resolved)
        with tracking(tracker):  # closed before the folder is renamed
            for stale in stale_runs(cfg.output):
                if stale != folder.partial:
                    log(f"note: {stale} is an unfinished run (its process is gone): lethe run --resume "
                        f"{stale.parent / stale.name[1:-len('.partial')]} continues it, or delete the folder")
            saved = len(run.method_runs) if cfg.save_models else 0
            folder.check_space(cfg.model, saved)
            run.threads = set_threads(cfg.threads)
            scenario.prepare(run)
            if not cfg.model:
                folder.check_space(run.target, saved)
            run.provenance = provenance(cfg, run.threads, run.data)
            if note := dist.launch_mixed_precision_note():
                log(f"note: {note}")
                run.notes.append(note)
            results, failed = _evaluate_all(run, folder)
            summary = _summary(run, results, failed, directions, columns)
            extra_summary, extra_results = scenario.finish(run, results)
            run.provenance = {**run.provenance, "model": run.target, **run.state.get("provenance", {}),
                              "total_seconds": time.perf_counter() - run.t_start}
            summary.update(extra_summary, provenance=run.provenance)
            summary["notes"] = list(run.notes) + summary.get("notes", [])
            _write_results(run, folder, results, failed, extra_results)
            folder.write_text("summary.json", json.dumps(summary, indent=2))
        failure = dist.broadcast(dist.on_main(_draw_report, folder.partial, summary))
        out = folder.finish()
        if failure:  # the results are safe; the report can be drawn again
            raise ReportFailed(f"the report could not be drawn ({failure}); the results are in {out}: "
                               f"lethe report {out} draws it again")
        return out
    except BaseException:
        folder.discard_if_empty(log)
        raise
    finally:
        folder.release()


def _draw_report(folder: Path, summary: dict) -> str:
    """The report's files; "" when they are drawn, else why not."""
    try:
        from ..report import write_report

        write_report(folder, summary)
    except Exception as exc:
        return _error_text(exc)
    return ""


class ReportFailed(LetheError):
    """The run finished and its results are written, but the report failed to draw."""


def _check_resume_config(folder: RunFolder, resolved: dict, opts=None) -> None:
    """A resumed run keeps its settings: one line naming the first that differs (a setting the run's
    config.yaml lacks counts as its default; ``opts``: the scenario's options, whose defaults count too)."""
    path = folder.partial / "config.yaml"
    if not folder.resumed or not path.exists():
        return
    saved = with_defaults(yaml.safe_load(path.read_text(encoding="utf-8")) or {}, RunConfig())
    if opts is not None:
        saved["scenario_options"] = with_defaults(saved.get("scenario_options") or {}, type(opts)())
    ignore = {"overwrite", "threads", "resume"}
    for key in sorted(set(saved) | set(resolved)):
        if key not in ignore and saved.get(key) != resolved.get(key):
            raise LetheError(f"resume: {key} differs from the run being resumed ({saved.get(key)!r} there, "
                             f"{resolved.get(key)!r} now); resume with the run's own config.yaml")


def _evaluate_all(run: Run, folder: RunFolder) -> tuple[list, list[dict]]:
    """Fixed models, then every method; results.json after each model; failures kept as rows."""
    scenario, cfg = run.scenario, run.cfg
    previous = (folder.read_results() if folder.resumed else None) or {}
    done = {entry["name"]: entry for entry in previous.get("models", [])}
    failed: list[dict] = []
    fixed = {}
    for fx in sorted(run.fixed, key=lambda f: f.kind != "retain"):  # the gold standard first: others compare with it
        fixed[fx.name] = fx.result if fx.result is not None else fixed_result(run, fx, done)
        if fx.kind == "retain":
            run.retain_result = fixed[fx.name]
    results: list = [fixed[fx.name] for fx in run.fixed]
    _write_results(run, folder, results, failed)
    for fx, res in zip(run.fixed, list(results)):
        current().log(res.summary, prefix=f"final/{fx.name}")
        if fx.kind == "retain" and cfg.attacks and fx.source and not res.robustness:  # the control
            model, tok = load_model(fx.source, cfg.trust_remote_code)
            with scoped(fx.name):
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
            with scoped(mr.label):  # what the trackers log is named after the method's label
                res, applied = scenario.run_method(run, mr)
                res.method = mr.method
                res.seconds.update(applied.seconds)
                res.train = applied.train
                res.config = {**res.config, "method": mr.method, "options": mr.options, "train": applied.config_train}
                if cfg.attacks and applied.save and hasattr(applied.model, "config"):
                    res.robustness = scenario.attack(run, applied.model, applied.tokenizer, res)
                if cfg.save_models and applied.save:
                    save_model(applied.model, applied.tokenizer, folder.partial / "models" / mr.label)
            results.append(res)
            current().log(res.summary, prefix=f"final/{mr.label}")
        except Exception as exc:  # one method's NaN / OOM / bug: its row says why, the others go on
            reason = _error_text(exc)
            run.log(f"{mr.label}: FAILED: {reason}")
            failed.append(failed_row(mr, reason, time.perf_counter() - t0))
        finally:
            applied = None  # this method's model leaves the device before the next one loads
            free_memory()
        _write_results(run, folder, results, failed)
    return results, failed


def free_memory() -> None:
    """Collect what the last model left; on a GPU, return the cached blocks too."""
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def placed_cache(cache: Path | None) -> Path | None:
    """A fixed model's evaluation cache entry for this placement: float32 on a CPU keeps the scenario's name,
    another device or dtype (other numbers) gets its own entry."""
    where = current_placement()
    kind = where.device.split(":")[0]
    if cache is None or (kind == "cpu" and where.dtype == "float32"):
        return cache
    return cache.with_name(f"{cache.stem}-{kind}-{where.dtype}{cache.suffix}")


def fixed_result(run: Run, fx: Fixed, done: dict | None = None, evaluate=None):
    """A fixed model's result: from its cache entry, from the resumed run (``done``: results by name),
    or evaluated now by ``evaluate(model, tok)`` (default: the scenario's ``evaluate``)."""
    fx = dataclasses.replace(fx, cache=placed_cache(fx.cache))
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
    data = {"schema": SCHEMA_VERSION, "scenario": run.scenario.name, **run.state.get("results_head", {}),
            "provenance": run.provenance, **(extra or {}),
            "models": [r.to_json() for r in results], "failed": failed}
    folder.write_text("results.json", json.dumps(data))


def _summary(run: Run, results: list, failed: list[dict], directions: dict, columns: list) -> dict:
    extra_dirs = {k: v for r in results for k, v in (getattr(r, "directions", None) or {}).items()}
    rows = [r.summary_row() for r in results] + failed
    head, scenario = run.state.get("results_head", {}), run.scenario
    return {"scenario": scenario.name, "lethe_version": __version__, "rows": rows,
            "directions": {**directions, **extra_dirs},
            "columns": columns or list(run.state.get("columns", scenario.columns)) or None,
            "failed": [f"{f['name']}: {f['error']}" for f in failed],
            "benchmark": head.get("benchmark") or {"name": run.data.name, "version": run.data.version},
            "forget_split": scenario.forget_label or run.cfg.forget_split}
