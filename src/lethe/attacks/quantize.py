"""Quantization attack: does rounding the weights bring unlearned knowledge back?

Zhang et al. 2025, "Catastrophic Failure of LLM Unlearning via Quantization" (ICLR 2025): unlearning
with a utility constraint moves weights so little that most of them land in the same quantization
bucket as the target model's, so quantization undoes the unlearning (on MUSE, methods with a utility
constraint keep on average 21 % of the forgotten knowledge in full precision and 83 % after 4-bit
quantization). Their code loads the model through ``transformers``' ``BitsAndBytesConfig(load_in_4bit
/ load_in_8bit)``.

Lethe's default back-end is round-to-nearest (RTN) *fake* quantization: every weight is replaced by
its dequantized value, so the model keeps its float dtype and runs through the same probes as any
other model, on any device, without extra packages. Symmetric absmax, per output channel::

    qmax  = 2^(b-1) - 1                          # 127 at 8 bits, 7 at 4 bits
    scale = max_j |W[r, j]| / qmax               # one scale per output row r (per group of
                                                 #   ``group_size`` inputs when group_size > 0)
    q     = clamp(round(W / scale), -qmax, qmax) # integers; round half to even (torch.round)
    W'    = q * scale

A row (group) of zeros gets scale 1 and stays zero. Biases and norms are never touched.

What is quantized: every ``nn.Linear`` (and ``transformers``' GPT-2 style ``Conv1D``) except the
output head; with ``embeddings=True`` also the input embeddings and the output head. The default
follows the deployment that Zhang et al. measured (bitsandbytes through ``transformers`` keeps the
embeddings and the LM head in full precision, as GPTQ and AWQ tools usually do). An LM head tied to the input
embeddings is one tensor: it is quantized once, per row (= per token, which is the head's output
channel), and stays tied, so the head and the embeddings always agree. A LoRA (peft) model is merged
first (on a copy): a deployed model is quantized as one set of weights, not as base + adapter.
"""
from __future__ import annotations

import copy
import tempfile
import time
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from ..config import check_fields, is_int
from ..errors import LetheError

BACKENDS = ("rtn", "bitsandbytes")


@dataclass(frozen=True)
class QuantizeConfig:
    bits: int = 4  # 2..8 for RTN; 4 or 8 for bitsandbytes
    group_size: int = 0  # 0: one scale per output channel; g > 0: one scale per g consecutive inputs
    embeddings: bool = False  # also quantize the input embeddings and the output (LM) head
    backend: str = "rtn"  # "rtn" (fake quantization, any device) | "bitsandbytes" (real 8/4-bit layers)
    bnb_4bit_quant_type: str = "fp4"  # bitsandbytes 4-bit data type: "fp4" (transformers' default) | "nf4"

    def check(self, prefix: str = "quantize") -> None:
        bnb = self.backend == "bitsandbytes"
        check_fields(prefix, [
            (not is_int(self.bits) or not 2 <= self.bits <= 8, "bits",
             f"must be an integer in [2, 8], got {self.bits!r}"),
            (not is_int(self.group_size) or self.group_size < 0, "group_size",
             f"must be an integer >= 0 (0 = per output channel), got {self.group_size!r}"),
            (self.backend not in BACKENDS, "backend", f"must be one of {', '.join(BACKENDS)}, got {self.backend!r}"),
            (bnb and self.bits not in (4, 8), "bits", f"must be 4 or 8 with backend=bitsandbytes, got {self.bits}"),
            (bnb and self.group_size, "group_size",
             "is fixed by bitsandbytes (4-bit blocks of 64, 8-bit per row); leave it at 0"),
            (self.bnb_4bit_quant_type not in ("fp4", "nf4"), "bnb_4bit_quant_type",
             f"must be 'fp4' or 'nf4', got {self.bnb_4bit_quant_type!r}"),
        ])


