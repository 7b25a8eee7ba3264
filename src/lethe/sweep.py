"""``lethe sweep``: one method at its best under a stated rule (docs/sweep.md).

An Optuna study searches the method's space: ``train.lr``, ``train.epochs`` and the options its register call
declares (:attr:`lethe.methods.kinds.Method.space`), or what ``sweep.space`` gives instead. Every trial is an
ordinary run of the method, in a run folder of its own under ``trials/``, with the cheap suite (no attacks, no
bootstrap intervals). The objectives are metrics with their registry directions; with two or more the study
keeps a Pareto front. The study lives in ``study.db`` (SQLite, readable with Optuna's own tools) inside the
sweep folder: the same command again continues it, and a trial cut off by a kill is run again.

The rule chooses the reported point: the best trial by ``sweep.select`` among those that keep, for each metric
of ``sweep.keep``, at least that fraction of the target's value (at most the target's value divided by it, for
a metric where lower is better). That point runs again with the full suite (attacks, intervals) into
``selected/``. ``sweep.json`` and ``sweep.md`` hold every trial, the front, the rule and the choice.
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from .config import RunConfig, build, config_values
from .errors import LetheError
from .rundir import RunFolder, check_name

SAMPLERS = ("tpe", "grid")
TRAIN_SPACE = {"train.lr": (1e-4, 1e-2, "log"), "train.epochs": (1, 10, "int")}  # every method's
SCALES = ("log", "linear", "int")


@dataclass(frozen=True)
class SweepConfig:
    method: str = ""  # the method searched (a name from lethe ls methods)
    trials: int = 20
    sampler: str = "tpe"  # "tpe": Optuna's TPE (multi-objective with several objectives); "grid": every point
    grid_points: int = 3  # "grid": points per range (its ends and evenly spaced between, on its scale)
    objectives: tuple = ("forget_quality", "model_utility")
    select: str = "forget_quality"  # the rule: the best trial by this metric ...
    keep: dict = field(default_factory=lambda: {"model_utility": 0.95})  # ... keeping this fraction of the target's
    # the space: {"train.lr": [low, high, "log" | "linear" | "int"], "beta": [0.1, 0.2] (the values to try)};
    # a key given here replaces the method's declared dimension, a new key adds one
    space: dict = field(default_factory=dict)
    seed: int = 0

    def check(self) -> None:
        from .methods import get_method

        method = get_method(self.method) if self.method else None
        problems = [
            (not self.method, "method", "is missing: sweep.method=<a method from lethe ls methods>"),
            (method is not None and method.kind not in ("loss", "procedure"), "method",
             f"{self.method!r} trains nothing a sweep could tune (it is {method.kind if method else ''}); "
             "sweep a loss or a procedure"),
            (self.trials < 1, "trials", f"must be >= 1, got {self.trials}"),
            (self.sampler not in SAMPLERS, "sampler", f"must be one of {', '.join(SAMPLERS)}, got {self.sampler!r}"),
            (self.grid_points < 2, "grid_points", f"must be >= 2, got {self.grid_points}"),
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


def space_of(scfg: SweepConfig) -> dict:
    """The searched dimensions: {key: ("range", low, high, scale) | ("choice", values)}."""
    from .methods import get_method

    method = get_method(scfg.method)
    declared = {**TRAIN_SPACE, **method.space, **scfg.space}
    options = {f.name for f in dataclasses.fields(method.config)}
    train_keys = {f"train.{f.name}" for f in dataclasses.fields(RunConfig().train)}
    space = {}
    for key, dim in declared.items():
        if key not in options and key not in train_keys:
            raise LetheError(f"sweep.space: '{key}' is neither an option of {scfg.method} ({', '.join(sorted(options))}) "
                             "nor a train.* setting")
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


def method_entry(method: str, label: str, params: dict) -> dict:
    """A ``methods=`` entry: the method's options and train settings of ``params``."""
    train = {k.split(".", 1)[1]: v for k, v in params.items() if k.startswith("train.")}
    return {"method": method, "label": label, **{k: v for k, v in params.items() if not k.startswith("train.")},
            **({"train": train} if train else {})}


def pareto(points: list[tuple], directions: list[str]) -> list[int]:
    """Indices of the points no other point dominates (at least as good in every objective, better in one)."""
    sign = [1 if d == "higher" else -1 for d in directions]
    keyed = [tuple(s * v for s, v in zip(sign, p)) for p in points]
    return [i for i, p in enumerate(keyed)
            if not any(all(a >= b for a, b in zip(q, p)) and q != p for q in keyed)]


