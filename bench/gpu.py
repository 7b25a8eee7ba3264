#!/usr/bin/env python
"""Lethe on one GPU: training throughput, MFU and peak memory of real model shapes, and a TOFU-sized evaluation.

    .venv/bin/python bench/gpu.py                            # full shapes on CUDA, tiny ones on a CPU
    .venv/bin/python bench/gpu.py --parts a,b --out bench/results/mine.json
    .venv/bin/python bench/gpu.py --shape tiny               # smoke run: a few seconds on one CPU thread

Models are randomly initialised ``LlamaForCausalLM`` built from the real configs (no download), in bf16
on a GPU (fp32 on a CPU), with an in-memory word-level tokenizer covering the whole vocabulary and
synthetic Q&A items of TOFU length. Everything runs through Lethe's own code paths:

a. Llama-3.2-1B shape: NPO through ``lethe.train.unlearn`` (full fine-tune, LoRA, and the full fine-tune again
   updating the bf16 weights in place, ``train.master_weights=false``): tokens/s, MFU, peak memory.
b. The same shape: a TOFU-sized evaluation, ``lethe.probes.score_sequences`` over 7,600 sequences and
   ``lethe.probes.generate`` for 1,000 questions (greedy, up to 200 new tokens): seconds of each.
c. Llama-2-7B shape: peak memory of one NPO step with LoRA, and of one full step with activation
   checkpointing and 8-bit AdamW over float32 master weights (``train.optimizer=adamw_8bit``; where
   bitsandbytes or a GPU is missing, torch AdamW updating the bf16 weights in place, ``train.master_weights=false``).

MFU = flops_per_token * tokens/s / peak bf16 FLOP/s of the GPU, with N = the weights of every Linear layer
(attention and MLP projections, LM head: the matmuls each token goes through; embedding lookups and norms
do no matmul). Full fine-tune: 6N per token (forward 2N, backward 4N: input and weight gradients); LoRA:
4N (forward 2N, input gradients 2N; the frozen weights get no weight gradient, the adapters' own FLOPs are
under 1 % and left out). tokens = ``TrainStats.tokens``: non-pad tokens of the trained forward passes
(NPO: forget and retain sequences). NPO's reference log-probs are computed once before the loop (one
forward, 2N per forget token): ``mfu`` is the loop alone, ``mfu_with_reference`` adds those FLOPs and the
setup seconds. Not counted: attention-score FLOPs and padding positions (both understate MFU); Lethe
projects onto the vocabulary only from the first answer position, so counting the LM head on every token
overstates it by about the head's share (21 % of N at 1B) times the prompt share of the tokens.

A part that fails (out of memory, a missing package) is recorded with its one-line reason and the others go
on; ``--seconds-budget`` skips what is left once that many seconds have passed. Exit 0 unless nothing ran.
"""
from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import random
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from bench import cpu_model  # noqa: E402  (bench/bench.py: the CPU's name, as every figure here names it)
PARTS = ("a", "b", "c")

# Real shapes (Hugging Face configs of meta-llama/Llama-3.2-1B and meta-llama/Llama-2-7b-hf) and tiny stand-ins.
LLAMA_1B = {"hidden_size": 2048, "num_hidden_layers": 16, "num_attention_heads": 32, "num_key_value_heads": 8,
            "intermediate_size": 8192, "vocab_size": 128256, "tie_word_embeddings": True, "rope_theta": 500000.0,
            "max_position_embeddings": 131072}
LLAMA_7B = {"hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 32,
            "intermediate_size": 11008, "vocab_size": 32000, "tie_word_embeddings": False, "rope_theta": 10000.0,
            "max_position_embeddings": 4096}
