"""bench/gpu.py at its tiny shape: every part runs through Lethe's code on whatever device there is (the
CPU here), the JSON has the documented structure and its figures are real (hand-checked where possible)."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def gpu():
    spec = importlib.util.spec_from_file_location("bench_gpu", ROOT / "bench" / "gpu.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def result(gpu, tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu") / "gpu-tiny.json"
    assert gpu.main(["--shape", "tiny", "--out", str(out)]) == 0
    return json.loads(out.read_text(encoding="utf-8"))


def linear_shapes(cfg: dict) -> list[tuple[int, int]]:
    """(in, out) of one decoder layer's Linear layers by hand: q, k, v, o, gate, up, down."""
    h, i = cfg["hidden_size"], cfg["intermediate_size"]
    kv = h // cfg["num_attention_heads"] * cfg["num_key_value_heads"]
    return [(h, h), (h, kv), (h, kv), (h, h), (h, i), (h, i), (i, h)]


def linear_weights(cfg: dict) -> int:
    """N of the MFU formula: every Linear layer's weights, the LM head included."""
    per_layer = sum(a * b for a, b in linear_shapes(cfg))
    return cfg["num_hidden_layers"] * per_layer + cfg["vocab_size"] * cfg["hidden_size"]


def lora_params(cfg: dict, r: int = 8) -> int:
    """r * (in + out) per adapted layer (peft's "all-linear" leaves the LM head out)."""
    return cfg["num_hidden_layers"] * r * sum(a + b for a, b in linear_shapes(cfg))


def test_structure_and_hardware(result, gpu):
    hw = result["hardware"]
    assert {"device", "cuda", "torch", "cpu_threads"} <= set(hw) and hw["device"] and hw["cpu_threads"] >= 1
    assert result["shape"] == "tiny" and set(result["parts"]) == {"a", "b", "c"}
    assert set(result["targets"]) == set(gpu.TARGETS)
    for row in result["targets"].values():  # the targets are for the full shape: never judged on a tiny one
        assert row["met"] is None and "full shape" in row["note"]
    assert result["total_seconds"] > 0


def test_training_figures(result, gpu):
    a, tiny = result["parts"]["a"], gpu.SHAPES["tiny"]
    cfg = tiny["a"][1]
    assert a["model"]["config"] == cfg and a["model"]["method"] == "npo"
    full, lora = a["full"], a["lora"]
    for run, factor in ((full, 6), (lora, 4)):
        assert run["status"] == "ok" and run["steps"] == tiny["steps"] and run["tokens"] > 0
        assert run["tokens_per_second"] == pytest.approx(run["tokens"] / run["seconds"], rel=0.02)
        assert run["matmul_params"] == linear_weights(cfg)
        assert run["flops_per_token"] == factor * linear_weights(cfg)
        assert run["reference_tokens"] > 0 and run["final_loss"] > 0
    assert full["trainable_params"] == full["total_params"]
    # the full run again, its weights updated in place: float32 here, so the same training (on a GPU, bf16
    # weights with and without float32 master weights)
    in_place = a["full_in_place"]
    assert in_place["status"] == "ok" and in_place["final_loss"] == pytest.approx(full["final_loss"], rel=1e-6)
    assert not in_place["master_weights"] and not full["master_weights"]  # float32 weights need none
    assert in_place["unmoved"] == full["unmoved"] < 0.01
    # one adapter on the frozen base: the warm-up's adapter was removed before the measured run
    assert lora["trainable_params"] == lora_params(cfg) < full["trainable_params"]
    assert lora["total_params"] == full["total_params"] + lora["trainable_params"]
    # same items, same seeds: both runs train the same sequences
    assert lora["tokens"] == full["tokens"]


def test_eval_counts_what_it_was_given(result, gpu):
    b, tiny = result["parts"]["b"], gpu.SHAPES["tiny"]
    assert b["status"] == "ok" and b["logprobs_finite"]
    assert b["scored_sequences"] == tiny["scored"] and b["generations"] == tiny["generated"]
    assert 0 < b["scored_answer_tokens"] < b["sequence_tokens"]  # prompts are not scored
    assert 0 < b["tokens_generated"] <= tiny["generated"] * tiny["max_new_tokens"]
    assert b["total_seconds"] == pytest.approx(b["scoring_seconds"] + b["generation_seconds"], abs=2e-3)


