"""Models and tokenizers: any Hugging Face causal LM (hub id or local folder), Lethe's tiny Llamas, LoRA.

Security: weights load through safetensors only; ``trust_remote_code`` stays off unless asked for.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .adapters import ADAPTER_CONFIG, adapter_chain, is_adapter_folder, put_adapters
from .errors import LetheError

if TYPE_CHECKING:  # for annotations only: torch is imported where it is used (loading it is slow)
    import torch

SPECIALS = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")

# Lethe's own tokenizer gets a chat template, so built-in and hub models share one prompt path.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'user' %}Q: {{ message['content'] }}\n"
    "{% elif message['role'] == 'assistant' %}A: {{ message['content'] }}{{ eos_token }}\n{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}A:{% endif %}"
)


def train_tokenizer(texts: list[str], vocab_size: int = 2048):
    """A byte-level BPE trained on ``texts``, wrapped as a ``PreTrainedTokenizerFast``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIALS.values()),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, **SPECIALS)
    fast.chat_template = CHAT_TEMPLATE
    fast.padding_side = "right"
    return fast


def tiny_llama(vocab_size: int, hidden_size: int = 128, num_layers: int = 4, num_heads: int = 4,
               intermediate_size: int | None = None, max_positions: int = 256, seed: int = 0,
               bos_token_id: int = 0, eos_token_id: int = 1, pad_token_id: int = 2):
    """A small Llama-architecture causal LM from a ``transformers`` config, randomly initialised."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=vocab_size, hidden_size=hidden_size,
                         intermediate_size=intermediate_size or 2 * hidden_size, num_hidden_layers=num_layers,
                         num_attention_heads=num_heads, num_key_value_heads=num_heads,
                         max_position_embeddings=max_positions, tie_word_embeddings=True, bos_token_id=bos_token_id,
                         eos_token_id=eos_token_id, pad_token_id=pad_token_id)
    torch.manual_seed(seed)
    return LlamaForCausalLM(config)


def quiet_transformers() -> None:
    """Lethe draws its own progress bars; transformers' per-file loading bars would drown them."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def ensure_pad_token(tokenizer) -> None:
    """Many causal LMs ship without a pad token; pad with EOS (masked out everywhere it matters)."""
    if tokenizer.pad_token_id is None:
        if tokenizer.eos_token_id is None:
            raise LetheError("the tokenizer has neither a pad nor an EOS token; add one with "
                             "tokenizer.add_special_tokens")
        tokenizer.pad_token = tokenizer.eos_token


def load_tokenizer(source: str | os.PathLike, trust_remote_code: bool = False):
    """The tokenizer of a model folder or hub id; an adapter folder saved without one takes its base model's."""
    from transformers import AutoTokenizer

    path = Path(source)
    if is_adapter_folder(path) and not any((path / f).exists() for f in TOKENIZER_FILES):
        return load_tokenizer(tokenizer_source(adapter_chain(path)), trust_remote_code)
    if path.exists() and not any((path / f).exists() for f in TOKENIZER_FILES):
        raise LetheError(f"{path}: no tokenizer found (tokenizer.json / tokenizer_config.json); "
                         "save one into the model folder with tokenizer.save_pretrained(folder)")
    try:
        tok = AutoTokenizer.from_pretrained(str(source), trust_remote_code=trust_remote_code)
    except OSError as exc:
        raise LetheError(f"{source}: cannot load a tokenizer ({str(exc).splitlines()[0]})") from None
    ensure_pad_token(tok)
    return tok


@dataclass(frozen=True)
class Placement:
    """Where a process's models run and in which dtype (``RunConfig.device`` / ``model_dtype`` /
    ``attn_implementation``, resolved by :func:`placement`)."""

    device: str = "cpu"
    dtype: str = "float32"
    attn_implementation: str = ""  # "": the model's own default
    # models wait in host memory, and evaluation runs a copy sharded across the processes on ``device``
    # (eval.sharding in a launch: a model too large for one device)
    host: bool = False


_PLACEMENT: ContextVar[Placement] = ContextVar("lethe_placement", default=Placement())


