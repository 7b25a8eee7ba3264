"""Real-world unlearning: forget knowledge the base model acquired in pretraining.

TOFU-style benchmarks unlearn facts that a fine-tune added; real requests concern what a model learnt
in pretraining (Yuan et al. 2025, "A Closer Look at Machine Unlearning for LLMs", Sec. 5: real persons,
with a *neighbour set* of related knowledge that must survive). The miniature: the target is the
built-in **base model** (pretrained on the made-up world: 30 countries, their capitals, rivers,
currencies ..., and 80 well-known people with their works and home countries). A forget request
names countries (``scenario_options.forget_entities``, default 5); unlearning removes their facts,
stated as Q&A and as the pretraining sentences. Evaluation:

- ``forget``: the Q&A about the forget countries;
- ``neighbour``: the Q&A about people from those countries: related knowledge that mentions the
  forget entity in pretraining, the collateral damage Yuan et al. measure;
- ``retain``: the Q&A about every other country; ``known_people``: the people from other countries.

Unlike real pretraining, the miniature can retrain: the gold standard is a base model pretrained
without the forget countries' sentences and Q&A (people sentences that name the country are kept:
they are neighbour knowledge), so forget quality is reported too.
"""
from __future__ import annotations

import dataclasses
import re
import time
from pathlib import Path

from . import check_options, register_scenario, user_attacks, weight_changing_methods, write_run
from ..errors import LetheError

OPTIONS = {"forget_entities": 5, "entity_seed": 0}
DEFAULT_REAL_WORLD_METHODS = ("ga", "grad_diff", "npo")
_PERSON = re.compile(r"^(?P<name>.+) was a famous (?P<role>\w+) from (?P<country>.+)\.$")


def _country_patterns():
    from ..benchmarks.synthetic import WORLD_RELATIONS

    out = {}
    for relation, question, sentence, _ in WORLD_RELATIONS:
        q = "^" + re.escape(question).replace(re.escape("{c}"), "(?P<c>.+)") + "$"
        s = "^" + re.escape(sentence).replace(re.escape("{c}"), "(?P<c>.+?)").replace(re.escape("{x}"), ".+") + "$"
        out[relation] = (re.compile(q), re.compile(s))
    return out


def entity_splits(bench, forget_entities: int, seed: int = 0) -> dict:
    """The scenario's data from the built-in world: forget countries (by ``group`` id), their Q&A and
    pretraining sentences, the neighbour Q&A (people from those countries), and the rest."""
    import random

    pats = _country_patterns()
    country_of_group: dict[str, str] = {}
    for it in bench.splits["world_facts"]:
        m = pats[it.fact][0].match(it.question)
        if m is None:
            raise LetheError(f"world fact {it.id}: question does not match the '{it.fact}' template")
        country_of_group[it.group] = m.group("c")
    groups = sorted(country_of_group)
    if not 1 <= forget_entities < len(groups):
        raise LetheError(f"scenario_options.forget_entities must be between 1 and {len(groups) - 1}, got {forget_entities}")
    forget_groups = sorted(random.Random(f"real-world/{seed}").sample(groups, forget_entities))
    forget_countries = {country_of_group[g] for g in forget_groups}
    home = {}  # person -> country, from "X was a famous painter from C."
    for t in bench.pretrain_text:
        m = _PERSON.match(t)
        if m:
            home[m.group("name")] = m.group("country")

    def person_of(item) -> str | None:
        for name in home:
            if name in item.question or name.lower() == item.answer.lower():
                return name
        return None

    def country_sentence(t: str) -> str | None:
        for _, s in pats.values():
            m = s.match(t)
            if m:
                return m.group("c")
        return None

    neighbour, others = [], []
    for it in bench.splits["known_people"]:
        (neighbour if home.get(person_of(it) or "") in forget_countries else others).append(it)
    return {
        "forget_groups": forget_groups,
        "forget_countries": sorted(forget_countries),
        "forget": [it for it in bench.splits["world_facts"] if it.group in forget_groups],
        "retain": [it for it in bench.splits["world_facts"] if it.group not in forget_groups],
        "neighbour": neighbour,
        "known_people": others,
        "forget_text": [t for t in bench.pretrain_text if country_sentence(t) in forget_countries],
        "retain_text": [t for t in bench.pretrain_text if country_sentence(t) not in forget_countries],
    }


