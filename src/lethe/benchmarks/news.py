"""``lethe-news``: a MUSE-style corpus of fictitious news articles, and a loader for MUSE's own files.

MUSE (Shi et al. 2024, "MUSE: Machine Unlearning Six-Way Evaluation for Language Models") asks a
model trained on news articles to forget some of them and measures three things on the forget set:
verbatim memorisation (VerbMem: continue an article from its first words), knowledge memorisation
(KnowMem: answer questions about it) and privacy leakage (PrivLeak: membership inference of forget
against holdout articles, relative to a model retrained without them). This module builds the same
kind of data, small enough for a tiny Llama on two CPU cores:

  forget    n_forget articles, to be unlearned
  retain    n_retain articles, kept (the retain set of unlearning methods and of the retain model)
  holdout   n_holdout articles, never trained on (the non-members of membership inference)

Each article is 4-8 sentences about a made-up town (an opening, a festival, a cup final, a new
species, a council vote, a new factory, a snowstorm, a premiere), with made-up people, organisations,
dates and numbers; nothing in it is real, nothing harmful. For each article there are 2-3 KnowMem
questions about facts stated in it (answers are short phrases) and one VerbMem probe: the first
``prefix_words`` words as the prompt, the following ``continuation_words`` words as the ground truth.

``generate`` is a pure function of its arguments: one ``random.Random`` stream seeded by a string
(Python seeds strings through SHA-512, so the data is the same on every run and platform), no set or
hash order. Every made-up name (town, person, company, ...) is handed out once in the whole corpus,
so no fact of a forget article is stated in a retain article.

:func:`load_muse` reads the public MUSE data (News or Books) from a local folder in the layout of
the MUSE repository (``swj0419/muse_bench``, ``data/<corpus>/``) into the same :class:`NewsCorpus`.
"""
from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import LetheError
from .base import QAItem

NAME = "lethe-news"
VERSION = "1.0"  # bump when the generated content changes for the same arguments


# --------------------------------------------------------------------------------------------------
# The corpus
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Document:
    """One text of the corpus: an article (built-in) or a chunk of a MUSE raw file."""

    id: str
    text: str

    def item(self) -> QAItem:
        """As a training item: no question, so :func:`lethe.train.unlearn` scores every token."""
        return QAItem(id=self.id, question="", answer=self.text)


@dataclass(frozen=True)
class Continuation:
    """A VerbMem probe: the model continues ``prompt``; its output is scored against ``gt``."""

    id: str
    prompt: str
    gt: str


@dataclass
class NewsCorpus:
    """Documents, probes and the spec of a verbatim-unlearning corpus.

    forget / retain / holdout: documents to unlearn, to keep, never trained on.
    verbmem_forget (verbmem_retain): continuation probes on forget (retain) documents.
    knowmem_forget / knowmem_retain: questions about forget / retain documents (``QAItem``).
    knowmem_icl: few-shot examples prepended to KnowMem prompts ({"forget": [...], "retain": [...]};
        MUSE's ``*_qa_icl.json``; empty for the built-in corpus, whose models are trained on Q&A).
    privleak_forget / privleak_holdout: the members and non-members of membership inference.
    knowmem_train_forget / knowmem_train_retain: Q&A the built-in models are trained on with the
        articles (every question of every article; [] for MUSE, whose target was not).
    """

    name: str
    version: str
    forget: list[Document]
    retain: list[Document]
    holdout: list[Document]
    verbmem_forget: list[Continuation]
    knowmem_forget: list[QAItem]
    knowmem_retain: list[QAItem]
    privleak_forget: list[Document]
    privleak_holdout: list[Document]
    verbmem_retain: list[Continuation] = field(default_factory=list)
    knowmem_icl: dict[str, list[QAItem]] = field(default_factory=dict)
    knowmem_train_forget: list[QAItem] = field(default_factory=list)
    knowmem_train_retain: list[QAItem] = field(default_factory=list)
    spec: dict = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------
# Made-up names. Two syllable chunks (+ a suffix per category); a root is handed out once.
# --------------------------------------------------------------------------------------------------
_HEADS = (
    "ab", "bar", "cas", "del", "dor", "em", "fal", "gar", "hel", "ith", "kal", "lam", "mer", "nal",
    "ol", "pra", "quen", "ral", "sab", "tel", "ur", "vos", "wal", "yen", "zor", "bren", "cor", "dun",
    "eld", "fir", "gel", "hob", "jan", "kor", "lis", "mal", "ner", "orm", "pel", "ros", "sten", "tov",
)
_TAILS = (
    "a", "al", "an", "ar", "ber", "da", "den", "el", "en", "er", "ga", "im", "in", "is", "ka", "ken",
    "la", "lin", "lo", "man", "mi", "na", "nor", "o", "on", "ra", "rik", "ro", "sa", "sen", "ta",
    "ti", "to", "va", "ven", "vik",
)
# an optional middle syllable (in half of the names): 42 x 13 x 36 = 19,656 roots, ~10 per article
_MIDS = ("",) * 12 + ("ri", "na", "to", "le", "mo", "sa", "ve", "di", "ko", "lu", "be", "ta")
_SUFFIX = {
    "town": ("by", "ford", "holm", "wick", "mere", "stead", "port", "dale", "ton", "burg", "haven", "field"),
    "first": ("", "a", "o", "e"),
    "last": ("", "son", "berg", "ley", "ard", "ing", "ström", "ez"),
    "name": ("", "is", "ar", "en", "or"),  # companies, rivers, streets, funds, halls ...
}
_BLOCKED = (
    "ass", "cum", "tit", "sex", "nig", "fag", "dick", "rape", "hell", "kill", "dead", "anal", "fart", "piss",
    "shit", "cock", "wank", "poo", "nazi", "slut", "whor", "jew", "isis",
)


