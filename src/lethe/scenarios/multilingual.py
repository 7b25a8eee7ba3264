"""Multilingual unlearning: unlearn the forget authors in one language, probe them in the other.

Forgetting in English often leaves the knowledge reachable in another language (Lynch et al. 2024,
"Eight Methods to Evaluate Robust Unlearning in LLMs"; Choi et al. 2024, "Cross-Lingual Unlearning
of Selective Knowledge in Multilingual Language Models"). Author-split keys get the language as a
suffix (``forget_quality_de``); the default run is smaller (``SCENARIO_*``); docs/multilingual.md.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from . import register_scenario
from ._run import Fixed, Run, Scenario
from .tofu import attack_and_evaluate, directions as tofu_directions, eval_cache_key
from ..benchmarks import load_benchmark
from ..benchmarks.base import Benchmark
from ..benchmarks.synthetic import LANGUAGE_NAMES, forget_items, language_split, template_rouge_floor
from ..builtin import build_builtin_models, recorded_training_seconds
from ..config import RunConfig, TinyModelConfig, TrainConfig, build, to_dict
from ..errors import LetheError
from ..evaluation import evaluate
from ..results import ModelResult

LANGUAGES = ("en", "de")
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


@dataclass(frozen=True)
class MultilingualOptions:
    unlearn_language: str = "en"  # the language the forget authors are unlearned in; the other one is probed
    retain_set: str = "same"  # "same": retain items in the unlearned language only; "all": in every language

    def check(self) -> None:
        if self.unlearn_language not in LANGUAGES:
            raise LetheError(f"scenario_options.unlearn_language must be one of {', '.join(LANGUAGES)}, "
                             f"got {self.unlearn_language!r}")
        if self.retain_set not in ("same", "all"):
            raise LetheError(f"scenario_options.retain_set must be same or all, got {self.retain_set!r}")


def _suffixed(key: str) -> bool:
    return key.startswith(SUFFIXED) or key == "privleak"


def training_benchmark(bench):
    """``bench`` with the author facts of every language in one ``authors`` split: what
    :func:`lethe.builtin.build_builtin_models` trains the target on (and the retain model, minus the
    forget authors, whose ``group`` is the same in every language). The spec says so, which keeps
    these models apart from the English-only ones in the cache."""
    langs = list(bench.spec.get("languages", ["en"]))
    authors = [it for lang in langs for it in bench.splits[language_split("authors", lang)]]
    splits = {"authors": authors, **{k: v for k, v in bench.splits.items()
                                     if k != "authors" and not k.startswith("authors_")}}
    spec = {**bench.spec, "trained_languages": langs}
    return Benchmark(bench.name, bench.version, splits, dict(bench.forget_sets), list(bench.pretrain_text), spec)


def language_splits(bench, forget_split: str) -> dict[str, dict]:
    """language -> the evaluation splits in it: forget, retain (``retain_eval``), holdout; English also
    known people and world facts (the world knowledge exists in English only)."""
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
    forget_groups = set(bench.forget_sets[forget_split])
    authors = list(bench.splits[language_split("authors", language)])
    if retain_set == "all":  # + the other language's retain items (never its forget items)
        authors += [it for lang in LANGUAGES if lang != language
                    for it in bench.splits[language_split("authors", lang)] if it.group not in forget_groups]
    return Benchmark(bench.name, bench.version, {**bench.splits, "authors": authors}, dict(bench.forget_sets),
                     bench.pretrain_text, bench.spec)


def merge(results: dict) -> dict:
    """language -> ModelResult  ->  one flat row: per-language keys suffixed, the rest as is (English)."""
    def flat(values: str) -> dict:
        return {f"{k}_{lang}" if _suffixed(k) else k: v for lang, res in results.items()
                for k, v in getattr(res, values).items() if _suffixed(k) or lang == "en"}

    return {"metrics": flat("summary"), "intervals": flat("intervals")}


def scenario_directions(base: dict, keys) -> dict:
    """The tofu job's directions plus every per-language key's (that of the key without its suffix)."""
    stems = {k: k.rsplit("_", 1)[0] for k in keys}
    return {**base, **{k: base[stem] for k, stem in stems.items() if k not in base and stem in base}}


def remaining_notes(results: dict, unlearned: str, probed: str) -> list[str]:
    """Per method: how much of the target's forget ROUGE-L margin over the retain model (which never
    saw the forget authors) is left in each language: 0 % = forgotten as if never learnt."""
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


def scenario_config(cfg):
    """The run's config with the scenario's smaller defaults where the tofu job's are kept; notes."""
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


def _is_eval_time(key: str) -> bool:
    return key == "eval" or key.startswith("eval:")