def _directions() -> dict[str, str]:
    """The default job's directions plus the neighbour split's (knowledge that must survive: higher)."""
    from ..pipeline import directions

    d = directions()
    d.update({f"neighbour_{m}": "higher" for m in ("probability", "rouge_l", "truth_ratio", "token_entropy",
                                                   "embedding_similarity", "entailment_score")})
    return d


def _docs(texts: list[str], prefix: str):
    from ..benchmarks.base import QAItem

    return [QAItem(id=f"{prefix}{i}", question="", answer=t) for i, t in enumerate(texts)]


def _retain_base(cfg, bench, data, root: Path, log) -> Path:
    """The gold standard: the base recipe on the world minus the forget countries (cached)."""
    from .. import pipeline as P
    from ..config import to_dict
    from ..data import Encoder
    from ..models import load_model, save_model, tiny_llama
    from ..train import TrainConfig, finetune

    folder = root / f"real-world-retain-{'-'.join(data['forget_groups'])}"
    if folder.exists():
        return folder
    _, tok = load_model(root / "base")
    tiny = cfg.tiny_model
    enc = Encoder(tok)
    seqs = [enc.text(t) for t in data["retain_text"]]
    seqs += [enc.qa(it.question, it.answer) for it in data["retain"] + data["neighbour"] + data["known_people"]]
    model = tiny_llama(len(tok), tiny.hidden_size, tiny.num_layers, tiny.num_heads, tiny.intermediate_size,
                       seed=tiny.seed, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                       pad_token_id=tok.pad_token_id)
    train_cfg = TrainConfig(**{**to_dict(P.builtin_finetune_config(tiny)), "epochs": tiny.base_epochs})
    log(f"real-world: pretraining the gold standard without {', '.join(data['forget_countries'])} "
        f"({len(seqs)} sequences)")
    model, st = finetune(model, tok, seqs, train_cfg, "train real-world retain model")
    save_model(model, tok, folder)
    P.record_training_seconds(root, folder.name, st.seconds)
    return folder


@register_scenario("real_world", "forget knowledge of the base model's pretraining (countries of the built-in "
                                 "world), measured on them and on a neighbour set of related people")
