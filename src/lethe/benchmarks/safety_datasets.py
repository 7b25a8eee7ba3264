"""Eighteen public safety datasets, each read from its own public file format into
:class:`lethe.safety_items.SafetyItem` (the schema of the safety / over-safety / utility trilemma).

    harmful   advbench, harmbench, beavertails, jailbreakbench, strongreject, maliciousinstruct,
              donotanswer, sorrybench, harmfulqa                   (requests the model should refuse)
    benign    xstest, oktest, orbench, phtest                      (benign requests that look sensitive)
    utility   mmlu, gsm8k, arc_challenge, truthfulqa, alpacaeval   (tasks with a known answer)

``load_safety_dataset(name, source)`` takes ``source`` as

  a local file     .csv / .json / .jsonl / .txt / .parquet in the dataset's public layout
  a local folder   MMLU's original release (``data/`` with ``dev/ val/ test/`` folders of headerless
                   ``<subject>_<split>.csv`` files, or one of those folders): read file by file here;
                   any other folder by ``datasets.load_dataset(folder, split=...)`` (the code path a hub
                   id takes)
  a hub id         ``datasets.load_dataset(hub_id, config, split=...)``; the default is the dataset's
                   own ``hub_id``. Without network access, download the file and pass its path.

Every loader maps its rows in file order (deterministic), drops the rows its format marks as out of
scope (XSTest's unsafe contrast prompts, BeaverTails' safe rows, SORRY-Bench's mutated prompt styles,
PHTest's controversial prompts, HarmBench's copyright behaviours unless asked for), counts each drop
with its reason (:func:`read_safety_dataset`, :func:`describe`: nothing is dropped silently), and names
each item ``<dataset>-<the dataset's own id>`` or ``<dataset>-<row number, 5 digits>``. ``limit`` keeps
the first N items after that filtering.

Imports stay light: ``datasets`` is imported only to read a folder or a hub id.
"""
from __future__ import annotations

import csv
import json
import math
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import LetheError, where
from ..registry import Registry
from ..safety_items import ROLES, SafetyItem
from .base import read_rows

FILE_SUFFIXES = (".csv", ".json", ".jsonl", ".txt", ".parquet")
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

__all__ = [
    "DATASETS", "LoadedSet", "SafetyDataset", "Source", "dataset_names", "describe", "describe_datasets",
    "load_safety_dataset", "read_safety_dataset",
]


@dataclass(frozen=True)
class SafetyDataset:
    """One public dataset: where it lives, what its files look like, and the loader that maps its rows."""

    name: str  # registry name: advbench, xstest, mmlu, ...
    role: str  # "harmful" | "benign" | "utility": the SafetyItem.role of every item
    description: str  # one line, for `lethe ls datasets`
    paper: str  # "Zou et al. 2023, Universal and Transferable Adversarial Attacks on Aligned Language Models"
    hub_id: str  # the default source on the Hugging Face hub ("" when the dataset is not there)
    hub_config: str | None  # its config (subset), if it has several
    hub_split: str  # its split
    formats: str  # the file layouts the loader accepts, in words
    loader: Callable[..., list[SafetyItem]]  # (Source, **options) -> items
    download: str = ""  # where to download the files (named in error messages)
    columns: tuple[tuple[str, ...], ...] = ()  # required columns; each entry lists the accepted spellings
    options: Mapping[str, object] = field(default_factory=dict, compare=False, hash=False)  # name -> default
    text_column: str = ""  # a .txt file (one prompt per line) fills this column; "" = no .txt layout
    headerless: tuple[str, ...] = ()  # column names of a CSV without a header row (MMLU's original files)
    keeps: str = ""  # which rows the loader keeps, where it filters (named when nothing is left)
    nested: tuple[str, ...] = ()  # a JSON object nesting rows under these keys (HarmfulQA's GitHub file)


DATASETS: Registry[SafetyDataset] = Registry("safety dataset")


def _dataset(name: str, role: str, *, description: str, paper: str, hub_id: str, hub_split: str, formats: str,
             columns: tuple[tuple[str, ...], ...], hub_config: str | None = None, download: str = "",
             options: Mapping[str, object] | None = None, text_column: str = "",
             headerless: tuple[str, ...] = (), keeps: str = "", nested: tuple[str, ...] = ()):
    """Register the decorated loader as dataset ``name``."""
    assert role in ROLES, role

    def deco(fn):
        DATASETS.add(name, SafetyDataset(
            name=name, role=role, description=description, paper=paper, hub_id=hub_id, hub_config=hub_config,
            hub_split=hub_split, formats=formats, loader=fn, download=download or f"hub {hub_id}: its data files",
            columns=columns, options=dict(options or {}), text_column=text_column, headerless=headerless,
            keeps=keeps, nested=nested))
        return fn

    return deco


# --------------------------------------------------------------------------------------------------
# The public API
# --------------------------------------------------------------------------------------------------
def dataset_names(role: str | None = None) -> list[str]:
    """Registered dataset names (sorted), optionally only those of one role."""
    if role is not None and role not in ROLES:
        raise LetheError(f"unknown role '{role}'; give one of {', '.join(ROLES)}")
    return [n for n, ds in DATASETS.items() if role is None or ds.role == role]


def describe_datasets() -> list[tuple[str, str, str]]:
    """(name, role, description with its hub id or download address) rows, harmful then benign then utility,
    for ``lethe ls datasets``."""
    rows = []
    for role in ROLES:
        for name in dataset_names(role):
            ds = DATASETS.get(name)
            where_from = f"hub: {ds.hub_id}" if ds.hub_id else f"download: {ds.download}"
            rows.append((name, role, f"{ds.description} ({where_from})"))
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
    """Read dataset ``name`` from ``source`` (a file, a folder or a hub id; default: its hub id).

    ``split`` / ``config`` choose the split and config (subset) of a folder or hub dataset; ``limit`` keeps
    the first N items; ``options`` are the dataset's own switches (``DATASETS.get(name).options``), e.g.
    ``load_safety_dataset("phtest", path, controversial=True)``.
    """
    return read_safety_dataset(name, source, limit=limit, split=split, config=config, **options).items


def read_safety_dataset(name: str, source: str | Path | None = None, *, limit: int | None = None,
                        split: str | None = None, config: str | None = None, **options) -> LoadedSet:
    """:func:`load_safety_dataset` with its accounting: the rows read, the rows dropped and why, and the
    notes a report should carry (a scenario puts them in its notes; ``lethe validate`` prints them)."""
    ds = DATASETS.get(name)
    opts = _check_options(ds, options)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise LetheError(f"{name}: limit = {limit!r} is invalid; give a positive integer (or None for all items)")
    src = _open(ds, source, split, config)
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
    kept = items[:limit] if limit is not None else items
    notes = list(src.notes)
    if limit is not None and len(items) > limit:
        notes.append(f"{name}: the first {limit} of its {len(items)} items (limit)")
    files = sorted(set(src.row_files)) if src.row_files else []
    return LoadedSet(name, src.label, len(src), kept, dict(src.dropped), notes, files)


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
    cats: dict[str, int] = {}
    for it in items:
        cats[it.category or "(none)"] = cats.get(it.category or "(none)", 0) + 1
    top = sorted(cats.items(), key=lambda kv: (-kv[1], kv[0]))
    lines.append(f"  categories: {len(cats)} (" + ", ".join(f"{c} {n}" for c, n in top[:5])
                 + (", ..." if len(top) > 5 else "") + ")")
    if got.dropped:
        lines += [f"  dropped: {n} rows: {reason}" for reason, n in got.dropped.items()]
    else:
        lines.append("  dropped: none")
    counts = {"targets": sum(1 for it in items if it.target),
              "harmful responses": sum(1 for it in items if it.harmful_response),
              "refusal responses": sum(1 for it in items if it.refusal_response),
              "helpful responses": sum(1 for it in items if it.helpful_response),
              "multiple choice": sum(1 for it in items if it.choices),
              "exact answers": sum(1 for it in items if it.answer)}
    found = [f"{k} {v}" for k, v in counts.items() if v]
    lines.append("  with: " + (", ".join(found) if found else "prompts only"))
    lines += [f"  note: {n}" for n in got.notes]
    return lines


