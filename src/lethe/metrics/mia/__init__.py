"""Membership-inference attacks (MIA) and MUSE's PrivLeak.

Each attack (one small file each) maps per-token probes (:class:`lethe.probes_tokens.TokenProbes`) to
one score per sequence, HIGHER = "more likely a member"; the members are the forget items, the
non-members the holdout items. The registered ``mia_<attack>`` metrics are aggregate-level,
``fn(forget, holdout, ...) -> MetricResult(auc, [])`` (:mod:`.auc`); the yardstick is the retain
model's AUC, not 0.5, and :func:`privleak` is MUSE's relative gap to it. Conventions equal
open-unlearning's (``src/evals/metrics/mia/``) by default; docs/metrics.md lists the test that checks each.
"""
from __future__ import annotations

import numpy as np

from ...errors import LetheError
from ...probes_tokens import TokenProbes
from .. import MetricResult, register_metric
from .auc import roc_auc
from .gradnorm import gradnorm_scores, gradnorm_values
from .loss import loss_scores
from .min_k import DEFAULT_K, min_k_scores
from .min_k_plus_plus import min_k_plus_plus_scores
from .reference import reference_scores
from .zlib import zlib_scores


def mia_auc(scores_forget, scores_holdout) -> MetricResult:
    """AUC of membership scores, forget (members) vs holdout (non-members): value = P(s_forget > s_holdout)
    + 1/2 P(s_forget = s_holdout); per_sample = [] (a set-level statistic)."""
    return MetricResult(value=roc_auc(scores_forget, scores_holdout), per_sample=[])


def _value(x, name: str) -> float:
    v = float(x.value if isinstance(x, MetricResult) else x)
    if not (np.isfinite(v) and 0.0 <= v <= 1.0):
        raise ValueError(f"privleak: {name} must be an AUC in [0, 1], got {v}")
    return v


@register_metric(
    "privleak", higher_is_better=True, level="aggregate",
    description="MUSE PrivLeak (%): relative gap between the model's and the retain model's MIA AUC "
    "(forget vs holdout), in MUSE's sign: 0 = like the retain model, < 0 = leaks (under-unlearned), "
    "> 0 = over-unlearned; needs the retain model's AUC",
)
def privleak(auc_model: float | MetricResult, auc_retain: float | MetricResult | None) -> float:
    """MUSE "PrivLeak" (Shi et al. 2024, "MUSE: Machine Unlearning Six-Way Evaluation for Language
    Models", Sec. 3, criterion C3), in percent:

        PrivLeak = ( AUC_muse(f_unlearn) - AUC_muse(f_retrain) ) / AUC_muse(f_retrain) * 100
                 = ( auc_retain - auc_model ) / ( 1 - auc_retain ) * 100

    as MUSE's ``sweep`` labels the forget items *non-members*: AUC_muse = 1 - AUC (:func:`mia_auc`). It
    reproduces MUSE's numbers (MUSE-News target: about -99.8) and open-unlearning's ``privleak``. 0 = as
    private as the retain model; negative = the forget set still stands out. ``auc_retain`` is required.
    """
    if auc_retain is None:
        raise LetheError("PrivLeak needs the retain model's MIA AUC on the same forget and holdout splits (a model "
                         "trained without the forget data); evaluate the retain model with the same attack and "
                         "pass its AUC explicitly, e.g. from its results file")
    a = _value(auc_model, "auc_model")
    r = _value(auc_retain, "auc_retain")
    if r >= 1.0:
        raise LetheError("PrivLeak is undefined when the retain model's AUC is 1 (MUSE's AUC 0): the retain model, "
                         "never trained on the forget set, separates it perfectly from the holdout set, so the two "
                         "splits are not from the same distribution; check the forget and holdout data")
    return (r - a) / (1.0 - r) * 100.0


# Registered attacks: AUC of forget vs holdout under each attack, from one model's TokenProbes.
_AUC_DOC = "; forget (members) vs holdout, judged against the retain model's AUC"


