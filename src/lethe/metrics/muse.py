"""MUSE's memorisation metrics (Shi et al. 2024, "MUSE: Machine Unlearning Six-Way Evaluation for
Language Models", Sec. 3, criteria C1 and C2), faithful to the reference code (``swj0419/muse_bench``:
``metrics/verbmem.py``, ``metrics/knowmem.py``, ``metrics/logger.py``; ``eval.py`` reads
``agg["mean_rougeL"]`` for both).

* ``verbmem`` (C1, no verbatim memorisation): the model is given the first tokens of a forget text
  and continues it greedily; ROUGE-L F1 between its continuation and the true continuation, cut to the
  new tokens the generation was allowed (MUSE's ``gt_ids[:, :max_new_tokens]``).
* ``knowmem`` (C2, no knowledge memorisation; C4, utility, on retain questions): ROUGE-L F1 between
  the model's greedy answer, cut before the next "Question:" as in MUSE, and the reference answer.

Both are the same per-item statistic on different probes, s_i = ROUGE-L F1(reference_i, generation_i)
(:mod:`lethe.metrics.rouge`) *without* stemming (MUSE's ``RougeEvalLogger``). value = mean_i s_i (MUSE's tables
print 100 x value); on a forget split the yardstick is the retain model's value. They read ``ids``,
``generations`` and ``references`` of any probes (made by :mod:`lethe.scenarios.verbatim`).
"""
from __future__ import annotations

import numpy as np

from . import MetricResult, register_metric, rouge


def rouge_l_f1_values(generations: list[str], references: list[str]) -> np.ndarray:  # MUSE's: no stemming
    return rouge.rouge_l_f1_values(generations, references, use_stemmer=False)


def _rouge_result(p) -> MetricResult:
    n = len(p.ids)
    if n == 0:
        raise ValueError("the probes have no items (ids is empty); a metric over zero items is undefined")
    if len(p.generations) != n or len(p.references) != n:
        raise ValueError(f"the probes have {len(p.generations)} generations and {len(p.references)} references, "
                         f"expected {n} each (one per item in ids)")
    return MetricResult.of(rouge_l_f1_values(list(p.generations), list(p.references)))


verbmem = register_metric(
    "verbmem", higher_is_better=True, knowledge=True,
    description="MUSE VerbMem: ROUGE-L F1 (no stemming) of the greedy continuation of a text's first tokens "
    "against the true continuation; higher = more verbatim memorisation (lower is the goal on forget)",
)(_rouge_result)
knowmem = register_metric(
    "knowmem", higher_is_better=True, knowledge=True,
    description="MUSE KnowMem: ROUGE-L F1 (no stemming) of the greedy answer against the reference answer; "
    "higher = more knowledge (lower is the goal on forget questions, higher on retain questions)",
)(_rouge_result)
