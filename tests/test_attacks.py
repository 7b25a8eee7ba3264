"""Robustness attacks: round-to-nearest quantization checked by hand, the relearning split and the
relearning attack on a model damaged by gradient ascent, option errors and the attack registry."""
from __future__ import annotations

import copy
import dataclasses
import sys
import time

import pytest
import torch
from torch import nn

from lethe.attacks import ATTACKS, attack_config, get_attack
from lethe.attacks.quantize import QuantizeConfig, dequantize, fake_quantize, quantize, quantize_tensor
from lethe.attacks.relearn import RelearnConfig, relearn, relearn_split
from lethe.benchmarks.base import QAItem
from lethe.data import Encoder, collate
from lethe.errors import LetheError
from lethe.probes import score_sequences
from lethe.train import TrainConfig, unlearn


def params(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# W (2 x 4): no value sits on a rounding tie at 8 or 4 bits
W = torch.tensor([[1.0, -0.4, 0.25, 0.1],
                  [0.2, -0.8, 0.0, 0.05]])


# --- quantization by hand ------------------------------------------------------------------------

def test_rtn_integer_grid_and_scales_by_hand():
    # 8 bits: qmax = 127, scale = max|w| / 127 per row
    q, scale = quantize_tensor(W, 8)
    assert torch.equal(q, torch.tensor([[127, -51, 32, 13],  # 1*127, -50.8, 31.75, 12.7
                                        [32, -127, 0, 8]], dtype=torch.int8))  # 31.75, -127, 0, 7.9375
    assert torch.allclose(scale, torch.tensor([[1.0 / 127], [0.8 / 127]]))
    # 4 bits: qmax = 7
    q, scale = quantize_tensor(W, 4)
    assert torch.equal(q, torch.tensor([[7, -3, 2, 1],  # 7, -2.8, 1.75, 0.7
                                        [2, -7, 0, 0]], dtype=torch.int8))  # 1.75, -7, 0, 0.4375
    assert torch.allclose(scale, torch.tensor([[1.0 / 7], [0.8 / 7]]))
    assert torch.allclose(dequantize(q, scale), torch.tensor([[1.0, -3 / 7, 2 / 7, 1 / 7],
                                                              [1.6 / 7, -0.8, 0.0, 0.0]]))


def test_quantized_linear_by_hand_bias_untouched_and_original_kept():
    lin = nn.Linear(4, 2)
    with torch.no_grad():
        lin.weight.copy_(W)
        lin.bias.copy_(torch.tensor([0.123456, -7.654321]))
    model = nn.Sequential(lin)
    before = params(model)

    q8, st8 = quantize(model, QuantizeConfig(bits=8))
    expected8 = torch.tensor([[127, -51, 32, 13], [32, -127, 0, 8]]) * torch.tensor([[1.0 / 127], [0.8 / 127]])
    assert torch.allclose(q8[0].weight, expected8, atol=1e-7)
    q4, st4 = quantize(model, QuantizeConfig(bits=4))
    expected4 = torch.tensor([[1.0, -3 / 7, 2 / 7, 1 / 7], [1.6 / 7, -0.8, 0.0, 0.0]])
    assert torch.allclose(q4[0].weight, expected4, atol=1e-7)

    for qm in (q8, q4):
        assert torch.equal(qm[0].bias, before["0.bias"])  # biases are never quantized
        assert qm[0].weight.dtype == torch.float32  # fake quantization: dtype unchanged
        assert qm is not model
    assert same(params(model), before)  # the caller's model is untouched

    err4 = (expected4 - W).abs()
    assert st4.layers_quantized == 1 and st4.params_quantized == 8 and st4.layers == ["0"]
    assert st4.mean_abs_error == pytest.approx(float(err4.mean()), abs=1e-7)
    assert st4.max_abs_error == pytest.approx(float(err4.max()), abs=1e-7)
    assert st8.max_abs_error < st4.max_abs_error


def test_group_wise_scales_by_hand():
    w = torch.tensor([[1.0, 0.1, -0.2, 0.05, 0.3]])
    # groups of 2 inputs: {1.0, 0.1}, {-0.2, 0.05}, {0.3} (a shorter last group)
    q, scale = quantize_tensor(w, 4, group_size=2)
    assert torch.allclose(scale, torch.tensor([[1.0 / 7, 0.2 / 7, 0.3 / 7]]))
    assert torch.equal(q, torch.tensor([[7, 1, -7, 2, 7]], dtype=torch.int8))  # 0.7 -> 1, 1.75 -> 2
    assert torch.allclose(fake_quantize(w, 4, 2), torch.tensor([[1.0, 1 / 7, -0.2, 0.4 / 7, 0.3]]))
    # per channel the small weights vanish: one scale of 1/7 for the row
    assert torch.equal(quantize_tensor(w, 4)[0], torch.tensor([[7, 1, -1, 0, 2]], dtype=torch.int8))
    # group_size >= the row length is per channel
    assert torch.equal(fake_quantize(w, 4, 8), fake_quantize(w, 4, 0))


def test_zero_rows_and_groups_stay_zero():
    w = torch.tensor([[0.0, 0.0, 0.0, 0.0], [0.5, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    for bits, g in [(8, 0), (4, 0), (4, 2)]:
        out = fake_quantize(w, bits, g)
        assert torch.isfinite(out).all()
        assert torch.equal(out, w)  # zeros, and 0.5 = qmax * (0.5 / qmax) exactly
    assert torch.equal(fake_quantize(torch.zeros(3, 4), 4), torch.zeros(3, 4))


def test_tied_embeddings_and_lm_head_stay_consistent(tiny_model):
    emb = tiny_model.model.embed_tokens.weight.detach().clone()
    assert tiny_model.lm_head.weight is tiny_model.model.embed_tokens.weight

    plain, st = quantize(tiny_model, QuantizeConfig(bits=4))
    assert torch.equal(plain.model.embed_tokens.weight, emb)  # default: embeddings and head in full precision
    assert plain.lm_head.weight is plain.model.embed_tokens.weight
    assert set(st.skipped) == {"model.embed_tokens", "lm_head"}
    assert st.layers_quantized == 7  # q, k, v, o, gate, up, down of the one decoder layer
    assert not torch.equal(plain.model.layers[0].mlp.up_proj.weight, tiny_model.model.layers[0].mlp.up_proj.weight)

    full, st = quantize(tiny_model, QuantizeConfig(bits=4, embeddings=True))
    assert full.lm_head.weight is full.model.embed_tokens.weight  # still one tensor
    assert torch.equal(full.model.embed_tokens.weight, fake_quantize(emb, 4))  # per row = per token
    assert st.layers_quantized == 8 and st.skipped == []  # the shared tensor counted (and rounded) once
    assert torch.equal(tiny_model.model.embed_tokens.weight, emb)


def test_untied_head_follows_the_embeddings_flag(tokenizer):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32,
                                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                                         tie_word_embeddings=False))
    head, emb = model.lm_head.weight.detach().clone(), model.model.embed_tokens.weight.detach().clone()
    plain, _ = quantize(model, QuantizeConfig(bits=4))
    assert torch.equal(plain.lm_head.weight, head) and torch.equal(plain.model.embed_tokens.weight, emb)
    full, st = quantize(model, QuantizeConfig(bits=4, embeddings=True))
    assert torch.equal(full.lm_head.weight, fake_quantize(head, 4))
    assert torch.equal(full.model.embed_tokens.weight, fake_quantize(emb, 4))
    assert st.layers_quantized == 9


def test_gpt2_conv1d_is_quantized_per_output_channel():
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=64, n_positions=16, n_embd=16, n_layer=1, n_head=2))
    w = model.transformer.h[0].attn.c_attn.weight.detach().clone()  # Conv1D: (in, out)
    q, st = quantize(model, QuantizeConfig(bits=4))
    assert torch.equal(q.transformer.h[0].attn.c_attn.weight, fake_quantize(w.t(), 4).t())
    assert st.layers_quantized == 4  # c_attn, attn c_proj, c_fc, mlp c_proj; the tied head is kept
    assert torch.equal(q.lm_head.weight, model.lm_head.weight)
    q, _ = quantize(model, QuantizeConfig(bits=4, group_size=8))
    assert torch.equal(q.transformer.h[0].attn.c_attn.weight, fake_quantize(w.t(), 4, 8).t())


