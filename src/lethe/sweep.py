"""``lethe sweep``: one method at its best under a stated rule (docs/sweep.md).

An Optuna study searches the method's space: ``train.lr``, ``train.epochs`` and the options its register call
declares (:attr:`lethe.methods.kinds.Method.space`), or what ``sweep.space`` gives instead. Every trial is an
ordinary run of the method, in a run folder of its own under ``trials/``, with the cheap suite (no attacks, no
bootstrap intervals, no generation unless a metric the sweep reads needs it). The objectives are metrics with their registry directions; with two or more the study
keeps a Pareto front. The study lives in ``study.db`` (SQLite, readable with Optuna's own tools) inside the
sweep folder: the same command again continues it, and a trial cut off by a kill is run again.

The rule chooses the reported point: the best trial by ``sweep.select`` among those that keep, for each metric
of ``sweep.keep``, at least that fraction of the target's value (at most the target's value divided by it, for
a metric where lower is better). With several methods (``sweep.methods``) each has its own study; their selected
points run together, with the full suite (attacks, intervals), as one run in ``selected/``. ``sweep.json`` holds
every trial, the fronts, the rule and the choices; ``report.md`` and ``report.html`` (:mod:`lethe.report.sweep`)
show them.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import dist
from .config import RunConfig, build, config_values, with_defaults
from .errors import LetheError
from .provenance import thread_count
from .rundir import RunFolder, check_name
from .sweep_pool import Here, Launch, trial_pool

SAMPLERS = ("tpe", "grid")
TRAIN_SPACE = {"train.lr": (1e-4, 1e-2, "log"), "train.epochs": (1, 10, "int")}  # every method's
SCALES = ("log", "linear", "int")
LAUNCH_MODES = ("auto", "trials", "runs")
KEEP = 0.95  # the default rule keeps this fraction of the target's utility metric


@dataclass(frozen=True)
class SweepConfig:
    method: str = ""  # the method searched (a name from lethe ls methods) ...
    # ... or several, each its own study; an entry {method: idk, retain: ap, label: idk+ap} fixes options (and
    # train settings under train:) that are then not searched; the selected points then run together
    methods: tuple = ()
    trials: int = 20  # per method
    sampler: str = "tpe"  # "tpe": Optuna's TPE (multi-objective with several objectives); "grid": every point
    grid_points: int = 3  # "grid": points per range (its ends and evenly spaced between, on its scale)
    # the tofu job's objectives, rule and constraint; another scenario left at them takes its own (for_scenario)
    objectives: tuple = ("forget_quality", "model_utility")
    select: str = "forget_quality"  # the rule: the best trial by this metric ...
    keep: dict = field(default_factory=lambda: {"model_utility": KEEP})  # ... keeping this fraction of the target's
    # the space: {"train.lr": [low, high, "log" | "linear" | "int"], "beta": [0.1, 0.2] (the values to try)};
    # a key given here replaces the method's declared dimension, a new key adds one
    space: dict = field(default_factory=dict)
    seed: int = 0
    # trials at once, each in a process of its own with threads / workers torch threads (or its own GPU where
    # there are several); > 1: the points depend on which trials end first (workers=1 repeats a study exactly)
    workers: int = 1
    # under torchrun / accelerate launch: "trials", each process runs trials of its own (N at once, one device
    # each); "runs", each trial is one run across all the processes (data-parallel, or sharded); "auto": "runs"
    # where the run shards (train.sharding, eval.sharding, the launch's accelerate config), else "trials"
    launch: str = "auto"

    def reads(self) -> set[str]:
        """The metrics the sweep reads: its objectives, the rule's metric and the kept ones."""
        return {*self.objectives, self.select, *self.keep}

    def entries(self) -> dict[str, dict]:
        """The searched methods by label: {label: {"method": name, fixed option: value, "train": {...}}}."""
        out: dict[str, dict] = {}
        for entry in self.methods or ((self.method,) if self.method else ()):
            entry = {"method": entry} if isinstance(entry, str) else dict(entry)
            if not isinstance(entry.get("method"), str):
                raise LetheError(f"sweep.methods: {entry!r} needs method: <a method from lethe ls methods>")
            fixed = {k: v for k, v in entry.items() if k not in ("method", "label")}
            words = [str(v) for v in fixed.values() if isinstance(v, (str, int, float))]
            label = str(entry.get("label") or "-".join([entry["method"], *words]))
            if label in out:
                raise LetheError(f"sweep.methods: two entries are labelled '{label}'; give each its own label")
            out[check_name(label, "sweep label")] = {"method": entry["method"], **fixed}
        return out

    def check(self) -> None:
        from .methods import get_method

        untunable = [e["method"] for e in self.entries().values()
                     if get_method(e["method"]).kind not in ("loss", "procedure")]
        problems = [
            (not self.entries(), "method", "is missing: sweep.method=<a method from lethe ls methods> (or "
             "sweep.methods=[...])"),
            (bool(untunable), "method", f"{', '.join(map(repr, untunable))} trains nothing a sweep could tune "
             f"(inference-time or training-time); sweep losses or procedures"),
            (self.trials < 1, "trials", f"must be >= 1, got {self.trials}"),
            (self.sampler not in SAMPLERS, "sampler", f"must be one of {', '.join(SAMPLERS)}, got {self.sampler!r}"),
            (self.grid_points < 2, "grid_points", f"must be >= 2, got {self.grid_points}"),
            (self.workers < 1, "workers", f"must be >= 1, got {self.workers}"),
            (self.launch not in LAUNCH_MODES, "launch",
             f"must be one of {', '.join(LAUNCH_MODES)}, got {self.launch!r}"),
            (not self.objectives, "objectives", "needs at least one metric"),
        ]
        for bad, key, text in problems:
            if bad:
                raise LetheError(f"sweep.{key} {text}")


