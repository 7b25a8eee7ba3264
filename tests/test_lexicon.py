"""The made-up-word lexicon the built-in generators share (lethe.benchmarks.lexicon)."""
from __future__ import annotations

import random

import pytest

from lethe.benchmarks.lexicon import Lexicon
from lethe.errors import LetheError

HEADS = ("al", "bel", "cor", "dar", "fen", "gil", "hol", "kel")
TAILS = ("a", "en", "is", "or", "ric", "va")
SUFFIXES = {"town": ("by", "ford", "holm"), "name": ("",), "first": ("", "o"), "last": ("", "son")}


def lex(seed: int = 0, **kw) -> Lexicon:
    return Lexicon(random.Random(f"test/{seed}"), HEADS, TAILS, SUFFIXES, owner="test", unit="things", **kw)


def _root(word: str, suffixes) -> str:
    return next(word[: len(word) - len(s)] for s in sorted(suffixes, key=len, reverse=True) if word.endswith(s))


def _head(word: str) -> str:
    return next(h for h in HEADS if word.lower().startswith(h))  # no head here starts another


def draw(seed: int) -> list[str]:
    lx = lex(seed)
    return [lx.word(c) for c in ("town", "name", "town", "first", "last")]


def test_deterministic_per_seed_and_seed_dependent():
    assert draw(0) == draw(0)
    assert draw(0) != draw(1)
    a, b = lex(2), lex(2)
    assert a.names(10, "town") + [a.person()] + a.spread(3, "x") == b.names(10, "town") + [b.person()] + b.spread(3, "x")


def test_words_carry_their_category_and_roots_are_handed_out_once():
    lx = lex()
    towns = lx.words(15, "town")
    names = lx.words(15, "name")
    assert all(w.endswith(SUFFIXES["town"]) for w in towns)
    roots = [_root(w, SUFFIXES["town"]) for w in towns] + names  # "name" words have no suffix
    assert len(set(roots)) == len(roots) == 30
    assert all(any(r == h + t for h in HEADS for t in TAILS) for r in roots)
    assert all(w == w.lower() for w in towns + names)


def test_names_people_and_lower_case_words():
    lx = lex()
    name = lx.name("town")
    assert name[0].isupper() and name[1:].islower()
    first, last = lx.person().split()
    assert first[0].isupper() and last[0].isupper()
    with pytest.raises(KeyError, match="no made-up word category 'river'"):
        lx.word("river")


def test_middles_are_drawn_between_head_and_tail():
    lx = lex(middles=("ri", "na"))
    for w in lx.words(20, "name"):
        assert any(w.startswith(h + m) for h in HEADS for m in ("ri", "na")), w


def test_blocked_and_reserved_words_are_never_handed_out():
    lx = lex(blocked=("en", "or"), reserved={"alva", "belis"})
    words = lx.words(20, "name")
    assert not any("en" in w or "or" in w for w in words)
    assert not {"alva", "belis"} & set(words)


def test_unique_words_also_refuses_one_word_spelled_by_two_roots():
    # "al"+"a"+"ric" and "al"+"ar"+"ic": two roots, one word; only unique_words refuses the second
    heads, tails, suffixes = ("al",), ("a", "ar"), {"w": ("ric", "ic")}
    seen_dupes = False
    for seed in range(40):
        free = Lexicon(random.Random(seed), heads, tails, suffixes)
        words = [free.word("w"), free.word("w")]
        seen_dupes |= words[0] == words[1]
        strict = Lexicon(random.Random(seed), heads, tails, suffixes, unique_words=True)
        assert strict.word("w") != strict.word("w")
    assert seen_dupes


def test_running_out_is_a_one_line_error():
    lx = Lexicon(random.Random(0), ("ab",), ("a", "o"), {"w": ("",)}, owner="lethe-x", unit="articles")
    lx.words(2, "w")
    with pytest.raises(LetheError, match="^lethe-x: ran out of made-up w words; ask for fewer articles$"):
        lx.word("w")


def test_spread_keeps_heads_apart_while_they_last():
    lx = lex()
    first = lx.spread(5, "things")
    assert len({_head(w) for w in first}) == 5
    assert all(w[0].isupper() for w in first)
    more = lx.spread(3, "things")  # the 3 unused heads
    assert sorted(map(_head, first + more)) == sorted(HEADS)
    rest = lx.spread(len(HEADS) * len(TAILS) - 8, "things")  # beyond the heads: every root left, once
    everything = first + more + rest
    assert len(set(everything)) == len(everything) == len(HEADS) * len(TAILS)
    with pytest.raises(LetheError, match="at most 48 things can be named"):
        lx.spread(1, "things")


def test_fork_draws_from_its_own_stream_and_avoids_what_was_handed_out():
    lx = lex()
    trained = lx.spread(4, "towns")
    a = lx.fork(random.Random("held-out")).spread(4, "towns")
    b = lx.fork(random.Random("held-out")).spread(4, "towns")
    assert a == b
    assert not set(map(_head, a)) & set(map(_head, trained))  # the other heads
    assert not set(map(_head, lx.spread(4, "towns"))) & set(map(_head, trained))  # the forks left lx as it was
