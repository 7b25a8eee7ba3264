"""ULD: unlearning from logit difference (Ji et al. 2024, NeurIPS): an assistant (the target's first
layers) learns the reversed objectives; the unlearned model reads ``l_target - alpha * l_assistant``."""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch

from ..benchmarks.base import QAItem
from ..config import TrainConfig
from ..data import Encoder, collate
from ..errors import LetheError
from ..loop import train_loop
from ..models import add_lora, answer_logits, count_parameters, decoder_layers
from ..ops import answer_positions, kl_uniform_per_token, masked_mean, sequence_nll
from .base import InferenceSetup, check_options
from .combined import CombinedLM


@dataclass(frozen=True)
class ULDConfig:
    """``l_target - alpha * l_assistant`` on raw logits (the authors' ``uld/model/contrastllm.py`` adds
    ``weight * l_assistant``, ``weight = -alpha``). Defaults: the authors' TOFU scripts (``bashes/tofu/uld_*.sh``,
    ``configs/model_mode/uld.yaml``, ``configs/unlearn_loss/remember+uniform.yaml``): an assistant of the
    target's first 8 of 32 layers (a quarter), LoRA on every linear layer but the LM head, lr 1e-3,
    10 epochs unless a ``TrainConfig`` is given.
    """

    alpha: float = 0.8  # weight of the subtracted assistant logits
    # relative-top filter (DoLa's): where the target gives a token less than top_logit_filter times the
    # top token's probability (and it is outside the top int(top_logit_filter * V)), the assistant's
    # logit is set to 0 there, so subtraction cannot promote tokens the target finds implausible; 0: off
    top_logit_filter: float = 0.01
    retain_weight: float = 5.0  # weight of the retain ("forget the retain set") term
    num_layers: int = 0  # assistant depth; 0: a quarter of the target's layers (at least 1)
    lora: bool = True  # train LoRA adapters (then merged) instead of the whole assistant
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05

    def check(self) -> None:
        check_options("uld", self, {
            "alpha": (self.alpha >= 0, ">= 0"),
            "top_logit_filter": (0 <= self.top_logit_filter < 1, "in [0, 1) (0: off)"),
            "retain_weight": (self.retain_weight >= 0, ">= 0"),
            "num_layers": (self.num_layers >= 0, ">= 0 (0: a quarter of the target's layers)"),
            "lora_r": (self.lora_r >= 1, ">= 1"),
            "lora_alpha": (self.lora_alpha > 0, "> 0"),
            "lora_dropout": (0 <= self.lora_dropout < 1, "in [0, 1)"),
        })


