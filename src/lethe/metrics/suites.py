"""Which metric each scenario reports on which split, as data; every direction derived from the registry.

A suite is a table of rows ``(split, metric, key)``: the metric registered as ``metric`` (in
:data:`lethe.metrics.METRICS`), measured on the split ``split`` and reported under the summary key
``key``; ``split`` is None for a number over several splits or models (forget quality, model utility,
an MIA AUC of forget against holdout, PrivLeak). A suite also names its *forget* splits: the data
unlearning removes knowledge from.

:func:`directions` is the only place a summary key gets its direction (``"higher"`` or ``"lower"``
is better, for the report's arrows, its best-value highlight and ``train.best_by``): the metric's own
``higher_is_better``, flipped on a forget split when the metric measures knowledge (``knowledge=True``
at registration: probability, ROUGE-L, accuracy, NLL, ...). Metrics that state the goal itself (the
forget form of the truth ratio, MIA AUCs, fluency) keep their direction everywhere.

The suites live here, side by side, rather than in each scenario module: the tofu suite is shared by
four scenarios (tofu, continual, real_world adds a split, multilingual suffixes its keys), and a
table per scenario on one screen is what the design asks for. The scenarios still compute their
numbers themselves; a suite says what they report and which way is better.
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


# ------------------------------------------------------------------------------------------------
# The suites

# The default job (lethe.evaluation.evaluate), also continual's: TOFU's numbers (Maini et al. 2024;
# known people and world facts are scored against wrong options: the normalised probability), the
# forget form of the truth ratio, membership inference of forget vs holdout (MUSE's PrivLeak),
# extraction, and Yuan et al. 2025's fluency and semantic scores.
TOFU = Suite("tofu", (
    (None, "forget_quality", "forget_quality"), (None, "model_utility", "model_utility"),
    ("retain", "probability", "retain_probability"), ("retain", "rouge_l", "retain_rouge_l"),
    ("retain", "truth_ratio", "retain_truth_ratio"),
    ("known_people", "normalized_probability", "known_people_probability"),
    ("known_people", "rouge_l", "known_people_rouge_l"), ("known_people", "truth_ratio", "known_people_truth_ratio"),
    ("world_facts", "normalized_probability", "world_facts_probability"),
    ("world_facts", "rouge_l", "world_facts_rouge_l"), ("world_facts", "truth_ratio", "world_facts_truth_ratio"),
    ("forget", "probability", "forget_probability"), ("forget", "rouge_l", "forget_rouge_l"),
    ("forget", "truth_ratio_forget", "forget_truth_ratio"),
    # membership inference: an AUC near the retain model's is the goal; lower = less of the forget set shows
    (None, "mia_loss", "mia_loss"), (None, "mia_zlib", "mia_zlib"), (None, "mia_min_k", "mia_min_k"),
    (None, "mia_min_k_plus_plus", "mia_min_k_plus_plus"), (None, "mia_reference", "mia_reference"),
    (None, "mia_gradnorm", "mia_gradnorm"),
    ("forget", "exact_memorization", "forget_exact_memorization"),
    ("forget", "extraction_strength", "forget_extraction_strength"), (None, "privleak", "privleak"),
    # fluency: even on the forget split, a good unlearned model answers in words, not repetitions
    ("forget", "token_entropy", "forget_token_entropy"), ("retain", "token_entropy", "retain_token_entropy"),
    ("known_people", "token_entropy", "known_people_token_entropy"),
    ("world_facts", "token_entropy", "world_facts_token_entropy"),
    ("retain", "embedding_similarity", "retain_embedding_similarity"),
    ("known_people", "embedding_similarity", "known_people_embedding_similarity"),
    ("world_facts", "embedding_similarity", "world_facts_embedding_similarity"),
    ("forget", "embedding_similarity", "forget_embedding_similarity"),
    ("retain", "entailment_score", "retain_entailment_score"),
    ("known_people", "entailment_score", "known_people_entailment_score"),
    ("world_facts", "entailment_score", "world_facts_entailment_score"),
    ("forget", "entailment_score", "forget_entailment_score"),
    (None, "forget_efficacy", "forget_efficacy"), (None, "model_utility_semantic", "model_utility_semantic"),
))

# Real-world unlearning (Yuan et al. 2025, Sec. 5): the default job's suite plus the neighbour split,
# related knowledge that must survive (scored as a retain split).
REAL_WORLD = Suite("real_world", TOFU.rows + (
    ("neighbour", "probability", "neighbour_probability"), ("neighbour", "rouge_l", "neighbour_rouge_l"),
    ("neighbour", "truth_ratio", "neighbour_truth_ratio"), ("neighbour", "token_entropy", "neighbour_token_entropy"),
    ("neighbour", "embedding_similarity", "neighbour_embedding_similarity"),
    ("neighbour", "entailment_score", "neighbour_entailment_score"),
))

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
