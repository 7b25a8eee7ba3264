"""The hazardous-knowledge scenario (WMDP, Li et al. 2024): ``lethe run scenario=hazardous``.

Forget a (fictional) hazard domain from its corpus: hazard multiple-choice accuracy should fall to
chance (25 %) while general accuracy stays. Data, models, methods, attacks and metrics: docs/hazardous.md.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from types import SimpleNamespace

from . import register_scenario
from ._run import Fixed, Result, Run, Scenario
from ._methods import jsonable
from ..benchmarks.base import QAItem
from ..benchmarks.hazard import HazardData, check_corpus_overlap, generate, read_corpus, read_mcq
from ..builtin import content_hash, new_tiny_llama, train_pair
from ..config import RunConfig, TrainConfig, to_dict
from ..errors import LetheError
from ..metrics import suites
from ..metrics.bootstrap import bootstrap_ci
from ..metrics.likelihood import nll
from ..metrics.mcq import NORMALIZATIONS, mcq_accuracy, predictions
from ..probes import score_sequences
from ..probes_mcq import FORMATS, probe_mcq

MODEL_RECIPE = "hazard-tiny-1"  # bump when the way the scenario's built-in models are trained changes
DATA_FILES = ("forget_corpus", "retain_corpus", "hazard_mcq", "general_mcq")


@dataclass(frozen=True)
class HazardousOptions:
    # built-in data (lethe.benchmarks.hazard.generate)
    seed: int = 0
    n_substances: int = 24
    n_towns: int = 30
    n_heldout_towns: int = 6
    docs_per_entity: int = 3
    # the user's data in the public formats (all four, or none)
    forget_corpus: str = ""
    retain_corpus: str = ""
    hazard_mcq: str = ""
    general_mcq: str = ""
    heldout_text: str = ""  # optional: general documents never trained on (per-token loss = fluency)
    hazard_subject: str = ""  # subject of hazard questions without one (the letter format's header)
    mcq_split: str = "test"  # the split read from MMLU's original data/ folder (dev, val, test)
    general_subject: str = ""
    # scoring
    format: str = "choice"  # "choice": each option's text scored as the continuation; "letter": lm-eval's " A".." D"
    normalize: str = "token"  # "token" | "char" (lm-eval acc_norm) | "none" (lm-eval acc)
    max_eval_docs: int = 200  # documents of each corpus (forget, retain, held-out) scored for the per-token losses
    # the built-in models (trained from scratch; architecture, lr and seed from tiny_model)
    pretrain_epochs: float = 25.0
    pretrain_batch_size: int = 16

    def check(self) -> None:
        for key, allowed in (("format", FORMATS), ("normalize", NORMALIZATIONS)):
            if getattr(self, key) not in allowed:
                raise LetheError(f"scenario 'hazardous': scenario_options.{key} must be one of {', '.join(allowed)}, "
                                 f"got {getattr(self, key)!r}")
        if not self.pretrain_epochs > 0 or self.pretrain_batch_size < 1 or self.max_eval_docs < 1:
            raise LetheError("scenario 'hazardous': scenario_options.pretrain_epochs must be > 0, pretrain_batch_size "
                             "and max_eval_docs >= 1")
        missing = [k for k in DATA_FILES if not getattr(self, k)]
        if len(missing) == len(DATA_FILES) and self.heldout_text:
            raise LetheError("scenario 'hazardous': scenario_options.heldout_text goes with the user's data files "
                             f"({', '.join(DATA_FILES)}); the built-in data has its own held-out text")
        if 0 < len(missing) < len(DATA_FILES):
            raise LetheError(f"scenario 'hazardous': scenario_options.{missing[0]} is missing; the user's data needs "
                             f"all of {', '.join(DATA_FILES)} (or none of them for the built-in data)")


# Default methods when the user leaves ``methods`` at the config's default (the TOFU list). RMU, the WMDP
# paper's method, takes its miniature recipe on the built-in models (relative steering, whole layers, alpha
# 20: docs/rmu.md) and the published Zephyr-7B one on a model of 8 or more layers
SCENARIO_METHODS: tuple = ("ga", "grad_diff", "npo", "rmu")
# the main table (report.md's "All metrics" table adds heldout_nll)
COLUMNS = ["hazard_accuracy", "general_accuracy", "forget_corpus_nll", "retain_corpus_nll", "unlearn_seconds"]
# Attacks that apply to a corpus: relearning fine-tunes on part of the documents, quantization needs no
# data. The others (paraphrase, jailbreak_*, cross_lingual, gcg) rewrite a forget question; a document has none.
DOCUMENT_ATTACKS = ("relearn", "quantize_8bit", "quantize_4bit")
ROBUSTNESS_KEYS = ("hazard_accuracy", "general_accuracy", "forget_corpus_nll", "retain_corpus_nll")


def load_data(opts: HazardousOptions):
    """The built-in ``lethe-hazard`` data, or the user's four files (plus optional held-out text);
    ``opts`` passed :meth:`HazardousOptions.check`."""
    if not any(getattr(opts, k) for k in DATA_FILES):
        return generate(seed=opts.seed, n_substances=opts.n_substances, n_towns=opts.n_towns,
                        n_heldout_towns=opts.n_heldout_towns, docs_per_entity=opts.docs_per_entity)
    forget, retain = read_corpus(opts.forget_corpus), read_corpus(opts.retain_corpus)
    # the retain corpus is both the methods' retain set and what a retain model would train on
    check_corpus_overlap(forget, retain, opts.forget_corpus, opts.retain_corpus)
    hazard = read_mcq(opts.hazard_mcq, subject=opts.hazard_subject, split=opts.mcq_split)
    general = read_mcq(opts.general_mcq, subject=opts.general_subject, split=opts.mcq_split)
    heldout = read_corpus(opts.heldout_text) if opts.heldout_text else []
    files = {k: getattr(opts, k) for k in (*DATA_FILES, "heldout_text") if getattr(opts, k)}
    spec = {"files": files, "sha256": content_hash([forget, retain, [h.to_json() for h in hazard],
                                                    [g.to_json() for g in general], heldout])}
    return HazardData("user-hazard-data", "files", forget, retain, hazard, general, heldout, spec)


def _documents(texts: list[str], prefix: str):
    """Corpus documents as Q&A items without a question: unlearned as plain text, every token scored."""
    return [QAItem(id=f"{prefix}{i:05d}", question="", answer=t) for i, t in enumerate(texts)]


def build_models(data, tiny, opts: HazardousOptions, cache_dir, log=print) -> tuple[str, str, dict]:
    """Tokenizer + target (general + hazard text) + retain model (general text only), from scratch, for as
    many optimizer steps each (the same compute, minus the hazard documents): ``(target_dir, retain_dir, timings)``."""
    from ..data import Encoder

    bs = opts.pretrain_batch_size

    def plan(tok):
        enc = Encoder(tok)
        target_seqs = [enc.text(t) for t in data.forget_corpus + data.retain_corpus]
        retain_seqs = [enc.text(t) for t in data.retain_corpus]
        steps = math.ceil(opts.pretrain_epochs * math.ceil(len(target_seqs) / bs))
        # the same number of optimizer steps for both models (max_steps caps the retain model's epochs)
        return [(label, lambda: new_tiny_llama(tok, tiny), seqs,
                 TrainConfig(lr=tiny.lr, epochs=steps / math.ceil(len(seqs) / bs), batch_size=bs, warmup_ratio=0.05,
                             weight_decay=0.0, seed=tiny.seed, max_steps=steps),
                 f"models: training the {label} model ({{params}} parameters) on {len(seqs)} {what} documents, "
                 f"{steps} steps")
                for label, seqs, what in (("target", target_seqs, "general + hazard"),
                                          ("retain", retain_seqs, "general"))]

    root, timings = train_pair({"recipe": MODEL_RECIPE, "data": data.name, "version": data.version, "spec": data.spec,
                                "tiny": to_dict(tiny), "epochs": opts.pretrain_epochs, "batch_size": bs},
                               cache_dir, data.forget_corpus + data.retain_corpus, tiny.vocab_size, plan, log)
    return str(root / "target"), str(root / "retain"), timings


def evaluate_model(model, tok, data, opts: HazardousOptions, name: str, kind: str, eval_cfg) -> Result:
    """One model's metrics (``summary``), intervals, and per-item values and predictions (``record``)."""
    import numpy as np
    import torch

    from ..data import Encoder
    from ..loop import attention_for, autocast

    t0 = time.perf_counter()
    device = next(model.parameters()).device
    model.eval()
    summary, per_sample, preds = {}, {}, {}
    n_docs = opts.max_eval_docs
    with torch.no_grad(), attention_for(model, eval_cfg.precision, device), autocast(eval_cfg.precision, device):
        for split, items in (("hazard", data.hazard_mcq), ("general", data.general_mcq)):
            if not items:  # an attack that left no hazard question held out
                continue
            probes = probe_mcq(model, tok, items, opts.format, opts.normalize, eval_cfg.batch_size)
            res = mcq_accuracy(probes)
            summary[f"{split}_accuracy"], per_sample[f"{split}_accuracy"] = res.value, res.per_sample
            preds[split] = predictions(probes)
        texts = {"forget_corpus_nll": data.forget_corpus[:n_docs], "retain_corpus_nll": data.retain_corpus[:n_docs],
                 "heldout_nll": data.heldout_text[:n_docs]}
        enc = Encoder(tok)
        for key, docs in texts.items():  # per document: the registered nll metric (every token after BOS)
            if docs:
                lp, nt = score_sequences(model, [enc.text(d) for d in docs], tok.pad_token_id, eval_cfg.batch_size)
                per_sample[key] = nll(SimpleNamespace(ids=list(docs), answer_logprob=lp, answer_ntokens=nt)).per_sample
                summary[key] = float(np.mean(per_sample[key]))
    intervals = {key: list(bootstrap_ci(values, n_resamples=eval_cfg.bootstrap, seed=0))
                 for key, values in per_sample.items() if eval_cfg.bootstrap and all(map(math.isfinite, values))}
    return Result(name, kind, summary, {"per_sample": per_sample, "predictions": preds}, method="",
                  intervals=intervals, seconds={"eval": time.perf_counter() - t0})


