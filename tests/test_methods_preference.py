"""Methods with a preference or distillation target: UNDIAL, DPO (IdkDPO) and Safe Unlearning.

Hand-computed loss values on a toy bigram "model" (the same toy as tests/test_methods.py, copied so the
two files stay independent), config checks and registry metadata. The registry contract (finite
loss, parameters move, forget NLL rises on a tiny Llama) runs in tests/test_methods.py for every method.
"""
from __future__ import annotations

import math

import pytest
import torch

from lethe.data import Encoded, UnlearnBatch
from lethe.errors import LetheError
from lethe.methods import get_method
from lethe.methods.undial import adjusted_target
from lethe.ops import IGNORE
from lethe.reference import FrozenReference, PrecomputedReference

from toy import Bigram

LOG = math.log
I = IGNORE


def logsigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x))


# --- the toy bigram "model": the next-token distribution depends only on the current token --------
# rows are p(. | current token) over V = 3 tokens
P = [[0.5, 0.25, 0.25],
     [0.25, 0.5, 0.25],
     [0.1, 0.1, 0.8]]
Q = [[0.6, 0.3, 0.1],  # the reference's rows
     [0.2, 0.2, 0.6],
     [0.3, 0.3, 0.4]]


def p(a: int, b: int, rows=P) -> float:
    """p(next = b | current = a)."""
    return rows[a][b]


def enc(ids, labels) -> Encoded:
    ids = torch.tensor(ids)
    return Encoded(ids, torch.ones_like(ids), torch.tensor(labels))


# forget: seq a = [0 | 1 2] (prompt 0, answer 1 2), seq b = [2 | 2] + a pad
FORGET = enc([[0, 1, 2], [2, 2, 0]], [[I, 1, 2], [I, 2, I]])
LP_F = [LOG(p(0, 1)) + LOG(p(1, 2)), LOG(p(2, 2))]  # summed answer log-probs
N_F = [2, 1]
NLL_F = [-lp / n for lp, n in zip(LP_F, N_F)]
# (current token, true next token) at the answer positions of each forget sequence
F_POS = [[(0, 1), (1, 2)], [(2, 2)]]
# retain (paired with the forget rows): [1 | 0 0] and [0 | 2 1]
RETAIN = enc([[1, 0, 0], [0, 2, 1]], [[I, 0, 0], [I, 2, 1]])
NLL_R = [-(LOG(p(1, 0)) + LOG(p(0, 0))) / 2, -(LOG(p(0, 2)) + LOG(p(2, 1))) / 2]
# IDK answers (refusals) to the forget questions: [0 | 2 2] and [2 | 0 0]
FORGET_IDK = enc([[0, 2, 2], [2, 0, 0]], [[I, 2, 2], [I, 0, 0]])
LP_FI = [LOG(p(0, 2)) + LOG(p(2, 2)), LOG(p(2, 0)) + LOG(p(0, 0))]
NLL_FI = [-lp / 2 for lp in LP_FI]

KEYS = ["a", "b"]


def batch() -> UnlearnBatch:
    return UnlearnBatch(forget=FORGET, retain=RETAIN, forget_idk=FORGET_IDK, forget_keys=KEYS)


def run(name, options=None, ref=None, model=None):
    spec = get_method(name)
    cfg = spec.make_config(options)
    loss, stats = spec.loss(model or Bigram(P), batch(), ref, cfg)
    assert loss.shape == (2,) and loss.requires_grad
    assert all(isinstance(v, float) for v in stats.values())
    return loss.tolist(), stats


def approx(x):
    return pytest.approx(x, abs=1e-5)


# --- UNDIAL ---------------------------------------------------------------------------------------

def undial_target(row, y: int, gamma: float) -> list[float]:
    """softmax(log row - gamma * onehot(y)) = row with row[y] scaled by exp(-gamma), renormalised."""
    w = [r * (math.exp(-gamma) if v == y else 1.0) for v, r in enumerate(row)]
    return [x / sum(w) for x in w]