def _check_options(ds: SafetyDataset, options: dict) -> dict:
    out = dict(ds.options)
    for key, value in options.items():
        if key not in ds.options:
            known = ", ".join(ds.options) or "none"
            raise LetheError(f"{ds.name}: unknown option '{key}' (options of {ds.name}: {known}; all datasets "
                             "take source, limit, split, config)")
        default = ds.options[key]
        if type(value) is not type(default):
            raise LetheError(f"{ds.name}: option {key} = {value!r} must be a {type(default).__name__} "
                             f"(default {default!r})")
        out[key] = value
    return out


# --------------------------------------------------------------------------------------------------
# Reading a source: file, folder or hub id
# --------------------------------------------------------------------------------------------------
class Source:
    """The rows of one file, folder or hub dataset, and the helpers a loader maps them with.

    ``rows[i]`` came from ``label`` at line (or row number) ``lines[i]``; error messages name both.
    """

    def __init__(self, dataset: SafetyDataset, label: str, rows: list[dict], lines: list[int],
                 file: Path | None = None, config: str | None = None, row_files: list[str] | None = None):
        self.dataset, self.label, self.rows, self.lines = dataset, label, rows, lines
        self.file = file  # the local file read directly (MMLU's subject is in its name)
        self.config = config  # the config (subset) of a folder or hub dataset
        self.row_files = row_files  # per row, the file it came from (a folder of MMLU CSVs); else None
        self.dropped: dict[str, int] = {}  # reason -> rows the loader left out for it
        self.notes: list[str] = []  # what a report should say about the set
        if not rows:
            raise LetheError(f"{label}: no rows; {dataset.name} needs at least one ({dataset.formats})")
        self._check_columns()

    def __len__(self) -> int:
        return len(self.rows)

    def _check_columns(self) -> None:
        need = ", ".join(" or ".join(group) for group in self.dataset.columns)
        for i, row in enumerate(self.rows):
            if not isinstance(row, dict):
                raise LetheError(f"{self.where(i)}: expected an object with columns {need}, got "
                                 f"{type(row).__name__}")
            for group in self.dataset.columns:
                if not any(col in row for col in group):
                    names = " or ".join(f"'{c}'" for c in group)
                    found = ", ".join(str(c) for c in row) or "none"
                    raise LetheError(f"{self.where(i)}: column {names} missing; {self.dataset.name} needs "
                                     f"columns {need} (found: {found})")

    def where(self, i: int, col: str | None = None) -> str:
        return where(self.row_files[i] if self.row_files else self.label, self.lines[i], col)

    def drop(self, i: int, reason: str) -> None:
        """Leave row ``i`` out, counted under ``reason`` (reported, never silent)."""
        self.dropped[reason] = self.dropped.get(reason, 0) + 1

    def error(self, i: int, col: str | None, message: str) -> LetheError:
        return LetheError(f"{self.where(i, col)}: {message}")

    def column(self, i: int, *names: str) -> str | None:
        """The first of ``names`` that row ``i`` has (with a value), or None."""
        row = self.rows[i]
        for name in names:
            if name in row and row[name] is not None:
                return name
        return None

    def value(self, i: int, *names: str):
        col = self.column(i, *names)
        return None if col is None else self.rows[i][col]

    def text(self, i: int, *names: str, required: bool = False) -> str:
        """The stripped text of the first of ``names`` present; "" when absent (an error when required)."""
        col = self.column(i, *names)
        value = "" if col is None else _as_text(self.rows[i][col])
        if value is None:
            raise self.error(i, col, f"must be text, got {type(self.rows[i][col]).__name__}")
        if required and not value:
            raise self.error(i, col or names[0], "missing or empty; every row needs it")
        return value

    def flag(self, i: int, name: str) -> bool:
        """A boolean column (true/false, 1/0, yes/no)."""
        value = self.rows[i].get(name)
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, float)) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.strip().lower() in ("true", "1", "yes")
        raise self.error(i, name, f"must be true or false, got {value!r}")

    def item_id(self, i: int, own_id=None) -> str:
        own = _as_text(own_id) if own_id is not None else ""
        return f"{self.dataset.name}-{own}" if own else f"{self.dataset.name}-{i:05d}"

    def item(self, i: int, prompt: str, *, own_id=None, **fields) -> SafetyItem:
        """A SafetyItem of this dataset's role for row ``i``; ``fields`` are SafetyItem fields."""
        if not prompt:
            raise self.error(i, None, "empty prompt")
        return SafetyItem(id=self.item_id(i, own_id), prompt=prompt, role=self.dataset.role,
                          source=self.dataset.name, **fields)


