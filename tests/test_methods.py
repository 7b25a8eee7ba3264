"""Methods: hand-computed loss values for every method on a toy bigram "model", and the registry
contract (finite loss, parameters move, forget NLL rises) on a tiny Llama that memorised its data."""
from __future__ import annotations

import math

import pytest
import torch

from lethe.data import Encoded, Encoder, UnlearnBatch
from lethe.errors import LetheError
from lethe.methods import METHODS, get_method
from lethe.ops import IGNORE
from lethe.probes import score_sequences
from lethe.reference import FrozenReference, PrecomputedReference
from lethe.train import TrainConfig, unlearn

from toy import Bigram

LOG = math.log
I = IGNORE


def logsigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x))


# --- a toy bigram "model": the next-token distribution depends only on the current token ----------
# rows are p(. | current token) over V = 3 tokens
P = [[0.5, 0.25, 0.25],
     [0.25, 0.5, 0.25],
     [0.1, 0.1, 0.8]]
Q = [[0.6, 0.3, 0.1],  # the reference's rows (for the KL retain term)
     [0.2, 0.2, 0.6],
     [0.3, 0.3, 0.4]]


def p(a: int, b: int, rows=P) -> float:
    """p(next = b | current = a)."""
    return rows[a][b]


def enc(ids, labels) -> Encoded:
    ids = torch.tensor(ids)
    att = (torch.tensor(labels) != -1).long()  # all ones: padding is marked with IGNORE labels only
    return Encoded(ids, att, torch.tensor(labels))


# forget: seq a = [0 | 1 2] (prompt 0, answer 1 2), seq b = [2 | 2] + a pad
FORGET = enc([[0, 1, 2], [2, 2, 0]], [[I, 1, 2], [I, 2, I]])
LP_F = [LOG(p(0, 1)) + LOG(p(1, 2)), LOG(p(2, 2))]  # summed answer log-probs
N_F = [2, 1]
NLL_F = [-lp / n for lp, n in zip(LP_F, N_F)]
# retain (paired with the forget rows): [1 | 0 0] and [0 | 2 1]
RETAIN = enc([[1, 0, 0], [0, 2, 1]], [[I, 0, 0], [I, 2, 1]])
LP_R = [LOG(p(1, 0)) + LOG(p(0, 0)), LOG(p(0, 2)) + LOG(p(2, 1))]
NLL_R = [-lp / 2 for lp in LP_R]
# IDK answers to the forget questions: [0 | 2 2] and [2 | 0 0]
FORGET_IDK = enc([[0, 2, 2], [2, 0, 0]], [[I, 2, 2], [I, 0, 0]])
NLL_FI = [-(LOG(p(0, 2)) + LOG(p(2, 2))) / 2, -(LOG(p(2, 0)) + LOG(p(0, 0))) / 2]
# IDK answers to the retain questions: [1 | 1 _] and [0 | 0 1]
RETAIN_IDK = enc([[1, 1, 0], [0, 0, 1]], [[I, 1, I], [I, 0, 1]])
LP_RI = [LOG(p(1, 1)), LOG(p(0, 0)) + LOG(p(0, 1))]

KEYS = ["a", "b"]


def batch() -> UnlearnBatch:
    return UnlearnBatch(forget=FORGET, retain=RETAIN, forget_idk=FORGET_IDK, retain_idk=RETAIN_IDK, forget_keys=KEYS)


def run(name, options=None, ref=None, model=None):
    spec = get_method(name)
    cfg = spec.make_config(options)
    loss, stats = spec.loss(model or Bigram(P), batch(), ref, cfg)
    assert loss.shape == (2,) and loss.requires_grad
    return loss.tolist(), stats


def kl_u(row) -> float:
    """KL(U || p) = sum_v (1/V)(log(1/V) - log p_v)."""
    return sum((1 / len(row)) * (LOG(1 / len(row)) - LOG(pv)) for pv in row)


def kl(r_ref, r_model) -> float:
    return sum(a * LOG(a / b) for a, b in zip(r_ref, r_model))


def approx(x):
    return pytest.approx(x, abs=1e-5)


def test_ga_is_minus_mean_answer_nll():
    loss, stats = run("ga")
    assert loss == approx([-NLL_F[0], -NLL_F[1]])
    assert loss == approx([(LOG(0.25) + LOG(0.25)) / 2, LOG(0.8)])  # the same, spelled out
    assert stats["forget_nll"] == approx(sum(NLL_F) / 2)
    # with a retain term
    loss, _ = run("ga", {"retain": "nll", "alpha": 0.5})
    assert loss == approx([-NLL_F[i] + 0.5 * NLL_R[i] for i in range(2)])


