"""Shared inputs for timing Lethe's evaluation next to open-unlearning's TOFU evaluation (bench/README.md,
"Evaluation against open-unlearning, CPU, one thread").

Builds, under WORK (default bench/results/ou-compare, git-ignored), for each benchmark:

  WORK/<bench>/model/               the model both sides load: a Lethe tiny Llama saved by Lethe (safetensors),
                                    its tokenizer_config.json carrying the chat template and a plain
                                    PreTrainedTokenizerFast class, config.json its rope_theta (older transformers
                                    read these; the weights and tokens are Lethe's)
  WORK/<bench>/data/locuslab/TOFU/  the benchmark in TOFU's file layout (lethe.benchmarks.export_tofu) plus a
                                    README.md declaring one dataset config per file, as the hub repository does;
                                    open-unlearning's dataset configs say path "locuslab/TOFU", and `datasets`
                                    reads a local folder of that name before it looks at the hub, so its commands
                                    run in WORK/<bench>/data with no data override (each benchmark has its own
                                    HF_DATASETS_CACHE, WORK/<bench>/hf-datasets: offline, `datasets` serves a
                                    cached copy by the name "locuslab/TOFU", whichever folder it came from)
  WORK/ou-configs/model/lethe_tiny.yaml   open-unlearning's model config for it (--config-dir): float32 on the
                                    CPU, SDPA attention, the model's own chat template (no system prompt)

and prints the commands (one thread each): open-unlearning's `src/eval.py experiment=eval/tofu/default` and
`lethe eval` with (a) open-unlearning's metric set (no sentence-embedding model, no bootstrap intervals) and
(b) Lethe's default set.

Benchmarks:
  forget10  the built-in lethe-authors benchmark (100 authors x 8 facts; forget10 = 80 rows, holdout 80), the
            built-in target model (0.69M parameters; trained into --cache-dir the first time, ~5 min)
  tofu4000  lethe-authors generated with 500 authors and 50 holdout authors: 4,000 rows like TOFU (forget10 =
            400 rows, retain_perturbed 400, holdout 400, world facts 120, known people 60); bench.py's tofu-1.6m
            model shape (a 1.6M-parameter Llama, hidden 128, 4 layers, BPE trained on the rows) fine-tuned one
            epoch on the 4,000 rows so that its answers end at EOS (~1-2 min)

Usage:
  .venv/bin/python bench/compare_open_unlearning.py --open-unlearning /path/to/open-unlearning \\
      --ou-python /path/to/ou-venv/bin/python [--work DIR] [--bench forget10,tofu4000]

open-unlearning is the user's own checkout and environment; nothing of it is copied here.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCHES = ("forget10", "tofu4000")
TOFU4000 = {"n_authors": 500, "n_holdout": 50}  # x 8 facts: 4,000 trained rows, 400 holdout rows
TOFU_SHAPE = {"vocab_size": 4096, "hidden_size": 128, "num_layers": 4, "num_heads": 4, "target_parameters": 1_600_000}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def hf_readme(folder: Path) -> None:
    """A dataset card whose YAML names one config per JSON-lines file, as the locuslab/TOFU hub repo does."""
    names = sorted(p.stem for p in folder.glob("*.json"))
    lines = ["---", "configs:"]
    for name in names:
        lines += [f"- config_name: {name}", "  data_files:", "  - split: train", f"    path: {name}.json"]
    lines += ["---", "", "TOFU-layout export of a Lethe benchmark (lethe.benchmarks.export_tofu).", ""]
    (folder / "README.md").write_text("\n".join(lines), encoding="utf-8")


def portable_model(src: Path, dst: Path) -> None:
    """Copy a Lethe model folder so that transformers 4.4x reads it as transformers 5 does: the chat template
    inside tokenizer_config.json, the PreTrainedTokenizerFast class, rope_theta in config.json."""
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst)
    tc = json.loads((dst / "tokenizer_config.json").read_text())
    tc["tokenizer_class"] = "PreTrainedTokenizerFast"
    template = dst / "chat_template.jinja"
    if template.is_file():
        tc["chat_template"] = template.read_text()
    (dst / "tokenizer_config.json").write_text(json.dumps(tc, indent=2))
    cfg = json.loads((dst / "config.json").read_text())
    rope = cfg.get("rope_parameters") or {}
    cfg.setdefault("rope_theta", rope.get("rope_theta", 10000.0))
    cfg.setdefault("torch_dtype", cfg.get("dtype", "float32"))
    (dst / "config.json").write_text(json.dumps(cfg, indent=2))


def builtin_target(cache_dir: str) -> Path:
    from lethe.benchmarks import load_benchmark
    from lethe.builtin import build_builtin_models
    from lethe.config import TinyModelConfig

    bench = load_benchmark("lethe-authors")
    return Path(build_builtin_models(bench, "forget10", TinyModelConfig(), cache_dir, log).target)


def intermediate_for(shape: dict) -> int:
    """bench.py's rule: the MLP width (multiple of 16) that brings a tied-embedding Llama to the target size."""
    V, h, L = shape["vocab_size"], shape["hidden_size"], shape["num_layers"]
    i = (shape["target_parameters"] - V * h - L * (4 * h * h + 2 * h) - h) / (3 * h * L)
    return max(16, round(i / 16) * 16)


