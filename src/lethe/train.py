"""THE training loop (:func:`train_loop`) and its callers: unlearning (:func:`unlearn`, every weight-changing
method plugs its loss into it), supervised fine-tuning (:func:`finetune`: the built-in target and retain
models, relearning attacks) and ULD's assistant (``lethe.inference.uld.train_assistant``).

Loss normalisation: a caller's loss is the sum over the sequences of a micro-batch; a step's loss is
that sum over all micro-batches divided by the number of items in the optimizer step, so batch 8 x
accumulation 1 and batch 2 x accumulation 4 give the same update.
"""
from __future__ import annotations

import copy
import dataclasses
import fnmatch
import math
import random
import re
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from .benchmarks.base import QAItem
from .config import TrainConfig  # noqa: F401  (also re-exported: lethe.train.TrainConfig)
from .data import Encoder, Sequence, UnlearnBatch, collate
from .errors import LetheError
from .methods import MethodState, SetupContext, get_method  # noqa: F401  (MethodState: the setup contract)
from .models import add_lora, answer_logits, count_parameters
from .progress import bar
from .reference import AdapterOffReference, FrozenReference, PrecomputedReference, eval_mode


@dataclass
class TrainStats:
    steps: int = 0
    sequences: int = 0
    tokens: int = 0  # non-pad tokens through the model's trained forward passes
    seconds: float = 0.0
    setup_seconds: float = 0.0
    trainable_params: int = 0
    total_params: int = 0
    losses: list[float] = field(default_factory=list)
    last_stats: dict = field(default_factory=dict)
    # evaluation during unlearning: [{"step", "epoch", <summary values>}], and the checkpoint returned
    checkpoints: list[dict] = field(default_factory=list)
    best: dict = field(default_factory=dict)  # {"by", "direction", "step", "value"} when train.best_by is set
    eval_seconds: float = 0.0

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict:
        d = asdict(self)
        d["tokens_per_second"] = self.tokens_per_second
        d["final_loss"] = self.losses[-1] if self.losses else None
        d.pop("losses")
        return d


def load_idk_answers() -> list[str]:
    path = Path(__file__).parent / "resources" / "idk.txt"
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


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


def _optimizer(model, cfg: TrainConfig, total_steps: int):
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg, total_steps))
    return opt, sched


def accelerator():
    """The process's accelerate ``Accelerator``: device, DDP / FSDP / DeepSpeed as its launch config says."""
    from accelerate import Accelerator

    return Accelerator()


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


@torch.no_grad()
def _precompute_logprobs(model, seqs: dict[str, list[tuple[str, Sequence]]], pad_id: int, device,
                         batch_size: int = 64) -> dict[tuple[str, str], float]:
    """Per-sequence log-probs of the model before unlearning, keyed by (kind, item id)."""
    from .ops import sequence_logprob

    table: dict[tuple[str, str], float] = {}
    with eval_mode(model):
        for kind, pairs in seqs.items():
            for i in range(0, len(pairs), batch_size):
                chunk = pairs[i : i + batch_size]
                enc = collate([s for _, s in chunk], pad_id).to(device)
                lp, _ = sequence_logprob(*answer_logits(model, enc))
                table.update({(kind, key): float(v) for (key, _), v in zip(chunk, lp.tolist())})
    return table


def batch_tokens(batch) -> int:
    """Non-pad tokens of a micro-batch: an encoded batch, an :class:`UnlearnBatch` (all its parts) or a
    tuple of encoded batches."""
    if hasattr(batch, "attention_mask"):
        return int(batch.attention_mask.sum())
    if isinstance(batch, UnlearnBatch):
        batch = (batch.forget, batch.retain, batch.forget_idk, batch.retain_idk, batch.forget_alt)
    return sum(batch_tokens(b) for b in batch if b is not None)