def select(trials: list[dict], target: dict, directions: dict, by: str, keep: dict) -> tuple[dict | None, str]:
    """The rule's trial (``trials``: {"number", "metrics"}) and the rule in words."""
    def kept(m: dict) -> bool:
        for key, frac in keep.items():
            value, ref = m.get(key), target.get(key)
            if value is None or ref is None or not math.isfinite(value):
                return False
            if not (value >= frac * ref if directions.get(key, "higher") == "higher" else value <= ref / frac):
                return False
        return True

    conditions = [f"{k} {'>=' if directions.get(k, 'higher') == 'higher' else '<='} "
                  f"{f'{v:g} x' if directions.get(k, 'higher') == 'higher' else f'1/{v:g} x'} the target's"
                  for k, v in keep.items()]
    rule = f"{'highest' if directions.get(by, 'higher') == 'higher' else 'lowest'} {by}" + \
        (f" with {' and '.join(conditions)}" if conditions else "")
    candidates = [t for t in trials if kept(t["metrics"]) and math.isfinite(t["metrics"].get(by, math.nan))]
    if not candidates:
        return None, rule
    sign = 1 if directions.get(by, "higher") == "higher" else -1
    return max(candidates, key=lambda t: (sign * t["metrics"][by], -t["number"])), rule


def run_sweep(cfg: RunConfig, scfg: SweepConfig, log=print) -> Path:
    """Run (or continue) the sweep; returns its folder."""
    import optuna

    from .pipeline import run
    from .scenarios.tofu import directions as tofu_directions

    scfg.check()
    if cfg.scenario != "tofu":
        raise LetheError(f"lethe sweep tunes methods in the tofu scenario (forget quality against a retain model); "
                         f"got scenario={cfg.scenario}")
    directions = tofu_directions()
    for key in (*scfg.objectives, scfg.select, *scfg.keep):
        if key not in directions:
            raise LetheError(f"sweep: '{key}' is not a metric of the run (lethe ls metrics)")
    space = space_of(scfg)
    points = grid(space, scfg.grid_points)
    n_trials = min(scfg.trials, math.prod(len(v) for v in points.values())) if scfg.sampler == "grid" else scfg.trials
    name = check_name(cfg.name or f"sweep-{scfg.method}")
    folder = RunFolder(cfg.output, name)
    resume = not cfg.overwrite and (folder.partial.is_dir() or folder.final.is_dir())
    folder.claim(cfg.overwrite, resume, lambda *_: None)
    if resume:
        log(f"continuing the sweep in {folder.final} (its study: {folder.final / 'study.db'})")
    try:
        record = {"config": dataclasses.asdict(cfg), "sweep": dataclasses.asdict(scfg)}
        folder.write_text("config.yaml", json.dumps(record, indent=2, default=list))
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        class Grid(optuna.samplers.GridSampler):
            def after_trial(self, *args) -> None:  # the loop counts its trials: Study.stop works in optimize() only
                pass

        sampler = Grid(points, seed=scfg.seed) if scfg.sampler == "grid" else optuna.samplers.TPESampler(seed=scfg.seed)
        study = optuna.create_study(study_name=scfg.method, storage=f"sqlite:///{folder.partial / 'study.db'}",
                                    load_if_exists=True, sampler=sampler,
                                    directions=["maximize" if directions[o] == "higher" else "minimize"
                                                for o in scfg.objectives])
        for stale in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            log(f"trial {stale.number} was cut off: it is run again")
            study.tell(stale.number, state=optuna.trial.TrialState.FAIL)
            study.enqueue_trial(stale.params)
        trial_cfg = dataclasses.replace(cfg, attacks=(), eval=dataclasses.replace(cfg.eval, bootstrap=0),
                                        output=str(folder.partial / "trials"), overwrite=True, resume=False,
                                        save_models=False, track_with=())
        fixed: dict = {}
        done = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))
        for _ in range(max(0, n_trials - done)):  # a failed trial is not retried here (the next call tries again)
            trial = study.ask()
            params = suggest(trial, space)
            label = f"{scfg.method}-t{trial.number:03d}"
            t0 = time.perf_counter()
            try:
                out = run(dataclasses.replace(trial_cfg, name=f"trial-{trial.number:03d}",
                                              methods=(method_entry(scfg.method, label, params),)), log=lambda *_: None)
                rows = json.loads((out / "summary.json").read_text(encoding="utf-8"))["rows"]
                row = next(r for r in rows if r["name"] == label)
                if row.get("status") == "failed":
                    raise LetheError(row["error"])
            except LetheError as exc:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                log(f"trial {trial.number} ({_params_text(params)}): failed: {exc}")
                continue
            metrics = row["metrics"]
            fixed.update({r["kind"]: r["metrics"] for r in rows if r["kind"] in ("target", "retain")})
            trial.set_user_attr("metrics", metrics)
            trial.set_user_attr("seconds", time.perf_counter() - t0)
            values = [metrics[o] for o in scfg.objectives]
            study.tell(trial, values)
            log(f"trial {trial.number} ({_params_text(params)}): "
                + ", ".join(f"{o} {v:.4g}" for o, v in zip(scfg.objectives, values)))
        result = _result(study, scfg, directions, space, fixed, folder)
        if result["selected"] is not None:
            chosen = next(t for t in result["trials"] if t["number"] == result["selected"])
            log(f"selected: trial {chosen['number']} ({_params_text(chosen['params'])}); running it with the full suite")
            run(dataclasses.replace(cfg, output=str(folder.partial), name="selected", overwrite=True, resume=False,
                                    methods=(method_entry(scfg.method, scfg.method, chosen["params"]),)), log=log)
        else:
            log(f"no trial meets the rule ({result['rule']}): nothing selected")
        folder.write_text("sweep.json", json.dumps(result, indent=2))
        folder.write_text("sweep.md", sweep_markdown(result))
        return folder.finish()
    finally:
        folder.release()