def test_inplace_quantizes_the_given_model(tiny_model):
    w = tiny_model.model.layers[0].self_attn.q_proj.weight
    expected = fake_quantize(w, 8)
    out, _ = quantize(tiny_model, QuantizeConfig(bits=8), inplace=True)
    assert out is tiny_model and torch.equal(tiny_model.model.layers[0].self_attn.q_proj.weight, expected)


def test_lora_model_is_merged_before_quantizing(make_tiny, tokenizer, forget_items):
    from lethe.models import add_lora

    lora = add_lora(make_tiny(tokenizer), r=2, alpha=4)
    with torch.no_grad():  # a non-zero adapter, so merging changes the weights
        for n, p in lora.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.1)
    merged = copy.deepcopy(lora).merge_and_unload()
    q, st = quantize(lora, QuantizeConfig(bits=4))
    assert st.merged_lora and not any("lora_" in n for n, _ in q.named_parameters())
    w = merged.model.layers[0].self_attn.q_proj.weight
    assert torch.equal(q.model.layers[0].self_attn.q_proj.weight, fake_quantize(w, 4))
    assert any("lora_" in n for n, _ in lora.named_parameters())  # the caller's peft model is kept


def test_8bit_logits_stay_close_4bit_move_further(memorised_model, tokenizer, forget_items, retain_items):
    enc = Encoder(tokenizer)
    batch = collate([enc.qa(it.question, it.answer) for it in forget_items + retain_items], tokenizer.pad_token_id)

    def logits(m):
        with torch.no_grad():
            return m(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits

    base = logits(memorised_model)
    diffs = {}
    for bits in (8, 4):
        q, _ = quantize(memorised_model, QuantizeConfig(bits=bits))
        diffs[bits] = float((logits(q) - base).abs().max())
    print(f"max |logit diff| on the memorised tiny Llama: 8-bit {diffs[8]:.4f}, 4-bit {diffs[4]:.4f} "
          f"(logit range {float(base.abs().max()):.1f})")
    scale = float(base.abs().max())
    assert diffs[8] < 0.02 * scale  # measured: 0.107 of 10.4
    assert diffs[4] > 5 * diffs[8]  # measured: 2.13


@pytest.mark.parametrize("field,value", [
    ("bits", 1), ("bits", 9), ("bits", 4.0), ("group_size", -1), ("backend", "gptq"),
    ("bnb_4bit_quant_type", "int4"),
])
def test_quantize_config_check_names_the_field(field, value):
    with pytest.raises(LetheError, match=rf"quantize\.{field}\b"):
        dataclasses.replace(QuantizeConfig(), **{field: value}).check()


def test_bitsandbytes_backend_without_the_package(monkeypatch, tiny_model):
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # import bitsandbytes -> ImportError
    with pytest.raises(LetheError, match=r"backend=bitsandbytes needs the bitsandbytes package.*backend=rtn"):
        quantize(tiny_model, QuantizeConfig(bits=4, backend="bitsandbytes"))
    with pytest.raises(LetheError, match=r"quantize\.bits must be 4 or 8 with backend=bitsandbytes"):
        quantize(tiny_model, QuantizeConfig(bits=3, backend="bitsandbytes"))


# --- relearning ----------------------------------------------------------------------------------

def _many(n: int, groups: int = 0) -> list[QAItem]:
    return [QAItem(id=f"q{i:02d}", question=f"Q{i}?", answer=f"A{i}.", group=f"g{i % groups}" if groups else "")
            for i in range(n)]


def test_relearn_split_is_deterministic_disjoint_and_covering():
    items = _many(20)
    a_rel, a_held = relearn_split(items, 0.5, seed=0)
    b_rel, _ = relearn_split(list(reversed(items)), 0.5, seed=0)
    assert {it.id for it in a_rel} == {it.id for it in b_rel}  # the order of the items does not matter
    assert [it.id for it in a_rel] == sorted(it.id for it in a_rel)  # each part keeps the input order
    ids_rel, ids_held = {it.id for it in a_rel}, {it.id for it in a_held}
    assert not ids_rel & ids_held and ids_rel | ids_held == {it.id for it in items}
    assert len(a_rel) == 10
    assert {it.id for it in relearn_split(items, 0.5, seed=1)[0]} != ids_rel
    assert len(relearn_split(items, 0.25, seed=0)[0]) == 5
    # never an empty side: 0.01 of 4 items is still one, 0.99 leaves one out
    assert [len(p) for p in relearn_split(items[:4], 0.01)] == [1, 3]
    assert [len(p) for p in relearn_split(items[:4], 0.99)] == [3, 1]


def test_relearn_split_by_group_keeps_groups_together():
    items = _many(12, groups=4)
    rel, held = relearn_split(items, 0.5, seed=3, by_group=True)
    assert len({it.group for it in rel}) == 2 and len(held) == 6
    assert not {it.group for it in rel} & {it.group for it in held}


def test_relearn_split_errors():
    with pytest.raises(LetheError, match="at least 2 forget items"):
        relearn_split(_many(1), 0.5)
    with pytest.raises(LetheError, match=r"at least 2 forget groups"):
        relearn_split(_many(4, groups=1), 0.5, by_group=True)
    with pytest.raises(LetheError, match="'q00' appears twice"):
        relearn_split(_many(2) + _many(1), 0.5)


def test_relearn_trains_a_copy_only(tiny_model, tokenizer, forget_items):
    before = params(tiny_model)
    model, info = relearn(tiny_model, tokenizer, forget_items, RelearnConfig(steps=2, lr=1e-2, batch_size=2))
    assert model is not tiny_model
    assert same(params(tiny_model), before)  # the caller's model is unchanged
    assert not same(params(model), before)
    assert info.steps == 2 and info.tokens > 0 and info.seconds > 0 and info.final_loss is not None
    assert sorted(info.relearn_ids + info.heldout_ids) == [it.id for it in forget_items]
    assert len(info.relearn_ids) == 2


def test_lora_relearning_trains_an_adapter_on_a_copy(tiny_model, make_tiny, tokenizer, forget_items):
    """relearn.lora_r: only a fresh adapter trains (no gradient or optimizer state for the weights); a
    LoRA-unlearned model's own adapter is merged into the copy first; the caller's model stays as it was."""
    from lethe.models import add_lora

    before = params(tiny_model)
    model, info = relearn(tiny_model, tokenizer, forget_items, RelearnConfig(steps=2, lr=1e-2, batch_size=2,
                                                                              lora_r=4))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable) and info.steps == 2
    assert same(params(tiny_model), before)
    merged = params(model.merge_and_unload())
    assert any(not torch.equal(merged[k], before[k]) for k in before)  # the adapter moved the weights

    unlearned = add_lora(make_tiny(tokenizer, seed=1), r=2, alpha=4)  # a LoRA-unlearned model, not merged
    for n, p in unlearned.named_parameters():
        if "lora_B" in n:
            torch.nn.init.normal_(p)
    kept = params(unlearned)
    attacked, _ = relearn(unlearned, tokenizer, forget_items, RelearnConfig(steps=1, lr=1e-2, lora_r=4))
    assert same(params(unlearned), kept)
    assert {n for n, p in attacked.named_parameters() if p.requires_grad} == {
        n for n, _ in attacked.named_parameters() if "lora_" in n}
    assert sum("lora_A" in n for n, _ in attacked.named_parameters()) == sum(
        "lora_A" in n for n, _ in unlearned.named_parameters())  # one adapter: the unlearner's was merged


