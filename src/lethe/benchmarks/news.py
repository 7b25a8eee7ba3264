"""``lethe-news``: a MUSE-style corpus of fictitious news articles (MUSE: Shi et al. 2024, "MUSE: Machine
Unlearning Six-Way Evaluation for Language Models"), and a loader for MUSE's own files (docs/verbatim.md).
Every made-up name is handed out once in the whole corpus, so no fact of a forget article is stated in a
retain article; the topics and their word pools live in :mod:`lethe.benchmarks.news_topics`.
"""
from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import LetheError
from .base import QAItem, read_json, read_text
from .hazard import corpus_overlap
from .lexicon import Lexicon
from .news_topics import TOPICS

NAME = "lethe-news"
VERSION = "1.0"  # bump when the generated content changes for the same arguments


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
    """Documents, probes and the spec of a verbatim-unlearning corpus."""

    name: str
    version: str
    forget: list[Document]  # to unlearn
    retain: list[Document]  # to keep
    holdout: list[Document]  # never trained on
    verbmem_forget: list[Continuation]  # continuation probes on forget documents
    knowmem_forget: list[QAItem]  # questions about forget / retain documents
    knowmem_retain: list[QAItem]
    privleak_forget: list[Document]  # the members and non-members of membership inference
    privleak_holdout: list[Document]
    verbmem_retain: list[Continuation] = field(default_factory=list)
    # few-shot examples prepended to KnowMem prompts ({"forget": [...], "retain": [...]}; MUSE's
    # ``*_qa_icl.json``; empty for the built-in corpus, whose models are trained on Q&A)
    knowmem_icl: dict[str, list[QAItem]] = field(default_factory=dict)
    # Q&A the built-in models are trained on with the articles ([] for MUSE, whose target was not)
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
    text: str
    qa: tuple[tuple[str, str], ...]  # KnowMem (question, answer), facts stated in ``text``


def _article(aid: str, rng: random.Random, lex: Lexicon) -> Article:
    topic = TOPICS[rng.randrange(len(TOPICS))]
    slots = topic.slots(rng, lex)
    n_body = rng.randint(MIN_SENTENCES, MAX_SENTENCES) - 1
    keep = sorted(rng.sample(range(len(topic.body)), n_body))  # the story keeps its order
    sentences = [topic.lead] + [topic.body[i][0] for i in keep]
    questions = list(topic.lead_qa) + [qa for i in keep for qa in topic.body[i][1]]
    n_qa = min(len(questions), rng.randint(2, 3))
    chosen = [questions[i] for i in sorted(rng.sample(range(len(questions)), n_qa))]
    return Article(aid, " ".join(s.format(**slots) for s in sentences),
                   tuple((q.format(**slots), a.format(**slots)) for q, a in chosen))