def _params_text(params: dict) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def _result(study, scfg: SweepConfig, directions: dict, space: dict, fixed: dict, folder: RunFolder) -> dict:
    import optuna

    trials = []
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        trials.append({"number": t.number, "params": t.params, "metrics": t.user_attrs["metrics"],
                       "seconds": t.user_attrs.get("seconds"), "run": f"trials/trial-{t.number:03d}"})
    if not fixed and trials:  # a continued sweep with nothing new to run: the fixed models from a trial's run
        rows = json.loads((folder.partial / trials[0]["run"] / "summary.json").read_text(encoding="utf-8"))["rows"]
        fixed = {r["kind"]: r["metrics"] for r in rows if r["kind"] in ("target", "retain")}
    obj_dirs = [directions[o] for o in scfg.objectives]
    front = pareto([tuple(t["metrics"][o] for o in scfg.objectives) for t in trials], obj_dirs)
    chosen, rule = select(trials, fixed.get("target", {}), directions, scfg.select, dict(scfg.keep))
    return {"method": scfg.method, "sampler": scfg.sampler, "space": {k: list(v[1:]) for k, v in space.items()},
            "objectives": dict(zip(scfg.objectives, obj_dirs)), "rule": rule, "trials": trials,
            "pareto": [trials[i]["number"] for i in front], "selected": chosen["number"] if chosen else None,
            "target": fixed.get("target", {}), "retain": fixed.get("retain", {}),
            "seconds": sum(t["seconds"] or 0 for t in trials)}


def sweep_markdown(result: dict) -> str:
    """The leaderboard line, the rule and every trial (the Pareto front marked)."""
    keys = list(dict.fromkeys([*result["objectives"], *(k for k in ("forget_quality", "model_utility")
                                                       if k in result["target"])]))
    params = list(result["space"])
    lines = [f"# Sweep: {result['method']}", "",
             f"Rule: {result['rule']}. {len(result['trials'])} trials ({result['sampler']}), "
             f"{result['seconds']:.0f} s.", ""]
    chosen = next((t for t in result["trials"] if t["number"] == result["selected"]), None)
    lines += ["| | " + " | ".join(keys + params) + " |", "|" + " --- |" * (1 + len(keys) + len(params))]
    for name, kind in (("target", "target"), ("retain model", "retain")):
        lines.append(f"| {name} | " + " | ".join(_fmt(result[kind].get(k)) for k in keys) + " |" + " |" * len(params))
    for t in result["trials"]:
        mark = " (selected)" if t is chosen else ""
        front = " *" if t["number"] in result["pareto"] else ""
        lines.append(f"| trial {t['number']}{front}{mark} | " + " | ".join(_fmt(t["metrics"].get(k)) for k in keys)
                     + " | " + " | ".join(_fmt(t["params"].get(p)) for p in params) + " |")
    lines += ["", "\\* on the Pareto front of " + ", ".join(f"{k} ({d})" for k, d in result["objectives"].items())
              + ". " + ("The selected point's full run: [selected/report.md](selected/report.md)." if chosen
                        else "No trial meets the rule: nothing was selected."), ""]
    return "\n".join(lines)


def _fmt(v) -> str:
    return "" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)
