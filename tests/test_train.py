"""The training loop: batch-split invariance, determinism, LoRA with the adapter-off reference,
user errors; and the model round trip through save_model / load_model."""
from __future__ import annotations

import dataclasses

import pytest
import torch

import lethe.loop as loop_mod
import lethe.train as train_mod
from lethe.config import TrainConfig
from lethe.data import Encoder, collate
from lethe.errors import LetheError
from lethe.models import load_model, save_model, tiny_llama
from lethe.ops import sequence_nll
from lethe.reference import AdapterOffReference
from lethe.train import finetune, unlearn


def params(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def one_step(make_tiny, tokenizer, items, method, batch_size, grad_accum, **kw):
    cfg = TrainConfig(lr=kw.pop("lr", 1e-3), batch_size=batch_size, grad_accum=grad_accum, max_steps=1,
                      warmup_ratio=0.0, scheduler="constant", seed=3, **kw)
    model, stats = unlearn(make_tiny(tokenizer), tokenizer, method, items, items, cfg)
    assert stats.steps == 1 and stats.sequences == 8
    return params(model), stats


@pytest.fixture()
def sgd(monkeypatch):
    """Plain SGD instead of AdamW: its update is lr * gradient, so any error in the loss scale shows
    (AdamW's first step is ~lr * sign(gradient) and would hide a wrong normalisation)."""
    def _optimizer(params, cfg, total_steps):
        opt = torch.optim.SGD(params, lr=cfg.lr)
        return opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)

    monkeypatch.setattr(loop_mod, "optimizer", _optimizer)


# --- the update does not depend on how the step's batch is split ---------------------------------

@pytest.mark.parametrize("method", ["ga", "npo"])
def test_batch_split_invariance_adamw(method, make_tiny, tokenizer, forget_items, retain_items):
    items = forget_items + retain_items  # 8 forget items: one optimizer step of 8 sequences
    start = params(make_tiny(tokenizer))
    a, sa = one_step(make_tiny, tokenizer, items, method, 8, 1, lr=1e-5)
    b, sb = one_step(make_tiny, tokenizer, items, method, 2, 4, lr=1e-5)
    assert max_diff(a, start) > 5e-6  # the step did move the weights
    assert max_diff(a, b) < 1e-6
    assert sa.losses[0] == pytest.approx(sb.losses[0], abs=1e-5)


@pytest.mark.parametrize("method", ["ga", "npo"])
def test_batch_split_invariance_sgd(method, sgd, make_tiny, tokenizer, forget_items, retain_items):
    items = forget_items + retain_items
    start = params(make_tiny(tokenizer))
    a, _ = one_step(make_tiny, tokenizer, items, method, 8, 1, lr=0.5, max_grad_norm=0.0, weight_decay=0.0)
    b, _ = one_step(make_tiny, tokenizer, items, method, 2, 4, lr=0.5, max_grad_norm=0.0, weight_decay=0.0)
    c, _ = one_step(make_tiny, tokenizer, items, method, 4, 2, lr=0.5, max_grad_norm=0.0, weight_decay=0.0)
    assert max_diff(a, start) > 1e-3
    assert max_diff(a, b) < 1e-6 and max_diff(a, c) < 1e-6


def test_ga_step_is_the_mean_over_sequences(sgd, make_tiny, tokenizer, forget_items, retain_items):
    """One SGD step of GA = p - lr * grad(-(1/8) sum_i NLL_i): per-sequence mean, then mean over the step."""
    items = forget_items + retain_items
    lr = 0.5
    got, _ = one_step(make_tiny, tokenizer, items, "ga", 2, 4, lr=lr, max_grad_norm=0.0, weight_decay=0.0)
    model = make_tiny(tokenizer)
    enc = Encoder(tokenizer)
    batch = collate([enc.qa(it.question, it.answer) for it in items], tokenizer.pad_token_id)
    loss = -sequence_nll(model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits, batch.labels).mean()
    loss.backward()
    expected = {k: (p - lr * p.grad).detach() for k, p in model.named_parameters()}
    assert max_diff(got, expected) < 1e-5