def cross_entropy(q, row) -> float:
    return -sum(qv * LOG(pv) for qv, pv in zip(q, row))


def undial_expected(gamma: float, ref_rows, model_rows) -> list[float]:
    return [sum(cross_entropy(undial_target(ref_rows[a], y, gamma), model_rows[a]) for a, y in pos) / len(pos)
            for pos in F_POS]


def test_undial_target_for_one_position_by_hand():
    # reference row after token 0: [0.6, 0.3, 0.1]; true next token 1; gamma = log 3 divides its weight by 3:
    # [0.6, 0.1, 0.1] / 0.8 = [0.75, 0.125, 0.125]
    z = torch.log(torch.tensor([[Q[0]]]))  # (1, 1, 3)
    q = adjusted_target(z, torch.tensor([[1]]), LOG(3))
    assert q.dtype == torch.float32
    assert q[0, 0].tolist() == approx([0.75, 0.125, 0.125])
    assert undial_target(Q[0], 1, LOG(3)) == approx([0.75, 0.125, 0.125])


def test_undial_without_adjustment_at_the_reference_is_the_entropy():
    # gamma = 0 and model == reference: the target is the model itself, H(q, p) = H(p)
    def entropy(row):
        return -sum(x * LOG(x) for x in row)

    loss, stats = run("undial", {"gamma": 0.0}, ref=FrozenReference(Bigram(P)))
    expected = [(entropy(P[0]) + entropy(P[1])) / 2, entropy(P[2])]
    assert loss == approx(expected)
    assert stats["forget_nll"] == approx(sum(NLL_F) / 2)
    assert stats["target_p_true"] == approx(((p(0, 1) + p(1, 2)) / 2 + p(2, 2)) / 2)


def test_undial_at_the_reference_with_gamma_zero_is_a_stationary_point():
    model = Bigram(P)
    loss, _ = get_method("undial").loss(model, batch(), FrozenReference(Bigram(P)),
                                        get_method("undial").make_config({"gamma": 0.0}))
    loss.sum().backward()
    assert model.W.grad.abs().max() < 1e-6


@pytest.mark.parametrize("gamma", [1.0, 10.0])
def test_undial_distils_toward_the_adjusted_reference(gamma):
    loss, stats = run("undial", {"gamma": gamma}, ref=FrozenReference(Bigram(Q)))
    assert loss == approx(undial_expected(gamma, Q, P))
    assert stats["forget_loss"] == approx(sum(undial_expected(gamma, Q, P)) / 2)


def test_undial_with_large_gamma_removes_the_true_token_from_the_target():
    # gamma -> inf: the target is the reference with the true token's mass spread over the others
    loss, _ = run("undial", {"gamma": 60.0}, ref=FrozenReference(Bigram(Q)))
    q01 = [0.6 / 0.7, 0.0, 0.1 / 0.7]  # after token 0, true token 1 removed
    q12 = [0.2 / 0.4, 0.2 / 0.4, 0.0]  # after token 1, true token 2 removed
    q22 = [0.5, 0.5, 0.0]  # after token 2, true token 2 removed
    expected = [(cross_entropy(q01, P[0]) + cross_entropy(q12, P[1])) / 2, cross_entropy(q22, P[2])]
    assert loss == approx(expected)


def test_undial_with_retain_term():
    loss, _ = run("undial", {"gamma": 3.0, "retain": "nll", "alpha": 0.5}, ref=FrozenReference(Bigram(Q)))
    assert loss == approx([u + 0.5 * r for u, r in zip(undial_expected(3.0, Q, P), NLL_R)])


def test_undial_softmax_in_float32_under_bf16_logits():
    model, ref = Bigram(P, torch.bfloat16), FrozenReference(Bigram(Q, torch.bfloat16))
    spec = get_method("undial")
    loss, _ = spec.loss(model, batch(), ref, spec.make_config({"gamma": 1.0}))
    assert loss.dtype == torch.float32
    assert loss.tolist() == pytest.approx(undial_expected(1.0, Q, P), abs=2e-2)  # bf16 logits, fp32 maths


