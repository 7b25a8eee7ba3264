"""THE training loop (lethe.train.train_loop): its data order, loss normalisation and schedule traced
by hand on a one-parameter model, and its three callers (unlearn, finetune, ULD's assistant) giving
exactly what a direct call of the loop with their batches and loss gives."""
from __future__ import annotations

import pytest
import torch

from lethe.config import TrainConfig
from lethe.data import Encoder, UnlearnBatch, collate
from lethe.errors import LetheError
from lethe.inference import ULDConfig, train_assistant
from lethe.methods import get_method
from lethe.models import answer_logits
from lethe.ops import answer_positions, kl_uniform_per_token, masked_mean, sequence_nll
from lethe.train import finetune, train_loop, unlearn

CPU = torch.device("cpu")


class Scalar(torch.nn.Module):
    """One parameter w: a loss linear in w has a constant gradient, so AdamW's steps are lr_t * sign."""

    def __init__(self, w: float = 1.0):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor([w]))


def params(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_loop_by_hand_order_pairing_normalisation_schedule():
    """8 items, micro-batch 2 x accumulation 2: 4 items per step, 2 steps per epoch, 2 epochs. The loss
    c * w per item, summed by the caller, comes back as the mean over the step's items (c * w); AdamW
    with a constant gradient c moves w by lr_t * c / (|c| + eps) per step; warmup 1 step, then linear decay."""
    c, lr, seed = 2.0, 0.1, 7
    cfg = TrainConfig(lr=lr, epochs=2, batch_size=2, grad_accum=2, warmup_ratio=0.25, weight_decay=0.0,
                      max_grad_norm=0.0, seed=seed)
    seen = []

    def make_batch(items, paired):
        seen.append((list(items), list(paired)))
        return items, paired

    def loss(m, batch):
        items, _ = batch
        return (m.w * c).sum() * len(items), {"n": len(items)}

    model, stats = train_loop(Scalar(1.0), cfg, 8, make_batch, loss, device=CPU, n_paired=3,
                              tokens=lambda b: len(b[0]) + len(b[1]))

    # data order: one permutation per epoch, then per step one paired draw, from one generator
    gen = torch.Generator().manual_seed(seed)
    expected = []
    for _ in range(2):
        order = torch.randperm(8, generator=gen).tolist()
        for start in (0, 4):
            idx = order[start : start + 4]
            paired = torch.randint(3, (4,), generator=gen).tolist()
            expected += [(idx[:2], paired[:2]), (idx[2:], paired[2:])]
    assert seen == expected

    # total steps 4, warmup int(0.25 * 4) = 1: factors 1, then (4 - s) / 3 for s = 1, 2, 3
    factors = [1.0, 1.0, 2 / 3, 1 / 3]
    w, losses = 1.0, []
    for f in factors:
        losses.append(c * w)
        w -= lr * f * c / (abs(c) + 1e-8)
    assert stats.losses == pytest.approx(losses, rel=1e-6)
    assert float(model.w.detach()) == pytest.approx(w, rel=1e-6)
    assert (stats.steps, stats.sequences, stats.tokens) == (4, 16, 32)
    assert stats.last_stats == {"n": 2} and not model.training


def test_loop_rejects_a_loss_that_is_not_finite():
    def loss(m, batch):
        return m.w.sum() * float("nan"), {}

    with pytest.raises(LetheError, match=r"^toy: the loss became nan at step 0; lower train.lr$"):
        train_loop(Scalar(), TrainConfig(lr=0.1, batch_size=2), 4, lambda i, p: i, loss, device=CPU, tokens=len,
                   diverged="toy: the loss")
    # no check asked for: the step goes through
    _, stats = train_loop(Scalar(), TrainConfig(lr=0.1, batch_size=2, max_steps=1), 4, lambda i, p: i, loss,
                          device=CPU, tokens=len)
    assert stats.steps == 1


def test_finetune_is_the_loop_with_the_nll(make_tiny, tokenizer, forget_items, retain_items):
    enc = Encoder(tokenizer)
    seqs = [enc.qa(it.question, it.answer) for it in forget_items + retain_items]
    pad = tokenizer.pad_token_id
    cfg = TrainConfig(lr=1e-2, epochs=2, batch_size=3, grad_accum=2, warmup_ratio=0.2, seed=4)
    a, sa = finetune(make_tiny(tokenizer), tokenizer, seqs, cfg)

    torch.manual_seed(cfg.seed)
    b, sb = train_loop(make_tiny(tokenizer), cfg, len(seqs),
                       lambda items, _: collate([seqs[i] for i in items], pad),
                       lambda m, enc_: (sequence_nll(*answer_logits(m, enc_)).sum(), {}), device=CPU)
    assert sa.losses == sb.losses and same(params(a), params(b))
    assert sa.tokens == sb.tokens and len(sa.losses) == 4


def test_unlearn_is_the_loop_with_the_method_loss(make_tiny, tokenizer, forget_items, retain_items):
    cfg = TrainConfig(lr=1e-2, epochs=2, batch_size=1, grad_accum=2, warmup_ratio=0.25, seed=2)
    a, sa = unlearn(make_tiny(tokenizer), tokenizer, "grad_diff", forget_items, retain_items, cfg)

    spec = get_method("grad_diff")
    mcfg = spec.make_config()
    enc = Encoder(tokenizer)
    pad = tokenizer.pad_token_id
    f = [enc.item(it) for it in forget_items]
    r = [enc.item(it) for it in retain_items]

    def make_batch(fi, ri):
        return UnlearnBatch(forget=collate([f[i] for i in fi], pad), retain=collate([r[i] for i in ri], pad),
                            forget_keys=[forget_items[i].id for i in fi])

    def loss(m, batch):
        per_seq, info = spec.loss(m, batch, None, mcfg)
        return per_seq.sum(), info

    torch.manual_seed(cfg.seed)
    b, sb = train_loop(make_tiny(tokenizer), cfg, len(f), make_batch, loss, device=CPU, n_paired=len(r))
    assert sa.losses == sb.losses and same(params(a), params(b))
    assert sa.last_stats == sb.last_stats and sa.tokens == sb.tokens


def test_uld_assistant_is_the_loop_with_the_reversed_objectives(make_tiny, tokenizer, forget_items, retain_items):
    """NLL on forget + w * (KL(U || p) averaged over the answer-predicting positions) on retain."""
    cfg = TrainConfig(lr=1e-2, epochs=3, batch_size=2, grad_accum=2, warmup_ratio=0.2)
    uld = ULDConfig(lora=False, retain_weight=3.0)
    a = make_tiny(tokenizer)
    st = train_assistant(a, tokenizer, forget_items, retain_items, uld, cfg, seed=5)

    enc = Encoder(tokenizer)
    pad = tokenizer.pad_token_id
    f = [enc.item(it) for it in forget_items]
    r = [enc.item(it) for it in retain_items]

    def loss(m, batch):
        fb, rb = batch
        nll = sequence_nll(*answer_logits(m, fb))  # (b,)
        logits, labels = answer_logits(m, rb)  # (b, T', V), (b, T')
        kl = masked_mean(kl_uniform_per_token(logits[:, :-1]), answer_positions(labels))  # (b,)
        return nll.sum() + 3.0 * kl.sum(), {}

    b, sb = train_loop(make_tiny(tokenizer), cfg, len(f),
                       lambda fi, ri: (collate([f[i] for i in fi], pad), collate([r[i] for i in ri], pad)),
                       loss, device=CPU, seed=5, n_paired=len(r))
    assert st["assistant_final_loss"] == sb.losses[-1] and st["assistant_steps"] == sb.steps == 3
    assert same(params(a), params(b))
