"""The main job: benchmark -> target and retain models -> unlearning -> evaluation -> report.

``run(cfg)`` is what ``lethe run`` calls. On the built-in benchmark Lethe trains its own tokenizer,
base, target and retain models (cached by a hash of the data actually read, the recipe and the
tiny-model config); for a user's
model the target is ``cfg.model`` and the gold standard is ``cfg.retain_model`` (a model or its
results file), never a silent default.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

from . import __version__
from .benchmarks.base import Benchmark, QAItem, atomic_write_text
from .config import RunConfig, TinyModelConfig, to_dict
from .errors import LetheError
from .results import SCHEMA_VERSION, ModelResult, load_retain_result

MODEL_RECIPE = "tiny-llama-1"  # bump when the way built-in models are trained changes
EVAL_RECIPE = "tofu+mia+entropy+embedding+nli-4"  # bump when what evaluate() computes changes (cached evaluations are redone)

# split name -> role in the TOFU suite
EVAL_ROLES = {"forget": "forget", "retain": "retain", "known_people": "multiple_choice", "world_facts": "multiple_choice"}


def set_threads(n: int = 0) -> int:
    """Torch threads: ``n``, else OMP_NUM_THREADS, else the usable cores. Returns the count."""
    import torch

    if n <= 0:
        env = os.environ.get("OMP_NUM_THREADS", "")
        n = int(env) if env.isdigit() and int(env) > 0 else len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(n)
    return n


def _hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------------------------
# Evaluation


def eval_splits(bench: Benchmark, forget_split: str) -> dict[str, list[QAItem]]:
    """The TOFU evaluation splits: forget, retain (authors in no forget split), known people, world facts."""
    forget_groups = {g for gs in bench.forget_sets.values() for g in gs}
    retain_eval = bench.splits.get("retain_eval") or [it for it in bench.retain(forget_split) if it.group not in forget_groups][:400]
    out = {"forget": bench.forget(forget_split), "retain": retain_eval}
    for name in ("known_people", "world_facts"):
        if bench.splits.get(name):
            out[name] = bench.splits[name]
    if bench.splits.get("holdout"):  # never trained on: the non-members of membership inference
        out["holdout"] = bench.splits["holdout"]
    return out


MIA_ATTACKS_RUN = ("mia_loss", "mia_zlib", "mia_min_k", "mia_min_k_plus_plus")


def input_length_notes(source: str, splits: dict[str, list[QAItem]], trust_remote_code: bool = False) -> list[str]:
    """Run notes for inputs that do not fit the model (``generation.length_warnings``): prompts longer
    than its positions, answers cut to a token or two. Reads the tokenizer and config, not the weights."""
    from transformers import AutoConfig

    from .data import Encoder
    from .generation import length_warnings
    from .models import load_tokenizer, max_positions

    tok = load_tokenizer(source, trust_remote_code)
    config = AutoConfig.from_pretrained(str(source), trust_remote_code=trust_remote_code)
    return [f"inputs that do not fit: {line}" for line in length_warnings(Encoder(tok), splits, max_positions(config))]


def missing_holdout_note(splits: dict) -> str:
    """The run note for a benchmark without never-trained items ("" when it has them): what is not
    measured, and why, instead of columns that silently vanish from the report."""
    if splits.get("holdout") or "forget" not in splits:
        return ""
    return ("no holdout split (items the model never saw, e.g. TOFU's holdout01/05/10.json): membership "
            "inference (LOSS, zlib, Min-K%, Min-K%++ AUCs) and PrivLeak are not measured: they compare the forget "
            "answers with never-seen ones")


def membership(model, tokenizer, forget: list[QAItem], holdout: list[QAItem], encoder=None, batch_size: int = 64,
               retain_summary: dict | None = None, is_retain: bool = False, timings: dict | None = None,
               reference: str = "", gradnorm: bool = False, forget_tokens=None) -> dict[str, float]:
    """Membership inference (forget = members, holdout = non-members) and extraction on the forget
    answers, from one per-token pass over both splits; PrivLeak against the retain model's AUC
    (Min-K% at k = 0.4, open-unlearning's and MUSE's attack) when it is known, 0 for the retain model
    itself. Every metric at its default, open-unlearning's conventions (docs/metrics.md)."""
    from .data import Encoder
    from .metrics import METRICS
    from .metrics.mia import privleak
    from .probes_tokens import scored_texts, token_scores

    enc = encoder or Encoder(tokenizer)
    probes = {}
    seqs = {name: [enc.qa(it.question, it.answer) for it in items] for name, items in (("forget", forget),
                                                                                       ("holdout", holdout))}
    t0 = time.perf_counter()
    for name in ("forget", "holdout"):
        if name == "forget" and forget_tokens is not None:  # from the forget split's own scoring pass
            p = forget_tokens
        else:
            p = token_scores(model, seqs[name], tokenizer.pad_token_id, batch_size)
        p.texts = scored_texts(tokenizer, seqs[name])  # zlib reads the decoded answer tokens, as open-unlearning
        probes[name] = p
    if gradnorm:  # one backward pass per item; the parameters and their .grad stay as they were
        from .probes_tokens import gradient_norms

        for name in ("forget", "holdout"):
            probes[name].grad_norms = gradient_norms(model, seqs[name], tokenizer.pad_token_id)
    ref = reference_token_probes(reference, tokenizer, forget, holdout, enc, batch_size) if reference else None
    t1 = time.perf_counter()
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
    if timings is not None:
        timings["per-token scoring"] = timings.get("per-token scoring", 0.0) + (t1 - t0)
        timings["metrics: mia + extraction"] = timings.get("metrics: mia + extraction", 0.0) + (time.perf_counter() - t1)
    return out