def load_sweep_config(path=None, overrides=()) -> tuple[RunConfig, SweepConfig]:
    """The run settings and the sweep's (the ``sweep:`` section, ``sweep.key=value``) from one config."""
    values = config_values(path, overrides)
    sweep = values.pop("sweep", {}) or {}
    if not isinstance(sweep, dict):
        raise LetheError(f"config key 'sweep' must be a mapping, got {sweep!r}")
    return build(RunConfig, values), build(SweepConfig, sweep, prefix="sweep.")


def space_of(scfg: SweepConfig, label: str) -> dict:
    """The dimensions searched for the entry ``label``: {key: ("range", low, high, scale) | ("choice", values)}.
    ``sweep.space`` keys that are not the method's options or train settings are left to the methods that have
    them; what the entry fixes is not searched, nor ``alpha`` (the retain term's weight) without a retain term."""
    from .methods import get_method

    entries = scfg.entries()
    entry = entries[label]
    method = get_method(entry["method"])
    options = {f.name for f in dataclasses.fields(method.config)}
    train_keys = {f"train.{f.name}" for f in dataclasses.fields(RunConfig().train)}
    for key in scfg.space:
        if key not in train_keys and not any(key in {f.name for f in dataclasses.fields(get_method(e["method"]).config)}
                                             for e in entries.values()):
            raise LetheError(f"sweep.space: '{key}' is neither an option of "
                             f"{', '.join(sorted({e['method'] for e in entries.values()}))} nor a train.* setting")
    fixed = {k for k in entry if k not in ("method", "train")} | {f"train.{k}" for k in entry.get("train", {})}
    cfg = method.make_config({k: v for k, v in entry.items() if k not in ("method", "train")})
    if getattr(cfg, "retain", "") == "none":
        fixed.add("alpha")
    declared = {**TRAIN_SPACE, **method.space, **{k: v for k, v in scfg.space.items() if k in options | train_keys}}
    declared = {k: v for k, v in declared.items() if k not in fixed}
    space = {}
    for key, dim in declared.items():
        dim = list(dim) if isinstance(dim, (list, tuple)) else [dim]
        if len(dim) == 3 and dim[2] in SCALES and all(isinstance(v, (int, float)) for v in dim[:2]):
            low, high, scale = dim
            if not low < high or (scale == "log" and low <= 0):
                raise LetheError(f"sweep.space: '{key}' range {low}..{high} ({scale}) is empty or not positive")
            space[key] = ("range", low, high, scale)
        elif dim:
            space[key] = ("choice", tuple(dim))
        else:
            raise LetheError(f"sweep.space: '{key}' has no values")
    options_fixed = {k: v for k, v in entry.items() if k not in ("method", "train")}
    for key, dim in space.items():  # every end of a range and every value, checked before any trial runs
        for value in (dim[1:3] if dim[0] == "range" else dim[1]):
            try:
                if key.startswith("train."):
                    train = RunConfig().train
                    build(type(train), {key[len("train."):]: value}, prefix="train.", base=train).check()
                else:
                    method.make_config({**options_fixed, key: value})
            except LetheError as exc:
                raise LetheError(f"sweep.space: '{key}' = {value!r} for {label}: {exc}") from None
    return space


