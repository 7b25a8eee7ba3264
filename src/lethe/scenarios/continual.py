"""Continual unlearning: a sequence of forget requests, each round starting from the last round's model.

Round r unlearns request r only (retain set: every author not yet requested) and is evaluated on
everything forgotten so far, against a model trained without requests 1..r where the run has one
(``gold_standard``: the nested built-in splits, every round, or none); a release that numbers its own
requests (``task_id``) keeps them. The protocol of Yuan et al. 2025, "A Closer Look at Machine
Unlearning for LLMs" (continual TOFU); docs/continual.md.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from . import register_scenario
from ._methods import Applied, MethodRun
from ._run import Fixed, Run, Scenario, fixed_result
from .tofu import directions as tofu_directions
from ..benchmarks import load_benchmark
from ..benchmarks.overlap import release_rounds
from ..builtin import Models, build_builtin_models, content_hash
from ..config import to_dict
from ..errors import LetheError
from ..evaluation import EVAL_RECIPE, eval_splits, evaluate, input_length_notes, missing_holdout_notes
from ..models import load_model
from ..results import ModelResult

DEFAULT_CONTINUAL_METHODS = ("grad_diff", "npo")  # used when the run keeps the tofu job's default method list
GOLD_STANDARDS = ("splits", "every_round", "none")


@dataclass(frozen=True)
class ContinualOptions:
    rounds: int = 10  # number of forget requests the forget split is cut into
    gold_standard: str = "splits"  # "splits" | "every_round" | "none"
    curve_metrics: tuple = ("forget_rouge_l", "forget_quality", "model_utility", "retain_rouge_l")

    def check(self) -> None:
        if self.gold_standard not in GOLD_STANDARDS:
            raise LetheError("scenario_options.gold_standard must be splits, every_round or none, "
                             f"got {self.gold_standard!r}")


def request_order(bench, forget_split: str) -> list[str]:
    """The forget split's authors in the order they are requested: the smallest built-in split that is
    a subset of ``forget_split`` first, then each larger nested split's new authors (each in the
    split's own order), so the cumulative requests pass through every nested split."""
    whole = list(bench.forget_sets[forget_split])
    nested = sorted((g for name, g in bench.forget_sets.items() if g and set(g) <= set(whole)), key=len)
    order: list[str] = []
    for groups in nested + [whole]:
        order += [a for a in groups if a not in order]
    return order


def cut_requests(authors: list[str], rounds: int, checkpoints: list[int] = ()) -> list[list[str]]:
    """Cut ``authors`` into ``rounds`` consecutive requests of near-equal size; where possible a request
    ends exactly at each cumulative size in ``checkpoints`` (the nested splits' sizes)."""
    n = len(authors)
    if not 1 <= rounds <= n:
        raise LetheError(f"scenario_options.rounds must be between 1 and the forget split's {n} authors, got {rounds}")
    bounds = sorted({round(n * (k + 1) / rounds) for k in range(rounds)})
    # move the nearest bound onto each checkpoint (keeps the number of rounds)
    for c in checkpoints:
        if 0 < c < n and c not in bounds:
            i = min(range(len(bounds) - 1), key=lambda j: abs(bounds[j] - c))
            lo = bounds[i - 1] if i > 0 else 0
            if lo < c < bounds[i + 1]:
                bounds[i] = c
    bounds = sorted(set(bounds))
    return [authors[s:e] for s, e in zip([0] + bounds[:-1], bounds)]


def plan_requests(bench, forget_split: str, rounds: int, rounds_given: bool) -> tuple[list[str], list[list[str]],
                                                                                     list[str] | None]:
    """(authors in request order, the requests, the release's task ids or None).

    With release rounds (``spec["rounds"][forget_split]``) the requests are the release's tasks in
    task_id order; otherwise the forget split's authors (:func:`request_order`) cut into ``rounds``
    requests that reach the nested splits (:func:`cut_requests`)."""
    release = release_rounds(bench, forget_split)
    if release:
        ids = list((bench.spec.get("task_ids") or {}).get(forget_split) or range(1, len(release) + 1))
        if rounds_given and rounds != len(release):
            raise LetheError(f"scenario_options.rounds = {rounds}, but {forget_split} of this benchmark is a sequence "
                             f"of {len(release)} requests (task_id {ids[0]}..{ids[-1]}); drop scenario_options.rounds")
        requests = [list(g) for g in release]
        return [a for q in requests for a in q], requests, [str(t) for t in ids]
    if forget_split not in bench.forget_sets:
        bench.forget(forget_split)  # the one-line "unknown forget split" error
    authors = request_order(bench, forget_split)
    nested = sorted({len(g) for g in bench.forget_sets.values() if g and set(g) <= set(authors)})
    return authors, cut_requests(authors, rounds, nested), None