# --- DPO (IdkDPO) ---------------------------------------------------------------------------------

REF_LP = {("forget", "a"): -1.0, ("forget", "b"): -0.5, ("forget_idk", "a"): -4.0, ("forget_idk", "b"): -3.0}


@pytest.mark.parametrize("beta", [0.1, 0.5, 2.0])
def test_dpo_prefers_idk_over_the_true_answer(beta):
    loss, stats = run("dpo", {"beta": beta, "alpha": 0.5}, ref=PrecomputedReference(REF_LP))
    expected = []
    for i, k in enumerate(KEYS):
        win = LP_FI[i] - REF_LP[("forget_idk", k)]
        lose = LP_F[i] - REF_LP[("forget", k)]
        expected.append(-(2 / beta) * logsigmoid(beta * (win - lose)) + 0.5 * NLL_R[i])
    assert loss == approx(expected)
    assert stats["log_ratio_idk"] == approx((LP_FI[0] + 4.0 + LP_FI[1] + 3.0) / 2)
    assert stats["log_ratio_forget"] == approx((LP_F[0] + 1.0 + LP_F[1] + 0.5) / 2)
    assert stats["retain_loss"] == approx(sum(NLL_R) / 2)


def test_dpo_at_reference_is_two_over_beta_log_two():
    # pi_theta = pi_ref on both answers: log sigmoid(0) = -log 2, so the loss is (2/beta) log 2
    table = {("forget", k): LP_F[i] for i, k in enumerate(KEYS)}
    table.update({("forget_idk", k): LP_FI[i] for i, k in enumerate(KEYS)})
    loss, _ = run("dpo", {"beta": 0.25, "retain": "none"}, ref=PrecomputedReference(table))
    assert loss == approx([8 * LOG(2), 8 * LOG(2)])


def test_dpo_gradient_at_reference_is_log_prob_difference():
    # d/dtheta of -(2/beta) log sigmoid(beta * d) at d = 0 is -grad(d): the same for every beta
    table = {("forget", k): LP_F[i] for i, k in enumerate(KEYS)}
    table.update({("forget_idk", k): LP_FI[i] for i, k in enumerate(KEYS)})
    spec = get_method("dpo")
    m1, m2 = Bigram(P), Bigram(P)
    loss, _ = spec.loss(m1, batch(), PrecomputedReference(table), spec.make_config({"beta": 0.3, "retain": "none"}))
    loss.sum().backward()
    from lethe.ops import sequence_logprob

    lp_f, _ = sequence_logprob(m2(FORGET.input_ids).logits, FORGET.labels)
    lp_fi, _ = sequence_logprob(m2(FORGET_IDK.input_ids).logits, FORGET_IDK.labels)
    (lp_f - lp_fi).sum().backward()
    assert torch.allclose(m1.W.grad, m2.W.grad, atol=1e-6)
    assert m1.W.grad.abs().sum() > 0


# --- Safe Unlearning ------------------------------------------------------------------------------

@pytest.mark.parametrize("beta,gamma,theta,alpha", [(1.0, 0.3, 0.5, 1.0), (0.5, 1.0, 2.0, 0.25)])
def test_safe_unlearning_is_length_normalised_npo_plus_refusal_plus_helpful(beta, gamma, theta, alpha):
    ref = PrecomputedReference({("forget", "a"): -1.0, ("forget", "b"): -0.5})
    loss, stats = run("safe_unlearning", {"beta": beta, "gamma": gamma, "theta": theta, "alpha": alpha}, ref=ref)
    ref_lp = [-1.0, -0.5]
    expected = []
    for i in range(2):
        log_ratio = (LP_F[i] - ref_lp[i]) / N_F[i]  # per-token: both log-probs divided by the answer length
        expected.append(-gamma * logsigmoid(-beta * log_ratio) + theta * NLL_FI[i] + alpha * NLL_R[i])
    assert loss == approx(expected)
    assert stats["log_ratio"] == approx(((LP_F[0] + 1.0) / 2 + (LP_F[1] + 0.5)) / 2)
    assert stats["refusal_nll"] == approx(sum(NLL_FI) / 2)
    assert stats["retain_loss"] == approx(sum(NLL_R) / 2)


