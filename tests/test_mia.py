"""Membership inference and extraction: hand-computed attack scores, AUC against scipy's Mann-Whitney U,
PrivLeak in MUSE's convention, the per-token probes on a toy bigram "model" and on a tiny Llama."""
from __future__ import annotations

import math
import zlib

import numpy as np
import pytest
import torch
from scipy.stats import mannwhitneyu

from lethe.data import Sequence
from lethe.errors import LetheError
from lethe.metrics import (
    METRICS,
    MetricResult,
    exact_memorization,
    extraction_strength,
    mia_auc,
    privleak,
)
from lethe.metrics.extraction import (
    exact_memorization_values,
    extraction_strength_values,
)
from lethe.metrics.mia import (
    gradnorm_scores,
    loss_scores,
    mia_gradnorm,
    mia_loss,
    mia_min_k,
    mia_min_k_plus_plus,
    mia_reference,
    mia_zlib,
    min_k_plus_plus_scores,
    min_k_scores,
    reference_scores,
    roc_auc,
    zlib_scores,
)
from lethe.metrics.mia.min_k import k_count
from lethe.probes import score_sequences
from lethe.probes_tokens import TokenProbes, gradient_norms, token_scores

from toy import Bigram

LOG = math.log
LN2 = math.log(2.0)


def approx(x, tol=1e-6):
    return pytest.approx(x, abs=tol)


# ------------------------------------------------------------------------------------------------ AUC


def test_auc_identical_lists_is_one_half():
    s = [0.3, -1.0, 2.5, 2.5, 7.0]
    assert roc_auc(s, s) == 0.5
    assert roc_auc([1.0], [1.0]) == 0.5


def test_auc_separated_lists():
    assert roc_auc([5, 6, 7], [1, 2]) == 1.0  # every member above every non-member
    assert roc_auc([1, 2], [5, 6, 7]) == 0.0


def test_auc_ties_count_half():
    # pairs (member, non-member): (1,1) tie -> 1/2, (1,0) 1, (2,1) 1, (2,0) 1  => 3.5 / 4
    assert roc_auc([1, 2], [1, 0]) == 0.875
    # all tied
    assert roc_auc([3, 3], [3, 3, 3]) == 0.5


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_equals_mann_whitney_u(seed):
    rng = np.random.default_rng(seed)
    f = rng.integers(0, 6, 37).astype(float)  # small integers: many ties
    h = rng.integers(0, 5, 23).astype(float)
    u = mannwhitneyu(f, h, alternative="two-sided").statistic  # U of the first sample
    assert roc_auc(f, h) == approx(u / (len(f) * len(h)), 1e-12)
    f, h = rng.normal(size=50), rng.normal(0.5, 1, size=40)
    assert roc_auc(f, h) == approx(mannwhitneyu(f, h).statistic / 2000, 1e-12)


def test_mia_auc_is_a_set_level_result_and_checks_input():
    r = mia_auc([2.0, 3.0], [1.0])
    assert r == MetricResult(1.0, [])
    with pytest.raises(ValueError, match="non-empty"):
        mia_auc([], [1.0])
    with pytest.raises(ValueError, match="NaN"):
        mia_auc([1.0, float("nan")], [1.0])


# ------------------------------------------------------------------------------------------- attacks

# per-token log-probs of three toy sequences
LP = [np.array([-1.0, -2.0, -3.0]), np.array([-0.5]), np.array([-4.0, -0.1, -0.2, -0.3, -0.4, -2.0])]


def test_loss_is_minus_mean_nll():
    assert loss_scores(LP).tolist() == approx([-2.0, -0.5, -7.0 / 6.0])


def test_zlib_divides_minus_mean_nll_by_compressed_bytes():
    texts = ["Alice Moon was born in Paris.", "a", "the the the the the the the the the the"]
    z = [len(zlib.compress(t.encode("utf-8"))) for t in texts]
    assert zlib_scores(LP, texts).tolist() == approx([-2.0 / z[0], -0.5 / z[1], (-7.0 / 6.0) / z[2]])
    with pytest.raises(ValueError, match="texts"):
        zlib_scores(LP, texts[:2])
    with pytest.raises(ValueError, match="texts"):
        zlib_scores(LP, None)


