"""The TOFU-style evaluation of one model: probes once per split, the TOFU suite, membership inference,
extraction, semantic scores, bootstrap intervals and (optionally) lm-eval. ``evaluate`` is what the
scenarios built on the author benchmark call for every model; it never trains and never writes files.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from functools import partial

from . import dist
from .benchmarks.base import Benchmark, QAItem
from .config import EvalConfig
from .errors import LetheError
from .metrics import METRICS
from .metrics.bootstrap import summary_intervals
from .metrics.extraction import exact_memorization, extraction_strength
from .metrics.mia import privleak
from .metrics.semantic import (embedding_similarity, entailment_score, semantic_references, semantic_summary,
                               token_entropy)
from .metrics.tofu import forget_quality, split_metrics, tofu_summary, truth_ratio_log
from .models import load_model, load_tokenizer, max_positions, model_config
from .progress import bar
from .results import ModelResult
from .retain_logs import forget_quality_from_logs

EVAL_RECIPE = "tofu+mia+entropy+embedding+nli-4"  # bump when what evaluate() computes changes (cached evaluations are redone)

# split name -> role in the TOFU suite
EVAL_ROLES = {"forget": "forget", "retain": "retain", "known_people": "multiple_choice", "world_facts": "multiple_choice"}

def eval_splits(bench: Benchmark, forget_split: str) -> dict[str, list[QAItem]]:
    """The TOFU evaluation splits: forget, retain (authors in no forget split), known people, world facts."""
    forget_groups = {g for gs in bench.forget_sets.values() for g in gs}
    retain_eval = bench.splits.get("retain_eval") or [it for it in bench.retain(forget_split) if it.group not in forget_groups][:400]
    optional = ("known_people", "world_facts", "holdout")  # holdout: never trained on, the non-members of MIA
    return {"forget": bench.forget(forget_split), "retain": retain_eval,
            **{name: bench.splits[name] for name in optional if bench.splits.get(name)}}


MIA_ATTACKS_RUN = ("mia_loss", "mia_zlib", "mia_min_k", "mia_min_k_plus_plus")
# the summary metrics an evaluation gives without its generation pass (eval.generate=false): forget quality
# from the scoring pass, membership inference and extraction from the per-token one
WITHOUT_GENERATION = ("forget_quality", *MIA_ATTACKS_RUN, "mia_gradnorm", "mia_reference", "privleak",
                      "forget_exact_memorization", "forget_extraction_strength")


def input_length_notes(source: str, splits: dict[str, list[QAItem]], trust_remote_code: bool = False) -> list[str]:
    """Run notes for inputs that do not fit the model (``generation.length_warnings``): prompts longer
    than its positions, answers cut to a token or two. Reads the tokenizer and config, not the weights."""
    from .data import Encoder
    from .generation import length_warnings

    tok = load_tokenizer(source, trust_remote_code)
    config = model_config(source, trust_remote_code)
    return [f"inputs that do not fit: {line}" for line in length_warnings(Encoder(tok), splits, max_positions(config))]


def missing_holdout_notes(splits: dict) -> list[str]:
    """The run note for a benchmark without never-trained items ([] when it has them): what is not
    measured, and why, instead of columns that silently vanish from the report."""
    if splits.get("holdout") or "forget" not in splits:
        return []
    return ["no holdout split (items the model never saw, e.g. TOFU's holdout01/05/10.json): membership "
            "inference (LOSS, zlib, Min-K%, Min-K%++ AUCs) and PrivLeak are not measured: they compare the forget "
            "answers with never-seen ones"]


def membership(model, tokenizer, forget: list[QAItem], holdout: list[QAItem], encoder=None, batch_size: int = 64,
               retain_summary: dict | None = None, is_retain: bool = False, timings: dict | None = None,
               reference: str = "", gradnorm: bool = False, forget_tokens=None) -> dict[str, float]:
    """Membership inference (forget = members, holdout = non-members) and extraction on the forget answers
    from one per-token pass over both splits, open-unlearning's conventions (docs/metrics.md); PrivLeak
    (Min-K%) against the retain model's AUC when it is known, 0 for the retain model itself."""
    from .data import Encoder
    from .probes_tokens import gradient_norms, scored_texts, token_scores

    enc = encoder or Encoder(tokenizer)
    probes = {}
    timings = {} if timings is None else timings
    with timed_block(timings, "per-token scoring"):
        for name, items in (("forget", forget), ("holdout", holdout)):
            seqs = enc.qa_many((it.question, it.answer) for it in items)
            if name == "forget" and forget_tokens is not None:  # from the forget split's own scoring pass
                probes[name] = forget_tokens
            else:
                probes[name] = token_scores(model, seqs, tokenizer.pad_token_id, batch_size)
            probes[name].texts = scored_texts(tokenizer, seqs)  # zlib reads the decoded answer tokens
            if gradnorm:  # one backward pass per item; the parameters and their .grad stay as they were
                probes[name].grad_norms = gradient_norms(model, seqs, tokenizer.pad_token_id)
        ref = reference_token_probes(reference, tokenizer, forget, holdout, enc, batch_size) if reference else None
    with timed_block(timings, "metrics: mia + extraction"):
        out = {m: float(METRICS.get(m).fn(probes["forget"], probes["holdout"]).value) for m in MIA_ATTACKS_RUN}
        if gradnorm:
            out["mia_gradnorm"] = float(METRICS.get("mia_gradnorm").fn(probes["forget"], probes["holdout"]).value)
        if ref is not None:
            out["mia_reference"] = float(METRICS.get("mia_reference").fn(probes["forget"], probes["holdout"],
                                                                         ref["forget"], ref["holdout"]).value)
        out.update(extraction(probes["forget"]))
        if is_retain:
            out["privleak"] = 0.0
        elif retain_summary and "mia_min_k" in retain_summary:
            out["privleak"] = privleak(out["mia_min_k"], retain_summary["mia_min_k"])
    return out


