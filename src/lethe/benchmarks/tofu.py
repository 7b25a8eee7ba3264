"""Import and export in the public TOFU layout (``locuslab/TOFU`` on the Hugging Face hub; Maini et al. 2024).

docs/benchmarks.md maps each TOFU file to the splits of a Lethe :class:`Benchmark`. The Closer-Look release
(sail-sg/closer-look-LLM-unlearning, ``data/tofu``; Yuan et al. 2025) has no full.json: its forget files are
sequences of forget requests (a ``task_id`` per row); :func:`load_tofu` says how it is read.
"""
from __future__ import annotations

import dataclasses
import hashlib
import random
import re
from collections import Counter
from pathlib import Path

from ..errors import LetheError, where
from .base import Benchmark, QAItem, atomic_write_text, decode_text, json_records, read_text, string_list, write_rows
from .overlap import check_overlap, raise_on_overlap
from .synthetic import FORGET_FRACTIONS, n_forget_authors

TOFU_HUB_ID = "locuslab/TOFU"
QA_COLUMNS = ("question", "answer")
PERTURBED_COLUMNS = ("question", "answer", "paraphrased_answer", "perturbed_answer")
OPTION_COLUMNS = ("question", "option1", "option2", "option3", "option4", "answer")
HOLDOUT_FILES = ("holdout10", "holdout05", "holdout01", "holdout")  # the largest one present is used
MULTIPLE_CHOICE = {"world_facts": "world_facts", "known_people": "real_authors"}  # split -> TOFU file


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
        return [row for _, row in json_records(decode_text(raw, path), path)]

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


def _read(src, name: str, columns: tuple[str, ...] = QA_COLUMNS) -> list[dict] | None:
    """The rows of TOFU file ``name``, checked against ``columns``; None when the file is absent."""
    rows = src.rows(name)
    if rows is not None:
        _check(rows, src, name, columns)
    return rows


def _check(rows: list, src, name: str, columns: tuple[str, ...]) -> None:
    """Every row is an object with these columns; strings for text, a list of strings for perturbed_answer."""
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
                row[col] = string_list(value, src.where(name), line, col)
            elif not isinstance(value, str) or (col in QA_COLUMNS and not value.strip()):
                raise LetheError(f"{where(src.where(name), line, col)}: must be a non-empty string")


# The complement of each forget file. TOFU (locuslab): forgetNN + retain{100-NN} = the 200 authors.
# Closer-Look (sail-sg/closer-look-LLM-unlearning, forget.py ``get_task_data``): forgetNN.json holds
# 10 (forget10: 9) requests of NN% of the authors each, and its complement is
# "retain" + str(100 - min(10 * NN, 90)).zfill(2): retain90 / retain50 / retain10.
TOFU_COMPLEMENT = {"forget01": "retain99", "forget05": "retain95", "forget10": "retain90"}
CLOSER_LOOK_COMPLEMENT = {"forget01": "retain90", "forget05": "retain50", "forget10": "retain10"}


def _key(row: dict) -> tuple[str, str]:
    return row["question"].strip(), row["answer"].strip()  # the key of Benchmark.forget_overlap


def _check_multiple(full: list, src, name: str, k: int) -> None:
    if not full or len(full) % k:
        raise LetheError(f"{src.where(name)}: {len(full)} rows is not a multiple of items_per_author={k}; "
                         "pass the number of Q&A items per author (TOFU: 20)")


def _task_ids(rows: list[dict], src, name: str) -> list[str]:
    """The task_id of every row of a Closer-Look forget file, as strings ("1", "2", ...): a string or an
    integer holding a whole number, as the reference code reads it with ``int(x['task_id'])``."""
    out = []
    for line, row in enumerate(rows, start=1):
        t = row.get("task_id")
        if isinstance(t, bool) or not isinstance(t, (str, int)) or not str(t).strip().lstrip("-").isdigit():
            raise LetheError(f"{where(src.where(name), line, 'task_id')}: missing or not a whole number; in the "
                             "Closer-Look layout every row of a forget file names its request (\"1\", \"2\", ...)")
        out.append(str(int(t)))
    return out