def generate(n_forget: int = 20, n_retain: int = 60, n_holdout: int = 20, seed: int = 0,
             prefix_words: int = 16, continuation_words: int = 128, n_retain_eval: int = 20) -> NewsCorpus:
    """The ``lethe-news`` corpus: forget, retain and holdout articles with their probes. VerbMem: the first
    ``prefix_words`` words of an article, then the next ``continuation_words``; ``verbmem_retain`` and
    ``knowmem_retain`` cover the first ``n_retain_eval`` retain articles."""
    spec = dict(n_forget=n_forget, n_retain=n_retain, n_holdout=n_holdout, seed=seed, prefix_words=prefix_words,
                continuation_words=continuation_words, n_retain_eval=n_retain_eval)
    for name, value in spec.items():
        if name != "seed" and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise LetheError(f"{NAME}: {name} must be an integer >= 1, got {value!r}")
    if n_forget + n_retain + n_holdout > MAX_ARTICLES:
        raise LetheError(f"{NAME}: at most {MAX_ARTICLES} articles in all (made-up names run out); ask for fewer")
    lex = _lexicon(seed)
    rng = random.Random(f"{NAME}/{seed}/articles")
    articles = {s: [_article(f"{s[0]}{i:04d}", rng, lex) for i in range(n)]
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
    return NewsCorpus(
        name=NAME, version=VERSION, forget=docs["forget"], retain=docs["retain"], holdout=docs["holdout"],
        verbmem_forget=[continuation(a) for a in articles["forget"]],
        verbmem_retain=[continuation(a) for a in retain_eval],
        knowmem_forget=qa_items(articles["forget"]), knowmem_retain=qa_items(retain_eval),
        privleak_forget=docs["forget"], privleak_holdout=docs["holdout"],
        knowmem_train_forget=qa_items(articles["forget"]), knowmem_train_retain=qa_items(articles["retain"]), spec=spec,
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
MUSE_LAYOUT = ", ".join(rel for rel, required in MUSE_FILES.values() if required)


def _json_list(path: Path) -> list:
    data = read_json(path, hint="fix the file or download it again")
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
    current: list[str] = []  # the paragraphs of the document being filled
    for para in (p.strip() for p in text.split("\n\n")):
        words = para.split()
        if current and sum(len(c.split()) for c in current) + len(words) > chunk_words:
            chunks.append("\n\n".join(current))
            current = []
        if len(words) > chunk_words:
            chunks.extend(" ".join(words[i : i + chunk_words]) for i in range(0, len(words), chunk_words))
        elif words:
            current.append(para)
    return chunks + (["\n\n".join(current)] if current else [])


def _raw_documents(path: Path, prefix: str, chunk_words: int) -> list[Document]:
    chunks = chunk_text(read_text(path), chunk_words)
    if not chunks:
        raise LetheError(f"{path}: the file is empty; it must hold the raw text to unlearn / keep")
    return [Document(f"{prefix}{i:05d}", c) for i, c in enumerate(chunks)]


def _muse_paths(folder: Path, keys=tuple(MUSE_FILES)) -> dict[str, Path]:
    """The files ``keys`` of a MUSE folder that are there; a missing required one is a one-line error."""
    if not folder.is_dir():
        raise LetheError(f"{folder}: not a folder; give the folder of one MUSE corpus ({MUSE_LAYOUT})")
    paths = {}
    for key in keys:
        rel, required = MUSE_FILES[key]
        if (folder / rel).is_file():
            paths[key] = folder / rel
        elif required:
            raise LetheError(f"{folder / rel}: file not found; a MUSE folder holds {MUSE_LAYOUT} (download the "
                             "corpus from the MUSE repository or its Hugging Face dataset)")
    return paths


def _raw_forget_retain(paths: dict[str, Path], chunk_words: int) -> tuple[list[Document], list[Document], list]:
    """The documents of raw/forget.txt and raw/retain1.txt, and the forget ones that stand in both."""
    forget = _raw_documents(paths["raw_forget"], "f", chunk_words)
    retain = _raw_documents(paths["raw_retain"], "r", chunk_words)
    return forget, retain, forget_overlap(forget, retain)


def load_muse(folder: str | Path, chunk_words: int = 300) -> NewsCorpus:
    """Read MUSE's public data (one corpus: News or Books) from a local ``folder`` in the layout of
    ``data/<corpus>/`` of the MUSE repository (:data:`MUSE_FILES`; docs/verbatim.md). The raw text files
    are cut into documents of at most ``chunk_words`` words at paragraph breaks (Lethe's encoder keeps
    512 tokens of a training sequence, about 350 words of English). Errors name the file, row and field.
    """
    if not isinstance(chunk_words, int) or isinstance(chunk_words, bool) or chunk_words < 1:
        raise LetheError(f"load_muse: chunk_words must be an integer >= 1, got {chunk_words!r}")
    folder = Path(folder)
    paths = _muse_paths(folder)
    verbmem = [Continuation(f"v{i:04d}", r["prompt"], r["gt"])
               for i, r in enumerate(_rows(paths["verbmem_forget"], ("prompt", "gt")))]

    def qa(key: str, prefix: str) -> list[QAItem]:
        return [QAItem(id=f"{prefix}{i:04d}", question=r["question"], answer=r["answer"])
                for i, r in enumerate(_rows(paths[key], ("question", "answer")))]

    icl = {split: qa(f"knowmem_{split}_icl", f"{split[0]}icl") for split in ("forget", "retain")
           if f"knowmem_{split}_icl" in paths}
    privleak = {key: [Document(f"{tag}{i:05d}", t) for i, t in enumerate(_texts(paths[key]))]
                for key, tag in (("privleak_forget", "pf"), ("privleak_holdout", "ph"))}
    files = {MUSE_FILES[k][0]: hashlib.sha256(p.read_bytes()).hexdigest()[:16] for k, p in paths.items()}
    spec = {"folder": str(folder.resolve()), "chunk_words": chunk_words, "files": files}
    forget, retain, both = _raw_forget_retain(paths, chunk_words)
    # raw/retain1.txt is the methods' retain set and what MUSE's retain model trained on: it must not hold
    # forget text, or the gold standard knows what unlearning must remove
    if both:
        raise LetheError(f"{paths['raw_forget']}: {len(both)} of its {len(forget)} documents (chunks of "
                         f"{chunk_words} words) also stand in the retain data {paths['raw_retain']} (first: "
                         f"{both[0].id}); remove the shared text from one of the two files")
    # the version: a hash of the files' hashes (the data, not the download date)
    version = "files-" + hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:12]
    return NewsCorpus(
        name=f"muse:{folder.name}", version=version, forget=forget, retain=retain,
        holdout=privleak["privleak_holdout"], verbmem_forget=verbmem,
        knowmem_forget=qa("knowmem_forget", "fq"), knowmem_retain=qa("knowmem_retain", "rq"),
        privleak_forget=privleak["privleak_forget"], privleak_holdout=privleak["privleak_holdout"],
        knowmem_icl=icl, spec=spec,
    )


def forget_overlap(forget: list[Document], retain: list[Document]) -> list[Document]:
    """The forget documents whose text (up to whitespace) also stands among the retain documents:
    the non-raising count ``lethe validate`` reports (:func:`load_muse` refuses a folder with any)."""
    return [forget[i] for i in corpus_overlap([d.text for d in forget], [d.text for d in retain])]


def describe_muse(folder: str | Path, chunk_words: int = 300) -> list[str]:
    """What :func:`load_muse` finds in a MUSE folder (lines to print, nothing run): documents, probes
    and questions per file, and forget documents shared with the retain data (refused at load)."""
    folder = Path(folder)
    forget, retain, both = _raw_forget_retain(_muse_paths(folder, ("raw_forget", "raw_retain")), chunk_words)
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
