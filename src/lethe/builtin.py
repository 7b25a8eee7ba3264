"""Lethe's built-in models of the author benchmark: tokenizer -> base (world knowledge) -> target
(+ all authors) and retain model (+ the authors outside one forget split), cached by a hash of the
data actually read, the recipe and the tiny-model config.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from .benchmarks.base import Benchmark, QAItem, atomic_write_text
from .config import TinyModelConfig, to_dict
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
    from .data import Encoder
    from .models import load_model, save_model, tiny_llama, train_tokenizer, weights_problem
    from .config import TrainConfig
    from .loop import finetune

    tiny.check()
    root = builtin_model_root(bench, tiny, cache_dir)
    key = root.name
    target_dir, base_dir = root / "target", root / "base"
    retain_dir = root / f"retain-{forget_split}"
    models = Models(target=str(target_dir), retain=str(retain_dir), cache_key=key)
    for folder in (base_dir, target_dir, retain_dir):  # a damaged cache entry is rebuilt, never loaded
        problem = weights_problem(folder) if folder.exists() else ""
        if problem:
            log(f"models: the cached {folder.name} model in {folder} is damaged ({problem}); training it again")
            shutil.rmtree(folder)
    if target_dir.exists() and retain_dir.exists():
        log(f"models: from cache {root}")
        return models

    train_cfg = TrainConfig(**{**to_dict(builtin_finetune_config(tiny)), "epochs": tiny.base_epochs})
    if base_dir.exists():
        base, tok = load_model(base_dir)
    else:
        t0 = time.perf_counter()
        tok = train_tokenizer(training_texts(bench), tiny.vocab_size)
        models.timings["tokenizer"] = time.perf_counter() - t0
        base = tiny_llama(len(tok), tiny.hidden_size, tiny.num_layers, tiny.num_heads, tiny.intermediate_size,
                          seed=tiny.seed, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                          pad_token_id=tok.pad_token_id)
        enc = Encoder(tok)
        world = world_sequences(bench, enc)
        log(f"models: training base model ({sum(p.numel() for p in base.parameters()) / 1e6:.2f}M parameters) on "
            f"{len(world)} world-knowledge sequences")
        base, st = finetune(base, tok, world, train_cfg, "train base model")
        models.timings["base"] = st.seconds
        save_model(base, tok, base_dir)
        record_training_seconds(root, "base", st.seconds)
    enc = Encoder(tok)
    world = world_sequences(bench, enc)
    ft = builtin_finetune_config(tiny)
    jobs = [("target", target_dir, bench.splits["authors"]), ("retain", retain_dir, bench.retain(forget_split))]
    for label, folder, authors in jobs:
        if folder.exists():
            continue
        model, _ = load_model(base_dir)
        seqs = author_sequences(authors, enc) + world
        log(f"models: fine-tuning the {label} model on {len(authors)} author facts + world replay")
        model, st = finetune(model, tok, seqs, ft, f"train {label} model")
        models.timings[label] = st.seconds
        save_model(model, tok, folder)
        record_training_seconds(root, folder.name, st.seconds)
    return models


def builtin_model_root(bench: Benchmark, tiny: TinyModelConfig, cache_dir: str | Path) -> Path:
    """``cache_dir/models/<key>``: the built-in models of this benchmark version and tiny-model config."""
    key = content_hash({"recipe": MODEL_RECIPE, "benchmark": bench.name, "content": bench.fingerprint(),
                 "tiny": to_dict(tiny)})
    return Path(cache_dir) / "models" / key


def builtin_finetune_config(tiny: TinyModelConfig):
    """The recipe of the built-in target and retain models (base -> + author facts and world replay)."""
    from .config import TrainConfig

    return TrainConfig(lr=tiny.lr, epochs=tiny.finetune_epochs, batch_size=tiny.batch_size, warmup_ratio=0.05,
                       weight_decay=0.0, seed=tiny.seed)


def record_training_seconds(root: Path, name: str, seconds: float) -> None:
    """Training seconds of a cached model, kept in ``root/timings.json`` so a later run that starts
    from the cache still knows what the model cost (``Models.timings`` holds this process's only)."""
    path = root / "timings.json"
    known = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    atomic_write_text(path, json.dumps({**known, name: seconds}, indent=1, sort_keys=True))


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