def tofu4000_target(bench, folder: Path) -> Path:
    """bench.py's tofu-1.6m shape on ``bench``'s rows, fine-tuned one epoch (answers end at EOS)."""
    if (folder / "config.json").is_file():
        return folder
    import torch

    from lethe.config import TrainConfig
    from lethe.data import Encoder
    from lethe.loop import finetune
    from lethe.models import save_model, tiny_llama, train_tokenizer

    rows = bench.splits["authors"]
    texts = [t for it in rows for t in (it.question, it.answer, it.paraphrase, *it.perturbed_answers)]
    tok = train_tokenizer(texts, TOFU_SHAPE["vocab_size"])
    shape = {**TOFU_SHAPE, "vocab_size": len(tok)}
    shape["intermediate_size"] = intermediate_for(shape)
    model = tiny_llama(len(tok), shape["hidden_size"], shape["num_layers"], shape["num_heads"],
                       shape["intermediate_size"], max_positions=512, seed=0, bos_token_id=tok.bos_token_id,
                       eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    enc = Encoder(tok)
    seqs = [enc.qa(it.question, it.answer) for it in rows]
    torch.manual_seed(0)
    log(f"tofu4000: fine-tuning the 1.6M-parameter model one epoch on {len(seqs)} rows ...")
    model.train()
    model, stats = finetune(model, tok, seqs, TrainConfig(lr=4e-3, epochs=1.0, batch_size=32, warmup_ratio=0.05,
                                                          weight_decay=0.0))
    log(f"  {stats.seconds:.0f} s, final loss {stats.losses[-1]:.3f}")
    save_model(model, tok, folder)
    return folder


def build(name: str, work: Path, cache_dir: str) -> dict:
    from lethe.benchmarks import export_tofu, generate, load_benchmark

    root = work / name
    data = root / "data" / "locuslab" / "TOFU"
    if name == "forget10":
        bench = load_benchmark("lethe-authors")
        source = builtin_target(cache_dir)
    else:
        bench = generate(seed=0, **TOFU4000)
        source = tofu4000_target(bench, root / "lethe-model")
    for stale in (data, root / "hf-datasets"):  # offline, `datasets` would serve a cached copy by name
        if stale.exists():
            shutil.rmtree(stale)
    export_tofu(bench, data)
    (data / "pretrain.txt").unlink(missing_ok=True)  # not a TOFU file; Lethe's evaluation does not read it
    hf_readme(data)
    portable_model(source, root / "model")
    return {"name": name, "root": root, "data": data, "model": root / "model", "source": source,
            "rows": len(bench.splits["authors"]), "forget": len(bench.forget("forget10"))}


def ou_model_config(work: Path) -> Path:
    folder = work / "ou-configs" / "model"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "lethe_tiny.yaml").write_text(
        "# a Lethe tiny Llama (bench/compare_open_unlearning.py): float32 on the CPU, its own chat template\n"
        "model_args:\n"
        "  pretrained_model_name_or_path: ???\n"
        "  attn_implementation: sdpa\n"
        "  torch_dtype: float32\n"
        "  device_map: cpu\n"
        "tokenizer_args:\n"
        "  pretrained_model_name_or_path: ???\n"
        "template_args:\n"
        "  apply_chat_template: True\n"
        "  system_prompt: null\n"
        "  date_string: null\n", encoding="utf-8")
    return folder.parent


