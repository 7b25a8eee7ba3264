"""The TOFU evaluation suite (Maini et al. 2024, "TOFU: A Task of Fictitious Unlearning for LLMs").

Faithful to the reference implementation (``locuslab/tofu``: ``evaluate_util.py`` for the per-item
statistics, ``aggregate_eval_stat.py`` for the aggregation). Every probability is *per-token*,
P(a | q)^(1/|a|) = exp(log P(a | q) / |a|) = exp(-avg token NLL), what TOFU's ``avg_*_loss`` hold.
All log-space work clips exponents to +-700 so no value overflows to inf. See ``docs/metrics.md``.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from ..errors import LetheError
from ..probes import SplitProbes
from . import MetricResult, register_metric, rouge

_MAX_EXP = 700.0  # exp(709) is the largest finite float64; keep a margin

ROLES = ("forget", "retain", "multiple_choice")

# The nine numbers whose harmonic mean is TOFU's model utility (aggregate_eval_stat.get_model_utility):
# {Retain, Real Authors, Real World} x {Prob., ROUGE, Truth Ratio}.
UTILITY_SPLITS = ("retain", "known_people", "world_facts")
UTILITY_METRICS = ("probability", "rouge_l", "truth_ratio")
MODEL_UTILITY_KEYS = tuple(f"{s}_{m}" for s in UTILITY_SPLITS for m in UTILITY_METRICS)


# Validation: probes come from code, but a wrong shape must fail loudly, not broadcast silently.
def _n_items(p: SplitProbes) -> int:
    n = len(p.ids)
    if n == 0:
        raise ValueError("SplitProbes has no items (ids is empty); a metric over zero items is undefined")
    return n


def _field(p: SplitProbes, name: str, shape: tuple[int, ...]) -> np.ndarray:
    x = np.asarray(getattr(p, name), dtype=np.float64)
    if x.shape != shape:
        raise ValueError(f"SplitProbes.{name} has shape {x.shape}, expected {shape} (N items = len(ids))")
    return x


def _per_token(p: SplitProbes, which: str) -> np.ndarray:
    """Per-token log-prob log P(a|q)/|a|: (N,) for "answer" / "paraphrase", (N, K) for "perturbed"."""
    n = _n_items(p)
    if which == "perturbed":
        lp = np.asarray(p.perturbed_logprob, dtype=np.float64)
        if lp.ndim != 2 or lp.shape[0] != n or lp.shape[1] < 1:
            raise ValueError(f"SplitProbes.perturbed_logprob has shape {lp.shape}, expected ({n}, K) with K >= 1 "
                             "perturbed (wrong) answers per item")
        shape: tuple[int, ...] = lp.shape
    else:
        shape = (n,)
    lp = _field(p, f"{which}_logprob", shape)
    if not np.all(np.isfinite(lp)):
        raise ValueError(f"SplitProbes.{which}_logprob contains NaN or inf; log-probs must be finite")
    nt = _field(p, f"{which}_ntokens", shape)
    if not np.all(nt > 0):  # also catches NaN
        bad = int(np.argmax(~(nt > 0)))
        raise ValueError(f"SplitProbes.{which}_ntokens must be positive token counts; got {nt.flat[bad]} at index "
                         f"{bad} (an empty answer cannot be length-normalised)")
    return lp / nt


# Split-level metrics: fn(p: SplitProbes) -> MetricResult, one value per item.
@register_metric(
    "probability", higher_is_better=True, knowledge=True,
    description="per-token probability of the correct answer, exp(log P(a|q)/|a|), averaged over items "
    "(TOFU 'Prob.' on forget/retain)",
)
def probability(p: SplitProbes) -> MetricResult:
    """TOFU "Probability" (Maini et al. 2024, Sec. 2.5.1): mean_i P(a_i | q_i)^(1/|a_i|)
    (reference: ``np.exp(-avg_gt_loss)`` in ``aggregate_eval_stat.get_model_utility``)."""
    return MetricResult.of(np.exp(_per_token(p, "answer")))  # (N,)


@register_metric(
    "normalized_probability", higher_is_better=True, knowledge=True,
    description="per-token probability of the correct answer normalised over it and the K wrong options "
    "(TOFU 'Prob.' on Real Authors / World Facts); chance = 1/(K+1)",
)
def normalized_probability(p: SplitProbes) -> MetricResult:
    """TOFU "Probability" for multiple-choice style sets (Maini et al. 2024, Sec. 2.5.1), with log-sum-exp:

        prob_i = P(a_i|q_i)^(1/|a_i|) / ( P(a_i|q_i)^(1/|a_i|) + sum_k P(a~_ik|q_i)^(1/|a~_ik|) )

    (reference: ``avg_true_prob / avg_all_prob`` in ``aggregate_eval_stat.get_model_utility``)."""
    true = _per_token(p, "answer")[:, None]  # (N, 1)
    false = _per_token(p, "perturbed")  # (N, K)
    x = np.concatenate([true, false], axis=1)  # (N, 1+K)
    m = x.max(axis=1, keepdims=True)  # (N, 1), finite: inputs are validated finite
    log_norm = m[:, 0] + np.log(np.exp(x - m).sum(axis=1))  # (N,)
    return MetricResult.of(np.exp(true[:, 0] - log_norm))


@register_metric(
    "rouge_l", higher_is_better=True, knowledge=True,
    description="ROUGE-L recall of the greedy generation against the reference answer (rouge-score, "
    "Porter stemmer), averaged over items (TOFU 'ROUGE')",
)
def rouge_l_recall(p: SplitProbes) -> MetricResult:
    """TOFU "ROUGE" (Maini et al. 2024, Sec. 2.5.1): mean_i LCS(reference_i, generation_i) / |reference_i|
    in rouge-score tokens, stemmed (:mod:`lethe.metrics.rouge`; reference: ``evaluate_util.eval_rouge_recall``)."""
    n = _n_items(p)
    if len(p.generations) != n or len(p.references) != n:
        raise ValueError(f"SplitProbes has {len(p.generations)} generations and {len(p.references)} references, "
                         f"expected {n} each (one per item in ids)")
    return MetricResult.of(rouge.rouge_l_recall_values(p.generations, p.references, use_stemmer=True))


def truth_ratio_log(p: SplitProbes) -> np.ndarray:
    """log R_i = mean_k log P(a~_ik|q_i)/|a~_ik|  -  log P(a^_i|q_i)/|a^_i|     -> (N,)"""
    return _per_token(p, "perturbed").mean(axis=1) - _per_token(p, "paraphrase")  # (N,) geometric mean over k


def truth_ratio_values(p: SplitProbes) -> np.ndarray:
    """Raw truth ratio per item (Maini et al. 2024, Eq. 1):

        R_i = ( prod_k P(a~_ik|q_i)^(1/|a~_ik|) )^(1/K)  /  P(a^_i|q_i)^(1/|a^_i|)

    R < 1: the model prefers the true (paraphrased) answer. Exponent clipped to +-700. The reference's
    ``curr_stat_1`` is 1/R; the statistics below are written in terms of R and equal TOFU's.
    """
    return np.exp(np.clip(truth_ratio_log(p), -_MAX_EXP, _MAX_EXP))


@register_metric(
    "truth_ratio", higher_is_better=True, knowledge=True,
    description="TOFU truth ratio on non-forget splits, mean of max(0, 1 - R) with "
    "R = P(perturbed)/P(paraphrased) per token: higher = the model prefers the true answer",
)
def truth_ratio(p: SplitProbes, forget: bool = False) -> MetricResult:
    """TOFU "Truth Ratio" statistic (``aggregate_eval_stat.get_model_utility``), mean_i s_i with R of
    :func:`truth_ratio_values`:

    * ``forget=False`` (retain, known people, world facts):  s_i = max(0, 1 - R_i)
      (reference: ``max(0, 1 - 1/curr_stat_1)``). In [0, 1); higher = prefers the true answer.
    * ``forget=True``: s_i = min(R_i, 1/R_i) = exp(-|log R_i|)
      (reference: ``min(curr_stat_1, 1/curr_stat_1)``, symmetric so 1/R gives the same). In (0, 1];
      1 = the model finds true and wrong answers equally likely.
    """
    log_r = truth_ratio_log(p)  # (N,)
    if forget:
        per = np.exp(-np.abs(log_r))
    else:
        # 1 - R = -expm1(log R): exact near R = 1; clip so large R gives a finite negative, then 0.
        per = np.maximum(0.0, -np.expm1(np.minimum(log_r, _MAX_EXP)))
    return MetricResult.of(per)


@register_metric(
    "truth_ratio_forget", higher_is_better=True,
    description="TOFU truth ratio on the forget split, mean of min(R, 1/R): 1 = true and wrong answers "
    "equally likely (no preference left); judge it against the retain model's value",
)
def truth_ratio_forget(p: SplitProbes) -> MetricResult:
    """Forget form of :func:`truth_ratio`; the yardstick is the retain model's value (docs/metrics.md)."""
    return truth_ratio(p, forget=True)