def test_items_without_question_are_unlearned_as_plain_text(sgd, make_tiny, tokenizer, forget_items, retain_items):
    """A document (question "") is scored on every token after BOS, like pretraining text: one SGD step
    of GA on it equals the hand-built step on enc.text(document)."""
    import dataclasses as dc

    docs = [dc.replace(it, question="", answer=f"{it.question} {it.answer}") for it in forget_items + retain_items]
    lr = 0.5
    got, _ = one_step(make_tiny, tokenizer, docs, "ga", 8, 1, lr=lr, max_grad_norm=0.0, weight_decay=0.0)
    model = make_tiny(tokenizer)
    enc = Encoder(tokenizer)
    seqs = [enc.text(d.answer) for d in docs]
    assert all(s.n_prompt == 1 for s in seqs)  # only BOS unscored
    batch = collate(seqs, tokenizer.pad_token_id)
    loss = -sequence_nll(model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits, batch.labels).mean()
    loss.backward()
    expected = {k: (p - lr * p.grad).detach() for k, p in model.named_parameters()}
    assert max_diff(got, expected) < 1e-5
    # and it differs from treating the document as the answer to an empty-prompt question
    qa = collate([enc.qa("", d.answer) for d in docs], tokenizer.pad_token_id)
    assert qa.input_ids.shape != batch.input_ids.shape or not torch.equal(qa.labels, batch.labels)


# --- determinism ---------------------------------------------------------------------------------

def _run_seed(make_tiny, tokenizer, forget_items, retain_items, seed):
    cfg = TrainConfig(lr=1e-3, batch_size=1, max_steps=2, seed=seed)
    model, stats = unlearn(make_tiny(tokenizer), tokenizer, "grad_diff", forget_items, retain_items, cfg)
    return params(model), stats


def test_same_seed_same_parameters_other_seed_different(make_tiny, tokenizer, forget_items, retain_items):
    a, sa = _run_seed(make_tiny, tokenizer, forget_items, retain_items, 0)
    b, sb = _run_seed(make_tiny, tokenizer, forget_items, retain_items, 0)
    c, _ = _run_seed(make_tiny, tokenizer, forget_items, retain_items, 1)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert sa.losses == sb.losses
    assert max_diff(a, c) > 1e-6


# --- LoRA ----------------------------------------------------------------------------------------

def test_lora_trains_adapter_only_and_uses_adapter_off_reference(monkeypatch, tiny_model, tokenizer,
                                                                 forget_items, retain_items):
    base_before = params(tiny_model)
    enc = Encoder(tokenizer)
    probe = collate([enc.qa(it.question, it.answer) for it in retain_items], tokenizer.pad_token_id)
    with torch.no_grad():
        logits_before = tiny_model(input_ids=probe.input_ids, attention_mask=probe.attention_mask).logits.clone()

    refs = []

    class SpyRef(AdapterOffReference):
        def __init__(self, model):
            super().__init__(model)
            refs.append(self)

    def no_copy(*_a, **_k):
        raise AssertionError("with LoRA the reference must be the adapter switched off, not a frozen copy")

    monkeypatch.setattr(train_mod, "AdapterOffReference", SpyRef)
    monkeypatch.setattr(train_mod, "FrozenReference", no_copy)

    cfg = TrainConfig(lr=1e-2, batch_size=2, max_steps=3, lora=True, lora_r=2, lora_alpha=4)
    model, stats = unlearn(tiny_model, tokenizer, "kl", forget_items, retain_items, cfg)
    assert len(refs) == 1
    assert 0 < stats.trainable_params < stats.total_params

    lora, base = {}, {}
    for name, p in model.named_parameters():
        (lora if "lora_" in name else base)[name] = p
    assert lora and all(p.requires_grad for p in lora.values())
    assert not any(p.requires_grad for p in base.values())
    # base weights are untouched (peft renames them: base_model.model.X / ...q_proj.base_layer.weight)
    for name, p in base.items():
        orig = name.removeprefix("base_model.model.").replace(".base_layer", "")
        assert torch.equal(p.detach(), base_before[orig]), name
    # the adapter moved: lora_B starts at zero
    assert any(float(p.detach().abs().max()) > 0 for n, p in lora.items() if "lora_B" in n)

    # the reference (adapter off) still gives the model before unlearning; the adapter-on model does not
    ref_logits, ref_labels = refs[0].answer_logits(probe)
    keep = ref_logits.size(1)
    assert torch.equal(ref_labels, probe.labels[:, -keep:])
    assert torch.allclose(ref_logits, logits_before[:, -keep:], atol=1e-5)
    with torch.no_grad():
        on = model(input_ids=probe.input_ids, attention_mask=probe.attention_mask).logits
    assert not torch.allclose(on, logits_before, atol=1e-3)