def grid(space: dict, points: int) -> dict:
    """Each dimension as the grid sampler's list of values."""
    out = {}
    for key, dim in space.items():
        if dim[0] == "choice":
            out[key] = list(dim[1])
            continue
        _, low, high, scale = dim
        if scale == "log":
            values = [low * (high / low) ** (i / (points - 1)) for i in range(points)]
        else:
            values = [low + (high - low) * i / (points - 1) for i in range(points)]
        out[key] = sorted({round(v) for v in values}) if scale == "int" else [float(f"{v:.4g}") for v in values]
    return out


def suggest(trial, space: dict) -> dict:
    params = {}
    for key, dim in space.items():
        if dim[0] == "choice":
            params[key] = trial.suggest_categorical(key, list(dim[1]))
        elif dim[3] == "int":
            params[key] = trial.suggest_int(key, int(dim[1]), int(dim[2]))
        else:
            params[key] = trial.suggest_float(key, float(dim[1]), float(dim[2]), log=dim[3] == "log")
    return params


def method_entry(entry: dict, label: str, params: dict) -> dict:
    """A ``methods=`` entry: the sweep entry's fixed settings with the options and train settings of ``params``."""
    train = {**entry.get("train", {}), **{k.split(".", 1)[1]: v for k, v in params.items() if k.startswith("train.")}}
    return {**{k: v for k, v in entry.items() if k != "train"}, "label": label,
            **{k: v for k, v in params.items() if not k.startswith("train.")}, **({"train": train} if train else {})}


def pareto(points: list[tuple], directions: list[str]) -> list[int]:
    """Indices of the points no other point dominates (at least as good in every objective, better in one)."""
    sign = [1 if d == "higher" else -1 for d in directions]
    keyed = [tuple(s * v for s, v in zip(sign, p)) for p in points]
    return [i for i, p in enumerate(keyed)
            if not any(all(a >= b for a, b in zip(q, p)) and q != p for q in keyed)]


def rule_text(directions: dict, by: str, keep: dict) -> str:
    """The selection rule in words."""
    def bound(key: str, frac: float) -> str:
        higher = directions.get(key, "higher") == "higher"
        return f"{key} {'>=' if higher else '<='} {f'{frac:g}' if higher else f'1/{frac:g}'} x the target's"

    return (f"{'highest' if directions.get(by, 'higher') == 'higher' else 'lowest'} {by}"
            + (f" with {' and '.join(bound(k, v) for k, v in keep.items())}" if keep else ""))


