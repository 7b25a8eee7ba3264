"""Real-world unlearning: forget knowledge the base model acquired in pretraining (Yuan et al. 2025,
"A Closer Look at Machine Unlearning for LLMs", Sec. 5), judged on the forget entities and on a
*neighbour set* of related knowledge that must survive. The miniature forgets countries of the built-in
world from the built-in base model; ``benchmark=<release folder>`` with ``model=...`` reads Yuan et
al.'s ``data/real_world`` instead (:meth:`RealWorld.prepare`). docs/real_world.md says more.
"""
from __future__ import annotations

import random
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import register_scenario
from ._run import Fixed, Run, Scenario
from ..benchmarks import load_benchmark
from ..benchmarks.base import QAItem
from ..benchmarks.real_world import load_real_world
from ..benchmarks.synthetic import WORLD_RELATIONS
from ..builtin import (Job, build_builtin_models, builtin_base_config, builtin_model_root, content_hash, drop_damaged,
                       new_tiny_llama, train_cached)
from ..errors import LetheError
from ..evaluation import EVAL_RECIPE, evaluate, input_length_notes, missing_holdout_notes
from ..metrics import suites
from ..models import load_tokenizer
from ..results import ModelResult

DEFAULT_REAL_WORLD_METHODS = ("ga", "grad_diff", "npo")
RELEASE_NAME = "real-world (Yuan et al. 2025 format)"
BUILTIN_COLUMNS = ("forget_quality", "forget_rouge_l", "forget_probability", "neighbour_rouge_l",
                   "neighbour_probability", "retain_rouge_l", "known_people_rouge_l")
RELEASE_COLUMNS = ("forget_rouge_l", "forget_probability", "forget_truth_ratio", "neighbour_rouge_l",
                   "neighbour_probability", "forget_efficacy")
_PERSON = re.compile(r"^(?P<name>.+) was a famous (?P<role>\w+) from (?P<country>.+)\.$")


@dataclass(frozen=True)
class RealWorldOptions:
    forget_entities: int = 5  # countries of the built-in world to forget
    entity_seed: int = 0  # which ones: a seeded sample of the countries


def _country_patterns():
    out = {}
    for relation, question, sentence, _ in WORLD_RELATIONS:
        q = "^" + re.escape(question).replace(re.escape("{c}"), "(?P<c>.+)") + "$"
        s = "^" + re.escape(sentence).replace(re.escape("{c}"), "(?P<c>.+?)").replace(re.escape("{x}"), ".+") + "$"
        out[relation] = (re.compile(q), re.compile(s))
    return out


def entity_splits(bench, forget_entities: int, seed: int = 0) -> dict:
    """The scenario's data from the built-in world: forget countries (by ``group`` id), their Q&A and
    pretraining sentences, the neighbour Q&A (people from those countries), and the rest."""
    pats = _country_patterns()
    country_of_group: dict[str, str] = {}
    for it in bench.splits["world_facts"]:
        m = pats[it.fact][0].match(it.question)
        if m is None:
            raise LetheError(f"world fact {it.id}: question does not match the '{it.fact}' template")
        country_of_group[it.group] = m.group("c")
    groups = sorted(country_of_group)
    if not 1 <= forget_entities < len(groups):
        raise LetheError(f"scenario_options.forget_entities must be between 1 and {len(groups) - 1}, "
                         f"got {forget_entities}")
    forget_groups = sorted(random.Random(f"real-world/{seed}").sample(groups, forget_entities))
    forget_countries = {country_of_group[g] for g in forget_groups}
    # person -> country, from "X was a famous painter from C."
    home = {m.group("name"): m.group("country") for t in bench.pretrain_text if (m := _PERSON.match(t))}

    def country_sentence(t: str) -> str | None:
        return next((m.group("c") for _, s in pats.values() if (m := s.match(t))), None)

    neighbour, others = [], []
    for it in bench.splits["known_people"]:  # a neighbour: a person from a forget country
        person = next((p for p in home if p in it.question or p.lower() == it.answer.lower()), None)
        (neighbour if home.get(person) in forget_countries else others).append(it)
    facts = bench.splits["world_facts"]
    return {"forget_groups": forget_groups, "forget_countries": sorted(forget_countries),
            "forget": [it for it in facts if it.group in forget_groups],
            "retain": [it for it in facts if it.group not in forget_groups],
            "neighbour": neighbour, "known_people": others,
            "forget_text": [t for t in bench.pretrain_text if country_sentence(t) in forget_countries],
            "retain_text": [t for t in bench.pretrain_text if country_sentence(t) not in forget_countries]}