def extraction(forget_tokens) -> dict[str, float]:
    """Exact memorisation and extraction strength of the forget answers (per-token probes): they need
    no never-seen items, so they are measured with or without a holdout split."""
    from .metrics.extraction import exact_memorization, extraction_strength

    return {"forget_exact_memorization": float(exact_memorization(forget_tokens).value),
            "forget_extraction_strength": float(extraction_strength(forget_tokens).value)}


_REFERENCE_PROBES: dict = {}


def reference_token_probes(source: str, tokenizer, forget: list[QAItem], holdout: list[QAItem], enc,
                           batch_size: int = 64) -> dict:
    """The reference model's per-token probes on the forget and holdout sequences, computed once per
    process (the reference never changes during a run). It must share the evaluated model's tokenizer."""
    from .models import load_model
    from .probes_tokens import token_scores

    key = (source, tuple(it.id for it in forget), tuple(it.id for it in holdout), len(tokenizer))
    if key not in _REFERENCE_PROBES:
        ref, ref_tok = load_model(source)
        if ref_tok.get_vocab() != tokenizer.get_vocab():
            raise LetheError(f"eval.mia_reference '{source}': its tokenizer differs from the evaluated model's; the "
                             "reference attack compares token log-probs of the same tokens")
        _REFERENCE_PROBES.clear()
        _REFERENCE_PROBES[key] = {
            name: token_scores(ref, [enc.qa(it.question, it.answer) for it in items], tokenizer.pad_token_id, batch_size)
            for name, items in (("forget", forget), ("holdout", holdout))}
    return _REFERENCE_PROBES[key]


def evaluate(model, tokenizer, splits: dict[str, list[QAItem]], name: str = "model", kind: str = "model",
             eval_cfg=None, retain_result: ModelResult | None = None, encoder=None,
             postprocess=None, wrong_answers: bool = True) -> ModelResult:
    """Probe every split once, compute the TOFU suite on the probes, and forget quality when the
    retain model's forget-split results are given.

    Inference-time methods pass their ``encoder`` (prompts rewritten, answers scored as usual) and
    ``postprocess(questions, generations) -> generations`` (an output filter) and are measured by the
    same probes and metrics as weight-changing methods.
    """
    from .config import EvalConfig
    from .metrics.semantic import (embedding_similarity, entailment_score, semantic_references, semantic_summary,
                                   token_entropy)
    from .probes import embedding_similarity as embedding_similarity_probe
    from .probes import entailment_pairs, nli_labels
    from .metrics.tofu import forget_quality, split_metrics, tofu_summary
    from .probes import probe_split
    from .progress import bar
    from .train import attention_for, autocast

    eval_cfg = eval_cfg or EvalConfig()
    eval_cfg.check()
    t0 = time.perf_counter()
    result = ModelResult(name=name, kind=kind)
    timings: dict[str, float] = {}  # seconds per group: model passes vs metric code (EVAL_GROUPS)
    timed = partial(_timed, timings)
    device = next(model.parameters()).device
    tofu_splits = {k: v for k, v in splits.items() if k != "holdout"}
    with bar(f"evaluate {name}", len(tofu_splits)) as progress, attention_for(model, eval_cfg.precision, device), \
            autocast(eval_cfg.precision, device):
        for split, items in tofu_splits.items():
            # the forget answers are scored per token once, for the TOFU suite, extraction and membership inference
            probes = probe_split(model, tokenizer, items, generate_answers=eval_cfg.generate,
                                 batch_size=eval_cfg.batch_size, max_new_tokens=eval_cfg.max_new_tokens or None,
                                 encoder=encoder, timings=timings, answer_tokens=split == "forget",
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
            from .retain_logs import forget_quality_from_logs

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
                model, tokenizer, splits["forget"], splits["holdout"], encoder, eval_cfg.batch_size,
                retain_summary=retain_result.summary if retain_result is not None else None,
                is_retain=kind == "retain", timings=timings, reference=eval_cfg.mia_reference,
                gradnorm=eval_cfg.mia_gradnorm, forget_tokens=result.probes["forget"].answer_tokens))
    elif "forget" in result.probes and result.probes["forget"].answer_tokens is not None:
        with timed("metrics: mia + extraction"):
            result.summary.update(extraction(result.probes["forget"].answer_tokens))
    if eval_cfg.bootstrap and eval_cfg.generate:
        from .metrics.bootstrap import summary_intervals
        from .metrics.tofu import truth_ratio_log

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
def _timed(timings: dict, group: str):
    """``with _timed(timings, "group"):`` adds the block's seconds to ``timings[group]``."""
    t = time.perf_counter()
    try:
        yield
    finally:
        timings[group] = timings.get(group, 0.0) + (time.perf_counter() - t)