def placement(device: str = "auto", dtype: str = "auto", attn_implementation: str = "",
              eval_sharding: str = "none") -> Placement:
    """``device="auto"``: the launch's accelerator (this process's GPU under torchrun), else the CPU;
    ``dtype="auto"``: bfloat16 on a GPU, float32 elsewhere; ``eval_sharding`` other than "none" in a launch
    of several processes: models wait in host memory (``Placement.host``)."""
    import torch

    if device == "auto":
        from accelerate import PartialState

        from . import dist

        dist.init()
        device = str(PartialState().device) if torch.cuda.is_available() else "cpu"
    kind = torch.device(device).type
    if kind == "cuda" and not torch.cuda.is_available():
        raise LetheError(f"device={device}, but this machine has no CUDA GPU torch can use; set device=cpu or auto")
    if dtype == "auto":
        dtype = "bfloat16" if kind == "cuda" else "float32"
    from . import dist

    return Placement(device, dtype, attn_implementation, eval_sharding != "none" and dist.launched() > 1)


@contextmanager
def placed(where: Placement):
    """Within the block, :func:`load_model` puts models on ``where.device`` in ``where.dtype``."""
    token = _PLACEMENT.set(where)
    try:
        yield where
    finally:
        _PLACEMENT.reset(token)


def current_placement() -> Placement:
    """The placement :func:`placed` set (outside any: float32 on the CPU)."""
    return _PLACEMENT.get()


def load_model(source: str | os.PathLike, trust_remote_code: bool = False, dtype: str | None = None,
               merge_lora: bool = True):
    """Load ``(model, tokenizer)`` from a hub id, a local folder saved with ``save_pretrained``, or a LoRA (peft)
    adapter folder such as a ``train.lora=true`` run saves (:func:`load_adapter`; ``merge_lora`` goes to it).
    The model goes where :func:`current_placement` says (host memory with ``host``), in its dtype unless
    ``dtype`` is given."""
    where = current_placement()
    model, tokenizer = load_adapter(source, trust_remote_code, dtype or where.dtype, merge_lora,
                                    where.attn_implementation)
    return model.to("cpu" if where.host else where.device), tokenizer


def check_model_folder(path: Path, trust_remote_code: bool = False) -> None:
    """One line when a local ``path`` is no model folder, or asks for custom code that was not allowed
    (a hub id, which is no local path, passes: the hub answers for it)."""
    text = str(path)
    if not path.exists() and (text.startswith((".", "/", "~")) or text.count("/") > 1):  # no hub id: owner/name
        raise LetheError(f"{path}: no such model folder; give a folder written by save_pretrained or a hub id "
                         "(owner/name)")
    if path.exists() and not (path / "config.json").exists():
        raise LetheError(f"{path}: not a model folder (no config.json); give a folder written by save_pretrained "
                         "or a hub id")
    if path.exists() and not trust_remote_code and (custom := custom_code(path)):
        raise LetheError(f"{path}: its config.json names custom model code ({custom}); Lethe runs a model's own "
                         "code only when asked: add trust_remote_code=true if you trust it")


def _load_weights(source: str | os.PathLike, trust_remote_code: bool, dtype: str, attn_implementation: str = ""):
    import torch
    from transformers import AutoModelForCausalLM

    attention = {"attn_implementation": attn_implementation} if attn_implementation else {}
    try:
        return AutoModelForCausalLM.from_pretrained(str(source), dtype=getattr(torch, dtype), use_safetensors=True,
                                                    trust_remote_code=trust_remote_code, **attention)
    except OSError as exc:
        raise LetheError(f"{source}: cannot load model weights ({str(exc).splitlines()[0]}); Lethe loads safetensors "
                         "weights only") from None
    except (ValueError, KeyError, RuntimeError) as exc:  # unknown architecture, damaged weights or config
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LetheError(f"{source}: cannot load the model ({first[:300]})") from None
    except Exception as exc:  # safetensors' own error type for a damaged file
        if type(exc).__name__ != "SafetensorError":
            raise
        raise LetheError(f"{source}: damaged safetensors weights ({exc}); save or download the model again") from None


