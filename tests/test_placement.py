"""Where models run and how they train (docs/scale.md): device, model dtype, attention, optimizer choice,
gradient checkpointing; the share of an optimizer step each process of a launch trains on."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from lethe import dist
from lethe.cli import main
from lethe.config import TrainConfig, load_config
from lethe.data import Encoder
from lethe.errors import LetheError
from lethe.loop import finetune
from lethe.models import Placement, current_placement, load_model, placed, placement, save_model
from tiny_run import TINY


@pytest.mark.parametrize("world, expected", [
    # one process: every micro-batch of 2 (the last one short)
    (1, [[([0, 1], [5, 6]), ([2, 3], [7, 8]), ([4], [9])]]),
    # 2 processes, 3 micro-batches: process 0 takes the 1st and 3rd, process 1 the 2nd
    (2, [[([0, 1], [5, 6]), ([4], [9])], [([2, 3], [7, 8])]]),
    # 4 processes, fewer micro-batches than processes: a quarter of the step each, ceil(5 / 4) = 2 items
    (4, [[([0, 1], [5, 6])], [([2, 3], [7, 8])], [([4], [9])], []]),
])
def test_step_share_by_hand(monkeypatch, world, expected):
    monkeypatch.setattr(dist, "world", lambda: world)
    shares = []
    for r in range(world):
        monkeypatch.setattr(dist, "rank", lambda r=r: r)
        shares.append(dist.step_share([0, 1, 2, 3, 4], [5, 6, 7, 8, 9], micro=2))
    assert shares == expected
    assert sorted(i for share in shares for items, _ in share for i in items) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("world, n, expected", [
    (1, 3, [[(0, True), (1, True), (2, True)]]),
    # 2 processes, 3 batches: process 1 runs its batch again, not kept, so both run 2 passes
    (2, 3, [[(0, True), (2, True)], [(1, True), (1, False)]]),
    # more processes than batches: one with none runs batch 0, not kept
    (3, 2, [[(0, True)], [(1, True)], [(0, False)]]),
    (2, 0, [[], []]),
])
def test_passes_in_lockstep_by_hand(monkeypatch, world, n, expected):
    monkeypatch.setattr(dist, "world", lambda: world)
    shares, lockstep = [], []
    for r in range(world):
        monkeypatch.setattr(dist, "rank", lambda r=r: r)
        shares.append(dist.passes(n))
        with dist.lockstep():
            lockstep.append(dist.passes(n))
    assert lockstep == expected
    assert shares == [[p for p in share if p[1]] for share in expected]  # without lockstep: its own batches alone
    assert sorted(b for share in lockstep for b, kept in share if kept) == list(range(n))


@pytest.mark.parametrize("overrides, message", [
    (["eval.sharding=zero3"], r"^eval\.sharding must be one of none, fsdp, got 'zero3'; fix it"),
    (["eval.sharding=fsdp", "eval.mia_gradnorm=true"], r"^eval\.sharding fsdp does not go with eval\.mia_gradnorm "),
    (["eval.sharding=fsdp", "eval.lm_eval_tasks=[x]"], r"^eval\.sharding fsdp does not go with eval\.lm_eval_tasks "),
])
def test_bad_evaluation_sharding_is_one_line(overrides, message):
    with pytest.raises(LetheError, match=message):
        load_config(overrides=overrides).eval.check()


def test_a_scenario_with_passes_of_its_own_refuses_evaluation_sharding(capsys, tmp_path):
    assert main(["run", "scenario=hazardous", "eval.sharding=fsdp", f"output={tmp_path}"]) == 2
    assert "the hazardous scenario evaluates through passes of its own, which eval.sharding does not shard; set " \
           "eval.sharding=none" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_only_a_transformers_model_is_sharded_for_evaluation():
    from lethe.sharding import evaluated, sharded_copy

    with pytest.raises(LetheError, match=r"^eval\.sharding=fsdp shards a transformers causal LM; Linear is none "):
        sharded_copy(torch.nn.Linear(2, 2), torch.device("cpu"))
    model = torch.nn.Linear(2, 2)
    with evaluated(model, "fsdp") as same:  # one process: nothing to shard across
        assert same is model and not dist.in_lockstep()


@pytest.mark.parametrize("override, message", [
    ("device=gpu", "device must be auto, cpu, cuda, cuda:N or mps, got 'gpu'; fix it in the config or with device=..."),
    ("device=cuda:x", "device must be auto, cpu, cuda, cuda:N or mps, got 'cuda:x'"),
    ("model_dtype=fp8", "model_dtype must be one of auto, bfloat16, float16, float32, got 'fp8'"),
    ("attn_implementation=flash", "attn_implementation must be one of '', 'eager', 'sdpa', 'flash_attention_2', "
                                  "got 'flash'"),
])
def test_bad_placement_is_one_line(override, message):
    with pytest.raises(LetheError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        load_config(overrides=[override]).check_placement()


@pytest.mark.parametrize("overrides, message", [
    (["train.optimizer=sgd"], r"^train\.optimizer must be one of adamw, adamw_fused, adamw_8bit, paged_adamw_8bit, "
                              r"got 'sgd'; fix it"),
    (["train.sharding=zero1"], r"^train\.sharding must be one of none, fsdp, zero2, zero3, got 'zero1'; fix it"),
    (["train.sharding=fsdp", "train.lora=true"], r"^train\.sharding fsdp does not go with train\.lora "),
    (["train.sharding=zero3", "train.lora=true"], r"^train\.sharding zero3 does not go with train\.lora "),
])
def test_bad_training_setting_is_one_line(overrides, message):
    with pytest.raises(LetheError, match=message):
        load_config(overrides=overrides).train.check()


@pytest.mark.parametrize("option, env, kind", [
    ("fsdp", {}, "fsdp"), ("zero3", {}, "zero3"),
    ("none", {"ACCELERATE_USE_FSDP": "true"}, "fsdp"),  # accelerate launch --config_file <an FSDP config>
    ("none", {"ACCELERATE_USE_DEEPSPEED": "true", "ACCELERATE_DEEPSPEED_ZERO_STAGE": "2"}, "zero2"),
])
def test_sharding_refuses_what_needs_the_whole_model(monkeypatch, option, env, kind, make_tiny, tokenizer):
    """Evaluation during unlearning and SAM read the whole model: with a sharded copy they are refused; so is
    a LoRA model. Sharding comes from train.sharding or from an accelerate config (FSDP, DeepSpeed)."""
    from lethe.loop import train_loop
    from lethe.models import add_lora

    monkeypatch.setattr(dist, "world", lambda: 2)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    train = TrainConfig(sharding=option)
    with pytest.raises(LetheError, match=rf"^train\.sharding={kind} trains a sharded copy of the model: evaluation"):
        train_loop(torch.nn.Linear(2, 2), train, 4, None, None, device=torch.device("cpu"), eval_hook=lambda m, s: {})
    with pytest.raises(LetheError, match=rf"^train\.sharding={kind} \(or an accelerate config that shards\) does not"):
        train_loop(add_lora(make_tiny(tokenizer)), train, 4, None, None, device=torch.device("cpu"))


@pytest.mark.parametrize("option, env, kind", [
    ("zero2", {}, "zero2"), ("zero3", {}, "zero3"), ("fsdp", {}, "none"), ("none", {}, "none"),
    ("none", {"ACCELERATE_USE_DEEPSPEED": "true", "ACCELERATE_DEEPSPEED_ZERO_STAGE": "3"}, "zero3"),
    ("none", {"ACCELERATE_USE_FSDP": "true"}, "none"),
])
def test_one_process_shards_nothing_but_zero_still_offloads(monkeypatch, option, env, kind):
    from lethe.sharding import requested

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert dist.world() == 1 and requested(option) == kind


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("deepspeed") is None, reason="needs deepspeed")
def test_zero_in_one_process_trains_as_the_plain_loop(tmp_path):
    """``train.sharding=zero2`` in one process (what a DeepSpeed JSON's offloading needs) goes through
    DeepSpeed's engine in a group of this process alone, which ends with the training, and trains the plain
    loop's weights to float rounding (run in a process of its own: DeepSpeed's globals)."""
    script = tmp_path / "zero1.py"
    script.write_text(f"""