def _closer_look_authors(src, forget_rows: dict) -> tuple[list[dict], str]:
    """The authors of a Closer-Look folder (no full.json): the largest forget file's complement, then
    that forget file. Every forget file with its complement must hold the same rows with none in both."""
    pairs = [(f, CLOSER_LOOK_COMPLEMENT[f]) for f in ("forget10", "forget05", "forget01") if forget_rows.get(f)]
    rows_of = {c: rows for f, c in pairs if (rows := _read(src, c)) is not None}
    pairs = [(f, c) for f, c in pairs if c in rows_of]
    if not pairs:
        need = ", ".join(f"{f}.json + {CLOSER_LOOK_COMPLEMENT[f]}.json" for f in forget_rows if forget_rows[f])
        raise LetheError(f"{src.where('full')}: file not found, and no forget file has its complement; a "
                         f"Closer-Look TOFU folder needs at least one pair ({need})")
    f0, c0 = pairs[0]
    full = rows_of[c0] + forget_rows[f0]
    _check_pairs(src, forget_rows, rows_of, pairs, full, f"{src.where(f0)} + {c0}.json")
    return full, c0


def _check_pairs(src, forget_rows: dict, retain_rows: dict, pairs, full: list[dict], full_name: str) -> None:
    """Each forget file and its complement: no Q&A in both, and together exactly the rows of ``full``."""
    want = Counter(_key(r) for r in full)
    for f, c in pairs:
        forget, retain = forget_rows[f], retain_rows[c]
        keys = {_key(r) for r in retain}
        raise_on_overlap(sum(_key(r) in keys for r in forget), src.where(f), src.where(c))
        got = Counter(_key(r) for r in forget + retain)
        if got != want:
            n = sum(((got - want) + (want - got)).values())
            raise LetheError(f"{src.where(f)}, {src.where(c)}: together they are not the Q&A of {full_name} "
                             f"({n} rows differ); a forget file and its complement must make up the same authors")


