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
so no fact of a forget article is stated in a retain article. The topics and their word pools live in
:mod:`lethe.benchmarks.news_topics` (re-exported here), the made-up names come from
:class:`lethe.benchmarks.lexicon.Lexicon`.

:func:`load_muse` reads the public MUSE data (News or Books) from a local folder in the layout of
the MUSE repository (``swj0419/muse_bench``, ``data/<corpus>/``) into the same :class:`NewsCorpus`.
"""
from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import LetheError
from .base import QAItem
from .lexicon import Lexicon
from .news_topics import (  # re-exported: the pools and topics are read from here too
    BANDS,
    BUILDINGS,
    CAUSES,
    COLORS,
    COMMITTEES,
    CREATURES,
    CUPS,
    DIRECTIONS,
    FESTIVALS,
    FOODS,
    HABITATS,
    LANDSCAPES,
    MONTHS,
    NEW_USES,
    OLD_THINGS,
    PRIZE_ITEMS,
    PRODUCTS,
    PROJECTS,
    QA,
    ROLES2,
    SHOPS,
    SUPPLIES,
    TEAM_NOUNS,
    TOPICS,
    TROPHY_THINGS,
    WEEKDAYS,
    Topic,
)

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
# Made-up names: head + optional middle + tail (+ a suffix per category), drawn by a Lexicon; a root is
# handed out once.
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


def _lexicon(seed: int) -> Lexicon:
    """The made-up names of the whole corpus (a root is never reused across categories or articles)."""
    return Lexicon(random.Random(f"{NAME}/{seed}/names"), _HEADS, _TAILS, _SUFFIX, middles=_MIDS, blocked=_BLOCKED,
                   owner=NAME, unit="articles")


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


def _article(aid: str, split: str, rng: random.Random, lex: Lexicon) -> Article:
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
    lex = _lexicon(seed)
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
