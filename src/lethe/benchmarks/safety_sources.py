"""The shared half of the safety datasets (:mod:`lethe.benchmarks.safety_datasets`): the registry entry of
a dataset, reading its file, folder or hub id into rows (:class:`Source`, through :mod:`lethe.benchmarks.base`'s
readers: one-line errors naming the file and where in it), and the helpers every loader maps cells with.
"""
from __future__ import annotations

import csv
import functools
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import LetheError, where
from ..registry import Registry
from ..safety_items import ROLES, SafetyItem
from .base import open_text, read_json, read_rows, read_text

FILE_SUFFIXES = (".csv", ".json", ".jsonl", ".txt", ".parquet")
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
FLAGS = {"true": True, "1": True, "yes": True, 1: True, "false": False, "0": False, "no": False, 0: False}
SPLIT_SUFFIX = re.compile(r"_(test|val|dev|train)$")  # MMLU's <subject>_<split>.csv


@dataclass(frozen=True)
class SafetyDataset:
    """One public dataset: where it lives, what its files look like, and the loader that maps its rows."""

    name: str  # registry name: advbench, xstest, mmlu, ...
    role: str  # "harmful" | "benign" | "utility": the SafetyItem.role of every item
    description: str  # one line, for `lethe ls datasets`
    paper: str  # "Zou et al. 2023, Universal and Transferable Adversarial Attacks on Aligned Language Models"
    hub_id: str  # the default source on the Hugging Face hub ("" when the dataset is not there)
    hub_split: str  # its split
    formats: str  # the file layouts the loader accepts, in words
    loader: Callable[..., list[SafetyItem]]  # (Source, **options) -> items
    hub_config: str | None = None  # its config (subset), if it has several
    download: str = ""  # where to download the files (named in error messages)
    columns: tuple[tuple[str, ...], ...] = ()  # required columns; each entry lists the accepted spellings
    options: Mapping[str, object] = field(default_factory=dict, compare=False, hash=False)  # name -> default
    text_column: str = ""  # a .txt file (one prompt per line) fills this column; "" = no .txt layout
    headerless: tuple[str, ...] = ()  # column names of a CSV without a header row (MMLU's original files)
    keeps: str = ""  # which rows the loader keeps, where it filters (named when nothing is left)
    nested: tuple[str, ...] = ()  # a JSON object nesting rows under these keys (HarmfulQA's GitHub file)


DATASETS: Registry[SafetyDataset] = Registry("safety dataset")


def register_dataset(name: str, role: str, loader: Callable | None = None, **spec):
    """Register dataset ``name`` with its ``loader`` (a :func:`mapped` one) or, as a decorator, the decorated
    loader; ``spec``: the other :class:`SafetyDataset` fields."""
    assert role in ROLES, role

    def deco(fn):
        download = spec.pop("download", "") or f"hub {spec['hub_id']}: its data files"
        DATASETS.add(name, SafetyDataset(name=name, role=role, loader=fn, download=download, **spec))
        return fn

    return deco(loader) if loader else deco


def mapped(own_id: str = "", meta: Mapping[str, str] | None = None, **fields: str | tuple[str, ...]):
    """A loader of one item per row: the prompt from the dataset's first required column, the item's own id
    from column ``own_id``, each SafetyItem field of ``fields`` and each key of ``meta`` from the first of its
    columns (a name or a tuple of spellings) present."""
    def cells(src: Source, i: int, columns: Mapping) -> dict:
        return {k: src.text(i, *((c,) if isinstance(c, str) else c)) for k, c in columns.items()}

    def load(src: Source) -> list[SafetyItem]:
        """One item per row, the cells as :func:`mapped` was told."""
        return [src.item(i, src.text(i, *src.dataset.columns[0], required=True),
                         own_id=src.value(i, own_id) if own_id else None, **cells(src, i, fields),
                         meta=drop_empty(**cells(src, i, meta or {})))
                for i in range(len(src))]

    return load


def per_row(row: Callable[..., SafetyItem | None]) -> Callable[..., list[SafetyItem]]:
    """A loader from ``row(src, i, **options)``: row ``i``'s item, or None for a row left out (``return
    src.drop(i, reason)``), in file order."""
    @functools.wraps(row)
    def load(src: Source, **options) -> list[SafetyItem]:
        return [item for i in range(len(src)) if (item := row(src, i, **options)) is not None]

    return load