def select(trials: list[dict], target: dict, directions: dict, by: str, keep: dict) -> tuple[dict | None, str]:
    """The rule's trial (``trials``: {"number", "metrics"}; ties: the earlier) and the rule in words."""
    def kept(m: dict) -> bool:
        for key, frac in keep.items():
            value, ref = m.get(key), target.get(key)
            if value is None or ref is None or not math.isfinite(value):
                return False
            if not (value >= frac * ref if directions.get(key, "higher") == "higher" else value <= ref / frac):
                return False
        return True

    rule = rule_text(directions, by, keep)
    candidates = [t for t in trials if kept(t["metrics"]) and math.isfinite(t["metrics"].get(by, math.nan))]
    if not candidates:
        return None, rule
    sign = 1 if directions.get(by, "higher") == "higher" else -1
    return max(candidates, key=lambda t: (sign * t["metrics"][by], -t["number"])), rule


def run_sweep(cfg: RunConfig, scfg: SweepConfig, log=print) -> Path:
    """Run (or continue) the sweep; returns its folder. Under torchrun / accelerate launch every process calls
    it: the first holds the studies and hands out the trials (``sweep.launch``), the others run them."""
    from .pipeline import run
    from .scenarios import get_scenario, scenario_names

    scfg.check()
    scenario = get_scenario(cfg.scenario)
    if not scenario.sweep_objectives:
        swept = [n for n in scenario_names() if get_scenario(n).sweep_objectives]
        raise LetheError(f"lethe sweep tunes methods in the {', '.join(swept)} scenarios (a forget metric against a "
                         f"utility metric per method); got scenario={cfg.scenario}")
    scfg = for_scenario(scfg, scenario.sweep_objectives)
    directions = scenario.directions(None)
    for key in (*scfg.objectives, scfg.select, *scfg.keep):
        if key not in directions:
            raise LetheError(f"sweep: '{key}' is not a metric of the {cfg.scenario} scenario (lethe ls metrics)")
    entries = scfg.entries()
    spaces = {label: space_of(scfg, label) for label in entries}
    mode = launch_mode(cfg, scfg, entries)
    name = check_name(cfg.name or f"sweep-{'-'.join(entries)}")
    folder = RunFolder(cfg.output, name)
    resume = dist.broadcast(not cfg.overwrite and (folder.partial.is_dir() or folder.final.is_dir()))
    # each trial's torch threads, and the selected run's: the built-in models are trained (and cached) per thread
    # count, so every run of the sweep evaluates the same target and retain model
    threads = max(1, thread_count(cfg.threads) // scfg.workers)
    cfg = dataclasses.replace(cfg, threads=threads)
    record = json.loads(json.dumps({"config": dataclasses.asdict(cfg), "sweep": dataclasses.asdict(scfg)}, default=list))
    if resume:
        dist.on_main(_check_continued, folder, record)
    folder.claim(cfg.overwrite, resume, lambda *_: None)
    if resume:
        log(f"continuing the sweep in {folder.final} (its studies: {folder.final / 'study.db'})")
    if scfg.workers > 1:
        log(f"{scfg.workers} trials at once, {threads} thread{'s' * (threads > 1)} each")
    if mode == "trials":
        log(f"{dist.world()} trials at once, one in each process of the launch")
    elif mode == "runs":
        log(f"each trial runs across the {dist.world()} processes of the launch")
    pool = Here()
    try:
        pool = Launch(mode) if mode else trial_pool(scfg.workers, cfg.device)  # inside: the name is let go
        trial_cfg = dataclasses.replace(cfg, attacks=(), eval=trial_eval(cfg.eval, scfg),
                                        scenario_options={**cfg.scenario_options, **scenario.trial_options(scfg.reads())},
                                        output=str(folder.partial / "trials"), overwrite=True, resume=False,
                                        save_models=False, track_with=())

        def studies() -> dict:  # the first process's part
            folder.write_text("config.yaml", json.dumps(record, indent=2))
            return {label: _study(label, entry, spaces[label], scfg, directions, folder, trial_cfg, pool, log)
                    for label, entry in entries.items()}

        methods = (pool.lead(studies) if dist.is_main() else pool.follow()) if mode else studies()
        pool.shutdown()  # the workers' memory goes before the selected run
        result, chosen = dist.broadcast(dist.on_main(_choose, methods, entries, directions, scfg, log))
        if chosen:
            log("the selected points run with the full suite: " + ", ".join(e["label"] for e in chosen))
            run(dataclasses.replace(cfg, output=str(folder.partial), name="selected", overwrite=True, resume=False,
                                    methods=chosen), log=log)  # in a launch: one run across its processes
            result["selected_run"] = "selected"
        dist.on_main(_write_result, folder, result)
        return folder.finish()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)  # a trial still running ends with this process
        folder.release()


