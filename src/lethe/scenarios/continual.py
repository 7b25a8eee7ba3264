"""Continual unlearning: a sequence of forget requests, each round starting from the last round's model.

Real deletion requests arrive one after another. Round r unlearns request r only, from the model
that round r-1 left; the retain set of round r is every author not yet requested (the complement of
the whole forget split plus the requests still to come). After every round the model is evaluated on
everything forgotten so far (the forget split of round r is requests 1..r), on the retain authors and
on the world knowledge, so the report shows how forgetting and utility evolve over rounds
(Yuan et al. 2025 run the same protocol on TOFU, "A Closer Look at Machine Unlearning for LLMs").

The gold standard of round r is a model trained without requests 1..r. ``gold_standard=splits``
(default) orders the requests so that the built-in nested forget splits (forget01 ⊂ forget05 ⊂
forget10) are reached at some rounds and uses their cached retain models there: forget quality is
reported at those rounds and is "n/a" (never a stand-in) at the others. ``every_round`` trains one
retain model per round (cached); ``none`` trains none.

A release that fixes its own sequence of requests keeps it: the Closer-Look TOFU data (Yuan et al.
2025, ``data/tofu``) number the rows of forgetNN.json by ``task_id``, and ``lethe.benchmarks.load_tofu``
records the tasks as ``spec["rounds"]``; the rounds are then those tasks in task_id order (10 for
forget01/05, 9 for forget10), as the authors' scripts/continual_tofu run them, and
``scenario_options.rounds`` may only repeat their number.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from . import check_options, register_scenario, user_attacks, weight_changing_methods, write_run
from ..errors import LetheError

OPTIONS = {
    "rounds": 10,  # number of forget requests the forget split is cut into
    "gold_standard": "splits",  # "splits" | "every_round" | "none"
    "curve_metrics": ["forget_rouge_l", "forget_quality", "model_utility", "retain_rouge_l"],
}
DEFAULT_CONTINUAL_METHODS = ("grad_diff", "npo")  # used when the run keeps the tofu job's default method list


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
    starts = [0] + bounds[:-1]
    return [authors[s:e] for s, e in zip(starts, bounds)]


def plan_requests(bench, forget_split: str, rounds: int, rounds_given: bool) -> tuple[list[str], list[list[str]],
                                                                                     list[str] | None]:
    """(authors in request order, the requests, the release's task ids or None).

    With release rounds (``spec["rounds"][forget_split]``) the requests are the release's tasks in
    task_id order; otherwise the forget split's authors (:func:`request_order`) cut into ``rounds``
    requests that reach the nested splits (:func:`cut_requests`)."""
    from ..benchmarks.overlap import release_rounds

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


@register_scenario("continual", "a sequence of forget requests (default 10 rounds), each from the last round's "
                                "model; metrics after every round, curves over rounds")
def run_continual(cfg, log=print) -> Path:
    from .. import pipeline as P
    from ..benchmarks import load_benchmark
    from ..config import to_dict
    from ..models import load_model
    from ..train import unlearn

    opts = check_options("continual", cfg.scenario_options, OPTIONS)
    if opts["gold_standard"] not in ("splits", "every_round", "none"):
        raise LetheError(f"scenario_options.gold_standard must be splits, every_round or none, got {opts['gold_standard']!r}")
    if cfg.model and opts["gold_standard"] != "none":
        raise LetheError("with model=... there are no per-round retain models to compare with (the built-in "
                         "benchmark trains them); add scenario_options={gold_standard: none}")
    cfg.eval.check()
    if user_attacks(cfg):
        raise LetheError("attacks are not run per round in the continual scenario; drop attacks=[...] "
                         "(run them on the final model with the tofu scenario)")
    t_start = time.perf_counter()
    out = P.run_dir_for(dataclasses.replace(cfg, name=cfg.name or f"continual-{cfg.forget_split}-"
                                            f"{time.strftime('%Y%m%d-%H%M%S')}"))
    method_runs, defaulted = weight_changing_methods(cfg, DEFAULT_CONTINUAL_METHODS, "continual")
    bench = load_benchmark(cfg.benchmark, **cfg.benchmark_options)
    if bench.name != "lethe-authors" and not cfg.model:
        raise LetheError(f"benchmark '{bench.name}' has no built-in models; give the model trained on it with "
                         "model=PATH_OR_HUB_ID and scenario_options={gold_standard: none}")
    threads = P.set_threads(cfg.threads)
    authors, requests, task_ids = plan_requests(bench, cfg.forget_split, opts["rounds"],
                                                "rounds" in (cfg.scenario_options or {}))
    rounds = len(requests)

    # the gold standard of every round that has one: the forget split whose authors are the requests so far
    gold_split: dict[int, str] = {}
    for r in range(1, rounds + 1):
        done = sum(len(q) for q in requests[:r])
        same = next((name for name, g in bench.forget_sets.items() if g and set(g) == set(authors[:done])), None)
        if opts["gold_standard"] == "splits" and same:
            gold_split[r] = same
        elif opts["gold_standard"] == "every_round":
            name = same or f"continual-{'-'.join(authors[:done])}"
            bench.forget_sets.setdefault(name, authors[:done])
            gold_split[r] = name
    if cfg.model:  # the user's target (e.g. a TOFU fine-tune and locuslab/TOFU's nested forget splits)
        models = P.Models(target=cfg.model)
    else:
        models = P.build_builtin_models(bench, cfg.forget_split, cfg.tiny_model, cfg.cache_dir, log)
    gold_models = {r: P.build_builtin_models(bench, s, cfg.tiny_model, cfg.cache_dir, log).retain
                   for r, s in gold_split.items()}

    def splits_at(r: int) -> dict:
        done = set(authors[: sum(len(q) for q in requests[:r])])
        base = P.eval_splits(bench, cfg.forget_split)
        return {**base, "forget": [it for it in bench.splits["authors"] if it.group in done]}

    cache = Path(cfg.cache_dir) / "evals"
    eval_key = P._hash({"eval": to_dict(cfg.eval), "content": bench.fingerprint(),
                        "recipe": P.EVAL_RECIPE, "authors": authors, "requests": requests})

    def eval_fixed(folder, name, kind, r, retain_res):
        def compute():
            log(f"evaluating the {name} (round {r})")
            m, t = load_model(folder, cfg.trust_remote_code)
            return P.evaluate(m, t, splits_at(r), name, kind, cfg.eval, retain_res)
        if not models.cache_key:  # a user's model: nothing to key a cache on
            return compute()
        return P._cached_eval(cache / f"{models.cache_key}-continual-{kind}-r{r}-{Path(folder).name}-{eval_key}.json",
                              compute)

    gold = {r: eval_fixed(folder, "retain model", "retain", r, None) for r, folder in gold_models.items()}
    target = eval_fixed(models.target, "target", "target", rounds, gold.get(rounds))

    final_rows, per_round = [], []
    for mr in method_runs:
        model, tok = load_model(models.target, cfg.trust_remote_code)
        train_cfg = mr.train if not mr.train.lora else dataclasses.replace(mr.train, lora_merge=True)
        spent = 0.0
        for r in range(1, rounds + 1):
            done = set(authors[: sum(len(q) for q in requests[:r])])
            forget = [it for it in bench.splits["authors"] if it.group in requests[r - 1]]
            retain = [it for it in bench.splits["authors"] if it.group not in done]
            t0 = time.perf_counter()
            model, stats = unlearn(model, tok, mr.method, forget, retain, train_cfg, mr.options,
                                   description=f"{mr.label} round {r}/{rounds}")
            seconds = time.perf_counter() - t0
            spent += seconds
            res = P.evaluate(model, tok, splits_at(r), f"{mr.label}", "method", cfg.eval, gold.get(r))
            log(f"{mr.label} round {r}/{rounds}: forget ROUGE-L {res.summary.get('forget_rouge_l', float('nan')):.3f}, "
                f"model utility {res.summary.get('model_utility', float('nan')):.3f}")
            per_round.append({"method": mr.label, "round": r, "request": requests[r - 1], "metrics": res.summary,
                              "unlearn_seconds": seconds, "steps": stats.steps})
        res.method = mr.method
        res.seconds["unlearn"] = spent
        res.config = {"method": mr.method, "options": mr.options, "train": to_dict(train_cfg), "rounds": rounds}
        final_rows.append(res)
        del model

    gold_series = {k: [gold[r].summary.get(k) if r in gold else None for r in range(1, rounds + 1)]
                   for k in opts["curve_metrics"]}
    rows = [target] + ([gold[rounds]] if rounds in gold else []) + final_rows
    source = (f"the release's requests: task_id {', '.join(task_ids)} of {cfg.forget_split}.json, in that order "
              "(as Yuan et al.'s continual scripts run them)" if task_ids else f"the authors of {cfg.forget_split}")
    notes = [f"{rounds} forget requests over {len(authors)} authors, {source}: "
             + "; ".join(f"round {i + 1}: {', '.join(q)}" for i, q in enumerate(requests)),
             "each round unlearns its request only, from the previous round's model; the retain set is every "
             "author not yet requested; the table shows the models after the last round"]
    if defaulted:
        notes.append(f"methods: the continual default ({', '.join(DEFAULT_CONTINUAL_METHODS)}); set methods=[...] "
                     "for others")
    if gold_split:
        notes.append("forget quality against a model trained without the requests so far, at rounds "
                     + ", ".join(f"{r} ({s})" for r, s in gold_split.items()) + "; n/a at the other rounds")
    else:
        notes.append("no gold standard (gold_standard=none): forget quality is not reported")
    holdout_note = P.missing_holdout_note(P.eval_splits(bench, cfg.forget_split))
    if holdout_note:
        notes.append(holdout_note)
    notes += P.input_length_notes(models.target, splits_at(rounds), cfg.trust_remote_code)
    summary = {
        "scenario": "continual",
        "lethe_version": P.__version__,
        "benchmark": {"name": bench.name, "version": bench.version},
        "forget_split": cfg.forget_split,
        "rows": [r.summary_row() for r in rows],
        "directions": P.directions(),
        "columns": list(cfg.report_columns) or None,
        "curves": {"x": "round", "rounds": list(range(1, rounds + 1)), "metrics": list(opts["curve_metrics"]),
                   # per method and curve metric, the value after each round (None where not measured)
                   "series": {mr.label: {m: [p["metrics"].get(m) for p in per_round if p["method"] == mr.label]
                                         for m in opts["curve_metrics"]} for mr in method_runs},
                   "reference": {"name": "retain model (gold standard)", "values": gold_series}},
        "notes": notes,
        "provenance": {**P.provenance(cfg, threads, bench), "model": models.target,
                       "retain_models": {str(r): f for r, f in gold_models.items()},
                       "total_seconds": time.perf_counter() - t_start},
    }
    results = {"schema": P.SCHEMA_VERSION, "scenario": "continual", "requests": requests,
               **({"task_ids": task_ids} if task_ids else {}), "rounds": per_round,
               "models": [r.to_json() for r in rows]}
    P.check_report_columns(cfg.report_columns)
    return write_run(out, {**to_dict(cfg), "scenario_options": opts}, summary, results)