def test_grad_diff():
    loss, stats = run("grad_diff", {"alpha": 2.0})
    assert loss == approx([-NLL_F[i] + 2.0 * NLL_R[i] for i in range(2)])
    assert stats["retain_loss"] == approx(sum(NLL_R) / 2)
    loss, _ = run("grad_diff", {"retain": "none"})
    assert loss == approx([-NLL_F[0], -NLL_F[1]])


@pytest.mark.parametrize("beta", [0.1, 0.5, 2.0])
def test_npo_with_two_over_beta_factor(beta):
    ref_lp = {("forget", "a"): -1.0, ("forget", "b"): -0.5}
    loss, stats = run("npo", {"beta": beta, "alpha": 0.5}, ref=PrecomputedReference(ref_lp))
    expected = []
    for i, k in enumerate(KEYS):
        ratio = LP_F[i] - ref_lp[("forget", k)]
        expected.append(-(2 / beta) * logsigmoid(-beta * ratio) + 0.5 * NLL_R[i])
    assert loss == approx(expected)
    assert stats["log_ratio"] == approx((LP_F[0] + 1.0 + LP_F[1] + 0.5) / 2)


def test_npo_at_reference_is_two_over_beta_log_two():
    # pi_theta = pi_ref: log sigmoid(0) = -log 2, so the forget term is (2/beta) log 2
    ref = PrecomputedReference({("forget", "a"): LP_F[0], ("forget", "b"): LP_F[1]})
    loss, _ = run("npo", {"beta": 0.25, "retain": "none"}, ref=ref)
    assert loss == approx([8 * LOG(2), 8 * LOG(2)])


def test_me_is_gamma_kl_uniform_plus_retain():
    loss, stats = run("me", {"gamma": 0.3, "alpha": 2.0})
    # answer tokens of seq a are predicted after tokens 0 and 1; of seq b after token 2
    forget = [(kl_u(P[0]) + kl_u(P[1])) / 2, kl_u(P[2])]
    assert loss == approx([0.3 * forget[i] + 2.0 * NLL_R[i] for i in range(2)])
    assert stats["forget_kl_uniform"] == approx(sum(forget) / 2)


def test_me_is_zero_for_a_uniform_model_without_retain():
    loss, _ = run("me", {"retain": "none"}, model=Bigram([[1 / 3] * 3] * 3))
    assert loss == approx([0.0, 0.0])


def test_idk_is_idk_nll_plus_retain():
    loss, stats = run("idk", {"alpha": 0.5})
    assert loss == approx([NLL_FI[i] + 0.5 * NLL_R[i] for i in range(2)])
    assert stats["idk_nll"] == approx(sum(NLL_FI) / 2)


@pytest.mark.parametrize("beta", [0.1, 1.0])
def test_idk_with_answer_preservation(beta):
    loss, _ = run("idk", {"retain": "ap", "beta": beta, "alpha": 1.0})
    ap = [-(1 / beta) * logsigmoid(beta * (LP_R[i] - LP_RI[i])) for i in range(2)]
    assert loss == approx([NLL_FI[i] + ap[i] for i in range(2)])


def test_kl_retain_is_kl_ref_to_model_over_answer_tokens():
    ref = FrozenReference(Bigram(Q))
    loss, stats = run("kl", {"alpha": 2.0}, ref=ref)
    # retain answers are predicted after tokens (1, 0) and (0, 2)
    kl_r = [(kl(Q[1], P[1]) + kl(Q[0], P[0])) / 2, (kl(Q[0], P[0]) + kl(Q[2], P[2])) / 2]
    assert loss == approx([-NLL_F[i] + 2.0 * kl_r[i] for i in range(2)])
    assert stats["retain_loss"] == approx(sum(kl_r) / 2)
    # KL(ref || model), not KL(model || ref)
    reverse = [(kl(P[1], Q[1]) + kl(P[0], Q[0])) / 2, (kl(P[0], Q[0]) + kl(P[2], Q[2])) / 2]
    assert loss != approx([-NLL_F[i] + 2.0 * reverse[i] for i in range(2)])


def test_kl_retain_is_zero_when_model_equals_reference():
    loss, _ = run("kl", ref=FrozenReference(Bigram(P)))
    assert loss == approx([-NLL_F[0], -NLL_F[1]])