SHAPES = {
    # question 20-30 words + answer 80-120 words + 6 template tokens: 106-156 tokens a sequence (TOFU length)
    "full": {"a": ("Llama-3.2-1B", LLAMA_1B), "c": ("Llama-2-7B", LLAMA_7B), "question_words": (20, 30),
             "answer_words": (80, 120), "batch_size": 32, "warmup_steps": 2, "steps": 20, "c_batch_size": 8,
             "scored": 7600, "generated": 1000, "max_new_tokens": 200, "eval_batch_size": 64},
    "tiny": {"a": ("tiny, Llama-3.2-1B-like (GQA, tied)", {**LLAMA_1B, "hidden_size": 64, "num_hidden_layers": 2,
                                                             "num_attention_heads": 4, "num_key_value_heads": 2,
                                                             "intermediate_size": 256, "vocab_size": 512}),
             "c": ("tiny, Llama-2-7B-like (untied)", {**LLAMA_7B, "hidden_size": 64, "num_hidden_layers": 2,
                                                      "num_attention_heads": 4, "num_key_value_heads": 4,
                                                      "intermediate_size": 172, "vocab_size": 320}),
             "question_words": (4, 8), "answer_words": (10, 20), "batch_size": 4, "warmup_steps": 1, "steps": 3,
             "c_batch_size": 2, "scored": 42, "generated": 10, "max_new_tokens": 4, "eval_batch_size": 16},
}
# Dense bf16 tensor-core peaks (NVIDIA data sheets), matched on the device name in this order.
PEAK_BF16 = (("H100 PCIe", 756e12), ("H100 NVL", 835e12), ("H100", 989e12), ("H200", 989e12), ("H800", 989e12),
             ("GH200", 989e12), ("A100", 312e12), ("L40S", 362e12))
TARGETS = {"a_full_mfu": (">=", 0.40), "a_lora_mfu": (">=", 0.40), "b_eval_seconds": ("<=", 60.0),
           "c_lora_peak_gb": ("<=", 40.0)}  # GB = 1e9 bytes