def test_min_k_count_rounds_down_with_one_token_minimum():
    # max(1, floor(k n)): 3 tokens at 20% -> 1; 6 at 20% -> 1; 10 at 20% -> 2; 10 at 25% -> 2; 100 at 0.29 -> 29
    assert [k_count(3, 0.2), k_count(6, 0.2), k_count(10, 0.2), k_count(10, 0.25), k_count(5, 1.0)] == [1, 1, 2, 2, 5]
    assert k_count(100, 0.29) == 29  # 100 * 0.29 = 28.999999999999996 in floats
    assert k_count(1, 0.05) == 1


def test_min_k_by_hand():
    # every token (keep_last=True); k = 20%: one lowest token each
    assert min_k_scores(LP, k=0.2, keep_last=True).tolist() == approx([-3.0, -0.5, -4.0])
    # k = 50%: floor(1.5)=1, 1 -> 1, 3 lowest of 6: -4, -2, -0.4
    assert min_k_scores(LP, k=0.5, keep_last=True).tolist() == approx([-3.0, -0.5, (-4.0 - 2.0 - 0.4) / 3])
    # k = 100% is the LOSS attack
    assert min_k_scores(LP, k=1.0, keep_last=True).tolist() == approx(loss_scores(LP).tolist())
    with pytest.raises(ValueError, match="k"):
        min_k_scores(LP, k=20)
    # the default leaves each sequence's last token (the EOS) out: LP[1] has nothing left
    with pytest.raises(ValueError, match="keep_last"):
        min_k_scores(LP)
    # k = 40% (the default) of [-1, -2] -> 1 token; of [-4, -0.1, -0.2, -0.3, -0.4] -> 2 tokens
    assert min_k_scores([LP[0], LP[2]]).tolist() == approx([-2.0, (-4.0 - 0.4) / 2])


def vocab_mu_sigma(row):
    """mu = sum_z p log p, sigma = sqrt(sum_z p (log p - mu)^2), by hand over a small vocabulary."""
    mu = sum(p * LOG(p) for p in row)
    return mu, math.sqrt(sum(p * (LOG(p) - mu) ** 2 for p in row))


def test_min_k_plus_plus_on_a_three_token_vocabulary():
    # p = (1/2, 1/4, 1/4): log p = (-ln2, -2ln2, -2ln2); mu = -1.5 ln2; sigma = 0.5 ln2
    mu, sigma = vocab_mu_sigma([0.5, 0.25, 0.25])
    assert (mu, sigma) == (approx(-1.5 * LN2), approx(0.5 * LN2))
    # so z = +1 for the likely token and -1 for either unlikely one
    # q = (0.1, 0.1, 0.8)
    mu_q, sigma_q = vocab_mu_sigma([0.1, 0.1, 0.8])
    assert mu_q == approx(0.2 * LOG(0.1) + 0.8 * LOG(0.8))
    # a sequence of 5 tokens: x = token0 under p, token1 under p, token2 under q, token0 under q, token2 under q
    lp = np.array([-LN2, -2 * LN2, LOG(0.8), LOG(0.1), LOG(0.8)])
    mus = np.array([mu, mu, mu_q, mu_q, mu_q])
    sigmas = np.array([sigma, sigma, sigma_q, sigma_q, sigma_q])
    z = [1.0, -1.0, (LOG(0.8) - mu_q) / sigma_q, (LOG(0.1) - mu_q) / sigma_q, (LOG(0.8) - mu_q) / sigma_q]
    assert z[3] == approx(-2.0)  # (ln .1 - .2 ln .1 - .8 ln .8) / sigma_q: the rare token sits 2 sigma low
    # k = 20% -> 1 token: the lowest z; k = 40% -> 2 tokens
    assert min_k_plus_plus_scores([lp], [mus], [sigmas], k=0.2, keep_last=True).tolist() == approx([min(z)])
    assert min_k_plus_plus_scores([lp], [mus], [sigmas], k=0.4, keep_last=True).tolist() == approx(
        [np.mean(sorted(z)[:2])])
    assert min_k_plus_plus_scores([lp], [mus], [sigmas], k=1.0, keep_last=True).tolist() == approx([np.mean(z)])
    # default: the last token left out, k = 40% of the 4 others -> 1 token
    assert min_k_plus_plus_scores([lp], [mus], [sigmas]).tolist() == approx([min(z[:4])])


