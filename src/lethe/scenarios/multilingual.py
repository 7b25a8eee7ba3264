"""Multilingual unlearning: unlearn the forget authors in one language, probe them in the other.

Forgetting in English often leaves the knowledge reachable in another language (Lynch et al. 2024,
"Eight Methods to Evaluate Robust Unlearning in LLMs"; Choi et al. 2024, "Cross-Lingual Unlearning
of Selective Knowledge in Multilingual Language Models"). This scenario measures that on the
built-in benchmark:

1. data: ``lethe-authors`` with ``languages=("en", "de")``: every author fact also stated in German
   from templates (:mod:`lethe.benchmarks.synthetic`; splits ``authors_de``, ``holdout_de``,
   ``retain_eval_de``);
2. models: :func:`lethe.pipeline.build_builtin_models` on a benchmark whose ``authors`` split holds
   both languages (see :func:`training_benchmark`): the target learns every fact in English and
   German, the retain model (the gold standard) every fact but the forget authors', in both
   languages; cached under ``cache_dir/models/<hash>`` like the tofu job's models;
3. unlearning: each method unlearns the forget authors' items in ONE language
   (``scenario_options.unlearn_language``, default "en"), with the retain authors' items in that
   language as its retain set (``retain_set=all`` adds the other language's retain items);
4. evaluation of target, retain model and every unlearned model in BOTH languages: the TOFU forget
   numbers and forget quality (KS test against the retain model in the same language) per language
   (``forget_rouge_l_en``, ``forget_rouge_l_de``, ...), membership inference per language, the
   retain authors per language, and the usual utility (``model_utility`` from the English retain
   authors, world facts and known people, as in the tofu job).

Keys: every author-split key of the tofu job gets the language as a suffix (``forget_quality_de``,
``retain_rouge_l_en``, ``mia_min_k_de``); ``model_utility`` and the world splits' keys keep their
names. ``lethe run attacks=[...]`` runs the attacks on the unlearned models (and on the retain model,
the control) against the forget items of the unlearned language; ``cross_lingual`` then asks them in
the other language (:mod:`lethe.attacks.crosslingual`).

The default run is small (``SCENARIO_BENCHMARK``, ``SCENARIO_TINY_MODEL`` and ``SCENARIO_TRAIN`` are
used when ``benchmark_options`` / ``tiny_model`` / ``train`` keep the tofu job's defaults, said so in
the notes): the target learns every fact twice, and the first run takes ~3 minutes on two cores.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from ..errors import LetheError
from . import check_options, register_scenario, write_run

LANGUAGES = ("en", "de")
OPTIONS = {
    "unlearn_language": "en",  # the language the forget authors are unlearned in; the other one is probed
    "retain_set": "same",  # "same": retain items in the unlearned language only; "all": in every language
}
DEFAULT_MULTILINGUAL_METHODS = ("grad_diff", "npo")  # used when the run keeps the tofu job's default method list
# used when benchmark_options / tiny_model keep the tofu job's defaults (a smaller run: two languages)
SCENARIO_BENCHMARK = {"n_authors": 20, "n_holdout": 4, "n_world": 60, "n_people": 20}
SCENARIO_TINY_MODEL = {"hidden_size": 96, "intermediate_size": 256, "vocab_size": 1536, "base_epochs": 12.0,
                       "finetune_epochs": 12.0}
# used when train keeps the tofu job's default: its lr 1e-3 on this smaller model and forget set (16 items, 5
# steps) drives the unlearned language far below the retain model and takes ~60 % of the retain authors'
# ROUGE-L with it, in every language; at 5e-4 grad_diff lands near the retain model (docs/multilingual.md)
SCENARIO_TRAIN = {"lr": 5e-4}
SUFFIXED = ("forget_", "retain_", "mia_")  # key prefixes that are per language (plus "privleak")
SCENARIO_RECIPE = "multilingual-1"  # bump when the scenario's splits or keys change (cached evaluations redone)


def _suffixed(key: str) -> bool:
    return key.startswith(SUFFIXED) or key == "privleak"


def training_benchmark(bench):
    """``bench`` with the author facts of every language in one ``authors`` split: what
    :func:`lethe.pipeline.build_builtin_models` trains the target on (and the retain model, minus the
    forget authors, whose ``group`` is the same in every language). The spec says so, which keeps
    these models apart from the English-only ones in the cache."""
    from ..benchmarks.base import Benchmark
    from ..benchmarks.synthetic import language_split

    langs = list(bench.spec.get("languages", ["en"]))
    authors = [it for lang in langs for it in bench.splits[language_split("authors", lang)]]
    splits = {"authors": authors, **{k: v for k, v in bench.splits.items()
                                     if k != "authors" and not k.startswith("authors_")}}
    spec = {**bench.spec, "trained_languages": langs}
    return Benchmark(bench.name, bench.version, splits, dict(bench.forget_sets), list(bench.pretrain_text), spec)


def language_splits(bench, forget_split: str) -> dict[str, dict]:
    """language -> the evaluation splits in it: forget, retain (``retain_eval``), holdout; English also
    known people and world facts (the world knowledge exists in English only)."""
    from ..benchmarks.synthetic import forget_items, language_split

    out = {}
    for lang in LANGUAGES:
        splits = {"forget": forget_items(bench, forget_split, lang),
                  "retain": bench.splits[language_split("retain_eval", lang)]}
        if lang == "en":
            splits.update({k: bench.splits[k] for k in ("known_people", "world_facts") if bench.splits.get(k)})
        if bench.splits.get(language_split("holdout", lang)):
            splits["holdout"] = bench.splits[language_split("holdout", lang)]
        out[lang] = splits
    return out


def unlearning_view(bench, language: str, retain_set: str, forget_split: str):
    """A benchmark whose ``forget(split)`` is the forget authors' items in ``language`` and whose
    ``retain(split)`` is the retain set of the unlearning run (what methods and attacks are given)."""
    from ..benchmarks.base import Benchmark
    from ..benchmarks.synthetic import language_split

    forget_groups = set(bench.forget_sets[forget_split])
    authors = list(bench.splits[language_split("authors", language)])
    if retain_set == "all":  # + the other language's retain items (never its forget items)
        for lang in LANGUAGES:
            if lang != language:
                authors += [it for it in bench.splits[language_split("authors", lang)] if it.group not in forget_groups]
    return Benchmark(bench.name, bench.version, {**bench.splits, "authors": authors}, dict(bench.forget_sets),
                     bench.pretrain_text, bench.spec)


def merge(results: dict) -> dict:
    """language -> ModelResult  ->  one flat row: per-language keys suffixed, the rest as is (English)."""
    metrics, intervals = {}, {}
    for lang, res in results.items():
        for k, v in res.summary.items():
            if _suffixed(k):
                metrics[f"{k}_{lang}"] = v
            elif lang == "en":
                metrics[k] = v
        for k, v in res.intervals.items():
            if _suffixed(k):
                intervals[f"{k}_{lang}"] = v
            elif lang == "en":
                intervals[k] = v
    return {"metrics": metrics, "intervals": intervals}


def known_keys(base: dict) -> list[str]:
    """Every key a row can have: the tofu job's, and each per-language one with its suffix."""
    return [*base, *(f"{k}_{lang}" for k in base if _suffixed(k) for lang in LANGUAGES)]