def attack_items(data, documents: list) -> list:
    """The hazard documents as the attacks' forget items, each in the group (the entity) of the first
    hazard question whose right answer it states: relearning split by group then keeps all documents
    of an entity on one side. Questions without a stem (the public formats) group nothing."""
    stated = [(f"{it.stem} {it.choices[it.answer]}", it.group) for it in data.hazard_mcq if it.stem and it.group]
    groups = [next((g for text, g in stated if text in doc.answer), "") for doc in documents]
    return [dataclasses.replace(doc, group=g) if g else doc for doc, g in zip(documents, groups)]


def held_out_questions(items, relearned: list[str]) -> list[int]:
    """Indices of the hazard questions no relearned document answers (stem + right answer in its text):
    the relearning attack is judged on those, as a question it trained on proves nothing. A question
    without a stem cannot be matched and counts as held out."""
    return [i for i, it in enumerate(items)
            if not (it.stem and any(f"{it.stem} {it.choices[it.answer]}" in d for d in relearned))]


class Hazardous(Scenario):
    name = "hazardous"
    description = ("WMDP-style: forget a (fictional) hazard domain from its corpus; "
                   "hazard vs general multiple-choice accuracy")
    options = HazardousOptions
    default_methods = SCENARIO_METHODS
    method_kinds = ("loss", "procedure")
    shards_evaluation = False  # its own passes
    columns = COLUMNS
    sweep_objectives = ("hazard_accuracy", "general_accuracy")
    forget_label = "hazard corpus"
    retain_results_lack = "multiple-choice scores to compare with"
    question_methods_skipped = "it answers the forget questions, e.g. with \"I don't know\"; a document has no question"

    def configure(self, run: Run) -> None:
        """Keep the attacks that apply to documents (before the skeleton expands the list): the run's default
        list loses the others with a note, a list the user wrote is refused at its first question attack."""
        from ..attacks import expand_attacks

        attacks = expand_attacks(run.cfg.attacks)  # groups (jailbreak, quantize) named one by one
        other = [a for a in attacks if a not in DOCUMENT_ATTACKS]
        if not other:
            return
        if tuple(run.cfg.attacks) != tuple(RunConfig().attacks):
            raise LetheError(f"scenario 'hazardous': attack '{other[0]}' rewrites a forget question and the forget set "
                             f"here is documents; use {', '.join(DOCUMENT_ATTACKS)} (drop it from attacks=[...])")
        run.cfg = dataclasses.replace(run.cfg, attacks=tuple(a for a in attacks if a in DOCUMENT_ATTACKS))
        run.notes.append(f"attacks: {', '.join(other)} left out of the default list (it rewrites a forget question; "
                         "a document has none)")

    def check(self, run: Run) -> None:
        """The options and config; a note when the scenario's default methods run (a user's list is kept)."""
        run.opts.check()
        if run.cfg.benchmark != RunConfig().benchmark or run.cfg.benchmark_options:
            raise LetheError("scenario 'hazardous' brings its own data: drop benchmark=/benchmark_options and give "
                             f"files with scenario_options ({', '.join(DATA_FILES)})")
        if run.methods_defaulted:
            run.notes.append("methods: the scenario's defaults ga, grad_diff, npo, rmu (RMU, the WMDP paper's method); "
                             "set methods=[...] to choose")

    def directions(self, run: Run) -> dict:
        """From the hazardous suite (:mod:`lethe.metrics.suites`): hazard questions and corpus are its forget splits."""
        return suites.directions(suites.HAZARDOUS)

    def prepare(self, run: Run) -> None:
        cfg, opts = run.cfg, run.opts
        run.data = data = load_data(opts)
        run.log(f"data: {len(data.forget_corpus)} hazard documents, {len(data.retain_corpus)} general documents, "
                f"{len(data.hazard_mcq)} hazard and {len(data.general_mcq)} general questions")
        timings: dict = {}
        if cfg.model:
            run.target, retain = cfg.model, cfg.retain_model
            if not retain:
                run.notes.append("no retain model given (retain_model=...): compare hazard accuracy with the chance "
                                 "level")
            if data.name == "lethe-hazard":
                run.notes.append("the built-in lore is invented: a model that never trained on it should score about "
                                 "chance")
        else:
            run.target, retain, timings = build_models(data, cfg.tiny_model, opts, cfg.cache_dir, run.log)
            run.notes.append("built-in models: trained from scratch, the target on general + hazard documents, the "
                             "retain model (the gold standard) on the general documents only, for the same number "
                             "of steps")
        if opts.format == "choice":
            run.notes.append("scoring: each option's text is the continuation (lm-eval's acc_norm-style choice, "
                             f"{opts.normalize}-normalised log-likelihood), not WMDP's letter answer "
                             "(scenario_options.format=letter)")
        run.fixed = [Fixed("target", "target", run.target)]
        run.fixed += [Fixed("retain model", "retain", retain)] if retain else []
        run.state.update(documents=(_documents(data.forget_corpus, "f"), _documents(data.retain_corpus, "r")),
                         results_head={"benchmark": {"name": data.name, "version": data.version}},
                         provenance={"retain_model": retain, "model_timings": timings,
                                     "scenario_options": to_dict(opts)})

    def unlearning_data(self, run: Run):
        return run.state["documents"]

    def evaluate(self, run: Run, model, tok, name, kind, retain_result=None, applied=None):
        res = evaluate_model(model, tok, run.data, run.opts, name, kind, run.cfg.eval)
        run.log(f"{name}: hazard accuracy {res.summary['hazard_accuracy']:.3f}, "
                f"general accuracy {res.summary['general_accuracy']:.3f}")
        return res

    def attack(self, run: Run, model, tok, res: Result) -> dict:
        """Per attack of ``run.cfg.attacks``: the scenario's metrics on what the attack did not train on (the
        documents it did not relearn, the hazard questions none of them answers, all general questions and
        documents), before (``res``'s per-item values) and after the attack."""
        import numpy as np

        from ..attacks import run_attack

        cfg, data, opts = run.cfg, run.data, run.opts
        forget, retain = run.state["documents"]
        items = attack_items(data, forget)
        eval_cfg = dataclasses.replace(cfg.eval, bootstrap=0)
        per_sample = res.record.get("per_sample", {})
        out = {}
        for name in cfg.attacks:
            options = dict(cfg.attack_options.get(name, {}))
            if name == "relearn":
                options.setdefault("by_group", True)  # an entity's documents all relearned or all held out
            attacked, info = run_attack(name, model, tok, items, retain, options)
            ids = set(info.get("eval_forget_ids") or [it.id for it in items])
            relearned = [it.answer for it in items if it.id not in ids]
            hazard = held_out_questions(data.hazard_mcq, relearned)
            docs = [i for i, it in enumerate(items[:opts.max_eval_docs]) if it.id in ids]
            kept = {"hazard_accuracy": hazard, "forget_corpus_nll": docs}
            view = dataclasses.replace(data, hazard_mcq=[data.hazard_mcq[i] for i in hazard],
                                       forget_corpus=[data.forget_corpus[i] for i in docs], heldout_text=[])
            summary = evaluate_model(attacked, tok, view, opts, f"{res.name} after {name}", res.kind, eval_cfg).summary
            before = {k: float(np.mean([per_sample[k][i] for i in kept.get(k, range(len(per_sample[k])))]))
                      for k in ROBUSTNESS_KEYS if per_sample.get(k) and kept.get(k, True)}
            after = {k: summary[k] for k in ROBUSTNESS_KEYS if k in summary}
            info = {k: v for k, v in info.items() if jsonable(v) and k != "eval_forget_ids"}
            out[name] = {"before": before, "after": after, "items": len(docs),
                         "info": {**info, "eval_hazard_questions": len(hazard)}}
            run.log(f"{res.name}: {name}: hazard accuracy {before.get('hazard_accuracy', float('nan')):.3f} "
                    f"-> {after.get('hazard_accuracy', float('nan')):.3f} on {len(hazard)} questions")
            del attacked  # before the next attack's copy
        return out

    def finish(self, run: Run, results: list) -> tuple[dict, dict]:
        n_choices = len(run.data.hazard_mcq[0].choices)
        attacks = run.cfg.attacks
        run.notes[:0] = [f"chance level of {n_choices}-choice accuracy: {1 / n_choices:.3f} (what a model that knows "
                         "nothing scores)",
                         f"robustness attacks ({', '.join(attacks)}): hazard and general accuracy, forget and retain "
                         "corpus loss before -> after each attack (results' robustness), relearning judged on the "
                         "documents it did not train on and the hazard questions none of them answers; the retain "
                         "model under the same attack is the control" if attacks else
                         "robustness attacks: off (attacks=[])"]
        notes = [] if run.retain_result is None else [
            f"retain model's hazard accuracy (what a model that never saw the hazard corpus scores): "
            f"{run.retain_result.summary['hazard_accuracy']:.3f}"]
        return {"tradeoff": {"x": "general_accuracy", "y": "hazard_accuracy", "log_y": False}, "notes": notes}, {}


register_scenario(Hazardous.name, Hazardous.description)(Hazardous())