class Continual(Scenario):
    name = "continual"
    sweep_objectives = ("forget_quality", "model_utility")  # the tofu job's
    description = ("a sequence of forget requests (default 10 rounds), each from the last round's model; metrics "
                   "after every round, curves over rounds")
    result_type = ModelResult
    options = ContinualOptions
    default_methods = DEFAULT_CONTINUAL_METHODS
    method_kinds = ("loss",)  # every round trains the weights the last round left
    runs_attacks = False
    retain_model_refused = ("each round's gold standard is a built-in model trained without the requests so far "
                            "(scenario_options.gold_standard), or none on a user's model")

    def default_name(self, run: Run) -> str:
        return f"continual-{run.cfg.forget_split}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"

    def check(self, run: Run) -> None:
        run.opts.check()
        if run.cfg.model and run.opts.gold_standard != "none":
            raise LetheError("with model=... there are no per-round retain models to compare with (the built-in "
                             "benchmark trains them); add scenario_options={gold_standard: none}")

    def directions(self, run: Run) -> dict:
        return tofu_directions()  # every round is evaluated by the default job's suite

    def prepare(self, run: Run) -> None:
        """The requests, the target and the gold standard of every round that has one: the forget split
        whose authors are the requests so far. The last round's is the run's retain model (a row); the
        earlier ones are evaluated here (cached) and drawn in the curves only."""
        cfg, opts = run.cfg, run.opts
        for mr in run.method_runs:  # train.eval_every: refused before any training, not after the first method
            self.eval_hook(run, mr, None)
        run.data = bench = load_benchmark(cfg.benchmark, **cfg.benchmark_options)
        if bench.name != "lethe-authors" and not cfg.model:
            raise LetheError(f"benchmark '{bench.name}' has no built-in models; give the model trained on it with "
                             "model=PATH_OR_HUB_ID and scenario_options={gold_standard: none}")
        authors, requests, task_ids = plan_requests(bench, cfg.forget_split, opts.rounds,
                                                    "rounds" in (cfg.scenario_options or {}))
        rounds = len(requests)
        gold_split: dict[int, str] = {}
        for r in range(1, rounds + 1):
            done = sum(len(q) for q in requests[:r])
            same = next((name for name, g in bench.forget_sets.items() if g and set(g) == set(authors[:done])), None)
            if opts.gold_standard == "splits" and same:
                gold_split[r] = same
            elif opts.gold_standard == "every_round":
                name = same or f"continual-{'-'.join(authors[:done])}"
                bench.forget_sets.setdefault(name, authors[:done])
                gold_split[r] = name
        # a user's target: e.g. a TOFU fine-tune and locuslab/TOFU's nested forget splits
        models = (Models(target=cfg.model) if cfg.model
                  else build_builtin_models(bench, cfg.forget_split, cfg.tiny_model, cfg.cache_dir, run.log))
        gold_models = {r: build_builtin_models(bench, s, cfg.tiny_model, cfg.cache_dir, run.log).retain
                       for r, s in gold_split.items()}
        run.target = models.target
        run.state.update(authors=authors, requests=requests, task_ids=task_ids, rounds=rounds, gold_split=gold_split,
                         gold_models=gold_models, base_splits=eval_splits(bench, cfg.forget_split),
                         provenance={"retain_models": {str(r): f for r, f in gold_models.items()}})
        run.state["results_head"] = {"requests": requests, **({"task_ids": task_ids} if task_ids else {})}
        key = content_hash({"eval": cfg.eval.cache_settings(), "content": bench.fingerprint(),
                            "recipe": EVAL_RECIPE, "authors": authors, "requests": requests})

        def fixed(name, kind, r, folder):
            entry = f"{models.cache_key}-continual-{kind}-r{r}-{Path(folder).name}-{key}.json"
            cache = Path(cfg.cache_dir) / "evals" / entry if models.cache_key else None  # a user's model: no key
            return Fixed(name, kind, folder, cache)

        run.state["gold"] = {r: self.round_fixed(run, fixed("retain model", "retain", r, folder), r)
                             for r, folder in gold_models.items() if r != rounds}
        run.fixed = [fixed("target", "target", rounds, models.target)]
        if rounds in gold_models:
            run.fixed.append(fixed("retain model", "retain", rounds, gold_models[rounds]))

    def round_fixed(self, run: Run, fx: Fixed, r: int) -> ModelResult:
        """The evaluation of an earlier round's gold standard: from its cache entry, or evaluated now."""
        return fixed_result(run, fx, evaluate=lambda model, tok: self.evaluate_round(run, model, tok, fx.name,
                                                                                      fx.kind, r))

    def done_at(self, run: Run, r: int) -> set:
        """The authors requested in rounds 1..r."""
        return set(run.state["authors"][: sum(len(q) for q in run.state["requests"][:r])])

    def splits_at(self, run: Run, r: int) -> dict:
        """The evaluation splits after round r: the forget split is everything requested so far."""
        done = self.done_at(run, r)
        return {**run.state["base_splits"], "forget": [it for it in run.data.splits["authors"] if it.group in done]}

    def unlearning_data(self, run: Run, r: int = 1):
        """(forget, retain) of round r: its request, and every author not yet requested."""
        done, request = self.done_at(run, r), run.state["requests"][r - 1]
        items = run.data.splits["authors"]
        return [it for it in items if it.group in request], [it for it in items if it.group not in done]

    def gold_at(self, run: Run, r: int):
        """The gold standard's result of round r, or None where it has none."""
        return run.retain_result if r == run.state["rounds"] else run.state["gold"].get(r)

    def evaluate(self, run: Run, model, tok, name, kind, retain_result=None, applied=None):
        """A fixed model (target, last round's retain model), judged on the whole forget split."""
        return self.evaluate_round(run, model, tok, name, kind, run.state["rounds"], retain_result)

    def evaluate_round(self, run: Run, model, tok, name, kind, r, retain_result=None) -> ModelResult:
        return evaluate(model, tok, self.splits_at(run, r), name, kind, run.cfg.eval, retain_result)

    def run_method(self, run: Run, mr: MethodRun):
        """Every round from the last round's model, evaluated after each against that round's gold
        standard; the result is the model after the last round, every round's values in its record."""
        from ..train import unlearn

        rounds, requests = run.state["rounds"], run.state["requests"]
        model, tok = load_model(run.target, run.cfg.trust_remote_code)
        train_cfg = mr.train if not mr.train.lora else dataclasses.replace(mr.train, lora_merge=True)
        spent, per_round = 0.0, []
        for r in range(1, rounds + 1):
            forget, retain = self.unlearning_data(run, r)
            t0 = time.perf_counter()
            model, stats = unlearn(model, tok, mr.method, forget, retain, train_cfg, mr.options,
                                   description=f"{mr.label} round {r}/{rounds}")
            seconds = time.perf_counter() - t0
            spent += seconds
            res = self.evaluate_round(run, model, tok, mr.label, "method", r, self.gold_at(run, r))
            run.log(f"{mr.label} round {r}/{rounds}: forget ROUGE-L {res.summary.get('forget_rouge_l', float('nan')):.3f}, "
                    f"model utility {res.summary.get('model_utility', float('nan')):.3f}")
            per_round.append({"method": mr.label, "round": r, "request": requests[r - 1], "metrics": res.summary,
                              "unlearn_seconds": seconds, "steps": stats.steps})
        res.record, res.config = {"rounds": per_round}, {"rounds": rounds}
        return res, Applied(model, tok, {}, {"unlearn": spent}, to_dict(train_cfg))

    def finish(self, run: Run, results: list) -> tuple[dict, dict]:
        cfg, st, curve = run.cfg, run.state, list(run.opts.curve_metrics)
        rounds, requests, authors, task_ids = st["rounds"], st["requests"], st["authors"], st["task_ids"]
        methods = [r for r in results if r.record.get("rounds")]
        gold = {r: self.gold_at(run, r) for r in st["gold_models"]}
        source = (f"the release's requests: task_id {', '.join(task_ids)} of {cfg.forget_split}.json, in that order "
                  "(as Yuan et al.'s continual scripts run them)" if task_ids else f"the authors of {cfg.forget_split}")
        notes = [f"{rounds} forget requests over {len(authors)} authors, {source}: "
                 + "; ".join(f"round {i + 1}: {', '.join(q)}" for i, q in enumerate(requests)),
                 "each round unlearns its request only, from the previous round's model; the retain set is every "
                 "author not yet requested; the table shows the models after the last round"]
        if run.methods_defaulted:
            notes.append(f"methods: the continual default ({', '.join(DEFAULT_CONTINUAL_METHODS)}); set methods=[...] "
                         "for others")
        if st["gold_split"]:
            notes.append("forget quality against a model trained without the requests so far, at rounds "
                         + ", ".join(f"{r} ({s})" for r, s in st["gold_split"].items()) + "; n/a at the other rounds")
        else:
            notes.append("no gold standard (gold_standard=none): forget quality is not reported")
        notes += missing_holdout_notes(st["base_splits"])
        notes += input_length_notes(run.target, self.splits_at(run, rounds), cfg.trust_remote_code)
        curves = {"x": "round", "rounds": list(range(1, rounds + 1)), "metrics": curve,
                  # per method and curve metric, the value after each round (None where not measured)
                  "series": {m.name: {k: [p["metrics"].get(k) for p in m.record["rounds"]] for k in curve}
                             for m in methods},
                  "reference": {"name": "retain model (gold standard)",
                                "values": {k: [gold[r].summary.get(k) if r in gold else None for r in range(1, rounds + 1)]
                                           for k in curve}}}
        return {"curves": curves, "notes": notes}, {"rounds": [p for m in methods for p in m.record["rounds"]]}


register_scenario(Continual.name, Continual.description)(Continual())
