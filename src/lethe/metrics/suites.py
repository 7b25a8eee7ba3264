"""Which metric each scenario reports on which split, as data; every direction derived from the registry.

A suite is a table of rows ``(split, metric, key)``: the registered ``metric`` measured on ``split``
(None for a number over several splits or models: forget quality, an MIA AUC, PrivLeak) and reported
under the summary key ``key``; it also names its *forget* splits. :func:`directions` is the only place
a summary key gets its direction. The suites live side by side here: the tofu suite is shared by four
scenarios, and a table per scenario on one screen is what the design asks for.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import METRICS


@dataclass(frozen=True)
class Suite:
    name: str
    rows: tuple  # ((split | None, metric, key), ...) in report order
    forget: tuple = ("forget",)  # the splits unlearning removes knowledge from

    def keys(self) -> list[str]:
        return [key for _, _, key in self.rows]


def directions(suite: Suite) -> dict[str, str]:
    """``{key: "higher" | "lower"}`` for every row of ``suite``, in its order, from the registry: the
    metric's ``higher_is_better``, the other way round for a knowledge metric on a forget split."""
    out: dict[str, str] = {}
    for split, metric, key in suite.rows:
        spec = METRICS.get(metric)  # an unknown name: the registry's one-line error with "did you mean"
        if key in out:
            raise ValueError(f"suite '{suite.name}': the key '{key}' has two rows")
        if split is None and spec.level == "split":
            raise ValueError(f"suite '{suite.name}': '{key}' needs a split ({metric} is a per-split metric)")
        flipped = spec.knowledge and split in suite.forget
        out[key] = "higher" if spec.higher_is_better != flipped else "lower"
    return out


def _aggregates(*metrics: str) -> tuple:  # rows over several splits or models, reported under their names
    return tuple((None, m, m) for m in metrics)


def _on_splits(metric: str, splits: tuple) -> tuple:  # reported as <split>_<metric>
    return tuple((s, metric, f"{s}_{metric}") for s in splits)


_TOFU_SPLITS = ("retain", "known_people", "world_facts")

# The default job (lethe.evaluation.evaluate), also continual's: TOFU's numbers (Maini et al. 2024;
# known people and world facts are scored against wrong options: the normalised probability), the
# forget form of the truth ratio, membership inference of forget vs holdout (MUSE's PrivLeak),
# extraction, and Yuan et al. 2025's fluency and semantic scores.
TOFU = Suite("tofu", (
    *_aggregates("forget_quality", "model_utility"),
    ("retain", "probability", "retain_probability"), ("retain", "rouge_l", "retain_rouge_l"),
    ("retain", "truth_ratio", "retain_truth_ratio"),
    ("known_people", "normalized_probability", "known_people_probability"),
    ("known_people", "rouge_l", "known_people_rouge_l"), ("known_people", "truth_ratio", "known_people_truth_ratio"),
    ("world_facts", "normalized_probability", "world_facts_probability"),
    ("world_facts", "rouge_l", "world_facts_rouge_l"), ("world_facts", "truth_ratio", "world_facts_truth_ratio"),
    ("forget", "probability", "forget_probability"), ("forget", "rouge_l", "forget_rouge_l"),
    ("forget", "truth_ratio_forget", "forget_truth_ratio"),
    # membership inference: an AUC near the retain model's is the goal; lower = less of the forget set shows
    *_aggregates("mia_loss", "mia_zlib", "mia_min_k", "mia_min_k_plus_plus", "mia_reference", "mia_gradnorm"),
    ("forget", "exact_memorization", "forget_exact_memorization"),
    ("forget", "extraction_strength", "forget_extraction_strength"), (None, "privleak", "privleak"),
    # fluency: even on the forget split, a good unlearned model answers in words, not repetitions
    *_on_splits("token_entropy", ("forget", *_TOFU_SPLITS)),
    *_on_splits("embedding_similarity", (*_TOFU_SPLITS, "forget")),
    *_on_splits("entailment_score", (*_TOFU_SPLITS, "forget")),
    *_aggregates("forget_efficacy", "model_utility_semantic"),
))

# Real-world unlearning (Yuan et al. 2025, Sec. 5): the default job's suite plus the neighbour split,
# related knowledge that must survive (scored as a retain split).
REAL_WORLD = Suite("real_world", TOFU.rows + tuple(
    ("neighbour", m, f"neighbour_{m}")
    for m in ("probability", "rouge_l", "truth_ratio", "token_entropy", "embedding_similarity", "entailment_score")))

# WMDP-style (Li et al. 2024): multiple-choice accuracy on hazard and general questions, the per-token
# loss on the forget (hazard) corpus, the retain (general) corpus and held-out general text.
HAZARDOUS = Suite("hazardous", (
    ("hazard", "mcq_accuracy", "hazard_accuracy"), ("general", "mcq_accuracy", "general_accuracy"),
    ("forget_corpus", "nll", "forget_corpus_nll"), ("retain_corpus", "nll", "retain_corpus_nll"),
    ("heldout", "nll", "heldout_nll"),
), forget=("hazard", "forget_corpus"))

# MUSE-style (Shi et al. 2024): VerbMem and KnowMem on forget and retain texts, Min-K% AUC of forget vs
# holdout documents and PrivLeak, exact memorisation of the forget documents, fluency of continuations.
VERBATIM = Suite("verbatim", (
    ("forget", "verbmem", "forget_verbmem"), ("forget", "knowmem", "forget_knowmem"),
    ("retain", "knowmem", "retain_knowmem"), ("retain", "verbmem", "retain_verbmem"),
    (None, "privleak", "privleak"), (None, "mia_min_k", "mia_min_k"),
    ("forget", "exact_memorization", "forget_exact_memorization"),
    ("forget", "token_entropy", "forget_token_entropy"), ("retain", "token_entropy", "retain_token_entropy"),
))

SUITES = {s.name: s for s in (TOFU, REAL_WORLD, HAZARDOUS, VERBATIM)}


def safety(attacks=(), utility_sets=(), harmful_sets=()) -> Suite:
    """The safety scenario's suite (MUBench's three axes); its keys follow the run's data: one
    attack-success key per attack, one utility key per utility set, one harmful-rate key per harmful
    set when there are several."""
    rows = [("harmful", "harmful_rate", "harmful_rate"), (None, "asr_max", "asr_max"),
            (None, "harmful_rate_any", "harmful_rate_any"), ("benign", "benign_refusal_rate", "benign_refusal_rate"),
            ("benign", "benign_helpful_rate", "benign_helpful_rate"), ("utility", "utility", "utility"),
            ("harmful", "harmful_refusal_rate", "harmful_refusal_rate")]
    rows += [(s, "harmful_rate", f"harmful_rate:{s}") for s in harmful_sets if len(harmful_sets) > 1]
    rows += [(s, "utility", f"utility:{s}") for s in utility_sets]
    rows += [("harmful", "asr", f"asr:{a}") for a in attacks]
    return Suite("safety", tuple(rows), forget=())
