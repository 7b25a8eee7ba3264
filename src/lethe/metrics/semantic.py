"""What the model says: token entropy (fluency) and embedding similarity (meaning) of its generations.

Yuan et al. 2025, "A Closer Look at Machine Unlearning for Large Language Models" (ICLR): unlearned
models often answer with repetitions ("the the the ...") that score low ROUGE and look forgotten.
Token entropy measures that diversity (the authors' ``compute_token_entropy``):

    TE(y) = H(f) / log2(n),   H(f) = -sum_w f(w) log2 f(w),

f the relative frequency of each distinct token among the n tokens of the generation; TE = 0 when
n <= 1. Which text and which reference, as the Closer-Look code (sail-sg/closer-look-LLM-unlearning,
``metrics/metrics.py``, ``get_all_evals``): the generation's tokens as decoded, not stripped; the long-form
``original_answer`` where the data have one (:func:`semantic_references`). Details in ``docs/metrics.md``.
"""
from __future__ import annotations

import math
from collections import Counter

import numpy as np

from . import MetricResult, register_metric
from ..probes import SplitProbes
from .tofu import UTILITY_SPLITS, rouge_l_recall


def token_entropy_value(tokens: list) -> float:
    """Closer-Look's ``compute_token_entropy(tokenizer, sentence, normalize=True)`` on
    ``tokens = tokenizer.tokenize(sentence)``: unigram entropy in bits over log2 n, 0 for n <= 1."""
    n = len(tokens)
    if n <= 1:
        return 0.0
    h = -sum((c / n) * math.log2(c / n) for c in Counter(tokens).values())
    return h / math.log2(n)


@register_metric(
    "token_entropy", higher_is_better=True,
    description="normalised unigram entropy of the generation's tokens (Yuan et al. 2025): 1 = no token "
    "repeats, near 0 = a repeated token; flags gibberish that scores 'forgotten'",
)
def token_entropy(p: SplitProbes) -> MetricResult:
    """Reads ``generation_tokens``; probes without them fall back to whitespace-separated words."""
    toks = p.generation_tokens if p.generation_tokens else [g.split() for g in p.generations]
    if len(toks) != len(p.ids):
        raise ValueError(f"SplitProbes has {len(toks)} generations, expected {len(p.ids)} (one per item in ids)")
    return MetricResult.of([token_entropy_value(t) for t in toks])


@register_metric(
    "embedding_similarity", higher_is_better=True, knowledge=True,
    description="cosine similarity of the sentence embeddings of generation and reference, clipped at 0 "
    "(all-MiniLM-L6-v2 by default; Yuan et al. 2025): meaning kept even when the wording changes",
)
def embedding_similarity(p: SplitProbes) -> MetricResult:
    """Yuan et al. 2025 (the authors' ``eval_cosine_similarity``): mean_i max(0, cos(e(gen_i), e(ref_i)))
    with ref_i from :func:`semantic_references`; reads the embedding probe's ``generation_similarity``."""
    if len(p.generation_similarity) != len(p.ids):
        raise ValueError(f"SplitProbes has {len(p.generation_similarity)} similarities, expected {len(p.ids)}; "
                         "run the embedding probe (eval.embedding_model)")
    return MetricResult.of(np.maximum(0.0, np.asarray(p.generation_similarity, dtype=np.float64)))


def semantic_references(p: SplitProbes, long_form: bool = True) -> list[str]:
    """What embedding similarity and entailment compare each generation with (Closer-Look ``get_all_evals``):
    the item's long-form ``original_answer`` where it has one, else (or with ``long_form=False``) its answer."""
    refs = list(p.references)
    if not long_form or not p.original_answers:
        return refs
    if len(p.original_answers) != len(refs):
        raise ValueError(f"SplitProbes has {len(p.original_answers)} original answers but {len(refs)} references; "
                         "they must be one per item")
    return [o if o else r for o, r in zip(p.original_answers, refs)]


ENTAILMENT_ROUGE_GATE = 0.1  # Yuan et al.: an answer with ROUGE-L recall below 0.1 is factually wrong


