"""Benchmarks: built-in generators and loaders for public formats (DESIGN.md, principle 6; docs/benchmarks.md).

``load_benchmark`` takes "lethe-authors" (:mod:`lethe.benchmarks.synthetic`), a Lethe benchmark folder
(``save_benchmark``), a TOFU or Closer-Look folder (:mod:`lethe.benchmarks.tofu`) or "locuslab/TOFU".
Every loader checks that no forget item stands in the retain data (:mod:`lethe.benchmarks.overlap`).
Imports stay light (no torch): ``lethe ls`` and ``lethe validate`` use this module.
"""
from __future__ import annotations

import inspect
import json
from pathlib import Path

from ..errors import LetheError, where
from .base import Benchmark, QAItem, atomic_write_text, read_json, read_jsonl, read_text, write_jsonl
from .synthetic import generate, template_rouge_floor
from .overlap import check_overlap, overlap_report
from .tofu import TOFU_HUB_ID, describe_splits, export_tofu, load_tofu

BENCHMARKS = ["lethe-authors", TOFU_HUB_ID]  # names load_benchmark knows (folders aside), for `lethe ls`
FOLDER_FORMAT = "lethe-benchmark/1"

__all__ = [
    "BENCHMARKS", "Benchmark", "QAItem", "load_benchmark", "save_benchmark", "load_benchmark_folder",
    "generate", "template_rouge_floor", "load_tofu", "export_tofu", "overlap_report", "describe_splits",
]
TOFU_FILES = ("full.json", "forget10.json", "forget05.json", "forget01.json")  # any of them marks a TOFU folder


def load_benchmark(source: str = "lethe-authors", **params) -> Benchmark:
    """Load a benchmark by name or folder (see the module docstring)."""
    source = str(source)
    if source == "lethe-authors":
        _check_params(generate, params, source)
        return generate(**params)
    if source == TOFU_HUB_ID:
        _check_params(load_tofu, params, source, skip=("source",))
        return load_tofu(source, **params)
    folder = Path(source)
    if folder.is_file() and folder.name in ("benchmark.json", *TOFU_FILES):
        folder = folder.parent  # a file of the folder stands for the folder
    if folder.is_dir():
        if (folder / "benchmark.json").is_file():
            if params:
                raise LetheError(f"{folder}: a saved Lethe benchmark takes no parameters (got {', '.join(params)})")
            return load_benchmark_folder(folder)
        if any((folder / name).is_file() for name in TOFU_FILES):
            _check_params(load_tofu, params, source, skip=("source",))
            return load_tofu(folder, **params)
    raise LetheError(
        f"unknown benchmark '{source}': give 'lethe-authors', a Lethe benchmark folder, a TOFU folder "
        f"or '{TOFU_HUB_ID}'"
    )


def _check_params(fn, params: dict, source: str, skip: tuple[str, ...] = ()) -> None:
    known = [p for p in inspect.signature(fn).parameters if p not in skip]
    for name in params:
        if name not in known:
            raise LetheError(f"benchmark '{source}': unknown parameter '{name}' (known: {', '.join(known)})")


# --------------------------------------------------------------------------------------------------
# Lethe's own folder format
# --------------------------------------------------------------------------------------------------
def save_benchmark(bench: Benchmark, folder: str | Path) -> Path:
    """Write ``bench`` as benchmark.json + <split>.jsonl + pretrain.txt; every file is written atomically."""
    folder = Path(folder)
    for sentence in bench.pretrain_text:
        if "\n" in sentence or "\r" in sentence:
            raise LetheError(f"benchmark '{bench.name}': a pretraining sentence contains a line break; "
                             "pretrain.txt holds one sentence per line")
    for split, items in bench.splits.items():
        write_jsonl(folder / f"{split}.jsonl", items)
    atomic_write_text(folder / "pretrain.txt", "".join(s + "\n" for s in bench.pretrain_text))
    meta = {"format": FOLDER_FORMAT, "name": bench.name, "version": bench.version, "spec": bench.spec,
            "forget_sets": bench.forget_sets, "splits": list(bench.splits),
            "pretrain_sentences": len(bench.pretrain_text)}
    # benchmark.json last: a folder that has it is complete.
    atomic_write_text(folder / "benchmark.json", json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    return folder


def load_benchmark_folder(folder: str | Path) -> Benchmark:
    """Read a folder written by :func:`save_benchmark`; errors name the file, the field and the fix."""
    folder = Path(folder)
    meta_path = folder / "benchmark.json"
    if not meta_path.is_file():
        raise LetheError(f"{meta_path}: file not found; a Lethe benchmark folder is written by "
                         "lethe.benchmarks.save_benchmark")
    meta = read_json(meta_path)
    if not isinstance(meta, dict):
        raise LetheError(f"{meta_path}: expected a JSON object")

    def field(name, kind, required=True, default=None):
        if name not in meta:
            if required:
                raise LetheError(f"{where(meta_path, None, name)}: missing; add it (see docs/benchmarks.md)")
            return default
        if not isinstance(meta[name], kind):
            raise LetheError(f"{where(meta_path, None, name)}: must be a {kind.__name__}")
        return meta[name]

    name, version = field("name", str), field("version", str)
    split_names = field("splits", list)
    forget_sets = field("forget_sets", dict)
    spec = field("spec", dict, required=False, default={})
    n_pretrain = field("pretrain_sentences", int, required=False, default=None)

    splits: dict[str, list[QAItem]] = {}
    for split in split_names:
        if not isinstance(split, str) or not split or "/" in split or "\\" in split:
            raise LetheError(f"{where(meta_path, None, 'splits')}: split names must be plain names, got {split!r}")
        path = folder / f"{split}.jsonl"
        if not path.is_file():
            raise LetheError(f"{path}: file not found; benchmark.json lists split '{split}': add the file "
                             "or remove the split from 'splits'")
        splits[split] = read_jsonl(path)
    if "authors" not in splits:
        raise LetheError(f"{where(meta_path, None, 'splits')}: needs an 'authors' split (the training data)")

    groups = {it.group for it in splits["authors"]}
    for split, ids in forget_sets.items():
        if not isinstance(ids, list) or not ids or not all(isinstance(g, str) for g in ids):
            raise LetheError(f"{where(meta_path, None, 'forget_sets')}: '{split}' must be a non-empty list of "
                             "author ids (the 'group' values of authors.jsonl)")
        unknown = [g for g in ids if g not in groups]
        if unknown:
            raise LetheError(f"{where(meta_path, None, 'forget_sets')}: '{split}' names author ids not in "
                             f"authors.jsonl: {', '.join(unknown[:5])}; fix the ids or the 'group' fields")

    pretrain_path = folder / "pretrain.txt"
    if n_pretrain and not pretrain_path.is_file():
        raise LetheError(f"{pretrain_path}: file not found; benchmark.json says it holds {n_pretrain} sentences")
    text = read_text(pretrain_path) if pretrain_path.is_file() else ""
    pretrain = [line for line in text.splitlines() if line.strip()]
    if n_pretrain is not None and n_pretrain != len(pretrain):
        raise LetheError(f"{pretrain_path}: {len(pretrain)} sentences, benchmark.json says {n_pretrain}; "
                         "the folder is incomplete, save it again")
    bench = Benchmark(name, version, splits, {k: list(v) for k, v in forget_sets.items()}, pretrain, spec)
    authors = str(folder / "authors.jsonl")
    check_overlap(bench, lambda split: (f"{authors} (forget_sets.{split} of benchmark.json)", authors))
    return bench