# ------------------------------------------------------------------------------------------------
# Built-in models


@dataclass
class Models:
    target: str  # model folder or hub id
    retain: str = ""  # retain model folder or hub id ("" if only results are known)
    retain_result: ModelResult | None = None
    notes: list[str] = field(default_factory=list)
    cache_key: str = ""
    timings: dict = field(default_factory=dict)


def _training_texts(bench: Benchmark) -> list[str]:
    texts = list(bench.pretrain_text)
    for items in bench.splits.values():
        for it in items:
            texts.extend([it.question, it.answer, it.paraphrase, *it.perturbed_answers])
    return texts


def build_builtin_models(bench: Benchmark, forget_split: str, tiny: TinyModelConfig, cache_dir: str | Path,
                         log=print) -> Models:
    """Tokenizer -> base (world knowledge) -> target (+ all authors) and retain model (+ retain authors).

    Fine-tuning replays the world-knowledge data so the base knowledge survives (model utility > 0).
    Cached under ``cache_dir/models/<hash>``: a second run starts from the cache.
    """
    from .data import Encoder
    from .models import load_model, save_model, tiny_llama, train_tokenizer
    from .train import TrainConfig, finetune

    root = builtin_model_root(bench, tiny, cache_dir)
    key = root.name
    target_dir, base_dir = root / "target", root / "base"
    retain_dir = root / f"retain-{forget_split}"
    models = Models(target=str(target_dir), retain=str(retain_dir), cache_key=key)
    if target_dir.exists() and retain_dir.exists():
        log(f"models: from cache {root}")
        return models

    train_cfg = TrainConfig(**{**to_dict(builtin_finetune_config(tiny)), "epochs": tiny.base_epochs})
    if base_dir.exists():
        base, tok = load_model(base_dir)
    else:
        t0 = time.perf_counter()
        tok = train_tokenizer(_training_texts(bench), tiny.vocab_size)
        models.timings["tokenizer"] = time.perf_counter() - t0
        base = tiny_llama(len(tok), tiny.hidden_size, tiny.num_layers, tiny.num_heads, tiny.intermediate_size,
                          seed=tiny.seed, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                          pad_token_id=tok.pad_token_id)
        enc = Encoder(tok)
        world = _world_sequences(bench, enc)
        log(f"models: training base model ({sum(p.numel() for p in base.parameters()) / 1e6:.2f}M parameters) on "
            f"{len(world)} world-knowledge sequences")
        base, st = finetune(base, tok, world, train_cfg, "train base model")
        models.timings["base"] = st.seconds
        save_model(base, tok, base_dir)
        record_training_seconds(root, "base", st.seconds)
    enc = Encoder(tok)
    world = _world_sequences(bench, enc)
    ft = builtin_finetune_config(tiny)
    jobs = [("target", target_dir, bench.splits["authors"]), ("retain", retain_dir, bench.retain(forget_split))]
    for label, folder, authors in jobs:
        if folder.exists():
            continue
        model, _ = load_model(base_dir)
        seqs = _author_sequences(authors, enc) + world
        log(f"models: fine-tuning the {label} model on {len(authors)} author facts + world replay")
        model, st = finetune(model, tok, seqs, ft, f"train {label} model")
        models.timings[label] = st.seconds
        save_model(model, tok, folder)
        record_training_seconds(root, folder.name, st.seconds)
    return models


def builtin_model_root(bench: Benchmark, tiny: TinyModelConfig, cache_dir: str | Path) -> Path:
    """``cache_dir/models/<key>``: the built-in models of this benchmark version and tiny-model config."""
    key = _hash({"recipe": MODEL_RECIPE, "benchmark": bench.name, "content": bench.fingerprint(),
                 "tiny": to_dict(tiny)})
    return Path(cache_dir) / "models" / key


def builtin_finetune_config(tiny: TinyModelConfig):
    """The recipe of the built-in target and retain models (base -> + author facts and world replay)."""
    from .train import TrainConfig

    return TrainConfig(lr=tiny.lr, epochs=tiny.finetune_epochs, batch_size=tiny.batch_size, warmup_ratio=0.05,
                       weight_decay=0.0, seed=tiny.seed)


def record_training_seconds(root: Path, name: str, seconds: float) -> None:
    """Training seconds of a cached model, kept in ``root/timings.json`` so a later run that starts
    from the cache still knows what the model cost (``Models.timings`` holds this process's only)."""
    path = root / "timings.json"
    known = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    atomic_write_text(path, json.dumps({**known, name: seconds}, indent=1, sort_keys=True))


def recorded_training_seconds(root: Path) -> dict:
    path = root / "timings.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def _author_sequences(items: list[QAItem], enc) -> list:
    """Each author fact in two wordings: (question, answer) and (paraphrased question, paraphrased answer).

    A model of a million parameters does not carry a fact over to a wording it never saw, so the
    truth ratio (paraphrase vs perturbed paraphrases) would measure nothing if the knowledge came in
    one wording only; real pretraining data states facts in many wordings too. Generation is
    scored on the original question, whose answer wording stays unambiguous.
    """
    seqs = [enc.qa(it.question, it.answer) for it in items]
    seqs += [enc.qa(it.paraphrased_question, it.paraphrase) for it in items if it.paraphrased_question]
    return seqs