def commands(b: dict, work: Path, ou: Path, ou_python: str) -> dict[str, str]:
    env = "OMP_NUM_THREADS=1 MKL_NUM_THREADS=1"
    ou_cmd = (f"cd {shlex.quote(str(b['root'] / 'data'))} && {env} HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 "
              f"HF_DATASETS_CACHE={b['root'] / 'hf-datasets'} "
              f"{ou_python} {ou / 'src' / 'eval.py'} --config-dir {work / 'ou-configs'} "
              f"experiment=eval/tofu/default model=lethe_tiny "
              f"model.model_args.pretrained_model_name_or_path={b['model']} "
              f"model.tokenizer_args.pretrained_model_name_or_path={b['model']} "
              f"forget_split=forget10 holdout_split=holdout10 task_name=lethe_{b['name']} "
              f"paths.output_dir={work / 'ou-out' / b['name']} eval.tofu.overwrite=true")
    lethe = (f"cd {ROOT} && {env} LETHE_NO_PROGRESS=1 {ROOT / '.venv/bin/lethe'} eval benchmark={b['data']} "
             f"benchmark_options.items_per_author=8 forget_split=forget10 model={b['model']} threads=1 "
             f"output={work / 'lethe-out'} overwrite=true")
    return {"open-unlearning": ou_cmd,
            "lethe, open-unlearning's metric set": f"{lethe} name={b['name']}-same eval.embedding_model= eval.bootstrap=0",
            "lethe, default set": f"{lethe} name={b['name']}-default"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--open-unlearning", required=True, help="a checkout of locuslab/open-unlearning")
    p.add_argument("--ou-python", default="python", help="the Python of open-unlearning's environment")
    p.add_argument("--work", default=str(ROOT / "bench" / "results" / "ou-compare"))
    p.add_argument("--bench", default=",".join(BENCHES), help=f"comma-separated: {', '.join(BENCHES)}")
    p.add_argument("--cache-dir", default=str(ROOT / ".lethe-cache"), help="Lethe's model cache (built-in target)")
    p.add_argument("--json", action="store_true", help="print the commands as JSON")
    args = p.parse_args(argv)
    ou = Path(args.open_unlearning).resolve()
    if not (ou / "src" / "eval.py").is_file():
        p.error(f"{ou}: not an open-unlearning checkout (no src/eval.py)")
    work = Path(args.work).resolve()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    ou_model_config(work)
    out = {}
    for name in args.bench.split(","):
        if name not in BENCHES:
            p.error(f"unknown benchmark {name!r}; one of {', '.join(BENCHES)}")
        b = build(name, work, args.cache_dir)
        out[name] = {"model": str(b["model"]), "built_from": str(b["source"]), "data": str(b["data"]),
                     "rows": b["rows"], "forget": b["forget"], "commands": commands(b, work, ou, args.ou_python)}
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for name, b in out.items():
            print(f"# {name}: {b['rows']} rows, forget10 = {b['forget']}; model {b['model']}")
            for label, cmd in b["commands"].items():
                print(f"# {label}\n{cmd}")
            print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