def test_relearning_half_the_forget_set_restores_the_other_half(memorised_model, tokenizer, forget_items):
    """The point of the attack: after gradient ascent, fine-tuning on two forget items brings the
    two held-out ones back (their answer NLL falls), though the attack never trained on them."""
    enc = Encoder(tokenizer)

    def nll(model, items):  # mean per-token answer NLL
        lp, nt = score_sequences(model, [enc.qa(it.question, it.answer) for it in items], tokenizer.pad_token_id)
        return float((-lp / nt).mean())

    _, held = relearn_split(forget_items, 0.5, seed=0)
    memorised = nll(memorised_model, held)
    unlearned, _ = unlearn(memorised_model, tokenizer, "ga", forget_items, [],
                           TrainConfig(lr=1e-2, batch_size=4, max_steps=3, warmup_ratio=0.0, scheduler="constant"))
    damaged = nll(unlearned, held)
    relearned, info = relearn(unlearned, tokenizer, forget_items, RelearnConfig(lr=1e-2, steps=5, seed=0))
    assert set(info.heldout_ids) == {it.id for it in held}
    back = nll(relearned, held)
    print(f"held-out forget NLL: memorised {memorised:.3f}, after GA {damaged:.3f}, after relearning {back:.3f}")
    assert damaged > memorised + 2.0  # GA did damage the held-out items
    assert back < damaged - 1.0  # relearning the other half brought them back
    assert nll(unlearned, held) == pytest.approx(damaged)  # and left the unlearned model as it was