def run_real_world(cfg, log=print) -> Path:
    from .. import pipeline as P
    from ..benchmarks import load_benchmark
    from ..config import to_dict
    from ..models import load_model
    from ..train import unlearn

    opts = check_options("real_world", cfg.scenario_options, OPTIONS)
    if cfg.benchmark != "lethe-authors":
        return _run_user_data(cfg, opts, log)
    if cfg.model:
        raise LetheError("the built-in real_world scenario unlearns the built-in base model; drop model=..., or give "
                         "benchmark=<folder of the real-world release (forget.json, neighbor.json)> with it")
    if user_attacks(cfg):
        raise LetheError("attacks are not run in the real_world scenario yet; drop attacks=[...]")
    cfg.eval.check()
    t_start = time.perf_counter()
    out = P.run_dir_for(dataclasses.replace(cfg, name=cfg.name or f"real-world-{time.strftime('%Y%m%d-%H%M%S')}"))
    method_runs, defaulted = weight_changing_methods(cfg, DEFAULT_REAL_WORLD_METHODS, "real_world")
    bench = load_benchmark(cfg.benchmark, **cfg.benchmark_options)
    threads = P.set_threads(cfg.threads)
    data = entity_splits(bench, opts["forget_entities"], opts["entity_seed"])
    P.build_builtin_models(bench, cfg.forget_split, cfg.tiny_model, cfg.cache_dir, log)  # the base model
    root = P.builtin_model_root(bench, cfg.tiny_model, cfg.cache_dir)
    target_dir = root / "base"
    retain_dir = _retain_base(cfg, bench, data, root, log)
    splits = {k: data[k] for k in ("forget", "neighbour", "retain", "known_people")}
    forget_train = data["forget"] + _docs(data["forget_text"], "forget-text-")
    retain_train = data["retain"] + data["known_people"] + _docs(data["retain_text"], "retain-text-")

    cache = Path(cfg.cache_dir) / "evals"
    eval_key = P._hash({"eval": to_dict(cfg.eval), "content": bench.fingerprint(),
                        "recipe": P.EVAL_RECIPE, "forget": data["forget_groups"]})

    def eval_fixed(folder, name, kind, retain_res):
        def compute():
            log(f"evaluating the {name}")
            m, t = load_model(folder, cfg.trust_remote_code)
            return P.evaluate(m, t, splits, name, kind, cfg.eval, retain_res)
        return P._cached_eval(cache / f"{root.name}-real-world-{kind}-{eval_key}.json", compute)

    retain_res = eval_fixed(retain_dir, "retain model", "retain", None)
    rows = [eval_fixed(target_dir, "target", "target", retain_res), retain_res]
    for mr in method_runs:
        model, tok = load_model(target_dir, cfg.trust_remote_code)
        t0 = time.perf_counter()
        model, stats = unlearn(model, tok, mr.method, forget_train, retain_train, mr.train, mr.options,
                               description=f"unlearn {mr.label}")
        seconds = time.perf_counter() - t0
        res = P.evaluate(model, tok, splits, mr.label, "method", cfg.eval, retain_res)
        log(f"{mr.label}: forget ROUGE-L {res.summary.get('forget_rouge_l', float('nan')):.3f}, neighbour ROUGE-L "
            f"{res.summary.get('neighbour_rouge_l', float('nan')):.3f}")
        res.method, res.seconds["unlearn"], res.train = mr.method, seconds, stats.to_json()
        res.config = {"method": mr.method, "options": mr.options, "train": to_dict(mr.train)}
        rows.append(res)
        del model

    d = _directions()
    columns = list(cfg.report_columns) or ["forget_quality", "forget_rouge_l", "forget_probability", "neighbour_rouge_l",
                                           "neighbour_probability", "retain_rouge_l", "known_people_rouge_l"]
    notes = [f"forget entities: {', '.join(data['forget_countries'])} ({len(data['forget'])} Q&A, "
             f"{len(data['forget_text'])} pretraining sentences); neighbour set: {len(data['neighbour'])} Q&A about "
             "people from those countries",
             "target = the built-in base model (knowledge from pretraining); gold standard = the same recipe "
             "pretrained without the forget countries' sentences and Q&A"]
    if defaulted:
        notes.append(f"methods: the real_world default ({', '.join(DEFAULT_REAL_WORLD_METHODS)}); set methods=[...] for others")
    notes.append(P.missing_holdout_note(splits))
    summary = {
        "scenario": "real_world",
        "lethe_version": P.__version__,
        "benchmark": {"name": bench.name, "version": bench.version},
        "forget_split": "countries " + ", ".join(data["forget_countries"]),
        "rows": [r.summary_row() for r in rows],
        "directions": d,
        "columns": columns,
        "tradeoff": {"x": "neighbour_rouge_l", "y": "forget_rouge_l", "log_y": False},
        "notes": notes,
        "provenance": {**P.provenance(cfg, threads, bench), "model": str(target_dir), "retain_model": str(retain_dir),
                       "total_seconds": time.perf_counter() - t_start},
    }
    results = {"schema": P.SCHEMA_VERSION, "scenario": "real_world", "forget_groups": data["forget_groups"],
               "models": [r.to_json() for r in rows]}
    return write_run(out, {**to_dict(cfg), "scenario_options": opts}, summary, results)