# --- localised unlearning, SAM, LoRA merge -----------------------------------------------------------

def test_trainable_layers_and_patterns_move_only_the_selection(make_tiny, tokenizer, forget_items, retain_items):
    cfg = TrainConfig(lr=1e-2, batch_size=2, max_steps=2, trainable_layers=(1,), trainable=("*mlp*",))
    model = tiny_llama(len(tokenizer), hidden_size=32, num_layers=2, num_heads=2, max_positions=128,
                       bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                       pad_token_id=tokenizer.pad_token_id)
    before = params(model)
    model, stats = unlearn(model, tokenizer, "grad_diff", forget_items, retain_items, cfg)
    selected = {k for k in before if ".layers.1." in k and "mlp" in k}
    assert selected and stats.trainable_params == sum(before[k].numel() for k in selected)
    assert stats.total_params == sum(v.numel() for v in before.values())
    after = params(model)
    assert all(not torch.equal(after[k], before[k]) for k in selected)
    assert all(torch.equal(after[k], before[k]) for k in before if k not in selected)
    assert all(p.requires_grad for p in model.parameters())  # flags given back to the caller


def test_trainable_selection_that_matches_nothing(tiny_model, tokenizer, forget_items, retain_items):
    before = params(tiny_model)
    with pytest.raises(LetheError, match=r"train\.trainable.*select no trainable parameter.*model\.embed_tokens"):
        unlearn(tiny_model, tokenizer, "ga", forget_items, retain_items,
                TrainConfig(max_steps=1, trainable=("*no_such_module*",)))
    with pytest.raises(LetheError, match=r"train\.trainable_layers: layer 3 does not exist \(the model has layers 0-0\)"):
        unlearn(tiny_model, tokenizer, "ga", forget_items, retain_items, TrainConfig(max_steps=1, trainable_layers=(3,)))
    assert max_diff(params(tiny_model), before) == 0


def test_sam_update_is_the_forget_gradient_at_the_perturbed_weights(sgd, make_tiny, tokenizer, forget_items):
    """One SGD step of GA with SAM = θ − lr ∇L(θ + ε), ε = ρ ∇L(θ)/‖∇L(θ)‖, computed here by hand."""
    from lethe.methods import get_method

    rho, lr = 0.05, 0.5
    cfg = TrainConfig(lr=lr, batch_size=4, max_steps=1, warmup_ratio=0.0, scheduler="constant", max_grad_norm=0.0,
                      weight_decay=0.0, sam_rho=rho)
    model, _ = unlearn(make_tiny(tokenizer), tokenizer, "ga", forget_items, [], cfg)

    ref = make_tiny(tokenizer)
    enc = Encoder(tokenizer)
    batch = collate([enc.qa(it.question, it.answer) for it in forget_items], tokenizer.pad_token_id)
    spec = get_method("ga")
    from lethe.data import UnlearnBatch

    def grads():
        ref.zero_grad()
        per_seq, _ = spec.loss(ref, UnlearnBatch(forget=batch), None, spec.make_config())
        (per_seq.sum() / len(forget_items)).backward()
        return [p.grad.clone() for p in ref.parameters()]

    g = grads()
    norm = torch.sqrt(sum((x ** 2).sum() for x in g))
    with torch.no_grad():
        for p, x in zip(ref.parameters(), g):
            p.add_(rho * x / norm)
    g_eps = grads()
    with torch.no_grad():
        for p, x, y in zip(ref.parameters(), g, g_eps):
            p.sub_(rho * x / norm)
            p.sub_(lr * y)
    expected = params(ref)
    got = params(model)
    assert max_diff(got, expected) < 1e-5
    plain, _ = unlearn(make_tiny(tokenizer), tokenizer, "ga", forget_items, [], dataclasses.replace(cfg, sam_rho=0.0))
    assert max_diff(params(plain), expected) > 1e-3  # SAM is not the plain step