@register_metric(
    "entailment_score", higher_is_better=True, knowledge=True,
    description="share of generations an NLI model labels 'entailment' against the reference, answers with "
    "ROUGE-L recall < 0.1 counted as not entailed (Yuan et al. 2025); needs eval.nli_model",
)
def entailment_score(p: SplitProbes) -> MetricResult:
    """Yuan et al. 2025 (the authors' ``get_entailment_results`` / ``get_entailment_score``): mean_i s_i,
    s_i = 1 if NLI(premise_i, hypothesis_i) = entailment and ROUGE-L recall_i >= 0.1, else 0. Reads
    ``generation_nli`` (the NLI probe on :func:`lethe.probes.entailment_pairs` of the references of
    :func:`semantic_references`); the ROUGE gate reads the short answers (``references``), as the authors."""
    if len(p.generation_nli) != len(p.ids):
        raise ValueError(f"SplitProbes has {len(p.generation_nli)} NLI labels, expected {len(p.ids)}; "
                         "run the NLI probe (eval.nli_model)")
    rouge = rouge_l_recall(p).per_sample
    return MetricResult.of([1.0 if lab.startswith("entail") and r >= ENTAILMENT_ROUGE_GATE else 0.0
                            for lab, r in zip(p.generation_nli, rouge)])


# Forget Efficacy and the extended Model Utility of Yuan et al. 2025 (the authors' get_eval_results):
# five knowledge measures on the forget split; six measures on each non-forget split.
FORGET_EFFICACY_PARTS = ("rouge_l", "probability", "truth_ratio", "embedding_similarity", "entailment_score")
UTILITY_PARTS = ("probability", "rouge_l", "truth_ratio", "token_entropy", "embedding_similarity", "entailment_score")
REQUIRED_PARTS = ("rouge_l", "probability", "truth_ratio")  # the TOFU three; the semantic ones may be off


@register_metric(
    "forget_efficacy", higher_is_better=True, level="aggregate",
    description="1 - mean of the forget split's ROUGE-L, probability, 1 - truth ratio, embedding similarity and "
    "entailment score (Yuan et al. 2025); higher = less of the forget set shows",
)
def forget_efficacy(values: dict) -> tuple[float, list[str]]:
    """(FE, the parts used): FE = 1 - mean(c) over the forget split's knowledge measures of the flat summary
    ``values`` (Yuan et al. 2025): ROUGE-L recall, probability, 1 - ``forget_truth_ratio``, embedding
    similarity, entailment score (token entropy left out, as the authors'; measures not computed too)."""
    missing = [f"forget_{k}" for k in REQUIRED_PARTS if f"forget_{k}" not in values]
    if missing:
        raise ValueError(f"forget efficacy needs {', '.join(missing)}")
    used = [k for k in FORGET_EFFICACY_PARTS
            if values.get(f"forget_{k}") is not None and math.isfinite(float(values[f"forget_{k}"]))]
    parts = [1.0 - float(values[f"forget_{k}"]) if k == "truth_ratio" else float(values[f"forget_{k}"]) for k in used]
    return 1.0 - float(np.mean(parts)), used


@register_metric(
    "model_utility_semantic", higher_is_better=True, level="aggregate",
    description="harmonic mean of probability, ROUGE-L, truth ratio, token entropy, embedding similarity and "
    "entailment score on the retain, known-people and world-facts splits (Yuan et al. 2025's Model Utility)",
)
def model_utility_semantic(values: dict) -> tuple[float, list[str]]:
    """(harmonic mean, keys used) of the flat summary values ``<s>_<m>`` over the :data:`UTILITY_SPLITS` and
    :data:`UTILITY_PARTS`, 0 if any is 0; the TOFU three are required, semantic ones not computed left out."""
    from scipy.stats import hmean

    missing = [f"{s}_{k}" for s in UTILITY_SPLITS for k in REQUIRED_PARTS if f"{s}_{k}" not in values]
    if missing:
        raise ValueError(f"model utility (semantic) needs {', '.join(missing)}")
    keys = [f"{s}_{k}" for s in UTILITY_SPLITS for k in UTILITY_PARTS
            if values.get(f"{s}_{k}") is not None and math.isfinite(float(values[f"{s}_{k}"]))]
    v = np.asarray([float(values[k]) for k in keys], dtype=np.float64)
    if np.any(v < 0):
        raise ValueError(f"model utility (semantic): values must be >= 0; got {dict(zip(keys, v.tolist()))}")
    return (0.0 if np.any(v == 0) else float(hmean(v))), keys


def semantic_summary(values: dict) -> dict[str, float]:
    """``forget_efficacy`` and ``model_utility_semantic`` from a flat summary, each when its TOFU
    parts are present (never a default in place of a missing number)."""
    out: dict[str, float] = {}
    if all(f"forget_{k}" in values for k in REQUIRED_PARTS):
        out["forget_efficacy"] = forget_efficacy(values)[0]
    if all(f"{s}_{k}" in values for s in UTILITY_SPLITS for k in REQUIRED_PARTS):
        out["model_utility_semantic"] = model_utility_semantic(values)[0]
    return out
