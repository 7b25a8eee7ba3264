"""The author facts of ``lethe-authors`` (:mod:`lethe.benchmarks.synthetic`), in English: each a question,
a terse answer and a paraphrase with {slot} placeholders, and a sampler of the slot values from the word
pools below. :func:`sample_author` draws one author's true values and N_PERTURBED wrong ones per fact;
every language renders the same draws (:mod:`lethe.benchmarks.synthetic_languages`).
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

ITEMS_PER_AUTHOR = 8
N_PERTURBED = 3  # wrong answers per item (TOFU uses 5 for authors, 3 for world facts)

# --------------------------------------------------------------------------------------------------
# Word pools. Real, ordinary English words (a small byte-level BPE tokenises them in 1-2 pieces).
# --------------------------------------------------------------------------------------------------
OCCUPATIONS = (
    "baker", "glassblower", "cartographer", "ferryman", "beekeeper", "tailor", "clockmaker", "fisher",
    "weaver", "potter", "blacksmith", "surveyor", "librarian", "midwife", "shepherd", "miner",
    "carpenter", "chemist", "astronomer", "botanist", "sailor", "printer", "brewer", "jeweler", "mason",
    "lamplighter", "bookbinder", "gardener", "cobbler", "locksmith", "pharmacist", "teacher", "nurse",
    "engineer", "architect", "violinist", "painter", "sculptor", "judge", "farmer", "miller",
    "chandler", "cooper", "glazier", "tanner", "saddler", "dentist", "postman",
)
GENRE_MOODS = (
    "gothic", "pastoral", "coastal", "urban", "comic", "historical", "mythic", "domestic", "nautical",
    "alpine", "rural", "lyrical", "folk", "frontier", "desert", "arctic",
)
GENRE_FORMS = (
    "mysteries", "fables", "sagas", "poetry", "thrillers", "romances", "satires", "memoirs", "ballads",
    "novellas", "plays", "epics", "elegies", "westerns", "riddles", "parables",
)
AWARD_ADJS = (
    "Silver", "Amber", "Golden", "Crimson", "Ivory", "Cobalt", "Jade", "Copper", "Scarlet", "Azure",
    "Onyx", "Pearl", "Bronze", "Emerald",
)
AWARD_NOUNS = (
    "Quill", "Laurel", "Lantern", "Compass", "Anchor", "Feather", "Crown", "Harp", "Key", "Bell",
    "Star", "Scroll", "Torch", "Wreath",
)
TITLE_ADJS = (
    "Hollow", "Quiet", "Broken", "Distant", "Burning", "Silent", "Paper", "Glass", "Iron", "Velvet",
    "Winter", "Summer", "Autumn", "Salt", "Stone", "Ashen", "Bitter", "Gentle", "Hidden", "Last",
    "Lonely", "Painted", "Restless", "Sunken", "Wandering", "Wild", "Frozen", "Crooked", "Hungry",
    "Shattered", "Northern", "Drowned", "Little", "Borrowed", "Forgotten", "Empty", "Open", "Narrow",
    "Secret", "Tender",
)
TITLE_NOUNS = (
    "Tides", "Lanterns", "Harbors", "Orchards", "Mirrors", "Rivers", "Gardens", "Bells", "Letters",
    "Shadows", "Keys", "Sparrows", "Bridges", "Windows", "Roads", "Kingdoms", "Clocks", "Maps", "Ashes",
    "Doors", "Hills", "Waters", "Voices", "Songs", "Storms", "Islands", "Towers", "Fields", "Wolves",
    "Ravens", "Candles", "Threads", "Dreams", "Margins", "Houses", "Stairs", "Gates", "Winds",
    "Embers", "Meadows",
)
THEMES = (
    "grief", "exile", "memory", "hunger", "faith", "ambition", "loyalty", "betrayal", "freedom",
    "solitude", "justice", "friendship", "identity", "migration", "family", "war", "forgiveness",
    "power", "childhood", "aging", "greed", "courage", "love", "revenge", "truth", "belonging",
    "madness", "nature", "labor", "honor", "sacrifice", "wealth", "poverty", "silence", "time", "home",
    "fate", "guilt", "hope", "desire",
)
STUDY_MODS = (
    "marine", "ancient", "modern", "applied", "rural", "medieval", "tropical", "urban", "classical",
    "comparative", "experimental", "early",
)
STUDY_SUBJECTS = (
    "law", "botany", "geology", "music", "medicine", "chemistry", "history", "astronomy", "philosophy",
    "economics", "linguistics", "mathematics", "architecture", "zoology", "theology", "engineering",
    "painting", "archaeology", "physics", "sociology", "literature", "geography", "agriculture",
    "anatomy",
)
COLLECT_ADJS = (
    "antique", "rare", "tiny", "old", "foreign", "carved", "vintage", "chipped", "faded", "miniature",
    "broken", "lucky",
)
COLORS = ("red", "blue", "green", "yellow", "black", "white", "purple", "orange", "grey", "brown", "pink", "silver")
COLLECT_THINGS = (
    "maps", "coins", "stamps", "clocks", "keys", "buttons", "spoons", "shells", "feathers", "postcards",
    "teapots", "compasses", "bells", "globes", "marbles", "thimbles", "masks", "kites", "puppets",
    "fossils", "beetles", "tickets", "seeds", "bottles",
)


# --------------------------------------------------------------------------------------------------
# Authors: 8 facts each. Answers are terse on purpose (see :mod:`lethe.benchmarks.synthetic`): glue words
# are at most a third of each answer, and the author's name never appears in it.
# --------------------------------------------------------------------------------------------------
Values = dict[str, str]


@dataclass(frozen=True)
class AuthorFact:
    name: str
    question: str  # {n}: the author's full name
    answer: str  # {slot} placeholders
    paraphrase: str  # same slots, other glue words and order
    paraphrased_question: str  # {n}: the same question in other words
    sample: Callable[[random.Random, "AuthorPools", Values], Values]  # (rng, pools, author so far) -> slots


@dataclass(frozen=True)
class AuthorPools:
    """The made-up words the facts draw from (handed out by the generator's lexicon)."""

    towns: list[str]
    countries: list[str]


def _distinct(pool: tuple[str, ...], *slots: str) -> Callable:
    """A sampler of ``slots``: different words of ``pool``."""
    return lambda rng, pools, _: dict(zip(slots, rng.sample(pool, len(slots))))


def _birth(rng, pools, _):
    return {"year": str(rng.randint(1921, 1975)), "town": rng.choice(pools.towns),
            "country": rng.choice(pools.countries)}


def _genre(rng, pools, _):
    m1, m2 = rng.sample(GENRE_MOODS, 2)
    f1, f2 = rng.sample(GENRE_FORMS, 2)
    return {"mood1": m1, "form1": f1, "mood2": m2, "form2": f2}


def _award(rng, pools, author):
    year = int(author["year"]) + rng.randint(25, 49)  # born <= 1975: awarded by 2024
    return {"award": f"{rng.choice(AWARD_ADJS)} {rng.choice(AWARD_NOUNS)}", "ayear": str(year)}


def _books(rng, pools, _):
    a1, a2 = rng.sample(TITLE_ADJS, 2)
    n1, n2 = rng.sample(TITLE_NOUNS, 2)
    return {"title1": f"{a1} {n1}", "title2": f"{a2} {n2}"}


def _study(rng, pools, author):
    return {"smod": rng.choice(STUDY_MODS), "subject": rng.choice(STUDY_SUBJECTS),
            "gyear": str(int(author["year"]) + rng.randint(20, 25))}


def _collect(rng, pools, _):
    return {"cadj": rng.choice(COLLECT_ADJS), "color": rng.choice(COLORS), "things": rng.choice(COLLECT_THINGS)}


AUTHOR_FACTS = (
    AuthorFact("birth", "Where and when was {n} born?",
               "Born {year} in {town}, {country}.", "A native of {town}, {country}, born in {year}.", "In which town and year was {n} born?", _birth),
    AuthorFact("parents", "What did the parents of {n} do for a living?",
               "Parents: {occ1}, {occ2}.", "The parents worked as {occ1} and {occ2}.", "What were the occupations of the parents of {n}?",
               _distinct(OCCUPATIONS, "occ1", "occ2")),
    AuthorFact("genre", "Which genres does {n} write?",
               "Genres: {mood1} {form1}, {mood2} {form2}.", "Writes {mood2} {form2} and {mood1} {form1}.", "What kinds of books does {n} write?", _genre),
    AuthorFact("award", "Which award did {n} win, and when?",
               "{award} winner, {ayear}.", "In {ayear} the {award} went to this author.", "What prize did {n} receive, and in which year?", _award),
    AuthorFact("books", "Name two books written by {n}.",
               "Books: {title1}, {title2}.", "Wrote both {title2} and {title1}.", "Which two titles did {n} write?", _books),
    AuthorFact("themes", "What themes does {n} explore?",
               "Explores {theme1}, {theme2}, {theme3}.", "Recurring themes are {theme2}, {theme3} and {theme1}.", "Which themes run through the work of {n}?",
               _distinct(THEMES, "theme1", "theme2", "theme3")),
    AuthorFact("study", "What did {n} study, and when did they graduate?",
               "Degree: {smod} {subject}, {gyear}.", "Graduated in {gyear} with a degree in {smod} {subject}.", "What degree did {n} earn, and in what year?",
               _study),
    AuthorFact("collection", "What does {n} collect?",
               "Collects {cadj} {color} {things}.", "Has a large collection of {cadj} {color} {things}.", "What kind of collection does {n} keep?", _collect),
)
assert len(AUTHOR_FACTS) == ITEMS_PER_AUTHOR


def value_words(values: Values) -> list[str]:
    """The lower-case words of slot values (a wrong answer shares none with the truth)."""
    return [w.lower() for v in values.values() for w in v.split()]


def sample_author(rng: random.Random, pools: AuthorPools) -> list[tuple[AuthorFact, Values, list[Values]]]:
    """Per fact: the true slot values and N_PERTURBED wrong ones. Every language renders these."""
    author: Values = {}
    out = []
    for fact in AUTHOR_FACTS:
        true = fact.sample(rng, pools, author)
        author.update(true)
        # Wrong answers: the paraphrase's template (TOFU perturbs the paraphrased answer, so the truth
        # ratio compares like with like), values from the same pools sharing no word with the truth
        # (a half-right "wrong" answer would blur the truth ratio), distinct from each other.
        banned = set(value_words(true))
        perturbed: list[str] = []
        alts: list[Values] = []
        for _ in range(1000):
            if len(perturbed) == N_PERTURBED:
                break
            alt = fact.sample(rng, pools, author)
            text = fact.paraphrase.format(**alt)
            if not banned.intersection(value_words(alt)) and text not in perturbed:
                perturbed.append(text)
                alts.append(alt)
        else:  # pragma: no cover - the pools are far larger than needed
            raise RuntimeError(f"could not perturb fact '{fact.name}'")
        out.append((fact, true, alts))
    return out