def test_safe_unlearning_at_reference_defaults():
    # at the reference the NPO term is log 2 (no 2/beta factor): 0.3 log 2 + 0.5 NLL(refusal) + NLL(helpful)
    ref = PrecomputedReference({("forget", k): LP_F[i] for i, k in enumerate(KEYS)})
    loss, _ = run("safe_unlearning", ref=ref)
    assert loss == approx([0.3 * LOG(2) + 0.5 * NLL_FI[i] + NLL_R[i] for i in range(2)])
    # without the retain term only the helpful-answer NLL goes: the unlearning and refusal terms stay
    loss, _ = run("safe_unlearning", {"retain": "none"}, ref=ref)
    assert loss == approx([0.3 * LOG(2) + 0.5 * NLL_FI[i] for i in range(2)])


# --- specs and configs ----------------------------------------------------------------------------

def test_registry_metadata():
    undial, dpo, su = get_method("undial"), get_method("dpo"), get_method("safe_unlearning")
    assert undial.ref_kind(undial.make_config()) == "logits"
    assert undial.parts(undial.make_config()) == frozenset()
    assert undial.parts(undial.make_config({"retain": "nll"})) == {"retain"}
    assert dpo.ref_kind(dpo.make_config()) == "logprobs"
    assert dpo.ref_kind(dpo.make_config({"retain": "kl"})) == "logits"
    assert dpo.parts(dpo.make_config()) == {"forget_idk", "retain"}
    assert dpo.parts(dpo.make_config({"retain": "none"})) == {"forget_idk"}
    assert su.ref_kind(su.make_config()) == "logprobs"
    assert su.parts(su.make_config()) == {"forget_idk", "retain"}
    assert su.parts(su.make_config({"retain": "none"})) == {"forget_idk"}
    assert su.ref_kind(su.make_config({"retain": "kl"})) == "logits"
    assert (undial.family, dpo.family, su.family) == (
        "post-training / untargeted", "post-training / targeted", "post-training / safety")
    cfg = su.make_config()
    assert (cfg.beta, cfg.gamma, cfg.theta, cfg.alpha, cfg.retain) == (1.0, 0.3, 0.5, 1.0, "nll")
    assert (dpo.make_config().beta, undial.make_config().gamma) == (0.1, 10.0)


@pytest.mark.parametrize("name,options,needle", [
    ("undial", {"gamma": -1.0}, "gamma"),
    ("undial", {"alpha": -1.0}, "alpha"),
    ("undial", {"retain": "kll"}, "kll"),
    ("undial", {"beta": 10.0}, "beta"),  # open-unlearning's name for gamma: unknown here
    ("dpo", {"beta": 0.0}, "beta"),
    ("dpo", {"beta": -0.1}, "beta"),
    ("dpo", {"alpha": -1.0}, "alpha"),
    ("dpo", {"retain": "gd"}, "gd"),
    ("safe_unlearning", {"beta": 0.0}, "beta"),
    ("safe_unlearning", {"gamma": -0.3}, "gamma"),
    ("safe_unlearning", {"theta": -0.5}, "theta"),
    ("safe_unlearning", {"theta": "high"}, "theta"),
    ("safe_unlearning", {"alpha": -1.0}, "alpha"),
    ("safe_unlearning", {"retain": "sft"}, "sft"),
])
def test_bad_options_raise(name, options, needle):
    with pytest.raises(LetheError, match=needle):
        get_method(name).make_config(options)