def test_npo_with_kl_retain():
    ref_lp = {("forget", "a"): -1.0, ("forget", "b"): -0.5}

    class Both(FrozenReference, PrecomputedReference):
        def __init__(self):
            FrozenReference.__init__(self, Bigram(Q))
            self.table = ref_lp

    loss, _ = run("npo", {"beta": 1.0, "retain": "kl"}, ref=Both())
    kl_r = [(kl(Q[1], P[1]) + kl(Q[0], P[0])) / 2, (kl(Q[0], P[0]) + kl(Q[2], P[2])) / 2]
    exp = [-2 * logsigmoid(-(LP_F[i] - ref_lp[("forget", k)])) + kl_r[i] for i, k in enumerate(KEYS)]
    assert loss == approx(exp)


def test_ga_gradient_is_minus_nll_gradient():
    m1, m2 = Bigram(P), Bigram(P)
    loss, _ = get_method("ga").loss(m1, batch(), None, get_method("ga").make_config())
    loss.sum().backward()
    from lethe.ops import sequence_nll

    nll = sequence_nll(m2(FORGET.input_ids).logits, FORGET.labels)
    nll.sum().backward()
    assert torch.allclose(m1.W.grad, -m2.W.grad)
    assert m1.W.grad.abs().sum() > 0


# --- specs and configs ------------------------------------------------------------------------------

def test_registry_metadata():
    assert set(METHODS) >= {"ga", "grad_diff", "npo", "idk", "me", "kl"}
    npo = get_method("npo")
    assert npo.ref_kind(npo.make_config()) == "logprobs"
    assert npo.ref_kind(npo.make_config({"retain": "kl"})) == "logits"
    assert get_method("kl").ref_kind(get_method("kl").make_config()) == "logits"
    assert get_method("ga").ref_kind(get_method("ga").make_config()) == "none"
    idk = get_method("idk")
    assert idk.parts(idk.make_config({"retain": "ap"})) == {"forget_idk", "retain", "retain_idk"}
    assert get_method("ga").parts(get_method("ga").make_config()) == frozenset()
    assert "retain" in get_method("grad_diff").parts(get_method("grad_diff").make_config())


@pytest.mark.parametrize("name,options,needle", [
    ("npo", {"beta": 0.0}, "beta"),
    ("npo", {"retain": "kll"}, "kll"),
    ("ga", {"alpha": -1.0}, "alpha"),
    ("me", {"gamma": -0.1}, "gamma"),
    ("idk", {"beta": -1.0}, "beta"),
    ("npo", {"betta": 0.1}, "betta"),
    ("npo", {"beta": "high"}, "beta"),
])
def test_bad_options_raise(name, options, needle):
    with pytest.raises(LetheError, match=needle):
        get_method(name).make_config(options)


def test_int_option_is_accepted_for_float_field():
    cfg = get_method("npo").make_config({"beta": 1})
    assert cfg.beta == 1.0 and isinstance(cfg.beta, float)


# --- contract: every registered method unlearns on a tiny Llama -------------------------------------

# RMU trains whole layers ℓ-2..ℓ on a model this shallow (its miniature recipe), as the contract needs to move a
# memorised answer in two steps; said here too, so that the contract does not hang on that default
CONTRACT_OPTIONS = {"rmu": {"param_pattern": "*"}}

# inference-time methods change no weights (tests/test_inference.py holds their contract); training-time ones
# (sisa) train their own models from the built-in base model (tests/test_sisa.py)
CASES = [(m, CONTRACT_OPTIONS.get(m, {})) for m in METHODS
         if METHODS.get(m).kind not in ("inference", "training-time")] + [
    ("npo", {"retain": "kl"}),
    ("npo", {"retain": "none"}),
    ("ga", {"retain": "nll"}),
    ("me", {"retain": "kl"}),
    ("idk", {"retain": "ap"}),
]


def _nll(model, seqs, pad):
    lp, n = score_sequences(model, seqs, pad)
    return -(lp / n)