def scenario_directions(base: dict, keys) -> dict:
    """The tofu job's directions plus every per-language key's (that of the key without its suffix)."""
    out = dict(base)
    for k in keys:
        if k not in out:
            stem = k.rsplit("_", 1)[0]
            if stem in base:
                out[k] = base[stem]
    return out


def remaining_notes(results: dict, unlearned: str, probed: str) -> list[str]:
    """Per method: how much of the target's forget ROUGE-L margin over the retain model (which never
    saw the forget authors) is left in each language: 0 % = forgotten as if never learnt."""
    from ..benchmarks.synthetic import LANGUAGE_NAMES

    def rl(name, lang):
        return results[name][lang].summary.get("forget_rouge_l")

    out = []
    for name in results:
        if name in ("target", "retain model"):
            continue
        parts = []
        for lang in (unlearned, probed):
            t, r, m = rl("target", lang), rl("retain model", lang), rl(name, lang)
            if None not in (t, r, m) and t - r > 1e-9:
                parts.append(f"{(m - r) / (t - r):.0%} in {LANGUAGE_NAMES[lang]} (ROUGE-L {m:.3f}; target {t:.3f}, "
                             f"retain model {r:.3f})")
        if len(parts) == 2:
            out.append(f"{name}, unlearned in {LANGUAGE_NAMES[unlearned]}: the target's forget ROUGE-L margin over "
                       f"the retain model left: {parts[0]}; {parts[1]}")
    return out