def load_adapter(folder: str | os.PathLike, trust_remote_code: bool = False, dtype: str = "float32",
                 merge: bool = True, attn_implementation: str = ""):
    """``(model, tokenizer)`` of a LoRA (peft) adapter folder (a plain model folder or hub id is a chain of no
    adapter): its base model (``base_model_name_or_path``, read from the current directory when relative:
    :func:`lethe.adapters.adapter_base`) loaded with every check of a plain model, the adapter on it (safetensors
    only), the tokenizer from the adapter folder, else from the base.

    ``merge`` (the default) folds the adapter into the weights (:func:`lethe.adapters.put_adapters`): a plain
    model, faster to evaluate (one matrix product per adapted layer again, which counts in generation's many
    small steps) and what every caller of ``load_model`` expects (relearning and fine-tuning train its weights, a
    new ``train.lora`` adapter goes on top with it as the adapter-off reference, quantization and lm-eval see a
    plain model); its logits equal the saved model's to float rounding. ``merge=False`` returns the
    ``PeftModel``, with exactly the saved logits.
    """
    quiet_transformers()
    chain = adapter_chain(folder)
    base, source = chain[-1], tokenizer_source(chain)
    tokenizer = load_tokenizer(source, trust_remote_code) if source != base else None
    try:
        check_model_folder(Path(base), trust_remote_code)
        if tokenizer is None:
            tokenizer = load_tokenizer(base, trust_remote_code)
        weights = _load_weights(base, trust_remote_code, dtype, attn_implementation)
    except LetheError as exc:  # an adapter's base: its own message, and where its name came from
        if len(chain) == 1:
            raise
        raise LetheError(f"{exc} (the base model of {folder}, base_model_name_or_path in {chain[-2]}/"
                         f"{ADAPTER_CONFIG})") from None
    model = put_adapters(weights, chain, merge)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def tokenizer_source(chain: list[str]) -> str:
    """The first folder of an adapter chain that holds a tokenizer, else the base model (folder or hub id)."""
    return next((c for c in chain[:-1] if any((Path(c) / f).exists() for f in TOKENIZER_FILES)), chain[-1])


def model_config(source: str | os.PathLike, trust_remote_code: bool = False):
    """A model's config without its weights (``AutoConfig``); for an adapter folder, its base model's."""
    from transformers import AutoConfig

    source = adapter_chain(source)[-1] if is_adapter_folder(source) else source
    return AutoConfig.from_pretrained(str(source), trust_remote_code=trust_remote_code)