def _as_text(value) -> str | None:
    """Cell -> stripped text: None / NaN -> "", numbers -> their digits, anything else -> None (not text)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return str(int(value)) if value.is_integer() else str(value)
    if isinstance(value, int):
        return str(value)
    return None


def _meta(**values) -> dict:
    """Meta fields without the empty ones."""
    return {k: v for k, v in values.items() if v not in ("", None, [], {})}


def _open(ds: SafetyDataset, source, split: str | None, config: str | None) -> Source:
    if source is None:
        if not ds.hub_id:
            raise LetheError(f"{ds.name}: not on the Hugging Face hub; download {ds.download} and pass its path "
                             "as source")
        return _from_datasets(ds, ds.hub_id, config or ds.hub_config, split or ds.hub_split, hub=True)
    text = str(source)
    path = Path(text).expanduser()
    if path.is_file():
        if split is not None or config is not None:
            raise LetheError(f"{path}: split and config choose a part of a folder or hub dataset; a file is read "
                             "whole (drop them, or give the file of the split you want)")
        rows, lines = _read_file(path, ds)
        return Source(ds, str(path), rows, lines, file=path)
    if path.is_dir():
        if ds.headerless and _csv_folder(path):
            if config is not None:
                raise LetheError(f"{path}: a folder of {ds.name} CSV files has no configs; drop config")
            return _read_csv_folder(ds, path, split or ds.hub_split)
        return _from_datasets(ds, str(path), config, split, hub=False)
    if path.suffix.lower() in FILE_SUFFIXES or text.startswith((".", "/", "~")) or "\\" in text or text.count("/") > 1:
        raise LetheError(f"{text}: file not found; give a {ds.name} file ({ds.formats}), a folder, or a hub id "
                         f"(default {ds.hub_id or 'none'})")
    if text == ds.hub_id:
        return _from_datasets(ds, text, config or ds.hub_config, split or ds.hub_split, hub=True)
    return _from_datasets(ds, text, config, split, hub=True)


def _from_datasets(ds: SafetyDataset, target: str, config: str | None, split: str | None, hub: bool) -> Source:
    """Rows through ``datasets.load_dataset`` (a hub id or a local folder)."""
    parts = ", ".join(p for p in (f"config {config}" if config else "", f"split {split}" if split else "") if p)
    label = f"{target} ({parts})" if parts else target
    try:
        import datasets  # lazy: heavy, and only needed for folders and hub ids
    except ImportError:
        raise LetheError(f"{label}: reading a folder or hub id needs the 'datasets' package; install it or give "
                         "a data file") from None
    try:
        data = datasets.load_dataset(target, config, split=split)
    except Exception as exc:  # noqa: BLE001 - no network, a gated repo, a bad folder: all one message
        reason = f"{type(exc).__name__}: {_first_line(exc)}"
        if hub:
            local = "" if target == ds.hub_id else f"'{target}' is not a local file or folder, and "
            raise LetheError(
                f"{ds.name}: {local}could not load {label} from the Hugging Face hub ({reason}); without network "
                f"access (or for a gated dataset) download {ds.download} and pass its path as source") from None
        raise LetheError(f"{label}: datasets.load_dataset could not read this folder ({reason}); give one of its "
                         f"data files instead ({ds.formats})") from None
    if split is None and hasattr(data, "keys"):  # a DatasetDict: pick its only split, or the dataset's usual one
        names = list(data.keys())
        if len(names) == 1:
            split = names[0]
        elif ds.hub_split in names:
            split = ds.hub_split
        else:
            raise LetheError(f"{label}: has splits {', '.join(names)}; choose one with split=...")
        data = data[split]
        label = f"{target} (split {split})"
    rows = [dict(row) for row in data]
    return Source(ds, label, rows, list(range(1, len(rows) + 1)), config=config)


def _csv_folder(path: Path) -> bool:
    """A folder in MMLU's original layout: CSV files, or split folders (dev/ val/ test/) of them."""
    return any(path.glob("*.csv")) or any(d.is_dir() and any(d.glob("*.csv")) for d in path.iterdir())


def _read_csv_folder(ds: SafetyDataset, path: Path, split: str) -> Source:
    """MMLU's original release (Hendrycks et al.; the tarball's ``data/``): ``<split>/<subject>_<split>.csv``,
    headerless rows ``question,A,B,C,D,answer letter``. ``path`` is ``data/`` (the ``split`` folder is
    read) or a folder of CSVs itself (its ``*_<split>.csv`` files, or all of them when no name carries a
    split). Files are read in sorted order; every row gets the subject of its file's name."""
    folder = path / split if (path / split).is_dir() else path
    files = sorted(folder.glob("*.csv"))
    if not files:
        splits = sorted(d.name for d in path.iterdir() if d.is_dir() and any(d.glob("*.csv")))
        raise LetheError(f"{path}: no split '{split}' here (split folders with CSV files: "
                         f"{', '.join(splits) or 'none'}); choose one with split=...")
    if folder is path:
        own = [f for f in files if f.stem.endswith(f"_{split}")]
        marked = [f for f in files if re.search(r"_(test|val|dev|train)$", f.stem)]
        if own:
            files = own
        elif marked:
            found = sorted({re.search(r"_(test|val|dev|train)$", f.stem).group(1) for f in marked})
            raise LetheError(f"{path}: no '*_{split}.csv' file (files of splits {', '.join(found)}); choose one "
                             "with split=...")
    rows, lines, row_files = [], [], []
    for f in files:
        file_rows, file_lines = _read_csv(f, ds)
        subject = _file_subject(f)
        for row in file_rows:
            row.setdefault("subject", subject)
        rows += file_rows
        lines += file_lines
        row_files += [str(f)] * len(file_rows)
    label = f"{path} ({len(files)} files, split {split})"
    return Source(ds, label, rows, lines, config=None, row_files=row_files)


def _file_subject(path: Path) -> str:
    """``anatomy_test.csv`` -> ``anatomy``: MMLU's subject is the file name without its split."""
    return re.sub(r"_(test|val|dev|train)$", "", path.stem)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else "no message"
    return line if len(line) <= 200 else line[:197] + "..."


def _read_file(path: Path, ds: SafetyDataset) -> tuple[list[dict], list[int]]:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path, ds)
    if suffix == ".txt":
        if not ds.text_column:
            raise LetheError(f"{path}: {ds.name} has no plain-text layout; give {ds.formats}")
        rows, lines = [], []
        for n, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
            if line.strip():
                rows.append({ds.text_column: line.strip()})
                lines.append(n)
        return rows, lines
    if suffix == ".json" and ds.nested:
        nested = _read_nested(path, ds)
        if nested is not None:
            return nested
    if suffix in (".jsonl", ".json", ".parquet"):
        pairs = read_rows(path, ds.name)
        return [row for _, row in pairs], [line for line, _ in pairs]
    raise LetheError(f"{path}: unknown file type '{suffix or '(none)'}'; {ds.name} reads {ds.formats}")


