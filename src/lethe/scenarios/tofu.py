"""The default job: fictitious authors (TOFU-style), forget quality against a retain model.

On the built-in benchmark Lethe trains its own tokenizer, base, target and retain models (cached by a
hash of the data actually read, the recipe and the tiny-model config); for a user's model the target
is ``cfg.model`` and the gold standard is ``cfg.retain_model`` (a model, a results file or a published
evaluation log), never a silent default.
"""
from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path

import numpy as np

from . import register_scenario
from ._run import Fixed, Run, Scenario
from ._methods import MethodRun, jsonable
from ..benchmarks import describe_splits, load_benchmark
from ..benchmarks.synthetic import template_rouge_floor
from ..builtin import MODEL_RECIPE, Models, build_builtin_models, content_hash, describe_tiny, size_tiny_model
from ..config import to_dict
from ..errors import LetheError
from ..evaluation import EVAL_RECIPE, evaluate, eval_splits, input_length_notes, missing_holdout_notes
from ..metrics import suites
from ..results import SCHEMA_VERSION, ModelResult, load_retain_result
from ..retain_logs import is_retain_logs, load_retain_logs, provenance as log_provenance

ROBUSTNESS_KEYS = ("forget_probability", "forget_rouge_l", "forget_truth_ratio")


def directions() -> dict[str, str]:
    """The default job's directions (also continual's, and the base of real_world's and multilingual's):
    derived from the metric registry by the tofu suite (:mod:`lethe.metrics.suites`)."""
    return suites.directions(suites.TOFU)


def eval_cache_key(cfg, bench, **extra) -> str:
    """Key of the cached evaluations of the fixed models: the evaluation settings and recipe, the
    forget split and the content of the benchmark as read (an edited data file is a new key), and
    ``extra`` (a scenario's own recipe)."""
    return content_hash({"eval": cfg.eval.cache_settings(), "split": cfg.forget_split, "content": bench.fingerprint(),
                         "schema": SCHEMA_VERSION, "recipe": EVAL_RECIPE, **extra})


def attack_and_evaluate(cfg, model, tok, res: ModelResult, bench, log=print) -> dict:
    """Run ``cfg.attacks`` on an evaluated model; per attack, the forget metrics on the items the
    attack did not train on, before (from ``res``'s per-item values) and after the attack."""
    from ..attacks import run_attack

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
                                                   if jsonable(v) and k not in ("eval_forget_ids", "eval_forget_items")}}
        log(f"{res.name}: {name}: forget ROUGE-L {out[name]['before'].get('forget_rouge_l', float('nan')):.3f} -> "
            f"{out[name]['after'].get('forget_rouge_l', float('nan')):.3f} on {len(items)} items")
        if attacked is not model:
            del attacked
    return out