def train_loop(model, train: TrainConfig, n_items: int, make_batch, loss, *, device, accel=None,
               seed: int | None = None, n_paired: int = 0, tokens=batch_tokens, gradients=None,
               diverged: str = "", description: str = "train", eval_hook=None, best_direction: str = "higher",
               t_setup: float | None = None):
    """THE training loop. A caller supplies its batches and its loss; the loop owns the rest.

    Each epoch shuffles the ``n_items`` training items (``torch.randperm`` on a generator seeded with
    ``seed``, default ``train.seed``). An optimizer step takes ``train.batch_size x train.grad_accum``
    of them, pairs each with a random one of ``n_paired`` others (retain items, drawn from the same
    generator; 0: no pairing) and cuts them into micro-batches of ``train.batch_size``:

    * ``make_batch(items, paired) -> batch``: the micro-batch of these indices, on ``device``;
    * ``loss(model, batch) -> (total, info)``: the loss summed over the micro-batch's sequences (a
      scalar tensor) and a dict of statistics, computed under :func:`autocast`; the loop divides
      ``total`` by the number of items in the step (see the module docstring) and back-propagates;
    * ``tokens(batch) -> int``: its non-pad tokens, for the throughput (default :func:`batch_tokens`);
    * ``gradients(model, batches, n) -> (step loss, info)``: replaces the plain accumulation of
      ``loss`` gradients (SAM); it must leave the step's gradient in ``.grad``.

    AdamW (``_optimizer``) with warmup + decay (:func:`lr_lambda`) over the step count that
    ``train.epochs`` / ``train.max_steps`` give, accelerate (``prepare``, ``backward``, gradient
    clipping at ``train.max_grad_norm``), a progress bar, :class:`TrainStats`. ``diverged`` starts the
    one-line error raised when a step's loss is not finite ("": no check).

    ``eval_hook(model, step) -> dict`` (flat summary values) is called every ``train.eval_every``
    steps (-1: each epoch) and after the last step; the values go to ``stats.checkpoints``. With
    ``train.best_by`` the trainable parameters of the best checkpoint (``best_direction``: "higher"
    or "lower" is better; ties keep the earlier) are restored at the end (``stats.best``).

    The caller has put the model on ``device`` (prepare does not move it: ULD's assistant stays with
    its target). Returns ``(model, stats)``: the model unwrapped from accelerate, in eval mode.
    """
    accel = accelerator() if accel is None else accel
    gen = torch.Generator().manual_seed(train.seed if seed is None else seed)
    micro = train.batch_size
    per_step = micro * train.grad_accum
    steps_per_epoch = math.ceil(n_items / per_step)
    total_steps = max(1, math.ceil(train.epochs * steps_per_epoch))
    if train.max_steps:
        total_steps = min(total_steps, train.max_steps)
    opt, sched = _optimizer(model, train, total_steps)
    model, opt = accel.prepare(model, opt, device_placement=[False, False])
    model.train()
    stats = TrainStats()
    stats.trainable_params, stats.total_params = count_parameters(model)
    if t_setup is not None:
        stats.setup_seconds = time.perf_counter() - t_setup

    # --- evaluation hooks: every eval_every steps / each epoch, and at the end --------------------
    trained = [p for p in model.parameters() if p.requires_grad]
    best_state: list[torch.Tensor] | None = None

    def checkpoint(at_step: int) -> None:
        nonlocal best_state
        if eval_hook is None or (stats.checkpoints and stats.checkpoints[-1]["step"] == at_step):
            return
        t_eval = time.perf_counter()
        inner = accel.unwrap_model(model)
        values = dict(eval_hook(inner, at_step))
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

    # --- the loop ---------------------------------------------------------------------------------
    t0 = time.perf_counter()
    step = 0
    with bar(description, total_steps) as progress:
        while step < total_steps:
            order = torch.randperm(n_items, generator=gen).tolist()
            for start in range(0, len(order), per_step):
                if step >= total_steps:
                    break
                idx = order[start : start + per_step]  # the items of this optimizer step
                paired = torch.randint(n_paired, (len(idx),), generator=gen).tolist() if n_paired else []
                batches = [make_batch(idx[m : m + micro], paired[m : m + micro]) for m in range(0, len(idx), micro)]
                if gradients is None:
                    step_loss, info = 0.0, {}
                    for batch in batches:  # gradient accumulation over the micro-batches
                        with autocast(train.precision, device):
                            total, info = loss(model, batch)
                        part = total / len(idx)
                        accel.backward(part)
                        step_loss += float(part.detach())
                else:
                    step_loss, info = gradients(model, batches, len(idx))
                stats.tokens += sum(tokens(batch) for batch in batches)
                stats.last_stats = info
                if diverged and not math.isfinite(step_loss):
                    raise LetheError(f"{diverged} became {step_loss} at step {step}; lower train.lr")
                if train.max_grad_norm > 0:
                    accel.clip_grad_norm_(model.parameters(), train.max_grad_norm)
                opt.step()
                sched.step()
                opt.zero_grad(set_to_none=True)
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
    model = accel.unwrap_model(model)
    model.eval()
    return model, stats