def _world_sequences(bench: Benchmark, enc) -> list:
    seqs = [enc.text(t) for t in bench.pretrain_text]
    for name in ("world_facts", "known_people"):
        seqs += [enc.qa(it.question, it.answer) for it in bench.splits.get(name, [])]
    return seqs


def prepare_models(cfg: RunConfig, bench: Benchmark, log=print) -> Models:
    if not cfg.model:
        if bench.name != "lethe-authors":
            raise LetheError(
                f"benchmark '{bench.name}' has no built-in models; give the model trained on it with model=PATH_OR_HUB_ID "
                "(and its gold standard with retain_model=...)"
            )
        if cfg.retain_model:
            raise LetheError(f"retain_model={cfg.retain_model} goes with model=...: the built-in run trains its own "
                             "retain model on this benchmark; drop retain_model or give the target with model=")
        return build_builtin_models(bench, cfg.forget_split, cfg.tiny_model, cfg.cache_dir, log)
    models = Models(target=cfg.model)
    rm = cfg.retain_model
    from .retain_logs import is_retain_logs

    if rm and is_retain_logs(rm):  # TOFU's eval_log_forget.json / open-unlearning's TOFU_EVAL.json
        models.retain_result = published_retain_result(rm)
        models.notes += [f"retain model: {n}" for n in models.retain_result.logs.notes]
        models.notes.append(f"gold standard: the published evaluation {rm} ({models.retain_result.logs.layout}, "
                            f"{models.retain_result.logs.items} forget items); forget quality is computed against "
                            "its per-item truth ratios as its own code does; its other numbers are the published ones")
    elif rm and (rm.endswith(".json") or (Path(rm).is_dir() and (Path(rm) / "results.json").exists())):
        split = {**bench.split_fingerprint(cfg.forget_split),
                 "answers": [it.answer for it in bench.forget(cfg.forget_split)]}
        models.retain_result, notes = load_retain_result(rm, split, bench.fingerprint(), EVAL_RECIPE)
        models.notes += notes
    elif rm:
        models.retain = rm
    else:
        models.notes.append("no retain model given (retain_model=...): forget quality and PrivLeak are not reported")
    return models


def published_retain_result(path: str) -> ModelResult:
    """The retain model's row from a published evaluation log: the log's own aggregate numbers as its
    summary, the per-item values kept for forget quality (no probes: nothing else is recomputed)."""
    from .retain_logs import load_retain_logs

    logs = load_retain_logs(path)
    return ModelResult(name="retain model", kind="retain", summary=dict(logs.aggregates), logs=logs)


# ------------------------------------------------------------------------------------------------
# Unlearning


@dataclass(frozen=True)
class MethodRun:
    label: str
    method: str
    options: dict
    train: object  # TrainConfig


def resolve_methods(cfg: RunConfig) -> list[MethodRun]:
    """Method entries: a name, or {"method": name, "label": ..., "train": {...}, <option>: value}."""
    from .config import build
    from .methods import get_method
    from .train import TrainConfig

    runs, labels = [], set()
    if not cfg.methods:
        raise LetheError("no methods to run: set methods=[ga,npo,...]")
    for entry in cfg.methods:
        if isinstance(entry, str):
            entry = {"method": entry}
        if not isinstance(entry, dict) or "method" not in entry:
            raise LetheError(f"method entry {entry!r} must be a name or a mapping with a 'method' key")
        entry = dict(entry)
        name = entry.pop("method")
        spec = get_method(name)
        train_over = entry.pop("train", {}) or {}
        label = entry.pop("label", None)
        options = {**cfg.method_options.get(name, {}), **entry}
        mcfg = spec.make_config(options)  # validates option names and values now, not after training
        if label is None:
            default_retain = getattr(spec.config(), "retain", None)
            label = name if getattr(mcfg, "retain", None) == default_retain else f"{name}+{mcfg.retain}"
        if label in labels:
            raise LetheError(f"two method entries share the label '{label}'; give one a distinct label")
        labels.add(label)
        train_cfg = build(TrainConfig, {**to_dict(cfg.train), **train_over}, prefix="train.")
        train_cfg.check()
        if train_cfg.best_by:
            check_report_columns([train_cfg.best_by], what="train.best_by")
        runs.append(MethodRun(label, name, options, train_cfg))
    return runs


def unlearn_and_evaluate(cfg: RunConfig, method: MethodRun, models: Models, bench: Benchmark, splits, log=print):
    """Load the target, unlearn with one method, evaluate; returns ``(ModelResult, model, tokenizer)``."""
    from .models import load_model
    from .train import unlearn as train_unlearn

    from .methods import get_method

    if get_method(method.method).kind == "training-time":
        return _training_time_and_evaluate(cfg, method, models, bench, splits, log)
    model, tok = load_model(models.target, cfg.trust_remote_code)
    if get_method(method.method).kind == "inference":
        return _inference_and_evaluate(cfg, method, models, bench, splits, model, tok, log)
    t0 = time.perf_counter()
    hook, direction = eval_during_unlearning(cfg, method, tok, splits, models.retain_result)
    model, stats = train_unlearn(model, tok, method.method, bench.forget(cfg.forget_split),
                                 bench.retain(cfg.forget_split), method.train, method.options,
                                 description=f"unlearn {method.label}", eval_hook=hook, best_direction=direction)
    log(f"{method.label}: {stats.steps} steps, {stats.tokens_per_second:,.0f} tokens/s, "
        f"final loss {stats.losses[-1] if stats.losses else float('nan'):.3f}")
    if stats.best:
        log(f"{method.label}: best checkpoint by {stats.best['by']} ({stats.best['direction']} is better): "
            f"step {stats.best['step']} of {stats.steps} ({stats.best['value']:.4g})")
    res = evaluate(model, tok, splits, method.label, "method", cfg.eval, models.retain_result)
    res.method = method.method
    res.seconds["unlearn"] = time.perf_counter() - t0 - res.seconds["eval"]
    res.train = stats.to_json()
    res.config = {"method": method.method, "options": method.options, "train": to_dict(method.train)}
    return res, model, tok