def test_min_k_plus_plus_floors_sigma_and_checks_shapes():
    # one-hot next-token distribution: sigma 0 -> floored at 1e-3, no division by zero
    assert min_k_plus_plus_scores([[-0.5]], [[0.0]], [[0.0]], keep_last=True).tolist() == approx([-500.0])
    with pytest.raises(ValueError, match="tokens"):
        min_k_plus_plus_scores([[-1.0, -2.0]], [[0.0]], [[1.0, 1.0]])
    with pytest.raises(ValueError, match="negative"):
        min_k_plus_plus_scores([[-1.0]], [[0.0]], [[-1.0]])


def test_reference_is_ref_nll_minus_target_nll():
    ref = [np.array([-2.0, -2.0, -2.0]), np.array([-0.25]), np.full(6, -1.0)]
    # NLL_ref - NLL_target = mean lp_target - mean lp_ref
    assert reference_scores(LP, ref).tolist() == approx([-2.0 + 2.0, -0.5 + 0.25, -7.0 / 6.0 + 1.0])
    with pytest.raises(ValueError, match="tokens"):
        reference_scores(LP, [ref[0], ref[1], ref[2][:5]])


def test_gradnorm_is_minus_norm():
    assert gradnorm_scores([0.0, 1.5, 3.0]).tolist() == [0.0, -1.5, -3.0]  # one (aggregated) norm per sequence
    # per-tensor norms (3, 4): mean 3.5 (open-unlearning's default) or global sqrt(9 + 16) = 5
    assert gradnorm_scores([np.array([3.0, 4.0])]).tolist() == [-3.5]
    assert gradnorm_scores([np.array([3.0, 4.0])], aggregate="global").tolist() == [-5.0]
    with pytest.raises(ValueError, match="aggregate"):
        gradnorm_scores([1.0], aggregate="max")
    with pytest.raises(ValueError, match="grad_norms"):
        gradnorm_scores(None)
    with pytest.raises(ValueError, match=">= 0"):
        gradnorm_scores([1.0, -1.0])


def test_bad_token_arrays_raise():
    with pytest.raises(ValueError, match="empty"):
        loss_scores([np.array([-1.0]), np.array([])])
    with pytest.raises(ValueError, match="NaN"):
        min_k_scores([np.array([-1.0, np.nan])])
    with pytest.raises(ValueError, match="zero sequences"):
        loss_scores([])


def toy_probes(lps, texts=None, grad_norms=None) -> TokenProbes:
    lps = [np.asarray(x, dtype=float) for x in lps]
    return TokenProbes(
        logprobs=lps,
        mu=[np.full_like(x, -1.0) for x in lps],
        sigma=[np.full_like(x, 0.5) for x in lps],
        argmax_hit=[x > -0.7 for x in lps],
        texts=texts,
        grad_norms=None if grad_norms is None else np.asarray(grad_norms, dtype=float),
    )


