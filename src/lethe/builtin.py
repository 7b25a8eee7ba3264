"""Lethe's built-in models of the author benchmark: tokenizer -> base (world knowledge) -> target
(+ all authors) and retain model (+ the authors outside one forget split), cached by a hash of the
data actually read, the recipe and the tiny-model config.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from . import dist
from .benchmarks.base import Benchmark, QAItem, atomic_write_text
from .config import TinyModelConfig, TrainConfig, to_dict
from .models import load_model, load_tokenizer, save_model, tiny_llama, train_tokenizer, weights_problem
from .results import ModelResult

MODEL_RECIPE = "tiny-llama-1"  # bump when the way built-in models are trained changes


def content_hash(obj) -> str:
    """16 hex digits of the sha256 of ``obj`` as sorted JSON: the cache keys' hash."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class Models:
    target: str  # model folder or hub id
    retain: str = ""  # retain model folder or hub id ("" if only results are known)
    retain_result: ModelResult | None = None
    notes: list[str] = field(default_factory=list)
    cache_key: str = ""
    timings: dict = field(default_factory=dict)


def training_texts(bench: Benchmark) -> list[str]:
    texts = list(bench.pretrain_text)
    for items in bench.splits.values():
        for it in items:
            texts.extend([it.question, it.answer, it.paraphrase, *it.perturbed_answers])
    return texts


def build_builtin_models(bench: Benchmark, forget_split: str, tiny: TinyModelConfig, cache_dir: str | Path,
                         log=print) -> Models:
    """Tokenizer -> base (world knowledge) -> target (+ all authors) and retain model (+ retain authors).

    Fine-tuning replays the world-knowledge data so the base knowledge survives (model utility > 0).
    Cached under ``cache_dir/models/<hash>``: a second run starts from the cache.
    """
    tiny.check()
    bench.retain(forget_split)  # an unknown or empty forget split is one line before anything trains
    root = builtin_model_root(bench, tiny, cache_dir)
    base_dir, target_dir = root / "base", root / "target"
    retain_dir = root / f"retain-{forget_split}"
    models = Models(target=str(target_dir), retain=str(retain_dir), cache_key=root.name)
    has_world = bool(bench.pretrain_text or bench.splits.get("world_facts") or bench.splits.get("known_people"))
    folders = (base_dir, target_dir, retain_dir) if has_world else (target_dir, retain_dir)
    with building(root):
        if not from_cache(root, folders, log):
            _train_builtin(bench, forget_split, tiny, models, root, has_world, log)
    return models


def _train_builtin(bench: Benchmark, forget_split: str, tiny: TinyModelConfig, models: Models, root: Path,
                   has_world: bool, log) -> None:
    from .data import Encoder

    base_dir, target_dir, retain_dir = root / "base", Path(models.target), Path(models.retain)
    tok = cached_tokenizer([base_dir] if has_world else [target_dir, retain_dir], training_texts(bench),
                           tiny.vocab_size, models.timings)
    enc = Encoder(tok)
    world = world_sequences(bench, enc)
    ft = builtin_finetune_config(tiny)
    jobs = []
    if has_world:
        jobs.append(Job("base", base_dir, lambda: new_tiny_llama(tok, tiny), world, builtin_base_config(tiny),
                        f"models: training base model ({{params}} parameters) on {len(world)} world-knowledge "
                        "sequences"))
    # no world knowledge to learn first (a TOFU folder without world_facts / real_authors / pretrain.txt):
    # the target and the retain model start from the same fresh tiny Llama
    # the tiny recipe trains in float32 wherever the run's models go (its cache key names no dtype)
    start = (lambda: load_model(base_dir, dtype="float32")[0]) if has_world else (lambda: new_tiny_llama(tok, tiny))
    for label, folder, authors in (("target", target_dir, bench.splits["authors"]),
                                   ("retain", retain_dir, bench.retain(forget_split))):
        message = (f"models: fine-tuning the {label} model on {len(authors)} author facts + world replay" if has_world
                   else f"models: training the {label} model ({{params}} parameters) on {len(authors)} author facts")
        jobs.append(Job(label, folder, start, author_sequences(authors, enc) + world, ft, message))
    models.timings.update(train_cached(root, jobs, tok, log))


@contextmanager
def building(root: Path):
    """Held while the cached models under ``root`` are found or trained: another process sharing the cache (a
    second run, a sweep's worker) waits, then reads what the first trained instead of training it again beside
    it. The processes of one launch train together and take no lock."""
    if dist.world() > 1:
        yield
        return
    from filelock import FileLock

    root.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root.parent / f"{root.name}.lock")):
        yield


# The sizing rule of the tiny recipe (:func:`size_tiny_model`; docs/finetune.md): the author-fact text the
# built-in default benchmark trains on (100 authors: 138,192 characters) stays under SIZING_REFERENCE_CHARS.
SIZING_REFERENCE_CHARS = 150_000
SIZED_FIELDS = ("hidden_size", "num_layers", "intermediate_size")