def test_memory_part_and_what_the_cpu_cannot_measure(result, gpu):
    c = result["parts"]["c"]
    assert c["model"]["config"]["tie_word_embeddings"] is False
    lora, full = c["lora"], c["full_checkpointing"]
    assert lora["status"] == full["status"] == "ok" and lora["steps"] == full["steps"] == 1
    assert full["activation_checkpointing"] and not lora["activation_checkpointing"]
    assert lora["trainable_params"] == lora_params(c["model"]["config"]) < full["trainable_params"]
    assert full["bitsandbytes"] in ("installed", "not installed")
    assert full["optimizer"] == "adamw" and full["8bit_adamw"].startswith("not run (")  # no GPU here
    runs = [result["parts"]["a"]["full"], result["parts"]["a"]["lora"], result["parts"]["b"], lora, full]
    for run in runs:
        if result["hardware"]["cuda"]:
            assert run["peak_memory_bytes"] > 0
        else:
            assert run["peak_memory_bytes"] is None and "no CUDA device" in run["peak_memory_note"]
    if not result["hardware"]["cuda"]:  # no known peak FLOP/s for a CPU: MFU is null, and says why
        assert full["mfu"] is None and "--peak-tflops" in full["mfu_note"]


def test_mfu_formula_with_a_given_peak(gpu, tmp_path):
    out = tmp_path / "a.json"
    assert gpu.main(["--shape", "tiny", "--parts", "a", "--peak-tflops", "0.05", "--out", str(out)]) == 0
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["parts"]["b"] == result["parts"]["c"] == {"status": "skipped", "reason": "not in --parts"}
    for run in (result["parts"]["a"]["full"], result["parts"]["a"]["lora"]):
        peak = 0.05e12
        assert run["mfu"] == pytest.approx(run["flops_per_token"] * run["tokens_per_second"] / peak, abs=1e-4)
        n = run["matmul_params"]
        flops = run["flops_per_token"] * run["tokens"] + 2 * n * run["reference_tokens"]
        expected = flops / ((run["seconds"] + run["setup_seconds"]) * peak)
        assert run["mfu_with_reference"] == pytest.approx(expected, rel=0.05)


def test_spent_budget_skips_everything_and_exits_1(gpu, tmp_path):
    out = tmp_path / "none.json"
    assert gpu.main(["--shape", "tiny", "--seconds-budget", "1e-9", "--out", str(out)]) == 1
    parts = json.loads(out.read_text(encoding="utf-8"))["parts"]
    runs = [parts["a"]["full"], parts["a"]["lora"], parts["b"], parts["c"]["lora"], parts["c"]["full_checkpointing"]]
    assert all(r["status"] == "skipped" and "seconds budget" in r["reason"] for r in runs)


@pytest.mark.parametrize("argv, message", [
    (["--parts", "a,x"], "--parts must be a comma-separated subset of a,b,c"),
    (["--seconds-budget", "0"], "--seconds-budget must be > 0"),
    (["--peak-tflops", "-1"], "--peak-tflops must be > 0"),
])
def test_bad_arguments_are_one_line_errors(gpu, capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        gpu.main(["--shape", "tiny", *argv])
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_full_shape_needs_cuda(gpu, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: the full shape may run")
    with pytest.raises(SystemExit) as exc:
        gpu.main(["--shape", "full"])
    assert exc.value.code == 2 and "--shape full needs a CUDA device" in capsys.readouterr().err


def test_a_failing_run_is_recorded_and_the_others_go_on(gpu, tmp_path, monkeypatch):
    build = gpu.Bench.model

    def model(self, part):
        if part == "c":
            raise RuntimeError("CUDA out of memory. Tried to allocate 13.50 GiB\nsecond line")
        return build(self, part)

    monkeypatch.setattr(gpu.Bench, "model", model)
    out = tmp_path / "oom.json"
    assert gpu.main(["--shape", "tiny", "--parts", "b,c", "--out", str(out)]) == 0  # b ran
    parts = json.loads(out.read_text(encoding="utf-8"))["parts"]
    assert parts["b"]["status"] == "ok"
    for run in (parts["c"]["lora"], parts["c"]["full_checkpointing"]):
        assert run == {**run, "status": "failed",
                       "reason": "RuntimeError: CUDA out of memory. Tried to allocate 13.50 GiB"}
    assert gpu.main(["--shape", "tiny", "--parts", "c", "--out", str(out)]) == 1  # nothing ran