def test_registered_attacks_compute_forget_vs_holdout_auc():
    # each sequence ends in its EOS position (-0.05), left out by Min-K%, Min-K%++
    forget = toy_probes([[-0.1, -0.2, -0.05], [-0.3, -0.05], [-1.0, -0.1, -0.05]], texts=["a b", "c", "d e"],
                        grad_norms=[0.1, 0.2, 0.3])
    holdout = toy_probes([[-2.0, -3.0, -0.05], [-1.5, -0.05]], texts=["f g", "h"], grad_norms=[1.0, 2.0])
    for fn in (mia_loss, mia_min_k, mia_min_k_plus_plus, mia_zlib, mia_gradnorm):
        assert fn(forget, holdout) == MetricResult(1.0, []), fn.__name__  # members clearly separated
        assert fn(holdout, forget).value == 0.0
        assert fn(forget, forget).value == 0.5
    # the reference model finds the forget items just as easy: the calibrated scores tie at 0
    assert mia_reference(forget, holdout, forget, holdout).value == 0.5
    ref_f = toy_probes([[-5.0, -5.0, -5.0], [-5.0, -5.0], [-5.0, -5.0, -5.0]])
    ref_h = toy_probes([[-0.1, -0.1, -0.1], [-0.1, -0.1]])
    assert mia_reference(forget, holdout, ref_f, ref_h).value == 1.0
    with pytest.raises(LetheError, match="reference model"):
        mia_reference(forget, holdout, None, ref_h)
    with pytest.raises(ValueError, match="texts"):
        mia_zlib(toy_probes([[-1.0]]), holdout)
    with pytest.raises(ValueError, match="grad_norms"):
        mia_gradnorm(toy_probes([[-1.0]]), holdout)


# ----------------------------------------------------------------------------------------- PrivLeak


def test_privleak_in_muse_convention():
    # (auc_retain - auc_model) / (1 - auc_retain) * 100 == MUSE's (A_u - A_r) / A_r * 100 with A = 1 - AUC
    assert privleak(0.5, 0.5) == 0.0
    assert privleak(1.0, 0.5) == approx(-100.0)  # forget items stand out completely: full leak
    assert privleak(0.0, 0.5) == approx(100.0)  # they stand out the other way: over-unlearning
    assert privleak(0.75, 0.6) == approx((0.6 - 0.75) / 0.4 * 100)  # -37.5
    for a, r in [(0.75, 0.6), (0.3, 0.45), (0.999, 0.5228)]:
        a_muse, r_muse = 1 - a, 1 - r
        assert privleak(a, r) == approx((a_muse - r_muse) / r_muse * 100, 1e-9)
    # MUSE-News: retrained model's AUC_muse = 0.4772; a target model at AUC_muse = 0.4772 * 0.002 gives -99.8
    assert privleak(1 - 0.4772 * 0.002, 1 - 0.4772) == approx(-99.8, 1e-9)
    # MetricResults are accepted
    assert privleak(MetricResult(0.75, []), MetricResult(0.6, [])) == approx(-37.5)