@register_metric(
    "forget_quality", higher_is_better=True, level="aggregate",
    description="p-value of a two-sample KS test between the unlearned and the retain model's per-item "
    "truth ratios on the forget split (TOFU 'Forget Quality'); needs the retain model's results",
)
def forget_quality(
    unlearned: SplitProbes, retain_model: SplitProbes | None, *, check_ids: bool = True
) -> MetricResult:
    """TOFU "Forget Quality" (Maini et al. 2024, Sec. 2.5.2; ``aggregate_eval_stat.get_forget_quality``):

        FQ = p-value of KS_2samp( {R_i(unlearned)}, {R_i(retain model)} )   on the forget split

    with R the per-item truth ratio. KS depends only on the ordering of the pooled samples, so log R
    (exact, no clipping), R or the reference's 1/R give the same p-value. ``retain_model`` is required;
    with ``check_ids`` both cover the same items.
    """
    if retain_model is None:
        raise LetheError("forget quality needs the retain model's results on the forget split (a model trained "
                         "without the forget data); pass them explicitly, e.g. the retain model's results file")
    if check_ids and set(unlearned.ids) != set(retain_model.ids):
        only_u = len(set(unlearned.ids) - set(retain_model.ids))
        only_r = len(set(retain_model.ids) - set(unlearned.ids))
        raise LetheError(f"forget quality: the retain model's results cover different forget items ({only_u} ids "
                         f"only in the unlearned model's results, {only_r} only in the retain model's); evaluate "
                         "both on the same forget split")
    from scipy.stats import ks_2samp

    test = ks_2samp(truth_ratio_log(unlearned), truth_ratio_log(retain_model))
    return MetricResult(value=float(test.pvalue), per_sample=[])


