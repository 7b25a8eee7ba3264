"""Relearning attack: fine-tune the unlearned model on part of the forget set, measure the rest.

A few fine-tuning steps on some forget samples bring unlearned knowledge back (Hu et al. 2024; Fan et
al. 2025). Measured on the samples it trained on, the attack proves little, so, as in Deeb & Roger 2024,
the forget items are split into a *relearning* part the attacker trains on and a *held-out* part that is
evaluated. The relearning data carries information itself (Feng et al. 2025): compare with the same
attack on the retain model. The split is seeded and independent of item order; ``by_group`` keeps each
group (an author) on one side. Why and what it measured: ``docs/attacks.md``.
"""
from __future__ import annotations

import copy
import random
import time
from dataclasses import asdict, dataclass, field

from ..benchmarks.base import QAItem
from ..config import OPTIMIZERS, TrainConfig, check_fields, is_int, is_number
from ..data import Encoder
from ..errors import LetheError
from ..loop import finetune
from ..models import add_lora, current_placement


@dataclass(frozen=True)
class RelearnConfig:
    fraction: float = 0.5  # share of the forget items (or groups) the attacker fine-tunes on
    steps: int = 10  # optimizer steps (a "few steps" attack)
    lr: float = 1e-5  # the papers' fine-tuning scale for 7B models; the built-in tiny models need ~1e-3
    batch_size: int = 8  # sequences per step (all of them when the relearning part is smaller)
    seed: int = 0  # the split and the data order
    by_group: bool = False  # split whole groups (QAItem.group, e.g. authors) instead of single items
    # 0: every weight is trained; r > 0: a fresh rank-r LoRA adapter on a copy of the (merged) weights is (the
    # attack that fits beside a LoRA unlearning: no gradients or optimizer states for the weights)
    lora_r: int = 0
    # how the copy trains (train.* of the same names): a full relearning of a large model fits where its
    # unlearning did with the unlearning's settings, e.g. adamw_8bit, no master weights, checkpointing
    optimizer: str = "adamw"
    master_weights: bool = True
    gradient_checkpointing: bool = False

    def check(self, prefix: str = "relearn") -> None:
        check_fields(prefix, [
            (not is_number(self.fraction) or not 0 < self.fraction < 1, "fraction",
             f"must be in (0, 1) (the held-out part must not be empty), got {self.fraction!r}"),
            (not is_int(self.steps) or self.steps < 1, "steps", f"must be an integer >= 1, got {self.steps!r}"),
            (not is_number(self.lr) or not self.lr > 0, "lr", f"must be > 0, got {self.lr!r}"),
            (not is_int(self.batch_size) or self.batch_size < 1, "batch_size",
             f"must be an integer >= 1, got {self.batch_size!r}"),
            (not is_int(self.seed), "seed", f"must be an integer, got {self.seed!r}"),
            (not is_int(self.lora_r) or self.lora_r < 0, "lora_r",
             f"must be an integer >= 0 (0: every weight is trained), got {self.lora_r!r}"),
            (self.optimizer not in OPTIMIZERS, "optimizer",
             f"must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}"),
        ])


@dataclass
class AttackInfo:
    attack: str
    relearn_ids: list[str]  # forget items the attacker fine-tuned on
    heldout_ids: list[str]  # forget items to evaluate (never trained on)
    steps: int = 0
    tokens: int = 0  # non-pad tokens through the fine-tuning forward passes
    seconds: float = 0.0  # the whole attack: copy + fine-tuning
    final_loss: float | None = None
    config: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)


def relearn_split(items: list[QAItem], fraction: float = 0.5, seed: int = 0,
                  by_group: bool = False) -> tuple[list[QAItem], list[QAItem]]:
    """``(relearn, heldout)``: a seeded, disjoint split of ``items`` that covers them all.

    ``round(fraction * n)`` items (or groups) go to the relearning part, at least one and at most
    ``n - 1``, so neither part is empty. Ids are sorted before the seeded shuffle, so the split
    depends on the item ids and the seed, not on the order of ``items``; both parts keep that order.
    """
    ids = [it.id for it in items]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise LetheError(f"relearn: forget item id '{dup}' appears twice; item ids must be unique")
    key = {it.id: (it.group or it.id) if by_group else it.id for it in items}  # no group: its own group
    units = sorted(set(key.values()))
    if len(units) < 2:
        what = "groups (by_group=true: QAItem.group)" if by_group else "items"
        raise LetheError(f"relearn: needs at least 2 forget {what} (one to relearn, one to hold out), got {len(units)}")
    k = min(len(units) - 1, max(1, round(fraction * len(units))))
    random.Random(seed).shuffle(units)
    chosen = set(units[:k])
    relearn = [it for it in items if key[it.id] in chosen]
    heldout = [it for it in items if key[it.id] not in chosen]
    return relearn, heldout


def relearn(model, tokenizer, forget: list[QAItem], cfg: RelearnConfig = RelearnConfig()):
    """Fine-tune a copy of ``model`` for ``cfg.steps`` steps on the relearning part of ``forget``.

    Returns ``(relearned model, AttackInfo)``; the caller's model is not changed. Every parameter of
    the copy is trained (an attacker with the weights is not bound by the unlearner's LoRA or
    frozen layers), or with ``cfg.lora_r`` a fresh LoRA adapter on it (a LoRA-unlearned model's own
    adapter merged first). The loss is the usual answer NLL (``lethe.loop.finetune``), at a constant
    learning rate with no warmup or weight decay: a short attack has no schedule to speak of.
    """
    cfg.check()
    t0 = time.perf_counter()
    part, heldout = relearn_split(forget, cfg.fraction, cfg.seed, cfg.by_group)
    # a model held in host memory (eval.sharding in a launch) is relearned sharded, so it never goes whole to a device
    held = current_placement().host and not cfg.lora_r
    train = TrainConfig(lr=float(cfg.lr), epochs=float(cfg.steps), batch_size=cfg.batch_size, max_steps=cfg.steps,
                        warmup_ratio=0.0, scheduler="constant", weight_decay=0.0, seed=cfg.seed,
                        sharding="fsdp" if held else "none", optimizer=cfg.optimizer,
                        master_weights=cfg.master_weights, gradient_checkpointing=cfg.gradient_checkpointing)
    enc = Encoder(tokenizer)
    seqs = [enc.item(it) for it in part]
    attacked = copy.deepcopy(model)
    if cfg.lora_r:
        if hasattr(attacked, "merge_and_unload"):  # a LoRA-unlearned model: its adapter is part of the weights
            attacked = attacked.merge_and_unload()
        attacked = add_lora(attacked, r=cfg.lora_r, alpha=2 * cfg.lora_r)
    else:
        attacked.requires_grad_(True)
    attacked, stats = finetune(attacked, tokenizer, seqs, train, description="relearn attack")
    return attacked, AttackInfo("relearn", [it.id for it in part], [it.id for it in heldout], steps=stats.steps,
                                tokens=stats.tokens, seconds=time.perf_counter() - t0,
                                final_loss=stats.losses[-1] if stats.losses else None, config=asdict(cfg))