def eval_during_unlearning(cfg: RunConfig, method: MethodRun, tok, splits, retain_result):
    """The evaluation hook of ``train.eval_every``: the TOFU suite and MIA on every split, without the
    bootstrap, embeddings and NLI (they cost more than they tell between two checkpoints). Returns
    ``(hook or None, direction of train.best_by)``."""
    if not method.train.eval_every:
        return None, "higher"
    eval_cfg = dataclasses.replace(cfg.eval, bootstrap=0, embedding_model="", nli_model="", lm_eval_tasks=(),
                                   lm_eval_include="")
    direction = directions().get(method.train.best_by, "higher")

    def hook(model, step):
        return evaluate(model, tok, splits, f"{method.label}@{step}", "method", eval_cfg, retain_result).summary

    return hook, direction


def _inference_and_evaluate(cfg, method: MethodRun, models: Models, bench: Benchmark, splits, model, tok, log):
    """Inference-time methods: build the prompt / filter / logit-difference setup, then the same
    probes and metrics as every other method. Nothing is trained into the target's weights."""
    from .inference import build

    t0 = time.perf_counter()
    setup = build(method.method, model, tok, bench.forget(cfg.forget_split), bench.retain(cfg.forget_split),
                  method.options, method.train, seed=method.train.seed)
    built = time.perf_counter() - t0
    log(f"{method.label}: inference-time method built in {built:.1f} s (weights unchanged)")
    res = evaluate(setup.model, tok, splits, method.label, "method", cfg.eval, models.retain_result,
                   encoder=setup.encoder, postprocess=setup.postprocess)
    res.method = method.method
    res.seconds["unlearn"] = built
    res.train = {"inference_time": True, **{k: v for k, v in setup.stats.items() if _jsonable(v)}}
    res.config = {"method": method.method, "options": method.options, "train": to_dict(method.train)}
    return res, None, tok


def check_training_time(cfg: RunConfig, bench: Benchmark, method_runs) -> None:
    """Training-time methods (SISA) train their own models from the built-in base model."""
    from .methods import get_method

    for mr in method_runs:
        if get_method(mr.method).kind == "training-time" and (cfg.model or bench.name != "lethe-authors"):
            given = f"model={cfg.model}" if cfg.model else f"benchmark={cfg.benchmark}"
            raise LetheError(f"{mr.method} needs the built-in benchmark and its own models (it trains shard models "
                             f"from the built-in base model); drop {given} or the method")


def _training_time_and_evaluate(cfg, method: MethodRun, models: Models, bench: Benchmark, splits, log):
    """Training-time methods: the method trains (or reuses from the cache) its own models and deletes the
    forget split from them (SISA: retrain the shards that held a forget author), then the same probes
    and metrics as every other method. ``seconds["unlearn"]`` is the recorded cost of the deletion
    (what retraining took, also on a cache hit); ``seconds["wall"]`` what this run spent."""
    from .methods import get_method

    check_training_time(cfg, bench, [method])
    spec = get_method(method.method)
    t0 = time.perf_counter()
    model, tok, stats = spec.loss(bench, cfg.forget_split, cfg.tiny_model, cfg.cache_dir,
                                  spec.make_config(method.options), log=log)
    wall = time.perf_counter() - t0
    res = evaluate(model, tok, splits, method.label, "method", cfg.eval, models.retain_result)
    res.method = method.method
    res.seconds["unlearn"] = stats.get("deletion_seconds", wall)
    res.seconds["wall"] = wall
    res.train = {k: v for k, v in stats.items() if _jsonable(v)}
    # the shards' recipe is the built-in models' one, not the run's unlearning settings
    res.config = {"method": method.method, "options": method.options,
                  "train": to_dict(builtin_finetune_config(cfg.tiny_model))}
    return res, None, tok


ROBUSTNESS_KEYS = ("forget_probability", "forget_rouge_l", "forget_truth_ratio")


