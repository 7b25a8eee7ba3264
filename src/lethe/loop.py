"""THE training loop (:func:`train_loop`) and the supervised fine-tuning that uses it (:func:`finetune`).
It knows no method: unlearning (``lethe.train.unlearn``) and ULD's assistant plug their losses into it.

Loss normalisation: a caller's loss is the sum over the sequences of a micro-batch; a step's loss is
that sum over all micro-batches divided by the number of items in the optimizer step, so batch 8 x
accumulation 1 and batch 2 x accumulation 4 give the same update. Launched as N processes, each trains
on its share of the step's micro-batches (:func:`lethe.dist.step_share`) and the gradients are summed
once a step: the update of one process with the same global batch (docs/scale.md).
"""
from __future__ import annotations

import math
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import torch

from . import dist, sharding
from .config import TrainConfig
from .data import Sequence, UnlearnBatch, collate
from .errors import LetheError
from .models import answer_logits, count_parameters
from .ops import sequence_nll
from .progress import bar
from .tracking import current, prefix as tracked


@dataclass
class TrainStats:
    steps: int = 0
    sequences: int = 0
    tokens: int = 0  # non-pad tokens through the model's trained forward passes
    world_size: int = 1  # processes that shared the steps
    sharding: str = "none"  # fsdp, zero2, zero3: the training was sharded across them (lethe.sharding)
    rank_sequences: list[int] = field(default_factory=list)  # sequences each process trained on
    seconds: float = 0.0
    setup_seconds: float = 0.0
    trainable_params: int = 0
    total_params: int = 0
    losses: list[float] = field(default_factory=list)
    grad_norm: float | None = None  # the last step's gradient norm over the launch, before clipping (clipping off: None)
    weight_dtype: str = ""  # the trained weights' dtype
    master_weights: bool = False  # the optimizer updated float32 copies of them (train.master_weights, or DeepSpeed's)
    unmoved: float | None = None  # share of the sampled trained weights left exactly as they were (lethe.loop.unmoved)
    loss_scale: float | None = None  # float16: the dynamic loss scale at the end (lethe.loop.loss_scaler)
    rescaled_steps: int = 0  # float16: passes run again at a halved loss scale after their gradients overflowed
    last_stats: dict = field(default_factory=dict)
    # evaluation during unlearning: [{"step", "epoch", <summary values>}], and the checkpoint returned
    checkpoints: list[dict] = field(default_factory=list)
    best: dict = field(default_factory=dict)  # {"by", "direction", "step", "value"} when train.best_by is set
    eval_seconds: float = 0.0

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if k != "losses"}
        return {**d, "tokens_per_second": self.tokens_per_second,
                "final_loss": self.losses[-1] if self.losses else None}


def lr_lambda(cfg: TrainConfig, total_steps: int):
    """The learning-rate factor of each step: linear warmup over ``cfg.warmup_ratio`` of the steps, then
    linear decay to 0 (``scheduler="linear"``) or constant."""
    warmup = int(cfg.warmup_ratio * total_steps)

    def f(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if cfg.scheduler == "constant":
            return 1.0
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return f


def optimizer(params: list, cfg: TrainConfig, total_steps: int):
    """AdamW over ``params`` (``cfg.optimizer``: torch's, its fused kernel, or bitsandbytes' 8-bit states)
    with :func:`lr_lambda`'s schedule."""
    if cfg.optimizer in ("adamw", "adamw_fused"):
        fused = {"fused": True} if cfg.optimizer == "adamw_fused" else {}
        opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **fused)
    else:
        try:
            import bitsandbytes as bnb
        except ImportError:
            raise LetheError(f"train.optimizer={cfg.optimizer} needs the bitsandbytes package (pip install "
                             "bitsandbytes, on a GPU); or set train.optimizer=adamw") from None
        kind = bnb.optim.AdamW8bit if cfg.optimizer == "adamw_8bit" else bnb.optim.PagedAdamW8bit
        opt = kind(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg, total_steps))
    return opt, sched


