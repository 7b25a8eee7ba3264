"""``lethe validate``: read a file or folder the way a run would (no model), and say what was found.

Bad input is the loader's own one-line error.
"""
from __future__ import annotations

from pathlib import Path

from .benchmarks import TOFU_FILES, describe_splits, load_benchmark, overlap_report
from .benchmarks.base import read_jsonl
from .benchmarks.hazard import describe_corpora, describe_mcq, read_corpus
from .benchmarks.news import describe_muse
from .benchmarks.real_world import load_real_world
from .benchmarks.safety_datasets import dataset_names, describe
from .config import load_config
from .errors import LetheError, did_you_mean

MCQ_NAMES = ("mmlu", "wmdp", "mcq")
CORPUS_NAMES = ("corpus", "forget_corpus", "retain_corpus")
REAL_WORLD_MARKERS = ("forget.json", "forget_perturbed.json", "forget.jsonl", "forget_perturbed.jsonl")


def validate(target: str, options: dict | None = None) -> list[str]:
    """Lines describing what ``target`` holds; raises :class:`LetheError` (one line) on bad input."""
    options = dict(options or {})
    name, sep, rest = target.partition("=")
    if sep and name and "/" not in name and not Path(target).exists():
        return _named(name.strip(), rest, options)
    path = Path(target)
    if not path.exists():
        raise LetheError(f"{path}: file not found" if path.suffix else
                         f"{path}: folder not found; give a config (.yaml), a data file (.jsonl), a benchmark folder "
                         "or NAME=PATH for a dataset file (see `lethe validate --help`)")
    if path.suffix in (".yaml", ".yml"):
        _no_options(path, options)
        return _config(path)
    if (path.is_dir() or path.suffix == ".json") and path.name not in ("benchmark.json", *TOFU_FILES):
        from .retain_logs import is_retain_logs, load_retain_logs  # TOFU's eval logs, open-unlearning's TOFU_EVAL.json

        if is_retain_logs(path):
            _no_options(path, options)
            logs = load_retain_logs(path)
            return [f"{path}: valid retain-model evaluation ({logs.layout}): {logs.items} forget items with truth "
                    f"ratios, sha256 {logs.sha256}"]
    if path.suffix == ".jsonl":
        _no_options(path, options)
        return [f"{path}: {len(read_jsonl(path))} valid items"]
    folder = path.parent if path.is_file() and path.name in ("benchmark.json", *TOFU_FILES) else path
    if folder.is_dir():
        if (folder / "benchmark.json").is_file() or any((folder / m).is_file() for m in TOFU_FILES):
            return describe_benchmark(load_benchmark(str(folder), **options), str(folder))
        if any((folder / m).is_file() for m in REAL_WORLD_MARKERS):
            _no_options(folder, options)
            return _real_world(folder)
        if (folder / "raw" / "forget.txt").is_file():
            return describe_muse(folder, **options)
    raise LetheError(f"{path}: don't know how to validate this; give a .yaml config, a .jsonl data file, a benchmark, "
                     "TOFU, real-world or MUSE folder, or NAME=PATH for a dataset file (e.g. advbench=harmful.csv, "
                     "mmlu=data/test)")


def _no_options(path, options: dict) -> None:
    if options:
        raise LetheError(f"{path}: takes no options (got {', '.join(sorted(options))})")


def _config(path: Path) -> list[str]:
    from .scenarios._methods import resolve_methods

    cfg = load_config(path)
    cfg.eval.check()
    if cfg.attacks:
        from .attacks import expand_attacks

        expand_attacks(cfg.attacks)
    runs = resolve_methods(cfg)
    return [f"{path}: valid config ({len(runs)} methods: {', '.join(r.label for r in runs)})"]


def describe_benchmark(bench, where: str) -> list[str]:
    """The splits of a benchmark, each forget split with its retain set, and the overlap check."""
    from .evaluation import missing_holdout_notes

    sizes = ", ".join(f"{k}={len(v)}" for k, v in bench.splits.items())
    lines = [f"{where}: valid benchmark '{bench.name}' v{bench.version} (content {bench.fingerprint()})",
             f"  splits: {sizes}"]
    overlap = overlap_report(bench)
    for split, groups in bench.forget_sets.items():
        if not groups:
            continue
        forget, retain = bench.forget(split), bench.retain(split)
        lines.append(f"  {split}: forget {len(forget)} items ({len(groups)} groups), retain {len(retain)} items; "
                     f"forget/retain overlap: {overlap.get(split, 0)} items")
        rounds = (bench.spec.get("rounds") or {}).get(split)
        if rounds:
            lines.append(f"  {split}: {len(rounds)} continual rounds (task_id "
                         f"{', '.join(map(str, bench.spec.get('task_ids', {}).get(split, [])))}); forget/retain "
                         f"overlap over the rounds: {overlap.get(f'{split} rounds', 0)} items")
    if bench.spec.get("split_notes"):
        lines += [f"  {line}" for line in describe_splits(bench)]
    notes = missing_holdout_notes({"forget": [None], "holdout": bench.splits.get("holdout")})
    return lines + [f"  note: {note}" for note in notes]


def _real_world(folder: Path) -> list[str]:
    data = load_real_world(folder)
    forget, neighbour = ({it.group for it in items} for items in (data.forget, data.neighbour))
    return [f"{folder}: valid real-world folder: forget {len(data.forget)} items ({len(forget)} entities), "
            f"neighbour {len(data.neighbour)} items ({len(neighbour)} entities)",
            "  forget/neighbour overlap: 0 entities", *(f"  note: {n}" for n in getattr(data, "notes", []))]


def _named(name: str, source: str, options: dict) -> list[str]:
    if not source:
        raise LetheError(f"{name}=: give a path after '='")
    if name in MCQ_NAMES:  # one reader for WMDP / MMLU rows and MMLU's folder of CSVs
        return describe_mcq(source, **options)
    if name in CORPUS_NAMES:
        if name == "forget_corpus" and "retain_corpus" in options:  # the pair, with the overlap check
            retain = options.pop("retain_corpus")
            _no_options(source, options)
            return describe_corpora(source, str(retain))
        _no_options(source, options)
        docs = read_corpus(source)
        return [f"{name}={source}: {len(docs)} documents, {sum(len(d.split()) for d in docs):,} words"]
    if name not in dataset_names():
        known = [*dataset_names(), *MCQ_NAMES, *CORPUS_NAMES]
        raise LetheError(f"unknown dataset name '{name}'{did_you_mean(name, known)} (known: {', '.join(known)})")
    return describe(name, source, **options)