@dataclass
class LanguageResults:
    """One model evaluated in every language (``languages``: language -> ModelResult). Its report row
    merges them (:func:`merge`); what belongs to the model rather than to one evaluation (the method's
    cost, settings and attacks) is kept once here and stored, as results.json always had it, with
    the result in ``language``: the language the forget authors were unlearned (and attacked) in."""

    name: str
    kind: str  # "target" | "retain" | "method"
    languages: dict
    language: str | None = None  # None: nothing of the model's own recorded yet (a fixed model, not attacked)
    method: str | None = None
    seconds: dict = field(default_factory=dict)  # beyond the evaluations: "unlearn"
    train: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    robustness: dict = field(default_factory=dict)

    @property
    def summary(self) -> dict:
        return merge(self.languages)["metrics"]

    @property
    def directions(self) -> dict:  # keys named at run time (lm-eval tasks: English only)
        return self.languages["en"].directions

    def summary_row(self) -> dict:
        merged = merge(self.languages)
        seconds: dict = {}  # each evaluation time summed over the languages
        for res in self.languages.values():
            for k, v in res.seconds.items():
                seconds[k] = seconds.get(k, 0.0) + v
        return {"name": self.name, "kind": self.kind, "method": self.method, "metrics": merged["metrics"],
                "intervals": merged["intervals"], "robustness": self.robustness, "seconds": {**seconds, **self.seconds},
                "config": self.config, "train": self.train}

    def to_json(self) -> dict:
        langs = {}
        for lang, res in self.languages.items():
            entry = {**res.to_json(), "method": self.method}
            if lang == self.language:
                entry.update(seconds={**res.seconds, **self.seconds}, train=self.train, config=self.config,
                             robustness=self.robustness)
            langs[lang] = entry
        return {"name": self.name, "kind": self.kind, "method": self.method, "languages": langs}

    @classmethod
    def from_json(cls, d: dict) -> "LanguageResults":
        try:
            entries = d["languages"]
            langs = {lang: ModelResult.from_json(e) for lang, e in entries.items()}
            main = next((lang for lang, e in entries.items() if e.get("config") or e.get("robustness") or e.get("train")),
                        None)
            out = cls(d["name"], d["kind"], langs, main, d.get("method"))
        except (KeyError, TypeError, AttributeError) as exc:
            raise LetheError(f"results: not a multilingual model result (missing {exc})") from None
        if main:
            res = langs[main]
            out.seconds = {k: v for k, v in res.seconds.items() if not _is_eval_time(k)}
            res.seconds = {k: v for k, v in res.seconds.items() if _is_eval_time(k)}
            out.train, out.config, out.robustness = res.train, res.config, res.robustness
        return out


