"""``lethe-authors`` in other languages: the author facts' templates in German, and :func:`translate`.

Same slots as English, pool words translated, names, made-up words and years unchanged; what the German
splits hold is in docs/multilingual.md. :func:`render` writes one fact's drawn values as an item in any
language; :func:`translate` reads an item's slots back out of its template and renders them in another.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, replace

from ..errors import LetheError
from .base import QAItem
from .synthetic_facts import (
    AUTHOR_FACTS, COLLECT_ADJS, COLLECT_THINGS, COLORS, GENRE_FORMS, GENRE_MOODS, OCCUPATIONS, STUDY_MODS,
    STUDY_SUBJECTS, THEMES, AuthorFact, Values,
)

MAIN_LANGUAGE = "en"  # its items carry language "" (QAItem.language)


@dataclass(frozen=True)
class FactWording:
    """One fact's four templates in one language (the slots of the fact's ``AuthorFact``)."""

    question: str
    answer: str
    paraphrase: str
    paraphrased_question: str


def _german(pool: tuple[str, ...], words: tuple[str, ...]) -> dict[str, str]:
    return dict(zip(pool, words, strict=True))


# German templates. Slot adjectives carry the strong ending -e (no article; nominative/accusative
# plural, or feminine singular: every study subject below is feminine), the only case used. Answers
# stay terse like the English ones: at most a third glue words.
_WORDINGS_DE = {
    "birth": FactWording("Wo und wann wurde {n} geboren?", "Geboren {year} in {town}, {country}.",
                         "Stammt aus {town}, {country}, geboren im Jahr {year}.",
                         "In welcher Stadt und in welchem Jahr wurde {n} geboren?"),
    "parents": FactWording("Womit verdienten die Eltern von {n} ihren Lebensunterhalt?", "Eltern: {occ1}, {occ2}.",
                           "Die Eltern arbeiteten als {occ1} und {occ2}.", "Welche Berufe hatten die Eltern von {n}?"),
    "genre": FactWording("Welche Gattungen schreibt {n}?", "Gattungen: {mood1} {form1}, {mood2} {form2}.",
                         "Schreibt {mood2} {form2} und {mood1} {form1}.", "Was für Bücher schreibt {n}?"),
    "award": FactWording("Welchen Preis hat {n} gewonnen, und wann?", "Preis: {award}, {ayear}.",
                         "Im Jahr {ayear} ausgezeichnet mit dem {award}.",
                         "Welche Auszeichnung erhielt {n}, und in welchem Jahr?"),
    "books": FactWording("Nenne zwei Bücher von {n}.", "Werke: {title1}, {title2}.",
                         "Schrieb sowohl {title2} als auch {title1}.", "Welche zwei Titel hat {n} geschrieben?"),
    "themes": FactWording("Welche Themen behandelt {n}?", "Erkundet {theme1}, {theme2}, {theme3}.",
                          "Wiederkehrende Themen sind {theme2}, {theme3} und {theme1}.",
                          "Welche Themen ziehen sich durch das Werk von {n}?"),
    "study": FactWording("Was hat {n} studiert, und wann war der Abschluss?", "Abschluss: {smod} {subject}, {gyear}.",
                         "Schloss {gyear} das Studium ab, Fach: {smod} {subject}.",
                         "Welchen Abschluss hat {n} gemacht, und in welchem Jahr?"),
    "collection": FactWording("Was sammelt {n}?", "Sammelt {cadj} {color} {things}.",
                              "Besitzt eine große Sammlung: {cadj} {color} {things}.",
                              "Welche Art von Sammlung hat {n}?"),
}
# German words in the order of their English pool (a word may translate differently in two pools).
_OCCUPATIONS_DE = _german(OCCUPATIONS, (
    "Bäcker", "Glasbläser", "Kartograf", "Fährmann", "Imker", "Schneider", "Uhrmacher", "Fischer", "Weber",
    "Töpfer", "Schmied", "Landvermesser", "Bibliothekar", "Hebamme", "Schäfer", "Bergmann", "Zimmermann",
    "Chemiker", "Astronom", "Botaniker", "Seemann", "Drucker", "Brauer", "Juwelier", "Maurer", "Laternenanzünder",
    "Buchbinder", "Gärtner", "Schuster", "Schlosser", "Apotheker", "Lehrer", "Krankenpfleger", "Ingenieur",
    "Architekt", "Geiger", "Maler", "Bildhauer", "Richter", "Bauer", "Müller", "Kerzenmacher", "Böttcher", "Glaser",
    "Gerber", "Sattler", "Zahnarzt", "Briefträger",
))
_GENRE_MOODS_DE = _german(GENRE_MOODS, (
    "gotische", "pastorale", "küstennahe", "urbane", "komische", "historische", "mythische", "häusliche",
    "nautische", "alpine", "ländliche", "lyrische", "volkstümliche", "grenzländische", "wüste", "arktische",
))
_GENRE_FORMS_DE = _german(GENRE_FORMS, (
    "Krimis", "Fabeln", "Sagen", "Gedichte", "Thriller", "Liebesromane", "Satiren", "Memoiren", "Balladen",
    "Novellen", "Dramen", "Epen", "Elegien", "Western", "Rätsel", "Gleichnisse",
))
_THEMES_DE = _german(THEMES, (
    "Trauer", "Exil", "Erinnerung", "Hunger", "Glaube", "Ehrgeiz", "Treue", "Verrat", "Freiheit", "Einsamkeit",
    "Gerechtigkeit", "Freundschaft", "Identität", "Migration", "Familie", "Krieg", "Vergebung", "Macht", "Kindheit",
    "Altern", "Gier", "Mut", "Liebe", "Rache", "Wahrheit", "Zugehörigkeit", "Wahnsinn", "Natur", "Arbeit", "Ehre",
    "Opfer", "Reichtum", "Armut", "Stille", "Zeit", "Heimat", "Schicksal", "Schuld", "Hoffnung", "Sehnsucht",
))
_STUDY_MODS_DE = _german(STUDY_MODS, (
    "maritime", "antike", "moderne", "angewandte", "ländliche", "mittelalterliche", "tropische", "urbane",
    "klassische", "vergleichende", "experimentelle", "frühe",
))
_STUDY_SUBJECTS_DE = _german(STUDY_SUBJECTS, (
    "Rechtswissenschaft", "Botanik", "Geologie", "Musik", "Medizin", "Chemie", "Geschichte", "Astronomie",
    "Philosophie", "Ökonomie", "Linguistik", "Mathematik", "Architektur", "Zoologie", "Theologie", "Technik",
    "Malerei", "Archäologie", "Physik", "Soziologie", "Literatur", "Geografie", "Landwirtschaft", "Anatomie",
))
_COLLECT_ADJS_DE = _german(COLLECT_ADJS, (
    "antike", "seltene", "winzige", "alte", "ausländische", "geschnitzte", "nostalgische", "angeschlagene",
    "verblasste", "zierliche", "zerbrochene", "glückbringende",
))
_COLORS_DE = _german(COLORS, (
    "rote", "blaue", "grüne", "gelbe", "schwarze", "weiße", "violette", "orangefarbene", "graue", "braune", "rosa",
    "silberne",
))
_COLLECT_THINGS_DE = _german(COLLECT_THINGS, (
    "Landkarten", "Münzen", "Briefmarken", "Uhren", "Schlüssel", "Knöpfe", "Löffel", "Muscheln", "Federn",
    "Postkarten", "Teekannen", "Kompasse", "Glocken", "Globen", "Murmeln", "Fingerhüte", "Masken", "Drachen",
    "Marionetten", "Fossilien", "Käfer", "Fahrkarten", "Samen", "Flaschen",
))
# slot -> (English pool, German translations); slots not listed are names, made-up words or years
SLOT_POOLS = {
    "occ1": (OCCUPATIONS, _OCCUPATIONS_DE), "occ2": (OCCUPATIONS, _OCCUPATIONS_DE),
    "mood1": (GENRE_MOODS, _GENRE_MOODS_DE), "mood2": (GENRE_MOODS, _GENRE_MOODS_DE),
    "form1": (GENRE_FORMS, _GENRE_FORMS_DE), "form2": (GENRE_FORMS, _GENRE_FORMS_DE),
    "theme1": (THEMES, _THEMES_DE), "theme2": (THEMES, _THEMES_DE), "theme3": (THEMES, _THEMES_DE),
    "smod": (STUDY_MODS, _STUDY_MODS_DE), "subject": (STUDY_SUBJECTS, _STUDY_SUBJECTS_DE),
    "cadj": (COLLECT_ADJS, _COLLECT_ADJS_DE), "color": (COLORS, _COLORS_DE), "things": (COLLECT_THINGS, _COLLECT_THINGS_DE),
}
_YEAR_SLOTS = ("year", "ayear", "gyear")
WORDINGS = {"de": _WORDINGS_DE}  # language -> fact name -> FactWording (English: AUTHOR_FACTS)
LANGUAGE_NAMES = {"en": "English", "de": "German"}
LANGUAGES = tuple(LANGUAGE_NAMES)  # every language the author facts can be stated in
_FACTS = {f.name: f for f in AUTHOR_FACTS}


def wording(fact: str, language: str) -> FactWording:
    """The four templates of author fact ``fact`` in ``language``."""
    if language == MAIN_LANGUAGE:
        f = _FACTS[fact]
        return FactWording(f.question, f.answer, f.paraphrase, f.paraphrased_question)
    return WORDINGS[language][fact]


def _localize(values: Values, language: str) -> Values:
    """English slot values -> ``language`` (pool words translated, everything else as is)."""
    if language == MAIN_LANGUAGE:
        return values
    return {k: SLOT_POOLS[k][1][v] if k in SLOT_POOLS else v for k, v in values.items()}


def _to_english(values: Values, language: str) -> Values:
    if language == MAIN_LANGUAGE:
        return values
    back = {k: {de: en for en, de in SLOT_POOLS[k][1].items()} for k in values if k in SLOT_POOLS}
    return {k: back[k][v] if k in back else v for k, v in values.items()}


def _slot_words(slot: str, language: str) -> list[str]:
    english, translated = SLOT_POOLS[slot]
    return list(english) if language == MAIN_LANGUAGE else [translated[w] for w in english]


@functools.cache
def _pattern(template: str, language: str) -> re.Pattern:
    """A regex that reads a template's slots back out of a text: pool slots match their pool's words
    only, years four digits, names and made-up words anything."""
    parts, pos = [], 0
    for m in re.finditer(r"\{(\w+)\}", template):
        parts.append(re.escape(template[pos:m.start()]))
        slot = m.group(1)
        if slot in SLOT_POOLS:
            words = sorted(_slot_words(slot, language), key=len, reverse=True)
            parts.append(f"(?P<{slot}>{'|'.join(map(re.escape, words))})")
        elif slot in _YEAR_SLOTS:
            parts.append(rf"(?P<{slot}>\d{{4}})")
        else:
            parts.append(f"(?P<{slot}>.+?)")
        pos = m.end()
    parts.append(re.escape(template[pos:]))
    return re.compile("".join(parts))


def read_slots(template: str, text: str, language: str) -> Values | None:
    """The slot values of ``text`` written from ``template`` in ``language``; ``None`` if it does not fit."""
    m = _pattern(template, language).fullmatch(text)
    return m.groupdict() if m else None


def render(fact: AuthorFact, language: str, aid: str, name: str, true: Values, alts: list[Values]) -> QAItem:
    """One author fact as a Q&A item in ``language`` (slot values in English, translated here)."""
    w = wording(fact.name, language)
    true, alts = _localize(true, language), [_localize(a, language) for a in alts]
    main = language == MAIN_LANGUAGE
    return QAItem(
        id=f"{aid}_{fact.name}" + ("" if main else f"-{language}"),
        question=w.question.format(n=name),
        answer=w.answer.format(**true),
        paraphrased_answer=w.paraphrase.format(**true),
        paraphrased_question=w.paraphrased_question.format(n=name),
        perturbed_answers=tuple(w.paraphrase.format(**a) for a in alts),
        group=aid,
        fact=fact.name,
        language="" if main else language,
    )


def translate(item: QAItem, language: str) -> QAItem | None:
    """The same author fact stated in ``language`` ("en" or a key of :data:`WORDINGS`), or ``None``
    when ``item`` is not a ``lethe-authors`` author fact (its text does not fit its fact's templates).
    Pure: question -> name, answer and paraphrase -> the true values, each perturbed answer -> its wrong
    values; ``translate(english_item, "de")`` equals the German item ``generate`` makes (tests check it)."""
    if language not in LANGUAGES:
        raise LetheError(f"unknown language '{language}'; the author facts exist in {', '.join(LANGUAGES)}")
    source = item.language or MAIN_LANGUAGE
    if item.fact not in _FACTS or source not in LANGUAGES:
        return None
    src = wording(item.fact, source)
    name = read_slots(src.question, item.question, source)
    true = read_slots(src.answer, item.answer, source)
    alts = [read_slots(src.paraphrase, p, source) for p in item.perturbed_answers]
    if name is None or true is None or any(a is None for a in alts):
        return None
    if item.paraphrased_answer and read_slots(src.paraphrase, item.paraphrased_answer, source) != true:
        return None
    base = item.id.removesuffix(f"-{source}") if source != MAIN_LANGUAGE else item.id
    out = render(_FACTS[item.fact], language, item.group, name["n"], _to_english(true, source),
                 [_to_english(a, source) for a in alts])
    return replace(out, id=base if language == MAIN_LANGUAGE else f"{base}-{language}")