NPO_OPTIONS = None  # Lethe's NPO defaults: beta 0.1, retain term "nll" (a retain sequence per forget sequence)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class Bench:
    """What every part needs: shape, device, dtype, the clock and the seconds budget, the peak FLOP/s."""

    def __init__(self, shape: str, budget: float, peak_tflops: float | None):
        import torch

        self.torch = torch
        self.shape = SHAPES[shape]
        self.cuda = torch.cuda.is_available()
        self.device = torch.device("cuda" if self.cuda else "cpu")
        self.dtype = torch.bfloat16 if self.cuda else torch.float32
        self.name = torch.cuda.get_device_name(0) if self.cuda else cpu_model()
        known = next((v for k, v in PEAK_BF16 if k in self.name), None) if self.cuda else None
        self.peak = peak_tflops * 1e12 if peak_tflops else known
        self.t0, self.budget = time.perf_counter(), budget
        self.tokenizers: dict[int, tuple] = {}

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def tokenizer(self, vocab_size: int):
        if vocab_size not in self.tokenizers:
            self.tokenizers[vocab_size] = build_tokenizer(vocab_size)
        return self.tokenizers[vocab_size]

    def items(self, words: list[str], n: int, seed: int, prefix: str) -> list:
        return qa_items(words, n, self.shape["question_words"], self.shape["answer_words"], seed, prefix)

    def model(self, part: str):
        """A randomly initialised Llama of the part's shape, built directly on the device in its dtype."""
        from transformers import AutoModelForCausalLM, LlamaConfig

        kw = dict(self.shape[part][1])
        tok, _ = self.tokenizer(kw["vocab_size"])
        rope = {"rope_type": "default", "rope_theta": kw.pop("rope_theta")}
        config = LlamaConfig(**kw, rope_parameters=rope, rms_norm_eps=1e-5, bos_token_id=tok.bos_token_id,
                             eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
        self.torch.manual_seed(0)
        with self.torch.device(self.device):
            return AutoModelForCausalLM.from_config(config, dtype=self.dtype)

    def reset_peak(self) -> None:
        if self.cuda:
            self.torch.cuda.synchronize()
            self.torch.cuda.reset_peak_memory_stats()

    def peak_memory(self) -> dict:
        if not self.cuda:
            return {"peak_memory_bytes": None, "peak_memory_gib": None,
                    "peak_memory_note": "no CUDA device: GPU memory is not measured"}
        peak = self.torch.cuda.max_memory_allocated()
        return {"peak_memory_bytes": peak, "peak_memory_gib": round(peak / 2**30, 2)}

    def free(self) -> None:
        """Hand the last run's GPU memory back before the next one (a peft model holds reference cycles)."""
        if self.cuda:
            gc.collect()
            self.torch.cuda.empty_cache()


def build_tokenizer(vocab_size: int):
    """A word-level fast tokenizer with exactly ``vocab_size`` ids (Lethe's special tokens, the chat template's
    ``Q``, ``A`` and ``:``, then words ``w0``, ``w1``, ...), so every id a random model emits decodes.
    Returns ``(tokenizer, words)``."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from lethe.models import CHAT_TEMPLATE, SPECIALS

    fixed = [*SPECIALS.values(), "Q", "A", ":"]
    words = [f"w{i}" for i in range(vocab_size - len(fixed))]
    tok = Tokenizer(models.WordLevel({t: i for i, t in enumerate(fixed + words)}, unk_token=SPECIALS["unk_token"]))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, **SPECIALS)
    fast.chat_template = CHAT_TEMPLATE
    fast.padding_side = "right"
    return fast, words


def qa_items(words: list[str], n: int, q_words: tuple, a_words: tuple, seed: int, prefix: str) -> list:
    """``n`` synthetic Q&A items of random words, their lengths uniform in the given ranges."""
    from lethe.benchmarks.base import QAItem

    rng = random.Random(seed)

    def text(lo: int, hi: int) -> str:
        return " ".join(rng.choices(words, k=rng.randint(lo, hi)))

    return [QAItem(id=f"{prefix}{i}", question=text(*q_words), answer=text(*a_words)) for i in range(n)]


def matmul_params(model) -> int:
    """N of the MFU formula: the weights of every Linear layer (a tied LM head counts once, as the head)."""
    import torch

    return sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))


def sequence_tokens(tokenizer, items) -> int:
    """Tokens of the items as ``lethe.train.unlearn`` encodes them (the NPO reference pass reads these)."""
    from lethe.data import Encoder

    enc = Encoder(tokenizer)
    return sum(len(enc.item(it).ids) for it in items)


def guarded(bench: Bench, label: str, fn) -> dict:
    """``fn()``'s figures with status "ok"; "failed" with the one-line reason; "skipped" once the budget is spent."""
    if bench.elapsed() > bench.budget:
        return {"status": "skipped", "reason": f"the seconds budget ({bench.budget:g} s) was spent "
                                               f"({bench.elapsed():.0f} s elapsed)"}
    log(f"[{bench.elapsed():6.1f} s] {label} ...")
    try:
        out = {"status": "ok", **fn()}
    except Exception as exc:  # out of memory, a missing package: recorded, and the next part runs
        line = (str(exc).strip().splitlines() or [""])[0][:300]
        out = {"status": "failed", "reason": f"{type(exc).__name__}: {line}"}
        if bench.cuda:  # how far it got before failing
            out.update(bench.peak_memory())
    bench.free()
    log(f"[{bench.elapsed():6.1f} s] {label}: {out['status']}" + (f" ({out['reason']})" if "reason" in out else ""))
    return out


def train_run(bench: Bench, part: str, *, lora: bool, steps: int, batch: int, warmup: int = 0,
              checkpointing: bool = False, optimizer: str = "adamw", master_weights: bool = True) -> dict:
    """NPO through ``lethe.train.unlearn`` on a fresh model: ``warmup`` steps first (not timed), then
    ``steps`` optimizer steps over a forget set of exactly ``batch * steps`` items (one epoch)."""
    from lethe.config import TrainConfig
    from lethe.train import unlearn

    tok, words = bench.tokenizer(bench.shape[part][1]["vocab_size"])
    forget = bench.items(words, batch * steps, seed=1, prefix="f")
    retain = bench.items(words, batch * steps, seed=2, prefix="r")
    model = bench.model(part)
    n_matmul = matmul_params(model)
    cfg = TrainConfig(lr=1e-5, epochs=1.0, batch_size=batch, grad_accum=1, lora=lora, max_steps=steps,
                      gradient_checkpointing=checkpointing, optimizer=optimizer, master_weights=master_weights)
    if warmup:  # kernels, cuBLAS handles, allocator pools: the measured run starts warm
        warm = dataclasses.replace(cfg, max_steps=warmup)
        model, _ = unlearn(model, tok, "npo", forget[: batch * warmup], retain, warm, NPO_OPTIONS)
        if lora:
            model = model.unload()  # the base model again, without the warm-up's adapter
    bench.reset_peak()
    model, stats = unlearn(model, tok, "npo", forget, retain, cfg, NPO_OPTIONS)
    out = {"steps": stats.steps, "batch_size": batch, "sequences_per_step": 2 * batch, "tokens": stats.tokens,
           "seconds": round(stats.seconds, 3), "setup_seconds": round(stats.setup_seconds, 3),
           "tokens_per_second": round(stats.tokens_per_second, 1), "trainable_params": stats.trainable_params,
           "total_params": stats.total_params, "matmul_params": n_matmul, "lora": lora,
           "activation_checkpointing": checkpointing, "optimizer": optimizer,
           "master_weights": stats.master_weights, "unmoved": stats.unmoved,
           "final_loss": stats.losses[-1] if stats.losses else None,
           **bench.peak_memory()}
    per_token = (4 if lora else 6) * n_matmul
    ref_tokens = sequence_tokens(tok, forget)
    out["flops_per_token"] = per_token
    out["reference_tokens"] = ref_tokens
    if bench.peak and stats.seconds > 0:
        out["mfu"] = round(per_token * stats.tokens_per_second / bench.peak, 4)
        flops = per_token * stats.tokens + 2 * n_matmul * ref_tokens
        out["mfu_with_reference"] = round(flops / ((stats.seconds + stats.setup_seconds) * bench.peak), 4)
    else:
        out["mfu"] = out["mfu_with_reference"] = None
        out["mfu_note"] = "no known bf16 peak for this device (pass --peak-tflops)"
    return out


def part_a(bench: Bench) -> dict:
    s = bench.shape
    model_info = {"shape": s["a"][0], "config": s["a"][1], "dtype": str(bench.dtype).removeprefix("torch."),
                  "method": "npo", "autocast": False}
    full = guarded(bench, "a: full fine-tune", lambda: train_run(
        bench, "a", lora=False, steps=s["steps"], batch=s["batch_size"], warmup=s["warmup_steps"]))
    lora = guarded(bench, "a: LoRA", lambda: train_run(
        bench, "a", lora=True, steps=s["steps"], batch=s["batch_size"], warmup=s["warmup_steps"]))
    # what the float32 master weights (the default) cost: the same run updating the bf16 weights in place
    in_place = guarded(bench, "a: full fine-tune, weights updated in place", lambda: train_run(
        bench, "a", lora=False, steps=s["steps"], batch=s["batch_size"], warmup=s["warmup_steps"],
        master_weights=False))
    return {"model": model_info, "full": full, "lora": lora, "full_in_place": in_place}


def part_b(bench: Bench) -> dict:
    return guarded(bench, "b: TOFU-sized evaluation", lambda: evaluation(bench))


def evaluation(bench: Bench) -> dict:
    """One TOFU-sized evaluation of the part-a model (random init: no answer stops early at EOS)."""
    import numpy as np

    from lethe.data import Encoder
    from lethe.probes import generate, score_sequences

    s = bench.shape
    tok, words = bench.tokenizer(s["a"][1]["vocab_size"])
    items = bench.items(words, s["scored"], seed=3, prefix="e")
    model = bench.model("a").eval()
    t = time.perf_counter()
    enc = Encoder(tok)
    seqs = [enc.item(it) for it in items]
    encode_s = time.perf_counter() - t
    bench.reset_peak()
    t = time.perf_counter()
    lp, nt = score_sequences(model, seqs, tok.pad_token_id, batch_size=s["eval_batch_size"])
    score_s = time.perf_counter() - t
    questions = [it.question for it in items[: s["generated"]]]
    t = time.perf_counter()
    answers = generate(model, tok, questions, max_new_tokens=s["max_new_tokens"], batch_size=s["eval_batch_size"])
    gen_s = time.perf_counter() - t
    generated = sum(len(tok(a, add_special_tokens=False)["input_ids"]) for a in answers)
    return {"scored_sequences": len(lp), "scored_answer_tokens": int(nt.sum()),
            "sequence_tokens": sum(len(q.ids) for q in seqs), "logprobs_finite": bool(np.isfinite(lp).all()),
            "encode_seconds": round(encode_s, 3), "scoring_seconds": round(score_s, 3),
            "generations": len(answers), "max_new_tokens": s["max_new_tokens"], "tokens_generated": generated,
            "generation_seconds": round(gen_s, 3), "batch_size": s["eval_batch_size"],
            "total_seconds": round(score_s + gen_s, 3), **bench.peak_memory()}


def part_c(bench: Bench) -> dict:
    import importlib.util

    s = bench.shape
    bnb = importlib.util.find_spec("bitsandbytes") is not None
    model_info = {"shape": s["c"][0], "config": s["c"][1], "dtype": str(bench.dtype).removeprefix("torch."),
                  "method": "npo", "batch_size": s["c_batch_size"],
                  "note": "one cold step each (no warm-up): its seconds are no throughput figure"}
    lora = guarded(bench, "c: one LoRA step", lambda: train_run(bench, "c", lora=True, steps=1,
                                                                  batch=s["c_batch_size"]))
    optimizer = "adamw_8bit" if bnb and bench.cuda else "adamw"  # bitsandbytes' 8-bit states need a GPU
    # float32 master weights (the default) with 8-bit states: 2 + 2 + 4 + 2 bytes per parameter (67 GB at 7B);
    # with torch AdamW they would take 2 + 2 + 4 + 8 (108 GB), so that run updates the bf16 weights in place
    master = optimizer != "adamw"
    full = guarded(bench, "c: one full step, activation checkpointing", lambda: train_run(
        bench, "c", lora=False, steps=1, batch=s["c_batch_size"], checkpointing=True, optimizer=optimizer,
        master_weights=master))
    full.update({"optimizer": optimizer, "bitsandbytes": "installed" if bnb else "not installed"})
    if optimizer == "adamw":
        full["8bit_adamw"] = (f"not run ({'no GPU' if bnb else 'bitsandbytes is not installed'}): torch AdamW, "
                              f"its states in {model_info['dtype']}, as the weights, which it updates in place "
                              "(train.master_weights=false)")
    return {"model": model_info, "lora": lora, "full_checkpointing": full}


def targets(result: dict) -> dict:
    a, b, c = (result["parts"][name] for name in PARTS)
    peak = c.get("lora", {}).get("peak_memory_bytes")
    values = {"a_full_mfu": a.get("full", {}).get("mfu"), "a_lora_mfu": a.get("lora", {}).get("mfu"),
              "b_eval_seconds": b.get("total_seconds"), "c_lora_peak_gb": None if peak is None else peak / 1e9}
    out = {}
    for key, (op, goal) in TARGETS.items():
        v = values[key]
        row = {"target": f"{op} {goal:g}", "value": None if v is None else round(v, 4), "met": None}
        if result["shape"] != "full":
            row["note"] = "the targets are for the full shape on one H100"
        elif v is None:
            row["note"] = "not measured (see the part's status)"
        else:
            row["met"] = v >= goal if op == ">=" else v <= goal
        out[key] = row
    return out


def print_table(result: dict) -> None:
    hw = result["hardware"]
    print(f"\n{hw['device']} ({'CUDA' if hw['cuda'] else 'CPU'}), shape {result['shape']}, "
          f"{result['total_seconds']:.1f} s in all")
    print(f"{'run':<32} {'status':<8} {'tokens/s':>11} {'MFU':>7} {'peak GiB':>9} {'seconds':>9}")
    rows = [("a full fine-tune", ("a", "full")), ("a LoRA", ("a", "lora")),
            ("a full, weights in place", ("a", "full_in_place")), ("b evaluation", ("b",)),
            ("c LoRA, one step", ("c", "lora")), ("c full + checkpointing, one step", ("c", "full_checkpointing"))]
    for label, path in rows:
        r = result["parts"]
        for key in path:
            r = r.get(key, {})
        fmt = lambda v, f: "-" if v is None else format(v, f)  # noqa: E731
        secs = r.get("total_seconds", r.get("seconds"))
        print(f"{label:<32.32} {r.get('status', '-'):<8} {fmt(r.get('tokens_per_second'), ',.0f'):>11} "
              f"{fmt(r.get('mfu'), '.1%'):>7} {fmt(r.get('peak_memory_gib'), '.2f'):>9} {fmt(secs, '.2f'):>9}")
        if r.get("reason"):
            print(f"    {r['reason']}")
    for key, t in result["targets"].items():
        met = {True: "met", False: "NOT met", None: "-"}[t["met"]]
        print(f"target {key}: {t['target']}, measured {t['value']}: {met}")


def parse_args(argv: list[str] | None, cuda: bool) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shape", choices=tuple(SHAPES), default="full" if cuda else "tiny",
                   help="full: the real shapes (needs CUDA); tiny: a few-layer hidden-64 smoke run")
    p.add_argument("--out", type=Path, help="JSON path (default bench/results/gpu-<shape>.json)")
    p.add_argument("--parts", default=",".join(PARTS), help="comma-separated subset of a,b,c")
    p.add_argument("--seconds-budget", type=float, default=420.0,
                   help="skip the parts still to run once this many seconds have passed (default 420)")
    p.add_argument("--peak-tflops", type=float, help="the device's dense bf16 peak, when its name is not known")
    args = p.parse_args(argv)
    args.parts = [x.strip() for x in args.parts.split(",") if x.strip()]
    if not args.parts or any(x not in PARTS for x in args.parts):
        p.error(f"--parts must be a comma-separated subset of a,b,c, got {','.join(args.parts) or 'nothing'!r}")
    if args.shape == "full" and not cuda:
        p.error("--shape full needs a CUDA device and none was found; use --shape tiny")
    if not args.seconds_budget > 0:
        p.error(f"--seconds-budget must be > 0, got {args.seconds_budget:g}")
    if args.peak_tflops is not None and not args.peak_tflops > 0:
        p.error(f"--peak-tflops must be > 0, got {args.peak_tflops:g}")
    return args