class Multilingual(Scenario):
    name = "multilingual"
    description = ("every author fact in English and German; unlearn the forget authors in one language "
                   "(scenario_options.unlearn_language), probe them in both")
    options = MultilingualOptions
    result_type = LanguageResults
    default_methods = DEFAULT_MULTILINGUAL_METHODS
    method_kinds = ("loss", "procedure", "inference")  # training-time methods train shard models on one language
    retain_model_refused = "it trains its own target and retain model on the built-in benchmark"

    def default_name(self, run: Run) -> str:
        return (f"multilingual-{run.cfg.forget_split}-{run.opts.unlearn_language}-"
                f"{datetime.now().strftime('%Y%m%d-%H%M%S')}")

    def configure(self, run: Run) -> None:
        """The scenario's smaller defaults (:func:`scenario_config`) into ``run.cfg``, before the methods
        are resolved with its training settings."""
        run.cfg, notes = scenario_config(run.cfg)
        run.notes += notes

    def directions(self, run: Run) -> dict:
        """Every key a row can have: the tofu job's, and each per-language one with its suffix."""
        base = tofu_directions()
        return scenario_directions(base, [f"{k}_{lang}" for k in base if _suffixed(k) for lang in LANGUAGES])

    def check(self, run: Run) -> None:
        cfg = run.cfg
        run.opts.check()
        if cfg.model:
            raise LetheError("the multilingual scenario trains its own models on the built-in benchmark; drop model=...")
        if cfg.benchmark != "lethe-authors":
            raise LetheError("the multilingual scenario runs on the built-in benchmark (benchmark=lethe-authors): its "
                             "second language is generated from templates")
        given = cfg.benchmark_options.get("languages")
        if given is not None and list(given) != list(LANGUAGES):
            raise LetheError(f"the multilingual scenario sets benchmark_options.languages itself ({list(LANGUAGES)}); "
                             "drop it")
        for mr in run.method_runs:  # train.eval_every: refused before any training
            self.eval_hook(run, mr, None)

    def prepare(self, run: Run) -> None:
        cfg, opts = run.cfg, run.opts
        unlearned = opts.unlearn_language
        probed = next(lang for lang in LANGUAGES if lang != unlearned)
        run.data = bench = load_benchmark(cfg.benchmark, **{**cfg.benchmark_options, "languages": list(LANGUAGES)})
        bench.forget(cfg.forget_split)  # unknown split -> error before any training
        models = build_builtin_models(training_benchmark(bench), cfg.forget_split, cfg.tiny_model, cfg.cache_dir,
                                      run.log)
        run.target = models.target
        key = eval_cache_key(cfg, bench, scenario=SCENARIO_RECIPE)
        cache = Path(cfg.cache_dir) / "evals"
        run.fixed = [Fixed(name, kind, folder, cache / f"{models.cache_key}-multilingual-{kind}-{Path(folder).name}-"
                                                       f"{key}.json")
                     for name, kind, folder in (("target", "target", models.target),
                                                ("retain model", "retain", models.retain))]
        # lm-eval tasks (general utility, English) run once per model, with the English splits
        eval_cfgs = {lang: cfg.eval if lang == "en" else dataclasses.replace(cfg.eval, lm_eval_tasks=(), lm_eval_include="")
                     for lang in LANGUAGES}
        run.state.update(unlearned=unlearned, probed=probed, eval_cfgs=eval_cfgs,
                         splits=language_splits(bench, cfg.forget_split),
                         view=unlearning_view(bench, unlearned, opts.retain_set, cfg.forget_split),
                         results_head={"unlearn_language": unlearned, "probe_language": probed,
                                       "forget_split": cfg.forget_split},
                         columns=[*(f"forget_{m}_{lang}" for m in ("rouge_l", "probability", "truth_ratio", "quality")
                                    for lang in (unlearned, probed)),
                                  "model_utility", f"retain_rouge_l_{probed}", "unlearn_seconds"],
                         provenance={"retain_model": models.retain, "model_timings": recorded_training_seconds(
                             Path(models.target).parent) or models.timings})

    def unlearning_data(self, run: Run):
        view = run.state["view"]
        return view.forget(run.cfg.forget_split), view.retain(run.cfg.forget_split)

    def evaluate(self, run: Run, model, tok, name, kind, retain_result=None, applied=None):
        """The model in every language, each against the retain model in the same language."""
        st = run.state
        langs = {lang: evaluate(model, tok, st["splits"][lang], name, kind, st["eval_cfgs"][lang],
                                retain_result.languages[lang] if retain_result else None,
                                encoder=applied.encoder if applied else None,
                                postprocess=applied.postprocess if applied else None)
                 for lang in LANGUAGES}
        res = LanguageResults(name, kind, langs)
        if kind == "method":
            unlearned, probed = st["unlearned"], st["probed"]
            res.language = unlearned
            res.config = {"unlearn_language": unlearned, "retain_set": run.opts.retain_set}
            s = {lang: langs[lang].summary for lang in LANGUAGES}
            run.log(f"{name}: unlearned in {LANGUAGE_NAMES[unlearned]}: forget ROUGE-L "
                    f"{unlearned} {s[unlearned].get('forget_rouge_l', float('nan')):.3f}, "
                    f"{probed} {s[probed].get('forget_rouge_l', float('nan')):.3f}")
        return res

    def attack(self, run: Run, model, tok, result) -> dict:
        """The attacks on the forget items of the unlearned language (cross_lingual asks them in the other)."""
        result.language = run.state["unlearned"]
        return attack_and_evaluate(run.cfg, model, tok, result.languages[result.language], run.state["view"], run.log)

    def finish(self, run: Run, results: list) -> tuple[dict, dict]:
        cfg, bench, st = run.cfg, run.data, run.state
        unlearned, probed = st["unlearned"], st["probed"]
        rows = [r.summary_row() for r in results]
        directions = scenario_directions(tofu_directions(), sorted({k for r in rows for k in r["metrics"]}))
        for r in results:  # keys named at run time (lm-eval tasks)
            directions.update({k: v for k, v in r.directions.items() if k not in directions})
        names = {lang: LANGUAGE_NAMES[lang] for lang in LANGUAGES}
        forget = self.unlearning_data(run)[0]
        notes = [
            (f"every author fact in {names['en']} and {names['de']} (template-based); target and retain model trained "
             f"on both; each method unlearns the {len(forget)} forget items of {cfg.forget_split} in {names[unlearned]} "
             f"({'with' if run.opts.retain_set == 'all' else 'without'} the {names[probed]} retain items in its retain "
             f"set) and is probed in both languages: keys ending in _{unlearned} / _{probed}"),
            ("template ROUGE-L floor (another author's answer scored against the true one): "
             + ", ".join(f"{lang} {template_rouge_floor(bench, cfg.forget_split, lang):.3f}" for lang in LANGUAGES)),
            ("model_utility and the world splits are English (the world knowledge is stated in English only); "
             f"retain_*_{probed} are the retain authors in {names[probed]}"),
        ]
        notes += remaining_notes({r.name: r.languages for r in results}, unlearned, probed)
        if run.methods_defaulted:
            notes.append(f"methods: the multilingual default ({', '.join(DEFAULT_MULTILINGUAL_METHODS)}); set "
                         "methods=[...] for others")
        if cfg.eval.generate and not cfg.eval.nli_model:
            notes.append("entailment score skipped: no NLI model configured (eval.nli_model=...)")
        if cfg.attacks:
            notes.append(f"attacks: on the forget items in {names[unlearned]} (cross_lingual asks them in "
                         f"{names[probed]}: before and after then score different reference answers)")
        return {"unlearn_language": unlearned, "probe_language": probed, "directions": directions,
                "tradeoff": {"x": f"forget_rouge_l_{unlearned}", "y": f"forget_rouge_l_{probed}", "log_y": False},
                "notes": notes}, {}


register_scenario(Multilingual.name, Multilingual.description)(Multilingual())