class _Lexicon:
    """Hands out unique made-up words; a root is never reused across categories or articles."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.roots: set[str] = set()  # membership only, never iterated (ordering stays deterministic)

    def word(self, category: str) -> str:
        for _ in range(100_000):
            root = self.rng.choice(_HEADS) + self.rng.choice(_MIDS) + self.rng.choice(_TAILS)
            word = root + self.rng.choice(_SUFFIX[category])
            if root in self.roots or any(b in word for b in _BLOCKED):
                continue
            self.roots.add(root)
            return word.capitalize()
        raise LetheError(f"{NAME}: ran out of made-up {category} names; ask for fewer articles")

    def person(self) -> str:
        return f"{self.word('first')} {self.word('last')}"


# --------------------------------------------------------------------------------------------------
# Word pools: ordinary English words only.
# --------------------------------------------------------------------------------------------------
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")
BUILDINGS = ("library", "bridge", "swimming pool", "railway station", "concert hall", "sports hall",
             "market hall", "health centre", "ferry terminal", "school")
NEW_USES = ("youth club", "cafe", "museum", "bicycle workshop", "music school", "community kitchen")
BANDS = ("town brass band", "school choir", "fire brigade band", "folk orchestra", "youth drum group")
FESTIVALS = ("Lantern Festival", "Harvest Fair", "Kite Festival", "Cheese Market", "Boat Festival",
             "Apple Festival", "Folk Music Week", "Flower Show")
PRIZE_ITEMS = ("a pumpkin that weighed {n} kilograms", "a kite that stayed in the air for {n} minutes",
               "a cake with {n} layers", "a quilt made from {n} pieces of cloth",
               "a model ship built from {n} matchsticks", "a loaf of bread {n} centimetres long")
FOODS = ("smoked fish", "honey cakes", "apple pies", "hot chestnuts", "goat cheese", "plum jam",
         "onion soup", "sweet pretzels", "roasted corn", "berry tarts")
CAUSES = ("new lifeboat", "school library", "animal shelter", "park benches", "swimming lessons",
          "children's hospital ward", "village bus", "music school")
TEAM_NOUNS = ("Rovers", "Larks", "Wanderers", "Harriers", "Otters", "Falcons", "Rangers", "Herons",
              "Foxes", "Millers")
CUPS = ("Valley Cup", "Coast Cup", "Spring Trophy", "River Shield", "Founders Cup", "Lakeside Cup")
TROPHY_THINGS = ("bowl", "jug", "plate", "horn", "bell", "oar")
CREATURES = ("beetle", "frog", "snail", "moth", "spider", "lizard", "dragonfly", "shrimp", "newt", "bee")
HABITATS = ("the reed beds of the river", "the caves above the town", "the old oak forest",
            "the salt marshes on the coast", "the moss of the high moor", "the ponds of the botanical garden")
COLORS = ("red", "blue", "green", "yellow", "orange", "purple", "white", "black", "golden", "silver")
PROJECTS = ("park", "bus station", "cycle path", "skate park", "playground", "public garden",
            "car park", "sports field", "fish market", "water tower")
COMMITTEES = ("transport", "planning", "parks", "housing", "finance", "culture")
SHOPS = ("bakery", "flower shop", "bookshop", "shoe shop", "bicycle shop", "hardware store", "cafe",
         "toy shop")
OLD_THINGS = ("old fountain", "war memorial", "bandstand", "stone cross", "clock tower", "old kiosk")
PRODUCTS = (("bicycle", "bicycles"), ("piano", "pianos"), ("umbrella", "umbrellas"), ("tile", "tiles"),
            ("boot", "boots"), ("kite", "kites"), ("clock", "clocks"), ("bottle", "glass bottles"),
            ("toy", "wooden toys"), ("lamp", "lamps"), ("tool", "garden tools"), ("sail", "sails"))
SUPPLIES = ("timber", "steel", "wool", "milk", "glass", "cardboard", "paint", "leather")
DIRECTIONS = ("south", "west", "south-west", "sea", "east", "south-east")
LANDSCAPES = ("hills", "lakes", "cliffs", "forests", "marshes", "river valleys", "vineyards", "dunes")
ROLES2 = ("retired teacher", "student", "park ranger", "fisherman", "local farmer", "school pupil",
          "volunteer", "postman")


def _thousands(n: int) -> str:
    return f"{n:,}"


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _date(rng: random.Random) -> tuple[str, str, str]:
    return rng.choice(WEEKDAYS), str(rng.randint(1, 28)), rng.choice(MONTHS)


# --------------------------------------------------------------------------------------------------
# Topics: a lead sentence (always first), body sentences (a subset, in this order) and the KnowMem
# questions each sentence answers. {slots} are filled from ``slots(rng, lex)``.
# --------------------------------------------------------------------------------------------------
QA = tuple[str, str]  # (question, answer) templates


@dataclass(frozen=True)
class Topic:
    name: str
    slots: Callable[[random.Random, _Lexicon], dict[str, str]]
    lead: str
    lead_qa: tuple[QA, ...]
    body: tuple[tuple[str, tuple[QA, ...]], ...]  # (sentence, questions it answers)


def _opening_slots(rng, lex):
    wd, d, m = _date(rng)
    p1 = lex.person()
    return dict(weekday=wd, day=d, month=m, town=lex.word("town"), building=rng.choice(BUILDINGS), p1=p1,
                p1_last=p1.split()[1], cost=f"{rng.randint(2, 48)}.{rng.randint(1, 9)}",
                firm=f"{lex.word('name')} Builders", years=str(rng.randint(2, 6)),
                crowd=_thousands(rng.randrange(300, 5000, 10)), band=rng.choice(BANDS), p2=lex.person(),
                town2=lex.word("town"), hour=rng.choice(("seven", "eight", "nine", "ten")),
                panels=str(rng.randint(40, 400)), homes=str(rng.randint(10, 90)),
                school=lex.word("name"), street=lex.word("name"), newuse=rng.choice(NEW_USES))


def _festival_slots(rng, lex):
    wd, _, _ = _date(rng)
    prize = rng.choice(PRIZE_ITEMS).format(n=rng.randint(12, 480))
    food1, food2 = rng.sample(FOODS, 2)
    return dict(weekday=wd, town=lex.word("town"), festival=rng.choice(FESTIVALS), nth=_ordinal(rng.randint(3, 60)),
                visitors=_thousands(rng.randrange(2000, 90000, 100)), ndays=str(rng.randint(2, 9)),
                p1=lex.person(), org=f"{lex.word('name')} Society", since=str(rng.randint(1990, 2022)),
                p2=lex.person(), prize=prize, river=lex.word("name"), food1=food1, food2=food2,
                boats=str(rng.randint(12, 140)), money=_thousands(rng.randrange(5000, 250000, 500)),
                cause=rng.choice(CAUSES), month2=rng.choice(MONTHS))


def _sports_slots(rng, lex):
    wd, _, _ = _date(rng)
    town = lex.word("town")
    a, b = rng.sample(TEAM_NOUNS, 2)
    s1 = rng.randint(1, 5)
    p1 = lex.person()
    return dict(weekday=wd, town=town, team1=f"{town} {a}", team2=f"{lex.word('town')} {b}", score1=str(s1),
                score2=str(rng.randint(0, s1 - 1)), cup=rng.choice(CUPS), p1=p1, minute=_ordinal(rng.randint(3, 89)),
                year=str(rng.randint(1950, 2020)), crowd=_thousands(rng.randrange(800, 25000, 50)),
                ground=lex.word("name"), p2=lex.person(), weeks=str(rng.randint(3, 12)),
                team3=f"{lex.word('town')} {rng.choice(TEAM_NOUNS)}", month2=rng.choice(MONTHS),
                trophy=rng.choice(TROPHY_THINGS), p3=lex.person())


def _science_slots(rng, lex):
    wd, _, _ = _date(rng)
    return dict(weekday=wd, town=lex.word("town"), university=lex.word("name"), creature=rng.choice(CREATURES),
                habitat=rng.choice(HABITATS), p1=lex.person(), years=str(rng.randint(2, 15)),
                size=str(rng.randint(3, 90)), color=rng.choice(COLORS), p2=lex.person(), role2=rng.choice(ROLES2),
                count=str(rng.randint(4, 60)), fund=lex.word("name"), months=str(rng.randint(6, 36)),
                journal=f"{lex.word('name')} Nature", month2=rng.choice(MONTHS))


def _council_slots(rng, lex):
    wd, _, _ = _date(rng)
    yes = rng.randint(9, 31)
    return dict(weekday=wd, town=lex.word("town"), yes=str(yes), no=str(rng.randint(1, yes - 1)),
                project=rng.choice(PROJECTS), street=lex.word("name"), p1=lex.person(),
                committee=rng.choice(COMMITTEES), month2=rng.choice(MONTHS), months=str(rng.randint(4, 30)),
                cost=f"{rng.randint(1, 30)}.{rng.randint(1, 9)}", region=lex.word("name"),
                residents=_thousands(rng.randrange(200, 4000, 10)), pct=str(rng.randint(51, 94)),
                p2=lex.person(), shop=rng.choice(SHOPS), old=rng.choice(OLD_THINGS), park=lex.word("name"))


def _business_slots(rng, lex):
    wd, _, _ = _date(rng)
    d2, m2 = str(rng.randint(1, 28)), rng.choice(MONTHS)
    one, many = rng.choice(PRODUCTS)
    return dict(weekday=wd, town=lex.word("town"), product1=one, product=many, company=f"{lex.word('name')} Works",
                jobs=str(rng.randrange(40, 900, 5)), year=str(rng.randint(1880, 2015)), p1=lex.person(),
                countries=str(rng.randint(3, 60)), station=lex.word("name"), month2=rng.choice(MONTHS),
                p2=lex.person(), pct=str(rng.randint(3, 45)), day2=d2, month3=m2, supply=rng.choice(SUPPLIES))


def _weather_slots(rng, lex):
    wd = rng.choice(WEEKDAYS)
    return dict(weekday=wd, town=lex.word("town"), roads=str(rng.randint(3, 40)), line=lex.word("name"),
                hours=str(rng.randint(2, 30)), cm=str(rng.randint(20, 140)), place=lex.word("name"),
                p1=lex.person(), school=lex.word("name"), p2=lex.person(),
                homes=_thousands(rng.randrange(100, 9000, 10)), weekday2=rng.choice(WEEKDAYS),
                direction=rng.choice(DIRECTIONS))


def _arts_slots(rng, lex):
    wd, d, m = _date(rng)
    composer = lex.person()
    return dict(weekday=wd, day=d, month=m, town=lex.word("town"), orchestra=lex.word("name"), composer=composer,
                composer_last=composer.split()[1],
                title=f"{rng.choice(COLORS).capitalize()} {rng.choice(LANDSCAPES).capitalize()}",
                p2=lex.person(), year=str(rng.randint(1995, 2023)), minutes=str(rng.randint(18, 75)),
                players=str(rng.randint(30, 110)), landscape=rng.choice(LANDSCAPES),
                seats=_thousands(rng.randrange(300, 2500, 10)),
                hall=lex.word("name"), days=str(rng.randint(1, 9)), month2=rng.choice(MONTHS),
                towns=str(rng.randint(4, 15)))


TOPICS: tuple[Topic, ...] = (
    Topic(
        "opening", _opening_slots,
        "On {weekday} {day} {month}, Mayor {p1} opened the new {building} in {town}, a project that cost {cost} "
        "million crowns.",
        (("Who opened the new {building} in {town}?", "Mayor {p1}"),
         ("How much did the new {building} in {town} cost?", "{cost} million crowns"),
         ("When did the new {building} in {town} open?", "{weekday} {day} {month}")),
        (("Work on the {building} began {years} years ago and was carried out by {firm}.",
          (("Which company built the new {building} in {town}?", "{firm}"),)),
         ("About {crowd} people came to the opening, and the {band} played on the steps outside.",
          (("How many people came to the opening of the {building} in {town}?", "about {crowd}"),)),
         ("The building was designed by the architect {p2}, who grew up in {town2}.",
          (("Who designed the new {building} in {town}?", "{p2}"),
           ("Where did the architect of the {building} in {town} grow up?", "{town2}"))),
         ("{p1_last} said the {building} would be open every day from {hour} in the morning.",
          (("From what time will the new {building} in {town} open every day?", "from {hour} in the morning"),)),
         ("Its roof carries {panels} solar panels, enough to power {homes} homes.",
          (("How many solar panels are on the roof of the {building} in {town}?", "{panels}"),)),
         ("Children from the {school} School cut the ribbon together with the mayor.",
          (("Which school's children cut the ribbon at the {building} in {town}?", "the {school} School"),)),
         ("The old {building} on {street} Street will become a {newuse}.",
          (("What will the old {building} in {town} become?", "a {newuse}"),))),
    ),
    Topic(
        "festival", _festival_slots,
        "The {nth} {festival} of {town} drew {visitors} visitors over {ndays} days, the organisers said on {weekday}.",
        (("How many visitors came to the {festival} of {town}?", "{visitors}"),
         ("How many days did the {festival} of {town} last?", "{ndays} days")),
        (("The festival was organised by {p1}, who has led the {org} since {since}.",
          (("Who organised the {festival} of {town}?", "{p1}"),
           ("Which society does the organiser of the {festival} of {town} lead?", "the {org}"))),
         ("The main prize went to {p2} for {prize}.",
          (("Who won the main prize at the {festival} of {town}?", "{p2}"),)),
         ("Stalls along the {river} river sold {food1} and {food2}.",
          (("Along which river did the stalls of the {festival} of {town} stand?", "the {river} river"),)),
         ("A parade of {boats} painted boats closed the last evening.",
          (("How many painted boats were in the parade of the {festival} of {town}?", "{boats}"),)),
         ("Ticket sales raised {money} crowns for the town's {cause}.",
          (("What will the ticket sales of the {festival} of {town} pay for?", "the town's {cause}"),
           ("How much did the ticket sales of the {festival} of {town} raise?", "{money} crowns"))),
         ("Next year's festival will take place in {month2}.",
          (("When will the next {festival} of {town} take place?", "in {month2}"),)),
         ("Volunteers from the {org} collected the rubbish every night.", ())),
    ),
    Topic(
        "sports", _sports_slots,
        "{team1} beat {team2} by {score1} to {score2} in the final of the {cup} in {town} on {weekday}.",
        (("Which team won the final of the {cup} in {town}?", "{team1}"),
         ("What was the score of the final of the {cup} in {town}?", "{score1} to {score2}")),
        (("The winning goal was scored by {p1} in the {minute} minute.",
          (("Who scored the winning goal in the final of the {cup} in {town}?", "{p1}"),)),
         ("It was the club's first title since {year}.",
          (("In which year did {team1} last win a title before the {cup}?", "{year}"),)),
         ("A crowd of {crowd} watched the match at the {ground} ground.",
          (("How many people watched the final of the {cup} in {town}?", "{crowd}"),
           ("At which ground was the final of the {cup} in {town} played?", "the {ground} ground"))),
         ("Coach {p2} said the players had trained every morning for {weeks} weeks.",
          (("Who is the coach of {team1}?", "{p2}"),)),
         ("The trophy, a silver {trophy}, was handed over by {p3}.",
          (("Who handed over the trophy of the {cup} in {town}?", "{p3}"),
           ("What is the trophy of the {cup} in {town}?", "a silver {trophy}"))),
         ("The team will play {team3} in the regional league in {month2}.",
          (("Which team will {team1} play in the regional league?", "{team3}"),)),
         ("Fans celebrated in the streets of {town} until late at night.", ())),
    ),
    Topic(
        "science", _science_slots,
        "Researchers at the {university} University in {town} have found a new species of {creature} living in "
        "{habitat}, the team said on {weekday}.",
        (("What new species did researchers in {town} find?", "a new species of {creature}"),
         ("Where does the new {creature} found by researchers in {town} live?", "in {habitat}")),
        (("The study was led by Professor {p1}, who first noticed the {creature} {years} years ago.",
          (("Who led the study of the new {creature} found near {town}?", "Professor {p1}"),)),
         ("The animal is about {size} millimetres long and has {color} spots on its back.",
          (("How long is the new {creature} found near {town}?", "about {size} millimetres"),
           ("What colour are the spots of the new {creature} found near {town}?", "{color}"))),
         ("The team has named it after {p2}, a {role2} who helped to collect samples.",
          (("Who is the new {creature} found near {town} named after?", "{p2}"),)),
         ("Only {count} of the animals have been seen so far.",
          (("How many of the new {creature} found near {town} have been seen?", "{count}"),)),
         ("The work was paid for by the {fund} Fund and took {months} months.",
          (("Which fund paid for the study of the new {creature} near {town}?", "the {fund} Fund"),)),
         ("The findings will be published in the journal {journal} in {month2}.",
          (("In which journal will the study of the new {creature} near {town} appear?", "{journal}"),)),
         ("Visitors are asked to keep to the paths so that the animals are not disturbed.", ())),
    ),
    Topic(
        "council", _council_slots,
        "The council of {town} voted {yes} to {no} on {weekday} to build a new {project} on {street} Street.",
        (("What did the council of {town} vote to build?", "a new {project}"),
         ("What was the result of the council vote in {town} on the new {project}?", "{yes} to {no}")),
        (("The plan was put forward by Councillor {p1}, who chairs the {committee} committee.",
          (("Who put forward the plan for a new {project} in {town}?", "Councillor {p1}"),)),
         ("Work is expected to start in {month2} and to take {months} months.",
          (("When will work on the new {project} in {town} start?", "in {month2}"),)),
         ("The project will cost {cost} million crowns, paid partly by a grant from the {region} region.",
          (("How much will the new {project} in {town} cost?", "{cost} million crowns"),)),
         ("A survey of {residents} residents found that {pct} percent supported the plan.",
          (("What share of residents supported the new {project} in {town}?", "{pct} percent"),)),
         ("{p2}, who runs a {shop} on the street, said she welcomed the decision.",
          (("Who runs a {shop} on {street} Street in {town}?", "{p2}"),)),
         ("The {old} that stands on the site today will be moved to {park} Park.",
          (("Where will the {old} on {street} Street in {town} be moved?", "to {park} Park"),)),
         ("The next council meeting is open to the public.", ())),
    ),
    Topic(
        "business", _business_slots,
        "The {product1} maker {company} will open a second factory in {town} and hire {jobs} workers, the company "
        "said on {weekday}.",
        (("How many workers will {company} hire in {town}?", "{jobs}"),
         ("What does {company} make?", "{product}")),
        (("The firm was founded in {year} by {p1}, whose family still owns it.",
          (("Who founded {company}?", "{p1}"), ("When was {company} founded?", "in {year}"))),
         ("Its {product} are sold in {countries} countries.",
          (("In how many countries are the {product} of {company} sold?", "{countries}"),)),
         ("The new factory will stand next to the {station} railway station and should open in {month2}.",
          (("Where will the new factory of {company} in {town} stand?", "next to the {station} railway station"),)),
         ("Chief executive {p2} said sales had grown by {pct} percent last year.",
          (("Who is the chief executive of {company}?", "{p2}"),
           ("By how much did the sales of {company} grow last year?", "{pct} percent"))),
         ("The job centre of {town} will hold an information day on {day2} {month3}.",
          (("When will the job centre of {town} hold an information day about {company}?", "on {day2} {month3}"),)),
         ("Local suppliers hope to sell {supply} to the new plant.",
          (("What do local suppliers hope to sell to the new plant of {company}?", "{supply}"),)),
         ("Shares of the company rose after the news.", ())),
    ),
    Topic(
        "weather", _weather_slots,
        "Heavy snow closed {roads} roads around {town} on {weekday}, and the {line} train line stopped for {hours} "
        "hours.",
        (("How many roads did the snow close around {town}?", "{roads}"),
         ("For how long did the {line} train line near {town} stop in the snow?", "{hours} hours")),
        (("The weather office measured {cm} centimetres of snow at {place}.",
          (("How much snow fell at {place} near {town}?", "{cm} centimetres"),)),
         ("The farmer {p1} used his tractor to clear the road to the {school} School.",
          (("Who cleared the road to the {school} School near {town}?", "the farmer {p1}"),)),
         ("No one was hurt, said {p2} of the {town} fire service.",
          (("Who spoke for the fire service of {town} about the snow?", "{p2}"),)),
         ("About {homes} homes were without power until the next morning.",
          (("How many homes around {town} lost power in the snow?", "about {homes}"),)),
         ("Schools in the area will stay closed until {weekday2}.",
          (("Until when will the schools around {town} stay closed after the snow?", "until {weekday2}"),)),
         ("Forecasters expect warmer air to arrive from the {direction} by the weekend.",
          (("From where is warmer air expected to reach {town}?", "from the {direction}"),)),
         ("Drivers were asked to stay at home if they could.", ())),
    ),
    Topic(
        "arts", _arts_slots,
        "The {orchestra} Orchestra gave the first performance of {composer}'s new symphony, {title}, in {town} on "
        "{weekday} {day} {month}.",
        (("Who wrote the symphony {title}?", "{composer}"),
         ("Which orchestra first performed the symphony {title}?", "the {orchestra} Orchestra")),
        (("The concert was conducted by {p2}, the orchestra's director since {year}.",
          (("Who conducted the first performance of {title}?", "{p2}"),)),
         ("The work lasts {minutes} minutes and is written for {players} players.",
          (("How long does the symphony {title} last?", "{minutes} minutes"),
           ("For how many players is the symphony {title} written?", "{players} players"))),
         ("{composer_last} said the music was inspired by the {landscape} near {town}.",
          (("What inspired the symphony {title}?", "the {landscape} near {town}"),)),
         ("All {seats} seats of the {hall} Hall were sold within {days} days.",
          (("In which hall was {title} first performed?", "the {hall} Hall"),)),
         ("A recording will be released in {month2}.",
          (("When will a recording of {title} be released?", "in {month2}"),)),
         ("The orchestra will take the symphony on a tour of {towns} towns.",
          (("How many towns will the tour with {title} visit?", "{towns}"),)),
         ("The audience stood and applauded for several minutes.", ())),
    ),
)

SPLITS = ("forget", "retain", "holdout")
MIN_SENTENCES, MAX_SENTENCES = 4, 8
MAX_ARTICLES = 1000


@dataclass(frozen=True)
class Article:
    id: str
    split: str
    topic: str
    text: str
    qa: tuple[tuple[str, str], ...]  # KnowMem (question, answer), facts stated in ``text``


def _article(aid: str, split: str, rng: random.Random, lex: _Lexicon) -> Article:
    topic = TOPICS[rng.randrange(len(TOPICS))]
    slots = topic.slots(rng, lex)
    n_body = rng.randint(MIN_SENTENCES, MAX_SENTENCES) - 1
    keep = sorted(rng.sample(range(len(topic.body)), n_body))  # the story keeps its order
    sentences = [topic.lead] + [topic.body[i][0] for i in keep]
    questions = list(topic.lead_qa) + [qa for i in keep for qa in topic.body[i][1]]
    n_qa = min(len(questions), rng.randint(2, 3))
    chosen = [questions[i] for i in sorted(rng.sample(range(len(questions)), n_qa))]
    text = " ".join(s.format(**slots) for s in sentences)
    qa = tuple((q.format(**slots), a.format(**slots)) for q, a in chosen)
    return Article(aid, split, topic.name, text, qa)


def generate(n_forget: int = 20, n_retain: int = 60, n_holdout: int = 20, seed: int = 0,
             prefix_words: int = 16, continuation_words: int = 128, n_retain_eval: int = 20) -> NewsCorpus:
    """The ``lethe-news`` corpus: forget, retain and holdout articles with their probes.

    VerbMem probes: prompt = the first ``prefix_words`` words of an article, ground truth = the next
    ``continuation_words`` words (the rest of the article at the default, 128). ``verbmem_retain``
    and ``knowmem_retain`` cover the first ``n_retain_eval`` retain articles (utility on kept text);
    ``knowmem_forget`` every forget article. The models are trained on every article's Q&A
    (``knowmem_train_*``).
    """
    for name, value, low in (("n_forget", n_forget, 1), ("n_retain", n_retain, 1), ("n_holdout", n_holdout, 1),
                             ("prefix_words", prefix_words, 1), ("continuation_words", continuation_words, 1),
                             ("n_retain_eval", n_retain_eval, 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise LetheError(f"{NAME}: {name} must be an integer >= {low}, got {value!r}")
    if n_forget + n_retain + n_holdout > MAX_ARTICLES:
        raise LetheError(f"{NAME}: at most {MAX_ARTICLES} articles in all (made-up names run out); ask for fewer")
    lex = _Lexicon(random.Random(f"{NAME}/{seed}/names"))
    rng = random.Random(f"{NAME}/{seed}/articles")
    articles = {s: [_article(f"{s[0]}{i:04d}", s, rng, lex) for i in range(n)]
                for s, n in zip(SPLITS, (n_forget, n_retain, n_holdout))}
    docs = {s: [Document(a.id, a.text) for a in arts] for s, arts in articles.items()}
    retain_eval = articles["retain"][:n_retain_eval]

    def continuation(a: Article) -> Continuation:
        words = a.text.split(" ")
        return Continuation(a.id, " ".join(words[:prefix_words]),
                            " ".join(words[prefix_words : prefix_words + continuation_words]))

    def qa_items(arts: list[Article]) -> list[QAItem]:
        return [QAItem(id=f"{a.id}_q{j}", question=q, answer=ans, group=a.id)
                for a in arts for j, (q, ans) in enumerate(a.qa)]

    shortest = min(len(a.text.split(" ")) for arts in articles.values() for a in arts)
    if prefix_words >= shortest:
        raise LetheError(f"{NAME}: prefix_words={prefix_words} leaves nothing to continue (the shortest article "
                         f"has {shortest} words); choose fewer prefix words")
    spec = dict(n_forget=n_forget, n_retain=n_retain, n_holdout=n_holdout, seed=seed, prefix_words=prefix_words,
                continuation_words=continuation_words, n_retain_eval=n_retain_eval)
    return NewsCorpus(
        name=NAME, version=VERSION,
        forget=docs["forget"], retain=docs["retain"], holdout=docs["holdout"],
        verbmem_forget=[continuation(a) for a in articles["forget"]],
        verbmem_retain=[continuation(a) for a in retain_eval],
        knowmem_forget=qa_items(articles["forget"]), knowmem_retain=qa_items(retain_eval),
        privleak_forget=docs["forget"], privleak_holdout=docs["holdout"],
        knowmem_train_forget=qa_items(articles["forget"]), knowmem_train_retain=qa_items(articles["retain"]),
        spec=spec,
    )


# --------------------------------------------------------------------------------------------------
# MUSE's public files
# --------------------------------------------------------------------------------------------------
MUSE_FILES = {
    # key: (relative path, required)
    "raw_forget": ("raw/forget.txt", True),
    "raw_retain": ("raw/retain1.txt", True),
    "verbmem_forget": ("verbmem/forget.json", True),
    "knowmem_forget": ("knowmem/forget_qa.json", True),
    "knowmem_retain": ("knowmem/retain_qa.json", True),
    "knowmem_forget_icl": ("knowmem/forget_qa_icl.json", False),
    "knowmem_retain_icl": ("knowmem/retain_qa_icl.json", False),
    "privleak_forget": ("privleak/forget.json", True),
    "privleak_holdout": ("privleak/holdout.json", True),
}
MUSE_LAYOUT = ("raw/forget.txt, raw/retain1.txt, verbmem/forget.json, knowmem/forget_qa.json, "
               "knowmem/retain_qa.json, privleak/forget.json, privleak/holdout.json")


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise LetheError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}); fix the file or download it "
                         "again") from None
    except UnicodeDecodeError:
        raise LetheError(f"{path}: not UTF-8 text; download the file again") from None


def _json_list(path: Path) -> list:
    data = _read_json(path)
    if not isinstance(data, list) or not data:
        what = "an empty list" if data == [] else f"a {type(data).__name__}"
        raise LetheError(f"{path}: expected a non-empty JSON list of rows, got {what}; fix the file or download "
                         "it again")
    return data


def _rows(path: Path, fields: tuple[str, ...]) -> list[dict]:
    rows = _json_list(path)
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise LetheError(f"{path}: row {i}: expected a JSON object with fields {', '.join(fields)}, "
                             f"got {type(row).__name__}")
        for name in fields:
            value = row.get(name)
            if not isinstance(value, str) or not value.strip():
                raise LetheError(f"{path}: row {i}: field '{name}' missing or empty; every row needs non-empty "
                                 f"string fields {', '.join(fields)}")
    return rows


def _texts(path: Path) -> list[str]:
    """A privleak file: a list of strings, or of objects with a "text" field (the Hugging Face export)."""
    out = []
    for i, row in enumerate(_json_list(path)):
        text = row.get("text") if isinstance(row, dict) else row
        if not isinstance(text, str) or not text.strip():
            raise LetheError(f"{path}: row {i}: expected a non-empty string or an object with a non-empty "
                             "'text' field")
        out.append(text)
    return out


def chunk_text(text: str, chunk_words: int) -> list[str]:
    """Split a raw text into documents of at most ``chunk_words`` words, at paragraph breaks (blank
    lines); a paragraph longer than ``chunk_words`` is cut between words into documents of its own."""
    chunks: list[str] = []
    current: list[str] = []
    size = 0

    def flush():
        nonlocal current, size
        if current:
            chunks.append("\n\n".join(current))
        current, size = [], 0

    for para in (p.strip() for p in text.split("\n\n")):
        words = para.split()
        if not words:
            continue
        if len(words) > chunk_words:
            flush()
            chunks.extend(" ".join(words[i : i + chunk_words]) for i in range(0, len(words), chunk_words))
            continue
        if size + len(words) > chunk_words:
            flush()
        current.append(para)
        size += len(words)
    flush()
    return chunks


def _raw_documents(path: Path, prefix: str, chunk_words: int) -> list[Document]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise LetheError(f"{path}: not UTF-8 text; download the file again") from None
    chunks = chunk_text(text, chunk_words)
    if not chunks:
        raise LetheError(f"{path}: the file is empty; it must hold the raw text to unlearn / keep")
    return [Document(f"{prefix}{i:05d}", c) for i, c in enumerate(chunks)]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def load_muse(folder: str | Path, chunk_words: int = 300) -> NewsCorpus:
    """Read MUSE's public data (one corpus: News or Books) from a local ``folder``::

        raw/forget.txt  raw/retain1.txt                 the text to unlearn / the retain set
        verbmem/forget.json                             [{"prompt", "gt"}]
        knowmem/forget_qa.json  knowmem/retain_qa.json  [{"question", "answer"}]
        knowmem/forget_qa_icl.json, retain_qa_icl.json  optional few-shot examples, same fields
        privleak/forget.json  privleak/holdout.json     lists of texts (or [{"text"}])

    (the layout of ``data/<corpus>/`` in the MUSE repository, ``swj0419/muse_bench``; other files
    there, raw/retain2.txt, raw/holdout.txt, privleak/retain.json, are not read). The raw text files
    are cut into documents of at most ``chunk_words`` words at paragraph breaks (Lethe's encoder
    keeps 512 tokens of a training sequence, about 350 words of English). MUSE Books has no KnowMem
    files: give a folder with the News layout, or add the two files.

    Errors are one line naming the file, the row and the field.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise LetheError(f"{folder}: not a folder; give the folder of one MUSE corpus ({MUSE_LAYOUT})")
    if not isinstance(chunk_words, int) or isinstance(chunk_words, bool) or chunk_words < 1:
        raise LetheError(f"load_muse: chunk_words must be an integer >= 1, got {chunk_words!r}")
    paths = {}
    for key, (rel, required) in MUSE_FILES.items():
        path = folder / rel
        if path.is_file():
            paths[key] = path
        elif required:
            raise LetheError(f"{path}: file not found; a MUSE folder holds {MUSE_LAYOUT} (download the corpus "
                             "from the MUSE repository or its Hugging Face dataset)")
    verbmem = [Continuation(f"v{i:04d}", r["prompt"], r["gt"])
               for i, r in enumerate(_rows(paths["verbmem_forget"], ("prompt", "gt")))]

    def qa(key: str, prefix: str) -> list[QAItem]:
        return [QAItem(id=f"{prefix}{i:04d}", question=r["question"], answer=r["answer"])
                for i, r in enumerate(_rows(paths[key], ("question", "answer")))]

    icl = {split: qa(f"knowmem_{split}_icl", f"{split[0]}icl") for split in ("forget", "retain")
           if f"knowmem_{split}_icl" in paths}
    privleak = {key: [Document(f"{tag}{i:05d}", t) for i, t in enumerate(_texts(paths[key]))]
                for key, tag in (("privleak_forget", "pf"), ("privleak_holdout", "ph"))}
    spec = {"folder": str(folder.resolve()), "chunk_words": chunk_words,
            "files": {MUSE_FILES[k][0]: _sha256(p) for k, p in paths.items()}}
    forget = _raw_documents(paths["raw_forget"], "f", chunk_words)
    retain = _raw_documents(paths["raw_retain"], "r", chunk_words)
    # raw/retain1.txt is the methods' retain set and what MUSE's retain model trained on: it must not hold
    # forget text, or the gold standard knows what unlearning must remove
    both = forget_overlap(forget, retain)
    if both:
        raise LetheError(f"{paths['raw_forget']}: {len(both)} of its {len(forget)} documents (chunks of "
                         f"{chunk_words} words) also stand in the retain data {paths['raw_retain']} (first: "
                         f"{both[0].id}); remove the shared text from one of the two files")
    return NewsCorpus(
        name=f"muse:{folder.name}", version=_sha256_of(spec["files"]),
        forget=forget,
        retain=retain,
        holdout=privleak["privleak_holdout"],
        verbmem_forget=verbmem,
        knowmem_forget=qa("knowmem_forget", "fq"), knowmem_retain=qa("knowmem_retain", "rq"),
        privleak_forget=privleak["privleak_forget"], privleak_holdout=privleak["privleak_holdout"],
        knowmem_icl=icl, spec=spec,
    )