def custom_code(folder: Path) -> str:
    """What custom code a local model folder's config.json asks for ("" = none): ``auto_map`` entries."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    auto_map = config.get("auto_map") if isinstance(config, dict) else None
    return ", ".join(f"{k}: {v}" for k, v in auto_map.items())[:200] if isinstance(auto_map, dict) and auto_map else ""


def weights_problem(folder: str | os.PathLike) -> str:
    """Why a saved model folder cannot be loaded ("" = it looks whole): a missing or unreadable
    config.json (adapter_config.json in an adapter folder), tokenizer or safetensors file. Reads headers
    only; an adapter folder without a tokenizer is whole (its base model's is used)."""
    folder = Path(folder)
    adapter = is_adapter_folder(folder)
    meta = ADAPTER_CONFIG if adapter else "config.json"
    try:
        json.loads((folder / meta).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"{meta}: {exc}"
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        return "no safetensors weights"
    from safetensors import safe_open

    for f in files:
        try:
            with safe_open(str(f), framework="pt"):  # checks the header covers the whole file
                pass
        except Exception as exc:  # safetensors raises its own error type
            return f"{f.name}: {exc}"
    if not adapter and not any((folder / t).exists() for t in TOKENIZER_FILES):
        return "no tokenizer"
    return ""


def save_model(model, tokenizer, folder: str | os.PathLike) -> Path:
    """Save weights (safetensors) and tokenizer; written to a temp folder, then renamed into place. A peft model
    saves its adapter alone (an adapter folder naming its base model; ``load_model`` loads it back). Launched
    as several processes, the first writes and the others wait (then read the same folder)."""
    from . import dist

    dist.on_main(_save_model, model, tokenizer, Path(folder))
    return Path(folder)


def _save_model(model, tokenizer, folder: Path) -> None:
    quiet_transformers()
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        with warnings.catch_warnings():  # a LoRA on an adapter folder's model: peft looks for the base's config.json
            # to see whether the vocabulary grew; Lethe never resizes it
            warnings.filterwarnings("ignore", message="Could not find a config file", category=UserWarning)
            model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def add_lora(model, r: int = 8, alpha: int = 16, dropout: float = 0.0, target_modules: str | list[str] = "all-linear"):
    """Wrap ``model`` with a LoRA adapter (peft); the reference model is then the adapter switched off."""
    from peft import LoraConfig, get_peft_model

    cfg = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=target_modules, task_type="CAUSAL_LM")
    with warnings.catch_warnings():
        # peft calls a transformers property deprecated in transformers 5; nothing for the user to act on
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        return get_peft_model(model, cfg)


def answer_logits(model, enc):
    """Logits from the first position that predicts a scored (answer) token on: ``(logits, labels)``.

    Prompts are never scored, so projecting their hidden states onto the vocabulary is wasted work
    (the LM head is a third of a small model's compute). ``logits_to_keep`` asks the model for the last
    ``T - start`` positions only; ``labels`` are cut the same way, so ``ops`` functions line up as usual.
    Shapes: logits (B, T - start, V), labels (B, T - start).
    """
    T = enc.labels.size(1)
    start = scored_start(enc.labels)
    keep = T - start
    try:
        logits = model(input_ids=enc.input_ids, attention_mask=enc.attention_mask, logits_to_keep=keep).logits
    except TypeError:  # a model without logits_to_keep: project every position, then cut
        logits = model(input_ids=enc.input_ids, attention_mask=enc.attention_mask).logits
    if logits.size(1) != keep:
        logits = logits[:, -keep:]
    return logits, enc.labels[:, start:]


def scored_start(labels) -> int:
    """The first position of a (B, T) batch of labels that predicts a scored token (T - 1 when none does):
    where :func:`answer_logits` starts its logits and labels."""
    import torch

    from .ops import IGNORE

    T = labels.size(1)
    scored = labels[:, 1:] != IGNORE  # (B, T-1): position t predicts a scored token
    rows = scored.any(dim=1)
    return int(torch.argmax(scored[rows].int(), dim=1).min()) if bool(rows.any()) else T - 1


def max_positions(model) -> int | None:
    """How many positions the model was built for (``max_position_embeddings`` and its other names),
    None when its config does not say. Reads ``model.config``, so it works through a peft wrapper; a
    config itself (``AutoConfig``, no weights loaded) is read directly."""
    cfg = getattr(model, "config", model)
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "n_ctx"):
        value = getattr(cfg, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def count_parameters(model) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


# --- decoder layers, for every architecture --------------------------------------------------------------------

# Where Hugging Face causal LMs keep their decoder stack, relative to the model: Llama, Qwen2, Gemma, Mistral, Phi,
# Phi-3 (model.layers); OPT (model.decoder.layers); GPT-2, GPT-J, Falcon, Bloom (transformer.h); GPT-NeoX
# (gpt_neox.layers); ChatGLM-style (transformer.layers); MPT (transformer.blocks); Gemma-3-style multimodal
# wrappers (model.language_model.layers).
DECODER_PATHS = ("model.layers", "model.decoder.layers", "transformer.h", "gpt_neox.layers", "transformer.layers",
                 "transformer.blocks", "model.language_model.layers")


def decoder_layers(model) -> tuple[str, torch.nn.ModuleList]:
    """``(qualified name, ModuleList)`` of the model's decoder layers, the one rule behind every layer option
    (RMU's steered layer, ``train.trainable_layers``, ULD's assistant).

    Names come from ``model.named_modules()``, so through a peft wrapper the name carries the wrapper's prefix
    (``base_model.model.model.layers``) and matches the wrapper's parameter names. A known path
    (:data:`DECODER_PATHS`) under the outermost module that has one wins; otherwise the ModuleList of
    ``config.num_hidden_layers`` modules holding the most parameters (the decoder stack is the bulk of a causal LM).
    """
    import torch

    modules = dict(model.named_modules())
    for base in modules:  # outermost first: a wrapper, then the model it wraps
        for path in DECODER_PATHS:
            name = f"{base}.{path}" if base else path
            if isinstance(modules.get(name), torch.nn.ModuleList):
                return name, modules[name]
    n = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    found = [(name, m) for name, m in modules.items()
             if isinstance(m, torch.nn.ModuleList) and isinstance(n, int) and n > 0 and len(m) == n]
    if found:
        return max(found, key=lambda item: sum(p.numel() for p in item[1].parameters()))
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model  # a peft wrapper's model
    size = f" = {n}" if isinstance(n, int) else ""
    raise LetheError(f"{type(inner).__name__}: cannot find its decoder layers (looked for a ModuleList at "
                     f"{', '.join(DECODER_PATHS)}, or one of config.num_hidden_layers{size} modules); "
                     "rmu and train.trainable_layers need them")


def layer_index(model) -> Callable[[str], int | None]:
    """``f(parameter name) -> decoder layer index or None`` for the parameters of ``model`` (the same object,
    wrapped or not): ``model.layers.3.mlp.weight`` -> 3 when the stack is ``model.layers``, by that prefix,
    so embeddings, the final norm and the LM head map to None whatever the architecture calls its layers."""
    prefix = decoder_layers(model)[0] + "."

    def index(name: str) -> int | None:
        if not name.startswith(prefix):
            return None
        head = name[len(prefix):].split(".", 1)[0]
        return int(head) if head.isdigit() else None

    return index
