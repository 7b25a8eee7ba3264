#!/usr/bin/env python
"""Lethe's performance benchmark: start-up cost, unlearning throughput, evaluation time, peak memory.

    .venv/bin/python bench/bench.py                          # demo model, 1 thread, every method
    .venv/bin/python bench/bench.py --model tofu-1.6m        # TOFU-shaped comparison point
    .venv/bin/python bench/bench.py --quick                  # smoke run (< 60 s)
    .venv/bin/python bench/bench.py --threads 2 --methods ga,npo,idk+ap --out bench/results/x.json

Two models:

``demo``       Lethe's built-in target model (``TinyModelConfig`` defaults) on the built-in benchmark,
               trained once by ``build_builtin_models`` and cached (``--cache-dir``).
``tofu-1.6m``  a randomly initialised ~1.6M-parameter Llama on TOFU-shaped data (4,000 Q&A rows of
               ~60 tokens, forget10 = 400 rows, a tokenizer trained on them): the shape on which the
               reference figures of the best-known open framework were taken (see bench/README.md).

Figures (all wall-clock, ``time.perf_counter``):

1. start-up: seconds and peak RSS of a fresh ``lethe --help`` and of a fresh process that imports
   torch + transformers + Lethe and loads the model ("before any work starts"). Peak RSS is the
   child's own ``ru_maxrss`` from ``os.wait4``, measured through a small launcher process: Linux
   charges a child the parent's peak RSS at ``exec`` (vfork), so a child of this (large) process
   would report this process's memory, not its own.
2. unlearning throughput per method: ``TrainStats.tokens_per_second`` (non-pad tokens through the
   trained forward passes per second of the training loop) and seconds.
3. evaluation seconds per split and phase (scoring pass, generation pass) and the whole ``evaluate``.
4. peak RSS of this process (``ru_maxrss``) after each phase.

The JSON written to ``--out`` holds every figure plus provenance (hardware, versions, git SHA, date).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CACHE = ROOT / "bench" / "results" / ".cache"  # bench/results/ is git-ignored

# The comparison point: the best-known open framework, same machine kind, one thread (bench/README.md).
REFERENCE = {
    "ga_tokens_per_second": 6000.0,
    "npo_tokens_per_second": 4900.0,
    "eval_seconds": (40.0, 85.0),  # one TOFU evaluation: 7,600 scored sequences + 1,000 generations (<= 200 tokens)
    "startup_seconds": 7.0,
    "startup_rss_mib": 560.0,
}

# TOFU shape (Maini et al. 2024): 200 authors x 20 Q&A = 4,000 rows; forget10 = 400 rows; one evaluation
# scores 7,600 sequences (answers, paraphrases, perturbed answers) and generates 1,000 answers.
TOFU_ROWS, TOFU_FORGET, TOFU_SCORED, TOFU_GENERATED, TOFU_MAX_NEW = 4000, 400, 7600, 1000, 200
TOFU_ROW_TOKENS = 60
# ~1.6M parameters: 4096 x 128 tied embedding (0.52M) + 4 layers x 0.26M
TOFU_MODEL = {"vocab_size": 4096, "hidden_size": 128, "num_layers": 4, "num_heads": 4, "target_parameters": 1_600_000}


def intermediate_for(shape: dict) -> int:
    """MLP width that brings a tied-embedding Llama of this shape to ``target_parameters`` (multiple of 16).

    Parameters: V*h (tied embedding) + L*(4h^2 (attention) + 3*h*i (gated MLP) + 2h (norms)) + h (final norm).
    """
    V, h, L = shape["vocab_size"], shape["hidden_size"], shape["num_layers"]
    i = (shape["target_parameters"] - V * h - L * (4 * h * h + 2 * h) - h) / (3 * h * L)
    return max(16, round(i / 16) * 16)


# --------------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------------
def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mib() -> float:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return float("nan")


def atomic_write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def git_sha() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=5,
                             check=False)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=5, check=False).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "") if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware(threads: int) -> dict:
    import torch
    import transformers

    mem = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return {
        "platform": platform.platform(), "cpu": cpu_model(), "cpu_count": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gib": mem, "python": platform.python_version(), "torch": torch.__version__,
        "transformers": transformers.__version__, "torch_threads": torch.get_num_threads(),
        "requested_threads": threads, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
    }


def cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


class Phases:
    """Records seconds, memory and CPU use per phase, in order.

    ``cpu_per_wall`` is this process's CPU seconds over wall seconds since the previous phase: about
    the thread count on an idle machine; clearly less means other processes took the cores (the
    figures of that phase are then pessimistic). ``minor_faults``: page faults since the previous
    phase (memory handed back to the OS and touched again shows up here).
    """

    def __init__(self):
        self.rows: list[dict] = []
        self._wall, self._cpu, self._faults = time.perf_counter(), cpu_seconds(), minor_faults()

    def add(self, name: str, seconds: float, **extra) -> dict:
        now, cpu, faults = time.perf_counter(), cpu_seconds(), minor_faults()
        util = (cpu - self._cpu) / (now - self._wall) if now > self._wall else float("nan")
        row = {"phase": name, "seconds": round(seconds, 4), "peak_rss_mib": round(peak_rss_mib(), 1),
               "rss_mib": round(current_rss_mib(), 1), "cpu_per_wall": round(util, 2),
               "loadavg_1min": round(os.getloadavg()[0], 2), "minor_faults": faults - self._faults, **extra}
        self._wall, self._cpu, self._faults = now, cpu, faults
        self.rows.append(row)
        return row


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------------
# 1. Start-up: fresh processes, measured through a small launcher
# --------------------------------------------------------------------------------------------------
READY_SCRIPT = r"""
import json, sys, time
t0 = time.perf_counter()
import torch, transformers  # noqa: F401
import lethe.pipeline, lethe.train, lethe.probes, lethe.methods  # noqa: F401  (what `lethe run` needs)
t1 = time.perf_counter()
from lethe.models import load_model
model, tok = load_model(sys.argv[1])
t2 = time.perf_counter()
print(json.dumps({"import_seconds": t1 - t0, "load_model_seconds": t2 - t1,
                  "parameters": sum(p.numel() for p in model.parameters())}))