import sys, torch
sys.path.insert(0, {str(Path(__file__).parent)!r})
from conftest import FORGET, RETAIN, CORPUS, TINY
from lethe.benchmarks.base import QAItem
from lethe.config import TrainConfig
from lethe.models import tiny_llama, train_tokenizer
from lethe.train import unlearn
tok = train_tokenizer(CORPUS, vocab_size=320)
items = lambda rows: [QAItem(id=i, question=q, answer=a) for i, q, a in rows]
out = []
make = lambda: tiny_llama(len(tok), seed=0, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                          pad_token_id=tok.pad_token_id, **TINY)
w0 = [p.detach().clone() for p in make().parameters()]
for sharding in ("none", "zero2"):
    model, stats = unlearn(make(), tok, "npo", items(FORGET), items(RETAIN),
                           TrainConfig(lr=1e-3, epochs=2, batch_size=2, grad_accum=2, sharding=sharding))
    out.append((stats.sharding, stats.grad_norm, [p.detach().clone() for p in model.parameters()]))
(k1, n1, w1), (k2, n2, w2) = out
assert (k1, k2) == ("none", "zero2"), (k1, k2)
assert abs(n1 - n2) <= 1e-5 * abs(n1), (n1, n2)
assert all(torch.allclose(a, b, rtol=1e-4, atol=1e-6) for a, b in zip(w1, w2))
assert not all(torch.equal(a, b) for a, b in zip(w1, w0))  # it trained
import os
assert "LOCAL_RANK" not in os.environ and not torch.distributed.is_initialized()  # nothing left behind
print("ok")
""")
    import os
    import subprocess
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": "1", "LETHE_NO_PROGRESS": "1"}
    env.pop("WORLD_SIZE", None)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]


def test_the_zero_stage_of_an_accelerate_deepspeed_config(monkeypatch, tmp_path):
    """accelerate launch sets ACCELERATE_DEEPSPEED_ZERO_STAGE from the config's zero_stage, or names a DeepSpeed
    JSON file whose zero_optimization.stage counts (2 where it says none); stages 0 and 1 are refused."""
    from lethe import sharding

    monkeypatch.setattr(dist, "world", lambda: 2)
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    assert sharding.requested("fsdp") == "fsdp"  # the option wins over the launch's config
    ds = tmp_path / "ds_config.json"
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_CONFIG_FILE", str(ds))
    for config, kind in (({"zero_optimization": {"stage": 3, "offload_param": {"device": "cpu"}}}, "zero3"),
                         ({"train_batch_size": "auto"}, "zero2")):
        ds.write_text(json.dumps(config))
        assert sharding.requested("none") == kind
    ds.write_text('{"zero_optimization": {"stage": 1}}')
    with pytest.raises(LetheError, match=r"^the accelerate DeepSpeed config asks for ZeRO stage 1; Lethe drives stages "
                                         r"2 and 3 "):
        sharding.requested("none")
    ds.write_text("{not json")
    with pytest.raises(LetheError, match=rf"^the DeepSpeed config {ds} \(named by the accelerate config\) cannot be "
                                         "read: "):
        sharding.requested("none")
    # what DeepSpeed is handed: the JSON file's ZeRO section (bucket sizes, offload) at the stage Lethe runs, the
    # accelerate config's offload devices over it, clipping from train.max_grad_norm, bf16 as the weights are
    ds.write_text(json.dumps({"zero_optimization": {"stage": 1, "reduce_bucket_size": 5e7,
                                                    "offload_param": {"device": "cpu", "pin_memory": True}},
                              "train_batch_size": 64, "gradient_clipping": 9.0}))
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_OFFLOAD_PARAM_DEVICE", "nvme")
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_OFFLOAD_OPTIMIZER_DEVICE", "cpu")
    config = sharding.deepspeed_config(3, torch.bfloat16, 0.5)
    assert config["zero_optimization"] == {"stage": 3, "reduce_bucket_size": 5e7,
                                           "offload_param": {"device": "nvme", "pin_memory": True},
                                           "offload_optimizer": {"device": "cpu"}}
    assert (config["train_batch_size"], config["train_micro_batch_size_per_gpu"], config["gradient_clipping"]) == (2, 1, 0.5)
    assert config["bf16"] == {"enabled": True} and config["fp16"] == {"enabled": False}
    monkeypatch.delenv("ACCELERATE_DEEPSPEED_CONFIG_FILE")
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_ZERO_STAGE", "3")  # the accelerate config's own zero_stage
    assert sharding.requested("none") == "zero3"
    monkeypatch.setattr(dist, "world", lambda: 1)
    assert sharding.requested("zero3") == "zero3" and sharding.requested("fsdp") == "none"  # one process: ZeRO offloads


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without a GPU")
def test_cuda_on_a_machine_without_one_is_one_line():
    with pytest.raises(LetheError, match=r"^device=cuda:1, but this machine has no CUDA GPU torch can use"):
        placement("cuda:1")
    assert placement() == Placement("cpu", "float32", "")  # auto: the CPU, in float32


def test_load_model_goes_where_placed(make_tiny, tokenizer, tmp_path):
    save_model(make_tiny(tokenizer), tokenizer, tmp_path / "m")
    assert current_placement() == Placement()  # outside a run: float32 on the CPU, as before
    assert next(load_model(tmp_path / "m")[0].parameters()).dtype == torch.float32
    with placed(placement("cpu", "bfloat16", "eager")):
        model, _ = load_model(tmp_path / "m")
        assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
        assert model.config._attn_implementation == "eager"
        assert next(load_model(tmp_path / "m", dtype="float32")[0].parameters()).dtype == torch.float32
    assert current_placement() == Placement()


def _trained(make_tiny, tokenizer, items, **train):
    enc = Encoder(tokenizer)
    seqs = [enc.qa(it.question, it.answer) for it in items]
    cfg = TrainConfig(lr=1e-2, epochs=2, batch_size=2, grad_accum=2, seed=3, **train)
    model, stats = finetune(make_tiny(tokenizer), tokenizer, seqs, cfg)
    return model, stats


def test_fused_adamw_and_gradient_checkpointing_train_as_the_plain_loop(make_tiny, tokenizer, forget_items,
                                                                        retain_items, monkeypatch):
    import transformers.modeling_utils as ckpt  # where transformers takes torch's checkpoint from

    items = forget_items + retain_items
    plain, s0 = _trained(make_tiny, tokenizer, items)
    fused, s1 = _trained(make_tiny, tokenizer, items, optimizer="adamw_fused")
    calls, checkpoint = [], ckpt.checkpoint
    monkeypatch.setattr(ckpt, "checkpoint", lambda *a, **k: calls.append(1) or checkpoint(*a, **k))
    recomputed, s2 = _trained(make_tiny, tokenizer, items, gradient_checkpointing=True)
    assert len(calls) == s2.steps * 2 * len(make_tiny(tokenizer).model.layers)  # 2 micro-batches a step
    # switched off again after training (transformers names the flag so since 5.x's later releases)
    flag = getattr(recomputed, "is_activation_checkpointing", None)
    assert not (recomputed.is_gradient_checkpointing if flag is None else flag)
    assert recomputed.config.use_cache  # off while it trained (no cache beside checkpointing), on again
    assert s0.losses == pytest.approx(s1.losses, rel=1e-5) and s0.losses == pytest.approx(s2.losses, rel=1e-5)
    for a, b, c in zip(plain.parameters(), fused.parameters(), recomputed.parameters()):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(c, a, rtol=1e-5, atol=1e-6)
    assert any(not torch.equal(a, b) for a, b in zip(plain.parameters(), make_tiny(tokenizer).parameters()))


@pytest.mark.skipif(importlib.util.find_spec("bitsandbytes") is not None, reason="bitsandbytes is installed")
def test_8bit_adamw_without_bitsandbytes_is_one_line(make_tiny, tokenizer, forget_items):
    with pytest.raises(LetheError, match=r"^train\.optimizer=paged_adamw_8bit needs the bitsandbytes package "):
        _trained(make_tiny, tokenizer, forget_items, optimizer="paged_adamw_8bit")


def test_a_bfloat16_evaluation_has_its_own_numbers_and_cache_entry(tiny_run, tmp_path):
    """model_dtype=bfloat16 loads the target and retain model in bf16: close to the float32 numbers of the
    session's run, not equal, and cached apart from them."""
    root, _ = tiny_run
    r1 = json.loads((root / "runs" / "r1" / "summary.json").read_text())
    target = Path(r1["provenance"]["model"])
    args = [*TINY, f"cache_dir={root / 'cache'}", f"output={tmp_path}", "attacks=[]", "model_dtype=bfloat16"]
    assert main(["eval", *args, "name=bf16"]) == 0
    summary = json.loads((tmp_path / "bf16" / "summary.json").read_text())
    assert summary["provenance"]["placement"] == {"device": "cpu", "dtype": "bfloat16", "attn_implementation": "",
                                                 "host": False}
    assert r1["provenance"]["placement"]["dtype"] == "float32"
    ours, theirs = summary["rows"][0]["metrics"], r1["rows"][0]["metrics"]
    assert ours["forget_truth_ratio"] != theirs["forget_truth_ratio"]
    assert ours["forget_truth_ratio"] == pytest.approx(theirs["forget_truth_ratio"], rel=0.05)
    assert ours["forget_probability"] == pytest.approx(theirs["forget_probability"], rel=0.1)
    cached = sorted(p.name for p in (root / "cache" / "evals").glob(f"{target.parent.name}-target-*"))
    assert any(n.endswith("-cpu-bfloat16.json") for n in cached) and any("-cpu-" not in n for n in cached)