def test_privleak_without_retain_auc_is_an_error():
    with pytest.raises(LetheError, match="retain model's MIA AUC"):
        privleak(0.9, None)
    with pytest.raises(LetheError, match="undefined"):
        privleak(0.9, 1.0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        privleak(1.2, 0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        privleak(0.5, float("nan"))


# --------------------------------------------------------------------------------------- extraction


HITS = [
    [True, True, True],  # EM 1,   ES 1          (k* = 0)
    [False, True, True],  # EM 2/3, ES 1 - 1/3   (k* = 1)
    [True, False, True, True],  # EM 3/4, ES 1 - 2/4   (k* = 2)
    [True, True, False],  # EM 2/3, ES 0         (k* = 3: the last token is wrong; open-unlearning: 1/3)
    [False, False],  # EM 0,   ES 0
    [False, True],  # EM 1/2, ES 1/2        (k* = 1)
]
EM = [1.0, 2 / 3, 3 / 4, 2 / 3, 0.0, 0.5]
ES = [1.0, 2 / 3, 0.5, 0.0, 0.0, 0.5]


def test_exact_memorization_and_extraction_strength_by_hand():
    # every position scored, the empty suffix allowed (Lethe's convention before; the defaults are
    # open-unlearning's: tests/test_reference_conventions.py)
    assert exact_memorization_values(HITS, keep_last=True).tolist() == approx(EM)
    assert extraction_strength_values(HITS, keep_last=True, allow_empty_suffix=True).tolist() == approx(ES)
    p = TokenProbes(logprobs=[np.zeros(len(h)) for h in HITS], mu=[], sigma=[], argmax_hit=[np.array(h) for h in HITS])
    em, es = exact_memorization(p, keep_last=True), extraction_strength(p, keep_last=True, allow_empty_suffix=True)
    assert em.per_sample == approx(EM) and em.value == approx(np.mean(EM))
    assert es.per_sample == approx(ES) and es.value == approx(np.mean(ES))
    assert extraction_strength_values([[1, 0, 1]], keep_last=True).tolist() == approx([1 / 3])  # 0/1 accepted
    with pytest.raises(ValueError, match="non-empty"):
        exact_memorization_values([[True], []])
    with pytest.raises(ValueError, match="keep_last"):
        exact_memorization_values([[True, True], [True]])  # one position: nothing left without the EOS
    with pytest.raises(ValueError, match="booleans"):
        extraction_strength_values([[0.5, 1.0]])


def test_registry_directions_and_levels():
    expect = {
        "mia_loss": False, "mia_zlib": False, "mia_min_k": False, "mia_min_k_plus_plus": False,
        "mia_reference": False, "mia_gradnorm": False, "privleak": True,
        "exact_memorization": True, "extraction_strength": True,
    }
    for name, higher in expect.items():
        spec = METRICS.get(name)
        assert spec.higher_is_better is higher, name
        assert spec.level == "aggregate", name  # they read TokenProbes, not SplitProbes
        assert spec.description.strip()


# ----------------------------------------------------------------------------- probes: a toy bigram

# rows are p(. | current token) over V = 3 tokens (as in tests/test_methods.py)
P = [[0.5, 0.25, 0.25],
     [0.25, 0.5, 0.25],
     [0.1, 0.1, 0.8]]


# (ids, n_prompt): the scored tokens are ids[n_prompt:], each predicted from the token before it
SEQS = [Sequence((0, 1, 2), 1), Sequence((2, 2), 1), Sequence((1, 1, 2, 2, 0), 2), Sequence((2, 2, 2), 1)]
PAD = 0


def expected(seq):
    pairs = [(seq.ids[t - 1], seq.ids[t]) for t in range(seq.n_prompt, len(seq.ids))]  # (current, next)
    lp = [LOG(P[a][b]) for a, b in pairs]
    ms = [vocab_mu_sigma(P[a]) for a, _ in pairs]
    hit = [int(np.argmax(P[a])) == b for a, b in pairs]
    return pairs, lp, [m for m, _ in ms], [s for _, s in ms], hit


@pytest.mark.parametrize("batch_size, chunk", [(1, None), (2, None), (64, None), (64, 4)])
def test_token_scores_on_a_bigram_by_hand(batch_size, chunk, monkeypatch):
    if chunk is not None:  # one position per log-softmax chunk: the chunked path gives the same numbers
        monkeypatch.setattr("lethe.probes_tokens._CHUNK_ELEMENTS", chunk)
    tp = token_scores(Bigram(P), SEQS, PAD, batch_size=batch_size)
    assert len(tp) == len(SEQS) and tp.ntokens.tolist() == [2, 1, 3, 2]
    for i, seq in enumerate(SEQS):
        _, lp, mu, sigma, hit = expected(seq)
        assert tp.logprobs[i].tolist() == approx(lp), i
        assert tp.mu[i].tolist() == approx(mu), i
        assert tp.sigma[i].tolist() == approx(sigma), i
        assert tp.argmax_hit[i].tolist() == hit, i
    # spelled out for the first sequence [0 | 1 2]: p(1|0) = 1/4, p(2|1) = 1/4; rows 0 and 1 both have
    # mu = -1.5 ln2, sigma = 0.5 ln2; argmax of row 0 is 0, of row 1 is 1: no hit
    assert tp.logprobs[0].tolist() == approx([LOG(0.25), LOG(0.25)])
    assert tp.mu[0].tolist() == approx([-1.5 * LN2] * 2) and tp.sigma[0].tolist() == approx([0.5 * LN2] * 2)
    assert tp.argmax_hit[3].tolist() == [True, True]  # [2 | 2 2]: 2 is row 2's argmax
    # Min-K%++ from the probe: [0 | 1 2] has z = -1 at both tokens
    assert min_k_plus_plus_scores(tp.logprobs[:1], tp.mu[:1], tp.sigma[:1]).tolist() == approx([-1.0])


def test_token_scores_sum_to_score_sequences_on_a_tiny_llama(tokenizer, tiny_model, encoder, forget_items):
    seqs = [encoder.qa(it.question, it.answer) for it in forget_items] + [encoder.text("The cat sat on the mat.")]
    tiny_model.eval()
    tp = token_scores(tiny_model, seqs, tokenizer.pad_token_id, batch_size=3)
    lp, nt = score_sequences(tiny_model, seqs, tokenizer.pad_token_id, batch_size=2)
    assert tp.ntokens.tolist() == nt.tolist()
    assert [float(x.sum()) for x in tp.logprobs] == pytest.approx(lp.tolist(), abs=1e-4)
    # vocabulary statistics against a direct full-softmax computation on one sequence
    s = seqs[0]
    with torch.no_grad():
        logits = tiny_model(input_ids=torch.tensor([s.ids])).logits[0].double()  # (T, V)
    logp = torch.log_softmax(logits, -1)[s.n_prompt - 1 : len(s.ids) - 1]  # rows predicting the answer
    mu = (logp.exp() * logp).sum(-1)
    sigma = ((logp.exp() * (logp - mu[:, None]) ** 2).sum(-1)).sqrt()
    assert tp.mu[0] == pytest.approx(mu.numpy(), abs=1e-4)
    assert tp.sigma[0] == pytest.approx(sigma.numpy(), abs=1e-4)
    assert tp.argmax_hit[0].tolist() == (logp.argmax(-1) == torch.tensor(s.ids[s.n_prompt :])).tolist()


# --------------------------------------------------------------------------------- gradient norms


def manual_grad_norm(seq) -> float:
    """d/dW of (1/n) sum_t -log softmax(W[a_t])[b_t] is (p_{a_t} - e_{b_t}) / n in row a_t."""
    pairs = [(seq.ids[t - 1], seq.ids[t]) for t in range(seq.n_prompt, len(seq.ids))]
    g = np.zeros((3, 3))
    for a, b in pairs:
        g[a] += (np.array(P[a]) - np.eye(3)[b]) / len(pairs)
    return float(np.linalg.norm(g))


def test_gradient_norms_by_hand_and_model_untouched():
    model = Bigram(P)
    W0 = model.W.detach().clone()
    model.W.grad = torch.full_like(model.W, 7.0)  # a stale gradient must survive untouched
    per_tensor = gradient_norms(model, SEQS, PAD, keep_last=True)
    assert [len(x) for x in per_tensor] == [1] * len(SEQS)  # one parameter tensor, W
    g = np.asarray([x[0] for x in per_tensor])
    assert g.tolist() == approx([manual_grad_norm(s) for s in SEQS])
    # the same through autograd on a fresh leaf
    W = W0.clone().requires_grad_(True)
    ids = SEQS[2].ids
    nll = -torch.stack([torch.log_softmax(W[ids[t - 1]], -1)[ids[t]] for t in range(2, len(ids))]).mean()
    (gW,) = torch.autograd.grad(nll, W)
    assert g[2] == approx(float(gW.norm()))
    assert torch.equal(model.W.detach(), W0)
    assert torch.equal(model.W.grad, torch.full_like(model.W, 7.0))
    assert gradnorm_scores(per_tensor).tolist() == approx((-g).tolist())


def test_gradient_norms_cover_trainable_parameters_only():
    model = Bigram(P, bias=True)  # logits W[a] + b: a second parameter tensor
    model.b.requires_grad_(False)  # frozen: not part of the norm
    (norms,) = gradient_norms(model, SEQS[:1], PAD, keep_last=True)
    assert norms.tolist() == approx([manual_grad_norm(SEQS[0])])
    model.W.requires_grad_(False)
    with pytest.raises(LetheError, match="trainable"):
        gradient_norms(model, SEQS[:1], PAD)
