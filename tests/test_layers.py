"""Decoder-layer discovery (``lethe.models.decoder_layers`` / ``layer_index``) on every architecture family
Lethe names, and the layer options built on it: hidden-state probes, ``train.trainable_layers``, RMU's
setup and loss, ULD's truncated assistant.

Each model is a random-init 2-layer model built offline from its ``transformers`` config (hidden 16),
some of them wrapped in LoRA: the prefix then carries peft's ``base_model.model.``.
"""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from lethe.data import Encoded
from lethe.errors import LetheError
from lethe.inference.uld import truncated_copy
from lethe.models import add_lora, decoder_layers, layer_index
from lethe.reference import hidden_states
from lethe.train import TrainConfig, select_trainable, unlearn

IDS = dict(pad_token_id=0, bos_token_id=1, eos_token_id=2)
SMALL = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
             max_position_embeddings=64, **IDS)
# architecture: (config class, its tiny settings, the expected prefix of the layer list)
ARCHS = {
    "llama": ("LlamaConfig", dict(SMALL, num_key_value_heads=2), "model.layers"),
    "qwen2": ("Qwen2Config", dict(SMALL, num_key_value_heads=2), "model.layers"),
    "gemma": ("GemmaConfig", dict(SMALL, num_key_value_heads=2, head_dim=8), "model.layers"),
    "mistral": ("MistralConfig", dict(SMALL, num_key_value_heads=2), "model.layers"),
    "phi": ("PhiConfig", SMALL, "model.layers"),
    "phi3": ("Phi3Config", dict(SMALL, num_key_value_heads=2), "model.layers"),
    "gpt2": ("GPT2Config", dict(n_embd=16, n_layer=2, n_head=2, n_positions=64, **IDS), "transformer.h"),
    "gptj": ("GPTJConfig", dict(n_embd=16, n_layer=2, n_head=2, rotary_dim=4, n_positions=64, **IDS),
             "transformer.h"),
    "falcon": ("FalconConfig", dict(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, **IDS),
               "transformer.h"),
    "bloom": ("BloomConfig", dict(hidden_size=16, n_layer=2, n_head=2, **IDS), "transformer.h"),
    "opt": ("OPTConfig", dict(hidden_size=16, ffn_dim=32, word_embed_proj_dim=16, num_hidden_layers=2,
                              num_attention_heads=2, max_position_embeddings=64, **IDS), "model.decoder.layers"),
    "gpt_neox": ("GPTNeoXConfig", dict(SMALL), "gpt_neox.layers"),
}
LORA = ("llama", "opt", "gpt_neox")  # wrapped in LoRA as well
CASES = [(a, False) for a in ARCHS] + [(a, True) for a in LORA]
IDS_CASES = [f"{a}-lora" if lora else a for a, lora in CASES]


def build(arch: str, vocab: int = 64, lora: bool = False):
    import transformers

    name, settings, _ = ARCHS[arch]
    config = getattr(transformers, name)(vocab_size=vocab, **settings)
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config)
    return add_lora(model, r=2, alpha=4) if lora else model


def prefix(arch: str, lora: bool) -> str:
    return ("base_model.model." if lora else "") + ARCHS[arch][2]


def batch(vocab: int = 64) -> Encoded:
    ids = torch.tensor([[1, 5, 9, 12, 2], [1, 7, 3, 2, 0]])  # (B, T) = (2, 5), the second right-padded
    att = (ids != 0).long()
    att[:, 0] = 1
    return Encoded(ids, att, ids.clone())


@pytest.mark.parametrize("arch,lora", CASES, ids=IDS_CASES)
def test_discovery_finds_the_decoder_stack(arch, lora):
    model = build(arch, lora=lora)
    name, layers = decoder_layers(model)
    assert name == prefix(arch, lora) and isinstance(layers, nn.ModuleList) and len(layers) == 2
    assert dict(model.named_modules())[name] is layers
    index = layer_index(model)
    names = [n for n, _ in model.named_parameters()]
    in_layer_1 = [n for n in names if n.startswith(f"{name}.1.")]
    assert in_layer_1 and all(index(n) == 1 for n in in_layer_1)
    embeddings = [n for n in names if "emb" in n or ".wte." in n or "embed_in" in n]
    assert embeddings and all(index(n) is None for n in embeddings)
    assert {index(n) for n in names} == {None, 0, 1}


@pytest.mark.parametrize("arch,lora", CASES, ids=IDS_CASES)
def test_hidden_states_of_layer_0(arch, lora):
    model = build(arch, lora=lora).eval()
    with torch.no_grad():
        h = hidden_states(model, batch(), 0)
    assert h.shape == (2, 5, 16) and bool(torch.isfinite(h).all())