def for_scenario(scfg: SweepConfig, objectives: tuple) -> SweepConfig:
    """The sweep with the scenario's (forget metric, utility metric) wherever it keeps the defaults (the tofu
    job's): the objectives, the rule's metric and the kept metric."""
    forget, utility = objectives
    default = SweepConfig()
    return dataclasses.replace(
        scfg, objectives=objectives if tuple(scfg.objectives) == default.objectives else scfg.objectives,
        select=forget if scfg.select == default.select else scfg.select,
        keep={utility: KEEP} if dict(scfg.keep) == default.keep else scfg.keep)


def launch_mode(cfg: RunConfig, scfg: SweepConfig, entries: dict) -> str:
    """How the processes of a launch share the sweep: "" (one process), "trials" or "runs" (``sweep.launch``)."""
    dist.init()
    if dist.world() == 1:
        return ""
    if scfg.workers > 1:
        raise LetheError(f"sweep.workers={scfg.workers}: under a launch its {dist.world()} processes run the trials "
                         "(sweep.launch); set sweep.workers=1")
    shards = next((what for what, value in [
        ("train.sharding", cfg.train.sharding), ("eval.sharding", cfg.eval.sharding),
        ("the launch's accelerate config", dist.launch_sharding() or "none"),
        *((f"the entry {label}'s train.sharding", e.get("train", {}).get("sharding", "none"))
          for label, e in entries.items())] if value != "none"), "")
    mode = scfg.launch if scfg.launch != "auto" else "runs" if shards else "trials"
    if mode == "trials" and shards:
        raise LetheError(f"sweep.launch=trials runs each trial in one process, which shards nothing, but {shards} "
                         "shards the model; set sweep.launch=runs (each trial across all the processes)")
    return mode


def _choose(methods: dict, entries: dict, directions: dict, scfg: SweepConfig, log) -> tuple[dict, tuple]:
    """The sweep's result (its trials, fronts and the rule's choices) and the ``methods=`` entries of the
    selected points."""
    result = {"rule": rule_text(directions, scfg.select, dict(scfg.keep)), "select": scfg.select,
              "sampler": scfg.sampler, "objectives": {o: directions[o] for o in scfg.objectives}, "methods": methods}
    fixed = next((res["fixed"] for res in methods.values() if res["fixed"]), {})  # the same in every study
    for res in methods.values():
        del res["fixed"]
    result.update(target=fixed.get("target", {}), retain=fixed.get("retain", {}))
    for m, res in methods.items():
        chosen, _ = select(res["trials"], result["target"], directions, scfg.select, dict(scfg.keep))
        res["selected"] = chosen["number"] if chosen else None
        if chosen is None:
            log(f"{m}: no trial meets the rule ({result['rule']}): nothing selected")
    points = {m: next(t["params"] for t in res["trials"] if t["number"] == res["selected"])
              for m, res in methods.items() if res["selected"] is not None}
    chosen = tuple(method_entry(entries[m], m, params) for m, params in points.items())
    return result, chosen


def _write_result(folder: RunFolder, result: dict) -> None:
    from .report.sweep import write_sweep_report

    folder.write_text("sweep.json", json.dumps(result, indent=2))
    write_sweep_report(folder.partial, result)