def attack_and_evaluate(cfg: RunConfig, model, tok, res: ModelResult, bench: Benchmark, log=print) -> dict:
    """Run ``cfg.attacks`` on an evaluated model; per attack, the forget metrics on the items the
    attack did not train on, before (from ``res``'s per-item values) and after the attack."""
    import dataclasses

    import numpy as np

    from .attacks import run_attack

    forget, retain = bench.forget(cfg.forget_split), bench.retain(cfg.forget_split)
    eval_cfg = dataclasses.replace(cfg.eval, bootstrap=0, lm_eval_tasks=(), lm_eval_include="")
    out = {}
    for name in cfg.attacks:
        attacked, info = run_attack(name, model, tok, forget, retain, cfg.attack_options.get(name, {}))
        ids = set(info.get("eval_forget_ids") or [it.id for it in forget])
        # prompt-level attacks give rewritten items (same ids and answers); the others a subset of ids
        items = info.get("eval_forget_items") or [it for it in forget if it.id in ids]
        after = evaluate(attacked, tok, {"forget": items}, f"{res.name} after {name}", res.kind, eval_cfg).summary
        probes_ids = res.probes["forget"].ids
        keep = [i for i, x in enumerate(probes_ids) if x in ids]
        before = {f"forget_{m}": float(np.mean([r.per_sample[i] for i in keep]))
                  for m, r in res.metrics["forget"].items() if len(r.per_sample) == len(probes_ids)}
        out[name] = {"before": {k: before[k] for k in ROBUSTNESS_KEYS if k in before},
                     "after": {k: after[k] for k in ROBUSTNESS_KEYS if k in after},
                     "items": len(items), "info": {k: v for k, v in info.items()
                                  if _jsonable(v) and k not in ("eval_forget_ids", "eval_forget_items")}}
        log(f"{res.name}: {name}: forget ROUGE-L {out[name]['before'].get('forget_rouge_l', float('nan')):.3f} -> "
            f"{out[name]['after'].get('forget_rouge_l', float('nan')):.3f} on {len(items)} items")
        if attacked is not model:
            del attacked
    return out


def attack_model(cfg: RunConfig, model_path: str, log=print) -> dict:
    """``lethe attack``: evaluate one saved model on the forget split of ``cfg``'s benchmark, run the
    attacks (``cfg.attacks``, by default :data:`lethe.config.DEFAULT_ATTACKS`), and return ``{"model", "benchmark",
    "forget_split", "before", "robustness"}`` (per attack: before -> after on the items it did not train on)."""
    from .attacks import expand_attacks
    from .benchmarks import load_benchmark
    from .models import load_model

    attacks = tuple(expand_attacks(cfg.attacks))
    if not attacks:
        raise LetheError("no attacks to run: give attacks=[relearn, quantize_4bit, paraphrase, jailbreak, ...]")
    cfg = dataclasses.replace(cfg, attacks=attacks)
    cfg.eval.check()
    threads = set_threads(cfg.threads)
    bench = load_benchmark(cfg.benchmark, **cfg.benchmark_options)
    forget = bench.forget(cfg.forget_split)
    model, tok = load_model(model_path, cfg.trust_remote_code)
    eval_cfg = dataclasses.replace(cfg.eval, bootstrap=0, lm_eval_tasks=(), lm_eval_include="")
    log(f"evaluating {model_path} on {len(forget)} forget items of {cfg.forget_split}")
    res = evaluate(model, tok, {"forget": forget}, Path(model_path).name, "model", eval_cfg)
    robustness = attack_and_evaluate(cfg, model, tok, res, bench, log)
    return {"model": str(model_path), "benchmark": {"name": bench.name, "version": bench.version},
            "forget_split": cfg.forget_split, "attacks": list(attacks),
            "before": {k: v for k, v in res.summary.items() if k in ROBUSTNESS_KEYS},
            "robustness": robustness, "provenance": provenance(cfg, threads, bench)}


def _jsonable(v) -> bool:
    try:
        json.dumps(v)
        return True
    except (TypeError, ValueError):
        return False


# ------------------------------------------------------------------------------------------------
# The run