HALF = (torch.bfloat16, torch.float16)
UNMOVED_SAMPLE = 4096  # elements of each trained weight matrix compared before and after the training
MAX_RESCALES = 32  # halvings of the float16 loss scale one step may take (2^16 down to 2^-16) before it gives up


class MasterWeights:
    """float32 copies of the half-precision trainable weights (``train.master_weights``), which the optimizer
    updates; each step's result is rounded into the weights, and the forward and backward passes stay in the
    weights' dtype. A bf16 weight moves only when its update exceeds half its rounding step (2^-9 to 2^-8 of its
    magnitude): with Adam's updates of about the learning rate, at lr 1e-5 most weights of a fine-tuned LLM
    would never move. Gradients accumulate in the weights' dtype and are summed and clipped in float32."""

    def __init__(self, params: list):
        self.pairs = [(p, p.detach().float().requires_grad_()) for p in params if p.dtype in HALF]
        copies = {id(p): m for p, m in self.pairs}
        self.params = [copies.get(id(p), p) for p in params]  # what the optimizer updates, in the same order

    def grads_in(self) -> None:
        for p, m in self.pairs:
            m.grad = None if p.grad is None else p.grad.float()
            p.grad = None

    def weights_out(self) -> None:
        with torch.no_grad():
            for p, m in self.pairs:
                p.copy_(m)


def loss_scaler(model, trainable: list, masters, device):
    """Dynamic loss scaling (``torch.amp.GradScaler``) for a model in float16, whose gradients would underflow
    (a LoRA adapter's too: they flow back through the float16 layers): the loss is scaled up for the backward
    pass and the float32 gradients (master weights, or float32 adapters) scaled down before the update; a step
    whose gradients overflow runs again at half the scale (:func:`train_loop`). None for other dtypes. Float16
    trained weights need the master weights (the scaler unscales float32 gradients)."""
    if not any(p.dtype == torch.float16 for p in model.parameters()):
        return None
    if masters is None and any(p.dtype == torch.float16 for p in trainable):
        raise LetheError("float16 weights train with loss scaling over float32 master weights: set "
                         "train.master_weights=true, or model_dtype=bfloat16")
    return torch.amp.GradScaler(torch.device(device).type)


def weight_sample(model) -> list:
    """The first :data:`UNMOVED_SAMPLE` elements of each trainable weight matrix (the embeddings left out:
    rows of tokens a training never sees get no gradient), copied, for :func:`unmoved`."""
    skip = set()
    for get in ("get_input_embeddings", "get_output_embeddings"):
        module = getattr(model, get, lambda: None)()
        if module is not None and hasattr(module, "weight"):
            skip.add(id(module.weight))
    return [(p, p.detach().reshape(-1)[:UNMOVED_SAMPLE].to("cpu", copy=True)) for p in model.parameters()
            if p.requires_grad and p.dim() >= 2 and id(p) not in skip]


def unmoved(sample: list) -> float | None:
    """The share of :func:`weight_sample`'s elements that the training left exactly as they were (None: no
    sample). Near 0 when updates land; large when half-precision weights rounded them away, or (with master
    weights) when the updates have not yet added up to a rounding step."""
    same = total = 0
    for p, before in sample:
        now = p.detach().reshape(-1)[:UNMOVED_SAMPLE].to("cpu")
        same += int((now == before).sum())
        total += now.numel()
    return same / total if total else None


def rounding_note(label: str, stats: "TrainStats", train: TrainConfig) -> str:
    """One line when a training updated half-precision weights in place (no master weights) and left at least
    a quarter of its sampled weights exactly as they were: their updates rounded away ("" otherwise). With
    master weights small updates add up in float32 and reach the weights later, so no line."""
    if (stats.master_weights or stats.unmoved is None or stats.unmoved < 0.25
            or stats.weight_dtype not in ("bfloat16", "float16")):
        return ""
    return (f"{label}: {stats.unmoved:.0%} of the sampled trained weights never moved: in {stats.weight_dtype} "
            f"their updates at lr {train.lr:g} rounded away; train.master_weights=true keeps float32 copies that "
            "take them (docs/scale.md)")