def unlearn(model, tokenizer, method: str, forget: list[QAItem], retain: list[QAItem],
            train: TrainConfig = TrainConfig(), options: dict | None = None, idk_answers: list[str] | None = None,
            description: str | None = None, eval_hook=None, best_direction: str = "higher"):
    """Unlearn ``forget`` from ``model`` with ``method``; returns ``(model, TrainStats)``.

    The model is trained in place (wrapped with LoRA when ``train.lora``; the returned model is then
    the peft model). ``retain`` pairs each forget sequence with a retain sequence when the method
    has a retain term. ``eval_hook`` and ``best_direction``: evaluation during unlearning and the
    best checkpoint, see :func:`train_loop`.
    """
    t_setup = time.perf_counter()
    spec = get_method(method)
    cfg = spec.make_config(options)
    train.check()
    if spec.kind == "inference":
        raise LetheError(f"method '{method}' is an inference-time method: it changes prompts or outputs, not "
                         "weights; build it with lethe.inference.build (lethe run evaluates it like the others)")
    if spec.kind == "training-time":
        raise LetheError(f"method '{method}' is a training-time method: it trains its own shard models instead of "
                         f"unlearning from a given model; evaluate it with: lethe run methods=[{method}]")
    if not forget:
        raise LetheError("the forget set is empty: nothing to unlearn; check the forget split or data file")
    if train.eval_every and eval_hook is None:
        raise LetheError("train.eval_every is set but nothing evaluates during unlearning here; run through "
                         "`lethe run` (which evaluates) or pass eval_hook=")
    if best_direction not in ("higher", "lower"):
        raise ValueError(f"best_direction must be 'higher' or 'lower', got {best_direction!r}")
    if spec.kind == "procedure":  # task vectors: weight arithmetic around a fine-tune, not a loss
        return spec.loss(model, tokenizer, forget, retain, train, cfg, description)
    parts = spec.parts(cfg)
    if "retain" in parts and not retain:
        raise LetheError(f"method '{method}' needs retain data, but the retain set is empty")
    rng = random.Random(train.seed)
    torch.manual_seed(train.seed)
    idk = idk_answers or load_idk_answers()

    # --- setup: trainable parameters, data, reference -------------------------------------------
    if train.lora:
        model = add_lora(model, r=train.lora_r, alpha=train.lora_alpha)
    accel = accelerator()
    device = accel.device
    model.to(device)
    pad = tokenizer.pad_token_id
    enc = Encoder(tokenizer)
    state = None
    if spec.setup is not None:  # stateful methods: RMU's direction, AltPO's alternatives, a parameter subset
        state = spec.setup(SetupContext(model, tokenizer, forget, retain, cfg, train, device))
        if "forget_alt" in parts and (state.forget_alt is None or len(state.forget_alt) != len(forget)):
            raise RuntimeError(f"method '{method}': setup must give one alternative answer per forget item")
    frozen = select_trainable(model, train, state.trainable if state else None)
    # one fixed IDK answer per item (drawn even when unused, so the choice does not depend on the method)
    f_idk_answers = [rng.choice(idk) for _ in forget]
    r_idk_answers = [rng.choice(idk) for _ in retain]
    f_seqs = [enc.item(it) for it in forget]
    # tokenise only what the method reads: the retain side can be thousands of items
    f_idk_seqs = [enc.qa(it.question, a) for it, a in zip(forget, f_idk_answers)] if "forget_idk" in parts else []
    f_alt_seqs = [enc.qa(it.question, a) for it, a in zip(forget, state.forget_alt)] if "forget_alt" in parts else []
    r_seqs = [enc.item(it) for it in retain] if "retain" in parts else []
    r_idk_seqs = [enc.qa(it.question, a) for it, a in zip(retain, r_idk_answers)] if "retain_idk" in parts else []
    keys = [it.id for it in forget]

    ref = None
    ref_kind = spec.ref_kind(cfg)
    if ref_kind == "logprobs":
        wanted = {"forget": list(zip(keys, f_seqs))}
        if "forget_idk" in parts:
            wanted["forget_idk"] = list(zip(keys, f_idk_seqs))
        if "forget_alt" in parts:
            wanted["forget_alt"] = list(zip(keys, f_alt_seqs))
        ref = PrecomputedReference(_precompute_logprobs(model, wanted, pad, device))
    elif ref_kind == "logits":
        ref = AdapterOffReference(model) if train.lora else FrozenReference(copy.deepcopy(model))

    def make_batch(fi: list[int], ri: list[int]) -> UnlearnBatch:
        return UnlearnBatch(
            forget=collate([f_seqs[i] for i in fi], pad),
            retain=collate([r_seqs[i] for i in ri], pad) if "retain" in parts else None,
            forget_idk=collate([f_idk_seqs[i] for i in fi], pad) if "forget_idk" in parts else None,
            retain_idk=collate([r_idk_seqs[i] for i in ri], pad) if "retain_idk" in parts else None,
            forget_keys=[keys[i] for i in fi],
            forget_alt=collate([f_alt_seqs[i] for i in fi], pad) if "forget_alt" in parts else None,
        ).to(device)

    def method_loss(m, batch, c):  # per forget sequence (b,), and the method's statistics
        return spec.loss(m, batch, ref, c, state) if spec.setup is not None else spec.loss(m, batch, ref, c)

    def loss(m, batch):
        per_seq, info = method_loss(m, batch, cfg)  # (b,)
        return per_seq.sum(), info

    forget_cfg = forget_only(cfg) if train.sam_rho > 0 else None

    def sam_gradients(m, batches, n):  # train.sam_rho > 0: sharpness-aware minimisation of the forget loss
        def loss_fn(batch, c):
            with autocast(train.precision, device):
                return method_loss(m, batch, c)

        return _sam_gradients(m, batches, n, loss_fn, cfg, forget_cfg, train.sam_rho, accel)

    with attention_for(model, train.precision, device):
        model, stats = train_loop(model, train, len(forget), make_batch, loss, device=device, accel=accel,
                                  n_paired=len(retain), gradients=None if forget_cfg is None else sam_gradients,
                                  diverged=f"method '{method}': the loss",
                                  description=description or f"unlearn {method}", eval_hook=eval_hook,
                                  best_direction=best_direction, t_setup=t_setup)
    for p in frozen:  # the caller's model comes back with its own requires_grad flags
        p.requires_grad_(True)
    if train.lora and train.lora_merge:
        model = model.merge_and_unload()
    model.eval()
    return model, stats