def load_tofu(source: str | Path = TOFU_HUB_ID, items_per_author: int = 20) -> Benchmark:
    """Read TOFU-layout data from a local folder or the hub id ``locuslab/TOFU``.

    ``spec["layout"]`` is ``"tofu"`` (the public release: forgetNN.json = whole authors) or ``"closer-look"``
    (forget rows carry a ``task_id``): there the split ``forgetNN`` is request 1 (the authors' TOFU runs use
    ``task_id: 1``, config/tofu.yaml) and the requests in task_id order are ``spec["rounds"]["forgetNN"]``
    (ids in ``spec["task_ids"]``). A forget item that also stands in the retain data is a one-line error.
    """
    if isinstance(items_per_author, bool) or not isinstance(items_per_author, int) or items_per_author < 1:
        raise LetheError(f"tofu: items_per_author = {items_per_author!r} is invalid; give a positive integer "
                         "(20 for TOFU, 8 for an exported lethe-authors benchmark)")
    k = items_per_author
    hub = str(source) == TOFU_HUB_ID
    if not hub and not Path(source).is_dir():
        raise LetheError(f"{Path(source)}: folder not found; give a folder of TOFU files or '{TOFU_HUB_ID}'")
    src = _Hub(TOFU_HUB_ID) if hub else _Folder(Path(source))

    forget_rows = {name: rows for name in FORGET_FRACTIONS if (rows := _read(src, name)) is not None}
    full = _read(src, "full")
    if full is not None:
        _check_multiple(full, src, "full", k)

    tasks = {name: _task_ids(rows, src, name) for name, rows in forget_rows.items()
             if any("task_id" in r for r in rows)}
    layout = "closer-look" if tasks else "tofu"
    for name in forget_rows:
        if tasks and name not in tasks and forget_rows[name]:
            raise LetheError(f"{src.where(name)}: no task_id column, but {', '.join(f'{t}.json' for t in tasks)} "
                             "has one; give every forget file of a Closer-Look folder its task_id")

    def no_empty() -> None:
        for name, rows in forget_rows.items():
            if not rows:
                raise LetheError(f"{src.where(name)}: empty forget split; remove the file or fill it")

    # The authors, in order.
    full_name = "full"
    complement = CLOSER_LOOK_COMPLEMENT if layout == "closer-look" else TOFU_COMPLEMENT
    if full is not None:
        no_empty()
        retain_rows = {complement[f]: rows for f in forget_rows if (rows := _read(src, complement[f])) is not None}
        pairs = [(f, complement[f]) for f in forget_rows if complement[f] in retain_rows]
        _check_pairs(src, forget_rows, retain_rows, pairs, full, src.where("full"))
    elif layout == "closer-look":
        no_empty()
        full, full_name = _closer_look_authors(src, forget_rows)
    else:  # TOFU without full.json: retain90 + forget10 are its 200 authors, when they do not overlap
        retain90, forget10 = src.rows("retain90"), forget_rows.get("forget10")
        if retain90 is None or forget10 is None:
            raise LetheError(f"{src.where('full')}: file not found; a TOFU folder needs full.json "
                             "(or retain90.json and forget10.json)")
        no_empty()
        _check(retain90, src, "retain90", QA_COLUMNS)
        _check_pairs(src, forget_rows, {"retain90": retain90}, [("forget10", "retain90")], retain90 + forget10,
                     "retain90 + forget10")
        full, full_name = retain90 + forget10, "retain90"
    _check_multiple(full, src, full_name, k)
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

    def whole_authors(rows: list[tuple[int, dict]], name: str, what: str) -> list[str]:
        """The authors of these rows, in order; they must cover whole authors (as in TOFU)."""
        groups = list(dict.fromkeys(authors[locate(row, name, line)].group for line, row in rows))
        if len(rows) != len(groups) * k:
            raise LetheError(f"{src.where(name)}: {what} has {len(rows)} rows, which do not cover whole authors at "
                             f"items_per_author={k}; pass the right items_per_author (TOFU: 20)")
        return groups

    # Forget sets: the authors each forgetNN file covers (whole authors only, as in TOFU); in the
    # Closer-Look layout request 1 of the file, and every request as a round.
    forget_sets: dict[str, list[str]] = {}
    rounds: dict[str, list[list[str]]] = {}
    task_ids: dict[str, list[str]] = {}
    for name, rows in forget_rows.items():
        numbered = list(enumerate(rows, start=1))
        if name not in tasks:
            forget_sets[name] = whole_authors(numbered, name, "the file")
            continue
        ids = sorted(set(tasks[name]), key=int)  # the scripts' task_list=(1 2 ... 10): numeric order
        per_task = [whole_authors([(n, r) for (n, r), t in zip(numbered, tasks[name]) if t == tid], name,
                                  f"task_id {tid}") for tid in ids]
        seen: dict[str, str] = {}
        for tid, groups in zip(ids, per_task):
            for g in groups:
                if g in seen:
                    raise LetheError(f"{src.where(name)}: author {g} is in task_id {seen[g]} and {tid}; each "
                                     "request of a Closer-Look forget file must be other authors")
                seen[g] = tid
        forget_sets[name], rounds[name], task_ids[name] = per_task[0], per_task, ids
    if not forget_sets:  # no forget files: TOFU's rule, the last 1/5/10% of the authors
        ids = sorted({it.group for it in authors})
        forget_sets = {name: ids[-n_forget_authors(len(ids), f):] for name, f in FORGET_FRACTIONS.items()}

    # Paraphrased and perturbed answers of the evaluation rows.
    retain_eval: list[int] = []
    for name in [f"{f}_perturbed" for f in FORGET_FRACTIONS] + ["retain_perturbed"]:
        for line, row in enumerate(_read(src, name, PERTURBED_COLUMNS) or [], start=1):
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
        **{split: _multiple_choice(src, base, base[0]) for split, base in MULTIPLE_CHOICE.items()},
    }
    pretrain: list[str] = []
    if isinstance(src, _Folder) and (src.folder / "pretrain.txt").is_file():
        pretrain = [s for s in read_text(src.folder / "pretrain.txt").splitlines() if s.strip()]
    spec = {"source": str(source), "items_per_author": k, "files": list(src.read), "layout": layout}
    if rounds:
        spec.update(rounds=rounds, task_ids=task_ids)
    bench = Benchmark("tofu", src.version(), splits, forget_sets, pretrain, spec)
    bench.spec["split_notes"] = _split_notes(bench, src, full_name, complement)

    def files(split: str) -> tuple[str, str]:
        """Where the two sides of ``split`` were read: the forget file, and the retain data's file (the
        complement where the authors were built from it, else the file the authors came from)."""
        if split not in forget_rows:
            return src.where(full_name), src.where(full_name)
        own = full_name != "full" and complement[split] in {Path(f).stem for f in src.read}
        return src.where(split), src.where(complement[split] if own else full_name)
    check_overlap(bench, files)
    return bench