@pytest.mark.parametrize("name,options", CASES, ids=[f"{m}-{o.get('retain', 'default')}" for m, o in CASES])
def test_contract_every_method(name, options, memorised_model, tokenizer, forget_items, retain_items, idk_answer):
    model = memorised_model
    enc = Encoder(tokenizer)
    pad = tokenizer.pad_token_id
    forget_seqs = [enc.qa(it.question, it.answer) for it in forget_items]
    idk_seqs = [enc.qa(it.question, idk_answer) for it in forget_items]
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    nll_f0, nll_idk0 = _nll(model, forget_seqs, pad), _nll(model, idk_seqs, pad)
    assert nll_f0.mean() < 0.5  # the fixture really memorised the answers

    cfg = TrainConfig(lr=1e-2, epochs=1, batch_size=2, max_steps=4, warmup_ratio=0.0, scheduler="constant")
    model, stats = unlearn(model, tokenizer, name, forget_items, retain_items, cfg, options=options,
                           idk_answers=[idk_answer])
    assert stats.steps == 2  # one epoch of 4 forget items at 2 per step
    assert len(stats.losses) == 2 and all(math.isfinite(x) for x in stats.losses)
    moved = [k for k, v in model.named_parameters() if not torch.equal(v.detach(), before[k])]
    if name == "rmu":  # RMU trains a parameter subset by design (its setup selects it): layer 0 here
        assert 0 < stats.trainable_params < stats.total_params and moved and all(".layers.0." in k for k in moved)
    else:
        assert stats.trainable_params == stats.total_params > 0
        assert len(moved) >= len(before) // 2, f"only {moved} moved"

    nll_f1, nll_idk1 = _nll(model, forget_seqs, pad), _nll(model, idk_seqs, pad)
    if "forget_idk" in get_method(name).parts(get_method(name).make_config(options)):
        assert nll_idk1.mean() < nll_idk0.mean() - 1.0  # the refusal is being learnt (idk, dpo, safe_unlearning)
    if name != "idk":  # plain IDK fine-tuning teaches the refusal; it need not lower the true answer in 2 steps
        assert nll_f1.mean() > nll_f0.mean() + 0.5  # the memorised answers are forgotten


# --- contract: LoRA and determinism for every method that trains ----------------------------------

TRAINING = [m for m in METHODS if METHODS.get(m).kind in ("loss", "procedure")]


@pytest.mark.parametrize("name", TRAINING)
def test_contract_lora_and_determinism(name, make_tiny, tokenizer, forget_items, retain_items, idk_answer):
    """With train.lora only adapter weights change (for RMU: within its layer subset), the loss stays
    finite, and the same seed gives bit-identical weights."""
    cfg = TrainConfig(lr=1e-2, epochs=1, batch_size=2, warmup_ratio=0.0, lora=True, lora_r=2, lora_alpha=4, seed=5)
    options = CONTRACT_OPTIONS.get(name, {})
    runs = []
    for _ in range(2):
        model, stats = unlearn(make_tiny(tokenizer), tokenizer, name, forget_items, retain_items, cfg,
                               options=options, idk_answers=[idk_answer])
        assert all(math.isfinite(x) for x in stats.losses)
        runs.append({k: v.detach().clone() for k, v in model.named_parameters()})
    a, b = runs
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    base = {k: v for k, v in make_tiny(tokenizer).named_parameters()}
    if name == "task_vector":  # the LoRA task vector is merged, then negated: a plain model whose weights moved
        assert a.keys() == base.keys() and any(not torch.equal(a[k], base[k].detach()) for k in a)
        return
    lora_b = [k for k in a if "lora_B" in k]
    assert lora_b and any(float(a[k].abs().max()) > 0 for k in lora_b)  # the adapter moved (B starts at 0)
    for k, v in a.items():  # base weights untouched
        if "lora_" not in k:
            orig = k.removeprefix("base_model.model.").replace(".base_layer", "")
            assert torch.equal(v, base[orig].detach()), (name, k)


# --- contract: the retain term does its job --------------------------------------------------------

WITH_RETAIN = [m for m in TRAINING
               if "retain" in {f.name for f in __import__("dataclasses").fields(METHODS.get(m).config)}]


@pytest.mark.parametrize("name", WITH_RETAIN)
def test_contract_retain_term_protects_retain_answers(name, memorised_model, tokenizer, forget_items, retain_items,
                                                      idk_answer):
    """Same steps, same seed: with the retain NLL term the retain answers end clearly more likely
    than without it (retain="none"); measured ratios are 0.04-0.7."""
    import copy

    enc = Encoder(tokenizer)
    pad = tokenizer.pad_token_id
    retain_seqs = [enc.qa(it.question, it.answer) for it in retain_items]
    cfg = TrainConfig(lr=1e-2, epochs=3, batch_size=2, warmup_ratio=0.0, scheduler="constant")
    options = dict(CONTRACT_OPTIONS.get(name, {}))
    nll = {}
    for retain in ("none", "nll"):
        model, _ = unlearn(copy.deepcopy(memorised_model), tokenizer, name, forget_items, retain_items, cfg,
                           options={**options, "retain": retain, "alpha": 1.0}, idk_answers=[idk_answer])
        nll[retain] = float(_nll(model, retain_seqs, pad).mean())
    assert nll["nll"] < 0.8 * nll["none"], nll