class Tofu(Scenario):
    name = "tofu"
    description = "fictitious authors (TOFU-style): forget a split of authors, forget quality against a retain model"
    result_type = ModelResult
    sweep_objectives = ("forget_quality", "model_utility")

    def default_name(self, run: Run) -> str:
        return f"{Path(run.cfg.benchmark).name}-{run.cfg.forget_split}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"

    def directions(self, run: Run) -> dict:
        return directions()

    def check(self, run: Run) -> None:
        self.check_training_time(run, "")

    def check_training_time(self, run: Run, bench_name: str) -> None:
        """Training-time methods (SISA) train their shard models from the built-in base model."""
        if not run.method_runs:  # `lethe eval`: no method, and the method registry stays unimported
            return
        from ..methods import get_method

        cfg = run.cfg
        mr = next((mr for mr in run.method_runs if get_method(mr.method).kind == "training-time"), None)
        if mr and (cfg.model or bench_name not in ("", "lethe-authors")):
            given = f"model={cfg.model}" if cfg.model else f"benchmark={cfg.benchmark}"
            raise LetheError(f"{mr.method} needs the built-in benchmark and its own models (it trains shard models "
                             f"from the built-in base model); drop {given} or the method")

    def prepare(self, run: Run) -> None:
        cfg = run.cfg
        run.data = bench = load_benchmark(cfg.benchmark, **cfg.benchmark_options)
        run.state["splits"] = eval_splits(bench, cfg.forget_split)
        self.check_training_time(run, bench.name)
        tiny = size_tiny_model(bench, cfg.tiny_model) if not cfg.model else cfg.tiny_model
        run.state["models"] = models = prepare_models(cfg, bench, tiny, run.log)
        run.target = models.target
        if cfg.eval.mia_reference == "base":  # the built-in base model: the target before the authors
            if not models.cache_key:
                raise LetheError("eval.mia_reference=base names the built-in base model; with model=... give the "
                                 "reference model's folder or hub id (same tokenizer)")
            run.cfg = dataclasses.replace(cfg, eval=dataclasses.replace(
                cfg.eval, mia_reference=str(Path(models.target).parent / "base")))
        key = eval_cache_key(run.cfg, bench) if models.cache_key else ""  # a user's model: its evaluation is not cached
        cache = Path(cfg.cache_dir) / "evals"

        def where(kind):
            return cache / f"{models.cache_key}-{kind}-{key}.json" if models.cache_key else None

        run.fixed = [Fixed("target", "target", models.target, where("target"))]
        if models.retain:
            run.fixed.append(Fixed("retain model", "retain", models.retain, where("retain")))
        elif models.retain_result is not None:
            run.fixed.append(Fixed("retain model", "retain", "", result=models.retain_result))
        run.state["results_head"] = {"benchmark": {"name": bench.name, "version": bench.version,
                                                   "fingerprint": bench.fingerprint()},
                                     "forget_split": cfg.forget_split,
                                     "forget_items": bench.split_fingerprint(cfg.forget_split)}
        logs = models.retain_result.logs if models.retain_result is not None else None  # a published log's source
        run.state["provenance"] = {"retain_model": {"logs": log_provenance(logs)} if logs is not None
                                   else models.retain or cfg.retain_model, "model_timings": models.timings}
        if tiny != cfg.tiny_model:  # the sized tiny model: what SISA's shards and the records use from here on
            run.cfg = dataclasses.replace(run.cfg, tiny_model=tiny)
        if not cfg.model and (bench.name != "lethe-authors" or tiny != cfg.tiny_model):
            run.state["provenance"]["tiny_models"] = {"trained_on": bench.spec.get("source", bench.name),
                                                      "recipe": MODEL_RECIPE, "tiny_model": to_dict(tiny),
                                                      "sized_to_data": tiny != cfg.tiny_model}

    def unlearning_data(self, run: Run):
        return run.data.forget(run.cfg.forget_split), run.data.retain(run.cfg.forget_split)

    def evaluate(self, run: Run, model, tok, name, kind, retain_result=None, applied=None):
        return evaluate(model, tok, run.state["splits"], name, kind, run.cfg.eval, retain_result,
                        encoder=getattr(applied, "encoder", None), postprocess=getattr(applied, "postprocess", None))

    def eval_hook(self, run: Run, mr: MethodRun, tok):
        """The TOFU suite and MIA on every split every ``train.eval_every`` steps, without the bootstrap,
        embeddings and NLI (they cost more than they tell between two checkpoints)."""
        if not mr.train.eval_every:
            return None, "higher"
        eval_cfg = dataclasses.replace(run.cfg.eval, bootstrap=0, embedding_model="", nli_model="", lm_eval_tasks=(),
                                       lm_eval_include="")

        def hook(model, step):
            return evaluate(model, tok, run.state["splits"], f"{mr.label}@{step}", "method", eval_cfg,
                            run.retain_result).summary

        return hook, directions().get(mr.train.best_by, "higher")

    def attack(self, run: Run, model, tok, result) -> dict:
        return attack_and_evaluate(run.cfg, model, tok, result, run.data, run.log)

    def finish(self, run: Run, results: list) -> tuple[dict, dict]:
        cfg, bench, models, splits = run.cfg, run.data, run.state["models"], run.state["splits"]
        notes = list(models.notes) + input_length_notes(models.target, splits, cfg.trust_remote_code)
        notes += missing_holdout_notes(splits)
        if bench.spec.get("split_notes"):  # a public release whose files mean something of their own
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
        if run.retain_result is not None:
            floor = run.retain_result.summary.get("forget_rouge_l")
            if floor is not None:
                notes.append(f"retain model's forget ROUGE-L (what a model that never saw the forget authors scores): {floor:.3f}")
        if bench.name == "lethe-authors":
            notes.append(f"template ROUGE-L floor of the benchmark (another author's answer scored against the true one): "
                         f"{template_rouge_floor(bench):.3f}")
        return {"notes": notes}, {}


def prepare_models(cfg, bench, tiny, log=print):
    """The target and the gold standard: Lethe's tiny models (``tiny``: the recipe sized to the data) trained
    on the benchmark (the built-in one or a user's folder), or the user's model with its retain model (a
    model, a results file, a published evaluation log, or none, said in the notes)."""
    if not cfg.model:
        if cfg.retain_model:
            raise LetheError(f"retain_model={cfg.retain_model} goes with model=...: the built-in run trains its own "
                             "retain model on this benchmark; drop retain_model or give the target with model=")
        models = build_builtin_models(bench, cfg.forget_split, tiny, cfg.cache_dir, log)
        if bench.name != "lethe-authors" or tiny != cfg.tiny_model:
            source = bench.spec.get("source", bench.name)
            models.notes.append(f"models: Lethe's tiny target and retain models trained on {bench.name} ({source}, "
                                f"version {bench.version}): {describe_tiny(tiny)}"
                                + ("; sized to the data (docs/finetune.md)" if tiny != cfg.tiny_model else ""))
        return models
    models = Models(target=cfg.model)
    rm = cfg.retain_model
    if rm and is_retain_logs(rm):  # TOFU's eval_log_forget.json / open-unlearning's TOFU_EVAL.json
        # the log's own aggregates as the summary, its per-item values kept for forget quality (no probes)
        logs = load_retain_logs(rm)
        models.retain_result = ModelResult(name="retain model", kind="retain", summary=dict(logs.aggregates), logs=logs)
        models.notes += [f"retain model: {n}" for n in logs.notes]
        models.notes.append(f"gold standard: the published evaluation {rm} ({logs.layout}, {logs.items} forget items); "
                            "forget quality is computed against its per-item truth ratios as its own code does; its "
                            "other numbers are the published ones")
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


register_scenario(Tofu.name, Tofu.description)(Tofu())
