"""The per-token loss of a text: how well the model predicts it, token by token.

For a document scored as a Q&A item without a question, the language-modelling loss on the document
(the hazardous scenario reads it on the forget and retain corpora and on held-out text).
"""
from __future__ import annotations

import numpy as np

from . import MetricResult, register_metric


@register_metric(
    "nll", higher_is_better=False, knowledge=True,
    description="mean per-token negative log-likelihood of the answer (of the whole text for a document), "
    "-log P(a|q)/|a|, averaged over items; lower = the model predicts the text better",
)
def nll(p) -> MetricResult:
    """mean_i -answer_logprob_i / answer_ntokens_i of a :class:`lethe.probes.SplitProbes` (a count below 1
    is taken as 1: an empty text has no tokens to predict)."""
    lp, nt = np.asarray(p.answer_logprob), np.asarray(p.answer_ntokens)  # (N,), (N,)
    if not len(p.ids):
        raise ValueError("nll: no items; a mean over zero items is undefined")
    if lp.shape != (len(p.ids),) or nt.shape != lp.shape:
        raise ValueError(f"nll: answer_logprob {lp.shape} and answer_ntokens {nt.shape} must have one value per "
                         f"item ({len(p.ids)})")
    return MetricResult.of([float(-a / max(int(n), 1)) for a, n in zip(lp, nt)])