@pytest.mark.parametrize("field,value", [
    ("fraction", 0.0), ("fraction", 1.0), ("fraction", 1.5), ("steps", 0), ("steps", 2.5), ("lr", 0.0),
    ("lr", -1e-3), ("batch_size", 0), ("seed", "x"), ("lora_r", -1), ("lora_r", 1.5), ("optimizer", "sgd"),
])
def test_relearn_config_check_names_the_field(field, value):
    with pytest.raises(LetheError, match=rf"relearn\.{field}\b"):
        dataclasses.replace(RelearnConfig(), **{field: value}).check()


def test_relearn_trains_as_its_options_say(tiny_model, tokenizer, forget_items, monkeypatch):
    """The copy trains with the attack's optimizer, master weights and checkpointing (so that a full relearning
    fits where the unlearning did), through the one training loop."""
    import lethe.attacks.relearn as relearn_mod

    seen, finetune = [], relearn_mod.finetune
    monkeypatch.setattr(relearn_mod, "finetune",
                        lambda m, t, s, train, **k: seen.append(train) or finetune(m, t, s, train, **k))
    relearn(tiny_model, tokenizer, forget_items, RelearnConfig(steps=1))
    relearn(tiny_model, tokenizer, forget_items, RelearnConfig(steps=1, optimizer="adamw_fused", master_weights=False,
                                                               gradient_checkpointing=True))
    assert [(t.optimizer, t.master_weights, t.gradient_checkpointing) for t in seen] == [
        ("adamw", True, False), ("adamw_fused", False, True)]
    with pytest.raises(LetheError, match=r"attacks\.relearn\.master_weights' must be bool, got 'maybe'"):
        attack_config(RelearnConfig, "relearn", {"master_weights": "maybe"})