def test_a_local_path_that_does_not_exist_is_one_line(tmp_path, capsys):
    """A path (not a hub id owner/name) that is not there: said as such, not as a hub lookup failure."""
    missing = tmp_path / "models" / "retain"
    with pytest.raises(LetheError, match=rf"^{missing}: no such model folder; give a folder written by save_pretrained"):
        load_model(missing)
    assert main(["eval", f"model={missing}", f"output={tmp_path / 'runs'}", "name=x", "attacks=[]"]) == 2
    assert capsys.readouterr().err.strip() == (f"lethe: error: {missing}: no such model folder; give a folder written "
                                               "by save_pretrained or a hub id (owner/name)")


def test_evaluation_sharding_keeps_the_cached_evaluations():
    """Sharded evaluation gives one process's numbers, so the fixed models' cached evaluations are shared."""
    whole, sharded = (load_config(overrides=[f"eval.sharding={k}"]).eval for k in ("none", "fsdp"))
    assert whole.cache_settings() == sharded.cache_settings() and "sharding" not in whole.cache_settings()
    other = load_config(overrides=["eval.batch_size=3"]).eval
    assert other.cache_settings() != whole.cache_settings()


def test_master_weights_take_the_updates_bf16_weights_round_away(make_tiny, tokenizer, forget_items, retain_items):
    """At lr 1e-5 Adam moves each weight by about 1e-5 a step, under half a bf16 rounding step of a weight of
    the init's magnitude (0.02: 2^-14 = 6e-5): bf16 weights updated in place mostly never move, and the run
    says so; float32 master weights (the default) take the updates and follow the float32 training (80 steps
    here, so that the updates add up to a few rounding steps)."""
    from lethe.loop import rounding_note

    enc = Encoder(tokenizer)
    seqs = [enc.qa(it.question, it.answer) for it in forget_items + retain_items]

    def trained(dtype, **options):
        start = make_tiny(tokenizer).to(dtype)
        before = [p.detach().float().clone() for p in start.parameters()]
        cfg = TrainConfig(lr=1e-5, epochs=40, batch_size=4, grad_accum=1, warmup_ratio=0.0, seed=3, **options)
        model, stats = finetune(start, tokenizer, seqs, cfg)
        return [p.detach().float() - b for p, b in zip(model.parameters(), before)], stats, cfg

    moved32, s32, _ = trained(torch.float32)
    moved16, s16, c16 = trained(torch.bfloat16, master_weights=False)
    master, sm, cm = trained(torch.bfloat16)
    assert (s32.weight_dtype, s16.weight_dtype, sm.weight_dtype) == ("float32", "bfloat16", "bfloat16")
    assert (s32.master_weights, s16.master_weights, sm.master_weights) == (False, False, True)
    # the share of sampled weights never moved (measured: 0, 0.85, 0.05): 80 steps of 1e-5 add up in float32
    assert s32.unmoved < 0.01 and s16.unmoved > 0.7 and sm.unmoved < 0.2

    def gap(moved):  # relative distance of a training's total update from the float32 one's
        a, b = torch.cat([m.reshape(-1) for m in moved]), torch.cat([m.reshape(-1) for m in moved32])
        return float((a - b).norm() / b.norm())

    assert gap(master) < 0.25 and gap(moved16) > 0.8  # measured: 0.13 and 0.94
    note = rounding_note("ga", s16, c16)
    assert note.startswith(f"ga: {s16.unmoved:.0%} of the sampled trained weights never moved: in bfloat16 their "
                           "updates at lr 1e-05 rounded away; train.master_weights=true keeps float32 copies")
    assert rounding_note("ga", sm, cm) == "" and rounding_note("ga", s32, c16) == ""


