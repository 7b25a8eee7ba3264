"""Stateful methods (a ``setup`` before training): AltPO (RMU's tests are in test_rmu.py).

AltPO: the loss by hand on toy log-probs (a bigram model, as in test_methods.py); the setup's
alternatives (one per item, never the true answer, deterministic), with the generation cleaned and
the fallback exercised.
"""
from __future__ import annotations

import copy
import math

import pytest
import torch

from lethe.benchmarks.base import QAItem
from lethe.data import Encoded, UnlearnBatch
from lethe.errors import LetheError
from lethe.methods import MethodState, SetupContext, get_method
from lethe.methods.altpo import INSTRUCTION, clean_generation
from lethe.ops import IGNORE
from lethe.reference import PrecomputedReference
from lethe.train import TrainConfig, unlearn

from toy import Bigram

I = IGNORE
LOG = math.log


def approx(x):
    return pytest.approx(x, abs=1e-5)


def logsigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x))


def enc(ids, labels, att=None) -> Encoded:
    att = att if att is not None else [[1] * len(row) for row in ids]
    return Encoded(torch.tensor(ids), torch.tensor(att), torch.tensor(labels))


def setup_ctx(model, tokenizer, forget, retain, name, options=None, seed=0):
    cfg = get_method(name).make_config(options)
    return SetupContext(model, tokenizer, forget, retain, cfg, TrainConfig(seed=seed), "cpu")


# --- AltPO: toy log-probs from a bigram "model" (as in test_methods.py) -------------------------------
P = [[0.5, 0.25, 0.25],
     [0.25, 0.5, 0.25],
     [0.1, 0.1, 0.8]]


def p(a: int, b: int) -> float:
    return P[a][b]


FORGET = enc([[0, 1, 2], [2, 2, 0]], [[I, 1, 2], [I, 2, I]])  # answers (1 2) after 0, (2) after 2
LP_F = [LOG(p(0, 1)) + LOG(p(1, 2)), LOG(p(2, 2))]
ALT = enc([[0, 0, 2], [2, 1, 1]], [[I, 0, 2], [I, 1, 1]])  # alternatives (0 2) after 0, (1 1) after 2
LP_A = [LOG(p(0, 0)) + LOG(p(0, 2)), LOG(p(2, 1)) + LOG(p(1, 1))]
NLL_A = [-lp / 2 for lp in LP_A]
RETAIN = enc([[1, 0, 0], [0, 2, 1]], [[I, 0, 0], [I, 2, 1]])
NLL_R = [-(LOG(p(1, 0)) + LOG(p(0, 0))) / 2, -(LOG(p(0, 2)) + LOG(p(2, 1))) / 2]
KEYS = ["a", "b"]
REF = {("forget", "a"): -1.0, ("forget", "b"): -0.5, ("forget_alt", "a"): -4.0, ("forget_alt", "b"): -3.0}


def altpo_run(options=None, table=None):
    spec = get_method("altpo")
    cfg = spec.make_config(options)
    batch = UnlearnBatch(forget=FORGET, retain=RETAIN, forget_keys=KEYS, forget_alt=ALT)
    loss, stats = spec.loss(Bigram(P), batch, PrecomputedReference(table or REF), cfg, MethodState())
    assert loss.shape == (2,) and loss.requires_grad
    return loss.tolist(), stats


@pytest.mark.parametrize("beta", [0.1, 0.5, 2.0])
def test_altpo_is_dpo_of_alternative_over_true_answer_plus_retain(beta):
    loss, stats = altpo_run({"beta": beta, "alpha": 0.5})
    expected = []
    for i, k in enumerate(KEYS):
        win = LP_A[i] - REF[("forget_alt", k)]
        lose = LP_F[i] - REF[("forget", k)]
        expected.append(-(2 / beta) * logsigmoid(beta * (win - lose)) + 0.5 * NLL_R[i])
    assert loss == approx(expected)
    assert stats["log_ratio_alt"] == approx((LP_A[0] + 4.0 + LP_A[1] + 3.0) / 2)
    assert stats["log_ratio_forget"] == approx((LP_F[0] + 1.0 + LP_F[1] + 0.5) / 2)
    assert stats["alt_nll"] == approx(sum(NLL_A) / 2)


