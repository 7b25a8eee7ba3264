"""Import and export in the public TOFU layout (``locuslab/TOFU`` on the Hugging Face hub).

TOFU (Maini et al. 2024) ships JSON-lines files, one object per line:

  full.json                       question, answer        every author's Q&A, author after author
  forget01/05/10.json             question, answer        the LAST 1/5/10% of the authors
  retain99/95/90.json             question, answer        the other authors
  forget01/05/10_perturbed.json   question, answer, paraphrased_answer, paraphrased_question,
                                  perturbed_answer (list)
  retain_perturbed.json           same columns            an evaluation subset of retained authors
  world_facts_perturbed.json      question, answer, perturbed_answer (list)
  real_authors_perturbed.json     same columns
  world_facts.json, real_authors.json   question, option1..option4, answer  (multiple choice)
  holdout01/05/10.json            question, answer        never-trained authors (newer revisions)

Mapping to a Lethe :class:`Benchmark`:

  full.json                 -> splits["authors"], group = f"a{row // items_per_author:03d}"
  forgetNN.json             -> forget_sets["forgetNN"]: the authors its rows belong to
  *_perturbed.json          -> paraphrased_answer / perturbed_answers of the matching full.json rows
  retain_perturbed.json     -> splits["retain_eval"]
  world_facts, real_authors -> splits["world_facts"], splits["known_people"] (wrong options = perturbed)
  holdoutNN.json            -> splits["holdout"], group = f"h{row // items_per_author:03d}"
  pretrain.txt (Lethe only) -> pretrain_text, so an exported lethe-authors benchmark round-trips
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import re
from pathlib import Path

from ..errors import LetheError, where
from .base import Benchmark, QAItem, atomic_write_text
from .synthetic import FORGET_FRACTIONS, n_forget_authors

TOFU_HUB_ID = "locuslab/TOFU"
QA_COLUMNS = ("question", "answer")
PERTURBED_COLUMNS = ("question", "answer", "paraphrased_answer", "perturbed_answer")
OPTION_COLUMNS = ("question", "option1", "option2", "option3", "option4", "answer")
HOLDOUT_FILES = ("holdout10", "holdout05", "holdout01", "holdout")  # the largest one present is used


# --------------------------------------------------------------------------------------------------
# Reading: a local folder of TOFU files, or the hub dataset
# --------------------------------------------------------------------------------------------------
class _Folder:
    def __init__(self, folder: Path):
        self.folder = folder
        self.digest = hashlib.sha256()  # over the files read: the version of a local copy
        self.read: list[str] = []

    def where(self, name: str) -> str:
        return str(self.folder / f"{name}.json")

    def rows(self, name: str) -> list[dict] | None:
        path = self.folder / f"{name}.json"
        if not path.is_file():
            return None
        raw = path.read_bytes()
        self.digest.update(name.encode() + b"\0" + raw)
        self.read.append(path.name)
        text = raw.decode("utf-8")
        if text.lstrip().startswith("["):  # some mirrors store one JSON array instead of JSON lines
            try:
                rows = json.loads(text)
            except json.JSONDecodeError as exc:
                raise LetheError(f"{where(path, exc.lineno)}: not valid JSON ({exc.msg}); fix the file") from None
            return rows
        rows = []
        for line_no, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise LetheError(f"{where(path, line_no)}: not valid JSON ({exc.msg}); fix or remove this line") from None
        return rows

    def version(self) -> str:
        return "sha256:" + self.digest.hexdigest()[:12]


class _Hub:
    def __init__(self, repo: str):
        self.repo = repo
        self.read: list[str] = []

    def where(self, name: str) -> str:
        return f"{self.repo}:{name}"

    def rows(self, name: str) -> list[dict] | None:
        try:
            import datasets  # lazy: heavy, and only needed for the hub

            data = datasets.load_dataset(self.repo, name, split="train")
        except Exception as exc:  # a missing config or no network: optional files are skipped
            if name == "full":
                raise LetheError(f"{self.repo}: could not load config 'full' from the Hugging Face hub "
                                 f"({type(exc).__name__}: {exc}); download the TOFU files to a folder "
                                 "and give the folder instead") from None
            return None
        self.read.append(name)
        return [dict(row) for row in data]

    def version(self) -> str:
        return "hub"


def _check(rows: list, src, name: str, columns: tuple[str, ...]) -> None:
    """Every row is an object with these columns; strings for text, a list of strings for perturbed_answer."""
    if not isinstance(rows, list):
        raise LetheError(f"{src.where(name)}: expected JSON lines (one object per line) or a JSON array")
    need = ", ".join(columns)
    for line, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            raise LetheError(f"{where(src.where(name), line)}: expected a JSON object with columns {need}")
        for col in columns:
            if col not in row:
                raise LetheError(f"{where(src.where(name), line)}: column '{col}' missing; "
                                 f"TOFU file {name}.json needs columns {need}")
            value = row[col]
            if col == "perturbed_answer":
                if isinstance(value, str):
                    row[col] = value = [value]
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise LetheError(f"{where(src.where(name), line, col)}: must be a list of strings")
            elif not isinstance(value, str) or (col in QA_COLUMNS and not value.strip()):
                raise LetheError(f"{where(src.where(name), line, col)}: must be a non-empty string")


# --------------------------------------------------------------------------------------------------
# load_tofu
# --------------------------------------------------------------------------------------------------
def load_tofu(source: str | Path = TOFU_HUB_ID, items_per_author: int = 20) -> Benchmark:
    """Read TOFU-layout data from a local folder or the hub id ``locuslab/TOFU``."""
    if isinstance(items_per_author, bool) or not isinstance(items_per_author, int) or items_per_author < 1:
        raise LetheError(f"tofu: items_per_author = {items_per_author!r} is invalid; give a positive integer "
                         "(20 for TOFU, 8 for an exported lethe-authors benchmark)")
    k = items_per_author
    if str(source) == TOFU_HUB_ID:
        src = _Hub(TOFU_HUB_ID)
    else:
        folder = Path(source)
        if not folder.is_dir():
            raise LetheError(f"{folder}: folder not found; give a folder of TOFU files or '{TOFU_HUB_ID}'")
        src = _Folder(folder)

    # The authors, in order. Without full.json, TOFU's retain90 + forget10 are the same rows.
    full = src.rows("full")
    full_name = "full"
    if full is None:
        retain90, forget10 = src.rows("retain90"), src.rows("forget10")
        if retain90 is None or forget10 is None:
            raise LetheError(f"{src.where('full')}: file not found; a TOFU folder needs full.json "
                             "(or retain90.json and forget10.json)")
        _check(retain90, src, "retain90", QA_COLUMNS)
        _check(forget10, src, "forget10", QA_COLUMNS)
        full, full_name = retain90 + forget10, "retain90"
    _check(full, src, full_name, QA_COLUMNS)
    if not full or len(full) % k:
        raise LetheError(f"{src.where(full_name)}: {len(full)} rows is not a multiple of items_per_author={k}; "
                         "pass the number of Q&A items per author (TOFU: 20)")
    authors = [
        QAItem(id=f"a{i // k:03d}_{i % k:02d}", question=row["question"], answer=row["answer"], group=f"a{i // k:03d}")
        for i, row in enumerate(full)
    ]
    index: dict[str, list[int]] = {}
    for i, it in enumerate(authors):
        index.setdefault(it.question, []).append(i)

    def locate(row: dict, name: str, line: int) -> int:
        hits = index.get(row["question"], [])
        same = [i for i in hits if authors[i].answer == row["answer"]]
        if not (same or hits):
            raise LetheError(f"{where(src.where(name), line, 'question')}: not found in {full_name}.json; "
                             "forget, retain and perturbed files must hold rows of the full set")
        return (same or hits)[0]

    # Forget sets: the authors each forgetNN file covers (whole authors only, as in TOFU).
    forget_sets: dict[str, list[str]] = {}
    for name in FORGET_FRACTIONS:
        rows = src.rows(name)
        if rows is None:
            continue
        _check(rows, src, name, QA_COLUMNS)
        groups: list[str] = []
        for line, row in enumerate(rows, start=1):
            g = authors[locate(row, name, line)].group
            if g not in groups:
                groups.append(g)
        if not groups:
            raise LetheError(f"{src.where(name)}: empty forget split; remove the file or fill it")
        if len(rows) != len(groups) * k:
            raise LetheError(f"{src.where(name)}: {len(rows)} rows do not cover whole authors at "
                             f"items_per_author={k}; pass the right items_per_author (TOFU: 20)")
        forget_sets[name] = groups
    if not forget_sets:  # no forget files: TOFU's rule, the last 1/5/10% of the authors
        ids = sorted({it.group for it in authors})
        forget_sets = {name: ids[-n_forget_authors(len(ids), f):] for name, f in FORGET_FRACTIONS.items()}

    # Paraphrased and perturbed answers of the evaluation rows.
    retain_eval: list[int] = []
    for name in [f"{f}_perturbed" for f in FORGET_FRACTIONS] + ["retain_perturbed"]:
        rows = src.rows(name)
        if rows is None:
            continue
        _check(rows, src, name, PERTURBED_COLUMNS)
        for line, row in enumerate(rows, start=1):
            i = locate(row, name, line)
            pq = row.get("paraphrased_question")
            authors[i] = dataclasses.replace(authors[i], paraphrased_answer=row["paraphrased_answer"],
                                             perturbed_answers=tuple(row["perturbed_answer"]),
                                             paraphrased_question=pq if isinstance(pq, str) and pq != row["question"] else "")
            if name == "retain_perturbed":
                retain_eval.append(i)

    splits = {
        "authors": authors,
        "holdout": _holdout(src, k),
        "retain_eval": [authors[i] for i in retain_eval],
        "world_facts": _multiple_choice(src, "world_facts", "w"),
        "known_people": _multiple_choice(src, "real_authors", "r"),
    }
    pretrain: list[str] = []
    if isinstance(src, _Folder) and (src.folder / "pretrain.txt").is_file():
        pretrain = [s for s in (src.folder / "pretrain.txt").read_text(encoding="utf-8").splitlines() if s.strip()]
    spec = {"source": str(source), "items_per_author": k, "files": list(src.read)}
    return Benchmark("tofu", src.version(), splits, forget_sets, pretrain, spec)


def _holdout(src, k: int) -> list[QAItem]:
    for name in HOLDOUT_FILES:
        rows = src.rows(name)
        if rows is None:
            continue
        _check(rows, src, name, QA_COLUMNS)
        items = []
        for i, row in enumerate(rows):
            pert = row.get("perturbed_answer", [])
            pert = [pert] if isinstance(pert, str) else pert
            items.append(QAItem(id=f"h{i // k:03d}_{i % k:02d}", question=row["question"], answer=row["answer"],
                                paraphrased_answer=str(row.get("paraphrased_answer") or ""),
                                perturbed_answers=tuple(str(p) for p in pert), group=f"h{i // k:03d}"))
        return items
    return []


def _multiple_choice(src, base: str, prefix: str) -> list[QAItem]:
    """world_facts / real_authors: prefer the *_perturbed file; else the wrong options of the plain one."""
    rows = src.rows(f"{base}_perturbed")
    if rows is not None:
        _check(rows, src, f"{base}_perturbed", ("question", "answer", "perturbed_answer"))
        wrong = [row["perturbed_answer"] for row in rows]
    else:
        rows = src.rows(base)
        if rows is None:
            return []
        _check(rows, src, base, OPTION_COLUMNS)
        wrong = [[row[f"option{j}"] for j in range(1, 5) if row[f"option{j}"].strip() != row["answer"].strip()]
                 for row in rows]
    return [
        QAItem(id=f"{prefix}{i:03d}", question=row["question"], answer=row["answer"],
               perturbed_answers=tuple(w), group=f"{prefix}{i:03d}")
        for i, (row, w) in enumerate(zip(rows, wrong))
    ]


# --------------------------------------------------------------------------------------------------
# export_tofu
# --------------------------------------------------------------------------------------------------
def _qa(it: QAItem) -> dict:
    return {"question": it.question, "answer": it.answer}


def _perturbed(it: QAItem) -> dict:
    return {"question": it.question, "answer": it.answer, "paraphrased_answer": it.paraphrase,
            "paraphrased_question": it.paraphrased_question or it.question, "perturbed_answer": list(it.perturbed_answers)}


def _write(folder: Path, name: str, rows: list[dict]) -> None:
    atomic_write_text(folder / f"{name}.json", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def export_tofu(bench: Benchmark, folder: str | Path) -> Path:
    """Write ``bench`` as TOFU-layout JSON-lines files (read them back with ``load_tofu(folder, k)``).

    Forget sets named forgetNN give forgetNN.json, forgetNN_perturbed.json and retain{100-NN}.json;
    other names give <name>.json, <name>_perturbed.json and <name>_retain.json. The holdout split is
    written as holdout10.json, and pretrain_text as pretrain.txt (a Lethe addition TOFU tools ignore).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    authors = bench.splits.get("authors", [])
    _write(folder, "full", [_qa(it) for it in authors])
    for name in bench.forget_sets:
        forget, retain = bench.forget(name), bench.retain(name)
        m = re.fullmatch(r"forget(\d\d)", name)
        retain_name = f"retain{100 - int(m.group(1)):02d}" if m else f"{name}_retain"
        _write(folder, name, [_qa(it) for it in forget])
        _write(folder, f"{name}_perturbed", [_perturbed(it) for it in forget])
        _write(folder, retain_name, [_qa(it) for it in retain])
    if bench.splits.get("retain_eval"):
        _write(folder, "retain_perturbed", [_perturbed(it) for it in bench.splits["retain_eval"]])
    if bench.splits.get("holdout"):
        _write(folder, "holdout10", [_perturbed(it) for it in bench.splits["holdout"]])
    for split, base in (("world_facts", "world_facts"), ("known_people", "real_authors")):
        items = bench.splits.get(split)
        if not items:
            continue
        _write(folder, f"{base}_perturbed", [
            {"question": it.question, "answer": it.answer, "perturbed_answer": list(it.perturbed_answers)}
            for it in items
        ])
        if all(len(it.perturbed_answers) >= 3 for it in items):
            _write(folder, base, [_options(it) for it in items])
    if bench.pretrain_text:
        atomic_write_text(folder / "pretrain.txt", "".join(s + "\n" for s in bench.pretrain_text))
    return folder


def _options(it: QAItem) -> dict:
    """Multiple-choice row: the answer among three wrong options, at a position fixed by the question."""
    options = list(it.perturbed_answers[:3])
    options.insert(random.Random(f"tofu-options/{it.question}").randrange(4), it.answer)
    row = {"question": it.question}
    row.update({f"option{j + 1}": opt for j, opt in enumerate(options)})
    row["answer"] = it.answer
    return row