def _docs(texts: list[str], prefix: str):
    return [QAItem(id=f"{prefix}{i}", question="", answer=t) for i, t in enumerate(texts)]


def retain_base(cfg, data, root: Path, log) -> Path:
    """The gold standard: the base recipe on the world minus the forget countries (cached)."""
    from ..data import Encoder

    folder = root / f"real-world-retain-{'-'.join(data['forget_groups'])}"
    drop_damaged((folder,), log)
    if folder.exists():
        return folder
    tok = load_tokenizer(root / "base")
    enc = Encoder(tok)
    seqs = [enc.text(t) for t in data["retain_text"]]
    seqs += [enc.qa(it.question, it.answer) for it in data["retain"] + data["neighbour"] + data["known_people"]]
    message = (f"real-world: pretraining the gold standard without {', '.join(data['forget_countries'])} "
               f"({len(seqs)} sequences)")
    job = Job("real-world retain", folder, lambda: new_tiny_llama(tok, cfg.tiny_model), seqs,
              builtin_base_config(cfg.tiny_model), message)
    train_cached(root, [job], tok, log)
    return folder


@dataclass
class Release:
    """The public real-world folder as a run's data: what the provenance records of a benchmark (name,
    version, spec, a fingerprint of the items read) around the loaded files."""

    items: Any  # lethe.benchmarks.real_world.RealWorldData
    name: str
    version: str
    spec: dict

    def fingerprint(self) -> str:
        """A hash of the items a user-data run read (both roles, as unlearned and as evaluated)."""
        d = self.items
        return content_hash([[it.to_json() for it in items] for items in
                             (d.forget, d.neighbour, d.forget_train, d.neighbour_train)])


def _user_data(cfg) -> bool:
    return cfg.benchmark != "lethe-authors"