def fact_characters(bench: Benchmark) -> int:
    """Characters of the author facts the target model memorises, in every wording it trains on
    (:func:`author_sequences`: question + answer, and the paraphrased pair where there is one)."""
    return sum(len(it.question) + len(it.answer)
               + (len(it.paraphrased_question) + len(it.paraphrase) if it.paraphrased_question else 0)
               for it in bench.splits["authors"])


def size_tiny_model(bench: Benchmark, tiny: TinyModelConfig, explicit=None) -> TinyModelConfig:
    """The tiny model sized to the data it must memorise (the tiny recipe's sizing rule).

    With ``c = fact_characters(bench) / SIZING_REFERENCE_CHARS`` (the author facts in every wording the
    target trains on): ``c <= 1`` (the built-in default benchmark and anything smaller) keeps ``tiny`` as
    it is; above, the non-embedding parameters grow in proportion to ``c``, a third of the growth in depth
    and two thirds in width (``s = c ** (1/3)``): ``num_layers = round(2 s)``, ``hidden_size = 128 s`` rounded
    to a multiple of 32 (whole heads of even width for 4 heads), ``intermediate_size = 3 * hidden_size``;
    never below ``tiny``'s own sizes; the learning rate shrinks as the width grows (``lr * 128 / hidden_size``,
    two significant digits: at the recipe's 4e-3 a wider model forgot its world knowledge). Epochs and batch
    size stay: more data already means proportionally more steps. ``explicit``: the ``tiny_model`` fields the user set, which win over the rule
    (``None``: the fields that differ from :class:`TinyModelConfig`'s defaults).
    """
    if explicit is None:
        explicit = {k for k, v in to_dict(tiny).items() if v != getattr(TinyModelConfig(), k)}
    c = fact_characters(bench) / SIZING_REFERENCE_CHARS
    if c <= 1 or all(k in explicit for k in SIZED_FIELDS):
        return tiny
    s = c ** (1 / 3)
    hidden = tiny.hidden_size if "hidden_size" in explicit else max(tiny.hidden_size, 32 * round(4 * s))
    sized = {"hidden_size": hidden, "num_layers": max(tiny.num_layers, round(2 * s)),
             "intermediate_size": max(tiny.intermediate_size, 3 * hidden),
             "lr": float(f"{tiny.lr * tiny.hidden_size / hidden:.2g}")}  # wider: a smaller step (docs/finetune.md)
    return dataclasses.replace(tiny, **{k: v for k, v in sized.items() if k not in explicit})


def describe_tiny(tiny: TinyModelConfig) -> str:
    """One line of the tiny recipe: the model's shape and how it is trained."""
    return (f"tiny Llama hidden {tiny.hidden_size} x {tiny.num_layers} layers (intermediate {tiny.intermediate_size}, "
            f"{tiny.num_heads} heads, vocabulary {tiny.vocab_size}), base {tiny.base_epochs:g} epochs, fine-tuning "
            f"{tiny.finetune_epochs:g} epochs at lr {tiny.lr:g}, batch {tiny.batch_size}, seed {tiny.seed} "
            f"(recipe {MODEL_RECIPE})")


@dataclass
class Job:
    """One cached model to train (:func:`train_cached`): what differs between the built-in models of the
    scenarios is only where a model goes, what it starts from, what it trains on and how it is told."""

    label: str  # "target", "retain", ...: its name in the progress bar and in the returned timings
    folder: Path  # where it is cached; the folder's name keys its seconds in ``timings.json``
    start: Callable[[], Any]  # the initial model: a fresh tiny Llama, or a model read from the cache
    sequences: list
    train_cfg: Any  # TrainConfig
    message: str  # the log line before training; "{params}" becomes the model's size ("1.23M")


def drop_damaged(folders, log=print) -> None:
    """A damaged cache entry (cut-off weights, no tokenizer) is trained again, never loaded: remove it."""
    for folder in map(Path, folders):
        if folder.exists() and (problem := weights_problem(folder)):
            log(f"models: the cached {folder.name} model in {folder} is damaged ({problem}); training it again")
            dist.on_main(shutil.rmtree, folder)  # launched as several processes: the first removes it


def from_cache(root: Path, folders, log=print) -> bool:
    """Whether every model folder is cached and whole (said in the log); damaged ones are dropped first."""
    drop_damaged(folders, log)
    if all(Path(f).exists() for f in folders):
        log(f"models: from cache {root}")
        return True
    return False


def cached_tokenizer(folders, texts: list[str], vocab_size: int, timings: dict | None = None):
    """The tokenizer of the first cached model folder (the models still to train must share it), else
    one trained on ``texts`` (its seconds in ``timings["tokenizer"]``)."""
    for folder in folders:
        if Path(folder).exists():
            return load_tokenizer(folder)
    t0 = time.perf_counter()
    tok = train_tokenizer(texts, vocab_size)
    if timings is not None:
        timings["tokenizer"] = time.perf_counter() - t0
    return tok