# --- localised unlearning and SAM ------------------------------------------------------------------

_LAYER = re.compile(r"(?:^|\.)layers\.(\d+)\.")


def select_trainable(model, train: TrainConfig, predicate=None) -> list:
    """Freeze every trainable parameter outside ``train.trainable`` / ``train.trainable_layers`` / the
    method's own ``predicate``; returns the parameters it froze (the loop gives them back afterwards)."""
    if not (train.trainable or train.trainable_layers or predicate):
        return []
    layers = {int(i) for i in train.trainable_layers}

    def keep(name: str) -> bool:
        if train.trainable and not any(fnmatch.fnmatch(name, pat) for pat in train.trainable):
            return False
        if layers:
            m = _LAYER.search(name)
            if m is None or int(m.group(1)) not in layers:
                return False
        return predicate(name) if predicate else True

    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    present = {int(m.group(1)) for n, _ in named if (m := _LAYER.search(n))}
    missing = sorted(layers - present)
    if missing:
        have = f"layers 0-{max(present)}" if present else "no numbered layers"
        raise LetheError(f"train.trainable_layers: layer {missing[0]} does not exist (the model has {have}); "
                         "fix train.trainable_layers")
    frozen = [p for n, p in named if not keep(n)]
    if len(frozen) == len(named):
        example = ", ".join(n for n, _ in named[:3])
        raise LetheError(f"train.trainable / train.trainable_layers select no trainable parameter "
                         f"(parameter names look like: {example}); fix the patterns or layer indices")
    for p in frozen:
        p.requires_grad_(False)
    return frozen


