"""Unlearning (:func:`unlearn`): every loss method plugs its per-sequence loss into THE training loop
(``lethe.loop.train_loop``, which also normalises the loss), with its reference model, its trainable
parameters and optional SAM.
"""
from __future__ import annotations

import copy
import dataclasses
import fnmatch
import random
import time
from pathlib import Path

import torch

from . import dist, sharding
from .benchmarks.base import QAItem
from .config import TrainConfig  # noqa: F401  (also re-exported: lethe.train.TrainConfig)
from .data import Encoder, Sequence, UnlearnBatch, collate
from .errors import LetheError
from .loop import accelerator, attention_for, autocast, finetune, train_loop  # noqa: F401  (finetune: re-exported)
from .methods import LossMethod, SetupContext, get_method
from .models import add_lora, answer_logits, decoder_layers, layer_index
from .ops import sequence_logprob
from .reference import AdapterOffReference, FrozenReference, PrecomputedReference, eval_mode


def load_idk_answers() -> list[str]:
    path = Path(__file__).parent / "resources" / "idk.txt"
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@torch.no_grad()
def _precompute_logprobs(model, seqs: dict[str, list[tuple[str, Sequence]]], pad_id: int, device,
                         batch_size: int = 64) -> dict[tuple[str, str], float]:
    """Per-sequence log-probs of the model before unlearning, keyed by (kind, item id)."""
    table: dict[tuple[str, str], float] = {}
    with eval_mode(model):
        for kind, pairs in seqs.items():
            for i in range(0, len(pairs), batch_size):
                chunk = pairs[i : i + batch_size]
                enc = collate([s for _, s in chunk], pad_id).to(device)
                lp, _ = sequence_logprob(*answer_logits(model, enc))
                table.update({(kind, key): float(v) for (key, _), v in zip(chunk, lp.tolist())})
    return table


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
    if not isinstance(spec, LossMethod):  # the loop trains losses; another kind applies by its own contract
        # (a procedure runs; inference- and training-time methods refuse, naming what to call instead)
        return spec.apply(model, tokenizer, forget, retain, train, options, idk_answers=idk_answers,
                          description=description, eval_hook=eval_hook, best_direction=best_direction)
    cfg = spec.make_config(options)
    train.check()
    if not forget:
        raise LetheError("the forget set is empty: nothing to unlearn; check the forget split or data file")
    if train.eval_every and eval_hook is None:
        raise LetheError("train.eval_every is set but nothing evaluates during unlearning here; run through "
                         "`lethe run` (which evaluates) or pass eval_hook=")
    if best_direction not in ("higher", "lower"):
        raise ValueError(f"best_direction must be 'higher' or 'lower', got {best_direction!r}")
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
    held = sharding.held(train.sharding)  # then the model never goes whole to the device
    if not held:
        model.to(device)
    pad = tokenizer.pad_token_id
    enc = Encoder(tokenizer)
    state = None
    if spec.setup is not None:  # stateful methods: RMU's direction, AltPO's alternatives, a parameter subset
        # a held model: its passes on a sharded copy (every process runs them all, so they stay in step)
        with sharding.evaluated(model, "fsdp" if held else "none", trainable=True) as net:
            state = spec.setup(SetupContext(net, tokenizer, forget, retain, cfg, train, device))
        if "forget_alt" in parts and (state.forget_alt is None or len(state.forget_alt) != len(forget)):
            raise RuntimeError(f"method '{method}': setup must give one alternative answer per forget item")
    frozen = select_trainable(model, train, state.trainable if state else None)
    # one fixed IDK answer per item (drawn even when unused, so the choice does not depend on the method)
    answers = {"forget_idk": [rng.choice(idk) for _ in forget], "retain_idk": [rng.choice(idk) for _ in retain],
               "forget_alt": state.forget_alt if state else None}

    def encode(part: str) -> list[Sequence]:  # a part's items, with its own answers (IDK, alternatives) if any
        items = forget if part.startswith("forget") else retain
        if part in answers:
            return [enc.qa(it.question, a) for it, a in zip(items, answers[part])]
        return [enc.item(it) for it in items]

    # tokenise only the parts the method reads: the retain side can be thousands of items
    seqs = {part: encode(part) for part in ("forget", "forget_idk", "forget_alt", "retain", "retain_idk")
            if part == "forget" or part in parts}
    keys = [it.id for it in forget]

    ref = None
    ref_kind = spec.ref_kind(cfg)
    if ref_kind == "logprobs":
        wanted = {part: list(zip(keys, seqs[part])) for part in ("forget", "forget_idk", "forget_alt") if part in seqs}
        with sharding.evaluated(model, "fsdp" if held else "none") as net:  # every process scores every batch
            ref = PrecomputedReference(_precompute_logprobs(net, wanted, pad, device))
    elif ref_kind == "logits" and held:
        # the frozen copy sharded with FSDP2 (under DeepSpeed's training too): the loop runs as many micro-batches
        # in every process
        ref = FrozenReference(sharding.sharded_copy(model, torch.device(device)))
    elif ref_kind == "logits":
        ref = AdapterOffReference(model) if train.lora else FrozenReference(copy.deepcopy(model).to(device))

    def make_batch(fi: list[int], ri: list[int]) -> UnlearnBatch:
        rows = {part: fi if part.startswith("forget") else ri for part in seqs}
        return UnlearnBatch(forget_keys=[keys[i] for i in fi],
                            **{part: collate([s[i] for i in rows[part]], pad) for part, s in seqs.items()}).to(device)

    extra = (state,) if spec.setup is not None else ()  # a stateful loss takes its state as a fifth argument

    def loss(m, batch):
        per_seq, info = spec.loss(m, batch, ref, cfg, *extra)  # per forget sequence (b,), the method's statistics
        return per_seq.sum(), info

    forget_cfg = forget_only(cfg) if train.sam_rho > 0 else None

    def sam_gradients(m, batches, n):  # train.sam_rho > 0: sharpness-aware minimisation of the forget loss
        def loss_fn(batch, c):
            with autocast(train.precision, device):
                return spec.loss(m, batch, ref, c, *extra)

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

def select_trainable(model, train: TrainConfig, predicate=None) -> list:
    """Freeze every trainable parameter outside ``train.trainable`` / ``train.trainable_layers`` / the
    method's own ``predicate``; returns the parameters it froze (the loop gives them back afterwards).
    Layer indices count the decoder layers ``models.decoder_layers`` finds, whatever the architecture."""
    if not (train.trainable or train.trainable_layers or predicate):
        return []
    layers = {int(i) for i in train.trainable_layers}
    depth = len(decoder_layers(model)[1]) if layers else 0
    if missing := sorted(i for i in layers if i >= depth):
        raise LetheError(f"train.trainable_layers: layer {missing[0]} does not exist (the model has layers "
                         f"0-{depth - 1}); fix train.trainable_layers")
    layer_of = layer_index(model) if layers else None

    def keep(name: str) -> bool:
        if train.trainable and not any(fnmatch.fnmatch(name, pat) for pat in train.trainable):
            return False
        if layers and layer_of(name) not in layers:
            return False
        return predicate(name) if predicate else True

    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
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
    dist.sum_tensors(g_f)  # launched as several processes: ε from the whole step's forget gradient
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