def relative_top_mask(logits, rel: float):
    """True where a token is filtered out of the subtraction (DoLa's relative-top rule, as in the ULD
    code): log p < min(log p_max + log rel, k-th largest log p), k = max(1, int(rel * V)). (.., V)."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    k = max(1, int(rel * logits.size(-1)))
    kth = logp.topk(k, dim=-1).values[..., -1:]
    thresh = torch.minimum(kth, logp.max(dim=-1, keepdim=True).values + math.log(rel))
    return logp < thresh


def _layers(model):  # models.decoder_layers(model), or None for a model without a layer list
    try:
        return decoder_layers(model)
    except LetheError:
        return None


def truncated_copy(model, k: int):
    """``(copy, layers kept)``: ``model`` with only its first ``k`` decoder layers (and the embeddings, final
    norm and LM head), the ULD assistant (the authors' ``uld/model/utils.py``, ``init_small_llm``); a model
    whose layer list is not found is copied whole."""
    found = _layers(model)
    if found is None:
        return copy.deepcopy(model), None
    path, full = found
    parent_path, _, name = path.rpartition(".")
    parent = model.get_submodule(parent_path)  # "" is the model itself
    k = min(k, len(full))
    setattr(parent, name, torch.nn.ModuleList(list(full)[:k]))
    try:
        small = copy.deepcopy(model)
    finally:
        setattr(parent, name, full)
    cfg = getattr(small, "config", None)
    for attr in ("num_hidden_layers", "n_layer", "num_layers"):
        if isinstance(getattr(cfg, attr, None), int):
            setattr(cfg, attr, k)
    if isinstance(getattr(cfg, "layer_types", None), list):
        cfg.layer_types = cfg.layer_types[:k]
    return small, k


class ULDModel(CombinedLM):
    """The unlearned model of ULD: ``l = l_target - alpha * l_assistant`` (Ji et al. 2024), read through
    :class:`CombinedLM`; both models stay as they are."""

    label = "uld"

    def __init__(self, target, assistant, alpha: float, top_logit_filter: float = 0.0):
        super().__init__()
        self.target = target
        self.assistant = assistant
        self.alpha = alpha
        self.top_logit_filter = top_logit_filter

    def members(self) -> list:
        return [self.target, self.assistant]

    def mix(self, logits: list[torch.Tensor]) -> torch.Tensor:  # the assistant's logits zeroed where filtered
        lt, la = logits
        if self.top_logit_filter > 0:
            la = la.masked_fill(relative_top_mask(lt, self.top_logit_filter), 0.0)
        return lt - self.alpha * la


def train_assistant(assistant, tokenizer, forget: list[QAItem], retain: list[QAItem], cfg: ULDConfig, train,
                    seed: int = 0) -> dict:
    """The reversed objectives (Ji et al. 2024; the authors' ``remember+uniform`` loss,
    ``uld/model/forget_losses.py``: NLL on forget, KL to uniform on retain, retain weight 5):

        L = (1/n) sum_i [ NLL(y_f,i | x_f,i) + w * (1/|y_r,i|) sum_t KL( U || p_a(. | x_r,i, y_r,i,<t) ) ]

    with n forget sequences per optimizer step, each paired with a random retain sequence. The authors'
    code averages the KL over every position of the retain sequence; Lethe over the positions that predict
    answer tokens, the only ones the probes score or generate from. ``lethe.loop.train_loop`` with
    ``train``'s settings (not its LoRA fields: ``cfg.lora`` decides), ``seed`` the data order. Returns
    timing and token counts.
    """
    device = next(assistant.parameters()).device
    enc = Encoder(tokenizer)
    pad = tokenizer.pad_token_id
    f_seqs = [enc.item(it) for it in forget]
    r_seqs = [enc.item(it) for it in retain]

    def make_batch(fi: list[int], ri: list[int]):
        return collate([f_seqs[i] for i in fi], pad).to(device), collate([r_seqs[i] for i in ri], pad).to(device)

    def loss(model, batch):
        fb, rb = batch
        remember = sequence_nll(*answer_logits(model, fb))  # (b,)
        logits, labels = answer_logits(model, rb)  # (b, T', V), (b, T')
        flat = masked_mean(kl_uniform_per_token(logits[:, :-1]), answer_positions(labels))  # (b,)
        return remember.sum() + cfg.retain_weight * flat.sum(), {}

    _, stats = train_loop(assistant, train, len(forget), make_batch, loss, device=device, seed=seed,
                          n_paired=len(retain), diverged="uld: the assistant's loss",
                          description="uld assistant")
    return {"assistant_steps": stats.steps, "assistant_tokens": stats.tokens, "assistant_train_seconds": stats.seconds,
            "assistant_tokens_per_second": stats.tokens_per_second,
            "assistant_final_loss": stats.losses[-1] if stats.losses else None}


def build_uld(model, tokenizer, forget, retain, cfg: ULDConfig, train=None, seed: int = 0) -> InferenceSetup:
    """Train a copy of the target's first layers (LoRA, merged afterwards) with the reversed objectives and
    wrap target and assistant; the target is not modified. ``seed``: LoRA initialisation and data order."""
    if not retain:
        raise LetheError("uld needs retain data (the assistant learns to be uniform on it); the retain set is empty")
    # the authors' TOFU run: lr 1e-3 (LoRA), 10 epochs, warmup 10 %, weight decay 0.01; per step 16 forget
    # sequences, each paired with a retain one (their equal sampler mixes both in a batch)
    train = train or TrainConfig(lr=1e-3, epochs=10.0, batch_size=16, warmup_ratio=0.1, weight_decay=0.01)
    train.check()
    model.eval()
    found = _layers(model)
    n_target = len(found[1]) if found else None
    k = cfg.num_layers or (max(1, round(n_target / 4)) if n_target else 1)
    torch.manual_seed(seed)
    assistant, kept = truncated_copy(model, k)
    assistant.requires_grad_(True)
    if cfg.lora:
        assistant = add_lora(assistant, r=cfg.lora_r, alpha=cfg.lora_alpha, dropout=cfg.lora_dropout)
    trainable, total = count_parameters(assistant)
    stats = {"assistant_layers": kept if kept is not None else n_target, "target_layers": n_target,
             "assistant_trainable_params": trainable, "assistant_params": total, "lr": train.lr,
             "epochs": train.epochs}
    stats.update(train_assistant(assistant, tokenizer, forget, retain, cfg, train, seed))
    if cfg.lora:
        assistant = assistant.merge_and_unload()
    assistant.requires_grad_(False)
    assistant.eval()
    wrapper = ULDModel(model, assistant, cfg.alpha, cfg.top_logit_filter).eval()
    return InferenceSetup(wrapper, Encoder(tokenizer), None, stats)
