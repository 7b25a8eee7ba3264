"""Made-up words for the built-in benchmarks: a head, an optional middle and a tail chunk (the *root*), plus
a suffix that marks the category ("-ford" for a town). Each generator passes its own syllable inventories;
handing every root out once keeps two names from sharing one. A :class:`Lexicon` is a pure function of its
``random.Random`` stream and the calls made on it (sets are used for membership only, never iterated).
"""
from __future__ import annotations

import random
from typing import Iterable, Mapping

from ..errors import LetheError


class Lexicon:
    """Hands out made-up words; a root (head + middle + tail) is never handed out twice.

    heads, tails: the root's first and last chunk. middles: an optional chunk between them (give
    ``""`` entries to leave it out in some words); none given, no middle is drawn.
    suffixes: category -> the suffixes a word of that category ends with (``("",)``: none).
    blocked: letter sequences no word may contain (keeps accidental real or crude words out).
    reserved: words never handed out (the benchmark's real words). unique_words: also never hand out
    one word twice (two roots may spell one word with their suffixes: "ala" + "ric", "alar" + "ic").
    owner, unit: the benchmark and what it counts, for the error when the words run out.
    """

    def __init__(self, rng: random.Random, heads: tuple[str, ...], tails: tuple[str, ...],
                 suffixes: Mapping[str, tuple[str, ...]] | None = None, *, middles: tuple[str, ...] = (),
                 blocked: tuple[str, ...] = (), reserved: Iterable[str] = (), unique_words: bool = False,
                 owner: str = "lethe", unit: str = "items"):
        self.rng = rng
        self.heads, self.tails, self.middles = tuple(heads), tuple(tails), tuple(middles)
        self.suffixes = dict(suffixes or {})
        self.blocked = tuple(blocked)
        self.unique_words = unique_words
        self.owner, self.unit = owner, unit
        self.roots: set[str] = set()  # membership only, never iterated (ordering stays deterministic)
        self.used_heads: set[str] = set()
        self.taken: set[str] = set(reserved)  # words that may not be handed out (any more)

    def word(self, category: str) -> str:
        """A fresh lower-case word of ``category``: its root is new, it contains no blocked sequence
        and is not reserved. Draws head, middle (if any), tail, suffix from the stream, in that order."""
        if category not in self.suffixes:
            raise KeyError(f"{self.owner}: no made-up word category '{category}'")
        suffixes = self.suffixes[category]
        for _ in range(100_000):
            head = self.rng.choice(self.heads)
            middle = self.rng.choice(self.middles) if self.middles else ""
            root = head + middle + self.rng.choice(self.tails)
            word = root + self.rng.choice(suffixes)
            if root in self.roots or word in self.taken or any(b in word for b in self.blocked):
                continue
            self._take(head, root)
            if self.unique_words:
                self.taken.add(word)
            return word
        raise LetheError(f"{self.owner}: ran out of made-up {category} words; ask for fewer {self.unit}")

    def name(self, category: str) -> str:
        """:meth:`word`, capitalised (a proper name)."""
        return self.word(category).capitalize()

    def words(self, n: int, category: str) -> list[str]:
        return [self.word(category) for _ in range(n)]

    def names(self, n: int, category: str) -> list[str]:
        return [self.name(category) for _ in range(n)]

    def person(self, first: str = "first", last: str = "last") -> str:
        """"First Last": two names, the first of category ``first``, the second of ``last``."""
        return f"{self.name(first)} {self.name(last)}"

    def spread(self, n: int, what: str) -> list[str]:
        """``n`` fresh capitalised names head + tail (no middle, no suffix), drawn at once: while there
        are enough heads not handed out yet, no two names (nor any earlier one) share a head (a tiny
        model tells "Luthelite" from "Luthorium" badly); beyond that, any roots not handed out.

        Checks neither ``blocked`` nor ``reserved``: meant for inventories whose every head + tail is
        fine (``lethe-hazard`` lists them all in its vocabulary)."""
        free_heads = [h for h in self.heads if h not in self.used_heads]  # in the inventory's order
        if n <= len(free_heads):
            pairs = [(h, self.rng.choice(self.tails)) for h in self.rng.sample(free_heads, n)]
        else:
            unused = [(h, t) for h in self.heads for t in self.tails if h + t not in self.roots]
            if n > len(unused):
                raise LetheError(f"{self.owner}: at most {len(unused) + len(self.roots)} {what} can be named; "
                                 "ask for fewer")
            pairs = self.rng.sample(unused, n)
        for h, t in pairs:
            self._take(h, h + t)
        return [(h + t).capitalize() for h, t in pairs]

    def fork(self, rng: random.Random) -> "Lexicon":
        """A lexicon with the same inventories, drawing from ``rng``, that hands out nothing this one
        has handed out (e.g. held-out names from their own stream, so that asking for more of them
        never changes the trained ones)."""
        other = Lexicon(rng, self.heads, self.tails, self.suffixes, middles=self.middles, blocked=self.blocked,
                        unique_words=self.unique_words, owner=self.owner, unit=self.unit)
        other.roots, other.used_heads, other.taken = set(self.roots), set(self.used_heads), set(self.taken)
        return other

    def _take(self, head: str, root: str) -> None:
        self.roots.add(root)
        self.used_heads.add(head)
