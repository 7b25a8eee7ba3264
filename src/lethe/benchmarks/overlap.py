"""The forget/retain invariant every benchmark must keep: no forget item (question + answer) may stand in
the retain data, which unlearning preserves and the retain model (the gold standard) is trained on.
Loaders check it (:func:`raise_on_overlap`: one line naming both files and the count);
:func:`overlap_report` gives the counts without raising, for ``lethe validate``.
"""
from __future__ import annotations

from ..errors import LetheError
from .base import Benchmark, qa_overlap


def raise_on_overlap(n: int, forget_file: str, retain_file: str) -> None:
    """The one error of a broken invariant: both files and the count, and the fix."""
    if n:
        raise LetheError(f"{forget_file}, {retain_file}: {n} forget item{'s' if n != 1 else ''} (question + answer) "
                         "also stand in the retain data; remove them from the retain file (a retain model trained "
                         "on them knows what it must forget)")


def release_rounds(bench: Benchmark, split: str) -> list[list[str]] | None:
    """The forget requests a release fixes for ``split`` (Closer-Look TOFU: one per task_id), or None."""
    rounds = (bench.spec or {}).get("rounds", {})
    return rounds.get(split) if isinstance(rounds, dict) else None


def round_overlaps(bench: Benchmark, split: str) -> list[int]:
    """Per release round r of ``split``: how many items of request r also stand in the retain data of
    that round (every author not requested in rounds 1..r, as the continual scenario unlearns it)."""
    rounds = release_rounds(bench, split) or []
    authors = bench.splits["authors"]
    out, done = [], set()
    for groups in rounds:
        done |= set(groups)
        forget = [it for it in authors if it.group in groups]
        out.append(len(qa_overlap(forget, [it for it in authors if it.group not in done])))
    return out


def overlap_report(bench: Benchmark) -> dict[str, int]:
    """Forget items (question + answer) that also stand in the retain data, per forget split, and
    summed over the release rounds of a split that has them (``"<split> rounds"``); never raises.
    All zeros = the invariant holds."""
    out: dict[str, int] = {}
    for split in bench.forget_sets:
        out[split] = len(bench.forget_overlap(split)) if bench.forget_sets[split] else 0
        if release_rounds(bench, split):
            out[f"{split} rounds"] = sum(round_overlaps(bench, split))
    return out


def check_overlap(bench: Benchmark, files) -> None:
    """Raise on the first forget split (or release round) whose items stand in its retain data.
    ``files(split) -> (forget file, retain file)`` names where the two sides were read from."""
    for split in bench.forget_sets:
        forget_file, retain_file = files(split)
        raise_on_overlap(len(bench.forget_overlap(split)) if bench.forget_sets[split] else 0, forget_file, retain_file)
        ids = (bench.spec or {}).get("task_ids", {}).get(split) or []
        for r, n in enumerate(round_overlaps(bench, split)):
            raise_on_overlap(n, f"{forget_file} (task_id {ids[r] if r < len(ids) else r + 1})", retain_file)