# --- Reading a source: file, folder or hub id -------------------------------------------------------
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
        return next((name for name in names if self.rows[i].get(name) is not None), None)

    def value(self, i: int, *names: str):
        col = self.column(i, *names)
        return None if col is None else self.rows[i][col]

    def text(self, i: int, *names: str, required: bool = False) -> str:
        """The stripped text of the first of ``names`` present; "" when absent (an error when required)."""
        col = self.column(i, *names)
        value = "" if col is None else as_text(self.rows[i][col])
        if value is None:
            raise self.error(i, col, f"must be text, got {type(self.rows[i][col]).__name__}")
        if required and not value:
            raise self.error(i, col or names[0], "missing or empty; every row needs it")
        return value

    def flag(self, i: int, name: str) -> bool:
        """A boolean column (true/false, 1/0, yes/no)."""
        value = self.rows[i].get(name)
        key = value.strip().lower() if isinstance(value, str) else value
        if isinstance(key, (str, int, float)) and key in FLAGS:  # bool is an int: True == 1
            return FLAGS[key]
        raise self.error(i, name, f"must be true or false, got {value!r}")

    def item_id(self, i: int, own_id=None) -> str:
        own = as_text(own_id)  # None (not text) or "": the row number
        return f"{self.dataset.name}-{own}" if own else f"{self.dataset.name}-{i:05d}"

    def item(self, i: int, prompt: str, *, own_id=None, **fields) -> SafetyItem:
        """A SafetyItem of this dataset's role for row ``i``; ``fields`` are SafetyItem fields."""
        if not prompt:
            raise self.error(i, None, "empty prompt")
        return SafetyItem(id=self.item_id(i, own_id), prompt=prompt, role=self.dataset.role,
                          source=self.dataset.name, **fields)


def as_text(value) -> str | None:
    """Cell -> stripped text: None / NaN -> "", numbers -> their digits, anything else -> None (not text)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, float):
        return "" if math.isnan(value) else str(int(value)) if value.is_integer() else str(value)
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else None


def as_list(value):
    """A cell holding a sequence (a numpy array, as parquet files and the hub may give it) as a list."""
    return value.tolist() if hasattr(value, "tolist") else value


def drop_empty(**values) -> dict:
    """Meta fields without the empty ones."""
    return {k: v for k, v in values.items() if v not in ("", None, [], {})}


def open_source(ds: SafetyDataset, source, split: str | None, config: str | None) -> Source:
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
    parts = ", ".join(f"{what} {value}" for what, value in (("config", config), ("split", split)) if value)
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
        split = names[0] if len(names) == 1 else ds.hub_split
        if split not in names:
            raise LetheError(f"{label}: has splits {', '.join(names)}; choose one with split=...")
        data = data[split]
        label = f"{target} (split {split})"
    rows = [dict(row) for row in data]
    return Source(ds, label, rows, list(range(1, len(rows) + 1)), config=config)


def _csv_folder(path: Path) -> bool:
    """A folder in MMLU's original layout: CSV files, or split folders (dev/ val/ test/) of them."""
    return any(path.glob("*.csv")) or any(d.is_dir() and any(d.glob("*.csv")) for d in path.iterdir())


def _read_csv_folder(ds: SafetyDataset, path: Path, split: str) -> Source:
    """MMLU's original release (the tarball's ``data/``, ``<split>/<subject>_<split>.csv``): ``path`` is ``data/``
    or a folder of CSVs itself (its ``*_<split>.csv`` files, or all when no name carries a split). Files are
    read in sorted order; every row gets the subject of its file's name."""
    folder = path / split if (path / split).is_dir() else path
    files = sorted(folder.glob("*.csv"))
    if not files:
        splits = sorted(d.name for d in path.iterdir() if d.is_dir() and any(d.glob("*.csv")))
        raise LetheError(f"{path}: no split '{split}' here (split folders with CSV files: "
                         f"{', '.join(splits) or 'none'}); choose one with split=...")
    if folder is path:
        own = [f for f in files if f.stem.endswith(f"_{split}")]
        found = sorted({m.group(1) for f in files if (m := SPLIT_SUFFIX.search(f.stem))})
        if own:
            files = own
        elif found:
            raise LetheError(f"{path}: no '*_{split}.csv' file (files of splits {', '.join(found)}); choose one "
                             "with split=...")
    rows, lines, row_files = [], [], []
    for f in files:
        file_rows, file_lines = _read_csv(f, ds)
        rows += [{**row, "subject": row.get("subject", subject_of_file(f))} for row in file_rows]
        lines += file_lines
        row_files += [str(f)] * len(file_rows)
    label = f"{path} ({len(files)} files, split {split})"
    return Source(ds, label, rows, lines, config=None, row_files=row_files)