def _run_user_data(cfg, opts, log) -> Path:
    """The public real-world data (Yuan et al. 2025's ``data/real_world``) on the user's model: unlearn the
    forget persons (trained on the model's own answers in forget.json, scored against the golden answers of
    forget_perturbed.json), keep the neighbour persons (neighbor.json is the retain data of unlearning,
    neighbor_perturbed.json, other persons in the release, the neighbour split of evaluation). No model
    can be retrained without pretraining knowledge, so there is no gold standard and no forget quality."""
    from .. import pipeline as P
    from ..benchmarks.real_world import load_real_world
    from ..config import to_dict
    from ..models import load_model
    from ..train import unlearn

    if not cfg.model:
        raise LetheError("the real-world data are about what a pretrained model knows: give model=<hub id or folder>")
    if opts != OPTIONS:
        raise LetheError("scenario_options.forget_entities / entity_seed choose countries of the built-in world; "
                         "the release's forget and neighbor files fix the entities")
    if user_attacks(cfg):
        raise LetheError("attacks are not run in the real_world scenario yet; drop attacks=[...]")
    cfg.eval.check()
    t_start = time.perf_counter()
    data = load_real_world(cfg.benchmark)
    out = P.run_dir_for(dataclasses.replace(cfg, name=cfg.name or f"real-world-{time.strftime('%Y%m%d-%H%M%S')}"))
    method_runs, defaulted = weight_changing_methods(cfg, DEFAULT_REAL_WORLD_METHODS, "real_world")
    threads = P.set_threads(cfg.threads)
    splits = {"forget": data.forget, "neighbour": data.neighbour}
    log(f"evaluating the target {cfg.model}")
    model, tok = load_model(cfg.model, cfg.trust_remote_code)
    rows = [P.evaluate(model, tok, splits, "target", "target", cfg.eval, wrong_answers=data.wrong_answers)]
    del model
    for mr in method_runs:
        model, tok = load_model(cfg.model, cfg.trust_remote_code)
        t0 = time.perf_counter()
        model, stats = unlearn(model, tok, mr.method, data.forget_train, data.neighbour_train, mr.train, mr.options,
                               description=f"unlearn {mr.label}")
        seconds = time.perf_counter() - t0
        res = P.evaluate(model, tok, splits, mr.label, "method", cfg.eval, wrong_answers=data.wrong_answers)
        res.method, res.seconds["unlearn"], res.train = mr.method, seconds, stats.to_json()
        res.config = {"method": mr.method, "options": mr.options, "train": to_dict(mr.train)}
        rows.append(res)
        del model
    d = _directions()
    name = {role: Path(f).name for role, f in data.files.items()}
    notes = [f"real-world data from {data.source}: {len(data.forget)} forget questions about "
             f"{len({it.group for it in data.forget})} persons, {len(data.neighbour)} neighbour questions",
             f"unlearning trains on {name['forget_train']} with {name['neighbour_train']} as retain data, on the model's "
             f"own answers ('answer'); evaluation reads {name['forget']} and {name['neighbour']}, scored against "
             "'golden_answer' (as Yuan et al.'s real_world_unlearn.py and config/real_world.yaml do)",
             "no gold standard (a model cannot be retrained without its pretraining knowledge): forget quality and "
             "PrivLeak are not reported"]
    if not data.wrong_answers:
        notes.append(f"{name['forget']} and {name['neighbour']} have no wrong answers (perturbed_answer; the release's "
                     "*_perturbed.json files do): the truth ratio and forget efficacy are n/a")
    if defaulted:
        notes.append(f"methods: the real_world default ({', '.join(DEFAULT_REAL_WORLD_METHODS)})")
    notes.append(P.missing_holdout_note(splits))
    notes += P.input_length_notes(cfg.model, splits, cfg.trust_remote_code)
    summary = {
        "scenario": "real_world", "lethe_version": P.__version__,
        "benchmark": {"name": "real-world (Yuan et al. 2025 format)", "version": Path(cfg.benchmark).name},
        "forget_split": "forget",
        "rows": [r.summary_row() for r in rows],
        "directions": d,
        "columns": list(cfg.report_columns) or ["forget_rouge_l", "forget_probability", "forget_truth_ratio",
                                                "neighbour_rouge_l", "neighbour_probability", "forget_efficacy"],
        "tradeoff": {"x": "neighbour_rouge_l", "y": "forget_rouge_l", "log_y": False},
        "notes": notes,
        "provenance": {"lethe_version": P.__version__, "git_sha": P._git_sha(), "model": cfg.model,
                       "data": data.source, "data_fingerprint": _items_fingerprint(data), "threads": threads,
                       "eval_recipe": P.EVAL_RECIPE, "total_seconds": time.perf_counter() - t_start},
    }
    results = {"schema": P.SCHEMA_VERSION, "scenario": "real_world", "models": [r.to_json() for r in rows]}
    return write_run(out, {**to_dict(cfg), "scenario_options": opts}, summary, results)


def _items_fingerprint(data) -> str:
    """A hash of the items a user-data run read (both roles, as unlearned and as evaluated)."""
    from ..pipeline import _hash

    return _hash([[it.to_json() for it in items] for items in
                    (data.forget, data.neighbour, data.forget_train, data.neighbour_train)])