"""


def _launch(cmd: list[str], env: dict) -> dict:
    """Run ``cmd``; wall seconds, the child's own peak RSS (wait4) and its stdout. Runs in the launcher."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=ROOT)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    return {"seconds": round(wall, 3), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1), "returncode": p.returncode,
            "user_seconds": round(usage.ru_utime, 3), "system_seconds": round(usage.ru_stime, 3),
            "stdout_tail": stdout[-2000:], "stderr_tail": stderr[-2000:] if p.returncode else ""}


def launcher_main(spec_json: str) -> int:
    """Hidden entry point (``--launch``): a fresh, small process that runs and measures the children."""
    spec = json.loads(spec_json)
    env = {**os.environ, **spec.get("env", {})}
    results = {name: _launch(cmd, env) for name, cmd in spec["commands"]}
    print(json.dumps(results))
    return 0


def measure_startup(model_dir: Path, threads: int, repeats: int, warmup: bool = True) -> dict:
    python = sys.executable
    lethe_script = Path(python).parent / "lethe"
    help_cmd = [str(lethe_script), "--help"] if lethe_script.exists() else \
        [python, "-c", "import sys, lethe.cli; sys.exit(lethe.cli.main(['--help']))"]
    commands = [
        ("python_baseline", [python, "-c", "pass"]),
        ("lethe_help", help_cmd),
        ("ready", [python, "-c", READY_SCRIPT, str(model_dir)]),
    ]
    env = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "TRANSFORMERS_VERBOSITY": "error",
           "HF_HUB_DISABLE_PROGRESS_BARS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    spec = json.dumps({"commands": commands, "env": env})
    runs: dict[str, list[dict]] = {name: [] for name, _ in commands}
    # run 0 warms the page cache (first import of torch from disk is I/O-bound); the median of the rest is reported
    for _ in range(repeats + (1 if warmup else 0)):
        out = subprocess.run([python, str(Path(__file__).resolve()), "--launch", spec], capture_output=True, text=True,
                             cwd=ROOT, env={**os.environ, **env}, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"start-up launcher failed:\n{out.stderr[-3000:]}")
        res = json.loads(out.stdout.strip().splitlines()[-1])
        for name, r in res.items():
            if r["returncode"] != 0:
                raise RuntimeError(f"start-up child '{name}' failed:\n{r['stderr_tail']}")
            runs[name].append(r)
    result = {}
    for name, rs in runs.items():
        warm = rs[1:] if warmup else rs
        med = sorted(warm, key=lambda r: r["seconds"])[len(warm) // 2]
        entry = {"seconds": med["seconds"], "peak_rss_mib": max(r["peak_rss_mib"] for r in warm),
                 "user_seconds": med["user_seconds"], "system_seconds": med["system_seconds"],
                 "all_seconds": [r["seconds"] for r in warm]}
        if warmup:
            entry["cold_seconds"] = rs[0]["seconds"]  # first run, page cache possibly cold
        if name == "ready":
            entry.update(json.loads(med["stdout_tail"].strip().splitlines()[-1]))
        result[name] = entry
    result["command_help"] = " ".join(Path(c).name if i == 0 else c for i, c in enumerate(help_cmd))
    result["command_ready"] = "python -c 'import torch, transformers, lethe.{pipeline,train,probes,methods}; load_model(dir)'"
    return result


# --------------------------------------------------------------------------------------------------
# Generation accounting: how many tokens did generate() produce?
# --------------------------------------------------------------------------------------------------
class GenerationCounter:
    """Wraps ``model.generate`` to count decode steps, generated tokens and rows that stopped at EOS."""

    def __init__(self, model, eos_id: int | None, pad_id: int | None):
        self.model, self.eos, self.pad = model, eos_id, pad_id
        self.reset()
        self._orig = model.generate

        def wrapped(*args, **kwargs):
            out = self._orig(*args, **kwargs)
            self._count(kwargs["input_ids"].size(1), out)
            return out

        model.generate = wrapped

    def reset(self) -> None:
        self.calls = self.rows = self.steps = self.row_steps = self.tokens = self.stopped = 0

    def _count(self, prompt_len: int, out) -> None:
        new = out[:, prompt_len:]  # (B, S) generated part, padded after EOS
        B, S = new.shape
        self.calls += 1
        self.rows += B
        self.steps += S  # decode steps of this batch (the batch runs until its last row stops)
        self.row_steps += B * S  # token positions computed
        if self.eos is None:
            self.tokens += B * S
            return
        is_eos = new == self.eos
        has = is_eos.any(dim=1)
        first = is_eos.float().argmax(dim=1)  # index of the first EOS (0 where none)
        lengths = (first + 1).where(has, first.new_full((B,), S))
        self.tokens += int(lengths.sum())
        self.stopped += int(has.sum())

    def snapshot(self) -> dict:
        return {"generate_calls": self.calls, "rows": self.rows, "decode_steps": self.steps,
                "token_positions_computed": self.row_steps, "tokens_generated": self.tokens,
                "rows_stopped_at_eos": self.stopped,
                "mean_tokens_per_answer": round(self.tokens / self.rows, 2) if self.rows else 0.0}

    def detach(self) -> None:
        self.model.generate = self._orig


# --------------------------------------------------------------------------------------------------
# 2. Unlearning throughput
# --------------------------------------------------------------------------------------------------
def method_list(spec: str | None) -> list[tuple[str, str, dict]]:
    """(label, method, options): every registered training method, plus idk with retain=ap.

    Inference-time methods have no training loop to time (their build cost is in the run's results)."""
    from lethe.methods import METHODS

    default = [(name, name, {}) for name in METHODS if METHODS.get(name).kind in ("loss", "procedure")]
    default += [("idk+ap", "idk", {"retain": "ap"})]
    if not spec:
        return default
    out = []
    for label in [s.strip() for s in spec.split(",") if s.strip()]:
        if "+" in label:
            name, retain = label.split("+", 1)
            out.append((label, name, {"retain": retain}))
        else:
            out.append((label, label, {}))
        METHODS.get(out[-1][1])  # unknown name -> LetheError with "did you mean"
    return out


def bench_unlearning(load, forget, retain, train_cfg, methods, phases: Phases) -> list[dict]:
    from lethe.train import unlearn

    rows = []
    for label, name, options in methods:
        t0 = time.perf_counter()
        model, tok = load()
        t_load = time.perf_counter() - t0
        t1 = time.perf_counter()
        model, stats = unlearn(model, tok, name, forget, retain, train_cfg, options, description=f"unlearn {label}")
        wall = time.perf_counter() - t1
        row = {"label": label, "method": name, "options": options, "tokens_per_second": round(stats.tokens_per_second, 1),
               "seconds": round(stats.seconds, 3), "setup_seconds": round(stats.setup_seconds, 3),
               "wall_seconds": round(wall, 3), "load_seconds": round(t_load, 3), "steps": stats.steps,
               "sequences": stats.sequences, "tokens": stats.tokens,
               "final_loss": round(stats.losses[-1], 4) if stats.losses else None}
        phases.add(f"unlearn {label}", wall)
        row["peak_rss_mib"] = round(peak_rss_mib(), 1)
        log(f"  {label:<10} {row['tokens_per_second']:>9,.0f} tok/s  {row['seconds']:6.2f} s  ({stats.steps} steps, "
            f"{stats.tokens:,} tokens, setup {row['setup_seconds']:.2f} s)")
        rows.append(row)
        del model
    return rows


# --------------------------------------------------------------------------------------------------
# 3. Evaluation phases (demo): scoring and generation per split, as probe_split does them
# --------------------------------------------------------------------------------------------------
def bench_eval_demo(model, tok, splits, eval_cfg, phases: Phases) -> dict:
    from lethe.data import Encoder
    from lethe.evaluation import evaluate
    from lethe.probes import generate, score_sequences

    counter = GenerationCounter(model, tok.eos_token_id, tok.pad_token_id)
    out = {"splits": {}}
    enc = Encoder(tok)
    for split, items in splits.items():
        # the scoring pass of probe_split: answer, paraphrase and K wrong answers per item
        t0 = time.perf_counter()
        K = min(len(it.perturbed_answers) for it in items)
        seqs = []
        for it in items:
            seqs.append(enc.qa(it.question, it.answer))
            seqs.append(enc.qa(it.question, it.paraphrase))
            seqs.extend(enc.qa(it.question, p) for p in it.perturbed_answers[:K])
        t_enc = time.perf_counter() - t0
        with precision_scope(model, eval_cfg.precision):
            score_sequences(model, seqs, tok.pad_token_id, eval_cfg.batch_size)
        t_score = time.perf_counter() - t0
        phases.add(f"eval {split}: scoring", t_score)
        # the generation pass, with probe_split's default length cap
        longest = max(len(s.ids) - s.n_prompt for s in seqs[:: K + 2])
        max_new = eval_cfg.max_new_tokens or min(200, int(longest * 1.5) + 8)
        counter.reset()
        t1 = time.perf_counter()
        with precision_scope(model, eval_cfg.precision):
            generate(model, tok, [it.question for it in items], max_new, eval_cfg.batch_size, enc)
        t_gen = time.perf_counter() - t1
        phases.add(f"eval {split}: generation", t_gen)
        out["splits"][split] = {"items": len(items), "scored_sequences": len(seqs),
                                "scored_tokens": sum(len(s.ids) for s in seqs), "encode_seconds": round(t_enc, 4),
                                "scoring_seconds": round(t_score, 4), "generation_seconds": round(t_gen, 4),
                                "max_new_tokens": max_new, **counter.snapshot()}
        log(f"  {split:<13} scoring {t_score:6.2f} s ({len(seqs)} seqs)   generation {t_gen:6.2f} s "
            f"({len(items)} answers, {counter.tokens} tokens, max_new_tokens {max_new})")
    counter.detach()
    out["scoring_seconds"] = round(sum(s["scoring_seconds"] for s in out["splits"].values()), 4)
    out["generation_seconds"] = round(sum(s["generation_seconds"] for s in out["splits"].values()), 4)
    # the whole evaluate() as `lethe run` calls it: probes + metrics (ROUGE-L, truth ratio, ...). The first
    # call also imports the ROUGE scorer (rouge-score, nltk), a one-off cost per process: both are reported.
    for key in ("evaluate_first_seconds", "evaluate_seconds"):
        t0 = time.perf_counter()
        res = evaluate(model, tok, splits, "target", "target", eval_cfg)
        out[key] = round(time.perf_counter() - t0, 4)
        phases.add("evaluate() total" + (" (first call)" if key == "evaluate_first_seconds" else ""), out[key])
    log(f"  evaluate() total {out['evaluate_seconds']:.2f} s (probes + metrics; first call {out['evaluate_first_seconds']:.2f} s)")
    out["evaluate_groups"] = eval_groups(res.seconds)
    for g, sec in sorted(out["evaluate_groups"]["seconds"].items(), key=lambda kv: -kv[1]):
        log(f"    {g:<32} {sec:7.3f} s")
    log(f"    model passes {out['evaluate_groups']['model_share']:.0%} of evaluate(), metric code "
        f"{out['evaluate_groups']['metric_share']:.0%}, other {out['evaluate_groups']['other_share']:.0%}")
    return out


def eval_groups(seconds: dict) -> dict:
    """evaluate()'s seconds per group (ModelResult.seconds "eval: <group>") and the shares of model
    passes (the evaluated model, the embedding / NLI models) vs metric code."""
    from lethe.evaluation import MODEL_GROUPS

    groups = {k[len("eval: "):]: round(v, 4) for k, v in seconds.items() if k.startswith("eval: ")}
    total = sum(groups.values()) or 1.0
    model = sum(v for k, v in groups.items() if k in MODEL_GROUPS)
    metric = sum(v for k, v in groups.items() if k.startswith("metrics: "))
    return {"seconds": groups, "model_share": round(model / total, 4), "metric_share": round(metric / total, 4),
            "other_share": round(groups.get("other", 0.0) / total, 4)}


# --------------------------------------------------------------------------------------------------
# Demo model
# --------------------------------------------------------------------------------------------------
def run_demo(args, phases: Phases, result: dict) -> None:
    from lethe.benchmarks import load_benchmark
    from lethe.config import RunConfig, TinyModelConfig
    from lethe.models import count_parameters, load_model
    from lethe.builtin import build_builtin_models
    from lethe.evaluation import eval_splits

    cfg = RunConfig()
    tiny, bench_opts, train_cfg, eval_cfg = cfg.tiny_model, {}, cfg.train, cfg.eval
    if args.quick:
        tiny = TinyModelConfig(vocab_size=512, hidden_size=64, num_layers=1, num_heads=2, intermediate_size=128,
                               base_epochs=2.0, finetune_epochs=2.0)
        bench_opts = {"n_authors": 20, "n_holdout": 2, "n_world": 30, "n_people": 20}
        train_cfg = _replace(train_cfg, max_steps=3)
    train_cfg = _train_overrides(train_cfg, args)
    if args.precision:
        eval_cfg = _replace(eval_cfg, precision=args.precision)
    t0 = time.perf_counter()
    bench = load_benchmark(cfg.benchmark, **bench_opts)
    splits = eval_splits(bench, cfg.forget_split)
    phases.add("generate benchmark", time.perf_counter() - t0)
    t0 = time.perf_counter()
    models = build_builtin_models(bench, cfg.forget_split, tiny, args.cache_dir, log=log)
    phases.add("build/load cached demo models", time.perf_counter() - t0, timings=models.timings)
    model, tok = load_model(models.target)
    _, n_params = count_parameters(model)
    result["model"] = {"name": "demo", "target": models.target, "parameters": n_params, "vocab_size": len(tok),
                       "tiny_model": _asdict(tiny), "model_training_seconds": models.timings}
    result["data"] = {"benchmark": bench.name, "version": bench.version, "spec": bench.spec,
                      "forget": len(bench.forget(cfg.forget_split)), "retain": len(bench.retain(cfg.forget_split)),
                      "eval_items": {k: len(v) for k, v in splits.items()}}

    if not args.skip_startup:
        log("start-up (fresh processes) ...")
        t0 = time.perf_counter()
        result["startup"] = measure_startup(Path(models.target), args.threads, 1 if args.quick else 3,
                                            warmup=not args.quick)
        phases.add("start-up measurements (children)", time.perf_counter() - t0)

    if not args.skip_eval:
        log(f"evaluation of the target model (batch {eval_cfg.batch_size}) ...")
        result["evaluation"] = bench_eval_demo(model, tok, splits, eval_cfg, phases)
    del model

    log(f"unlearning ({cfg.forget_split}: {len(bench.forget(cfg.forget_split))} forget items; lr {train_cfg.lr}, "
        f"{train_cfg.epochs} epochs, batch {train_cfg.batch_size} x {train_cfg.grad_accum}) ...")
    result["train_config"] = _asdict(train_cfg)
    result["unlearning"] = bench_unlearning(lambda: load_model(models.target), bench.forget(cfg.forget_split),
                                            bench.retain(cfg.forget_split), train_cfg, method_list(args.methods), phases)


# --------------------------------------------------------------------------------------------------
# TOFU-shaped model and data
# --------------------------------------------------------------------------------------------------
def tofu_rows(n_rows: int, target_tokens: int, count_tokens=None):
    """TOFU-shaped Q&A rows from the built-in generator's authors (8 facts each).

    Each row asks one fact; its answer is that fact's full-sentence wording followed by the author's
    next facts until question + answer reach ``target_tokens`` (TOFU answers are long sentences).
    Paraphrase and perturbed answers are built the same way from the facts' own paraphrases and
    wrong answers, so they have the same length. ``count_tokens=None`` gives raw facts (tokenizer data).
    """
    import random

    from lethe.benchmarks import QAItem, generate

    n_authors = -(-n_rows // 8)
    bench = generate(seed=0, n_authors=n_authors, n_holdout=0, n_world=0, n_people=0)
    facts = bench.splits["authors"]
    if count_tokens is None:
        return facts
    rng = random.Random("bench/tofu-rows")
    rows = []
    for a in range(n_authors):
        own = facts[8 * a : 8 * a + 8]
        for j, it in enumerate(own):
            parts = [it]
            k = j
            n = count_tokens(it.question, it.paraphrase)
            while n < target_tokens and len(parts) < 8:  # add facts until the row reaches the target ...
                k = (k + 1) % 8
                prev, n = n, count_tokens(it.question, " ".join(p.paraphrase for p in parts + [own[k]]))
                if n - target_tokens > target_tokens - prev:  # ... unless stopping short is closer to it
                    break
                parts.append(own[k])
            pert = tuple(" ".join(rng.choice(p.perturbed_answers) for p in parts) for _ in range(5))
            rows.append(QAItem(id=it.id, question=it.question, answer=" ".join(p.paraphrase for p in parts),
                               paraphrased_answer=" ".join(p.answer for p in parts), perturbed_answers=pert,
                               group=it.group, fact=it.fact))
    return rows[:n_rows]


def build_tofu(args, cache: Path):
    """Tokenizer + rows + random-init ~1.6M Llama saved to ``cache`` (re-used when present)."""
    import torch

    from lethe.data import Encoder
    from lethe.models import load_tokenizer, save_model, tiny_llama, train_tokenizer

    shape = dict(TOFU_MODEL)
    if args.quick:
        shape.update(vocab_size=1024, hidden_size=64, num_layers=2, target_parameters=300_000)
    n_rows = 400 if args.quick else TOFU_ROWS
    root = cache / f"tofu-{'quick' if args.quick else '1.6m'}"
    t0 = time.perf_counter()
    if (root / "tokenizer" / "tokenizer.json").exists():
        tok = load_tokenizer(root / "tokenizer")
    else:
        facts = tofu_rows(n_rows, 0)
        texts = [t for it in facts for t in (it.question, it.answer, it.paraphrase, *it.perturbed_answers)]
        tok = train_tokenizer(texts, shape["vocab_size"])
        tok.save_pretrained(root / "tokenizer")
    t_tok = time.perf_counter() - t0
    # the trained vocabulary falls short of vocab_size on this data: the MLP width makes up the parameters
    shape["vocab_size"] = len(tok)
    shape["intermediate_size"] = intermediate_for(shape)
    enc = Encoder(tok)
    rows = tofu_rows(n_rows, TOFU_ROW_TOKENS, lambda q, a: len(enc.qa(q, a).ids))
    folder = root / "random-init-{vocab_size}v-{hidden_size}h-{num_layers}l-{intermediate_size}i".format(**shape)
    if not (folder / "config.json").exists():
        model = tiny_llama(len(tok), shape["hidden_size"], shape["num_layers"], shape["num_heads"],
                           shape["intermediate_size"], max_positions=512, seed=0, bos_token_id=tok.bos_token_id,
                           eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
        save_model(model, tok, folder)
    torch.manual_seed(0)
    return folder, tok, rows, t_tok, shape


def precision_scope(model, precision: str):
    """What ``pipeline.evaluate`` does for ``eval.precision``: bf16 autocast with eager attention."""
    from contextlib import ExitStack

    from lethe.train import attention_for, autocast

    stack = ExitStack()
    stack.enter_context(attention_for(model, precision, "cpu"))
    stack.enter_context(autocast(precision, "cpu"))
    return stack


def tofu_eval(model, tok, rows, forget, n_scored: int, n_gen: int, max_new: int, batch_size: int, phases: Phases,
              label: str, precision: str = "fp32") -> dict:
    """One TOFU-shaped evaluation through Lethe's probes: ``n_scored`` sequences, ``n_gen`` answers."""
    from lethe.data import Encoder
    from lethe.probes import generate, score_sequences

    enc = Encoder(tok)
    # as TOFU: forget and retain items (answer, paraphrase, 5 wrong answers each), filled to n_scored
    in_forget = {r.id for r in forget}
    items = forget + [r for r in rows if r.id not in in_forget]  # forget first, then retain rows
    seqs = []
    for it in items:
        seqs.append(enc.qa(it.question, it.answer))
        seqs.append(enc.qa(it.question, it.paraphrase))
        seqs.extend(enc.qa(it.question, p) for p in it.perturbed_answers)
        if len(seqs) >= n_scored:
            break
    seqs = seqs[:n_scored]
    counter = GenerationCounter(model, tok.eos_token_id, tok.pad_token_id)
    questions = [it.question for it in items[:n_gen]]
    with precision_scope(model, precision):
        t0 = time.perf_counter()
        score_sequences(model, seqs, tok.pad_token_id, batch_size)
        t_score = time.perf_counter() - t0
        t1 = time.perf_counter()
        generate(model, tok, questions, max_new, batch_size, enc)
        t_gen = time.perf_counter() - t1
    phases.add(f"eval ({label}): scoring", t_score)
    phases.add(f"eval ({label}): generation", t_gen)
    counter.detach()
    g = counter.snapshot()
    out = {"label": label, "precision": precision, "scored_sequences": len(seqs), "scored_tokens": sum(len(s.ids) for s in seqs),
           "mean_scored_length": round(sum(len(s.ids) for s in seqs) / len(seqs), 1),
           "generations": len(questions), "max_new_tokens": max_new, "batch_size": batch_size,
           "scoring_seconds": round(t_score, 3), "generation_seconds": round(t_gen, 3),
           "total_seconds": round(t_score + t_gen, 3),
           "scoring_tokens_per_second": round(sum(len(s.ids) for s in seqs) / t_score, 1),
           "generated_tokens_per_second": round(g["tokens_generated"] / t_gen, 1) if t_gen else 0.0, **g}
    log(f"  {label}: scoring {t_score:.2f} s ({len(seqs)} seqs), generation {t_gen:.2f} s ({len(questions)} answers, "
        f"{g['tokens_generated']:,} tokens, {g['rows_stopped_at_eos']} stopped at EOS, {g['decode_steps']} decode "
        f"steps) = {t_score + t_gen:.2f} s")
    return out


def tofu_eval_and_finetune(args, model, tok, enc, rows, forget, target: Path, phases: Phases, result: dict) -> None:
    """Evaluate the random-init model (no EOS: full-length answers), fine-tune it briefly so that it
    ends its answers with EOS, evaluate again, and save it to ``target`` (the unlearning start)."""
    from lethe.models import save_model
    from lethe.train import TrainConfig, finetune

    n_scored, n_gen, max_new = (760, 100, 20) if args.quick else (TOFU_SCORED, TOFU_GENERATED, TOFU_MAX_NEW)
    evals = []
    log(f"evaluation, TOFU shape ({n_scored} scored sequences, {n_gen} generations, max_new_tokens {max_new}) ...")
    if not args.skip_eval:
        evals.append(tofu_eval(model, tok, rows, forget, n_scored, n_gen, max_new, args.eval_batch_size, phases,
                               "random init: no EOS, full length", args.precision or "fp32"))
    ft_cfg = TrainConfig(lr=4e-3, epochs=0.25 if args.quick else args.finetune_epochs, batch_size=32,
                         warmup_ratio=0.05, weight_decay=0.0)
    seqs = [enc.qa(r.question, r.answer) for r in rows]
    log(f"fine-tune on all {len(rows)} rows ({ft_cfg.epochs} epochs, batch {ft_cfg.batch_size}) so answers end at EOS ...")
    t0 = time.perf_counter()
    model.train()
    model, st = finetune(model, tok, seqs, ft_cfg, "fine-tune")
    phases.add("fine-tune (SFT)", time.perf_counter() - t0)
    result["finetune"] = {"epochs": ft_cfg.epochs, "batch_size": ft_cfg.batch_size, "steps": st.steps,
                          "tokens": st.tokens, "seconds": round(st.seconds, 3),
                          "tokens_per_second": round(st.tokens_per_second, 1),
                          "final_loss": round(st.losses[-1], 4) if st.losses else None}
    log(f"  fine-tune: {st.tokens_per_second:,.0f} tok/s, {st.seconds:.1f} s, final loss {result['finetune']['final_loss']}")
    if not args.skip_eval:
        evals.append(tofu_eval(model, tok, rows, forget, n_scored, n_gen, max_new, args.eval_batch_size, phases,
                               "fine-tuned: stops at EOS", args.precision or "fp32"))
        result["evaluation"] = evals
    save_model(model, tok, target)


def run_tofu(args, phases: Phases, result: dict) -> None:
    from lethe.models import count_parameters, load_model
    from lethe.train import TrainConfig

    cache = Path(args.cache_dir)
    t0 = time.perf_counter()
    folder, tok, rows, t_tok, shape = build_tofu(args, cache)
    phases.add("TOFU-shaped data + tokenizer + model", time.perf_counter() - t0)
    n_forget = 40 if args.quick else TOFU_FORGET
    forget, retain = rows[-n_forget:], rows[:-n_forget]  # forget10 = the last 10%, as in TOFU
    model, tok = load_model(folder)
    _, n_params = count_parameters(model)
    from lethe.data import Encoder

    enc = Encoder(tok)
    lengths = [len(enc.qa(r.question, r.answer).ids) for r in rows]
    result["model"] = {"name": "tofu-1.6m", "parameters": n_params, "vocab_size": len(tok), **shape,
                       "init": "random (lethe.models.tiny_llama)", "tokenizer_seconds": round(t_tok, 3)}
    result["data"] = {"rows": len(rows), "forget": len(forget), "retain": len(retain),
                      "mean_row_tokens": round(sum(lengths) / len(lengths), 1), "min_row_tokens": min(lengths),
                      "max_row_tokens": max(lengths), "source": "lethe-authors facts joined into ~60-token rows"}
    log(f"tofu-1.6m: {n_params / 1e6:.2f}M parameters, {len(rows)} rows of {result['data']['mean_row_tokens']} "
        f"tokens on average (forget {len(forget)})")

    if not args.skip_startup:
        log("start-up (fresh processes) ...")
        t0 = time.perf_counter()
        result["startup"] = measure_startup(folder, args.threads, 1 if args.quick else 3, warmup=not args.quick)
        phases.add("start-up measurements (children)", time.perf_counter() - t0)

    target = folder.with_name(folder.name.replace("random-init", "finetuned"))
    if args.skip_eval and (target / "config.json").exists():
        log(f"--skip-eval: unlearning starts from the cached fine-tuned model {target}")
    else:
        tofu_eval_and_finetune(args, model, tok, enc, rows, forget, target, phases, result)
    del model

    train_cfg = TrainConfig(lr=1e-5, epochs=args.epochs, batch_size=4, grad_accum=4, warmup_ratio=0.1)
    if args.quick:
        train_cfg = _replace(train_cfg, max_steps=3)
    train_cfg = _train_overrides(train_cfg, args)
    result["train_config"] = _asdict(train_cfg)
    log(f"unlearning (forget {len(forget)} rows; {train_cfg.epochs} epochs, batch {train_cfg.batch_size} x "
        f"{train_cfg.grad_accum}) ...")
    result["unlearning"] = bench_unlearning(lambda: load_model(target), forget, retain, train_cfg,
                                            method_list(args.methods), phases)


# --------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------
def _asdict(dc) -> dict:
    import dataclasses

    return dataclasses.asdict(dc)


def _replace(dc, **kw):
    import dataclasses

    return dataclasses.replace(dc, **kw)


def _train_overrides(cfg, args):
    over = {k: v for k, v in (("batch_size", args.batch_size), ("grad_accum", args.grad_accum),
                              ("precision", args.precision)) if v}
    return _replace(cfg, **over) if over else cfg


def print_table(result: dict) -> None:
    w = print
    hw = result["hardware"]
    w(f"\nLethe benchmark: model {result['model']['name']} ({result['model']['parameters'] / 1e6:.2f}M parameters), "
      f"{hw['torch_threads']} thread(s), {hw['cpu']} ({hw['usable_cpus']} usable CPUs), torch {hw['torch']}, "
      f"git {result['git_sha'][:12]}, {result['date']}")
    if "startup" in result:
        s = result["startup"]
        w("\nstart-up (fresh process)                     seconds   peak RSS MiB")
        w(f"  python -c pass (floor)                      {s['python_baseline']['seconds']:7.2f}   {s['python_baseline']['peak_rss_mib']:8.0f}")
        w(f"  lethe --help                                {s['lethe_help']['seconds']:7.2f}   {s['lethe_help']['peak_rss_mib']:8.0f}")
        w(f"  import torch+transformers+lethe, load model {s['ready']['seconds']:7.2f}   {s['ready']['peak_rss_mib']:8.0f}"
          f"   (reference: {REFERENCE['startup_seconds']:.0f} s, {REFERENCE['startup_rss_mib']:.0f} MiB)")
    if result.get("unlearning"):
        tc = result["train_config"]
        w(f"\nunlearning (batch {tc['batch_size']} x {tc['grad_accum']}, {tc['epochs']} epochs, {tc.get('precision', 'fp32')})   tokens/s   seconds   steps   "
          "tokens    peak RSS MiB")
        for r in result["unlearning"]:
            ref = ""
            if result["model"]["name"] == "tofu-1.6m" and not result["quick"] and r["label"] in ("ga", "npo"):
                rv = REFERENCE[f"{r['label']}_tokens_per_second"]
                ref = f"   (reference {rv:,.0f}: {r['tokens_per_second'] / rv:.1f}x)"
            w(f"  {r['label']:<38} {r['tokens_per_second']:>9,.0f} {r['seconds']:>9.2f} {r['steps']:>7} "
              f"{r['tokens']:>8,} {r['peak_rss_mib']:>10.0f}{ref}")
    ev = result.get("evaluation")
    if isinstance(ev, dict):
        w("\nevaluation of the target model    items   scoring s   generation s   tokens generated")
        for name, s in ev["splits"].items():
            w(f"  {name:<30} {s['items']:>6} {s['scoring_seconds']:>10.2f} {s['generation_seconds']:>13.2f} "
              f"{s['tokens_generated']:>12,}")
        w(f"  {'sum of phases':<30} {'':>6} {ev['scoring_seconds']:>10.2f} {ev['generation_seconds']:>13.2f}")
        w(f"  evaluate() total (probes + metrics): {ev['evaluate_seconds']:.2f} s "
          f"(first call in the process: {ev['evaluate_first_seconds']:.2f} s, includes importing the ROUGE scorer)")
    elif isinstance(ev, list):
        lo, hi = REFERENCE["eval_seconds"]
        w(f"\nTOFU-shaped evaluation                  scoring s   generation s   total s   tokens generated   (reference {lo:.0f}-{hi:.0f} s)")
        for e in ev:
            w(f"  {e['label']:<37} {e['scoring_seconds']:>9.2f} {e['generation_seconds']:>13.2f} {e['total_seconds']:>9.2f} "
              f"{e['tokens_generated']:>12,}   ({e['scored_sequences']} seqs, {e['generations']} answers, "
              f"{e['rows_stopped_at_eos']} stopped at EOS)")
        if result.get("finetune"):
            f = result["finetune"]
            w(f"  (fine-tune before the second evaluation: {f['tokens_per_second']:,.0f} tok/s, {f['seconds']:.1f} s)")
    w("\nphase                                                 seconds   peak RSS MiB   RSS MiB   CPU/wall   load")
    for p in result["phases"]:
        w(f"  {p['phase']:<51} {p['seconds']:>8.2f} {p['peak_rss_mib']:>12.0f} {p['rss_mib']:>9.0f} "
          f"{p['cpu_per_wall']:>9.2f} {p['loadavg_1min']:>6.2f}")
    w(f"\ntotal {result['total_seconds']:.1f} s; results: {result['out']}")


# --------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--launch"]:
        return launcher_main(argv[1])
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1, as the reference figures)")
    p.add_argument("--model", choices=["demo", "tofu-1.6m"], default="demo")
    p.add_argument("--out", default="", help="JSON results (default bench/results/<model>-t<threads>[-quick].json)")
    p.add_argument("--methods", default="", help="comma-separated labels, e.g. ga,npo,idk+ap (default: all + idk+ap)")
    p.add_argument("--quick", action="store_true", help="shrink everything for a smoke run (< 60 s)")
    p.add_argument("--cache-dir", default=str(DEFAULT_CACHE), help="where built models are cached")
    p.add_argument("--skip-startup", action="store_true", help="skip the fresh-process start-up measurements")
    p.add_argument("--skip-eval", action="store_true", help="skip the evaluation timings (throughput-only run)")
    p.add_argument("--epochs", type=float, default=1.0, help="tofu-1.6m: unlearning epochs over forget10")
    p.add_argument("--batch-size", type=int, default=0, help="override the unlearning micro-batch")
    p.add_argument("--grad-accum", type=int, default=0, help="override the unlearning accumulation steps")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="", help="unlearning and evaluation precision (default fp32; the tofu-1.6m SFT stays fp32)")
    p.add_argument("--eval-batch-size", type=int, default=64, help="tofu-1.6m: evaluation batch size")
    p.add_argument("--finetune-epochs", type=float, default=1.0, help="tofu-1.6m: SFT epochs before the EOS evaluation")
    args = p.parse_args(argv)
    if args.threads < 1:
        p.error("--threads must be >= 1")

    # before torch is imported: the OpenMP pool reads these once
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ["LETHE_NO_PROGRESS"] = "1"
    out = Path(args.out) if args.out else ROOT / "bench" / "results" / f"{args.model}-t{args.threads}{'-quick' if args.quick else ''}.json"

    t_start = time.perf_counter()
    phases = Phases()
    t0 = time.perf_counter()
    import torch
    import transformers

    torch.set_num_threads(args.threads)
    transformers.utils.logging.disable_progress_bar()
    import lethe

    phases.add("import torch + transformers (this process)", time.perf_counter() - t0)
    from lethe.errors import LetheError

    result = {"schema": "lethe-bench/1", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "git_sha": git_sha(), "lethe_version": lethe.__version__, "quick": args.quick,
              "argv": argv, "hardware": hardware(args.threads), "reference": REFERENCE, "out": str(out)}
    try:
        method_list(args.methods)  # a typo fails now, not after the model is built
        (run_tofu if args.model == "tofu-1.6m" else run_demo)(args, phases, result)
    except LetheError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 2
    result["phases"] = phases.rows
    result["peak_rss_mib"] = round(peak_rss_mib(), 1)
    result["total_seconds"] = round(time.perf_counter() - t_start, 2)
    atomic_write_json(out, result)
    print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