def _methods(cfg):
    from ..config import DEFAULT_METHODS
    from ..pipeline import resolve_methods

    if tuple(cfg.methods) == tuple(DEFAULT_METHODS):
        return resolve_methods(dataclasses.replace(cfg, methods=DEFAULT_MULTILINGUAL_METHODS)), True
    return resolve_methods(cfg), False


def _scenario_config(cfg):
    """The run's config with the scenario's smaller defaults where the tofu job's are kept; notes."""
    from ..config import RunConfig, TinyModelConfig, build, to_dict
    from ..train import TrainConfig

    notes = []
    if cfg.train == RunConfig().train:
        train = build(TrainConfig, {**to_dict(cfg.train), **SCENARIO_TRAIN}, prefix="train.")
        cfg = dataclasses.replace(cfg, train=train)
        notes.append("unlearning: the scenario's default " + ", ".join(f"train.{k}={v}" for k, v in SCENARIO_TRAIN.items())
                     + " (the tofu job's 1e-3 over-unlearns this smaller model in every language); set train.* for others")
    if not cfg.benchmark_options:
        cfg = dataclasses.replace(cfg, benchmark_options=dict(SCENARIO_BENCHMARK))
        notes.append("benchmark: the scenario's default size " + ", ".join(f"{k}={v}" for k, v in SCENARIO_BENCHMARK.items())
                     + " (two languages double the facts to learn); set benchmark_options.* for others")
    if cfg.tiny_model == TinyModelConfig():
        tiny = build(TinyModelConfig, {**to_dict(cfg.tiny_model), **SCENARIO_TINY_MODEL}, prefix="tiny_model.")
        cfg = dataclasses.replace(cfg, tiny_model=tiny)
        notes.append("tiny model: the scenario's default " + ", ".join(f"{k}={v}" for k, v in SCENARIO_TINY_MODEL.items())
                     + "; set tiny_model.* for others")
    return cfg, notes


@register_scenario("multilingual", "every author fact in English and German; unlearn the forget authors in one "
                                   "language (scenario_options.unlearn_language), probe them in both")