@dataclass
class QuantStats:
    bits: int
    group_size: int
    backend: str
    embeddings: bool
    layers_quantized: int = 0  # distinct weight tensors (a tied head + embedding counts once)
    params_quantized: int = 0
    mean_abs_error: float = 0.0  # mean |W' - W| over every quantized weight
    max_abs_error: float = 0.0
    seconds: float = 0.0
    merged_lora: bool = False  # the model was a peft (LoRA) model, merged before quantizing
    layers: list[str] = field(default_factory=list)  # module names whose weight was quantized
    skipped: list[str] = field(default_factory=list)  # linear / embedding modules left in full precision

    def to_json(self) -> dict:
        return asdict(self)


# --- the arithmetic ------------------------------------------------------------------------------

def quantize_tensor(w: torch.Tensor, bits: int, group_size: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric absmax RTN of a 2-D weight ``(out, in)``: the integer grid and the scales.

    Returns ``q`` (out, in) as int8 values in [-qmax, qmax] and ``scale`` (out, 1) per channel, or
    (out, n_groups) per group (the last group may be shorter than ``group_size``).
    """
    if w.dim() != 2:
        raise ValueError(f"expected a 2-D weight, got shape {tuple(w.shape)}")
    qmax = 2 ** (bits - 1) - 1
    out, n_in = w.shape
    g = group_size if 0 < group_size < n_in else n_in
    n_groups = -(-n_in // g)
    w32 = w.detach().float().contiguous()  # (out, in); a Conv1D weight arrives transposed
    pad = n_groups * g - n_in
    if pad:  # zeros do not change a group's absmax and are cut off again below
        w32 = torch.nn.functional.pad(w32, (0, pad))
    grouped = w32.view(out, n_groups, g)  # (out, G, g)
    scale = grouped.abs().amax(dim=-1, keepdim=True) / qmax  # (out, G, 1)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # all-zero group: q = 0 either way
    q = torch.clamp(torch.round(grouped / scale), -qmax, qmax)
    q = q.view(out, n_groups * g)[:, :n_in].to(torch.int8)
    return q, scale.squeeze(-1)


def dequantize(q: torch.Tensor, scale: torch.Tensor, group_size: int = 0) -> torch.Tensor:
    """``q * scale`` in float32, the scale broadcast over its channel (or group)."""
    n_in = q.shape[1]
    g = group_size if 0 < group_size < n_in else n_in
    per_column = scale.repeat_interleave(g, dim=1)[:, :n_in]  # (out, in)
    return q.float() * per_column


def fake_quantize(w: torch.Tensor, bits: int, group_size: int = 0) -> torch.Tensor:
    """The dequantized weight, in ``w``'s dtype and shape."""
    q, scale = quantize_tensor(w, bits, group_size)
    return dequantize(q, scale, group_size).to(w.dtype)


# --- which weights -------------------------------------------------------------------------------

def _is_peft(model) -> bool:
    return hasattr(model, "peft_config") and hasattr(model, "merge_and_unload")


def _is_conv1d(module) -> bool:
    """transformers' GPT-2 ``Conv1D``: a linear layer whose weight is stored (in, out)."""
    return type(module).__name__ == "Conv1D" and hasattr(module, "nf") and getattr(module, "weight", None) is not None


def _targets(model, embeddings: bool) -> tuple[list[tuple[str, nn.Parameter, bool]], list[str]]:
    """``[(module name, weight, transposed)]`` to quantize, each distinct tensor once, and the names
    of the linear / embedding modules left in full precision."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    layers = []  # (name, module, is_embedding)
    for name, module in model.named_modules():
        if isinstance(module, nn.Embedding) or (head is not None and module is head):
            layers.append((name, module, True))
        elif isinstance(module, nn.Linear) or _is_conv1d(module):
            layers.append((name, module, False))
    # a tensor shared with a full-precision embedding stays in full precision everywhere (tied heads)
    keep_fp = {id(m.weight) for _, m, is_emb in layers if is_emb and not embeddings}
    seen: set[int] = set()
    todo, skipped = [], []
    for name, module, _ in layers:
        weight = module.weight
        if id(weight) in keep_fp:
            skipped.append(name)
        elif id(weight) not in seen:  # a tied head is the embeddings' tensor: quantized once
            seen.add(id(weight))
            todo.append((name, weight, _is_conv1d(module)))
    return todo, skipped


# --- the attack ----------------------------------------------------------------------------------

def quantize(model, cfg: QuantizeConfig = QuantizeConfig(), inplace: bool = False):
    """Round the model's weights to ``cfg.bits`` and back; returns ``(model, QuantStats)``.

    The caller's model is left as it was unless ``inplace``; the returned model has the same
    class, dtype and device, only its weights are on the quantization grid.
    """
    cfg.check()
    if cfg.backend == "bitsandbytes":
        return quantize_bitsandbytes(model, cfg)
    t0 = time.perf_counter()
    merged = _is_peft(model)
    if merged:  # a new, plain model either way (``inplace`` cannot keep the peft wrapper)
        model = copy.deepcopy(model).merge_and_unload()
    elif not inplace:
        model = copy.deepcopy(model)  # deepcopy keeps tied parameters tied
    stats = QuantStats(cfg.bits, cfg.group_size, cfg.backend, cfg.embeddings, merged_lora=merged)
    todo, stats.skipped = _targets(model, cfg.embeddings)
    if not todo:
        raise LetheError("quantize: the model has no nn.Linear layers to quantize "
                         f"(modules: {', '.join(sorted({type(m).__name__ for m in model.modules()})[:8])})")
    err_sum = 0.0
    with torch.no_grad():
        for name, weight, transposed in todo:
            w = weight.t() if transposed else weight  # (out, in)
            new = fake_quantize(w, cfg.bits, cfg.group_size)
            err = (new.float() - w.float()).abs()
            err_sum += float(err.sum())
            stats.max_abs_error = max(stats.max_abs_error, float(err.max()))
            stats.params_quantized += w.numel()
            weight.copy_(new.t() if transposed else new)
            stats.layers.append(name)
    stats.layers_quantized = len(todo)
    stats.mean_abs_error = err_sum / max(1, stats.params_quantized)
    stats.seconds = time.perf_counter() - t0
    return model, stats


def quantize_bitsandbytes(model, cfg: QuantizeConfig):
    """Real 8-bit (LLM.int8) or 4-bit (fp4 / nf4) layers, loaded through ``transformers`` as Zhang
    et al. did: the model is saved to a temporary folder and loaded back with a
    ``BitsAndBytesConfig``. Needs the ``bitsandbytes`` package (and, for most versions, a GPU); the
    returned model is a new object in bitsandbytes' own dtypes, with no error statistics.
    """
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise LetheError("quantize.backend=bitsandbytes needs the bitsandbytes package, which is not installed; "
                         "install it (pip install bitsandbytes) or use quantize.backend=rtn") from None
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    if cfg.embeddings:
        raise LetheError("quantize.embeddings=true is not available with backend=bitsandbytes "
                         "(it keeps embeddings and the LM head in full precision); use backend=rtn")
    t0 = time.perf_counter()
    merged = _is_peft(model)
    if merged:
        model = copy.deepcopy(model).merge_and_unload()
    if cfg.bits == 8:
        qcfg = BitsAndBytesConfig(load_in_8bit=True)
    else:
        qcfg = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=cfg.bnb_4bit_quant_type,
                                  bnb_4bit_compute_dtype=next(model.parameters()).dtype)
    with tempfile.TemporaryDirectory(prefix="lethe-bnb-") as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        qmodel = AutoModelForCausalLM.from_pretrained(tmp, quantization_config=qcfg, device_map="auto")
    qmodel.eval()
    layers = [(n, m) for n, m in qmodel.named_modules() if type(m).__name__ in ("Linear8bitLt", "Linear4bit")]
    nan = float("nan")  # errors are not measured for real quantized layers
    return qmodel, QuantStats(cfg.bits, 0, cfg.backend, False, layers_quantized=len(layers),
                              params_quantized=sum(m.in_features * m.out_features for _, m in layers),
                              mean_abs_error=nan, max_abs_error=nan, seconds=time.perf_counter() - t0,
                              merged_lora=merged, layers=[n for n, _ in layers])