@contextmanager
def checkpointing(model, on: bool):
    """Activation (gradient) checkpointing on the model for the block when ``on`` (non-reentrant: a LoRA
    model needs no input gradients), off again after."""
    if not on:
        yield
        return
    if not getattr(model, "supports_gradient_checkpointing", False) and not hasattr(model, "base_model"):
        raise LetheError(f"train.gradient_checkpointing: {type(model).__name__} does not support it; set it to false")
    if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.x names it so
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    config = getattr(model, "config", None)
    cache = getattr(config, "use_cache", None)
    if cache:  # a training pass keeps no cache, and transformers warns when one is asked for beside checkpointing
        config.use_cache = False
    try:
        yield
    finally:
        (model.activation_checkpointing_disable if hasattr(model, "activation_checkpointing_disable")
         else model.gradient_checkpointing_disable)()
        if cache:
            config.use_cache = cache


def accelerator():
    """The process's accelerate ``Accelerator``: device, DDP / FSDP / DeepSpeed as its launch config says.

    Without accelerate's mixed precision, whatever the launch asks (``--mixed_precision``, or its config): it
    would wrap the forward of a one-process training in autocast, which then stays on the model through its
    evaluation, and not that of a launch of several processes (whose model is not prepared). Lethe's precision
    is ``model_dtype``'s, ``train.precision``'s and ``eval.precision``'s; a run says so in its notes
    (:func:`lethe.dist.launch_mixed_precision_note`)."""
    from accelerate import Accelerator

    dist.init()
    if not torch.cuda.is_available():  # DeepSpeed, where installed, guesses so too, with a warning on every run
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
    return Accelerator(cpu=not torch.cuda.is_available(), mixed_precision="no")


def autocast(precision: str, device):
    """bf16 mixed precision for the forward passes (weights, gradients and optimizer state stay fp32).

    torch.autocast rather than accelerate's ``mixed_precision``: accelerate fixes the precision once
    per process, and a user may well compare fp32 and bf16 runs in one session. Lethe's log-prob
    maths (``ops``) casts logits to fp32 before any softmax.
    """
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=precision == "bf16")


@contextmanager
def attention_for(model, precision: str, device):
    """Eager attention while training small models in bf16 on a CPU.

    Measured on a 1.9M-parameter Llama (1 thread, batch 16 x 60 tokens): PyTorch's SDPA kernel
    gains 5 % from bf16 on a CPU, eager attention 78 %. Restored afterwards: the model object is
    the caller's.
    """
    before = getattr(model.config, "_attn_implementation", None)
    switch = precision == "bf16" and torch.device(device).type == "cpu" and before == "sdpa"
    if switch:
        model.set_attn_implementation("eager")
    try:
        yield
    finally:
        if switch:
            model.set_attn_implementation(before)


def batch_tokens(batch) -> int:
    """Non-pad tokens of a micro-batch: an encoded batch, an :class:`UnlearnBatch` (all its parts) or a
    tuple of encoded batches."""
    if hasattr(batch, "attention_mask"):
        return int(batch.attention_mask.sum())
    if isinstance(batch, UnlearnBatch):
        batch = (batch.forget, batch.retain, batch.forget_idk, batch.retain_idk, batch.forget_alt)
    return sum(batch_tokens(b) for b in batch if b is not None)


def unwrapped(accel, model):
    """The model out of accelerate's containers. accelerate's ``unwrap_model`` imports DeepSpeed (0.7-1 s) to test
    for its engine whenever DeepSpeed is installed; a model that no container holds (``.module``, a compiled
    ``_orig_mod``), with DeepSpeed not imported, is already itself."""
    if "deepspeed" in sys.modules or hasattr(model, "module") or hasattr(model, "_orig_mod"):
        return accel.unwrap_model(model)
    return model