def new_tiny_llama(tok, tiny: TinyModelConfig, **kwargs):
    """A randomly initialised tiny Llama of ``tiny``'s shape and seed, with ``tok``'s vocabulary."""
    return tiny_llama(len(tok), tiny.hidden_size, tiny.num_layers, tiny.num_heads, tiny.intermediate_size,
                      seed=tiny.seed, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id, **kwargs)


def train_cached(root: Path, jobs: list[Job], tokenizer, log=print) -> dict:
    """Train, save and time, in order, each job whose folder is not cached yet (a damaged one is trained
    again). Returns ``{label: seconds}`` of the models trained here; the seconds are also kept in
    ``root/timings.json`` (:func:`record_training_seconds`) for runs that start from the cache."""
    from .loop import finetune

    drop_damaged([job.folder for job in jobs], log)
    timings = {}
    for job in jobs:
        if job.folder.exists():
            continue
        model = job.start()
        log(job.message.replace("{params}", f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}M"))
        model, st = finetune(model, tokenizer, job.sequences, job.train_cfg, f"train {job.label} model")
        timings[job.label] = st.seconds
        save_model(model, tokenizer, job.folder)
        record_training_seconds(root, job.folder.name, st.seconds)
    return timings


def training_threads() -> dict:
    """The part of a tiny model's cache key that the machine sets: the torch thread count. A CPU trains other
    weights with another count (its float sums split differently: 1 and 2 threads give two different
    built-in targets), so without it a run's numbers depended on which earlier run had filled the cache."""
    import torch

    return {"threads": torch.get_num_threads()}


def builtin_model_root(bench: Benchmark, tiny: TinyModelConfig, cache_dir: str | Path) -> Path:
    """``cache_dir/models/<key>``: the built-in models of this benchmark version and tiny-model config, trained
    with this process's thread count (:func:`training_threads`)."""
    key = content_hash({"recipe": MODEL_RECIPE, "benchmark": bench.name, "content": bench.fingerprint(),
                        "tiny": to_dict(tiny), **training_threads()})
    return Path(cache_dir) / "models" / key


def builtin_finetune_config(tiny: TinyModelConfig):
    """The recipe of the built-in target and retain models (base -> + author facts and world replay)."""
    return TrainConfig(lr=tiny.lr, epochs=tiny.finetune_epochs, batch_size=tiny.batch_size, warmup_ratio=0.05,
                       weight_decay=0.0, seed=tiny.seed)


def builtin_base_config(tiny: TinyModelConfig):
    """The recipe of the built-in base model (a fresh tiny Llama -> world knowledge): the fine-tuning
    recipe for ``tiny.base_epochs``."""
    return dataclasses.replace(builtin_finetune_config(tiny), epochs=tiny.base_epochs)


def train_pair(key: dict, cache_dir: str | Path, texts: list[str], vocab_size: int, plan, log=print):
    """A scenario's target and retain model, each trained from scratch, cached in
    ``cache_dir/models/<content_hash(key)>/{target,retain}``: ``(root, seconds)`` (from ``timings.json`` when
    both are cached). ``plan(tokenizer)`` gives both jobs as ``(label, start, sequences, train_cfg, message)``."""
    root = Path(cache_dir) / "models" / content_hash({**key, **training_threads()})
    folders = (root / "target", root / "retain")
    with building(root):
        if from_cache(root, folders, log):
            return root, recorded_training_seconds(root)
        timings: dict = {}
        tok = cached_tokenizer(folders, texts, vocab_size, timings)
        timings.update(train_cached(root, [Job(label, root / label, *job) for label, *job in plan(tok)], tok, log))
    return root, timings


def record_training_seconds(root: Path, name: str, seconds: float) -> None:
    """Training seconds of a cached model, kept in ``root/timings.json`` so a later run that starts
    from the cache still knows what the model cost (``Models.timings`` holds this process's only)."""
    known = recorded_training_seconds(root)
    atomic_write_text(root / "timings.json", json.dumps({**known, name: seconds}, indent=1, sort_keys=True))


def recorded_training_seconds(root: Path) -> dict:
    path = root / "timings.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def author_sequences(items: list[QAItem], enc) -> list:
    """Each author fact in two wordings: (question, answer) and (paraphrased question, paraphrased answer).

    A model of a million parameters does not carry a fact over to a wording it never saw, so the
    truth ratio (paraphrase vs perturbed paraphrases) would measure nothing if the knowledge came in
    one wording only; real pretraining data states facts in many wordings too. Generation is
    scored on the original question, whose answer wording stays unambiguous.
    """
    seqs = [enc.qa(it.question, it.answer) for it in items]
    seqs += [enc.qa(it.paraphrased_question, it.paraphrase) for it in items if it.paraphrased_question]
    return seqs


def world_sequences(bench: Benchmark, enc) -> list:
    seqs = [enc.text(t) for t in bench.pretrain_text]
    for name in ("world_facts", "known_people"):
        seqs += [enc.qa(it.question, it.answer) for it in bench.splits.get(name, [])]
    return seqs