def _split_notes(bench: Benchmark, src, full_name: str, complement: dict) -> dict[str, str]:
    """One sentence per split saying what it is in this release (``describe_splits``)."""
    spec, k = bench.spec, bench.spec["items_per_author"]
    read = {Path(f).stem for f in spec["files"]}
    n_authors = len({it.group for it in bench.splits["authors"]})
    source = "full.json" if full_name == "full" else (
        f"{full_name}.json + forget10.json" if spec["layout"] == "tofu" else
        f"{full_name}.json + {next(f for f, c in complement.items() if c == full_name)}.json")
    notes = {"authors": f"authors: {len(bench.splits['authors'])} Q&A of {n_authors} authors ({source}, "
                        f"{k} per author)"}
    for name, groups in bench.forget_sets.items():
        rest = n_authors - len(groups)
        if name in spec.get("rounds", {}):
            rounds, ids = spec["rounds"][name], spec["task_ids"][name]
            every = sum(len(g) for g in rounds)
            notes[name] = (f"{name}: task_id {ids[0]} of {name}.json, {len(groups)} authors ({len(groups) * k} Q&A), "
                           f"the single forget request of the authors' TOFU runs; {name}.json holds {len(rounds)} "
                           f"requests (task_id {ids[0]}..{ids[-1]}, {every} authors), the continual scenario's "
                           f"rounds; retain = the other {rest} authors ({complement[name]}.json + the later requests)")
        elif name in read:
            notes[name] = f"{name}: the {len(groups)} authors of {name}.json ({len(groups) * k} Q&A); retain = the other {rest} authors"
        else:
            notes[name] = f"{name}: the last {len(groups)} authors (no {name}.json: TOFU's rule); retain = the other {rest}"
    retain_eval = bench.splits["retain_eval"]
    if retain_eval:
        groups = {it.group for it in retain_eval}
        forgotten = {g for name in bench.forget_sets for g in bench.forget_sets[name]}
        forgotten |= {g for r in spec.get("rounds", {}).values() for gs in r for g in gs}
        never = " never in a forget request" if not groups & forgotten else ""
        notes["retain_eval"] = (f"retain_eval: retain_perturbed.json, {len(retain_eval)} Q&A of {len(groups)} "
                                f"authors{never} (the retain split of evaluation)")
    else:
        notes["retain_eval"] = "retain_eval: no retain_perturbed.json; evaluation takes retained authors of the full set"
    holdout = bench.splits["holdout"]
    notes["holdout"] = (f"holdout: {len(holdout)} Q&A of authors never trained on" if holdout else
                        "holdout: none in this release (membership inference and PrivLeak are not run)")
    for split, base in MULTIPLE_CHOICE.items():
        items = bench.splits[split]
        if not items:
            notes[split] = f"{split}: none ({base}_perturbed.json / {base}.json not in this release)"
            continue
        long = sum(bool(it.original_answer) for it in items)
        file = f"{base}_perturbed" if f"{base}_perturbed" in read else base
        extra = f"; {long} with original_answer, the long form" if long else ""
        notes[split] = f"{split}: {len(items)} items of {file}.json (short answers and wrong options{extra})"
    return notes