def test_altpo_at_the_reference_is_two_over_beta_log_two():
    table = {("forget", "a"): LP_F[0], ("forget", "b"): LP_F[1], ("forget_alt", "a"): LP_A[0], ("forget_alt", "b"): LP_A[1]}
    loss, _ = altpo_run({"beta": 0.25, "retain": "none"}, table)
    assert loss == approx([8 * LOG(2), 8 * LOG(2)])


def test_altpo_npo_nll_variant():
    beta = 0.5
    loss, _ = altpo_run({"forget_loss": "npo_nll", "beta": beta, "alpha": 2.0})
    expected = [NLL_A[i] - (2 / beta) * logsigmoid(-beta * (LP_F[i] - REF[("forget", k)])) + 2.0 * NLL_R[i]
                for i, k in enumerate(KEYS)]
    assert loss == approx(expected)


@pytest.mark.parametrize("options,needle", [
    ({"beta": 0.0}, "beta"),
    ({"forget_loss": "ipo"}, "forget_loss"),
    ({"alternatives": "idk"}, "alternatives"),
    ({"max_new_tokens": -1}, "max_new_tokens"),
    ({"retain": "kll"}, "kll"),
    ({"alpha": -1.0}, "alpha"),
])
def test_altpo_bad_options_raise(options, needle):
    with pytest.raises(LetheError, match=needle):
        get_method("altpo").make_config(options)


def test_altpo_registry_entry():
    spec = get_method("altpo")
    cfg = spec.make_config()
    assert spec.setup is not None and spec.ref_kind(cfg) == "logprobs"
    assert spec.parts(cfg) == {"forget_alt", "retain"}
    rmu = get_method("rmu")
    assert rmu.setup is not None and rmu.ref_kind(rmu.make_config()) == "logits" and rmu.parts(rmu.make_config()) == {"retain"}


# --- AltPO setup: alternatives ---------------------------------------------------------------------

FACT_ITEMS = [
    QAItem("f1", "Where was Alice Moon born?", "Alice Moon was born in Paris.", fact="birth"),
    QAItem("f2", "What does Alice Moon write?", "Alice Moon writes poems about the sea.", fact="writes"),
    QAItem("f3", "Where was Bruno Vale born?", "Bruno Vale was born in Lima.", fact="birth"),
    QAItem("f4", "What does Bruno Vale write?", "Bruno Vale writes novels about trains.", fact="writes"),
]


@pytest.fixture()
def roomy_model(tokenizer):
    """A tiny Llama with room for the instruction prompt (the shared tiny model has 128 positions)."""
    from lethe.models import tiny_llama

    return tiny_llama(len(tokenizer), hidden_size=32, num_layers=1, num_heads=2, max_positions=512,
                      bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                      pad_token_id=tokenizer.pad_token_id)


def test_clean_generation():
    assert clean_generation(" Alternate Answer : Born in Rome.\nQuestion: next?") == "Born in Rome."
    assert clean_generation("alternative answer: x Q: y") == "x"
    assert clean_generation("\n") == ""


def test_altpo_setup_cleans_generations_and_falls_back(monkeypatch, tokenizer, roomy_model, retain_items):
    replies = {  # by forget item: usable, empty, the true answer, the true answer re-cased
        "f1": "Alternate Answer : Alice Moon was born in Rome.\nQuestion: Where else?",
        "f2": "",
        "f3": "Bruno Vale was born in Lima.",
        "f4": "  bruno vale writes novels about trains!",
    }
    seen = {}

    def fake_generate(model, tok, questions, max_new_tokens, batch_size=64, encoder=None):
        seen["training"] = model.training
        seen["questions"] = questions
        return [replies[it.id] for it in FACT_ITEMS]

    monkeypatch.setattr("lethe.probes.generate", fake_generate)
    roomy_model.train()
    spec = get_method("altpo")
    options = {"max_new_tokens": 16, "alternatives": "generate"}  # "auto" would not generate with a tiny model
    state = spec.setup(setup_ctx(roomy_model, tokenizer, FACT_ITEMS, retain_items, "altpo", options))
    assert seen["training"] is False and roomy_model.training  # generated in eval mode, the mode restored
    assert seen["questions"][0] == INSTRUCTION.format(question=FACT_ITEMS[0].question, answer=FACT_ITEMS[0].answer)
    alts = state.forget_alt
    assert alts[0] == "Alice Moon was born in Rome."
    assert state.data["fallback"] == ["f2", "f3", "f4"] and state.data["generated"] == 1
    # the fallback takes another forget item's answer to the same fact
    assert alts[1:] == [FACT_ITEMS[3].answer, FACT_ITEMS[0].answer, FACT_ITEMS[1].answer]
    again = spec.setup(setup_ctx(roomy_model, tokenizer, FACT_ITEMS, retain_items, "altpo", options))
    assert again.forget_alt == alts