@pytest.mark.parametrize("arch,lora", CASES, ids=IDS_CASES)
def test_trainable_layers_freeze_exactly_the_other_layers(arch, lora):
    model = build(arch, lora=lora)
    before = {n for n, p in model.named_parameters() if p.requires_grad}
    frozen = select_trainable(model, TrainConfig(trainable_layers=(1,)))
    kept = {n for n, p in model.named_parameters() if p.requires_grad}
    assert kept == {n for n in before if n.startswith(f"{prefix(arch, lora)}.1.")}
    assert len(frozen) == len(before) - len(kept)
    with pytest.raises(LetheError, match=r"layer 2 does not exist \(the model has layers 0-1\)"):
        select_trainable(build(arch, lora=lora), TrainConfig(trainable_layers=(2,)))


class Stack(nn.Module):
    """No known path: two ModuleLists of config.num_hidden_layers modules; the bigger one is the stack."""

    def __init__(self):
        super().__init__()
        self.config = SimpleNamespace(num_hidden_layers=2)
        self.gates = nn.ModuleList([nn.Linear(2, 1) for _ in range(2)])
        self.body = nn.ModuleList([nn.Linear(8, 8) for _ in range(2)])
        self.other = nn.ModuleList([nn.Linear(8, 8) for _ in range(3)])


def test_discovery_falls_back_to_the_list_of_num_hidden_layers():
    model = Stack()
    assert decoder_layers(model) == ("body", model.body)
    index = layer_index(model)
    assert index("body.1.weight") == 1 and index("gates.1.weight") is None and index("other.2.bias") is None


def test_a_model_without_a_layer_list_is_a_one_line_error():
    model = nn.Sequential(nn.Embedding(8, 4), nn.Linear(4, 8))
    with pytest.raises(LetheError) as err:
        decoder_layers(model)
    message = str(err.value)
    assert "\n" not in message and message.startswith("Sequential: cannot find its decoder layers")
    assert "model.layers" in message and "transformer.h" in message and "num_hidden_layers" in message
    with pytest.raises(LetheError, match="Sequential: cannot find its decoder layers"):
        select_trainable(model, TrainConfig(trainable_layers=(0,)))
    assert select_trainable(model, TrainConfig(trainable=("1.*",))) != []  # no layer option: no layers needed


@pytest.mark.parametrize("arch,pattern,lora", [("gpt2", "mlp.c_proj", False), ("opt", "fc2", False),
                                               ("opt", "fc2", True)], ids=["gpt2", "opt", "opt-lora"])
def test_rmu_trains_one_step_on_other_architectures(arch, pattern, lora, tokenizer, forget_items, retain_items):
    model = build(arch, vocab=len(tokenizer))
    model.config.pad_token_id = tokenizer.pad_token_id
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    cfg = TrainConfig(lr=1e-2, max_steps=1, batch_size=2, warmup_ratio=0.0, scheduler="constant", lora=lora,
                      lora_merge=False)
    model, stats = unlearn(model, tokenizer, "rmu", forget_items, retain_items, cfg,
                           options={"layer": 1, "param_pattern": f"*{pattern}*", "steering": "relative"})
    assert stats.steps == 1 and all(math.isfinite(x) for x in stats.losses)
    assert stats.last_stats["forget_activation_norm"] > 0
    stack = prefix(arch, lora)
    # layer 1 steered: the matching parameters of layers 0 and 1 train (LoRA: their adapters' B, which starts at 0)
    parts = (f"{pattern}.lora_B.default.weight",) if lora else (f"{pattern}.weight", f"{pattern}.bias")
    selected = {f"{stack}.{i}.{part}" for i in (0, 1) for part in parts}
    if lora:
        moved = {n for n, p in model.named_parameters() if "lora_B" in n and bool(p.detach().any())}
    else:
        moved = {n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])}
    assert moved == selected


@pytest.mark.parametrize("arch", ["gpt2", "gpt_neox", "llama"])
def test_uld_assistant_keeps_the_first_layers(arch):
    model = build(arch).eval()
    small, kept = truncated_copy(model, 1)
    name, layers = decoder_layers(small)
    assert kept == 1 and name == ARCHS[arch][2] and len(layers) == 1 and small.config.num_hidden_layers == 1
    assert len(decoder_layers(model)[1]) == 2 and model.config.num_hidden_layers == 2  # the target is untouched
    assert all(torch.equal(a, b) for a, b in zip(layers[0].state_dict().values(),
                                                  decoder_layers(model)[1][0].state_dict().values()))
    with torch.no_grad():
        logits = small(input_ids=batch().input_ids, attention_mask=batch().attention_mask).logits
    assert logits.shape == (2, 5, 64)
