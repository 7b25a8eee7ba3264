"""The verbatim-text scenario (MUSE, Shi et al. 2024): ``lethe run scenario=verbatim``.

Forget part of a text corpus (the built-in ``lethe-news`` or a MUSE folder) *as text*; VerbMem (C1),
KnowMem (C2, C4) and PrivLeak (C3) of every model, robustness attacks on the unlearned ones. What the
run does, the metrics and MUSE's data: docs/verbatim.md.
"""
from __future__ import annotations

import inspect
import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from ..benchmarks.news import generate as generate_news, load_muse
from ..builtin import content_hash, recorded_training_seconds
from ..config import DEFAULT_ATTACKS, to_dict
from ..errors import LetheError
from ..metrics import METRICS, suites
from ..metrics.bootstrap import bootstrap_ci
from ..metrics.extraction import exact_memorization
from ..metrics.mia import min_k_scores, privleak
from ..metrics.muse import knowmem, verbmem
from ..metrics.semantic import token_entropy
from ..probes_tokens import TokenProbes, token_scores
from ..progress import bar
from . import register_scenario
from ._run import Fixed, Result, Run, Scenario
from ._methods import jsonable
from .safety_sets import WEIGHT_ATTACKS
from .verbatim_models import MODEL_OPTIONS, build_models

# bump when what evaluate_verbatim computes (or the form of its cached entries) changes
EVAL_RECIPE = "verbmem+knowmem+privleak-2"
BUILTIN = ("lethe-news", "lethe-authors")  # "lethe-authors" is RunConfig's default benchmark: the built-in corpus here
# MUSE's baselines that Lethe has: GA, GA_GDR (grad_diff), GA_KLR (kl), NPO_GDR (npo, retain=nll)
DEFAULT_METHODS = ("ga", "grad_diff", "kl", "npo")
MUSE_STOPS = ("\n\n", "\nQuestion", "Question:")  # MUSE cuts a KnowMem answer before these (knowmem.py)
COLUMNS = ["forget_verbmem", "forget_knowmem", "retain_knowmem", "privleak", "retain_verbmem", "unlearn_seconds"]


@dataclass(frozen=True)
class VerbatimOptions:
    model_epochs: float = 20.0  # epochs of the tiny target and retain models (built-in corpus only)
    model_batch_size: int = 16  # their batch size (sequences per step)
    qa_per_sequence: int = 2  # Q&A pairs packed into one training sequence (see pack_sequences)
    verbmem_max_new_tokens: int = 128  # MUSE: 128 new tokens; the ground truth is cut to as many tokens
    knowmem_max_new_tokens: int = 32  # MUSE: 32
    min_k: float = 0.4  # Min-K% of PrivLeak: MUSE's "forget_holdout_Min-40%"
    chunk_words: int = 300  # MUSE folders: raw text -> documents of at most this many words

    def check(self) -> None:
        for key in ("verbmem_max_new_tokens", "knowmem_max_new_tokens", "chunk_words", "model_batch_size",
                    "qa_per_sequence"):
            if getattr(self, key) < 1:
                raise LetheError(f"scenario 'verbatim': scenario_options.{key} must be >= 1, got {getattr(self, key)}")
        if not 0 < self.min_k <= 1:
            raise LetheError(f"scenario 'verbatim': scenario_options.min_k is a fraction in (0, 1], got {self.min_k}")
        if not self.model_epochs > 0:
            raise LetheError(f"scenario 'verbatim': scenario_options.model_epochs must be > 0, got {self.model_epochs}")


@dataclass
class TextProbes:
    """Greedy generations on one split of prompts, with their references: what ``verbmem``,
    ``knowmem`` and ``token_entropy`` read (the generation fields of a ``SplitProbes``)."""

    ids: list[str]
    generations: list[str]
    references: list[str]
    generation_tokens: list[list[str]] = field(default_factory=list)


