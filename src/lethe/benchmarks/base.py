"""Typed benchmark data: Q&A items, splits, and Lethe's JSONL format.

A benchmark is data + a versioned spec (DESIGN.md, principle 6). Every Q&A item carries what the
TOFU metric suite needs: the answer, a paraphrase of it, and wrong answers of the same shape.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Iterable, Iterator

from ..errors import LetheError, where

REQUIRED_FIELDS = ("id", "question", "answer")
OPTIONAL_FIELDS = ("paraphrased_answer", "paraphrased_question", "group", "fact", "language", "original_answer")


@dataclass(frozen=True)
class QAItem:
    id: str
    question: str
    answer: str  # full-sentence answer, the one the model is trained on
    paraphrased_answer: str = ""  # same content, other wording ("" -> the answer itself)
    perturbed_answers: tuple[str, ...] = ()  # plausible wrong answers, the paraphrase's template
    paraphrased_question: str = ""  # the question in other words ("" -> the question itself)
    group: str = ""  # author id for author facts, entity id for world facts
    fact: str = ""  # which attribute this item asks about (birthplace, genre, ...)
    language: str = ""  # ISO 639-1 code of a translated item ("de"); "" = the benchmark's main language (English)
    # the long-form answer of a short-answer item (TOFU's world_facts / real_authors ``original_answer``):
    # what the Closer-Look code compares generations with for embedding similarity; "" = none given
    original_answer: str = ""

    @property
    def paraphrase(self) -> str:
        return self.paraphrased_answer or self.answer

    def to_json(self) -> dict:
        # the fields one level deep, as asdict gives them for these str / tuple-of-str fields (asdict's deep copy
        # made Benchmark.fingerprint of a TOFU-sized benchmark take 0.15 s, and a run takes it three times)
        d = {name: getattr(self, name) for name in _QA_FIELDS}
        d["perturbed_answers"] = list(self.perturbed_answers)
        for name in ("language", "original_answer"):  # rows stay byte-identical to files written before these fields
            if not d[name]:
                del d[name]
        return d

    @classmethod
    def from_json(cls, row: object, path: str | Path = "<data>", line: int | None = None) -> "QAItem":
        check_row(row, REQUIRED_FIELDS, path, line, f"non-empty string fields {', '.join(REQUIRED_FIELDS)}")
        pert = string_list(row.get("perturbed_answers", []), path, line, "perturbed_answers")
        for name in OPTIONAL_FIELDS:
            if name in row and not isinstance(row[name], str):
                raise LetheError(f"{where(path, line, name)}: must be a string")
        return cls(id=row["id"], question=row["question"], answer=row["answer"], perturbed_answers=tuple(pert),
                   **{name: row.get(name, "") or "" for name in OPTIONAL_FIELDS})


_QA_FIELDS = tuple(f.name for f in fields(QAItem))


@dataclass
class Benchmark:
    """A fictitious-knowledge benchmark (TOFU-shaped; its splits: docs/benchmarks.md). ``authors`` holds every
    Q&A item the target is fine-tuned on; forget_sets: forget split name -> the author ids (``group``
    values) it removes; pretrain_text: the "pretraining" sentences of world knowledge."""

    name: str
    version: str
    splits: dict[str, list[QAItem]]
    forget_sets: dict[str, list[str]]
    pretrain_text: list[str] = field(default_factory=list)
    spec: dict = field(default_factory=dict)  # generator parameters, for provenance

    def forget(self, split: str) -> list[QAItem]:
        groups = set(self._forget_groups(split))
        return [it for it in self.splits["authors"] if it.group in groups]

    def retain(self, split: str) -> list[QAItem]:
        groups = set(self._forget_groups(split))
        return [it for it in self.splits["authors"] if it.group not in groups]

    def fingerprint(self) -> str:
        """SHA-256 (16 hex digits) of what was actually read (items, forget sets, pretraining text, spec):
        caches and results are keyed on it, so an edited data file is never served from an old cache."""
        spec = {k: v for k, v in self.spec.items() if k != "source"}  # where it was read from is not what was read
        content = {"name": self.name, "spec": spec, "forget_sets": self.forget_sets,
                   "splits": {k: [it.to_json() for it in v] for k, v in self.splits.items()},
                   "pretrain": self.pretrain_text}
        return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def split_fingerprint(self, split: str) -> dict:
        """The forget split as results record it: its name, the ids of its items in order and a
        SHA-256 of their questions and answers (a retain model's results must match it)."""
        items = self.forget(split)
        digest = hashlib.sha256(json.dumps([[it.question, it.answer] for it in items]).encode()).hexdigest()[:16]
        return {"name": split, "items": len(items), "ids": [it.id for it in items], "sha256": digest}

    def forget_overlap(self, split: str) -> list[QAItem]:
        """Forget items whose (question, answer) also stands in the retain data of ``split``: a
        benchmark where this is not empty trains the retain model on what it must not know."""
        return qa_overlap(self.forget(split), self.retain(split))

    def _forget_groups(self, split: str) -> list[str]:
        if split not in self.forget_sets:
            known = ", ".join(sorted(self.forget_sets)) or "none"
            raise LetheError(f"unknown forget split '{split}' for benchmark '{self.name}' (known: {known})")
        groups = self.forget_sets[split]
        if not groups:
            raise LetheError(f"forget split '{split}' of benchmark '{self.name}' is empty; pick another split")
        return groups


def qa_overlap(forget: Iterable, retain: Iterable) -> list:
    """The forget items whose (question, answer), up to surrounding whitespace, also stands in
    ``retain``: the one key of the forget/retain invariant (``benchmarks.overlap``)."""
    keys = {(it.question.strip(), it.answer.strip()) for it in retain}
    return [it for it in forget if (it.question.strip(), it.answer.strip()) in keys]


# --------------------------------------------------------------------------------------------------
# Reading a user's files: one place turns bad bytes and bad JSON into one-line errors
# --------------------------------------------------------------------------------------------------
UTF8_BOM = b"\xef\xbb\xbf"


def decode_text(raw: bytes, path: str | Path, *, bom: bool = False) -> str:
    """``raw`` (the bytes of ``path``) as UTF-8 text; a file in another encoding (Latin-1, UTF-16, a
    spreadsheet's export) is a one-line error naming the file and the offset of its first bad byte.
    ``bom``: a leading byte-order mark is dropped (it is not part of the data)."""
    skip = len(UTF8_BOM) if bom and raw.startswith(UTF8_BOM) else 0
    try:
        return raw[skip:].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = skip + exc.start
        line = raw.count(b"\n", 0, offset) + 1
        raise LetheError(f"{path}: is not UTF-8 text (byte 0x{raw[offset]:02x} at byte offset {offset}, line {line}); "
                         "re-save it as UTF-8") from None


def read_text(path: str | Path, *, bom: bool = False) -> str:
    """The text of a user's file, UTF-8 or a one-line error (:func:`decode_text`); CR LF and a lone CR
    read as LF, as ``Path.read_text`` reads them."""
    text = decode_text(Path(path).read_bytes(), path, bom=bom)
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def open_text(path: str | Path, *, bom: bool = False) -> io.StringIO:
    """A user's file as a text stream for :mod:`csv` (newlines kept as they are, like ``open(newline="")``),
    decoded whole first so that bad bytes are the one-line error of :func:`decode_text`."""
    return io.StringIO(decode_text(Path(path).read_bytes(), path, bom=bom), newline="")


def parse_json(text: str, path: str | Path, hint: str = "fix the file"):
    """One JSON value; invalid JSON is a one-line error naming the file, the line and ``hint``."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise LetheError(f"{where(path, exc.lineno)}: not valid JSON ({exc.msg}); {hint}") from None


def read_json(path: str | Path, *, bom: bool = False, hint: str = "fix the file"):
    """A user's JSON file: bad bytes and invalid JSON are one-line errors (file, offset or line, fix)."""
    return parse_json(read_text(path, bom=bom), path, hint)


def check_row(row: object, names: tuple[str, ...], path: str | Path, line: int | None, needs: str) -> None:
    """``row`` is a JSON object whose fields ``names`` are non-empty strings; else a one-line error (every row
    ``needs`` them)."""
    if not isinstance(row, dict):
        raise LetheError(f"{where(path, line)}: expected a JSON object, got {type(row).__name__}")
    for name in names:
        value = row.get(name)
        if not isinstance(value, str) or not value.strip():
            raise LetheError(f"{where(path, line, name)}: missing or empty; every row needs {needs}")


def string_list(value, path: str | Path, line: int | None, name: str) -> list[str]:
    """A field holding a list of strings (one string reads as a list of one); else a one-line error."""
    value = [value] if isinstance(value, str) else value
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise LetheError(f"{where(path, line, name)}: must be a list of strings")
    return value


def json_records(text: str, path: str | Path) -> list[tuple[int, object]]:
    """(line or row number, row) of JSON Lines text, or of one JSON array (as some mirrors store it)."""
    if text.lstrip().startswith("["):
        return list(enumerate(parse_json(text, path), start=1))
    return list(json_lines(text.splitlines(), path))


def json_lines(lines: Iterable[str], path: str | Path) -> Iterator[tuple[int, object]]:
    """(line number, value) of every non-blank line of JSON Lines text, lazily (a caller's own checks
    of an earlier row come before a JSON error further down); a bad line is a one-line error."""
    for line_no, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            yield line_no, json.loads(raw)
        except json.JSONDecodeError as exc:
            raise LetheError(f"{where(path, line_no)}: not valid JSON ({exc.msg}); fix or remove this line") from None


def read_jsonl(path: str | Path) -> list[QAItem]:
    """Read Lethe JSONL (one QAItem per line), with one-line errors naming file and line."""
    path = Path(path)
    if not path.is_file():
        raise LetheError(f"{path}: file not found")
    items: list[QAItem] = []
    seen: set[str] = set()
    # lines as a text file iterates them (at \n), not str.splitlines: U+2028 may stand in a JSON string
    for line_no, row in json_lines(io.StringIO(read_text(path)), path):
        item = QAItem.from_json(row, path, line_no)
        if item.id in seen:
            raise LetheError(f"{where(path, line_no, 'id')}: duplicate id '{item.id}'; ids must be unique")
        seen.add(item.id)
        items.append(item)
    return items


def read_rows(path: Path, what: str) -> list[tuple[int | None, object]]:
    """(line or row number, row) pairs from a .jsonl / .json / .parquet file; one-line errors."""
    if not path.is_file():
        raise LetheError(f"{path}: file not found; give the path of a {what} file")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise LetheError(f"{path}: reading Parquet needs the pyarrow package; install it or convert the file "
                             "to JSONL") from None
        try:
            table = pq.read_table(path)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad file
            raise LetheError(f"{path}: not a readable Parquet file ({str(exc).splitlines()[0]})") from None
        return [(i + 1, row) for i, row in enumerate(table.to_pylist())]
    if suffix not in (".jsonl", ".json"):
        raise LetheError(f"{path}: unknown {what} file type '{suffix or '(none)'}'; give a .jsonl, .json or "
                         ".parquet file")
    text = read_text(path, bom=True)
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            if exc.msg != "Extra data":  # several JSON values: JSON Lines under a .json name (datasets' to_json)
                raise LetheError(f"{where(path, exc.lineno)}: not valid JSON ({exc.msg}); fix the file") from None
        else:
            if isinstance(data, dict):
                lists = [k for k, v in data.items() if isinstance(v, list)]
                if len(lists) != 1:
                    raise LetheError(f"{path}: expected a JSON array of rows (or an object with one list of rows), "
                                     f"got an object with keys {', '.join(sorted(data)) or 'none'}")
                data = data[lists[0]]
            if not isinstance(data, list):
                raise LetheError(f"{path}: expected a JSON array of rows, got {type(data).__name__}")
            return [(i + 1, row) for i, row in enumerate(data)]
    return list(json_lines(text.splitlines(), path))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write a file via a temp file + rename, so a crash never leaves half a file. Launched as several
    processes, only the first writes (every process holds the same results)."""
    from .. import dist

    if not dist.is_main():
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_rows(path: str | Path, rows: Iterable[dict]) -> None:
    """JSON Lines, one row a line (UTF-8, not ASCII-escaped), written atomically."""
    atomic_write_text(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def write_jsonl(path: str | Path, items: Iterable[QAItem]) -> None:
    write_rows(path, (it.to_json() for it in items))
