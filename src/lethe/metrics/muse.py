"""MUSE's memorisation metrics (Shi et al. 2024, "MUSE: Machine Unlearning Six-Way Evaluation for
Language Models", Sec. 3, criteria C1 and C2), faithful to the reference code (``swj0419/muse_bench``:
``metrics/verbmem.py``, ``metrics/knowmem.py``, ``metrics/logger.py``; ``eval.py`` reads
``agg["mean_rougeL"]`` for both).

* ``verbmem`` (C1, no verbatim memorisation): the model is given the first tokens of a forget text
  and continues it greedily; ROUGE-L F1 between its continuation and the true continuation.
* ``knowmem`` (C2, no knowledge memorisation; C4, utility, on retain questions): ROUGE-L F1 between
  the model's greedy answer and the reference answer.

Both are the same per-item statistic on different probes:

    s_i = ROUGE-L F1(reference_i, generation_i)
        = 2 P R / (P + R),  P = LCS / |generation_i|,  R = LCS / |reference_i|   (0 when LCS = 0)

in rouge-score tokens *without* stemming (MUSE's ``RougeEvalLogger``; TOFU's ROUGE stems). value =
mean_i s_i, in [0, 1]; MUSE's tables print 100 x value. On a forget split the yardstick is the retain
model's value, not zero. They read ``ids``, ``generations`` and ``references`` of any probe object;
how the generations are made is :mod:`lethe.scenarios.verbatim`'s job (``docs/verbatim.md``).
"""
from __future__ import annotations

import numpy as np

from . import MetricResult, register_metric, rouge


def rouge_l_f1_values(generations: list[str], references: list[str]) -> np.ndarray:
    """(N,) ROUGE-L F1 of each generation against its reference (MUSE's scorer, no stemming)."""
    return rouge.rouge_l_f1_values(generations, references, use_stemmer=False)


def _rouge_result(p) -> MetricResult:
    n = len(p.ids)
    if n == 0:
        raise ValueError("the probes have no items (ids is empty); a metric over zero items is undefined")
    if len(p.generations) != n or len(p.references) != n:
        raise ValueError(f"the probes have {len(p.generations)} generations and {len(p.references)} references, "
                         f"expected {n} each (one per item in ids)")
    return MetricResult.of(rouge_l_f1_values(list(p.generations), list(p.references)))


@register_metric(
    "verbmem", higher_is_better=True, knowledge=True,
    description="MUSE VerbMem: ROUGE-L F1 (no stemming) of the greedy continuation of a text's first tokens "
    "against the true continuation; higher = more verbatim memorisation (lower is the goal on forget)",
)
def verbmem(p) -> MetricResult:
    """MUSE C1 (Shi et al. 2024, Sec. 3): VerbMem = mean_i ROUGE-L F1(x_i[l:l+128], f(x_i[:l])); the
    references are cut to the new tokens the generation was allowed (MUSE's ``gt_ids[:, :max_new_tokens]``)."""
    return _rouge_result(p)


@register_metric(
    "knowmem", higher_is_better=True, knowledge=True,
    description="MUSE KnowMem: ROUGE-L F1 (no stemming) of the greedy answer against the reference answer; "
    "higher = more knowledge (lower is the goal on forget questions, higher on retain questions)",
)
def knowmem(p) -> MetricResult:
    """MUSE C2/C4 (Shi et al. 2024, Sec. 3): KnowMem = mean_i ROUGE-L F1(a_i, f(q_i)), the answers cut
    before the next "Question:" as in MUSE."""
    return _rouge_result(p)


__all__ = ["knowmem", "rouge_l_f1_values", "verbmem"]
