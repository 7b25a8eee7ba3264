"""What the articles of ``lethe-news`` (:mod:`lethe.benchmarks.news`) say: eight topics, each a lead
sentence, body sentences and the KnowMem questions each sentence answers, with the word pools their
slots are filled from (ordinary English words) and the made-up names of a :class:`Lexicon`.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

from .lexicon import Lexicon


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
    slots: Callable[[random.Random, Lexicon], dict[str, str]]
    lead: str
    lead_qa: tuple[QA, ...]
    body: tuple[tuple[str, tuple[QA, ...]], ...]  # (sentence, questions it answers)


def _opening_slots(rng, lex):
    wd, d, m = _date(rng)
    p1 = lex.person()
    return dict(weekday=wd, day=d, month=m, town=lex.name("town"), building=rng.choice(BUILDINGS), p1=p1,
                p1_last=p1.split()[1], cost=f"{rng.randint(2, 48)}.{rng.randint(1, 9)}",
                firm=f"{lex.name('name')} Builders", years=str(rng.randint(2, 6)),
                crowd=_thousands(rng.randrange(300, 5000, 10)), band=rng.choice(BANDS), p2=lex.person(),
                town2=lex.name("town"), hour=rng.choice(("seven", "eight", "nine", "ten")),
                panels=str(rng.randint(40, 400)), homes=str(rng.randint(10, 90)),
                school=lex.name("name"), street=lex.name("name"), newuse=rng.choice(NEW_USES))


def _festival_slots(rng, lex):
    wd, _, _ = _date(rng)
    prize = rng.choice(PRIZE_ITEMS).format(n=rng.randint(12, 480))
    food1, food2 = rng.sample(FOODS, 2)
    return dict(weekday=wd, town=lex.name("town"), festival=rng.choice(FESTIVALS), nth=_ordinal(rng.randint(3, 60)),
                visitors=_thousands(rng.randrange(2000, 90000, 100)), ndays=str(rng.randint(2, 9)),
                p1=lex.person(), org=f"{lex.name('name')} Society", since=str(rng.randint(1990, 2022)),
                p2=lex.person(), prize=prize, river=lex.name("name"), food1=food1, food2=food2,
                boats=str(rng.randint(12, 140)), money=_thousands(rng.randrange(5000, 250000, 500)),
                cause=rng.choice(CAUSES), month2=rng.choice(MONTHS))


def _sports_slots(rng, lex):
    wd, _, _ = _date(rng)
    town = lex.name("town")
    a, b = rng.sample(TEAM_NOUNS, 2)
    s1 = rng.randint(1, 5)
    p1 = lex.person()
    return dict(weekday=wd, town=town, team1=f"{town} {a}", team2=f"{lex.name('town')} {b}", score1=str(s1),
                score2=str(rng.randint(0, s1 - 1)), cup=rng.choice(CUPS), p1=p1, minute=_ordinal(rng.randint(3, 89)),
                year=str(rng.randint(1950, 2020)), crowd=_thousands(rng.randrange(800, 25000, 50)),
                ground=lex.name("name"), p2=lex.person(), weeks=str(rng.randint(3, 12)),
                team3=f"{lex.name('town')} {rng.choice(TEAM_NOUNS)}", month2=rng.choice(MONTHS),
                trophy=rng.choice(TROPHY_THINGS), p3=lex.person())


def _science_slots(rng, lex):
    return dict(weekday=_date(rng)[0], town=lex.name("town"), university=lex.name("name"),
                creature=rng.choice(CREATURES),
                habitat=rng.choice(HABITATS), p1=lex.person(), years=str(rng.randint(2, 15)),
                size=str(rng.randint(3, 90)), color=rng.choice(COLORS), p2=lex.person(), role2=rng.choice(ROLES2),
                count=str(rng.randint(4, 60)), fund=lex.name("name"), months=str(rng.randint(6, 36)),
                journal=f"{lex.name('name')} Nature", month2=rng.choice(MONTHS))


def _council_slots(rng, lex):
    wd, _, _ = _date(rng)
    yes = rng.randint(9, 31)
    return dict(weekday=wd, town=lex.name("town"), yes=str(yes), no=str(rng.randint(1, yes - 1)),
                project=rng.choice(PROJECTS), street=lex.name("name"), p1=lex.person(),
                committee=rng.choice(COMMITTEES), month2=rng.choice(MONTHS), months=str(rng.randint(4, 30)),
                cost=f"{rng.randint(1, 30)}.{rng.randint(1, 9)}", region=lex.name("name"),
                residents=_thousands(rng.randrange(200, 4000, 10)), pct=str(rng.randint(51, 94)),
                p2=lex.person(), shop=rng.choice(SHOPS), old=rng.choice(OLD_THINGS), park=lex.name("name"))


def _business_slots(rng, lex):
    wd, _, _ = _date(rng)
    d2, m2 = str(rng.randint(1, 28)), rng.choice(MONTHS)
    one, many = rng.choice(PRODUCTS)
    return dict(weekday=wd, town=lex.name("town"), product1=one, product=many, company=f"{lex.name('name')} Works",
                jobs=str(rng.randrange(40, 900, 5)), year=str(rng.randint(1880, 2015)), p1=lex.person(),
                countries=str(rng.randint(3, 60)), station=lex.name("name"), month2=rng.choice(MONTHS),
                p2=lex.person(), pct=str(rng.randint(3, 45)), day2=d2, month3=m2, supply=rng.choice(SUPPLIES))


def _weather_slots(rng, lex):
    return dict(weekday=rng.choice(WEEKDAYS), town=lex.name("town"), roads=str(rng.randint(3, 40)),
                line=lex.name("name"),
                hours=str(rng.randint(2, 30)), cm=str(rng.randint(20, 140)), place=lex.name("name"),
                p1=lex.person(), school=lex.name("name"), p2=lex.person(),
                homes=_thousands(rng.randrange(100, 9000, 10)), weekday2=rng.choice(WEEKDAYS),
                direction=rng.choice(DIRECTIONS))


def _arts_slots(rng, lex):
    wd, d, m = _date(rng)
    composer = lex.person()
    return dict(weekday=wd, day=d, month=m, town=lex.name("town"), orchestra=lex.name("name"), composer=composer,
                composer_last=composer.split()[1],
                title=f"{rng.choice(COLORS).capitalize()} {rng.choice(LANDSCAPES).capitalize()}",
                p2=lex.person(), year=str(rng.randint(1995, 2023)), minutes=str(rng.randint(18, 75)),
                players=str(rng.randint(30, 110)), landscape=rng.choice(LANDSCAPES),
                seats=_thousands(rng.randrange(300, 2500, 10)),
                hall=lex.name("name"), days=str(rng.randint(1, 9)), month2=rng.choice(MONTHS),
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