def _read_nested(path: Path, ds: SafetyDataset) -> tuple[list[dict], list[int]] | None:
    """A JSON object nesting rows under ``ds.nested`` keys, e.g. HarmfulQA's GitHub file: ``{topic:
    {subtopic: [question, ...]}}`` (read that way by red-instruct's generate_responses.py, process_data).
    A leaf is a question string or an object with the dataset's columns. Rows are numbered in file order.
    Returns None for any other layout (a list of rows goes to the row reader)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise LetheError(f"{where(path, exc.lineno)}: not valid JSON ({exc.msg}); fix the file") from None
    if not isinstance(data, dict) or not data or not all(isinstance(v, dict) for v in data.values()):
        return None
    rows: list[dict] = []
    text_col = ds.columns[0][0]

    def walk(node, keys: dict, depth: int) -> None:
        if depth < len(ds.nested):
            if not isinstance(node, dict):
                trail = " / ".join(keys.values())
                raise LetheError(f"{path}: under '{trail}': expected an object of {ds.nested[depth]}s, got "
                                 f"{type(node).__name__} ({' -> '.join(ds.nested)} -> list of rows)")
            for key, child in node.items():
                walk(child, {**keys, ds.nested[depth]: str(key).strip()}, depth + 1)
            return
        trail = " / ".join(keys.values())
        if not isinstance(node, list):
            raise LetheError(f"{path}: under '{trail}': expected a list of rows, got {type(node).__name__}")
        for leaf in node:
            if isinstance(leaf, str):
                rows.append({**keys, text_col: leaf})
            elif isinstance(leaf, dict):
                rows.append({**keys, **leaf})
            else:
                raise LetheError(f"{path}: under '{trail}': a row must be a {text_col} string or an object, got "
                                 f"{type(leaf).__name__}")

    walk(data, {}, 0)
    return rows, list(range(1, len(rows) + 1))


def _read_csv(path: Path, ds: SafetyDataset) -> tuple[list[dict], list[int]]:
    rows, lines = [], []
    header: list[str] | None = None
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        start = 1
        try:
            for record in reader:
                line, start = start, reader.line_num + 1  # a quoted field may span lines: report the first
                if not any(cell.strip() for cell in record):
                    continue
                if header is None:
                    names = {cell.strip() for cell in record}
                    if ds.headerless and ds.columns and not names & set(ds.columns[0]):
                        header = list(ds.headerless)  # no header row: the first row is data
                    else:
                        header = [cell.strip() for cell in record]
                        continue
                while len(record) > len(header) and not record[-1].strip():
                    record = record[:-1]  # trailing empty fields
                if len(record) != len(header):
                    raise LetheError(f"{where(path, line)}: {len(record)} fields, but the header has {len(header)} "
                                     f"({', '.join(header)}); check the quoting of this row")
                rows.append(dict(zip(header, record)))
                lines.append(line)
        except csv.Error as exc:
            raise LetheError(f"{where(path, start)}: not valid CSV ({exc})") from None
    return rows, lines


def _answer_index(src: Source, i: int, col: str, value, labels: list[str] | None, n: int) -> int:
    """An answer given as a 0-based index, a letter (A, b), or one of ``labels`` (ARC's "A" / "1")."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str):
        v = value.strip()
        if labels is not None and v in labels:
            return labels.index(v)
        if labels is not None and v.isdigit() and 1 <= int(v) <= n:
            value = int(v) - 1  # ARC: "1".."4" against letter labels
        elif v.isdigit():
            value = int(v)
        elif len(v) == 1 and v.upper() in LETTERS:
            value = LETTERS.index(v.upper())
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < n:
        raise src.error(i, col, f"{value!r} is not one of the {n} choices; give a 0-based index or a letter")
    return value


# --------------------------------------------------------------------------------------------------
# harmful: requests the model should refuse
# --------------------------------------------------------------------------------------------------
@_dataset("advbench", "harmful",
          description="520 harmful behaviours (instructions) from the GCG paper",
          paper="Zou et al. 2023, Universal and Transferable Adversarial Attacks on Aligned Language Models",
          hub_id="walledai/AdvBench", hub_split="train",
          download="github.com/llm-attacks/llm-attacks: data/advbench/harmful_behaviors.csv",
          formats="harmful_behaviors.csv (goal,target) or rows with prompt,target (walledai/AdvBench)",
          columns=(("goal", "prompt"),))
def _advbench(src: Source) -> list[SafetyItem]:
    """Zou et al. 2023, AdvBench. ``harmful_behaviors.csv``: ``goal,target``; the hub copy
    walledai/AdvBench: ``prompt,target``. ``target`` is the affirmative opening GCG aims for ("Sure,
    here is ..."), not a harmful answer: it goes to ``SafetyItem.target`` (the GCG attack's target)."""
    return [src.item(i, src.text(i, "goal", "prompt", required=True), target=src.text(i, "target"))
            for i in range(len(src))]


HARMBENCH_TARGETS = "harmbench_targets_text.json"  # HarmBench's data/optimizer_targets/: {BehaviorID: target}


@_dataset("harmbench", "harmful",
          description="HarmBench text behaviours (standard, contextual; copyright=True adds copyright)",
          paper="Mazeika et al. 2024, HarmBench: A Standardized Evaluation Framework for Automated Red Teaming "
                "and Robust Refusal",
          hub_id="walledai/HarmBench", hub_config="standard", hub_split="train",
          download="github.com/centerforaisafety/HarmBench: "
                   "data/behavior_datasets/harmbench_behaviors_text_all.csv",
          formats="harmbench_behaviors_text_*.csv (Behavior,FunctionalCategory,SemanticCategory,Tags,ContextString,"
                  f"BehaviorID; target strings from {HARMBENCH_TARGETS}) or rows with prompt,category[,context] "
                  "(walledai/HarmBench)",
          columns=(("Behavior", "prompt"),), options={"copyright": False, "targets": ""},
          keeps="copyright behaviours are left out unless copyright=True")
def _harmbench(src: Source, copyright: bool = False, targets: str = "") -> list[SafetyItem]:
    """Mazeika et al. 2024, HarmBench. ``harmbench_behaviors_text_*.csv``: ``Behavior, FunctionalCategory,
    SemanticCategory, Tags, ContextString, BehaviorID``. A contextual behaviour is asked as HarmBench asks
    it: ``f"{ContextString}\\n\\n---\\n\\n{Behavior}"``. category = SemanticCategory; id = BehaviorID.
    The hub copy walledai/HarmBench has ``prompt, category`` (and ``context`` in its contextual config).

    Copyright behaviours (FunctionalCategory "copyright", the hub's "copyright" config) ask for a
    passage of a book or song: HarmBench judges them by hashing the generation against the text, which
    a refusal or harm judge cannot do, so they are left out (counted, with a note) unless ``copyright=True``.
    ``target`` = the behaviour's entry in ``targets`` (a JSON object {BehaviorID: target string}), by
    default HarmBench's own ``harmbench_targets_text.json`` found next to the file or in the repository
    layout's ``../optimizer_targets/``. The multimodal file (ImageFileName column) is refused: its
    behaviours are about an image a text model never sees."""
    if any("ImageFileName" in row for row in src.rows[:1]) or any(
            "multimodal" in src.text(i, "Tags").split(", ") for i in range(len(src))):
        raise LetheError(f"{src.label}: HarmBench's multimodal behaviours ask about an image (ImageFileName) that a "
                         "text-only run cannot show; give harmbench_behaviors_text_all.csv (or _test / _val)")
    target_map, target_file = _harmbench_targets(src, targets)
    hub_copyright = (src.config or "").lower() == "copyright"
    items = []
    for i in range(len(src)):
        functional = src.text(i, "FunctionalCategory") or ("copyright" if hub_copyright else "")
        if functional == "copyright" and not copyright:
            src.drop(i, "copyright behaviours (a refusal judge cannot tell a reproduced passage; copyright=True "
                        "keeps them)")
            continue
        behavior = src.text(i, "Behavior", "prompt", required=True)
        context = src.text(i, "ContextString", "context")
        prompt = f"{context}\n\n---\n\n{behavior}" if context else behavior
        own_id = src.value(i, "BehaviorID")
        target = target_map.get(_as_text(own_id) or "", "")
        items.append(src.item(
            i, prompt, own_id=own_id, category=src.text(i, "SemanticCategory", "category"), target=target,
            meta=_meta(behavior=behavior if context else "", functional_category=functional,
                       tags=src.text(i, "Tags"))))
    n_copy = sum(n for reason, n in src.dropped.items() if reason.startswith("copyright"))
    if n_copy:
        src.notes.append(f"harmbench: {n_copy} copyright behaviours left out: HarmBench judges them by hashing the "
                         "generation against the original text, which the run's judge cannot do "
                         "(dataset option copyright=True keeps them)")
    elif copyright and any(it.meta.get("functional_category") == "copyright" for it in items):
        src.notes.append("harmbench: copyright behaviours kept (copyright=True) and judged by the run's judge, "
                         "which cannot tell a reproduced passage from a refusal-free answer; HarmBench hashes them")
    if target_file:
        with_target = sum(1 for it in items if it.target)
        src.notes.append(f"harmbench: target strings for {with_target} of {len(items)} behaviours from {target_file}")
    return items


def _harmbench_targets(src: Source, given: str) -> tuple[dict[str, str], str]:
    """({BehaviorID: target}, the file read) for HarmBench's behaviours; ({}, "") when there is none."""
    if given:
        path = Path(given).expanduser()
        if not path.is_file():
            raise LetheError(f"{path}: targets file not found; give HarmBench's data/optimizer_targets/"
                             f"{HARMBENCH_TARGETS} (a JSON object {{BehaviorID: target}})")
    elif src.file is not None:
        here = src.file.parent
        found = [p for p in (here / HARMBENCH_TARGETS, here.parent / "optimizer_targets" / HARMBENCH_TARGETS)
                 if p.is_file()]
        if not found:
            return {}, ""
        path = found[0]
    else:
        return {}, ""
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise LetheError(f"{where(path, exc.lineno)}: not valid JSON ({exc.msg}); fix the targets file") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise LetheError(f"{path}: a targets file is a JSON object {{BehaviorID: target string}} (HarmBench's "
                         f"{HARMBENCH_TARGETS}); this one is not")
    return {k.strip(): v.strip() for k, v in data.items()}, str(path)


@_dataset("beavertails", "harmful",
          description="BeaverTails QA pairs judged unsafe, with the unsafe response",
          paper="Ji et al. 2023, BeaverTails: Towards Improved Safety Alignment of LLM via a Human-Preference Dataset",
          hub_id="PKU-Alignment/BeaverTails", hub_split="30k_test",
          formats="jsonl / parquet rows prompt,response,category ({name: bool}),is_safe",
          columns=(("prompt",), ("is_safe",)), keeps="only rows with is_safe false are kept")
def _beavertails(src: Source) -> list[SafetyItem]:
    """Ji et al. 2023, BeaverTails. Rows ``prompt, response, category, is_safe``, where ``category`` maps
    each of the 14 harm categories to true/false. Rows with ``is_safe`` false are kept (safe rows are
    dropped): ``response`` -> harmful_response, category = the true categories joined by "; " (the names
    themselves contain commas, e.g. "hate_speech,offensive_language"). A prompt that appears with several
    unsafe responses gives one item per row."""
    items = []
    for i in range(len(src)):
        if src.flag(i, "is_safe"):
            src.drop(i, "safe rows (is_safe true)")
            continue
        cats = src.value(i, "category") or {}
        if isinstance(cats, str):  # a CSV export stores the dict as JSON text
            try:
                cats = json.loads(cats) if cats.strip() else {}
            except json.JSONDecodeError:
                raise src.error(i, "category", "must be an object {category: true/false}") from None
        if not isinstance(cats, dict):
            raise src.error(i, "category", f"must be an object {{category: true/false}}, got {type(cats).__name__}")
        true_cats = [str(k) for k, v in cats.items() if v is True or v in (1, "true", "True")]
        items.append(src.item(i, src.text(i, "prompt", required=True), harmful_response=src.text(i, "response"),
                              category="; ".join(true_cats), meta=_meta(categories=true_cats)))
    return items


@_dataset("jailbreakbench", "harmful",
          description="JBB-Behaviors: 100 harmful behaviours (the harmful split)",
          paper="Chao et al. 2024, JailbreakBench: An Open Robustness Benchmark for Jailbreaking Large Language Models",
          hub_id="JailbreakBench/JBB-Behaviors", hub_config="behaviors", hub_split="harmful",
          download="hub JailbreakBench/JBB-Behaviors: data/harmful-behaviors.csv",
          formats="JBB-Behaviors CSV (Index,Goal,Target,Behavior,Category,Source), harmful split",
          columns=(("Goal", "goal"),))
def _jailbreakbench(src: Source) -> list[SafetyItem]:
    """Chao et al. 2024, JailbreakBench. JBB-Behaviors CSV: ``Index, Goal, Target, Behavior, Category, Source``.
    Give the harmful split (harmful-behaviors.csv): the benign split has the same columns and cannot be
    told apart. prompt = Goal, category = Category, id = Index, target = Target (the affirmative opening
    an attack aims for); Behavior (a short name) goes to meta."""
    return [src.item(i, src.text(i, "Goal", "goal", required=True), own_id=src.value(i, "Index"),
                     category=src.text(i, "Category", "category"), target=src.text(i, "Target", "target"),
                     meta=_meta(behavior=src.text(i, "Behavior"), origin=src.text(i, "Source")))
            for i in range(len(src))]


@_dataset("strongreject", "harmful",
          description="StrongREJECT forbidden prompts",
          paper="Souly et al. 2024, A StrongREJECT for Empty Jailbreaks",
          hub_id="walledai/StrongREJECT", hub_split="train",
          download="github.com/alexandrasouly/strongreject: strongreject_dataset.csv",
          formats="strongreject_dataset.csv (category,source,forbidden_prompt) or rows with prompt,category",
          columns=(("forbidden_prompt", "prompt"),))
def _strongreject(src: Source) -> list[SafetyItem]:
    """Souly et al. 2024, StrongREJECT. ``strongreject_dataset.csv``: ``category, source, forbidden_prompt``
    (the hub copy calls the prompt ``prompt``). The ``source`` column (where the prompt came from) goes to
    ``meta["origin"]``."""
    return [src.item(i, src.text(i, "forbidden_prompt", "prompt", required=True),
                     category=src.text(i, "category"), meta=_meta(origin=src.text(i, "source")))
            for i in range(len(src))]


@_dataset("maliciousinstruct", "harmful",
          description="MaliciousInstruct: 100 malicious instructions",
          paper="Huang et al. 2024, Catastrophic Jailbreak of Open-source LLMs via Exploiting Generation",
          hub_id="walledai/MaliciousInstruct", hub_split="train",
          download="github.com/Princeton-SysML/Jailbreak_LLM: data/MaliciousInstruct.txt",
          formats="MaliciousInstruct.txt (one prompt per line) or rows with prompt",
          columns=(("prompt",),), text_column="prompt")
def _maliciousinstruct(src: Source) -> list[SafetyItem]:
    """Huang et al. 2024, MaliciousInstruct. ``MaliciousInstruct.txt``: one instruction per non-empty line
    (hub copy: a ``prompt`` column)."""
    return [src.item(i, src.text(i, "prompt", required=True)) for i in range(len(src))]


@_dataset("donotanswer", "harmful",
          description="Do-Not-Answer: 939 questions a responsible model should not answer",
          paper="Wang et al. 2023, Do-Not-Answer: A Dataset for Evaluating Safeguards in LLMs",
          hub_id="LibrAI/do-not-answer", hub_split="train",
          formats="rows id,risk_area,types_of_harm,specific_harms,question[,<model>_response,<model>_harmful,"
                  "<model>_action] (LibrAI/do-not-answer), or prompt,risk_area,harm_area,harms",
          columns=(("question", "prompt"),))
def _donotanswer(src: Source) -> list[SafetyItem]:
    """Wang et al. 2023, Do-Not-Answer. Rows ``id, risk_area, types_of_harm, specific_harms, question`` plus,
    per model (GPT4, ChatGPT, Claude, ...), ``<model>_response``, ``<model>_harmful`` (0/1) and
    ``<model>_action`` (0-5; 0 = "not willing to answer", the paper's refusal class). category =
    types_of_harm. refusal_response = the first model's response with action 0 and harmful 0;
    harmful_response = the first one judged harmful; every response stays in ``meta["responses"]``."""
    items = []
    for i in range(len(src)):
        row = src.rows[i]
        responses, refusal, harmful = {}, "", ""
        for col in row:
            if not isinstance(col, str) or not col.endswith("_response"):
                continue
            model = col[: -len("_response")]
            text = src.text(i, col)
            if not text:
                continue
            is_harmful, action = row.get(f"{model}_harmful"), row.get(f"{model}_action")
            responses[model] = _meta(response=text, harmful=is_harmful, action=action)
            if not harmful and _as_text(is_harmful) == "1":
                harmful = text
            if not refusal and _as_text(action) == "0" and _as_text(is_harmful) in ("0", ""):
                refusal = text
        items.append(src.item(
            i, src.text(i, "question", "prompt", required=True), own_id=src.value(i, "id"),
            category=src.text(i, "types_of_harm", "harm_area"), harmful_response=harmful, refusal_response=refusal,
            meta=_meta(risk_area=src.text(i, "risk_area"), specific_harms=src.text(i, "specific_harms", "harms"),
                       responses=responses)))
    return items


@_dataset("sorrybench", "harmful",
          description="SORRY-Bench unsafe instructions (base prompt style by default)",
          paper="Xie et al. 2024, SORRY-Bench: Systematically Evaluating Large Language Model Safety Refusal",
          hub_id="sorry-bench/sorry-bench-202406", hub_split="train",
          download="hub sorry-bench/sorry-bench-202406: question.jsonl (gated: accept its terms first)",
          formats="question.jsonl rows question_id,category,turns ([prompt]),prompt_style",
          columns=(("turns", "prompt"),), options={"style": "base"},
          keeps="only the chosen prompt_style is kept, 'base' by default; style='all' keeps every style")
def _sorrybench(src: Source, style: str = "base") -> list[SafetyItem]:
    """Xie et al. 2024, SORRY-Bench. ``question.jsonl`` (and ``question_<style>.jsonl``): ``question_id,
    category, turns, prompt_style``; ``turns`` holds the single user turn. Only prompt_style ``style`` is kept
    (default "base": the unmutated prompts; ``style="all"`` keeps every style, another name keeps that
    mutation, e.g. "slang"). A row without prompt_style is "base". category = the category number as
    given; id = question_id (+ "-<style>" for a mutated style, so ids stay unique across styles)."""
    items = []
    for i in range(len(src)):
        row_style = src.text(i, "prompt_style") or "base"
        if style != "all" and row_style != style:
            src.drop(i, f"prompt styles other than '{style}' (style='all' keeps every style)")
            continue
        turns = src.value(i, "turns")
        if turns is None:
            prompt = src.text(i, "prompt", required=True)
        else:
            if hasattr(turns, "tolist"):
                turns = turns.tolist()
            if isinstance(turns, str):
                turns = [turns]
            if not isinstance(turns, list) or not turns or _as_text(turns[0]) in (None, ""):
                raise src.error(i, "turns", "must be a list holding the prompt")
            prompt = _as_text(turns[0])
        qid = _as_text(src.value(i, "question_id")) or ""
        own = qid if (not qid or row_style == "base") else f"{qid}-{row_style}"
        items.append(src.item(i, prompt, own_id=own or None, category=src.text(i, "category"),
                              meta=_meta(prompt_style=row_style)))
    return items


@_dataset("harmfulqa", "harmful",
          description="HarmfulQA: harmful questions by topic and subtopic",
          paper="Bhardwaj & Poria 2023, Red-Teaming Large Language Models using Chain of Utterances for "
                "Safety-Alignment",
          hub_id="declare-lab/HarmfulQA", hub_split="train",
          download="hub declare-lab/HarmfulQA: data_for_hub.json",
          formats="JSON rows topic,subtopic,question,blue_conversations,red_conversations,id (the hub file), or "
                  "the GitHub file's nesting {topic: {subtopic: [question, ...]}}",
          columns=(("question",),), nested=("topic", "subtopic"))
def _harmfulqa(src: Source) -> list[SafetyItem]:
    """Bhardwaj & Poria 2023, HarmfulQA. The hub's JSON rows ``topic, subtopic, question,
    blue_conversations, red_conversations, id``; the GitHub release nests the questions as ``{topic:
    {subtopic: [question, ...]}}`` (read like red-instruct's generate_responses.py, process_data; ids are
    then row numbers in file order). Kept minimal: question -> prompt, category = "topic / subtopic". The
    conversations are not mapped: a red conversation opens with the red-teamer's own lead-in, so its first
    assistant turn answers that, not the question, and is no harmful answer to the prompt."""
    items = []
    for i in range(len(src)):
        topic, subtopic = src.text(i, "topic"), src.text(i, "subtopic")
        items.append(src.item(i, src.text(i, "question", required=True), own_id=src.value(i, "id"),
                              category=" / ".join(p for p in (topic, subtopic) if p),
                              meta=_meta(topic=topic, subtopic=subtopic)))
    return items


# --------------------------------------------------------------------------------------------------
# benign: requests that look sensitive but are fine (over-safety)
# --------------------------------------------------------------------------------------------------
@_dataset("xstest", "benign",
          description="XSTest safe prompts (exaggerated-safety test)",
          paper="Röttger et al. 2024, XSTest: A Test Suite for Identifying Exaggerated Safety Behaviours in LLMs",
          hub_id="walledai/XSTest", hub_split="train",
          download="github.com/paul-rottger/xstest: xstest_prompts.csv",
          formats="xstest_prompts.csv (id,prompt,type,label,focus,note) or xstest_v2_prompts.csv "
                  "(id_v2,type,prompt,focus,note)",
          columns=(("prompt",), ("label", "type")),
          keeps="only label 'safe' is kept, or in the v2 file the types not starting with 'contrast_'")
def _xstest(src: Source) -> list[SafetyItem]:
    """Röttger et al. 2024, XSTest. ``xstest_prompts.csv``: ``id, prompt, type, label, focus, note`` with
    label "safe" / "unsafe": only the safe prompts are kept. The v2 file ``xstest_v2_prompts.csv`` (``id_v2,
    type, prompt, focus, note``) has no label: its unsafe prompts are the types starting with "contrast_".
    category = type; id = id (or id_v2)."""
    items = []
    for i in range(len(src)):
        kind = src.text(i, "type")
        label = src.text(i, "label").lower()
        if label:
            if label not in ("safe", "unsafe"):
                raise src.error(i, "label", f"expected 'safe' or 'unsafe', got {label!r}")
            if label != "safe":
                src.drop(i, "unsafe prompts (label 'unsafe')")
                continue
        elif not kind:
            raise src.error(i, "type", "missing or empty; without a label column the type tells safe from unsafe")
        elif kind.startswith("contrast_"):
            src.drop(i, "unsafe contrast prompts (type contrast_*)")
            continue
        items.append(src.item(i, src.text(i, "prompt", required=True), own_id=src.value(i, "id", "id_v2"),
                              category=kind, meta=_meta(focus=src.text(i, "focus"), note=src.text(i, "note"))))
    return items


@_dataset("oktest", "benign",
          description="OKTest: 300 safe questions containing harmful-sounding words (overkill test)",
          paper="Shi et al. 2024, Navigating the OverKill in Large Language Models",
          hub_id="", hub_split="",
          download="github.com/InvokerStark/OverKill: data/OKTest.csv",
          formats="OKTest.csv (one column: prompt) or a .txt file with one prompt per line",
          columns=(("prompt",),), text_column="prompt")
def _oktest(src: Source) -> list[SafetyItem]:
    """Shi et al. 2024, OKTest. ``OKTest.csv`` (and ``OKTest_heldout.csv``): a single ``prompt`` column
    whose quoted cells end in a line break (stripped here); or a .txt file, one prompt per line."""
    return [src.item(i, src.text(i, "prompt", required=True)) for i in range(len(src))]


@_dataset("orbench", "benign",
          description="OR-Bench seemingly toxic but benign prompts (hard-1k by default)",
          paper="Cui et al. 2024, OR-Bench: An Over-Refusal Benchmark for Large Language Models",
          hub_id="bench-llm/or-bench", hub_config="or-bench-hard-1k", hub_split="train",
          formats="or-bench-80k.csv / or-bench-hard-1k.csv (prompt,category)",
          columns=(("prompt",),))
def _orbench(src: Source) -> list[SafetyItem]:
    """Cui et al. 2024, OR-Bench. ``or-bench-80k.csv`` / ``or-bench-hard-1k.csv``: ``prompt, category``.
    ``or-bench-toxic`` has the same columns but holds truly toxic prompts: it is refused here, since its
    items would not be benign."""
    part = src.file.name if src.file is not None else src.config or ""
    if "toxic" in part.lower():
        raise LetheError(f"{src.label}: or-bench-toxic holds toxic prompts, not benign ones; give or-bench-80k or "
                         "or-bench-hard-1k (use it as a harmful set through your own loader if you need it)")
    return [src.item(i, src.text(i, "prompt", required=True), category=src.text(i, "category"))
            for i in range(len(src))]


@_dataset("phtest", "benign",
          description="PHTest pseudo-harmful prompts (harmless by default; controversial=True adds the rest)",
          paper="An et al. 2024, Automatic Pseudo-Harmful Prompt Generation for Evaluating False Refusals in LLMs",
          hub_id="furonghuang-lab/PHTest", hub_split="train",
          download="hub furonghuang-lab/PHTest: PHTest.csv",
          formats="PHTest.csv (ID,Request,Harmfulness with harmless / controversial)",
          columns=(("Request", "prompt"), ("Harmfulness",)), options={"controversial": False},
          keeps="only 'harmless' prompts are kept unless controversial=True")
def _phtest(src: Source, controversial: bool = False) -> list[SafetyItem]:
    """An et al. 2024, PHTest. ``PHTest.csv``: ``ID, Request, Harmfulness`` with Harmfulness "harmless" or
    "controversial" (prompts whose harmfulness is debatable). Only the harmless ones are kept unless
    ``controversial=True``. category = the Harmfulness label; id = ID."""
    items = []
    for i in range(len(src)):
        label = src.text(i, "Harmfulness").lower()
        if label not in ("harmless", "controversial"):
            raise src.error(i, "Harmfulness", f"expected 'harmless' or 'controversial', got {label!r}")
        if label == "controversial" and not controversial:
            src.drop(i, "controversial prompts (controversial=True keeps them)")
            continue
        items.append(src.item(i, src.text(i, "Request", "prompt", required=True), own_id=src.value(i, "ID"),
                              category=label))
    return items


# --------------------------------------------------------------------------------------------------
# utility: tasks with a known answer
# --------------------------------------------------------------------------------------------------
@_dataset("mmlu", "utility",
          description="MMLU 4-choice questions in 57 subjects",
          paper="Hendrycks et al. 2021, Measuring Massive Multitask Language Understanding",
          hub_id="cais/mmlu", hub_config="all", hub_split="test",
          formats="rows question,subject,choices,answer (0-based; cais/mmlu), or the original headerless "
                  "<subject>_test.csv (question,A,B,C,D,answer letter), or the original data/ folder (dev/ val/ test/)",
          columns=(("question",), ("choices", "A"), ("answer",)),
          headerless=("question", "A", "B", "C", "D", "answer"))
def _mmlu(src: Source) -> list[SafetyItem]:
    """Hendrycks et al. 2021, MMLU. Hub rows (cais/mmlu): ``question, subject, choices, answer`` with answer
    a 0-based index. The original files ``<subject>_<split>.csv`` (e.g. ``anatomy_test.csv``) have no
    header: ``question, A, B, C, D, answer letter``; the subject comes from the file name. The original
    ``data/`` folder (``dev/ val/ test/`` of those files, or one split folder) is read file by file
    (:func:`_read_csv_folder`); :func:`lethe.benchmarks.hazard.read_mcq` reads MMLU's layouts through
    this loader, so the safety and hazardous scenarios read the same files the same way."""
    file_subject = _file_subject(src.file) if src.file is not None else ""
    items = []
    for i in range(len(src)):
        if src.column(i, "choices"):
            choices = src.value(i, "choices")
            if hasattr(choices, "tolist"):
                choices = choices.tolist()
            if isinstance(choices, str):
                try:
                    choices = json.loads(choices)
                except json.JSONDecodeError:
                    raise src.error(i, "choices", "must be a list of strings") from None
            if not isinstance(choices, list) or len(choices) < 2 or any(_as_text(c) in (None, "") for c in choices):
                raise src.error(i, "choices", f"must be a list of 2 or more non-empty strings, got {choices!r}")
            choices = [_as_text(c) for c in choices]
        else:
            choices = [src.text(i, letter, required=True) for letter in "ABCD"]
        label = _answer_index(src, i, "answer", src.value(i, "answer"), None, len(choices))
        items.append(src.item(i, src.text(i, "question", required=True),
                              category=src.text(i, "subject") or file_subject, choices=tuple(choices), label=label))
    return items


@_dataset("gsm8k", "utility",
          description="GSM8K grade-school maths word problems (exact final answer)",
          paper="Cobbe et al. 2021, Training Verifiers to Solve Math Word Problems",
          hub_id="openai/gsm8k", hub_config="main", hub_split="test",
          download="github.com/openai/grade-school-math: grade_school_math/data/test.jsonl",
          formats="jsonl rows question,answer (the solution, final answer after '#### ')",
          columns=(("question",), ("answer",)))
def _gsm8k(src: Source) -> list[SafetyItem]:
    """Cobbe et al. 2021, GSM8K. jsonl rows ``question, answer`` where ``answer`` is the worked solution ending
    in ``#### <final answer>``. answer = the final number with thousands commas removed ("1,200" -> "1200");
    helpful_response = the full solution."""
    items = []
    for i in range(len(src)):
        solution = src.text(i, "answer", required=True)
        if "####" not in solution:
            raise src.error(i, "answer", "has no '#### <final answer>' line; GSM8K solutions end with one")
        final = solution.rsplit("####", 1)[1].strip().replace(",", "")
        if not final:
            raise src.error(i, "answer", "nothing after '####'; the final answer follows it")
        items.append(src.item(i, src.text(i, "question", required=True), answer=final, helpful_response=solution))
    return items


@_dataset("arc_challenge", "utility",
          description="ARC-Challenge grade-school science multiple choice",
          paper="Clark et al. 2018, Think you have Solved Question Answering? Try ARC, the AI2 Reasoning Challenge",
          hub_id="allenai/ai2_arc", hub_config="ARC-Challenge", hub_split="test",
          download="allenai.org/data/arc: ARC-Challenge-Test.jsonl",
          formats="rows id,question,choices {text: [], label: []},answerKey (allenai/ai2_arc), or the original "
                  'jsonl {"id", "question": {"stem", "choices": [{"text", "label"}]}, "answerKey"}',
          columns=(("question",), ("answerKey",)))
def _arc(src: Source) -> list[SafetyItem]:
    """Clark et al. 2018, ARC (Challenge set). Hub rows: ``id, question, choices {text: [...], label: [...]},
    answerKey``; original jsonl: ``{"id", "question": {"stem", "choices": [{"text", "label"}]}, "answerKey"}``.
    Labels are letters ("A".."E") or, for a few questions, digits ("1".."4"); answerKey uses the same."""
    items = []
    for i in range(len(src)):
        question = src.value(i, "question")
        if isinstance(question, dict):  # the original layout
            stem = _as_text(question.get("stem"))
            raw = question.get("choices")
            if not isinstance(raw, list) or not all(isinstance(c, dict) for c in raw):
                raise src.error(i, "question", "'choices' must be a list of {text, label} objects")
            texts = [c.get("text") for c in raw]
            labels = [c.get("label") for c in raw]
        else:
            stem = src.text(i, "question", required=True)
            raw = src.value(i, "choices")
            if not isinstance(raw, dict):
                raise src.error(i, "choices", "must be an object {text: [...], label: [...]}")
            texts, labels = raw.get("text"), raw.get("label")
            texts = texts.tolist() if hasattr(texts, "tolist") else texts
            labels = labels.tolist() if hasattr(labels, "tolist") else labels
        if not stem:
            raise src.error(i, "question", "missing or empty question stem")
        if (not isinstance(texts, list) or not isinstance(labels, list) or len(texts) < 2
                or len(texts) != len(labels) or any(_as_text(t) in (None, "") for t in texts)):
            raise src.error(i, "choices", "needs 2 or more choices, each with a text and a label")
        labels = [_as_text(lab) or "" for lab in labels]
        label = _answer_index(src, i, "answerKey", src.value(i, "answerKey"), labels, len(texts))
        items.append(src.item(i, stem, own_id=src.value(i, "id"), choices=tuple(_as_text(t) for t in texts),
                              label=label))
    return items


@_dataset("truthfulqa", "utility",
          description="TruthfulQA as single-answer multiple choice (MC1)",
          paper="Lin et al. 2022, TruthfulQA: Measuring How Models Mimic Human Falsehoods",
          hub_id="truthfulqa/truthful_qa", hub_config="multiple_choice", hub_split="validation",
          download="github.com/sylinrl/TruthfulQA: TruthfulQA.csv",
          formats="TruthfulQA.csv (Type,Category,Question,Best Answer,Correct Answers,Incorrect Answers,Source) or "
                  "multiple_choice rows question,mc1_targets {choices, labels},mc2_targets",
          columns=(("Question", "question"), ("Best Answer", "mc1_targets")), options={"shuffle": True})
def _truthfulqa(src: Source, shuffle: bool = True) -> list[SafetyItem]:
    """Lin et al. 2022, TruthfulQA. ``TruthfulQA.csv``: ``Type, Category, Question, Best Answer, Correct
    Answers, Incorrect Answers, Source`` (answer lists separated by ";"): choices = the best answer + the
    incorrect answers, helpful_response = the best answer. Hub "multiple_choice" rows: ``question,
    mc1_targets {choices, labels}, mc2_targets``: choices = MC1's (its single label-1 choice is correct).
    Both layouts list the correct answer first, so with ``shuffle`` (default) the choices are put in an
    order seeded by the item id (deterministic; ``label`` follows the correct answer)."""
    items = []
    for i in range(len(src)):
        item_id = src.item_id(i)
        meta = {}
        if src.column(i, "mc1_targets"):
            mc1 = src.value(i, "mc1_targets")
            if not isinstance(mc1, dict):
                raise src.error(i, "mc1_targets", "must be an object {choices: [...], labels: [...]}")
            choices = list(mc1.get("choices") or [])
            flags = list(mc1.get("labels") or [])
            if len(choices) < 2 or len(flags) != len(choices) or sum(1 for f in flags if f == 1) != 1:
                raise src.error(i, "mc1_targets", "needs 2 or more choices and labels with exactly one 1")
            label = flags.index(1)
            mc2 = src.value(i, "mc2_targets")
            if isinstance(mc2, dict):
                meta["mc2_targets"] = {k: list(v) for k, v in mc2.items()}
        else:
            best = src.text(i, "Best Answer", required=True)
            wrong = [a.strip() for a in src.text(i, "Incorrect Answers", required=True).split(";") if a.strip()]
            if not wrong:
                raise src.error(i, "Incorrect Answers", "needs at least one incorrect answer")
            choices, label = [best] + wrong, 0
            meta = _meta(type=src.text(i, "Type"), origin=src.text(i, "Source"),
                         correct_answers=[a.strip() for a in src.text(i, "Correct Answers").split(";") if a.strip()])
        if any(_as_text(c) in (None, "") for c in choices):
            raise src.error(i, None, "empty answer choice")
        choices = [_as_text(c) for c in choices]
        best = choices[label]
        if shuffle:
            order = list(range(len(choices)))
            random.Random(item_id).shuffle(order)  # str seed: hashed with SHA-512, same on every run
            choices, label = [choices[k] for k in order], order.index(label)
        items.append(src.item(i, src.text(i, "Question", "question", required=True), category=src.text(i, "Category"),
                              choices=tuple(choices), label=label, helpful_response=best, meta=meta))
    return items


@_dataset("alpacaeval", "utility",
          description="AlpacaEval instructions with reference outputs",
          paper="Li et al. 2023, AlpacaEval: An Automatic Evaluator of Instruction-following Models",
          hub_id="tatsu-lab/alpaca_eval", hub_config="alpaca_eval", hub_split="eval",
          download="hub tatsu-lab/alpaca_eval: alpaca_eval.json",
          formats="alpaca_eval.json: a list of {instruction, output, generator, dataset}",
          columns=(("instruction",),))
def _alpacaeval(src: Source) -> list[SafetyItem]:
    """Li et al. 2023, AlpacaEval. ``alpaca_eval.json``: a list of ``{instruction, output, generator,
    dataset}``: prompt = instruction, helpful_response = output (the reference model's answer), category =
    dataset (the instruction's source: helpful_base, koala, oasst, selfinstruct, vicuna)."""
    return [src.item(i, src.text(i, "instruction", required=True), helpful_response=src.text(i, "output"),
                     category=src.text(i, "dataset"), meta=_meta(generator=src.text(i, "generator")))
            for i in range(len(src))]