def forget_only(cfg):
    """The method config with its retain term switched off (for SAM's perturbation of the forget loss)."""
    names = {f.name for f in dataclasses.fields(cfg)}
    if "retain" in names:
        return dataclasses.replace(cfg, retain="none")
    if "alpha" in names:
        return dataclasses.replace(cfg, alpha=0.0)
    return cfg


def _sam_gradients(model, batches, n_forget: int, loss_fn, cfg, forget_cfg, rho: float, accelerator):
    """Gradients of L_f(θ + ε) + (L − L_f)(θ), with ε = ρ ∇L_f(θ) / ‖∇L_f(θ)‖.

    Sharpness-aware minimisation applied to the forget loss only (Fan et al. 2025, "Towards LLM
    Unlearning Resilient to Relearning Attacks: A Sharpness-Aware Minimization Perspective and Beyond",
    ICML 2025, the SAM-augmented forget loss):
    the forget loss is minimised at the worst nearby weights, so a few relearning steps cannot climb
    back; the retain term is taken at θ. Leaves the gradient in ``.grad``; returns (loss at θ, stats).
    """
    params = [p for p in model.parameters() if p.requires_grad]
    g_f = [torch.zeros_like(p) for p in params]
    step_loss, info = 0.0, {}
    for batch in batches:  # at θ: the retain part into .grad, the forget part into g_f
        full, info = loss_fn(batch, cfg)
        f, _ = loss_fn(batch, forget_cfg) if forget_cfg is not cfg else (full, None)
        full, f = full.sum() / n_forget, f.sum() / n_forget
        grads = torch.autograd.grad(f, params, retain_graph=True, allow_unused=True)
        for acc, g in zip(g_f, grads):
            if g is not None:
                acc += g
        if forget_cfg is not cfg:
            accelerator.backward(full - f)
        step_loss += float(full.detach())
    norm = torch.sqrt(sum((g.float() ** 2).sum() for g in g_f)) + 1e-12
    eps = [rho * g / norm for g in g_f]
    with torch.no_grad():
        for p, e in zip(params, eps):
            p.add_(e)
    for batch in batches:  # the forget gradient at θ + ε
        f, _ = loss_fn(batch, forget_cfg)
        accelerator.backward(f.sum() / n_forget)
    with torch.no_grad():
        for p, e in zip(params, eps):
            p.sub_(e)
    return step_loss, info


def finetune(model, tokenizer, sequences: list[Sequence], train: TrainConfig, description: str = "fine-tune"):
    """Supervised fine-tuning (NLL on the scored tokens of each sequence); returns ``(model, TrainStats)``.

    Trains the built-in benchmark's base, target and retain models through :func:`train_loop`, with
    the same loss normalisation as :func:`unlearn`.
    """
    from .ops import sequence_nll

    train.check()
    if not sequences:
        raise LetheError("nothing to train on: the training set is empty")
    torch.manual_seed(train.seed)
    accel = accelerator()
    device = accel.device
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