def trial_eval(eval_cfg, scfg: SweepConfig):
    """A trial's evaluation, the cheap suite: no bootstrap intervals, and no generation pass when every metric
    the sweep reads (objectives, ``select``, ``keep``) comes from the scoring passes alone."""
    from .evaluation import WITHOUT_GENERATION

    return dataclasses.replace(eval_cfg, bootstrap=0,
                               generate=eval_cfg.generate and not scfg.reads() <= set(WITHOUT_GENERATION))


def _check_continued(folder: RunFolder, record: dict) -> None:
    """A continued sweep keeps its settings (but for more trials, threads and the output): one line otherwise."""
    path = next((f / "config.yaml" for f in (folder.partial, folder.final) if (f / "config.yaml").is_file()), None)
    if path is None:
        return
    # a setting newer than the record counts as its default
    saved = with_defaults(json.loads(path.read_text(encoding="utf-8")), {"config": RunConfig(), "sweep": SweepConfig()})
    # the threads of a trial (config.threads: the count per trial) stay: the built-in models differ by it
    free = {("sweep", "trials"), ("sweep", "workers"), ("sweep", "launch"), ("config", "overwrite"),
            ("config", "output")}
    if record["config"].get("model"):  # a given model is the same at any thread count
        free.add(("config", "threads"))
    for part in ("config", "sweep"):
        for key in sorted(set(saved.get(part, {})) | set(record[part])):
            if (part, key) not in free and saved.get(part, {}).get(key) != record[part].get(key):
                name = f"sweep.{key}" if part == "sweep" else key
                what = "threads per trial" if (part, key) == ("config", "threads") else name
                raise LetheError(f"{folder.final} is a sweep with {what}={saved.get(part, {}).get(key)!r}, not "
                                 f"{record[part].get(key)!r}: continue it with its own settings (only sweep.trials, "
                                 "sweep.workers and sweep.launch may change, and threads where each trial keeps its "
                                 "count), or give another name= (or overwrite=true)")