def _git_sha() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def provenance(cfg: RunConfig, threads: int, bench: Benchmark) -> dict:
    import torch
    import transformers

    out = {
        "lethe_version": __version__, "git_sha": _git_sha(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "benchmark": {"name": bench.name, "version": bench.version, "spec": bench.spec,
                      "fingerprint": content_fingerprint(bench)},
        "torch": torch.__version__, "transformers": transformers.__version__,
        "hardware": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                     "cpus": os.cpu_count(), "torch_threads": threads,
                     "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
        "world_size": int(os.environ.get("WORLD_SIZE", "1")),
        "eval_recipe": EVAL_RECIPE,
        "seeds": {"run": cfg.seed, "train": cfg.train.seed, "tiny_model": cfg.tiny_model.seed},
    }
    split = forget_split_fingerprint(bench, cfg.forget_split)
    if split is not None:  # what a retain model's results must have been computed on (load_retain_result)
        out["forget_split"] = {k: v for k, v in split.items() if k != "ids"}
    return out


def content_fingerprint(bench) -> str:
    """The content hash of the data a run read: ``Benchmark.fingerprint()``, or for a scenario's own
    data object (whose spec carries its files' hashes) a hash of its name, version and spec."""
    if hasattr(bench, "fingerprint"):
        return bench.fingerprint()
    return _hash({"name": bench.name, "version": bench.version, "spec": bench.spec})


def forget_split_fingerprint(bench, split: str) -> dict | None:
    """``Benchmark.split_fingerprint(split)`` where the benchmark has that forget split, else None."""
    if not hasattr(bench, "split_fingerprint") or not getattr(bench, "forget_sets", {}).get(split):
        return None
    return bench.split_fingerprint(split)


def run_dir_for(cfg: RunConfig) -> Path:
    name = cfg.name or f"{Path(cfg.benchmark).name}-{cfg.forget_split}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    out = Path(cfg.output) / name
    if out.exists() and not cfg.overwrite:
        raise LetheError(f"{out}: output folder exists; choose another name=... or pass overwrite=true")
    return out


def _cached_eval(path: Path, compute):
    """Evaluation results of an untouched model (target, retain model) are computed once per cache key."""
    if path.exists():
        return ModelResult.from_json(json.loads(path.read_text(encoding="utf-8")), str(path))
    res = compute()
    atomic_write_text(path, json.dumps(res.to_json()))
    return res


def retain_provenance(models: Models, cfg: RunConfig):
    """The gold standard as the results record it: a model, a results file, or a published log's source."""
    if models.retain_result is not None and models.retain_result.logs is not None:
        from .retain_logs import provenance as log_provenance

        return {"logs": log_provenance(models.retain_result.logs)}
    return models.retain or cfg.retain_model


def eval_cache_key(cfg: RunConfig, bench: Benchmark) -> str:
    """Key of the cached evaluations of the fixed models: the evaluation settings and recipe, the
    forget split and the content of the benchmark as read (an edited data file is a new key)."""
    return _hash({"eval": to_dict(cfg.eval), "split": cfg.forget_split, "content": bench.fingerprint(),
                  "schema": SCHEMA_VERSION, "recipe": EVAL_RECIPE})


def check_report_columns(columns, what: str = "report_columns") -> list[str]:
    import difflib

    known = [*directions(), "unlearn_seconds"] if what == "report_columns" else list(directions())
    for c in columns:
        if c not in known:
            close = difflib.get_close_matches(str(c), known, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise LetheError(f"unknown metric '{c}' in {what}{hint} (known: {', '.join(known)})")
    return list(columns)


def directions() -> dict[str, str]:
    d = {"forget_quality": "higher", "model_utility": "higher"}
    for split in ("retain", "known_people", "world_facts"):
        for m in ("probability", "rouge_l", "truth_ratio"):
            d[f"{split}_{m}"] = "higher"
    d.update({"forget_probability": "lower", "forget_rouge_l": "lower", "forget_truth_ratio": "higher"})
    # membership inference: an AUC near the retain model's is the goal; lower = less of the forget set shows
    d.update({m: "lower" for m in (*MIA_ATTACKS_RUN, "mia_reference", "mia_gradnorm")})
    d.update({"forget_exact_memorization": "lower", "forget_extraction_strength": "lower", "privleak": "higher"})
    # fluency: even on the forget split, a good unlearned model answers in words, not repetitions
    d.update({f"{s}_token_entropy": "higher" for s in ("forget", "retain", "known_people", "world_facts")})
    d.update({f"{s}_embedding_similarity": "higher" for s in ("retain", "known_people", "world_facts")})
    d["forget_embedding_similarity"] = "lower"
    d.update({f"{s}_entailment_score": "higher" for s in ("retain", "known_people", "world_facts")})
    d["forget_entailment_score"] = "lower"
    d.update({"forget_efficacy": "higher", "model_utility_semantic": "higher"})
    return d


# scenarios whose gold standard is not a model the user can give: retain_model= would be ignored, so it is refused
SCENARIOS_WITHOUT_RETAIN_MODEL = {
    "continual": "each round's gold standard is a built-in model trained without the requests so far "
                 "(scenario_options.gold_standard), or none on a user's model",
    "multilingual": "it trains its own target and retain model on the built-in benchmark",
    "real_world": "on a user's model there is no gold standard (a model cannot be retrained without its "
                  "pretraining knowledge); the built-in run trains its own",
}


def run(cfg: RunConfig | None = None, log=print, evaluate_only: bool = False) -> Path:
    """Run the whole job; returns the run folder (written whole at the end, never half).

    ``evaluate_only``: evaluate the target (and retain) model without unlearning (``lethe eval``).
    """
    from .benchmarks import load_benchmark
    from .models import load_model, save_model
    from .report import partial_folder, write_run_files

    cfg = cfg or RunConfig()
    if cfg.scenario != "tofu":
        from .scenarios import get_scenario

        if evaluate_only:
            raise LetheError(f"`lethe eval` evaluates the tofu scenario only; run scenario={cfg.scenario} with `lethe run`")
        if cfg.retain_model and cfg.scenario in SCENARIOS_WITHOUT_RETAIN_MODEL:
            raise LetheError(f"scenario '{cfg.scenario}' takes no retain_model: "
                             f"{SCENARIOS_WITHOUT_RETAIN_MODEL[cfg.scenario]}; drop retain_model=")
        return get_scenario(cfg.scenario)(cfg, log)
    if cfg.scenario_options:
        raise LetheError(f"scenario_options {sorted(cfg.scenario_options)} given, but the tofu scenario takes none")
    t_start = time.perf_counter()
    out = run_dir_for(cfg)
    cfg.eval.check()
    if cfg.attacks:
        from .attacks import expand_attacks

        cfg = dataclasses.replace(cfg, attacks=tuple(expand_attacks(cfg.attacks)))  # unknown name -> error now
    method_runs = [] if evaluate_only else resolve_methods(cfg)  # user errors surface before any training
    columns = check_report_columns(cfg.report_columns)
    threads = set_threads(cfg.threads)
    bench = load_benchmark(cfg.benchmark, **cfg.benchmark_options)
    splits = eval_splits(bench, cfg.forget_split)
    check_training_time(cfg, bench, method_runs)
    models = prepare_models(cfg, bench, log)
    if cfg.eval.mia_reference == "base":  # the built-in base model: the target before the authors
        if not models.cache_key:
            raise LetheError("eval.mia_reference=base names the built-in base model; with model=... give the "
                             "reference model's folder or hub id (same tokenizer)")
        cfg = dataclasses.replace(cfg, eval=dataclasses.replace(cfg.eval, mia_reference=str(Path(models.target).parent / "base")))
    prov = provenance(cfg, threads, bench)
    with partial_folder(out) as tmp:  # renamed to `out` at the end; removed on any error
        eval_key = eval_cache_key(cfg, bench)
        cache = Path(cfg.cache_dir) / "evals"

        def eval_fixed(folder, name, kind, retain_res):
            def compute():
                log(f"evaluating the {name}")
                m, t = load_model(folder, cfg.trust_remote_code)
                return evaluate(m, t, splits, name, kind, cfg.eval, retain_res)
            if models.cache_key:
                return _cached_eval(cache / f"{models.cache_key}-{kind}-{eval_key}.json", compute)
            return compute()

        results: list[ModelResult] = []
        if models.retain:
            models.retain_result = eval_fixed(models.retain, "retain model", "retain", None)
        target = eval_fixed(models.target, "target", "target", models.retain_result)
        results.append(target)
        if models.retain_result is not None:
            results.append(models.retain_result)
        if cfg.attacks and models.retain_result is not None and models.retain:  # the control
            rm, rt = load_model(models.retain, cfg.trust_remote_code)
            models.retain_result.robustness = attack_and_evaluate(cfg, rm, rt, models.retain_result, bench, log)
            del rm
        for mr in method_runs:
            res, model, tok = unlearn_and_evaluate(cfg, mr, models, bench, splits, log)
            if cfg.attacks and model is not None and hasattr(model, "config"):
                res.robustness = attack_and_evaluate(cfg, model, tok, res, bench, log)
            results.append(res)
            if cfg.save_models and model is not None:  # inference-time methods leave no new model
                save_model(model, tok, tmp / "models" / mr.label)
        notes = list(models.notes) + input_length_notes(models.target, splits, cfg.trust_remote_code)
        note = missing_holdout_note(splits)
        if note:
            notes.append(note)
        if bench.spec.get("split_notes"):  # a public release whose files mean something of their own
            from .benchmarks import describe_splits

            notes += [f"data ({bench.spec.get('layout', bench.name)} layout): {line}" for line in describe_splits(bench)]
        for r in results:
            best = (r.train or {}).get("best") if isinstance(r.train, dict) else None
            if best:
                notes.append(f"{r.name}: checkpoint chosen by {best['by']} ({best['direction']} is better) at step "
                             f"{best['step']} of {r.train.get('steps')} ({len(r.train.get('checkpoints', []))} evaluated)")
        if cfg.eval.generate and not cfg.eval.nli_model:
            notes.append("entailment score skipped: no NLI model configured (eval.nli_model=<hub id or folder>, e.g. "
                         "sileod/deberta-v3-base-tasksource-nli); forget efficacy and model_utility_semantic are "
                         "computed without it")
        if cfg.eval.generate and not cfg.eval.embedding_model:
            notes.append("embedding similarity off (eval.embedding_model=''); forget efficacy and "
                         "model_utility_semantic are computed without it")
        if models.retain_result is not None:
            floor = models.retain_result.summary.get("forget_rouge_l")
            if floor is not None:
                notes.append(f"retain model's forget ROUGE-L (what a model that never saw the forget authors scores): {floor:.3f}")
        if bench.name == "lethe-authors":
            from .benchmarks.synthetic import template_rouge_floor

            notes.append(f"template ROUGE-L floor of the benchmark (another author's answer scored against the true one): "
                         f"{template_rouge_floor(bench):.3f}")
        resolved = to_dict(cfg)
        summary = {
            "lethe_version": __version__,
            "benchmark": {"name": bench.name, "version": bench.version, "fingerprint": bench.fingerprint()},
            "forget_split": cfg.forget_split,
            "rows": [r.summary_row() for r in results],
            "directions": {**directions(), **{k: v for r in results for k, v in r.directions.items()}},
            "columns": columns or None,
            "notes": notes,
            "provenance": {**prov, "model": models.target, "retain_model": retain_provenance(models, cfg),
                           "model_timings": models.timings, "total_seconds": time.perf_counter() - t_start},
        }
        write_run_files(tmp, resolved, summary, {"schema": SCHEMA_VERSION, "benchmark": summary["benchmark"],
                                                 "forget_split": cfg.forget_split,
                                                 "forget_items": bench.split_fingerprint(cfg.forget_split),
                                                 "provenance": summary["provenance"],
                                                 "models": [r.to_json() for r in results]})
    return out
