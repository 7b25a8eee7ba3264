"""Methods SimNPO, WGA, SatImp and CE-U: hand-computed losses (and a few gradients) on a toy bigram
"model", and their option checks. The registry contract (finite loss, parameters move, forget NLL
rises on a tiny memorised Llama) runs for them in test_methods.py, parametrized over the registry.

The toy model is copied from test_methods.py (tests/ is not a package): the next-token distribution
depends only on the current token, so every expected value is a short sum over the table P.
"""
from __future__ import annotations

import math

import pytest
import torch

from lethe.data import Encoded, UnlearnBatch
from lethe.errors import LetheError
from lethe.methods import get_method
from lethe.methods.ce_u import _ce_u_target
from lethe.ops import IGNORE

from toy import Bigram

LOG = math.log
I = IGNORE

# rows are p(. | current token) over V = 3 tokens
P = [[0.5, 0.25, 0.25],
     [0.25, 0.5, 0.25],
     [0.1, 0.1, 0.8]]


def p(a: int, b: int) -> float:
    """p(next = b | current = a)."""
    return P[a][b]


def enc(ids, labels) -> Encoded:
    ids = torch.tensor(ids)
    return Encoded(ids, torch.ones_like(ids), torch.tensor(labels))


# forget: seq a = [0 | 1 2] (prompt 0, answer 1 2), seq b = [2 | 2] + a pad
FORGET = enc([[0, 1, 2], [2, 2, 0]], [[I, 1, 2], [I, 2, I]])
# per answer token: (current token, true next token)
STEPS_F = [[(0, 1), (1, 2)], [(2, 2)]]
NLL_F = [-(LOG(p(0, 1)) + LOG(p(1, 2))) / 2, -LOG(p(2, 2))]  # mean answer NLL per sequence
# retain (paired with the forget rows): [1 | 0 0] and [0 | 2 1]
RETAIN = enc([[1, 0, 0], [0, 2, 1]], [[I, 0, 0], [I, 2, 1]])
NLL_R = [-(LOG(p(1, 0)) + LOG(p(0, 0))) / 2, -(LOG(p(0, 2)) + LOG(p(2, 1))) / 2]


def batch(forget=FORGET) -> UnlearnBatch:
    return UnlearnBatch(forget=forget, retain=RETAIN, forget_keys=["a", "b"][: len(forget)])


def run(name, options=None, forget=FORGET, model=None):
    spec = get_method(name)
    cfg = spec.make_config(options)
    loss, stats = spec.loss(model or Bigram(P), batch(forget), None, cfg)
    assert loss.shape == (len(forget),) and loss.requires_grad
    assert all(isinstance(v, float) and math.isfinite(v) for v in stats.values())
    return loss.tolist(), stats


def logsigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x))


def approx(x):
    return pytest.approx(x, abs=1e-5)


# --- SimNPO ---------------------------------------------------------------------------------------

def simnpo_term(nll_avg: float, beta: float, delta: float) -> float:
    """-(2/beta) log sigmoid(-(beta/|y|) log pi(y|x) - beta*delta), with -(1/|y|) log pi = nll_avg."""
    return -(2 / beta) * logsigmoid(beta * (nll_avg - delta))


@pytest.mark.parametrize("beta,delta", [(2.5, 0.0), (0.5, 0.3), (4.5, 1.0)])
def test_simnpo_is_length_normalised_npo_without_reference(beta, delta):
    loss, stats = run("simnpo", {"beta": beta, "delta": delta, "gamma": 0.2, "alpha": 0.5})
    # seq a: (log 4 + log 4) / 2 = log 4 per token; seq b: -log 0.8
    assert NLL_F == approx([LOG(4), -LOG(0.8)])
    forget = [simnpo_term(NLL_F[i], beta, delta) for i in range(2)]
    assert loss == approx([0.2 * forget[i] + 0.5 * NLL_R[i] for i in range(2)])
    assert stats["forget_loss"] == approx(sum(forget) / 2)
    assert stats["forget_nll"] == approx(sum(NLL_F) / 2)
    assert stats["retain_loss"] == approx(sum(NLL_R) / 2)


def test_simnpo_defaults_are_the_papers_tofu_forget05_setting():
    loss, _ = run("simnpo")
    assert loss == approx([0.1375 * simnpo_term(NLL_F[i], 2.5, 0.0) + NLL_R[i] for i in range(2)])


def test_simnpo_at_the_margin_is_two_over_beta_log_two():
    # NLL_avg = delta: log sigmoid(0) = -log 2, so the forget term is (2/beta) log 2 (the 2/beta factor)
    loss, _ = run("simnpo", {"beta": 0.25, "delta": -LOG(0.8), "gamma": 1.0, "retain": "none"})
    assert loss[1] == approx(8 * LOG(2))