def main(argv: list[str] | None = None) -> int:
    import torch
    import transformers

    from lethe.benchmarks.base import atomic_write_text
    from lethe.models import quiet_transformers
    from lethe.provenance import git_sha

    args = parse_args(argv, torch.cuda.is_available())
    quiet_transformers()
    bench = Bench(args.shape, args.seconds_budget, args.peak_tflops)
    result = {
        "benchmark": "bench/gpu.py", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git": git_sha(),
        "hardware": {"device": bench.name, "cuda": bench.cuda, "torch": torch.__version__,
                     "transformers": transformers.__version__, "cpu_threads": torch.get_num_threads(),
                     "gpu_memory_gib": round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
                     if bench.cuda else None, "peak_bf16_flops": bench.peak},
        "shape": args.shape, "seconds_budget": args.seconds_budget,
        "mfu_formula": "MFU = flops_per_token * tokens/s / peak_bf16_flops; full: 6N, LoRA: 4N, N = weights of "
                       "every Linear layer; tokens = non-pad tokens of the trained passes (TrainStats.tokens); "
                       "mfu_with_reference adds NPO's reference forward (2N per forget token) and setup seconds",
        "parts": {},
    }
    runners = {"a": part_a, "b": part_b, "c": part_c}
    for name in PARTS:
        if name in args.parts:
            result["parts"][name] = runners[name](bench)
        else:
            result["parts"][name] = {"status": "skipped", "reason": "not in --parts"}
    result["total_seconds"] = round(bench.elapsed(), 2)
    result["targets"] = targets(result)
    out = args.out or ROOT / "bench" / "results" / f"gpu-{args.shape}.json"
    atomic_write_text(out, json.dumps(result, indent=2) + "\n")
    print_table(result)
    print(f"\nwritten: {out}")
    return 0 if any_ran(result["parts"]) else 1


def any_ran(node) -> bool:
    """Whether any run of the result finished ("ok")."""
    if not isinstance(node, dict):
        return False
    return node.get("status") == "ok" or any(any_ran(v) for v in node.values())


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