def test_altpo_setup_with_a_real_generation(tokenizer, roomy_model, forget_items, retain_items):
    # teach the tiny model to answer the authors' instruction: with an alternative for item 1, with the
    # true answer (which the setup must reject) for item 2
    from lethe.data import Encoder
    from lethe.train import finetune

    enc = Encoder(tokenizer)
    f1, f2 = forget_items[:2]
    seqs = [enc.qa(INSTRUCTION.format(question=f1.question, answer=f1.answer), "Alternate Answer : Alice Moon was born in Rome."),
            enc.qa(INSTRUCTION.format(question=f2.question, answer=f2.answer), f2.answer)]
    model, _ = finetune(roomy_model, tokenizer, seqs, TrainConfig(lr=1e-2, epochs=60, batch_size=2, warmup_ratio=0.0,
                                                                  scheduler="constant", weight_decay=0.0))
    spec = get_method("altpo")
    s1 = spec.setup(setup_ctx(model, tokenizer, forget_items, retain_items, "altpo", {"alternatives": "generate"}))
    s2 = spec.setup(setup_ctx(model, tokenizer, forget_items, retain_items, "altpo", {"alternatives": "generate"}))
    assert s1.forget_alt == s2.forget_alt and len(s1.forget_alt) == len(forget_items)
    assert s1.forget_alt[0] == "Alice Moon was born in Rome."  # generated, the echoed label stripped
    assert "f2" in s1.data["fallback"] and "f1" not in s1.data["fallback"]
    for it, alt in zip(forget_items, s1.forget_alt):
        assert alt.strip() and alt.strip(" .").lower() != it.answer.strip(" .").lower()


def test_altpo_auto_does_not_generate_with_a_tiny_model(monkeypatch, tokenizer, roomy_model, forget_items,
                                                       retain_items):
    def no_generation(*args, **kwargs):
        raise AssertionError("generate() called")

    monkeypatch.setattr("lethe.probes.generate", no_generation)
    state = get_method("altpo").setup(setup_ctx(roomy_model, tokenizer, forget_items, retain_items, "altpo"))
    assert state.data["mode"] == "perturb" and state.data["generated"] == 0


def test_altpo_perturb_only_uses_other_items_answers(tokenizer, tiny_model, forget_items, retain_items):
    spec = get_method("altpo")
    a = spec.setup(setup_ctx(tiny_model, tokenizer, forget_items, retain_items, "altpo", {"alternatives": "perturb"}))
    b = spec.setup(setup_ctx(tiny_model, tokenizer, forget_items, retain_items, "altpo", {"alternatives": "perturb"}))
    assert a.forget_alt == b.forget_alt and a.data["fallback"] == [it.id for it in forget_items]
    answers = {it.answer for it in forget_items}
    for it, alt in zip(forget_items, a.forget_alt):
        assert alt != it.answer and alt in answers  # no fact given: another forget item's answer


def test_altpo_without_any_alternative_is_a_user_error(tokenizer, tiny_model, forget_items):
    with pytest.raises(LetheError, match="no alternative answer"):
        get_method("altpo").setup(setup_ctx(tiny_model, tokenizer, forget_items[:1], [], "altpo",
                                            {"alternatives": "perturb"}))


def test_altpo_unlearn_with_kl_retain_reads_reference_logits(tokenizer, tiny_model, forget_items, retain_items):
    # retain=kl makes the reference a frozen copy: the alternatives' reference log-probs come from its logits
    ref_model = copy.deepcopy(tiny_model)
    cfg = TrainConfig(lr=1e-2, epochs=1, batch_size=2, warmup_ratio=0.0, scheduler="constant")
    model, stats = unlearn(tiny_model, tokenizer, "altpo", forget_items, retain_items, cfg,
                           options={"retain": "kl", "alternatives": "perturb"})
    assert stats.steps == 2 and all(math.isfinite(x) for x in stats.losses)
    assert stats.last_stats["log_ratio_alt"] != 0.0
    assert any(not torch.equal(p, q) for p, q in zip(model.parameters(), ref_model.parameters()))
