"""Eighteen public safety datasets (``lethe ls datasets``; docs/safety.md), each read from a local file, folder
or hub id into :class:`lethe.safety_items.SafetyItem`s; the registry and readers are
:mod:`lethe.benchmarks.safety_sources`, the loaders ``safety_harmful`` and ``safety_benign``. Loaders keep file
order, count every row they leave out with its reason, and name items ``<dataset>-<its own id or row number>``.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import LetheError
from ..safety_items import ROLES, SafetyItem
from . import safety_benign, safety_harmful  # noqa: F401 - importing them registers their datasets
from .safety_sources import DATASETS, SafetyDataset, open_source


def dataset_names(role: str | None = None) -> list[str]:
    """Registered dataset names (sorted), optionally only those of one role."""
    if role is not None and role not in ROLES:
        raise LetheError(f"unknown role '{role}'; give one of {', '.join(ROLES)}")
    return [n for n, ds in DATASETS.items() if role is None or ds.role == role]


def describe_datasets() -> list[tuple[str, str, str]]:
    """(name, role, description with its hub id or download address) rows, harmful then benign then utility,
    for ``lethe ls datasets``."""
    rows = []
    for ds in (DATASETS.get(name) for role in ROLES for name in dataset_names(role)):
        where_from = f"hub: {ds.hub_id}" if ds.hub_id else f"download: {ds.download}"
        rows.append((ds.name, ds.role, f"{ds.description} ({where_from})"))
    return rows


@dataclass
class LoadedSet:
    """What one read of a dataset found: its items and how every row that gave none was accounted for."""

    name: str  # the dataset's registry name
    label: str  # the file, folder or hub id read
    rows: int  # rows read (before filtering)
    items: list[SafetyItem]  # the items kept (after ``limit``)
    dropped: dict[str, int]  # reason -> rows left out for it
    notes: list[str]  # what a report should say about this set (left-out rows, where targets came from)
    files: list[str] = field(default_factory=list)  # the files read, where a folder held several


def load_safety_dataset(name: str, source: str | Path | None = None, *, limit: int | None = None,
                        split: str | None = None, config: str | None = None, **options) -> list[SafetyItem]:
    """Read dataset ``name`` from ``source`` (a file, a folder or a hub id; default: its hub id). ``split`` /
    ``config`` choose a part of a folder or hub dataset; ``limit`` keeps the first N items; ``options`` are the
    dataset's own switches (``DATASETS.get(name).options``), e.g. ``controversial=True`` for phtest."""
    return read_safety_dataset(name, source, limit=limit, split=split, config=config, **options).items


def read_safety_dataset(name: str, source: str | Path | None = None, *, limit: int | None = None,
                        split: str | None = None, config: str | None = None, **options) -> LoadedSet:
    """:func:`load_safety_dataset` with its accounting: the rows read, the rows dropped and why, and the
    notes a report should carry (a scenario puts them in its notes; ``lethe validate`` prints them)."""
    ds = DATASETS.get(name)
    opts = _check_options(ds, options)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise LetheError(f"{name}: limit = {limit!r} is invalid; give a positive integer (or None for all items)")
    src = open_source(ds, source, split, config)
    items = ds.loader(src, **opts)
    if not items:
        why = ds.keeps or "no row gave an item"
        if src.dropped:
            why += "; left out: " + ", ".join(f"{n} {reason}" for reason, n in src.dropped.items())
        raise LetheError(f"{src.label}: none of its {len(src)} rows is a {ds.role} item of {name} "
                         f"({why}); check that this is the right file")
    seen: set[str] = set()
    for it in items:
        if it.id in seen:
            raise LetheError(f"{src.label}: duplicate id '{it.id}'; the dataset's id column must be unique")
        seen.add(it.id)
    notes = list(src.notes)
    if limit is not None and len(items) > limit:
        notes.append(f"{name}: the first {limit} of its {len(items)} items (limit)")
    return LoadedSet(name, src.label, len(src), items[:limit], dict(src.dropped), notes,
                     sorted(set(src.row_files or ())))


def describe(name: str, source: str | Path | None = None, *, split: str | None = None,
             config: str | None = None, **options) -> list[str]:
    """What reading ``source`` as dataset ``name`` finds, as lines to print, without running anything:
    rows, items kept and their role, categories, rows dropped and why, known responses and targets.
    Bad input raises the loader's one-line :class:`LetheError` (what ``lethe validate`` reports)."""
    got = read_safety_dataset(name, source, split=split, config=config, **options)
    items = got.items
    lines = [f"{name}: {got.label}: {got.rows} rows -> {len(items)} {DATASETS.get(name).role} items"]
    if got.files:
        lines.append(f"  files: {len(got.files)} ({', '.join(Path(f).name for f in got.files[:3])}"
                     + (", ..." if len(got.files) > 3 else "") + ")")
    cats = Counter(it.category or "(none)" for it in items)
    top = sorted(cats.items(), key=lambda kv: (-kv[1], kv[0]))
    lines.append(f"  categories: {len(cats)} (" + ", ".join(f"{c} {n}" for c, n in top[:5])
                 + (", ..." if len(top) > 5 else "") + ")")
    lines += [f"  dropped: {n} rows: {reason}" for reason, n in got.dropped.items()] or ["  dropped: none"]
    counts = {what: sum(1 for it in items if getattr(it, attr)) for what, attr in (
        ("targets", "target"), ("harmful responses", "harmful_response"), ("refusal responses", "refusal_response"),
        ("helpful responses", "helpful_response"), ("multiple choice", "choices"), ("exact answers", "answer"))}
    found = [f"{k} {v}" for k, v in counts.items() if v]
    lines.append("  with: " + (", ".join(found) if found else "prompts only"))
    lines += [f"  note: {n}" for n in got.notes]
    return lines


def _check_options(ds: SafetyDataset, options: dict) -> dict:
    for key, value in options.items():
        if key not in ds.options:
            known = ", ".join(ds.options) or "none"
            raise LetheError(f"{ds.name}: unknown option '{key}' (options of {ds.name}: {known}; all datasets "
                             "take source, limit, split, config)")
        default = ds.options[key]
        if type(value) is not type(default):
            raise LetheError(f"{ds.name}: option {key} = {value!r} must be a {type(default).__name__} "
                             f"(default {default!r})")
    return {**ds.options, **options}