def test_float16_weights_train_with_loss_scaling(make_tiny, tokenizer, forget_items, retain_items, monkeypatch):
    """A loss 10^4 times smaller gives gradients under float16's smallest normal number (6e-5), as many of a
    large model's are: unscaled they underflow and most of the update is lost; the dynamic loss scale keeps
    them, and Adam (invariant to the gradient's scale) then follows the float32 training. The same for float32
    LoRA adapters on float16 layers, whose gradients flow back through them. A loss 100 times larger overflows
    at the first scale (2^16): those steps run again at half the scale, so none is lost."""
    import lethe.loop as loop_mod
    from lethe.models import add_lora

    nll = loop_mod.sequence_nll
    enc = Encoder(tokenizer)
    seqs = [enc.qa(it.question, it.answer) for it in forget_items + retain_items]

    def trained(dtype, factor, lora=False, **options):
        monkeypatch.setattr(loop_mod, "sequence_nll", lambda *a: nll(*a) * factor)
        start = make_tiny(tokenizer).to(dtype)
        if lora:  # float32 adapters (peft's default) on the float16 layers
            torch.manual_seed(0)
            start = add_lora(start, r=4, alpha=8)
        before = [p.detach().float().clone() for p in start.parameters()]
        cfg = TrainConfig(lr=1e-3, epochs=5, batch_size=4, warmup_ratio=0.0, seed=3, **options)
        model, stats = finetune(start, tokenizer, seqs, cfg)
        return torch.cat([(p.detach().float() - b).reshape(-1) for p, b in zip(model.parameters(), before)]), stats

    def gap(update, reference):
        return float((update - reference).norm() / reference.norm())

    reference, s32 = trained(torch.float32, 1e-4)
    scaled, s16 = trained(torch.float16, 1e-4)
    assert s32.loss_scale is None and s16.loss_scale == 2.0**16 and s16.rescaled_steps == 0 and s16.master_weights
    assert gap(scaled, reference) < 0.05  # measured: 0.005
    (lora32, _), (lora16, l16) = trained(torch.float32, 1e-4, lora=True), trained(torch.float16, 1e-4, lora=True)
    assert l16.loss_scale == 2.0**16 and not l16.master_weights  # the adapters are float32 already
    assert gap(lora16, lora32) < 0.05  # measured: 0.001
    (large32, _), (large16, big) = trained(torch.float32, 100), trained(torch.float16, 100)
    assert big.rescaled_steps == 5 and big.loss_scale == 2.0**11 and big.steps == 10  # 2^16 halved 5 times
    assert gap(large16, large32) < 0.05  # measured: 0.011
    monkeypatch.setattr(loop_mod, "loss_scaler", lambda *a: None)
    assert gap(trained(torch.float16, 1e-4)[0], reference) > 0.5  # unscaled; measured: 0.91
    assert gap(trained(torch.float16, 1e-4, lora=True)[0], lora32) > 0.5  # measured: 0.86
    monkeypatch.undo()
    with pytest.raises(LetheError, match=r"^float16 weights train with loss scaling over float32 master weights: "
                                         r"set train\.master_weights=true, or model_dtype=bfloat16$"):
        trained(torch.float16, 1, master_weights=False)


def test_a_launchs_mixed_precision_leaves_the_training_as_it_is(make_tiny, tokenizer, forget_items, monkeypatch):
    """``accelerate launch --mixed_precision bf16`` (or an accelerate config saying so) sets
    ACCELERATE_MIXED_PRECISION. accelerate would wrap a one-process training's forward in bf16 autocast, left on
    the model for its evaluation: Lethe keeps its own precision, bit for bit, and the run's notes say so."""
    from accelerate.state import AcceleratorState

    plain, _ = _trained(make_tiny, tokenizer, forget_items)
    assert dist.launch_mixed_precision_note() == ""
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")
    AcceleratorState._reset_state(True)  # the state a launched process starts with
    try:
        launched, _ = _trained(make_tiny, tokenizer, forget_items)
    finally:
        AcceleratorState._reset_state(True)
    assert all(torch.equal(a, b) for a, b in zip(plain.parameters(), launched.parameters()))
    assert not hasattr(launched, "_original_forward")  # no autocast wrapper left on the model
    assert dist.launch_mixed_precision_note().startswith("the launch's mixed precision (bf16, accelerate's) is not "
                                                         "applied: Lethe's precision comes from model_dtype")