@register_metric(
    "model_utility", higher_is_better=True, level="aggregate",
    description="harmonic mean of the nine non-forget numbers {retain, known_people, world_facts} x "
    "{probability, rouge_l, truth_ratio} (TOFU 'Model Utility'); 0 if any of them is 0",
)
def model_utility(values: Mapping[str, float]) -> float:
    """TOFU "Model Utility" (Maini et al. 2024, Sec. 2.5.2; ``aggregate_eval_stat.get_model_utility``):

        MU = 9 / sum_{s, m} 1 / v_{s,m}     s in {retain, known_people, world_facts},
                                            m in {probability, rouge_l, truth_ratio}

    over the keys :data:`MODEL_UTILITY_KEYS` of ``values``; 0 if any value is 0 (the limit, as scipy's
    ``hmean``); a negative or NaN value is an error.
    """
    missing = [k for k in MODEL_UTILITY_KEYS if k not in values]
    if missing:
        raise LetheError(f"model utility needs all nine non-forget numbers; missing: {', '.join(missing)} "
                         f"(evaluate the splits {', '.join(UTILITY_SPLITS)})")
    v = np.asarray([float(values[k]) for k in MODEL_UTILITY_KEYS], dtype=np.float64)
    if not np.all(np.isfinite(v)) or np.any(v < 0):
        bad = [k for k, x in zip(MODEL_UTILITY_KEYS, v) if not (np.isfinite(x) and x >= 0)]
        raise ValueError(f"model utility: values must be finite and >= 0; got {[(k, values[k]) for k in bad]}")
    if np.any(v == 0):
        return 0.0
    from scipy.stats import hmean

    return float(hmean(v))


# Splits play one of three roles: forget (TOFU forget01/05/10), retain (retain_perturbed) and
# multiple_choice (Real Authors = known_people, World Facts = world_facts: scored against wrong options).
_SPLIT_SUITE = {
    "forget": (("probability", probability), ("rouge_l", rouge_l_recall), ("truth_ratio", truth_ratio_forget)),
    "retain": (("probability", probability), ("rouge_l", rouge_l_recall), ("truth_ratio", truth_ratio)),
    "multiple_choice": (("probability", normalized_probability), ("rouge_l", rouge_l_recall),
                        ("truth_ratio", truth_ratio)),
}


def split_metrics(p: SplitProbes, role: str) -> dict[str, MetricResult]:
    """TOFU's three numbers for one split of ``role`` (:data:`ROLES`), keyed ``probability``,
    ``rouge_l``, ``truth_ratio``."""
    if role not in _SPLIT_SUITE:
        raise ValueError(f"unknown split role '{role}'; expected one of {', '.join(ROLES)}")
    # no wrong answers (probe_split(wrong_answers=False)): the truth ratio and the probability normalised
    # over the options cannot be computed: left out, n/a
    no_wrong = np.asarray(p.perturbed_logprob).shape[-1] == 0
    skip = (normalized_probability, truth_ratio, truth_ratio_forget) if no_wrong else ()
    return {name: fn(p) for name, fn in _SPLIT_SUITE[role] if fn not in skip}


def tofu_summary(
    results: Mapping[str, Mapping[str, MetricResult]], forget_quality_p: float | MetricResult | None = None
) -> dict[str, float]:
    """Flatten ``{split: {metric: MetricResult}}`` to ``{"<split>_<metric>": value}``, then add
    ``model_utility`` when its nine numbers are there (never a default) and ``forget_quality`` when given."""
    out = {f"{split}_{name}": float(res.value) for split, metrics in results.items() for name, res in metrics.items()}
    if all(k in out for k in MODEL_UTILITY_KEYS):
        out["model_utility"] = model_utility(out)
    if forget_quality_p is not None:
        out["forget_quality"] = float(getattr(forget_quality_p, "value", forget_quality_p))
    return out
