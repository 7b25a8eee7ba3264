"""Typed config: defaults <- YAML <- key=value overrides, sections start from RunConfig's own defaults."""
from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from lethe.config import MIN_VOCAB_SIZE, RunConfig, TinyModelConfig, TrainConfig, load_config
from lethe.errors import LetheError


def test_one_train_key_keeps_the_other_run_defaults():
    """RunConfig's train defaults differ from TrainConfig's class defaults (lr 1e-3 vs 1e-5, batch 16 vs 8):
    overriding one key must not reset the others to the class defaults."""
    default = RunConfig().train
    assert (default.lr, default.batch_size) == (1e-3, 16)
    c = load_config(overrides=["train.lora=true"])
    assert c.train.lora and c.train.lr == default.lr and c.train.batch_size == default.batch_size
    c = load_config(overrides=["train.lr=5e-4"])
    assert c.train.lr == 5e-4 and c.train.batch_size == 16 and c.train.epochs == default.epochs


def test_yaml_section_and_overrides_compose(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("train:\n  epochs: 2\neval:\n  bootstrap: 10\n")
    c = load_config(p, ["train.lr=2e-4"])
    assert (c.train.epochs, c.train.lr, c.train.batch_size, c.eval.bootstrap) == (2.0, 2e-4, 16, 10)
    with pytest.raises(LetheError, match="unknown config key 'train.lrr'; did you mean 'train.lr'"):
        load_config(overrides=["train.lrr=1"])


# --- the tiny model's settings -------------------------------------------------------------------

def test_default_tiny_model_config_is_valid():
    TinyModelConfig().check()
    RunConfig().tiny_model.check()


@pytest.mark.parametrize("key,value", [
    ("vocab_size", 0), ("hidden_size", 0), ("num_layers", 0), ("num_heads", -1), ("intermediate_size", 0),
    ("batch_size", 0), ("base_epochs", 0.0), ("finetune_epochs", -1.0), ("lr", 0.0), ("lr", float("nan")),
    ("seed", -1), ("hidden_size", 130), ("vocab_size", MIN_VOCAB_SIZE - 1),
])
def test_tiny_model_config_check_names_the_key(key, value):
    cfg = dataclasses.replace(TinyModelConfig(), **{key: value})
    fix = rf"; fix it in the config or with tiny_model\.{key}="
    with pytest.raises(LetheError, match=rf"^tiny_model\.{key} .*{fix}") as exc:
        cfg.check()
    assert "\n" not in str(exc.value)


def test_tiny_model_hidden_size_divisible_by_heads():
    with pytest.raises(LetheError,
                       match=r"tiny_model\.hidden_size must be divisible by tiny_model\.num_heads \(4\), got 130"):
        TinyModelConfig(hidden_size=130).check()
    TinyModelConfig(hidden_size=136, num_heads=4).check()
    with pytest.raises(LetheError, match=r"tiny_model\.hidden_size / tiny_model\.num_heads must be even.*132 / 4 = 33"):
        TinyModelConfig(hidden_size=132, num_heads=4).check()  # head_dim 33: rotary embeddings need pairs


def test_min_vocab_size_is_what_the_tokenizer_holds_before_any_merge():
    """Below MIN_VOCAB_SIZE the BPE trainer keeps its special tokens and 256 byte symbols anyway."""
    from lethe.models import train_tokenizer

    texts = ["Where was Alice Moon born?", "Alice Moon was born in Paris."]
    assert len(train_tokenizer(texts, vocab_size=8)) == MIN_VOCAB_SIZE
    assert len(train_tokenizer(texts, vocab_size=MIN_VOCAB_SIZE + 5)) == MIN_VOCAB_SIZE + 5
    TinyModelConfig(vocab_size=MIN_VOCAB_SIZE).check()


# --- config files --------------------------------------------------------------------------------

def test_config_file_that_is_not_utf8_is_a_one_line_error(tmp_path):
    p = tmp_path / "latin1.yaml"
    p.write_bytes("train:\n  lr: 1e-3\nname: café\n".encode("latin-1"))  # é: byte 0xe9 at offset 7 + 11 + 9
    with pytest.raises(LetheError) as exc:
        load_config(p)
    msg = str(exc.value)
    assert msg.startswith(f"{p}:3: not UTF-8 (byte offset 27: b'\\xe9')") and "\n" not in msg


def test_config_file_offset_beyond_the_first_read_buffer(tmp_path):
    """The offset counts from the start of the file, not from the start of some read buffer."""
    p = tmp_path / "long.yaml"
    head = "".join(f"# comment line {i:05d}\n" for i in range(2000)).encode()  # 44000 bytes of ASCII
    p.write_bytes(head + b"name: \xff\n")
    with pytest.raises(LetheError, match=rf"^{p}:2001: not UTF-8 \(byte offset {len(head) + 6}: "):
        load_config(p)


# --- where the configs live ----------------------------------------------------------------------

def test_train_config_lives_in_config_and_train_re_exports_it():
    import lethe.train

    assert lethe.train.TrainConfig is TrainConfig and RunConfig().train.__class__ is TrainConfig


def test_config_imports_no_training_inference_or_pipeline_module():
    """config is the bottom of the house: importing it loads none of the modules that use it."""
    code = ("import sys, lethe.config; "
            "print(' '.join(sorted(m for m in sys.modules if m.startswith('lethe'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert "lethe.config" in out
    for name in ("lethe.train", "lethe.inference", "lethe.pipeline", "lethe.methods", "lethe.scenarios"):
        assert name not in out, out
