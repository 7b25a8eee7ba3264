"""ROUGE-L (Lin 2004, "ROUGE: A Package for Automatic Evaluation of Summaries", Sec. 3) in one place.

For a reference r and a prediction p, tokenized by rouge-score (lowercased, every run of
non-alphanumeric characters a separator, optionally Porter-stemmed):

    LCS = length of the longest common subsequence of the two token lists
    recall R = LCS / |r|,   precision P = LCS / |p|,   F1 = 2 P R / (P + R)      (all 0 when LCS = 0)

Every number is rouge-score's own (``RougeScorer(["rougeL"], use_stemmer=...).score(target=r,
prediction=p)``), as the papers' reference code. TOFU's "ROUGE" (``evaluate_util.eval_rouge_recall``)
stems; MUSE's VerbMem / KnowMem (``RougeEvalLogger``), the safety utility sets and ``answer_match`` do not.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np


@lru_cache(maxsize=2)
def rouge_l_scorer(use_stemmer: bool):
    """The shared ``RougeScorer(["rougeL"], use_stemmer=use_stemmer)`` (built once per setting)."""
    from rouge_score import rouge_scorer  # imported here: pulls in nltk, keep `import lethe` light

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=bool(use_stemmer))


@lru_cache(maxsize=2)
def rouge_tokenizer(use_stemmer: bool):
    """rouge-score's ``DefaultTokenizer``, the one ``RougeScorer(use_stemmer=...)`` tokenizes with."""
    from rouge_score.tokenizers import DefaultTokenizer  # imported here: pulls in nltk

    return DefaultTokenizer(use_stemmer=bool(use_stemmer))


def _score(prediction: str, reference: str, use_stemmer: bool):
    return rouge_l_scorer(use_stemmer).score(target=reference, prediction=prediction)["rougeL"]


def rouge_l_recall(prediction: str, reference: str, *, use_stemmer: bool) -> float:  # 0.0 if either has no tokens
    return float(_score(prediction, reference, use_stemmer).recall)


def rouge_l_f1(prediction: str, reference: str, *, use_stemmer: bool) -> float:  # 0.0 if either has no tokens
    return float(_score(prediction, reference, use_stemmer).fmeasure)


def _values(score, predictions: Sequence[str], references: Sequence[str], use_stemmer: bool) -> np.ndarray:
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references; one each per item")
    return np.asarray([score(p, r, use_stemmer=use_stemmer) for p, r in zip(predictions, references)], dtype=np.float64)


def rouge_l_recall_values(predictions: Sequence[str], references: Sequence[str], *,
                          use_stemmer: bool) -> np.ndarray:  # (N,)
    return _values(rouge_l_recall, predictions, references, use_stemmer)


def rouge_l_f1_values(predictions: Sequence[str], references: Sequence[str], *, use_stemmer: bool) -> np.ndarray:
    return _values(rouge_l_f1, predictions, references, use_stemmer)


def lcs_length(a: list[str], b: list[str]) -> int:
    """Length of the longest common subsequence of two lists tokenized by :func:`rouge_tokenizer`: the
    number rouge-score's (|a|+1) x (|b|+1) table ends in, kept one row at a time (O(|b|) memory)."""
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]
