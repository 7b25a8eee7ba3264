"""Forget entities: the names a guardrail withholds and an output filter looks for, read off the
forget questions (a heuristic, documented and tested)."""
from __future__ import annotations

import math
import re
from collections import Counter

from ..benchmarks.base import QAItem
from ..errors import LetheError

_WORD = re.compile(r"[^\W\d_]+(?:['’\-][^\W\d_]+)*")  # letters, inner apostrophes / hyphens (O'Neil, Jean-Paul)
# capitalised only because they start a question; never a name on their own or at a name's edge
STOP_WORDS = frozenset(
    "A An And Are As At By Can Could Describe Did Do Does Explain For From Give Had Has Have He Her His How I If "
    "In Into Is It Its List Name Of On Or Please She Should Tell That The Their They This To Was Were What When "
    "Where Which Who Whom Whose Why Will With Would".split()
)


def _capitalised_runs(text: str) -> list[list[str]]:
    """Maximal runs of capitalised words separated by whitespace only ("Paris, France" gives two runs),
    a possessive ending a run and cut ("Moon's" -> "Moon"), stop words trimmed from both ends."""
    runs: list[list[str]] = [[]]
    end = 0
    for m in _WORD.finditer(text):
        possessive = m.group().endswith(("'s", "’s"))
        word = m.group()[:-2] if possessive else m.group()
        capitalised = word[:1].isupper()
        if not capitalised or (runs[-1] and text[end:m.start()].strip()):  # a lower-case word, or punctuation
            runs.append([])
        if capitalised:
            runs[-1].append(word)
            if possessive:
                runs.append([])
        end = m.end()
    kept = ([i for i, w in enumerate(run) if w not in STOP_WORDS] for run in runs)  # indices of non-stop words
    return [run[inner[0] : inner[-1] + 1] for run, inner in zip(runs, kept) if inner]


def _spans(text: str) -> set[str]:
    """Every contiguous word sequence of every capitalised run of ``text``."""
    return {" ".join(run[i:j]) for run in _capitalised_runs(text)
            for i in range(len(run)) for j in range(i + 1, len(run) + 1)}


def forget_entities(forget: list[QAItem], retain: list[QAItem], min_share: float = 0.5) -> list[str]:
    """Names of the forget set's entities, read off the questions: per ``QAItem.group`` (an item without
    one is its own group), the capitalised word sequences in at least ``min_share`` of the group's
    questions and in no retain question, less those inside a longer one that covers as many questions
    ("Alice Moon", not "Alice")."""
    blocked = set().union(*(_spans(it.question) for it in retain))
    groups: dict[str, list[QAItem]] = {}
    for it in forget:
        groups.setdefault(it.group or f"\0{it.id}", []).append(it)
    names: list[str] = []
    for items in groups.values():
        counts = Counter(s for it in items for s in _spans(it.question))
        need = max(1, math.ceil(min_share * len(items) - 1e-9))
        cands = {s: n for s, n in counts.items() if n >= need and s not in blocked}
        kept = [s for s, n in cands.items()
                if not any(s != t and f" {s} " in f" {t} " and cands[t] >= n for t in cands)]
        for s in sorted(kept, key=lambda s: (-cands[s], -len(s), s)):
            if s not in names:
                names.append(s)
    return names


def entity_names(names: tuple[str, ...], forget, retain, min_share: float, method: str) -> list[str]:
    """The names a user gave, else :func:`forget_entities`; none at all is an error naming ``method``."""
    found = list(names) if names else forget_entities(forget, retain, min_share)
    if not found:
        raise LetheError(f"{method}: found no entity names in the forget questions (capitalised words common to an "
                         "entity's questions and absent from retain questions); give them with names=[...]")
    return found


def names_pattern(names: list[str]) -> re.Pattern:
    """Whole-word, case-insensitive match of any of ``names`` (longest first)."""
    alts = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alts})(?!\w)", re.IGNORECASE)