class RealWorld(Scenario):
    name = "real_world"
    description = ("forget knowledge of the base model's pretraining (countries of the built-in world), measured "
                   "on them and on a neighbour set of related people")
    options = RealWorldOptions
    default_methods = DEFAULT_REAL_WORLD_METHODS
    # no training-time methods: SISA's shard models learn the author benchmark's split, not these entities
    method_kinds = ("loss", "procedure", "inference")
    runs_attacks = False
    result_type = ModelResult
    sweep_objectives = ("forget_rouge_l", "neighbour_rouge_l")  # a user's model has no gold standard to compare
    retain_model_refused = ("on a user's model there is no gold standard (a model cannot be retrained without its "
                            "pretraining knowledge); the built-in run trains its own")

    def default_name(self, run: Run) -> str:
        return f"real-world-{time.strftime('%Y%m%d-%H%M%S')}"

    def check(self, run: Run) -> None:
        cfg = run.cfg
        if not _user_data(cfg) and cfg.model:
            raise LetheError("the built-in real_world scenario unlearns the built-in base model; drop model=..., or "
                             "give benchmark=<folder of the real-world release (forget.json, neighbor.json)> with it")
        if _user_data(cfg) and not cfg.model:
            raise LetheError("the real-world data are about what a pretrained model knows: give model=<hub id or "
                             "folder>")
        if _user_data(cfg) and run.opts != RealWorldOptions():
            raise LetheError("scenario_options.forget_entities / entity_seed choose countries of the built-in world; "
                             "the release's forget and neighbor files fix the entities")

    def directions(self, run: Run) -> dict:
        return suites.directions(suites.REAL_WORLD)

    def prepare(self, run: Run) -> None:
        (self._prepare_release if _user_data(run.cfg) else self._prepare_builtin)(run)
        if run.methods_defaulted:
            run.notes.append(f"methods: the real_world default ({', '.join(DEFAULT_REAL_WORLD_METHODS)})"
                             + ("" if _user_data(run.cfg) else "; set methods=[...] for others"))
        run.notes += missing_holdout_notes(run.state["splits"])
        if _user_data(run.cfg):
            run.notes += input_length_notes(run.target, run.state["splits"], run.cfg.trust_remote_code)

    def _prepare_builtin(self, run: Run) -> None:
        """The built-in world: the base model is the target, the gold standard is pretrained without the
        forget countries; both evaluations are cached."""
        cfg, opts = run.cfg, run.opts
        run.data = bench = load_benchmark(cfg.benchmark, **cfg.benchmark_options)
        data = entity_splits(bench, opts.forget_entities, opts.entity_seed)
        if not data["neighbour"]:  # before any model is built
            raise LetheError(f"scenario real_world: none of the {len(bench.splits['known_people'])} known people comes "
                             f"from the forget countries ({', '.join(data['forget_countries'])}), so the neighbour "
                             "set is empty; raise benchmark_options.n_people or scenario_options.forget_entities")
        build_builtin_models(bench, cfg.forget_split, cfg.tiny_model, cfg.cache_dir, run.log)  # the base model
        root = builtin_model_root(bench, cfg.tiny_model, cfg.cache_dir)
        run.target = str(root / "base")
        retain_dir = retain_base(cfg, data, root, run.log)
        key = content_hash({"eval": cfg.eval.cache_settings(), "content": bench.fingerprint(), "recipe": EVAL_RECIPE,
                            "forget": data["forget_groups"]})
        cache, stem = Path(cfg.cache_dir) / "evals", f"{root.name}-real-world"
        run.fixed = [Fixed("target", "target", run.target, cache / f"{stem}-target-{key}.json"),
                     Fixed("retain model", "retain", str(retain_dir), cache / f"{stem}-retain-{key}.json")]
        run.state.update(
            splits={k: data[k] for k in ("forget", "neighbour", "retain", "known_people")},
            train=(data["forget"] + _docs(data["forget_text"], "forget-text-"),
                   data["retain"] + data["known_people"] + _docs(data["retain_text"], "retain-text-")),
            wrong_answers=True, columns=BUILTIN_COLUMNS,
            forget_split="countries " + ", ".join(data["forget_countries"]),
            provenance={"retain_model": str(retain_dir)},
            results_head={"forget_groups": data["forget_groups"]})
        run.notes += [f"forget entities: {', '.join(data['forget_countries'])} ({len(data['forget'])} Q&A, "
                      f"{len(data['forget_text'])} pretraining sentences); neighbour set: {len(data['neighbour'])} Q&A "
                      "about people from those countries",
                      "target = the built-in base model (knowledge from pretraining); gold standard = the same recipe "
                      "pretrained without the forget countries' sentences and Q&A"]

    def _prepare_release(self, run: Run) -> None:
        """The public real-world data (Yuan et al. 2025's ``data/real_world``) on the user's model, with no gold
        standard; which file plays which role: docs/real_world.md."""
        cfg = run.cfg
        data = load_real_world(cfg.benchmark)
        name = {role: Path(f).name for role, f in data.files.items()}
        run.data = Release(data, RELEASE_NAME, Path(cfg.benchmark).name, {"layout": "real_world", "files": name})
        run.target = cfg.model
        run.fixed = [Fixed("target", "target", cfg.model)]
        run.state.update(
            splits={"forget": data.forget, "neighbour": data.neighbour},
            train=(data.forget_train, data.neighbour_train), wrong_answers=data.wrong_answers, columns=RELEASE_COLUMNS,
            forget_split="forget", provenance={"data": data.source, "data_fingerprint": run.data.fingerprint(),
                                               "threads": run.threads})
        run.notes += [f"real-world data from {data.source}: {len(data.forget)} forget questions about "
                      f"{len({it.group for it in data.forget})} persons, {len(data.neighbour)} neighbour questions",
                      f"unlearning trains on {name['forget_train']} with {name['neighbour_train']} as retain data, on "
                      f"the model's own answers ('answer'); evaluation reads {name['forget']} and {name['neighbour']}, "
                      "scored against 'golden_answer' (as Yuan et al.'s real_world_unlearn.py and "
                      "config/real_world.yaml do)",
                      "no gold standard (a model cannot be retrained without its pretraining knowledge): forget "
                      "quality and PrivLeak are not reported"]
        if not data.wrong_answers:
            run.notes.append(f"{name['forget']} and {name['neighbour']} have no wrong answers (perturbed_answer; the "
                             "release's *_perturbed.json files do): the truth ratio and forget efficacy are n/a")

    def unlearning_data(self, run: Run):
        return run.state["train"]

    def evaluate(self, run: Run, model, tok, name, kind, retain_result=None, applied=None):
        res = evaluate(model, tok, run.state["splits"], name, kind, run.cfg.eval, retain_result,
                       encoder=getattr(applied, "encoder", None), postprocess=getattr(applied, "postprocess", None),
                       wrong_answers=run.state["wrong_answers"])
        if kind == "method":
            run.log(f"{name}: forget ROUGE-L {res.summary.get('forget_rouge_l', float('nan')):.3f}, neighbour "
                    f"ROUGE-L {res.summary.get('neighbour_rouge_l', float('nan')):.3f}")
        return res

    def finish(self, run: Run, results: list) -> tuple[dict, dict]:
        return {"forget_split": run.state["forget_split"],
                "tradeoff": {"x": "neighbour_rouge_l", "y": "forget_rouge_l", "log_y": False}}, {}


register_scenario(RealWorld.name, RealWorld.description)(RealWorld())