def test_simnpo_depends_on_answer_length_only_through_the_mean():
    # [2 | 2 2] has twice the summed NLL of [2 | 2] but the same per-token NLL: same SimNPO loss
    short = enc([[2, 2, 0]], [[I, 2, I]])
    long = enc([[2, 2, 2]], [[I, 2, 2]])
    opts = {"beta": 2.0, "gamma": 1.0, "retain": "none"}
    assert run("simnpo", opts, forget=long)[0] == approx(run("simnpo", opts, forget=short)[0])
    assert run("simnpo", opts, forget=short)[0] == approx([simnpo_term(-LOG(0.8), 2.0, 0.0)])


# --- WGA and SatImp: token-weighted gradient ascent -----------------------------------------------

def weighted_ga(weight) -> list[float]:
    """Per sequence: mean over answer tokens of weight(p_t) * log p_t."""
    return [sum(weight(p(a, b)) * LOG(p(a, b)) for a, b in steps) / len(steps) for steps in STEPS_F]


@pytest.mark.parametrize("beta", [0.5, 1.0, 3.0])
def test_wga_weights_each_token_by_its_probability_to_the_power_beta(beta):
    loss, stats = run("wga", {"beta": beta, "alpha": 2.0})
    forget = weighted_ga(lambda q: q ** beta)
    # seq a: 0.25^beta * log 0.25 twice; seq b: 0.8^beta * log 0.8
    assert forget == approx([0.25 ** beta * LOG(0.25), 0.8 ** beta * LOG(0.8)])
    assert loss == approx([forget[i] + 2.0 * NLL_R[i] for i in range(2)])
    assert stats["forget_loss"] == approx(sum(forget) / 2)
    assert stats["token_weight"] == approx((0.25 ** beta + 0.8 ** beta) / 2)


def test_wga_default_is_beta_one_with_nll_retain():
    loss, _ = run("wga")
    assert loss == approx([weighted_ga(lambda q: q)[i] + NLL_R[i] for i in range(2)])


@pytest.mark.parametrize("beta1,beta2", [(5.0, 1.0), (1.0, 2.0), (0.0, 1.0), (2.0, 0.0)])
def test_satimp_weight_is_saturation_times_importance(beta1, beta2):
    loss, stats = run("satimp", {"beta1": beta1, "beta2": beta2, "alpha": 0.5})
    forget = weighted_ga(lambda q: q ** beta1 * (1 - q) ** beta2)
    assert loss == approx([forget[i] + 0.5 * NLL_R[i] for i in range(2)])
    assert stats["token_weight"] == approx((0.25 ** beta1 * 0.75 ** beta2 + 0.8 ** beta1 * 0.2 ** beta2) / 2)


def test_satimp_defaults_beta1_5_beta2_1_and_a_tenth_of_the_retain_loss():
    loss, _ = run("satimp")
    assert loss == approx([weighted_ga(lambda q: q ** 5 * (1 - q))[i] + 0.1 * NLL_R[i] for i in range(2)])


@pytest.mark.parametrize("name,options", [
    ("wga", {"beta": 0.0}),
    ("satimp", {"beta1": 0.0, "beta2": 0.0}),
])
def test_reweighting_with_power_zero_is_plain_ga(name, options):
    loss, _ = run(name, {**options, "retain": "none"})
    ga, _ = run("ga")
    assert loss == approx(ga)
    assert loss == approx([-NLL_F[0], -NLL_F[1]])
    # the same gradients, too
    m1, m2 = Bigram(P), Bigram(P)
    spec = get_method(name)
    spec.loss(m1, batch(), None, spec.make_config({**options, "retain": "none"}))[0].sum().backward()
    get_method("ga").loss(m2, batch(), None, get_method("ga").make_config())[0].sum().backward()
    assert torch.allclose(m1.W.grad, m2.W.grad)


def test_wga_weight_is_detached():
    # seq b alone: d/dW[2] of w * log p(2|2), w = sg[p]^beta, is w * (onehot(2) - P[2])
    model = Bigram(P)
    spec = get_method("wga")
    loss, _ = spec.loss(model, batch(), None, spec.make_config({"beta": 1.0, "retain": "none"}))
    loss[1].backward()
    expected = [0.8 * (d - q) for d, q in zip([0, 0, 1], P[2])]  # [-0.08, -0.08, 0.16]
    assert model.W.grad[2].tolist() == approx(expected)
    assert model.W.grad[:2].abs().sum() == 0


# --- CE-U ----------------------------------------------------------------------------------------