def forget_overlap(forget: list[Document], retain: list[Document]) -> list[Document]:
    """The forget documents whose text (up to whitespace) also stands among the retain documents:
    the non-raising count ``lethe validate`` reports (:func:`load_muse` refuses a folder with any)."""
    from .hazard import corpus_overlap

    return [forget[i] for i in corpus_overlap([d.text for d in forget], [d.text for d in retain])]


def describe_muse(folder: str | Path, chunk_words: int = 300) -> list[str]:
    """What :func:`load_muse` finds in a MUSE folder (lines to print, nothing run): documents, probes
    and questions per file, and forget documents shared with the retain data (refused at load)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise LetheError(f"{folder}: not a folder; give the folder of one MUSE corpus ({MUSE_LAYOUT})")
    raw = {k: folder / MUSE_FILES[k][0] for k in ("raw_forget", "raw_retain")}
    for path in raw.values():
        if not path.is_file():
            raise LetheError(f"{path}: file not found; a MUSE folder holds {MUSE_LAYOUT}")
    forget = _raw_documents(raw["raw_forget"], "f", chunk_words)
    retain = _raw_documents(raw["raw_retain"], "r", chunk_words)
    both = forget_overlap(forget, retain)
    lines = [f"{folder}: MUSE corpus",
             f"  raw/forget.txt: {len(forget)} documents of at most {chunk_words} words",
             f"  raw/retain1.txt: {len(retain)} documents",
             f"  forget documents also in the retain data: {len(both)}" + (" (refused at load)" if both else "")]
    if both:
        return lines
    corpus = load_muse(folder, chunk_words=chunk_words)
    lines += [f"  verbmem/forget.json: {len(corpus.verbmem_forget)} continuation probes",
              f"  knowmem: {len(corpus.knowmem_forget)} forget and {len(corpus.knowmem_retain)} retain questions"
              + (f", few-shot examples for {', '.join(sorted(corpus.knowmem_icl))}" if corpus.knowmem_icl else ""),
              f"  privleak: {len(corpus.privleak_forget)} forget and {len(corpus.privleak_holdout)} holdout texts"]
    return lines


def _sha256_of(files: dict) -> str:
    """The version of a MUSE folder: a hash of its files' hashes (the data, not the download date)."""
    return "files-" + hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:12]


__all__ = ["Article", "Continuation", "Document", "NAME", "NewsCorpus", "TOPICS", "VERSION", "chunk_text",
           "describe_muse", "forget_overlap", "generate", "load_muse"]