def _attack(name: str, description: str):
    return register_metric(name, higher_is_better=False, description=description + _AUC_DOC, level="aggregate")


@_attack("mia_loss", "MIA AUC of the LOSS attack, score = -mean token NLL (Yeom et al. 2018)")
def mia_loss(forget: TokenProbes, holdout: TokenProbes) -> MetricResult:
    return mia_auc(loss_scores(forget.logprobs), loss_scores(holdout.logprobs))


@_attack("mia_zlib", "MIA AUC of the zlib attack, score = -mean NLL / zlib bytes of the decoded answer tokens "
         "(Carlini et al. 2021)")
def mia_zlib(forget: TokenProbes, holdout: TokenProbes) -> MetricResult:
    return mia_auc(zlib_scores(forget.logprobs, forget.texts), zlib_scores(holdout.logprobs, holdout.texts))


@_attack("mia_min_k", "MIA AUC of Min-K% Prob, score = mean of the k=40% lowest answer-token log-probs, EOS "
         "left out (Shi et al. 2024; open-unlearning's k)")
def mia_min_k(forget: TokenProbes, holdout: TokenProbes, k: float = DEFAULT_K, keep_last: bool = False) -> MetricResult:
    return mia_auc(min_k_scores(forget.logprobs, k, keep_last), min_k_scores(holdout.logprobs, k, keep_last))


@_attack("mia_min_k_plus_plus", "MIA AUC of Min-K%++, score = mean of the k=40% lowest (log p - mu)/sigma over "
         "the vocabulary, EOS left out (Zhang et al. 2025; open-unlearning's k)")
def mia_min_k_plus_plus(forget: TokenProbes, holdout: TokenProbes, k: float = DEFAULT_K,
                        keep_last: bool = False) -> MetricResult:
    return mia_auc(min_k_plus_plus_scores(forget.logprobs, forget.mu, forget.sigma, k, keep_last),
                   min_k_plus_plus_scores(holdout.logprobs, holdout.mu, holdout.sigma, k, keep_last))


@_attack("mia_reference", "MIA AUC of the reference attack, score = NLL under a reference model - NLL under "
         "the target (Carlini et al. 2021)")
def mia_reference(
    forget: TokenProbes, holdout: TokenProbes, forget_ref: TokenProbes | None, holdout_ref: TokenProbes | None
) -> MetricResult:
    """``forget_ref`` / ``holdout_ref``: the reference model's probes on the same sequences."""
    if forget_ref is None or holdout_ref is None:
        raise LetheError("the reference MIA needs a reference model's token scores on the same forget and holdout "
                         "sequences (e.g. the base model before fine-tuning); none were given")
    return mia_auc(reference_scores(forget.logprobs, forget_ref.logprobs),
                   reference_scores(holdout.logprobs, holdout_ref.logprobs))


@_attack("mia_gradnorm", "MIA AUC of the gradient-norm attack, score = -mean over parameter tensors of the L2 norm "
         "of the gradient of the mean answer NLL, EOS left out (Wang et al. 2024; open-unlearning's)")
def mia_gradnorm(forget: TokenProbes, holdout: TokenProbes, aggregate: str = "mean") -> MetricResult:
    """``aggregate``: "mean" of the per-tensor norms (open-unlearning) or "global" L2 norm
    (:func:`.gradnorm.gradnorm_values`); which tokens the loss covers is fixed by the probe."""
    return mia_auc(gradnorm_scores(forget.grad_norms, aggregate), gradnorm_scores(holdout.grad_norms, aggregate))


__all__ = ["gradnorm_scores", "gradnorm_values", "loss_scores", "mia_auc", "mia_gradnorm", "mia_loss", "mia_min_k",
           "mia_min_k_plus_plus", "mia_reference", "mia_zlib", "min_k_plus_plus_scores", "min_k_scores", "privleak",
           "reference_scores", "roc_auc", "zlib_scores"]
