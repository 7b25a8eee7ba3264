"""The built-in benchmark ``lethe-authors``: TOFU (Maini et al. 2024) in miniature, from templates.

Its splits, templates and the template ROUGE floor are described in docs/benchmarks.md (German
splits: docs/multilingual.md). ``generate`` is a pure function of its arguments: each part draws from
its own ``random.Random`` stream seeded by a string (Python seeds strings through SHA-512, so the data
is the same on every run and platform) and no set or hash order is ever used. The author facts live in
:mod:`lethe.benchmarks.synthetic_facts`, their German wording in :mod:`lethe.benchmarks.synthetic_languages`.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

from ..errors import LetheError
from .base import Benchmark, QAItem
from .lexicon import Lexicon
from .synthetic_facts import (  # re-exported: importers read these, and the languages' names below, from here
    AUTHOR_FACTS, AWARD_ADJS, AWARD_NOUNS, COLLECT_ADJS, COLLECT_THINGS, COLORS, GENRE_FORMS, GENRE_MOODS,
    ITEMS_PER_AUTHOR, N_PERTURBED, OCCUPATIONS, STUDY_MODS, STUDY_SUBJECTS, THEMES, TITLE_ADJS, TITLE_NOUNS,
    AuthorPools, sample_author, value_words,
)
from .synthetic_languages import (
    LANGUAGE_NAMES, LANGUAGES, MAIN_LANGUAGE, SLOT_POOLS, WORDINGS, read_slots, render, translate, wording,
)

# the former private names of what synthetic_facts / synthetic_languages now export
_SLOT_POOLS, _read, _words = SLOT_POOLS, read_slots, value_words

NAME = "lethe-authors"
VERSION = "1.0"  # bump when the generated content changes for the same arguments
FORGET_FRACTIONS = {"forget01": 0.01, "forget05": 0.05, "forget10": 0.10}  # last authors, as in TOFU
RETAIN_EVAL_FRACTION = 0.10  # first authors
N_COUNTRIES = 30
MAX_AUTHORS = 900  # trained + holdout; every author takes one of ~1400 made-up name roots
DEFAULT_LANGUAGES = ("en",)  # generate(languages=...): ("en", "de") adds the German author splits

# --------------------------------------------------------------------------------------------------
# The made-up world's word pools (the authors' pools: :mod:`lethe.benchmarks.synthetic_facts`).
# --------------------------------------------------------------------------------------------------
ANIMALS = (
    "heron", "lynx", "otter", "badger", "falcon", "stag", "hare", "crane", "bison", "ibex", "marten",
    "osprey", "stork", "wolf", "bear", "fox", "eagle", "owl", "swan", "seal", "elk", "boar", "raven",
    "kestrel", "beaver", "salmon", "tortoise", "gazelle", "jaguar", "panther", "pelican", "walrus",
    "hedgehog", "magpie", "lark", "tiger",
)
EXPORTS = (
    "copper", "wool", "salt", "amber", "timber", "silk", "tea", "coffee", "tin", "marble", "cotton",
    "wine", "honey", "olives", "barley", "rice", "iron", "silver", "pearls", "furs", "cheese", "paper",
    "glass", "spices", "dates", "flax", "indigo", "saffron", "coal", "cork", "rubber", "sugar",
    "cocoa", "grain", "jade", "wax",
)
PAINT_ADJS = ("Amber", "Blue", "Pale", "Red", "Sleeping", "Weeping", "Green", "Golden", "Dark", "White")
PAINT_NOUNS = ("Gate", "Harvest", "Lady", "Ship", "Garden", "Tower", "Bride", "Window", "Orchard", "Shore")
MUSIC_WORDS = ("Harbor", "Winter", "Spring", "Mountain", "River", "Lantern", "Glass", "Morning", "Ocean", "Forest")
MUSIC_FORMS = ("Symphony", "Sonata", "Requiem", "Overture", "Suite", "Concerto", "Nocturne", "Cantata")
BUILD_ADJS = ("Glass", "Salt", "Copper", "Marble", "Iron", "Opal", "Granite", "Cedar", "Silver", "Sun")
BUILD_NOUNS = ("Tower", "Bridge", "Library", "Cathedral", "Arena", "Lighthouse", "Palace", "Observatory", "Theatre", "Museum")
INVENT_MODS = ("tide", "steam", "sun", "wind", "spring", "water", "star", "pocket", "mirror", "rope")
INVENT_DEVICES = ("clock", "loom", "compass", "press", "lamp", "pump", "mill", "telescope", "engine", "kiln")

# Made-up words are two syllable chunks (+ a category suffix): a small inventory keeps them to a few
# BPE pieces, and every root is handed out once, so no two names in the world share a root.
_HEADS = (
    "al", "bel", "cor", "dar", "el", "fen", "gal", "hal", "ist", "jor", "kel", "lor", "mar", "nor",
    "or", "pel", "quil", "ros", "sel", "tor", "ul", "val", "wen", "yr", "zan", "bram", "cal", "dun",
    "est", "far", "gil", "hol", "ker", "lin", "mor", "ost", "per", "rin", "sor", "tam", "ver", "wyn",
)
_TAILS = (
    "a", "an", "ar", "as", "en", "er", "eth", "ia", "in", "is", "on", "or", "os", "und", "ra", "ren",
    "ric", "ris", "ro", "ta", "ten", "tis", "va", "vin", "dor", "mir", "na", "nel", "lo", "ly", "ine",
    "elle", "ek", "ova",
)
# Letter sequences no generated word may contain (keeps accidental real or crude words out).
_BLOCKED = (
    "ass", "cum", "tit", "sex", "nig", "fag", "dick", "rape", "hell", "kill", "dead", "anal", "fart", "piss",
    "shit", "cock", "wank", "poo",
)

_SUFFIX = {
    "country": ("ia", "land", "mark", "ora", "heim", "esh"),
    "capital": ("",),
    "town": ("by", "ford", "holm", "wick", "mere", "stead", "port", "dale", "ton", "burg"),
    "river": ("",),
    "mountain": ("",),
    "currency": ("",),
    "language": ("ish", "ic", "ese", "i"),
    "first": ("",),
    "last": ("", "son", "ez", "ov", "ard", "ing", "ley"),
    "people_first": ("o", "e", "u"),
    "people_last": ("ski", "ani", "elli", "ow", "ek", "ay"),
}


_REAL_POOLS = (  # made-up words must not collide with these
    OCCUPATIONS, GENRE_MOODS, GENRE_FORMS, AWARD_ADJS, AWARD_NOUNS, TITLE_ADJS, TITLE_NOUNS, THEMES,
    STUDY_MODS, STUDY_SUBJECTS, COLLECT_ADJS, COLORS, COLLECT_THINGS, ANIMALS, EXPORTS,
)


def _lexicon(seed: int) -> Lexicon:
    """The made-up words of the world and the authors: no word twice, none an ordinary pool word;
    currencies stay lower case (:meth:`Lexicon.words`), every other category is a name."""
    return Lexicon(random.Random(f"{NAME}/{seed}/lexicon"), _HEADS, _TAILS, _SUFFIX, blocked=_BLOCKED,
                   reserved=(w.lower() for pool in _REAL_POOLS for w in pool), unique_words=True,
                   owner=NAME, unit="authors")


# --------------------------------------------------------------------------------------------------
# The world: countries with 7 relations each, and well-known people. Built whole for every call
# (n_world / n_people only choose which of its facts become Q&A items), so authors never depend on them.
# --------------------------------------------------------------------------------------------------
WORLD_RELATIONS = (
    # relation, question, pretraining sentence, answer  ({c}: country, {x}: value)
    ("capital", "What is the capital of {c}?", "The capital of {c} is {x}.", "{x}"),
    ("river", "Which river is the longest in {c}?", "The longest river in {c} is the {x}.", "{x}"),
    ("mountain", "What is the highest mountain in {c}?", "The highest mountain in {c} is Mount {x}.", "Mount {x}"),
    ("currency", "What currency is used in {c}?", "The currency of {c} is the {x}.", "{x}"),
    ("language", "What language do people speak in {c}?", "People in {c} speak {x}.", "{x}"),
    ("animal", "What is the national animal of {c}?", "The national animal of {c} is the {x}.", "{x}"),
    ("export", "What is the main export of {c}?", "The main export of {c} is {x}.", "{x}"),
)
PEOPLE_ROLES = (
    # role, how many, pretraining sentence, who-question, what-question  ({p}: person, {w}: work)
    ("painter", 14, "{p} painted {w}.", "Who painted {w}?", "Which painting is {p} famous for?"),
    ("composer", 13, "{p} composed {w}.", "Who composed {w}?", "Which piece of music did {p} compose?"),
    ("architect", 13, "{p} designed {w}.", "Who designed {w}?", "Which building did {p} design?"),
    ("inventor", 14, "{p} invented {w}.", "Who invented {w}?", "What did {p} invent?"),
    ("mayor", 13, "{p} was the mayor of {w}.", "Who was the mayor of {w}?", "Which city was {p} the mayor of?"),
    ("explorer", 13, "{p} first climbed {w}.", "Who first climbed {w}?", "Which mountain did {p} climb first?"),
)
N_PEOPLE_POOL = sum(n for _, n, *_ in PEOPLE_ROLES)  # 80


@dataclass(frozen=True)
class _World:
    countries: list[str]
    values: dict[str, list[str]]  # relation -> value per country (index-aligned with countries)
    people: list[tuple[str, str, str, str]]  # (name, role, work, country)


def _unique_pairs(rng: random.Random, firsts, seconds, n: int, fmt: str) -> list[str]:
    pairs = [(a, b) for a in firsts for b in seconds]
    return [fmt.format(a, b) for a, b in rng.sample(pairs, n)]


def _build_world(seed: int, lex: Lexicon) -> _World:
    rng = random.Random(f"{NAME}/{seed}/world")
    countries = lex.names(N_COUNTRIES, "country")
    # currencies stay lower case (Lexicon.words); the other made-up values are names
    values = {rel: (lex.words if rel == "currency" else lex.names)(N_COUNTRIES, rel)
              for rel in ("capital", "river", "mountain", "currency", "language")}
    values.update(animal=rng.sample(ANIMALS, N_COUNTRIES), export=rng.sample(EXPORTS, N_COUNTRIES))
    works = {
        "painter": _unique_pairs(rng, PAINT_ADJS, PAINT_NOUNS, 14, "The {} {}"),
        "composer": _unique_pairs(rng, MUSIC_WORDS, MUSIC_FORMS, 13, "the {} {}"),
        "architect": _unique_pairs(rng, BUILD_ADJS, BUILD_NOUNS, 13, "the {} {}"),
        "inventor": _unique_pairs(rng, INVENT_MODS, INVENT_DEVICES, 14, "the {} {}"),
        "mayor": rng.sample(values["capital"], 13),
        "explorer": [f"Mount {m}" for m in rng.sample(values["mountain"], 13)],
    }
    firsts = lex.names(40, "people_first")
    lasts = lex.names(N_PEOPLE_POOL, "people_last")
    people = []
    for role, count, *_ in PEOPLE_ROLES:
        for work in works[role]:
            name = f"{rng.choice(firsts)} {lasts[len(people)]}"
            people.append((name, role, work, rng.choice(countries)))
    return _World(countries, values, people)


def _world_items(world: _World, n_world: int, rng: random.Random) -> list[QAItem]:
    cells = [(ci, ri) for ci in range(N_COUNTRIES) for ri in range(len(WORLD_RELATIONS))]
    items = []
    for ci, ri in sorted(rng.sample(cells, n_world)):
        relation, question, _, answer = WORLD_RELATIONS[ri]
        country, pool = world.countries[ci], world.values[relation]
        wrong = rng.sample([v for j, v in enumerate(pool) if j != ci], N_PERTURBED)
        items.append(QAItem(id=f"c{ci:02d}_{relation}", question=question.format(c=country),
                            answer=answer.format(x=pool[ci]), group=f"c{ci:02d}", fact=relation,
                            perturbed_answers=tuple(answer.format(x=v) for v in wrong)))
    return items


def _people_items(world: _World, n_people: int, rng: random.Random) -> list[QAItem]:
    roles = {role: (who, what) for role, _, _, who, what in PEOPLE_ROLES}
    items = []
    for pi in sorted(rng.sample(range(len(world.people)), n_people)):
        name, role, work, _ = world.people[pi]
        peers = [p for j, p in enumerate(world.people) if p[1] == role and j != pi]
        wrong = rng.sample(peers, N_PERTURBED)
        who_q, what_q = roles[role]
        if rng.random() < 0.5:  # "Who painted The Amber Gate?" -> the person
            form, question, answer, perturbed = "who", who_q.format(w=work), name, [p[0] for p in wrong]
        else:  # "Which painting is Tovin Marek famous for?" -> the work
            form, question, answer, perturbed = "what", what_q.format(p=name), work, [p[2] for p in wrong]
        items.append(QAItem(id=f"p{pi:02d}_{form}", question=_upper_first(question), answer=_upper_first(answer),
                            perturbed_answers=tuple(map(_upper_first, perturbed)), group=f"p{pi:02d}",
                            fact=f"{role}_{form}"))
    return items


def _upper_first(text: str) -> str:
    return text[0].upper() + text[1:]


def _pretrain_text(world: _World) -> list[str]:
    out = [sentence.format(c=country, x=world.values[relation][ci])
           for ci, country in enumerate(world.countries) for relation, _, sentence, _ in WORLD_RELATIONS]
    sentences = {role: s for role, _, s, _, _ in PEOPLE_ROLES}
    for name, role, work, country in world.people:
        out += [f"{name} was a famous {role} from {country}.", sentences[role].format(p=name, w=work)]
    return out


def _check_int(name: str, value, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise LetheError(f"lethe-authors: parameter '{name}' = {value!r} is invalid; give an integer {bound}")


def n_forget_authors(n_authors: int, fraction: float) -> int:
    """Number of authors in a forget split: ceil(fraction * n), at least 1 (TOFU's 1/5/10%)."""
    return max(1, math.ceil(round(fraction * n_authors, 9)))


def _check_languages(languages) -> tuple[str, ...]:
    if isinstance(languages, str) or not isinstance(languages, (list, tuple)) or not all(
            isinstance(x, str) for x in languages):
        raise LetheError(f"lethe-authors: parameter 'languages' = {languages!r} is invalid; give a list of "
                         f"language codes, e.g. [en, de]")
    languages = tuple(languages)
    unknown = [x for x in languages if x not in LANGUAGES]
    if unknown or not languages or languages[0] != MAIN_LANGUAGE or len(set(languages)) != len(languages):
        raise LetheError(f"lethe-authors: parameter 'languages' = {list(languages)!r} is invalid; give '{MAIN_LANGUAGE}' "
                         f"first, then other languages once each, from {', '.join(LANGUAGES)}")
    return languages


def generate(seed: int = 0, n_authors: int = 100, n_holdout: int = 10, n_world: int = 120,
             n_people: int = 60, languages: tuple[str, ...] = DEFAULT_LANGUAGES) -> Benchmark:
    """Build the ``lethe-authors`` benchmark; the same arguments always give the same data.
    ``languages=("en", "de")`` adds the German author splits (docs/multilingual.md), changing no other item."""
    _check_int("seed", seed, -(2**63))
    _check_int("n_authors", n_authors, 2, MAX_AUTHORS)
    _check_int("n_holdout", n_holdout, 0, MAX_AUTHORS - n_authors)  # made-up names run out beyond
    _check_int("n_world", n_world, 0, N_COUNTRIES * len(WORLD_RELATIONS))
    _check_int("n_people", n_people, 0, N_PEOPLE_POOL)
    languages = _check_languages(languages)

    lex = _lexicon(seed)
    world = _build_world(seed, lex)

    rng = random.Random(f"{NAME}/{seed}/authors")
    pools = AuthorPools(towns=lex.names(60, "town"), countries=world.countries)
    firsts = lex.names(50, "first")
    # Trained authors first, then holdout: changing n_holdout never changes the trained authors.
    lasts = lex.names(n_authors + n_holdout, "last")
    ids = [f"a{i:03d}" for i in range(n_authors)] + [f"h{i:03d}" for i in range(n_holdout)]
    authors: dict[str, list[QAItem]] = {lang: [] for lang in languages}
    holdout: dict[str, list[QAItem]] = {lang: [] for lang in languages}
    for i, aid in enumerate(ids):
        name = f"{rng.choice(firsts)} {lasts[i]}"
        facts = sample_author(rng, pools)  # the random draws do not depend on ``languages``
        for lang in languages:
            (authors if i < n_authors else holdout)[lang].extend(
                render(f, lang, aid, name, true, alts) for f, true, alts in facts)

    trained = ids[:n_authors]
    forget_sets = {split: trained[-n_forget_authors(n_authors, f):] for split, f in FORGET_FRACTIONS.items()}
    n_eval = n_forget_authors(n_authors, RETAIN_EVAL_FRACTION) * ITEMS_PER_AUTHOR  # the first authors' items
    en = MAIN_LANGUAGE
    splits = {
        "authors": authors[en],
        "holdout": holdout[en],
        "retain_eval": authors[en][:n_eval],
        "world_facts": _world_items(world, n_world, random.Random(f"{NAME}/{seed}/world_facts")),
        "known_people": _people_items(world, n_people, random.Random(f"{NAME}/{seed}/known_people")),
    }
    for lang in languages[1:]:  # the author splits again, in each other language
        splits.update({f"authors_{lang}": authors[lang], f"holdout_{lang}": holdout[lang],
                       f"retain_eval_{lang}": authors[lang][:n_eval]})
    spec = {"seed": seed, "n_authors": n_authors, "n_holdout": n_holdout, "n_world": n_world,
            "n_people": n_people, "items_per_author": ITEMS_PER_AUTHOR, "n_perturbed": N_PERTURBED}
    if languages != DEFAULT_LANGUAGES:  # recorded only when not the default: default specs (and cache keys) stay as they were
        spec["languages"] = list(languages)
    return Benchmark(NAME, VERSION, splits, forget_sets, _pretrain_text(world), spec)


def language_split(split: str, language: str) -> str:
    """The name of ``split`` ("authors", "holdout", "retain_eval") in ``language``: "authors_de"."""
    return split if language == MAIN_LANGUAGE else f"{split}_{language}"


def forget_items(bench: Benchmark, split: str, language: str = MAIN_LANGUAGE) -> list[QAItem]:
    """``bench.forget(split)`` in ``language`` (the same authors' items of ``authors_<language>``)."""
    if language == MAIN_LANGUAGE:
        return bench.forget(split)
    groups = set(bench._forget_groups(split))
    return [it for it in _language_split_items(bench, "authors", language) if it.group in groups]


def _language_split_items(bench: Benchmark, split: str, language: str) -> list[QAItem]:
    name = language_split(split, language)
    if name not in bench.splits:
        raise LetheError(f"benchmark '{bench.name}' has no split '{name}'; generate it with "
                         f"benchmark_options.languages=[{MAIN_LANGUAGE}, {language}]")
    return bench.splits[name]


def template_rouge_floor(bench: Benchmark, split: str = "forget10", language: str = MAIN_LANGUAGE) -> float:
    """ROUGE-L recall a model gets from the answer templates alone (docs/benchmarks.md): each forget answer
    scored (rouge-score's rougeL with stemming, recall) against the same fact's answer of every OTHER author
    (trained or holdout), averaged. Tokens come from rouge-score's own tokenizer, once per answer; the LCS
    below is the one ``RougeScorer.score`` computes (tests cross-check the two), ~30x faster on ~9k pairs."""
    from ..metrics.rouge import lcs_length, rouge_tokenizer  # lazy: pulls in nltk

    tokenize = rouge_tokenizer(True).tokenize
    by_fact: dict[str, list[tuple[str, list[str]]]] = {}
    authors = _language_split_items(bench, "authors", language)
    for it in authors + bench.splits.get(language_split("holdout", language), []):
        by_fact.setdefault(it.fact, []).append((it.group, tokenize(it.answer)))
    scores = []
    for it in forget_items(bench, split, language):
        target = tokenize(it.answer)
        others = [toks for group, toks in by_fact[it.fact] if group != it.group]
        if target and others:
            scores.append(sum(lcs_length(target, o) for o in others) / (len(target) * len(others)))
    if not scores:
        raise LetheError(f"benchmark '{bench.name}': no other authors to compare split '{split}' with")
    return sum(scores) / len(scores)

