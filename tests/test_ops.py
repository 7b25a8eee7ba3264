"""ops: log-probs, NLL and KL on toy logits whose softmax is known by hand."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lethe.ops import (
    IGNORE,
    answer_positions,
    kl_per_token,
    kl_uniform_per_token,
    masked_mean,
    sequence_logprob,
    sequence_nll,
    shift,
    token_logprobs,
)

LOG = math.log


def logits_of(*probs, shift_by: float = 3.0) -> torch.Tensor:
    """Logits (1, T, V) whose softmax rows are ``probs`` (plus a constant, which softmax ignores)."""
    return (torch.log(torch.tensor(probs, dtype=torch.float64)) + shift_by).float().unsqueeze(0)


# rows: the next-token distribution after positions 0..3 (V = 3)
P0 = [0.5, 0.25, 0.25]
P1 = [0.25, 0.5, 0.25]
P2 = [0.1, 0.1, 0.8]
P3 = [1 / 3, 1 / 3, 1 / 3]


def toy():
    logits = logits_of(P0, P1, P2, P3)  # (1, 4, 3)
    # ids [0, 0, 1, 2]: a 2-token prompt, then a 2-token answer (labels aligned with input_ids)
    labels = torch.tensor([[IGNORE, IGNORE, 1, 2]])
    return logits, labels


def test_shift_aligns_position_t_with_token_t_plus_1():
    logits, labels = toy()
    lg, lb = shift(logits, labels)
    assert lg.shape == (1, 3, 3) and lb.tolist() == [[IGNORE, 1, 2]]
    assert torch.equal(lg, logits[:, :3])


def test_token_logprobs_hand_computed():
    logits, labels = toy()
    logp, mask = token_logprobs(logits, labels)
    assert logp.shape == mask.shape == (1, 3)
    assert mask.tolist() == [[0.0, 1.0, 1.0]]
    # token 1 is predicted from position 1 (P1), token 2 from position 2 (P2); the prompt scores exactly 0
    expected = [0.0, LOG(0.5), LOG(0.8)]
    assert logp[0].tolist() == pytest.approx(expected, abs=1e-6)
    assert logp[0, 0].item() == 0.0


def test_sequence_logprob_and_nll_hand_computed():
    logits, labels = toy()
    lp, n = sequence_logprob(logits, labels)
    assert n.tolist() == [2.0]
    assert lp.item() == pytest.approx(LOG(0.5) + LOG(0.8), abs=1e-6)
    nll = sequence_nll(logits, labels)
    assert nll.item() == pytest.approx(-(LOG(0.5) + LOG(0.8)) / 2, abs=1e-6)


def test_padding_and_ignore_do_not_count():
    # two sequences of different answer lengths; the second is right-padded with IGNORE labels
    logits = torch.cat([logits_of(P0, P1, P2, P3), logits_of(P2, P0, P3, P1)])  # (2, 4, 3)
    labels = torch.tensor([[IGNORE, 0, 0, 2], [IGNORE, 2, IGNORE, IGNORE]])
    lp, n = sequence_logprob(logits, labels)
    assert n.tolist() == [3.0, 1.0]
    assert lp.tolist() == pytest.approx([LOG(0.5) + LOG(0.25) + LOG(0.8), LOG(0.8)], abs=1e-6)
    assert sequence_nll(logits, labels).tolist() == pytest.approx(
        [-(LOG(0.5) + LOG(0.25) + LOG(0.8)) / 3, -LOG(0.8)], abs=1e-6)


def test_no_scored_token_gives_zero_not_nan():
    logits, _ = toy()
    labels = torch.full((1, 4), IGNORE)
    nll = sequence_nll(logits, labels)
    assert nll.item() == 0.0


def test_token_logprobs_matches_log_softmax_gather():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 7, 11, generator=g) * 3
    labels = torch.randint(0, 11, (3, 7), generator=g)
    labels[:, :2] = IGNORE
    labels[2, 5:] = IGNORE
    logp, mask = token_logprobs(logits, labels)
    ref = F.log_softmax(logits[:, :-1], -1)
    tgt = labels[:, 1:]
    m = tgt != IGNORE
    gathered = ref.gather(-1, tgt.clamp(min=0).unsqueeze(-1)).squeeze(-1) * m
    assert torch.allclose(logp, gathered, atol=1e-5)
    assert torch.equal(mask.bool(), m)
    assert torch.allclose(sequence_logprob(logits, labels)[0], gathered.sum(-1), atol=1e-5)


def test_low_precision_logits_are_scored_in_float32():
    logits, labels = toy()
    logp, _ = token_logprobs(logits.bfloat16(), labels)
    assert logp.dtype == torch.float32
    assert logp[0, 2].item() == pytest.approx(LOG(0.8), abs=2e-2)


def test_masked_mean_and_answer_positions():
    labels = torch.tensor([[IGNORE, IGNORE, 5, 6], [IGNORE, 7, IGNORE, IGNORE]])
    pos = answer_positions(labels)
    assert pos.tolist() == [[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]]
    values = torch.tensor([[100.0, 2.0, 4.0], [6.0, 100.0, 100.0]])
    assert masked_mean(values, pos).tolist() == [3.0, 6.0]
    assert masked_mean(values, torch.zeros_like(values)).tolist() == [0.0, 0.0]


def test_kl_per_token_hand_computed():
    p = logits_of(P0, P3)
    q = logits_of(P1, P3, shift_by=-7.0)
    kl = kl_per_token(p, q)  # (1, 2)
    # KL(P0 || P1) = .5 log(.5/.25) + .25 log(.25/.5) + .25 log 1 = .25 log 2; identical rows -> 0
    assert kl[0].tolist() == pytest.approx([0.25 * LOG(2), 0.0], abs=1e-6)
    # not symmetric in general: KL(P0 || P2) != KL(P2 || P0)
    a = kl_per_token(logits_of(P0), logits_of(P2)).item()
    b = kl_per_token(logits_of(P2), logits_of(P0)).item()
    assert a == pytest.approx(0.5 * LOG(5) + 0.25 * LOG(2.5) + 0.25 * LOG(0.25 / 0.8), abs=1e-6)
    assert b == pytest.approx(0.1 * LOG(0.2) + 0.1 * LOG(0.4) + 0.8 * LOG(3.2), abs=1e-6)


def test_kl_uniform_hand_computed():
    assert kl_uniform_per_token(torch.full((2, 3, 7), 4.2)).abs().max().item() < 1e-6
    # KL(U || P0) = sum_v (1/3)(log(1/3) - log p_v) = -log 3 + (1/3)(log 2 + 2 log 4)
    expected = sum((1 / 3) * (LOG(1 / 3) - LOG(pv)) for pv in P0)
    assert expected == pytest.approx(-LOG(3) + 5 / 3 * LOG(2))
    got = kl_uniform_per_token(logits_of(P0, P2))
    expected2 = sum((1 / 3) * (LOG(1 / 3) - LOG(pv)) for pv in P2)
    assert got[0].tolist() == pytest.approx([expected, expected2], abs=1e-6)
    # agrees with the general KL against uniform logits
    assert torch.allclose(got, kl_per_token(torch.zeros(1, 2, 3), logits_of(P0, P2)), atol=1e-6)


def test_answer_logits_skips_prompt_positions_and_matches_full_logits():
    """Only positions that predict answer tokens are projected; the scores are unchanged."""
    from lethe.data import collate, Sequence
    from lethe.models import answer_logits, tiny_llama
    from lethe.ops import sequence_logprob

    model = tiny_llama(50, 16, 1, 2, 32).eval()
    enc = collate([Sequence(tuple(range(3, 12)), 6), Sequence(tuple(range(20, 27)), 4)], pad_id=2)
    logits, labels = answer_logits(model, enc)
    assert logits.size(1) == enc.labels.size(1) - 3  # first scored token at index 4 -> keep from position 3
    assert torch.equal(labels, enc.labels[:, 3:])
    with torch.no_grad():
        full = model(input_ids=enc.input_ids, attention_mask=enc.attention_mask).logits
    lp_cut, n_cut = sequence_logprob(logits.detach(), labels)
    lp_full, n_full = sequence_logprob(full, enc.labels)
    assert torch.allclose(lp_cut, lp_full, atol=1e-5) and torch.equal(n_cut, n_full)