class PrefixEncoder:
    """Prompts that are the beginning of a text: BOS + its tokens, as :meth:`lethe.data.Encoder.text`
    tokenises a training document (MUSE: ``tokenizer(prompt, add_special_tokens=True)``)."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def prompt(self, text: str) -> list[int]:
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        bos = self.tokenizer.bos_token_id
        return ([bos] if bos is not None else []) + ids


class FewShotEncoder(PrefixEncoder):
    """MUSE's KnowMem prompt (``knowmem.py``): the few-shot examples, then the question::

        Question: {q_1}\\nAnswer: {a_1}\\n\\n ... Question: {q}\\nAnswer: """

    def __init__(self, tokenizer, examples):
        super().__init__(tokenizer)
        self.head = "".join(f"Question: {it.question}\nAnswer: {it.answer}\n\n" for it in examples)

    def prompt(self, question: str) -> list[int]:
        return super().prompt(f"{self.head}Question: {question}\nAnswer: ")


def cut_at_stops(text: str) -> str:
    """The answer before the first of ``MUSE_STOPS`` (MUSE's ``get_prefix_before_words_occur``). Lethe's
    generation probe has already stripped the outer whitespace, so an answer that starts with a blank
    line keeps its first line (MUSE's would be empty)."""
    for stop in MUSE_STOPS:
        text = text.split(stop)[0]
    return text.strip()


def truncate_reference(tokenizer, text: str, max_tokens: int) -> str:
    """The first ``max_tokens`` tokens of a ground-truth continuation, decoded (MUSE's
    ``gt_ids[:, :max_new_tokens]``: the model is never asked for more than it may generate)."""
    ids = tokenizer(text, add_special_tokens=True)["input_ids"][:max_tokens]
    return tokenizer.decode(ids, skip_special_tokens=True).strip()


def score_split(model, tokenizer, corpus, opts: VerbatimOptions, key: str, items: list, batch_size: int):
    """``(metric result, TextProbes)`` of one generation split, one batched greedy pass
    (:func:`lethe.probes.generate`): VerbMem of continuations (``*_verbmem``) or KnowMem of questions."""
    from ..data import Encoder
    from ..probes import generate

    if key.endswith("verbmem"):
        n = opts.verbmem_max_new_tokens
        references = [truncate_reference(tokenizer, c.gt, n) for c in items]
        gens = generate(model, tokenizer, [c.prompt for c in items], n, batch_size, PrefixEncoder(tokenizer))
    else:  # built-in models learned Q&A through Lethe's prompt; MUSE's models are asked MUSE's way
        enc = (Encoder(tokenizer) if corpus.name == "lethe-news"
               else FewShotEncoder(tokenizer, corpus.knowmem_icl.get(key.split("_")[0], [])))
        references = [it.answer for it in items]
        gens = generate(model, tokenizer, [it.question for it in items], opts.knowmem_max_new_tokens, batch_size, enc)
        gens = [cut_at_stops(g) for g in gens]
    p = TextProbes([it.id for it in items], gens, references, [tokenizer.tokenize(g) for g in gens])
    return (verbmem if key.endswith("verbmem") else knowmem)(p), p


def evaluate_verbatim(model, tokenizer, corpus, opts: VerbatimOptions, eval_cfg, name: str, kind: str,
                      retain_auc: float | None = None, log=print) -> Result:
    """Every metric of the scenario for one model: its summary, and as ``record`` the per-item values
    and the probes (``{"per_sample", "probes"}``). ``retain_auc``: the retain model's Min-K% AUC
    (PrivLeak's yardstick); the retain model itself (``kind="retain"``) has PrivLeak 0 by definition."""
    from ..data import Encoder
    from ..loop import attention_for, autocast

    t0 = time.perf_counter()
    device = next(model.parameters()).device
    bs = eval_cfg.batch_size
    jobs = {f"{split}_{what}": getattr(corpus, f"{what}_{split}") for what in ("verbmem", "knowmem")
            for split in ("forget", "retain") if getattr(corpus, f"{what}_{split}")}
    metrics, per_sample, probes = {}, {}, {}
    model.eval()
    with bar(f"evaluate {name}", len(jobs) + 1) as progress, attention_for(model, eval_cfg.precision, device), \
            autocast(eval_cfg.precision, device):
        for key, items in jobs.items():
            r, p = score_split(model, tokenizer, corpus, opts, key, items, bs)
            if key.endswith("verbmem"):  # the fluency of the continuations
                te, entropy = token_entropy(p), key.replace("verbmem", "token_entropy")
                metrics[entropy], per_sample[entropy] = te.value, te.per_sample
            metrics[key], per_sample[key] = r.value, r.per_sample
            probes[key] = {"ids": p.ids, "generations": p.generations}
            progress.advance()
        # one per-token pass over members (forget) and non-members (holdout), cut to the model's
        # context (at most 2048 tokens: MUSE's max_len)
        n_ctx = getattr(model.config, "max_position_embeddings", None) or 2048
        enc = Encoder(tokenizer, max_length=int(min(n_ctx, 2048)))
        docs = corpus.privleak_forget + corpus.privleak_holdout
        tp = token_scores(model, [enc.text(d.text) for d in docs], tokenizer.pad_token_id, bs)
        n_f = len(corpus.privleak_forget)
        forget_tp, holdout_tp = (TokenProbes(tp.logprobs[s], tp.mu[s], tp.sigma[s], tp.argmax_hit[s])
                                 for s in (slice(0, n_f), slice(n_f, len(docs))))
        auc = float(METRICS.get("mia_min_k").fn(forget_tp, holdout_tp, k=opts.min_k).value)
        metrics["mia_min_k"] = auc
        if kind == "retain":
            metrics["privleak"] = 0.0
        elif retain_auc is not None and retain_auc < 1.0:  # undefined at 1: the run's notes say why
            metrics["privleak"] = privleak(auc, retain_auc)
        em = exact_memorization(forget_tp)
        metrics["forget_exact_memorization"], per_sample["forget_exact_memorization"] = em.value, em.per_sample
        probes["mia"] = {"forget_ids": [d.id for d in corpus.privleak_forget],
                         "holdout_ids": [d.id for d in corpus.privleak_holdout],
                         "forget_min_k": min_k_scores(forget_tp.logprobs, opts.min_k).tolist(),
                         "holdout_min_k": min_k_scores(holdout_tp.logprobs, opts.min_k).tolist()}
        progress.advance()
    intervals = {k: list(bootstrap_ci(v, n_resamples=eval_cfg.bootstrap)) for k, v in per_sample.items()
                 if eval_cfg.bootstrap and v}
    seconds = time.perf_counter() - t0
    nan = float("nan")
    log(f"{name}: forget VerbMem {metrics['forget_verbmem']:.3f}, "
        f"forget KnowMem {metrics.get('forget_knowmem', nan):.3f}, "
        f"retain KnowMem {metrics.get('retain_knowmem', nan):.3f}, Min-K% AUC {auc:.3f} ({seconds:.1f} s)")
    return Result(name=name, kind=kind, summary=metrics, record={"per_sample": per_sample, "probes": probes},
                  intervals=intervals, seconds={"eval": seconds})


def heldout_probes(corpus, heldout: set) -> dict[str, list]:
    """The forget VerbMem / KnowMem probes an attack did not train on, given the forget documents it
    held out: a continuation of a relearned document (same id, or its prompt inside the document's text:
    MUSE's probes are excerpts of the raw text) and a question about one (``QAItem.group``: the
    built-in corpus) are left out; MUSE's questions name no document, so all of them stay."""
    trained = [d for d in corpus.forget if d.id not in heldout]
    ids, texts = {d.id for d in trained}, [" ".join(d.text.split()) for d in trained]
    return {"forget_verbmem": [c for c in corpus.verbmem_forget if c.id not in ids
                               and not any(" ".join(c.prompt.split()) in t for t in texts)],
            "forget_knowmem": [it for it in corpus.knowmem_forget if (it.group or it.id) not in ids]}


def load_corpus(cfg, chunk_words: int = VerbatimOptions.chunk_words):
    """The built-in corpus (``benchmark_options`` -> :func:`lethe.benchmarks.news.generate`) or a MUSE folder."""
    source = str(cfg.benchmark)
    if source in BUILTIN:
        known = list(inspect.signature(generate_news).parameters)
        for name in cfg.benchmark_options:
            if name not in known:
                raise LetheError(f"benchmark 'lethe-news': unknown parameter '{name}' (known: {', '.join(known)})")
        return generate_news(**cfg.benchmark_options)
    if Path(source).is_dir():
        if cfg.benchmark_options:
            raise LetheError(f"benchmark_options {sorted(cfg.benchmark_options)} given, but a MUSE folder takes none "
                             "(scenario_options.chunk_words sets how raw text is cut into documents)")
        return load_muse(source, chunk_words=chunk_words)
    raise LetheError(f"scenario verbatim: unknown benchmark '{source}'; give 'lethe-news' (the built-in corpus) or "
                     "the folder of a MUSE corpus (raw/, verbmem/, knowmem/, privleak/)")


class Verbatim(Scenario):
    name = "verbatim"
    description = "MUSE-style: unlearn news articles as text; VerbMem, KnowMem, PrivLeak (lethe-news or a MUSE folder)"
    options = VerbatimOptions
    default_methods = DEFAULT_METHODS
    method_kinds = ("loss", "procedure")  # it unlearns from the target model's weights
    shards_evaluation = False  # its own passes
    columns = COLUMNS
    sweep_objectives = ("forget_verbmem", "retain_knowmem")  # MUSE's no verbatim memorisation / utility preserved
    forget_label = "forget"
    question_methods_skipped = ("it trains answers to questions ('I don't know', an alternative answer), and documents "
                                "have no question")

    def check(self, run: Run) -> None:
        """The options, then the data and its models: errors before the run folder is claimed."""
        from ..attacks import expand_attacks

        cfg = run.cfg
        run.opts.check()
        run.state["corpus"] = corpus = load_corpus(cfg, run.opts.chunk_words)
        wrong = {a: "it rewrites questions, and documents have none" for a in cfg.attacks if a not in WEIGHT_ATTACKS}
        if "relearn" in cfg.attacks and len(corpus.forget) < 2:
            wrong["relearn"] = "it needs 2 forget documents, one to relearn and one to hold out"
        if wrong and tuple(cfg.attacks) == tuple(expand_attacks(DEFAULT_ATTACKS)):
            run.cfg = cfg = replace(cfg, attacks=tuple(a for a in cfg.attacks if a not in wrong))
            run.state["attack_note"] = "attacks: left out of the default list: " + "; ".join(
                f"{a} ({why})" for a, why in wrong.items())
        elif "relearn" in wrong and len(corpus.forget) < 2:
            raise LetheError(f"attack 'relearn' needs 2 forget documents (one to relearn, one to hold out), "
                             f"{corpus.name} has {len(corpus.forget)}; drop it from attacks=[...]")
        elif wrong:
            raise LetheError(f"attack '{next(iter(wrong))}' rewrites the forget questions, and the verbatim scenario "
                             f"unlearns documents, which have none; choose from {', '.join(WEIGHT_ATTACKS)}")
        if cfg.model and not cfg.retain_model:
            raise LetheError("scenario verbatim: model= is given without its gold standard; give "
                             "retain_model=PATH_OR_HUB_ID (the model trained without the forget set), PrivLeak is "
                             "relative to it")
        if not cfg.model and corpus.name != "lethe-news":
            raise LetheError(f"scenario verbatim: {corpus.name} has no built-in models; give the model trained on it "
                             "with model=PATH_OR_HUB_ID and its gold standard with retain_model=PATH_OR_HUB_ID")

    def default_name(self, run: Run) -> str:
        corpus = run.state["corpus"].name.replace(":", "-")
        return f"verbatim-{corpus}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"

    def directions(self, run: Run) -> dict:
        return suites.directions(suites.VERBATIM)

    def prepare(self, run: Run) -> None:
        cfg, opts = run.cfg, run.opts
        notes = [run.state["attack_note"]] if "attack_note" in run.state else []
        if run.methods_defaulted:
            notes.append(f"methods: the verbatim default ({', '.join(DEFAULT_METHODS)}: MUSE's baselines GA, GA_GDR, "
                         "GA_KLR, NPO_GDR); set methods=[...] to choose")
        for n in notes:
            run.log(n)
            run.notes.append(n)
        run.data = corpus = run.state["corpus"]
        root, run.target, retain = None, cfg.model, cfg.retain_model
        if not cfg.model:
            root, target_dir, retain_dir = build_models(corpus, cfg.tiny_model, opts, cfg.cache_dir, run.log)
            run.target, retain = str(target_dir), str(retain_dir)
        run.state["provenance"] = {"retain_model": retain, "options": to_dict(opts), "model_timings":
                                   recorded_training_seconds(root) if root is not None else {}}
        eval_opts = {k: v for k, v in to_dict(opts).items() if k not in MODEL_OPTIONS}
        key = content_hash({"recipe": EVAL_RECIPE, "eval": cfg.eval.cache_settings(), "opts": eval_opts,
                            "corpus": [corpus.name, corpus.version, corpus.spec]})

        def where(kind: str):  # the evaluations of the built-in models are cached
            return None if root is None else Path(cfg.cache_dir) / "evals" / f"verbatim-{root.name}-{kind}-{key}.json"

        run.fixed = [Fixed("target", "target", run.target, where("target")),
                     Fixed("retain model", "retain", retain, where("retain"))]
        run.state["results_head"] = {"benchmark": {"name": corpus.name, "version": corpus.version}}

    def unlearning_data(self, run: Run):
        return [d.item() for d in run.data.forget], [d.item() for d in run.data.retain]

    def evaluate(self, run: Run, model, tok, name, kind, retain_result=None, applied=None):
        retain_auc = retain_result.summary["mia_min_k"] if retain_result is not None else None
        return evaluate_verbatim(model, tok, run.data, run.opts, run.cfg.eval, name, kind, retain_auc, run.log)

    def attack(self, run: Run, model, tok, res: Result) -> dict:
        """Per attack of ``cfg.attacks`` (relearning on part of the forget documents, quantization): forget
        VerbMem and KnowMem on the probes it did not train on, before (``res``'s per-item values) and after."""
        from ..attacks import run_attack
        from ..loop import attention_for, autocast

        cfg, corpus = run.cfg, run.data
        forget, retain = self.unlearning_data(run)
        out = {}
        for name in cfg.attacks:
            attacked, info = run_attack(name, model, tok, forget, retain, cfg.attack_options.get(name, {}))
            probes = heldout_probes(corpus, set(info.get("eval_forget_ids") or [d.id for d in forget]))
            before, after = {}, {}
            device = next(attacked.parameters()).device
            attacked.eval()
            with attention_for(attacked, cfg.eval.precision, device), autocast(cfg.eval.precision, device):
                for key, items in probes.items():
                    if not items:
                        continue
                    keep = {it.id for it in items}
                    pairs = zip(res.record["probes"][key]["ids"], res.record["per_sample"][key])
                    before[key] = sum(v for i, v in pairs if i in keep) / len(keep)
                    after[key] = score_split(attacked, tok, corpus, run.opts, key, items, cfg.eval.batch_size)[0].value
            info = {k: v for k, v in info.items() if jsonable(v) and k != "eval_forget_ids"}
            out[name] = {"before": before, "after": after, "items": len(probes["forget_verbmem"]),
                         "info": {**info, "questions": len(probes["forget_knowmem"])}}
            run.log(f"{res.name}: {name}: forget VerbMem {before.get('forget_verbmem', float('nan')):.3f} -> "
                    f"{after.get('forget_verbmem', float('nan')):.3f} on {out[name]['items']} continuations")
            del attacked  # before the next attack's copy
        return out

    def finish(self, run: Run, results: list) -> tuple[dict, dict]:
        corpus, opts = run.data, run.opts
        target_m = next(r for r in results if r.kind == "target").summary
        retain_m = run.retain_result.summary
        retain_auc = retain_m["mia_min_k"]
        notes = []
        if retain_auc >= 1.0:
            notes.append("PrivLeak is not reported: the retain model's Min-K% AUC is 1 (it separates the forget from "
                         "the holdout documents perfectly without having seen either), so the two sets are not from "
                         "one distribution and PrivLeak's denominator is 0; check the forget and holdout data")
        notes += [
            f"forget VerbMem: target {target_m['forget_verbmem']:.3f}, retain model {retain_m['forget_verbmem']:.3f} "
            "(a model that never saw the forget articles still shares their template words: the retain model's "
            "value is the goal, not 0)",
            f"PrivLeak = (AUC_retain - AUC) / (1 - AUC_retain) x 100 with Min-K% (k = {opts.min_k:g}) AUCs of forget "
            f"vs holdout documents; the retain model's AUC is {retain_auc:.3f}; 0 = as private as the retain model, "
            "< 0 = the forget set still stands out (MUSE's sign, docs/metrics.md)",
            "ROUGE values are in [0, 1]; MUSE's tables print 100 x these",
        ]
        if corpus.name == "lethe-news":
            notes.append(f"built-in corpus: {len(corpus.forget)} forget / {len(corpus.retain)} retain / "
                         f"{len(corpus.holdout)} holdout articles; the target was trained on forget + retain articles "
                         "and their Q&A, the retain model on the retain ones, both from scratch")
        # the full ground truths; a continuation is scored on its first verbmem_max_new_tokens tokens
        references = {f"{split}_{what}": [getattr(it, field) for it in getattr(corpus, f"{what}_{split}")]
                      for what, field in (("verbmem", "gt"), ("knowmem", "answer")) for split in ("forget", "retain")}
        return ({"tradeoff": {"x": "retain_knowmem", "y": "forget_verbmem", "log_y": False}, "notes": notes},
                {"references": references})


register_scenario(Verbatim.name, Verbatim.description)(Verbatim())