@pytest.mark.parametrize("method", ["grad_diff", "npo"])
def test_sam_batch_split_invariance(method, sgd, make_tiny, tokenizer, forget_items, retain_items):
    items = forget_items + retain_items
    kw = dict(lr=0.5, max_grad_norm=0.0, weight_decay=0.0, sam_rho=0.05)
    a, _ = one_step(make_tiny, tokenizer, items, method, 8, 1, **kw)
    b, _ = one_step(make_tiny, tokenizer, items, method, 2, 4, **kw)
    assert max_diff(a, b) < 1e-5


def test_lora_merge_gives_a_plain_model_with_the_adapter_folded_in(make_tiny, tokenizer, forget_items, retain_items):
    cfg = TrainConfig(lr=1e-2, batch_size=2, max_steps=3, lora=True, lora_r=2, lora_alpha=4)
    peft_model, _ = unlearn(make_tiny(tokenizer), tokenizer, "ga", forget_items, retain_items, cfg)
    merged, stats = unlearn(make_tiny(tokenizer), tokenizer, "ga", forget_items, retain_items,
                            dataclasses.replace(cfg, lora_merge=True))
    assert not any("lora_" in n for n, _ in merged.named_parameters())
    assert type(merged).__name__ == "LlamaForCausalLM"
    assert stats.trainable_params < stats.total_params  # recorded while the adapter was trained
    enc = Encoder(tokenizer)
    probe = collate([enc.qa(it.question, it.answer) for it in retain_items], tokenizer.pad_token_id)
    with torch.no_grad():
        a = peft_model(input_ids=probe.input_ids, attention_mask=probe.attention_mask).logits
        b = merged(input_ids=probe.input_ids, attention_mask=probe.attention_mask).logits
    assert torch.allclose(a, b, atol=1e-4)


# --- user errors ---------------------------------------------------------------------------------

@pytest.mark.parametrize("field,value", [
    ("lr", -1e-5), ("lr", 0.0), ("epochs", 0.0), ("batch_size", 0), ("grad_accum", 0),
    ("warmup_ratio", 1.0), ("max_grad_norm", -1.0), ("scheduler", "cosine"), ("max_steps", -1),
    ("precision", "fp16"), ("sam_rho", -0.1), ("lora_merge", True), ("trainable_layers", (-1,)),
    ("trainable", (3,)),
])
def test_train_config_check_names_the_field(field, value):
    cfg = dataclasses.replace(TrainConfig(), **{field: value})
    with pytest.raises(LetheError, match=rf"train\.{field}\b"):
        cfg.check()


def test_default_train_config_is_valid():
    TrainConfig().check()


def test_unlearn_rejects_bad_config_before_training(tiny_model, tokenizer, forget_items, retain_items):
    before = params(tiny_model)
    with pytest.raises(LetheError, match="train.batch_size"):
        unlearn(tiny_model, tokenizer, "ga", forget_items, retain_items, TrainConfig(batch_size=0))
    assert max_diff(params(tiny_model), before) == 0


def test_unlearn_empty_forget_set(tiny_model, tokenizer, retain_items):
    with pytest.raises(LetheError, match="forget set is empty"):
        unlearn(tiny_model, tokenizer, "ga", [], retain_items, TrainConfig(max_steps=1))


def test_unlearn_needs_retain_data(tiny_model, tokenizer, forget_items):
    with pytest.raises(LetheError, match="retain"):
        unlearn(tiny_model, tokenizer, "grad_diff", forget_items, [], TrainConfig(max_steps=1))
    # GA without a retain term does not
    _, stats = unlearn(tiny_model, tokenizer, "ga", forget_items, [], TrainConfig(max_steps=1))
    assert stats.steps == 1


def test_unknown_method_did_you_mean(tiny_model, tokenizer, forget_items, retain_items):
    with pytest.raises(LetheError, match=r"unknown method 'npoo'; did you mean 'npo'\?"):
        unlearn(tiny_model, tokenizer, "npoo", forget_items, retain_items)