def _study(method: str, entry: dict, space: dict, scfg: SweepConfig, directions: dict, folder: RunFolder,
           trial_cfg: RunConfig, pool, log) -> dict:
    """The study of the entry labelled ``method`` (``entry``: its fixed settings), continued up to ``scfg.trials``
    complete trials: its trials, front and sensitivity."""
    import optuna

    from .report.sweep import params_text

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    points = grid(space, scfg.grid_points)
    n_trials = min(scfg.trials, math.prod(len(v) for v in points.values())) if scfg.sampler == "grid" else scfg.trials

    class Grid(optuna.samplers.GridSampler):
        def after_trial(self, *args) -> None:  # the loop counts its trials: Study.stop works in optimize() only
            pass

    # trials at once: TPE takes the running ones as if they had ended at the worst value seen (constant liar), so
    # it does not ask for the same point again meanwhile
    capacity = getattr(pool, "capacity", scfg.workers)  # trials at once
    sampler = (Grid(points, seed=scfg.seed) if scfg.sampler == "grid"
               else optuna.samplers.TPESampler(seed=scfg.seed, constant_liar=capacity > 1))
    study = optuna.create_study(study_name=method, storage=f"sqlite:///{folder.partial / 'study.db'}",
                                load_if_exists=True, sampler=sampler,
                                directions=["maximize" if directions[o] == "higher" else "minimize"
                                            for o in scfg.objectives])
    complete = optuna.trial.TrialState.COMPLETE
    for stale in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        log(f"{method}: trial {stale.number} was cut off: its unfinished run folder goes, its point runs again")
        cut = RunFolder(folder.partial / "trials", f"{method}-{stale.number:03d}")
        shutil.rmtree(cut.partial, ignore_errors=True)
        cut.lock.unlink(missing_ok=True)
        study.tell(stale.number, state=optuna.trial.TrialState.FAIL)
        study.enqueue_trial(stale.params)
    todo = max(0, n_trials - len(study.get_trials(deepcopy=False, states=(complete,))))
    running: dict = {}  # a failed trial is not retried here (the next call tries again)
    while todo or running:
        while todo and len(running) < capacity:
            trial = study.ask()
            params = suggest(trial, space)
            t0 = time.perf_counter()
            job = pool.submit(run_trial, trial_cfg, method, trial.number, entry, params)
            running[job] = (trial, params, t0)
            todo -= 1
        if hasattr(pool, "flush"):
            pool.flush()  # a launch runs the trials asked for, one round at a time
        ended, _ = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
        for job in sorted(ended, key=lambda j: running[j][0].number):
            trial, params, t0 = running.pop(job)
            try:
                rows = job.result()
            except concurrent.futures.BrokenExecutor:
                raise LetheError(f"{method}: trial {trial.number}'s process ended without a result (killed, or out of "
                                 "memory?); the same command continues the study") from None
            except LetheError as exc:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                log(f"{method}: trial {trial.number} ({params_text(params)}): failed: {exc}")
                continue
            row = next(r for r in rows if r["name"] == f"{method}-t{trial.number:03d}")
            if missing := [o for o in scfg.objectives if o not in row["metrics"]]:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                raise LetheError(f"sweep: the run reports no {', '.join(map(repr, missing))} (forget quality, for one, "
                                 "needs a retain model); choose sweep.objectives among its metrics: "
                                 + ", ".join(sorted(row["metrics"])))
            trial.set_user_attr("metrics", row["metrics"])
            study.set_user_attr("fixed", {r["kind"]: r["metrics"] for r in rows if r["kind"] in ("target", "retain")})
            trial.set_user_attr("seconds", getattr(job, "seconds", None) or time.perf_counter() - t0)
            if hasattr(job, "process"):
                trial.set_user_attr("process", job.process)
            values = [row["metrics"][o] for o in scfg.objectives]
            study.tell(trial, values)
            log(f"{method}: trial {trial.number} ({params_text(params)}): "
                + ", ".join(f"{o} {v:.4g}" for o, v in zip(scfg.objectives, values)))
    trials = [{"number": t.number, "params": t.params, "metrics": t.user_attrs["metrics"],
               "seconds": t.user_attrs.get("seconds"), "run": f"trials/{method}-{t.number:03d}",
               **({"process": t.user_attrs["process"]} if "process" in t.user_attrs else {})}
              for t in study.get_trials(deepcopy=False, states=(complete,))]
    front = pareto([tuple(t["metrics"][o] for o in scfg.objectives) for t in trials],
                   [directions[o] for o in scfg.objectives])
    return {"space": {k: list(v[1:]) for k, v in space.items()}, "trials": trials,
            "pareto": [trials[i]["number"] for i in front], "seconds": sum(t["seconds"] or 0 for t in trials),
            "sensitivity": _sensitivity(study, scfg), "fixed": study.user_attrs.get("fixed", {})}


def run_trial(trial_cfg: RunConfig, method: str, number: int, entry: dict, params: dict) -> list[dict]:
    """One trial: the run of the entry at ``params`` in ``trials/<method>-<number>``; its summary rows (a failed
    method is a :class:`LetheError` with its reason)."""
    from .pipeline import run

    label = f"{method}-t{number:03d}"
    out = run(dataclasses.replace(trial_cfg, name=f"{method}-{number:03d}", methods=(method_entry(entry, label, params),)),
              log=lambda *_: None)
    if not dist.is_main():  # a trial run across a launch's processes: the first has its rows
        return []
    rows = json.loads((out / "summary.json").read_text(encoding="utf-8"))["rows"]
    row = next(r for r in rows if r["name"] == label)
    if row.get("status") == "failed":
        raise LetheError(row["error"])
    return rows


def _sensitivity(study, scfg: SweepConfig) -> dict:
    """Optuna's fANOVA importance of each parameter for ``sweep.select`` ({} with too few trials to tell)."""
    import optuna

    trials = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(trials) < 3:
        return {}
    try:
        return dict(optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=scfg.seed),
            target=lambda t: t.user_attrs["metrics"][scfg.select]))
    except (RuntimeError, ValueError, ImportError):  # every trial alike, or a parameter that never varied
        return {}
