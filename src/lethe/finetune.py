"""``lethe finetune``: the target and gold-standard (retain) models of any benchmark, in one folder.

``FOLDER/target`` is trained on every author of the benchmark's fine-tuning data, ``FOLDER/retain`` on
the complement of the forget split (docs/finetune.md). With ``model=`` the model is fine-tuned with the
TOFU recipe (:data:`TOFU_RECIPE`, every value overridable through ``train.*``); without it Lethe's tiny
recipe trains a fresh tiny Llama with its own tokenizer, exactly as ``lethe run`` does for the same
benchmark (:func:`lethe.builtin.build_builtin_models`, the model sized to the data by
:func:`lethe.builtin.size_tiny_model`), so the two share one cache entry. All training goes through
:func:`lethe.loop.finetune`; models are written with :func:`lethe.models.save_model` into ``<out>.partial``,
which is renamed to ``<out>`` at the end: a killed run leaves no folder that looks finished.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import dist
from .benchmarks.base import atomic_write_text
from .config import TinyModelConfig, TrainConfig, build, check_placement, nest_overrides, to_dict
from .errors import LetheError
from .models import load_model, placed, placement, save_model

# Maini et al. 2024 (TOFU), locuslab/tofu config/finetune.yaml: lr 1e-5, 5 epochs, batch 16 with no
# gradient accumulation, weight decay 0.01, seed 42; finetune.py warms up for max(1, steps // epochs)
# steps (one epoch: warmup_ratio 1/5) and decays linearly (the Trainer's default schedule).
TOFU_RECIPE = TrainConfig(lr=1e-5, epochs=5.0, batch_size=16, grad_accum=1, warmup_ratio=0.2, weight_decay=0.01,
                          scheduler="linear", seed=42)
RECORD = "finetune.json"  # written last into the partial folder: what was trained, how, on what


@dataclass(frozen=True)
class FinetuneConfig:
    """Settings of ``lethe finetune`` (``key=value``; unknown keys are one-line errors)."""

    benchmark: str = "lethe-authors"  # built-in name, a Lethe/TOFU data folder, or "locuslab/TOFU"
    benchmark_options: dict = field(default_factory=dict)
    forget_split: str = "forget10"  # the retain model trains on everything but this split
    model: str = ""  # "": Lethe's tiny recipe; else a hub id or model folder fine-tuned with the TOFU recipe
    out: str = ""  # "": models/<benchmark>-<forget_split>
    overwrite: bool = False  # replace an existing, non-empty out folder
    train: TrainConfig = TOFU_RECIPE  # the recipe of model=...
    tiny_model: TinyModelConfig = TinyModelConfig()  # the tiny recipe (sized to the data unless set here)
    cache_dir: str = ".lethe-cache"  # the tiny models' cache, shared with `lethe run`
    trust_remote_code: bool = False
    device: str = "auto"  # as lethe run's: this process's GPU, else the CPU
    model_dtype: str = "auto"  # model=...'s dtype: bfloat16 on a GPU, float32 on a CPU (the tiny recipe: float32)

    def out_folder(self) -> Path:
        return Path(self.out or Path("models") / f"{Path(self.benchmark).name}-{self.forget_split}")


def load_finetune_config(overrides) -> tuple[FinetuneConfig, set]:
    """``(config, the tiny_model fields given)`` from ``key=value`` overrides; settings that do not go with
    the chosen recipe are one line each."""
    values = nest_overrides(overrides)
    cfg = build(FinetuneConfig, values)
    explicit = set(values.get("tiny_model") or {})
    if cfg.model and explicit:
        raise LetheError(f"tiny_model.{sorted(explicit)[0]} sets Lethe's tiny recipe, which trains without model=; "
                         f"drop it, or drop model={cfg.model} (the TOFU recipe takes train.*)")
    if not cfg.model and values.get("train"):
        raise LetheError(f"train.{sorted(values['train'])[0]} sets the TOFU recipe of model=...; without model= the "
                         "tiny recipe takes tiny_model.* (lr, finetune_epochs, batch_size, ...)")
    cfg.train.check()
    cfg.tiny_model.check()
    return cfg, explicit


def finetune_benchmark(cfg: FinetuneConfig, explicit=None, log=print) -> dict:
    """Train ``out/target`` and ``out/retain`` (see the module docstring); returns the record that is also
    written to ``out/finetune.json``."""
    from . import __version__
    from .benchmarks import load_benchmark

    check_placement(cfg.device, cfg.model_dtype)
    with placed(placement(cfg.device, cfg.model_dtype)):
        out = cfg.out_folder()
        if out.exists() and not out.is_dir():
            raise LetheError(f"out={out} is a file; give a folder for the target and retain models")
        if out.is_dir() and any(out.iterdir()) and not cfg.overwrite:
            raise LetheError(f"out={out} exists and is not empty; give another out= or add overwrite=true to "
                             "replace it")
        bench = load_benchmark(cfg.benchmark, **cfg.benchmark_options)
        forget, retain = bench.forget(cfg.forget_split), bench.retain(cfg.forget_split)  # unknown split: one line
        partial = out.parent / f"{out.name}.partial"
        if partial.exists():  # left by a killed run: it never counts as finished
            dist.on_main(shutil.rmtree, partial)
        t0 = time.perf_counter()
        recipe = (tofu_pair if cfg.model else tiny_pair)(cfg, bench, partial, explicit, log)
        record = {"benchmark": {"name": bench.name, "version": bench.version, "fingerprint": bench.fingerprint(),
                                "source": str(bench.spec.get("source", cfg.benchmark))},
                  "forget_split": cfg.forget_split,
                  "items": {"target": len(bench.splits["authors"]), "retain": len(retain), "forget": len(forget)},
                  **recipe, "seconds": time.perf_counter() - t0, "lethe_version": __version__}
        atomic_write_text(partial / RECORD, json.dumps(record, indent=2) + "\n")
        dist.on_main(_move_into_place, partial, out)  # launched as several processes: the first one
    return record


def _move_into_place(partial: Path, out: Path) -> None:
    if out.exists():  # overwrite=true (checked above)
        shutil.rmtree(out)
    os.replace(partial, out)


def tiny_pair(cfg: FinetuneConfig, bench, folder: Path, explicit, log=print) -> dict:
    """Lethe's tiny recipe: the same builder and cache as ``lethe run benchmark=...`` without model=, the
    model sized to the data (the tiny_model fields given win); the two models are saved into ``folder``."""
    from .builtin import MODEL_RECIPE, build_builtin_models, size_tiny_model

    tiny = size_tiny_model(bench, cfg.tiny_model, explicit)
    models = build_builtin_models(bench, cfg.forget_split, tiny, cfg.cache_dir, log)
    for name, source in (("target", models.target), ("retain", models.retain)):
        model, tok = load_model(source)
        save_model(model, tok, folder / name)
    return {"recipe": "tiny", "model": "", "tiny_model": {**to_dict(tiny), "recipe": MODEL_RECIPE},
            "sized_to_data": tiny != cfg.tiny_model, "cache": str(Path(models.target).parent),
            "train_seconds": dict(models.timings)}


def tofu_pair(cfg: FinetuneConfig, bench, folder: Path, _explicit, log=print) -> dict:
    """The TOFU recipe: ``cfg.model`` fine-tuned on the question-answer pairs of every author (target) and of
    the authors outside the forget split (retain), each from the same starting weights."""
    from .data import Encoder
    from .loop import finetune, rounding_note

    seconds, stats = {}, {}
    for name, items in (("target", bench.splits["authors"]), ("retain", bench.retain(cfg.forget_split))):
        model, tok = load_model(cfg.model, cfg.trust_remote_code)
        enc = Encoder(tok)
        log(f"finetune: {name} model: {cfg.model} on {len(items)} question-answer pairs (TOFU recipe: lr "
            f"{cfg.train.lr:g}, {cfg.train.epochs:g} epochs, batch {cfg.train.batch_size} x {cfg.train.grad_accum}, "
            f"weight decay {cfg.train.weight_decay:g})")
        model, st = finetune(model, tok, [enc.qa(it.question, it.answer) for it in items], cfg.train,
                             f"finetune {name} model")
        if note := rounding_note(f"finetune: {name} model", st, cfg.train):
            log(f"note: {note}")
        save_model(model, tok, folder / name)
        seconds[name], stats[name] = st.seconds, {"steps": st.steps, "tokens": st.tokens, "unmoved": st.unmoved,
                                                  "master_weights": st.master_weights}
        del model
    return {"recipe": "tofu", "model": cfg.model, "train": to_dict(cfg.train), "train_seconds": seconds,
            "train_stats": stats}


def next_command(out: Path, cfg: FinetuneConfig) -> str:
    """The ``lethe run`` line that unlearns and evaluates with the two models written to ``out``."""
    parts = ["lethe run", f"benchmark={cfg.benchmark}"]
    parts += [f"benchmark_options.{k}={v}" for k, v in cfg.benchmark_options.items()]
    parts += [f"forget_split={cfg.forget_split}", f"model={out / 'target'}", f"retain_model={out / 'retain'}"]
    return " ".join(parts)