def run_multilingual(cfg, log=print) -> Path:
    from .. import pipeline as P
    from ..benchmarks import load_benchmark
    from ..benchmarks.synthetic import LANGUAGE_NAMES, template_rouge_floor
    from ..config import to_dict
    from ..methods import get_method
    from ..models import load_model

    opts = check_options("multilingual", cfg.scenario_options, OPTIONS)
    if opts["unlearn_language"] not in LANGUAGES:
        raise LetheError(f"scenario_options.unlearn_language must be one of {', '.join(LANGUAGES)}, "
                         f"got {opts['unlearn_language']!r}")
    if opts["retain_set"] not in ("same", "all"):
        raise LetheError(f"scenario_options.retain_set must be same or all, got {opts['retain_set']!r}")
    if cfg.model:
        raise LetheError("the multilingual scenario trains its own models on the built-in benchmark; drop model=...")
    if cfg.benchmark != "lethe-authors":
        raise LetheError("the multilingual scenario runs on the built-in benchmark (benchmark=lethe-authors): its "
                         "second language is generated from templates")
    given = cfg.benchmark_options.get("languages")
    if given is not None and list(given) != list(LANGUAGES):
        raise LetheError(f"the multilingual scenario sets benchmark_options.languages itself ({list(LANGUAGES)}); drop it")
    cfg.eval.check()
    unlearned = opts["unlearn_language"]
    probed = next(lang for lang in LANGUAGES if lang != unlearned)
    t_start = time.perf_counter()
    out = P.run_dir_for(dataclasses.replace(cfg, name=cfg.name or f"multilingual-{cfg.forget_split}-{unlearned}-"
                                            f"{time.strftime('%Y%m%d-%H%M%S')}"))
    cfg, notes = _scenario_config(cfg)
    if cfg.attacks:
        from ..attacks import expand_attacks

        cfg = dataclasses.replace(cfg, attacks=tuple(expand_attacks(cfg.attacks)))  # unknown name -> error now
    method_runs, defaulted = _methods(cfg)
    known = [*known_keys(P.directions()), "unlearn_seconds"]
    for c in cfg.report_columns:  # before any training
        if c not in known:
            import difflib

            close = difflib.get_close_matches(str(c), known, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise LetheError(f"unknown metric '{c}' in report_columns{hint} (the multilingual scenario's keys end "
                             f"in _{'/_'.join(LANGUAGES)} where they are per language)")
    for mr in method_runs:
        if get_method(mr.method).kind == "training-time":
            raise LetheError(f"method '{mr.method}' (training-time) trains its own shard models on one language's "
                             "authors; the multilingual scenario needs methods that unlearn a given model")
    bench = load_benchmark(cfg.benchmark, **{**cfg.benchmark_options, "languages": list(LANGUAGES)})
    bench.forget(cfg.forget_split)  # unknown split -> error before any training
    threads = P.set_threads(cfg.threads)
    models = P.build_builtin_models(training_benchmark(bench), cfg.forget_split, cfg.tiny_model, cfg.cache_dir, log)
    splits = language_splits(bench, cfg.forget_split)
    view = unlearning_view(bench, unlearned, opts["retain_set"], cfg.forget_split)

    cache = Path(cfg.cache_dir) / "evals"
    eval_key = P._hash({"eval": to_dict(cfg.eval), "split": cfg.forget_split, "content": bench.fingerprint(),
                        "schema": P.SCHEMA_VERSION, "recipe": P.EVAL_RECIPE,
                        "scenario": SCENARIO_RECIPE})

    # lm-eval tasks (general utility, English) run once per model, with the English splits
    eval_cfgs = {lang: cfg.eval if lang == "en" else dataclasses.replace(cfg.eval, lm_eval_tasks=(), lm_eval_include="")
                 for lang in LANGUAGES}

    def evaluate_both(model, tok, name, kind, retain=None, encoder=None, postprocess=None) -> dict:
        return {lang: P.evaluate(model, tok, splits[lang], name, kind, eval_cfgs[lang],
                                 retain[lang] if retain else None, encoder=encoder, postprocess=postprocess)
                for lang in LANGUAGES}

    def eval_fixed(folder, name, kind, retain=None) -> dict:
        out_ = {}
        for lang in LANGUAGES:
            def compute(lang=lang):
                log(f"evaluating the {name} ({LANGUAGE_NAMES[lang]})")
                m, t = load_model(folder, cfg.trust_remote_code)
                return P.evaluate(m, t, splits[lang], name, kind, eval_cfgs[lang], retain[lang] if retain else None)
            path = cache / f"{models.cache_key}-multilingual-{kind}-{lang}-{Path(folder).name}-{eval_key}.json"
            out_[lang] = P._cached_eval(path, compute)
        return out_

    gold = eval_fixed(models.retain, "retain model", "retain")
    target = eval_fixed(models.target, "target", "target", gold)
    if cfg.attacks:  # the control: the retain model never knew the forget authors, in any language
        rm, rt = load_model(models.retain, cfg.trust_remote_code)
        gold[unlearned].robustness = P.attack_and_evaluate(cfg, rm, rt, gold[unlearned], view, log)
        del rm

    evaluated = [("target", "target", None, target), ("retain model", "retain", None, gold)]
    forget, retain = view.forget(cfg.forget_split), view.retain(cfg.forget_split)
    for mr in method_runs:
        kind = get_method(mr.method).kind
        model, tok = load_model(models.target, cfg.trust_remote_code)
        t0 = time.perf_counter()
        if kind == "inference":  # prompts / filters only: evaluated in both languages like the others
            from ..inference import build

            setup = build(mr.method, model, tok, forget, retain, mr.options, mr.train, seed=mr.train.seed)
            seconds = time.perf_counter() - t0
            res = evaluate_both(setup.model, tok, mr.label, "method", gold, setup.encoder, setup.postprocess)
            train = {"inference_time": True, **{k: v for k, v in setup.stats.items() if P._jsonable(v)}}
        else:
            from ..train import unlearn

            model, stats = unlearn(model, tok, mr.method, forget, retain, mr.train, mr.options,
                                   description=f"unlearn {mr.label} ({LANGUAGE_NAMES[unlearned]})")
            seconds = time.perf_counter() - t0
            res = evaluate_both(model, tok, mr.label, "method", gold)
            train = stats.to_json()
            if cfg.attacks and hasattr(model, "config"):
                res[unlearned].robustness = P.attack_and_evaluate(cfg, model, tok, res[unlearned], view, log)
        for r in res.values():
            r.method = mr.method
        res[unlearned].seconds["unlearn"] = seconds
        res[unlearned].train = train
        res[unlearned].config = {"method": mr.method, "options": mr.options, "train": to_dict(mr.train),
                                 "unlearn_language": unlearned, "retain_set": opts["retain_set"]}
        s = {lang: res[lang].summary for lang in LANGUAGES}
        log(f"{mr.label}: unlearned in {LANGUAGE_NAMES[unlearned]}: forget ROUGE-L "
            f"{unlearned} {s[unlearned].get('forget_rouge_l', float('nan')):.3f}, "
            f"{probed} {s[probed].get('forget_rouge_l', float('nan')):.3f}")
        evaluated.append((mr.label, "method", mr.method, res))
        del model

    rows = []
    for name, kind, method, res in evaluated:
        merged = merge(res)
        main = res[unlearned]
        rows.append({"name": name, "kind": kind, "method": method, "metrics": merged["metrics"],
                     "intervals": merged["intervals"], "robustness": main.robustness,
                     "seconds": {**main.seconds, "eval": sum(r.seconds.get("eval", 0.0) for r in res.values())},
                     "config": main.config, "train": main.train})
    keys = sorted({k for r in rows for k in r["metrics"]})
    directions = scenario_directions(P.directions(), keys)
    for _, _, _, res in evaluated:  # keys named at run time (lm-eval tasks)
        directions.update({k: v for k, v in res["en"].directions.items() if k not in directions})
    columns = list(cfg.report_columns) or [
        f"forget_rouge_l_{unlearned}", f"forget_rouge_l_{probed}", f"forget_probability_{unlearned}",
        f"forget_probability_{probed}", f"forget_truth_ratio_{unlearned}", f"forget_truth_ratio_{probed}",
        f"forget_quality_{unlearned}", f"forget_quality_{probed}",
        "model_utility", f"retain_rouge_l_{probed}", "unlearn_seconds"]

    names = {lang: LANGUAGE_NAMES[lang] for lang in LANGUAGES}
    notes += [
        (f"every author fact in {names['en']} and {names['de']} (template-based); target and retain model trained "
         f"on both; each method unlearns the {len(forget)} forget items of {cfg.forget_split} in {names[unlearned]} "
         f"({'with' if opts['retain_set'] == 'all' else 'without'} the {names[probed]} retain items in its retain "
         f"set) and is probed in both languages: keys ending in _{unlearned} / _{probed}"),
        ("template ROUGE-L floor (another author's answer scored against the true one): "
         + ", ".join(f"{lang} {template_rouge_floor(bench, cfg.forget_split, lang):.3f}" for lang in LANGUAGES)),
        ("model_utility and the world splits are English (the world knowledge is stated in English only); "
         f"retain_*_{probed} are the retain authors in {names[probed]}"),
    ]
    notes += remaining_notes({name: res for name, _, _, res in evaluated}, unlearned, probed)
    if defaulted:
        notes.append(f"methods: the multilingual default ({', '.join(DEFAULT_MULTILINGUAL_METHODS)}); set "
                     "methods=[...] for others")
    if cfg.eval.generate and not cfg.eval.nli_model:
        notes.append("entailment score skipped: no NLI model configured (eval.nli_model=...)")
    if cfg.attacks:
        notes.append(f"attacks: on the forget items in {names[unlearned]} (cross_lingual asks them in "
                     f"{names[probed]}: before and after then score different reference answers)")

    summary = {
        "scenario": "multilingual",
        "lethe_version": P.__version__,
        "benchmark": {"name": bench.name, "version": bench.version},
        "forget_split": cfg.forget_split,
        "unlearn_language": unlearned,
        "probe_language": probed,
        "rows": rows,
        "directions": directions,
        "columns": columns,
        "tradeoff": {"x": f"forget_rouge_l_{unlearned}", "y": f"forget_rouge_l_{probed}", "log_y": False},
        "notes": notes,
        "provenance": {**P.provenance(cfg, threads, bench), "model": models.target, "retain_model": models.retain,
                       "model_timings": P.recorded_training_seconds(Path(models.target).parent) or models.timings,
                       "total_seconds": time.perf_counter() - t_start},
    }
    results = {"schema": P.SCHEMA_VERSION, "scenario": "multilingual", "unlearn_language": unlearned,
               "probe_language": probed, "forget_split": cfg.forget_split,
               "models": [{"name": name, "kind": kind, "method": method,
                           "languages": {lang: r.to_json() for lang, r in res.items()}}
                          for name, kind, method, res in evaluated]}
    return write_run(out, {**to_dict(cfg), "scenario_options": opts}, summary, results)