def train_loop(model, train: TrainConfig, n_items: int, make_batch, loss, *, device, accel=None,
               seed: int | None = None, n_paired: int = 0, tokens=batch_tokens, gradients=None,
               diverged: str = "", description: str = "train", eval_hook=None, best_direction: str = "higher",
               t_setup: float | None = None):
    """THE training loop. A caller supplies its batches and its loss; the loop owns the rest.

    Each epoch shuffles the ``n_items`` items (a generator seeded with ``seed``, default ``train.seed``);
    an optimizer step takes ``train.batch_size x train.grad_accum`` of them, pairs each with a random
    one of ``n_paired`` others (retain items, same generator; 0: no pairing), in micro-batches:

    * ``make_batch(items, paired) -> batch``: the micro-batch of these indices, on ``device``;
    * ``loss(model, batch) -> (total, info)``: the loss summed over the micro-batch's sequences and a
      dict of statistics, under :func:`autocast`; the loop divides ``total`` by the step's item count;
    * ``tokens(batch) -> int``: its non-pad tokens, for the throughput (default :func:`batch_tokens`);
    * ``gradients(model, batches, n) -> (step loss, info)``: replaces the plain accumulation of
      ``loss`` gradients (SAM); it must leave the step's gradient in ``.grad``.

    ``diverged`` starts the one-line error raised when a step's loss is not finite ("": no check).
    ``eval_hook(model, step) -> dict`` runs every ``train.eval_every`` steps (-1: each epoch) and after
    the last; with ``train.best_by`` the trainable parameters of the best checkpoint (``best_direction``;
    ties keep the earlier) are restored at the end. The caller has put the model on ``device`` (prepare
    does not move it). Returns ``(model, stats)``: the model unwrapped from accelerate, in eval mode.
    """
    accel = accelerator() if accel is None else accel
    gen = torch.Generator().manual_seed(train.seed if seed is None else seed)
    micro = train.batch_size
    per_step = micro * train.grad_accum
    steps_per_epoch = math.ceil(n_items / per_step)
    total_steps = max(1, math.ceil(train.epochs * steps_per_epoch))
    if train.max_steps:
        total_steps = min(total_steps, train.max_steps)
    parallel = dist.world() > 1
    kind = sharding.requested(train.sharding)  # the option, or accelerate's config
    sharded = kind != "none"
    if sharded and hasattr(model, "peft_config"):
        raise LetheError(f"train.sharding={kind} (or an accelerate config that shards) does not go with train.lora: "
                         "an adapter is small, data parallelism serves it; set train.sharding=none")
    if sharded and (eval_hook is not None or gradients is not None):
        raise LetheError(f"train.sharding={kind} trains a sharded copy of the model: evaluation during unlearning "
                         "(train.eval_every) and SAM (train.sam_rho) need the whole model; drop them or set "
                         "train.sharding=none")
    stats = TrainStats()
    stats.trainable_params, stats.total_params = count_parameters(model)
    trainable = [p for p in model.parameters() if p.requires_grad]
    half = any(p.dtype in HALF for p in trainable)
    stats.weight_dtype = str(trainable[0].dtype).removeprefix("torch.") if trainable else ""
    sample = weight_sample(model)
    # net: what trains; sharded, a sharded copy of the model (lethe.sharding), gathered back into it at the end
    masters = None
    if sharded:
        shards = sharding.shard(model, kind, lambda m: optimizer([p for p in m.parameters() if p.requires_grad],
                                                                 train, total_steps),
                                train.max_grad_norm, device, master=train.master_weights)
        net, opt, sched = shards.net, shards.opt, shards.sched
        stats.master_weights = half and (train.master_weights or kind != "fsdp")  # DeepSpeed keeps them always
    else:
        masters = MasterWeights(trainable) if train.master_weights and half else None
        net, (opt, sched) = model, optimizer(masters.params if masters else trainable, train, total_steps)
        stats.master_weights = masters is not None
    scaler = None
    if not sharded:
        scaler = loss_scaler(model, trainable, masters, device)
    elif kind == "fsdp" and any(p.dtype == torch.float16 for p in trainable):
        raise LetheError("train.sharding=fsdp does not scale the loss float16 weights need: set model_dtype=bfloat16, "
                         "or train.sharding=zero2 / zero3 (DeepSpeed scales it)")
    if scaler is not None and gradients is not None:
        raise LetheError("train.sam_rho (SAM) with float16 weights: SAM's passes are not loss-scaled; set "
                         "model_dtype=bfloat16 or float32")
    # several processes sum their gradients once a step (dist.sum_gradients); a process of a launch that trains
    # alone (dist.alone) must not get accelerate's DDP wrapper either
    if not parallel and not sharded and accel.num_processes == 1:
        net, opt = accel.prepare(net, opt, device_placement=[False, False])
        model = net
    net.train()
    if t_setup is not None:
        stats.setup_seconds = time.perf_counter() - t_setup

    # --- evaluation hooks: every eval_every steps / each epoch, and at the end --------------------
    trained = [p for p in net.parameters() if p.requires_grad]
    updated = masters.params if masters else trained  # what the optimizer steps: gradients summed and clipped there
    best_state: list[torch.Tensor] | None = None

    def checkpoint(at_step: int) -> None:
        nonlocal best_state
        if eval_hook is None or (stats.checkpoints and stats.checkpoints[-1]["step"] == at_step):
            return
        t_eval = time.perf_counter()
        inner = unwrapped(accel, model)
        values = dict(eval_hook(inner, at_step))
        current().log(values, step=at_step, prefix=tracked("eval"))
        inner.train()
        stats.checkpoints.append({"step": at_step, "epoch": at_step / steps_per_epoch, **values})
        if train.best_by:
            if train.best_by not in values:
                raise LetheError(f"train.best_by '{train.best_by}' is not among the evaluated values "
                                 f"({', '.join(sorted(values))})")
            v = float(values[train.best_by])
            old = stats.best.get("value")
            better = old is None or (v > old if best_direction == "higher" else v < old)
            if better and math.isfinite(v):
                stats.best = {"by": train.best_by, "direction": best_direction, "step": at_step, "value": v}
                best_state = [p.detach().to("cpu", copy=True) for p in trained]  # only what training changes
        stats.eval_seconds += time.perf_counter() - t_eval

    def update(passes):
        """Clip and step; returns the gradient norm before clipping (clipping off: None). Loss-scaled (float16),
        a step whose gradients overflowed is not lost: the optimizer skips it and halves the scale, and the
        step's passes run again until its gradients are finite."""
        for _ in range(MAX_RESCALES + 1):
            if scaler is not None:
                scaler.unscale_(opt)
            norm = accel.clip_grad_norm_(updated, train.max_grad_norm) if train.max_grad_norm > 0 else None
            if scaler is None:
                opt.step()
                return norm
            scale = scaler.get_scale()
            scaler.step(opt)
            scaler.update()
            if scaler.get_scale() >= scale:
                return norm
            stats.rescaled_steps += 1
            opt.zero_grad(set_to_none=True)  # every gradient of the step (the half-precision ones went to the masters)
            passes()
        raise LetheError(f"{description}: the gradients stay non-finite down to loss scale {scaler.get_scale():g}; "
                         "lower train.lr, or set model_dtype=bfloat16")

    # --- the loop ---------------------------------------------------------------------------------
    t0 = time.perf_counter()
    step = local = 0
    with bar(description, total_steps) as progress, checkpointing(unwrapped(accel, net),
                                                                   train.gradient_checkpointing):
        while step < total_steps:
            order = torch.randperm(n_items, generator=gen).tolist()
            for start in range(0, len(order), per_step):
                if step >= total_steps:
                    break
                idx = order[start : start + per_step]  # the items of this optimizer step
                paired = torch.randint(n_paired, (len(idx),), generator=gen).tolist() if n_paired else []
                share = dist.step_share(idx, paired, micro)  # all of them in one process
                # sharded: every process runs as many micro-batches (the gathers are collective); a padding one
                # is the step's first micro-batch again, with weight 0
                weights = [1.0] * len(share) + [0.0] * (dist.most_micro_batches(len(idx), micro) - len(share)
                                                        if sharded else 0)
                share += [(idx[:micro], paired[:micro])] * (len(weights) - len(share))
                batches = [make_batch(items, pairs) for items, pairs in share]

                def passes():  # the step's forward and backward passes: its loss, its gradient in .grad
                    if gradients is not None:
                        result = gradients(net, batches, len(idx))
                    else:
                        result = 0.0, {}
                        for k, (batch, weight) in enumerate(zip(batches, weights)):  # accumulation
                            if sharded:
                                shards.micro_batch(k == len(batches) - 1)
                            with autocast(train.precision, device):
                                total, info = loss(net, batch)
                            part = total / len(idx) * weight
                            (shards.backward if sharded else accel.backward)(part if scaler is None
                                                                              else scaler.scale(part))
                            result = result[0] + float(part.detach()), info
                    if masters:
                        masters.grads_in()
                    if parallel and not sharded:  # the sharded copy has reduced them already
                        dist.sum_gradients(updated)
                    return result

                step_loss, info = passes()
                if parallel:
                    step_loss = dist.sum_numbers([step_loss])[0]
                    local += sum(len(items) for (items, _), w in zip(share, weights) if w)
                stats.tokens += sum(tokens(batch) for batch, w in zip(batches, weights) if w)
                stats.last_stats = info
                if diverged and not math.isfinite(step_loss):
                    raise LetheError(f"{diverged} became {step_loss} at step {step}; lower train.lr")
                lr = opt.param_groups[0]["lr"]
                if sharded:
                    norm = shards.step()
                else:
                    norm = update(passes)
                    sched.step()
                    opt.zero_grad(set_to_none=True)
                    if masters:
                        masters.weights_out()
                stats.grad_norm = None if norm is None else float(norm)
                current().log({"loss": step_loss, "lr": lr, "grad_norm": stats.grad_norm}, step=step + 1,
                              prefix=tracked("train", description))
                step += 1
                stats.sequences += len(idx)
                stats.losses.append(step_loss)
                progress.update(info=f"loss {step_loss:.3f}")
                progress.advance()
                every = steps_per_epoch if train.eval_every == -1 else train.eval_every
                if every > 0 and step % every == 0 and step < total_steps:
                    checkpoint(step)
        checkpoint(step)  # the final model is always a candidate
    if best_state is not None and stats.best["step"] != step:
        with torch.no_grad():
            for p, saved in zip(trained, best_state):
                p.copy_(saved.to(p.device))
    stats.steps = step
    stats.seconds = time.perf_counter() - t0 - stats.eval_seconds
    stats.world_size = dist.world()
    stats.sharding = kind
    if parallel:  # the whole launch's tokens; each process's share of the sequences
        stats.tokens = int(dist.sum_numbers([stats.tokens])[0])
        stats.rank_sequences = [int(v) for v in dist.sum_numbers(
            [local if r == dist.rank() else 0 for r in range(stats.world_size)])]
    else:
        stats.rank_sequences = [stats.sequences]
    if sharded:
        shards.gather_into(model)
        del net, opt, shards
    del masters
    stats.unmoved = unmoved(sample)
    stats.loss_scale = None if scaler is None else scaler.get_scale()
    model = unwrapped(accel, model)
    model.eval()
    return model, stats


def finetune(model, tokenizer, sequences: list[Sequence], train: TrainConfig, description: str = "fine-tune"):
    """Supervised fine-tuning (NLL on the scored tokens of each sequence) through :func:`train_loop`;
    returns ``(model, TrainStats)``."""
    train.check()
    if not sequences:
        raise LetheError("nothing to train on: the training set is empty")
    torch.manual_seed(train.seed)
    accel = accelerator()
    device = accel.device
    if not sharding.held(train.sharding):  # a model held in host memory and trained sharded stays there
        model.to(device)
    pad = tokenizer.pad_token_id

    def make_batch(items: list[int], _paired: list[int]):
        return collate([sequences[i] for i in items], pad).to(device)

    def loss(m, enc):
        return sequence_nll(*answer_logits(m, enc)).sum(), {}

    with attention_for(model, train.precision, device):
        model, stats = train_loop(model, train, len(sequences), make_batch, loss, device=device, accel=accel,
                                  description=description)
    stats.sequences = stats.steps * train.batch_size * train.grad_accum  # full steps, as recorded so far
    return model, stats