def test_relearn_rejects_bad_options_before_copying(tiny_model, tokenizer, forget_items, monkeypatch):
    monkeypatch.setattr(copy, "deepcopy", lambda *_a, **_k: pytest.fail("copied before checking the config"))
    with pytest.raises(LetheError, match=r"relearn\.steps"):
        relearn(tiny_model, tokenizer, forget_items, RelearnConfig(steps=0))


# --- the registry --------------------------------------------------------------------------------

def test_registry_names_and_did_you_mean():
    weight_attacks = ["quantize_4bit", "quantize_8bit", "relearn"]
    prompt_attacks = ["paraphrase", "cross_lingual", "gcg"] + [f"jailbreak_{t}" for t in ("base64", "cipher", "few_shot", "hypothetical",
                                                                  "leetspeak", "payload_splitting", "prefix_injection",
                                                                  "refusal_suppression", "role_play", "translation")]
    assert list(ATTACKS) == sorted(weight_attacks + prompt_attacks)
    with pytest.raises(LetheError, match=r"unknown attack 'relern'; did you mean 'relearn'\?"):
        get_attack("relern")


@pytest.mark.parametrize("name", ["relearn", "quantize_8bit", "quantize_4bit"])
def test_every_attack_returns_a_new_model_and_json_info(name, tiny_model, tokenizer, forget_items, retain_items):
    import json

    before = params(tiny_model)
    options = {"steps": 1, "lr": 1e-3} if name == "relearn" else {}
    t0 = time.perf_counter()
    attacked, info = get_attack(name)(tiny_model, tokenizer, forget_items, retain_items, options)
    wall = time.perf_counter() - t0
    assert attacked is not tiny_model and same(params(tiny_model), before)
    assert not same(params(attacked), before)
    assert info["attack"] == name and 0 < info["seconds"] <= wall  # the attack's own time, within the call's
    json.dumps(info)  # JSON-ready
    forget_ids = {it.id for it in forget_items}
    if name == "relearn":
        assert info["eval_forget_ids"] == info["heldout_ids"] and set(info["eval_forget_ids"]) < forget_ids
    else:
        assert set(info["eval_forget_ids"]) == forget_ids and info["bits"] == int(name[9])


def test_attack_options_are_checked(tiny_model, tokenizer, forget_items, retain_items):
    run = get_attack("relearn")
    with pytest.raises(LetheError, match=r"unknown config key 'attacks\.relearn\.fractoin'; did you mean "
                                         r"'attacks\.relearn\.fraction'\?"):
        run(tiny_model, tokenizer, forget_items, retain_items, {"fractoin": 0.5})
    with pytest.raises(LetheError, match=r"attacks\.relearn\.fraction must be in \(0, 1\)"):
        run(tiny_model, tokenizer, forget_items, retain_items, {"fraction": 1})
    with pytest.raises(LetheError, match=r"config key 'attacks\.quantize_4bit\.group_size' must be int"):
        get_attack("quantize_4bit")(tiny_model, tokenizer, forget_items, retain_items, {"group_size": "64"})
    with pytest.raises(LetheError, match=r"attack 'quantize_4bit': option 'bits' is fixed to 4"):
        get_attack("quantize_4bit")(tiny_model, tokenizer, forget_items, retain_items, {"bits": 8})
    cfg = attack_config(QuantizeConfig, "quantize_8bit", {"group_size": 32, "embeddings": True}, bits=8)
    assert cfg == QuantizeConfig(bits=8, group_size=32, embeddings=True)