def test_unknown_method_option(tiny_model, tokenizer, forget_items, retain_items):
    with pytest.raises(LetheError, match=r"method 'npo': unknown option 'betta'.*beta"):
        unlearn(tiny_model, tokenizer, "npo", forget_items, retain_items, options={"betta": 0.1})


def test_steps_follow_epochs_and_max_steps(tiny_model, tokenizer, forget_items, retain_items):
    # 4 forget items, 2 per step: 2 steps per epoch
    _, s = unlearn(tiny_model, tokenizer, "ga", forget_items, retain_items, TrainConfig(epochs=1.5, batch_size=2))
    assert s.steps == 3 and s.sequences == 6 and s.tokens > 0
    _, s = unlearn(tiny_model, tokenizer, "ga", forget_items, retain_items, TrainConfig(epochs=5, batch_size=2, max_steps=2))
    assert s.steps == 2


def test_finetune_empty_and_lowers_nll(tiny_model, tokenizer, forget_items):
    with pytest.raises(LetheError, match="empty"):
        finetune(tiny_model, tokenizer, [], TrainConfig())
    enc = Encoder(tokenizer)
    seqs = [enc.qa(it.question, it.answer) for it in forget_items]
    batch = collate(seqs, tokenizer.pad_token_id)

    def nll(m):
        with torch.no_grad():
            return float(sequence_nll(m(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits,
                                      batch.labels).mean())

    before = nll(tiny_model)
    model, stats = finetune(tiny_model, tokenizer, seqs, TrainConfig(lr=1e-2, epochs=5, batch_size=4, warmup_ratio=0.0))
    assert stats.steps == 5
    assert nll(model) < before - 1.0


def test_bf16_mixed_precision_raises_forget_nll_and_restores_attention(make_tiny, tokenizer, forget_items,
                                                                       retain_items):
    """bf16 autocast with fp32 master weights: the update follows the fp32 one closely, parameters
    stay fp32, and the model's attention implementation is given back as it came."""
    enc = Encoder(tokenizer)
    batch = collate([enc.qa(it.question, it.answer) for it in forget_items], tokenizer.pad_token_id)

    def nll(m):
        with torch.no_grad():
            return float(sequence_nll(m(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits,
                                      batch.labels).mean())

    runs = {}
    for precision in ("fp32", "bf16"):
        model = make_tiny(tokenizer)
        model.set_attn_implementation("sdpa")
        before = nll(model)
        cfg = TrainConfig(lr=1e-2, epochs=3, batch_size=2, warmup_ratio=0.0, precision=precision)
        model, _ = unlearn(model, tokenizer, "ga", forget_items, retain_items, cfg)
        assert model.config._attn_implementation == "sdpa"
        assert all(p.dtype == torch.float32 for p in model.parameters())
        runs[precision] = (before, nll(model), params(model))
    (b32, a32, p32), (b16, a16, p16) = runs["fp32"], runs["bf16"]
    assert b32 == b16 and a32 > b32 + 0.5 and a16 > b16 + 0.5
    p0 = params(make_tiny(tokenizer))
    d32 = torch.cat([(p32[k] - p0[k]).flatten() for k in p0])
    d16 = torch.cat([(p16[k] - p0[k]).flatten() for k in p0])
    cos = float(torch.nn.functional.cosine_similarity(d32, d16, dim=0))
    assert cos > 0.95  # same direction of travel, bf16 rounding aside


# --- models: save / load ---------------------------------------------------------------------------

def test_save_load_round_trip(tmp_path, tiny_model, tokenizer):
    folder = save_model(tiny_model, tokenizer, tmp_path / "model")
    assert (folder / "config.json").exists() and (folder / "model.safetensors").exists()
    save_model(tiny_model, tokenizer, folder)  # overwriting leaves no temp folder behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]

    model, tok = load_model(folder)
    enc = Encoder(tokenizer)
    seq = enc.qa("Where was Alice Moon born?", "Alice Moon was born in Paris.")
    assert Encoder(tok).qa("Where was Alice Moon born?", "Alice Moon was born in Paris.") == seq
    assert tok.pad_token_id == tokenizer.pad_token_id
    ids = torch.tensor([seq.ids])
    with torch.no_grad():
        a = tiny_model(input_ids=ids).logits
        b = model(input_ids=ids).logits
    assert torch.equal(a, b)


def test_load_model_without_tokenizer(tmp_path, tiny_model):
    folder = tmp_path / "no_tokenizer"
    tiny_model.save_pretrained(folder)
    with pytest.raises(LetheError, match="no tokenizer") as exc:
        load_model(folder)
    assert str(folder) in str(exc.value)


def test_load_model_without_config(tmp_path, tokenizer):
    folder = tmp_path / "no_config"
    tokenizer.save_pretrained(folder)
    with pytest.raises(LetheError, match="config.json") as exc:
        load_model(folder)
    assert str(folder) in str(exc.value)


# --- evaluation during unlearning, best checkpoint ---------------------------------------------------

def test_eval_hook_every_n_steps_restores_the_best_checkpoint(make_tiny, tokenizer, forget_items, retain_items):
    """A hook scores step 2 best (of 1..4): the returned model holds exactly the parameters it had at step 2."""
    seen: dict[int, dict] = {}
    scores = {1: 0.1, 2: 0.9, 3: 0.5, 4: 0.2}

    def hook(model, step):
        seen[step] = params(model)
        return {"forget_quality": scores[step], "other": -step}

    cfg = TrainConfig(lr=1e-2, batch_size=2, max_steps=4, seed=0, eval_every=1, best_by="forget_quality")
    model, stats = unlearn(make_tiny(tokenizer), tokenizer, "grad_diff", forget_items, retain_items, cfg, eval_hook=hook)
    assert [c["step"] for c in stats.checkpoints] == [1, 2, 3, 4]  # the end (step 4) once, not twice
    assert stats.checkpoints[1]["forget_quality"] == 0.9 and stats.checkpoints[1]["other"] == -2
    assert stats.best == {"by": "forget_quality", "direction": "higher", "step": 2, "value": 0.9}
    assert max_diff(params(model), seen[2]) == 0.0 and max_diff(seen[2], seen[4]) > 0
    # "lower is better" picks step 1
    model, stats = unlearn(make_tiny(tokenizer), tokenizer, "grad_diff", forget_items, retain_items, cfg,
                           eval_hook=hook, best_direction="lower")
    assert stats.best["step"] == 1 and max_diff(params(model), seen[1]) == 0.0
    assert stats.to_json()["best"]["step"] == 1 and len(stats.to_json()["checkpoints"]) == 4


def test_eval_hook_each_epoch_and_without_best_keeps_the_last(make_tiny, tokenizer, forget_items, retain_items):
    steps = []

    def hook(model, step):
        steps.append(step)
        return {"forget_quality": 1.0 / step}

    n = len(forget_items)  # 4 items, batch 2: 2 steps per epoch; 3 epochs
    cfg = TrainConfig(lr=1e-2, batch_size=2, epochs=3, seed=0, eval_every=-1)
    model, stats = unlearn(make_tiny(tokenizer), tokenizer, "ga", forget_items, retain_items, cfg, eval_hook=hook)
    assert n == 4 and steps == [2, 4, 6] and stats.steps == 6 and stats.best == {}
    assert [round(c["epoch"], 6) for c in stats.checkpoints] == [1.0, 2.0, 3.0]


def test_eval_during_unlearning_user_errors(make_tiny, tokenizer, forget_items, retain_items):
    with pytest.raises(LetheError, match="train.best_by needs evaluation during unlearning"):
        TrainConfig(best_by="forget_quality").check()
    with pytest.raises(LetheError, match="train.eval_every must be"):
        TrainConfig(eval_every=-2).check()
    with pytest.raises(LetheError, match="nothing evaluates during unlearning"):
        unlearn(make_tiny(tokenizer), tokenizer, "ga", forget_items, retain_items, TrainConfig(eval_every=1))
    cfg = TrainConfig(lr=1e-2, batch_size=2, max_steps=1, eval_every=1, best_by="forget_qualty")
    with pytest.raises(LetheError, match="best_by 'forget_qualty' is not among the evaluated values"):
        unlearn(make_tiny(tokenizer), tokenizer, "ga", forget_items, retain_items, cfg,
                eval_hook=lambda m, s: {"forget_quality": 0.5})