def extraction(forget_tokens) -> dict[str, float]:
    """Exact memorisation and extraction strength of the forget answers (needs no holdout split)."""
    return {"forget_exact_memorization": float(exact_memorization(forget_tokens).value),
            "forget_extraction_strength": float(extraction_strength(forget_tokens).value)}


_REFERENCE_PROBES: dict = {}


def reference_token_probes(source: str, tokenizer, forget: list[QAItem], holdout: list[QAItem], enc,
                           batch_size: int = 64) -> dict:
    """The reference model's per-token probes on the forget and holdout sequences, once per process; it
    must share the evaluated model's tokenizer."""
    from .probes_tokens import token_scores
    from .sharding import evaluated

    key = (source, tuple(it.id for it in forget), tuple(it.id for it in holdout), len(tokenizer))
    if key not in _REFERENCE_PROBES:
        ref, ref_tok = load_model(source)
        if ref_tok.get_vocab() != tokenizer.get_vocab():
            raise LetheError(f"eval.mia_reference '{source}': its tokenizer differs from the evaluated model's; the "
                             "reference attack compares token log-probs of the same tokens")
        _REFERENCE_PROBES.clear()
        with evaluated(ref, "fsdp" if dist.in_lockstep() else "none") as ref:  # sharded as the evaluated model
            _REFERENCE_PROBES[key] = {
                name: token_scores(ref, enc.qa_many((it.question, it.answer) for it in items), tokenizer.pad_token_id,
                                   batch_size)
                for name, items in (("forget", forget), ("holdout", holdout))}
    return _REFERENCE_PROBES[key]


def evaluate(model, tokenizer, splits: dict[str, list[QAItem]], name: str = "model", kind: str = "model",
             eval_cfg=None, retain_result: ModelResult | None = None, encoder=None,
             postprocess=None, wrong_answers: bool = True) -> ModelResult:
    """Probe every split once, compute the TOFU suite on the probes, and forget quality when the
    retain model's forget-split results are given. Inference-time methods pass their ``encoder``
    (prompts rewritten) and ``postprocess(questions, generations) -> generations`` (an output filter).
    With ``eval.sharding=fsdp`` in a launch, the passes run on a copy of ``model`` sharded across the
    processes (:func:`lethe.sharding.evaluated`)."""
    from .sharding import evaluated

    eval_cfg = eval_cfg or EvalConfig()
    eval_cfg.check()
    t0 = time.perf_counter()
    with evaluated(model, eval_cfg.sharding) as net:
        return _evaluate(net, tokenizer, splits, name, kind, eval_cfg, retain_result, encoder, postprocess,
                         wrong_answers, t0)