def ce_u_token(cur: int, true: int) -> float:
    """H(q, p): q = p(. | cur) with the true token removed and renormalised."""
    row = P[cur]
    q = [0.0 if v == true else row[v] / (1 - row[true]) for v in range(3)]
    return -sum(qv * LOG(pv) for qv, pv in zip(q, row) if qv > 0)


def test_ce_u_target_puts_zero_mass_on_the_true_token():
    logits = torch.log(torch.tensor([P]))  # (1, 3, 3): one position per row of P
    targets = torch.tensor([[1, 2, 2]])
    q = _ce_u_target(logits, targets)
    assert q.shape == (1, 3, 3) and q.dtype == torch.float32
    assert q[0, 0].tolist() == approx([2 / 3, 0.0, 1 / 3])  # p(.|0) = [.5, .25, .25] without token 1
    assert q[0, 1].tolist() == approx([1 / 3, 2 / 3, 0.0])
    assert q[0, 2].tolist() == approx([0.5, 0.5, 0.0])
    assert q.sum(-1)[0].tolist() == approx([1.0, 1.0, 1.0])
    assert not q.requires_grad
    # exact even when the true token has all the mass in float32
    q = _ce_u_target(torch.tensor([[[0.0, 1.0, 200.0]]], requires_grad=True), torch.tensor([[2]]))
    assert q[0, 0].tolist() == approx([1 / (1 + math.e), math.e / (1 + math.e), 0.0])


def test_ce_u_is_cross_entropy_to_the_target_over_answer_tokens():
    loss, stats = run("ce_u", {"ignore_first": 0, "retain": "nll", "alpha": 0.5})
    forget = [(ce_u_token(0, 1) + ce_u_token(1, 2)) / 2, ce_u_token(2, 2)]
    # spelled out: seq b, q = [.5, .5, 0] against p = [.1, .1, .8]
    assert forget[1] == approx(-LOG(0.1))
    assert loss == approx([forget[i] + 0.5 * NLL_R[i] for i in range(2)])
    assert stats["forget_loss"] == approx(sum(forget) / 2)


def test_ce_u_default_skips_the_first_answer_token_and_has_no_retain_term():
    loss, _ = run("ce_u")
    # seq a keeps its second answer token only; seq b's single answer token is skipped
    assert loss == approx([ce_u_token(1, 2), 0.0])
    loss, _ = run("ce_u", {"ignore_first": 2})
    assert loss == approx([0.0, 0.0])


def test_ce_u_gradient_is_p_minus_q():
    model = Bigram(P)
    spec = get_method("ce_u")
    loss, _ = spec.loss(model, batch(), None, spec.make_config({"ignore_first": 0}))
    loss[1].backward()  # seq b: one token after 2, q = [.5, .5, 0]
    assert model.W.grad[2].tolist() == approx([0.1 - 0.5, 0.1 - 0.5, 0.8])


# --- specs and configs ----------------------------------------------------------------------------

def test_registry_metadata():
    for name in ("simnpo", "wga", "satimp", "ce_u"):
        spec = get_method(name)
        cfg = spec.make_config()
        assert spec.ref_kind(cfg) == "none"
        assert spec.family == "post-training / untargeted" and spec.paper
        assert spec.defaults["lr"] == 1e-5
        assert spec.ref_kind(spec.make_config({"retain": "kl"})) == "logits"
    assert "retain" in get_method("simnpo").parts(get_method("simnpo").make_config())
    assert get_method("ce_u").parts(get_method("ce_u").make_config()) == frozenset()


@pytest.mark.parametrize("name,options,needle", [
    ("simnpo", {"beta": 0.0}, "beta"),
    ("simnpo", {"beta": float("nan")}, "beta"),
    ("simnpo", {"delta": -0.5}, "delta"),
    ("simnpo", {"gamma": 0.0}, "gamma"),
    ("simnpo", {"retain": "kll"}, "kll"),
    ("simnpo", {"alpha": -1.0}, "alpha"),
    ("wga", {"beta": -1.0}, "beta"),
    ("wga", {"beta": float("inf")}, "beta"),
    ("wga", {"alpha": -0.1}, "alpha"),
    ("satimp", {"beta1": -1.0}, "beta1"),
    ("satimp", {"beta2": float("nan")}, "beta2"),
    ("satimp", {"retain": "bogus"}, "bogus"),
    ("ce_u", {"ignore_first": -1}, "ignore_first"),
    ("ce_u", {"ignore_first": 1.5}, "ignore_first"),
    ("ce_u", {"ignore_first": True}, "ignore_first"),
    ("ce_u", {"gamma": 1.0}, "gamma"),
])
def test_bad_options_raise(name, options, needle):
    with pytest.raises(LetheError, match=needle):
        get_method(name).make_config(options)