def describe_splits(bench: Benchmark) -> list[str]:
    """What each split of a TOFU-layout ``bench`` is, one sentence each (for reports and ``lethe validate``);
    [] for a benchmark read from elsewhere (no ``split_notes`` in its spec)."""
    return [str(v) for v in (bench.spec or {}).get("split_notes", {}).values()]


def _holdout(src, k: int) -> list[QAItem]:
    rows = next((r for name in HOLDOUT_FILES if (r := _read(src, name)) is not None), [])
    items = []
    for i, row in enumerate(rows):
        pert = row.get("perturbed_answer", [])
        pert = [pert] if isinstance(pert, str) else pert
        items.append(QAItem(id=f"h{i // k:03d}_{i % k:02d}", question=row["question"], answer=row["answer"],
                            paraphrased_answer=str(row.get("paraphrased_answer") or ""),
                            perturbed_answers=tuple(str(p) for p in pert), group=f"h{i // k:03d}"))
    return items


def _multiple_choice(src, base: str, prefix: str) -> list[QAItem]:
    """world_facts / real_authors: prefer the *_perturbed file; else the wrong options of the plain one."""
    rows = _read(src, f"{base}_perturbed", ("question", "answer", "perturbed_answer"))
    if rows is not None:
        wrong = [row["perturbed_answer"] for row in rows]
        for line, row in enumerate(rows, start=1):  # the long answer of the Closer-Look release, optional
            if not isinstance(row.get("original_answer", ""), str):
                raise LetheError(f"{where(src.where(f'{base}_perturbed'), line, 'original_answer')}: must be a string")
    else:
        rows = _read(src, base, OPTION_COLUMNS)
        if rows is None:
            return []
        wrong = [[row[f"option{j}"] for j in range(1, 5) if row[f"option{j}"].strip() != row["answer"].strip()]
                 for row in rows]
    return [
        QAItem(id=f"{prefix}{i:03d}", question=row["question"], answer=row["answer"],
               perturbed_answers=tuple(w), group=f"{prefix}{i:03d}", original_answer=row.get("original_answer") or "")
        for i, (row, w) in enumerate(zip(rows, wrong))
    ]


def _qa(it: QAItem) -> dict:
    return {"question": it.question, "answer": it.answer}


def _perturbed(it: QAItem) -> dict:
    return {"question": it.question, "answer": it.answer, "paraphrased_answer": it.paraphrase,
            "paraphrased_question": it.paraphrased_question or it.question, "perturbed_answer": list(it.perturbed_answers)}


def _write(folder: Path, name: str, rows: list[dict]) -> None:
    write_rows(folder / f"{name}.json", rows)


def export_tofu(bench: Benchmark, folder: str | Path) -> Path:
    """Write ``bench`` as TOFU-layout JSON-lines files (read them back with ``load_tofu(folder, k)``); a forget
    set not named forgetNN gives <name>.json, <name>_perturbed.json and <name>_retain.json, the holdout split
    holdout10.json, pretrain_text pretrain.txt (a Lethe addition TOFU tools ignore)."""
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
    for split, base in MULTIPLE_CHOICE.items():
        items = bench.splits.get(split)
        if not items:
            continue
        _write(folder, f"{base}_perturbed",
               [{**_qa(it), "perturbed_answer": list(it.perturbed_answers)} for it in items])
        if all(len(it.perturbed_answers) >= 3 for it in items):
            _write(folder, base, [_options(it) for it in items])
    if bench.pretrain_text:
        atomic_write_text(folder / "pretrain.txt", "".join(s + "\n" for s in bench.pretrain_text))
    return folder


def _options(it: QAItem) -> dict:
    """Multiple-choice row: the answer among three wrong options, at a position fixed by the question."""
    options = list(it.perturbed_answers[:3])
    options.insert(random.Random(f"tofu-options/{it.question}").randrange(4), it.answer)
    return {"question": it.question, **{f"option{j + 1}": opt for j, opt in enumerate(options)}, "answer": it.answer}