def _evaluate(model, tokenizer, splits, name, kind, eval_cfg, retain_result, encoder, postprocess, wrong_answers,
              t0: float) -> ModelResult:
    from .data import Encoder
    from .loop import attention_for, autocast
    from .probes import embedding_similarity as embedding_similarity_probe, entailment_pairs, nli_labels, probe_split

    enc = encoder or Encoder(tokenizer)  # one per evaluation: every split and membership share its encodings
    result = ModelResult(name=name, kind=kind)
    timings: dict[str, float] = {}  # seconds per group: model passes vs metric code (EVAL_GROUPS)
    timed = partial(timed_block, timings)
    device = next(model.parameters()).device
    tofu_splits = {k: v for k, v in splits.items() if k != "holdout"}
    with bar(f"evaluate {name}", len(tofu_splits)) as progress, attention_for(model, eval_cfg.precision, device), \
            autocast(eval_cfg.precision, device):
        for split, items in tofu_splits.items():
            # the forget answers are scored per token once, for the TOFU suite, extraction and membership inference
            probes = probe_split(model, tokenizer, items, generate_answers=eval_cfg.generate,
                                 batch_size=eval_cfg.batch_size, max_new_tokens=eval_cfg.max_new_tokens or None,
                                 encoder=enc, timings=timings, answer_tokens=split == "forget",
                                 wrong_answers=wrong_answers)  # False: splits without any (n/a metrics)
            if postprocess is not None and probes.generations:
                probes.generations = list(postprocess([it.question for it in items], probes.generations))
                probes.generation_tokens = [tokenizer.tokenize(g) for g in probes.generations]
            result.probes[split] = probes
            role = EVAL_ROLES.get(split, "retain")
            with timed("metrics: tofu"):
                result.metrics[split] = split_metrics(probes, role) if eval_cfg.generate else {}
            if eval_cfg.generate:
                with timed("metrics: token entropy"):
                    result.metrics[split]["token_entropy"] = token_entropy(probes)
                if eval_cfg.embedding_model:
                    with timed("embedding model"):
                        probes.generation_similarity = embedding_similarity_probe(
                            probes.generations, semantic_references(probes), eval_cfg.embedding_model)
                    with timed("metrics: embedding similarity"):
                        result.metrics[split]["embedding_similarity"] = embedding_similarity(probes)
                if eval_cfg.nli_model:
                    with timed("nli model"):
                        premises, hypotheses = entailment_pairs(probes.generations, semantic_references(probes), role)
                        probes.generation_nli = nli_labels(premises, hypotheses, eval_cfg.nli_model)
                    with timed("metrics: entailment"):
                        result.metrics[split]["entailment_score"] = entailment_score(probes)
            progress.advance()
    fq = None
    with timed("metrics: tofu"):
        if retain_result is not None and retain_result.logs is not None and "forget" in result.probes:
            logs = retain_result.logs  # items matched on their answers where the log records them
            fq = forget_quality_from_logs(result.probes["forget"], logs,
                                          answers=[it.answer for it in splits["forget"]] if logs.answers else None)
        elif retain_result is not None and "forget" in retain_result.probes and "forget" in result.probes:
            fq = forget_quality(result.probes["forget"], retain_result.probes["forget"])
        elif kind == "retain":
            fq = forget_quality(result.probes["forget"], result.probes["forget"])  # = 1 by definition
        result.summary = tofu_summary(result.metrics, fq)
        result.summary.update(semantic_summary(result.summary))
    if "holdout" in splits and "forget" in splits:
        with attention_for(model, eval_cfg.precision, device), autocast(eval_cfg.precision, device):
            result.summary.update(membership(
                model, tokenizer, splits["forget"], splits["holdout"], enc, eval_cfg.batch_size,
                retain_summary=retain_result.summary if retain_result is not None else None,
                is_retain=kind == "retain", timings=timings, reference=eval_cfg.mia_reference,
                gradnorm=eval_cfg.mia_gradnorm, forget_tokens=result.probes["forget"].answer_tokens))
    elif "forget" in result.probes and result.probes["forget"].answer_tokens is not None:
        with timed("metrics: mia + extraction"):
            result.summary.update(extraction(result.probes["forget"].answer_tokens))
    if eval_cfg.bootstrap and eval_cfg.generate:
        both = fq is not None and retain_result is not None and "forget" in retain_result.probes
        with timed("metrics: bootstrap"):
            intervals = summary_intervals(
                result.metrics,
                forget_log_r=truth_ratio_log(result.probes["forget"]) if both else None,
                retain_log_r=truth_ratio_log(retain_result.probes["forget"]) if both else None,
                n_resamples=eval_cfg.bootstrap)
        result.intervals = {k: [lo, hi] for k, (lo, hi) in intervals.items()}
    if eval_cfg.lm_eval_tasks and encoder is None and postprocess is None:  # prompt methods: not the raw model's
        from .harness import flat_summary, run_harness

        with timed("lm-eval harness"):
            h = run_harness(model, tokenizer, list(eval_cfg.lm_eval_tasks),
                            include_path=eval_cfg.lm_eval_include or None,
                            limit=eval_cfg.lm_eval_limit or None, batch_size=eval_cfg.batch_size)
        values, dirs = flat_summary(h)
        result.summary.update({k: v for k, v in values.items() if v is not None})
        result.directions.update(dirs)
        result.seconds["lm_eval"] = h.seconds
    result.seconds["eval"] = time.perf_counter() - t0
    timings["other"] = max(0.0, result.seconds["eval"] - sum(timings.values()))
    result.seconds.update({f"eval: {k}": v for k, v in timings.items()})
    return result


# where evaluation time goes: passes of a model (the evaluated one, or the embedding / NLI model) vs
# metric code; "other" is the rest of evaluate() (tokenising, bookkeeping)
MODEL_GROUPS = ("scoring", "generation", "per-token scoring", "embedding model", "nli model", "lm-eval harness")


@contextmanager
def timed_block(timings: dict, group: str):
    """``with timed_block(timings, "group"):`` adds the block's seconds to ``timings[group]``."""
    t = time.perf_counter()
    try:
        yield
    finally:
        timings[group] = timings.get(group, 0.0) + (time.perf_counter() - t)

