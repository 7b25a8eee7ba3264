"""Loader for the real-world unlearning data of Yuan et al. 2025 ("A Closer Look at Machine Unlearning for
LLMs", repository sail-sg/closer-look-LLM-unlearning, folder ``data/real_world``): JSON Lines about real
persons; which file serves what (unlearning: forget.json / neighbor.json, evaluation: the ``*_perturbed.json``
files, each the other's fallback) is in docs/real_world.md.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import LetheError, where
from .base import QAItem, check_row, json_records, qa_overlap, read_text, string_list
from .overlap import raise_on_overlap

REQUIRED = ("name", "question", "answer")


@dataclass
class RealWorldData:
    forget: list[QAItem]  # evaluation items: answer = golden_answer
    neighbour: list[QAItem]
    forget_train: list[QAItem]  # unlearning items: answer = the model's own answer
    neighbour_train: list[QAItem]
    source: str
    files: dict[str, str] = field(default_factory=dict)  # role (forget, neighbour, forget_train, ...) -> file read
    wrong_answers: bool = True  # False: the evaluation files have no perturbed_answer (truth ratio n/a)


def _items(path: Path, prefix: str, need_wrong: bool = True) -> tuple[list[QAItem], list[QAItem]]:
    """(evaluation items, unlearning items) of one file. ``need_wrong``: every row needs perturbed_answer
    (a *_perturbed.json file); otherwise a file gives them to all rows or to none."""
    evals, trains = [], []
    per_name: dict[str, int] = {}
    for n, row in json_records(read_text(path), path):
        check_row(row, REQUIRED, path, n, ", ".join(REQUIRED))
        pert = string_list(row.get("perturbed_answer", []), path, n, "perturbed_answer")
        if not pert and (need_wrong or any(it.perturbed_answers for it in evals)):
            raise LetheError(f"{where(path, n, 'perturbed_answer')}: missing; the truth ratio needs wrong answers "
                             "(use the *_perturbed.json files of the release)")
        if pert and evals and not evals[0].perturbed_answers:
            raise LetheError(f"{where(path, n, 'perturbed_answer')}: given here but not on line 1; give wrong answers "
                             "to every row of the file or to none")
        name = row["name"].strip()
        k = per_name[name] = per_name.get(name, -1) + 1
        golden = row.get("golden_answer") or row["answer"]
        common = dict(id=f"{prefix}-{name.replace(' ', '_')}-{k}", question=row["question"],
                      paraphrased_question=row.get("paraphrased_question", "") or "", group=name,
                      fact=str(row.get("task_id", "")))
        evals.append(QAItem(answer=golden, paraphrased_answer=row.get("paraphrased_answer", "") or "",
                            perturbed_answers=tuple(pert), **common))
        trains.append(QAItem(answer=row["answer"], **common))
    if not evals:
        raise LetheError(f"{path}: no rows; expected one JSON object per line")
    return evals, trains


def load_real_world(folder: str | Path) -> RealWorldData:
    """Read the real-world release in ``folder`` (see the module docstring for which file serves what)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise LetheError(f"{folder}: not a folder; give the real_world data folder (forget.json, neighbor.json)")

    def pick(*stems: str) -> Path:
        for path in (folder / f"{stem}{suffix}" for stem in stems for suffix in (".json", ".jsonl")):
            if path.is_file():
                return path
        base = stems[0].removesuffix("_perturbed")
        raise LetheError(f"{folder}: no {base}.json or {base}_perturbed.json; the real-world layout needs both "
                         "forget and neighbor files")

    files = {"forget": pick("forget_perturbed", "forget"), "neighbour": pick("neighbor_perturbed", "neighbor"),
             "forget_train": pick("forget", "forget_perturbed"),
             "neighbour_train": pick("neighbor", "neighbor_perturbed")}
    read = {path: _items(path, path.stem.removesuffix("_perturbed"), need_wrong=path.stem.endswith("_perturbed"))
            for path in dict.fromkeys(files.values())}
    forget, neighbour = read[files["forget"]][0], read[files["neighbour"]][0]
    forget_train, neighbour_train = read[files["forget_train"]][1], read[files["neighbour_train"]][1]
    if bool(forget[0].perturbed_answers) != bool(neighbour[0].perturbed_answers):
        have, lack = ("forget", "neighbour") if forget[0].perturbed_answers else ("neighbour", "forget")
        raise LetheError(f"{files[lack]}: no perturbed_answer, but {files[have].name} has them; give both evaluation "
                         "files wrong answers (the *_perturbed.json files) or neither")

    persons = {it.group for it in forget + forget_train}
    both = persons & {it.group for it in neighbour + neighbour_train}
    if both:
        raise LetheError(f"{folder}: {', '.join(sorted(both))} appear in both forget and neighbor files; the "
                         "neighbour set must be other entities")
    # the invariant of every benchmark: no forget item (question + answer) in the retain data of unlearning
    ids = {it.id for it in qa_overlap(forget_train, neighbour_train) + qa_overlap(forget, neighbour_train)}
    names = sorted({files["forget_train"].name, files["forget"].name})
    raise_on_overlap(len(ids), str(folder / " + ".join(names)), str(files["neighbour_train"]))
    return RealWorldData(forget, neighbour, forget_train, neighbour_train, str(folder),
                         {role: str(path) for role, path in files.items()}, bool(forget[0].perturbed_answers))