def subject_of_file(path: Path) -> str:
    """``anatomy_test.csv`` -> ``anatomy``: MMLU's subject is the file name without its split."""
    return SPLIT_SUFFIX.sub("", path.stem)


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
        lines = [(n, line.strip()) for n, line in enumerate(read_text(path, bom=True).splitlines(), start=1)
                 if line.strip()]
        return [{ds.text_column: text} for _, text in lines], [n for n, _ in lines]
    if suffix == ".json" and ds.nested and (nested := _read_nested(path, ds)) is not None:
        return nested
    if suffix in (".jsonl", ".json", ".parquet"):
        pairs = read_rows(path, ds.name)
        return [row for _, row in pairs], [line for line, _ in pairs]
    raise LetheError(f"{path}: unknown file type '{suffix or '(none)'}'; {ds.name} reads {ds.formats}")


def _read_nested(path: Path, ds: SafetyDataset) -> tuple[list[dict], list[int]] | None:
    """A JSON object nesting rows under ``ds.nested`` keys, e.g. HarmfulQA's GitHub file ``{topic: {subtopic:
    [question, ...]}}`` (read so by red-instruct's generate_responses.py, process_data); a leaf is a question or
    a row object. None for any other layout (a list of rows goes to the row reader)."""
    data = read_json(path, bom=True)
    if not isinstance(data, dict) or not data or not all(isinstance(v, dict) for v in data.values()):
        return None
    rows: list[dict] = []
    text_col = ds.columns[0][0]

    def walk(node, keys: dict, depth: int) -> None:
        trail = " / ".join(keys.values())
        if depth < len(ds.nested):
            if not isinstance(node, dict):
                raise LetheError(f"{path}: under '{trail}': expected an object of {ds.nested[depth]}s, got "
                                 f"{type(node).__name__} ({' -> '.join(ds.nested)} -> list of rows)")
            for key, child in node.items():
                walk(child, {**keys, ds.nested[depth]: str(key).strip()}, depth + 1)
            return
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
    with open_text(path, bom=True) as fh:
        reader = csv.reader(fh)
        start = 1
        try:
            for record in reader:
                line, start = start, reader.line_num + 1  # a quoted field may span lines: report the first
                if not any(cell.strip() for cell in record):
                    continue
                if header is None:
                    header = [cell.strip() for cell in record]
                    if not (ds.headerless and ds.columns) or set(header) & set(ds.columns[0]):
                        continue  # the header row
                    header = list(ds.headerless)  # no header row: the first row is data
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


def parse_answer(value, labels: list[str] | None = None, n: int = 0):
    """An answer given as a 0-based index (or its digits), a letter (A, b), or one of ``labels`` (ARC's "A" /
    "1") as an int; any other value is returned as it is (the caller's range check names it)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        v = value.strip()
        if labels is not None and v in labels:
            return labels.index(v)
        if labels is not None and v.isdigit() and 1 <= int(v) <= n:
            return int(v) - 1  # ARC: "1".."4" against letter labels
        if v.isdigit():
            return int(v)
        if len(v) == 1 and v.upper() in LETTERS:
            return LETTERS.index(v.upper())
    return value


def answer_index(src: Source, i: int, col: str, value, labels: list[str] | None, n: int) -> int:
    """:func:`parse_answer`, checked against the ``n`` choices of row ``i``."""
    value = parse_answer(value, labels, n)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < n:
        raise src.error(i, col, f"{value!r} is not one of the {n} choices; give a 0-based index or a letter")
    return value
