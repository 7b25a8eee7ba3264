"""LoRA adapter folders (what a `train.lora=true` run saves) load wherever a model does: the same logits
as the model right after unlearning, through the API and the CLI, and one-line errors for broken folders."""
from __future__ import annotations

import json
import re

import pytest
import torch

from lethe.cli import main
from lethe.errors import LetheError
from lethe.models import count_parameters, load_model, save_model, weights_problem
from lethe.train import TrainConfig, unlearn

from tiny_run import TINY

FAST = [*TINY, "eval.bootstrap=0", "eval.embedding_model="]
BENCH = [o for o in TINY if o.startswith("benchmark_options.")]
LORA = TrainConfig(lr=1e-2, epochs=2, batch_size=4, warmup_ratio=0.0, scheduler="constant", lora=True)


def logits(model, tokenizer):
    enc = tokenizer(["Where was Alice Moon born?", "Clara Reed writes plays about cats."], return_tensors="pt",
                    padding=True)
    with torch.no_grad():
        return model(**enc).logits


@pytest.fixture
def unlearned(tmp_path, monkeypatch, tokenizer, make_tiny, forget_items, retain_items):
    """``(peft model right after unlearning, tokenizer, adapter folder, base folder)``: a LoRA run's target loaded
    from its folder, unlearned with `ga`, saved as a run saves it (relative paths, as a run is given them)."""
    monkeypatch.chdir(tmp_path)
    save_model(make_tiny(tokenizer), tokenizer, "base")
    model, tok = load_model("base")
    model, _ = unlearn(model, tok, "ga", forget_items, retain_items, LORA)
    assert any(p.abs().sum() > 0 for n, p in model.named_parameters() if "lora_B" in n)  # the adapter moved
    folder = save_model(model, tok, tmp_path / "runs" / "r" / "models" / "ga")
    assert json.loads((folder / "adapter_config.json").read_text())["base_model_name_or_path"] == "base"
    assert not (folder / "config.json").exists()
    return model, tok, folder, tmp_path / "base"


def set_base(folder, base):
    config = json.loads((folder / "adapter_config.json").read_text())
    (folder / "adapter_config.json").write_text(json.dumps({**config, "base_model_name_or_path": base}))


def test_adapter_folder_loads_to_the_logits_of_the_unlearned_model(unlearned):
    """Unmerged, the same modules compute the same sums on the same weights: bit-identical (torch.equal). Merged,
    W + B·A·s is summed before the product, so float32 rounding differs: within 1e-5 (the logits are O(1))."""
    model, tok, folder, base = unlearned
    expected = logits(model, tok)
    assert not torch.allclose(expected, logits(load_model(base)[0], tok), atol=1e-3)  # the adapter matters
    peft, peft_tok = load_model(folder, merge_lora=False)
    assert torch.equal(logits(peft, peft_tok), expected)
    merged, merged_tok = load_model(folder)
    assert not hasattr(merged, "peft_config") and merged_tok.get_vocab() == tok.get_vocab()
    torch.testing.assert_close(logits(merged, merged_tok), expected, rtol=1e-5, atol=1e-5)
    trainable, total = count_parameters(merged)
    assert trainable == total  # a plain model, trainable as from_pretrained gives it (relearning, full unlearning)
    assert weights_problem(folder) == ""


def test_an_adapter_trained_on_a_loaded_adapter_names_it_as_its_base(unlearned, forget_items, retain_items):
    """A LoRA run whose target is an adapter folder: its adapters stack on that folder, not on the first base."""
    model, tok, folder, _ = unlearned
    first, tok = load_model(folder)
    second, _ = unlearn(first, tok, "ga", forget_items, retain_items, LORA)
    top = save_model(second, tok, folder.parent / "ga-again")
    assert json.loads((top / "adapter_config.json").read_text())["base_model_name_or_path"] == str(folder)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        (top / f).unlink()
    again, again_tok = load_model(top, merge_lora=False)  # no tokenizer of its own: the nearest one
    assert again_tok.get_vocab() == tok.get_vocab()
    assert torch.equal(logits(again, tok), logits(second, tok))


def test_cli_eval_on_an_adapter_folder(unlearned, tmp_path, capsys):
    """`lethe eval model=<adapter folder>` scores exactly what the same model saved whole scores."""
    _, _, folder, _ = unlearned
    merged, tok = load_model(folder)
    whole = save_model(merged, tok, tmp_path / "whole")
    metrics = {}
    for name, model in (("adapter", folder), ("whole", whole)):
        code = main(["eval", *FAST, f"model={model}", f"output={tmp_path / 'out'}", f"name={name}", "attacks=[]"])
        err = capsys.readouterr().err
        assert code == 0, err
        rows = json.loads((tmp_path / "out" / name / "summary.json").read_text())["rows"]
        assert [r["name"] for r in rows] == ["target"]
        metrics[name] = rows[0]["metrics"]
    assert "forget_rouge_l" in metrics["adapter"] and metrics["adapter"] == metrics["whole"]


def test_cli_attack_and_retain_model_on_adapter_folders(unlearned, tmp_path, capsys):
    _, _, folder, base = unlearned
    code = main(["eval", *FAST, f"model={base}", f"retain_model={folder}", f"output={tmp_path / 'out'}", "name=ev",
                 "attacks=[]"])
    err = capsys.readouterr().err
    assert code == 0, err
    rows = json.loads((tmp_path / "out" / "ev" / "summary.json").read_text())["rows"]
    assert [r["name"] for r in rows] == ["target", "retain model"] and "forget_quality" in rows[0]["metrics"]
    code = main(["attack", str(folder), *BENCH, "attacks=[quantize_4bit]", "eval.bootstrap=0"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "quantize_4bit" in out.out


@pytest.mark.parametrize("base, expected", [
    ("gone/model/folder", "base_model_name_or_path 'gone/model/folder' does not exist"),
    ("", "base_model_name_or_path is empty"),
])
def test_broken_base_is_one_line_exit_2(unlearned, capsys, base, expected):
    _, _, folder, _ = unlearned
    set_base(folder, base)
    code = main(["attack", str(folder), *BENCH, "attacks=[quantize_4bit]"])
    err = capsys.readouterr().err
    assert code == 2 and f"{folder / 'adapter_config.json'}: {expected}" in err, err
    assert "edit base_model_name_or_path in" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_relative_base_is_read_from_the_current_directory(unlearned, tmp_path, monkeypatch):
    """As peft and transformers read it: from where Lethe runs (here tmp_path), not from the adapter folder."""
    _, _, folder, _ = unlearned
    set_base(folder, "./base")
    load_model(folder)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with pytest.raises(LetheError, match=re.escape(f"'./base' does not exist (a relative path is read from the "
                                                   f"current directory, {elsewhere})")):
        load_model(folder)


def test_the_base_gets_the_checks_of_any_model(unlearned):
    _, _, folder, base = unlearned
    config = json.loads((base / "config.json").read_text())
    (base / "config.json").write_text(json.dumps({**config, "auto_map": {"AutoModelForCausalLM": "x.Model"}}))
    with pytest.raises(LetheError, match=re.escape("base: its config.json names custom model code")) as err:
        load_model(folder)
    assert str(err.value).endswith(f"(the base model of {folder}, base_model_name_or_path in {folder}/"
                                   "adapter_config.json)")


def test_pickled_adapter_weights_are_refused(unlearned, capsys):
    _, _, folder, _ = unlearned
    (folder / "adapter_model.safetensors").rename(folder / "adapter_model.bin")
    assert weights_problem(folder) == "no safetensors weights"
    code = main(["attack", str(folder), *BENCH, "attacks=[quantize_4bit]"])
    err = capsys.readouterr().err
    assert code == 2 and f"{folder}: cannot load model weights (no adapter_model.safetensors: adapter_model.bin" in err
    assert "Lethe loads safetensors weights only" in err and len(err.strip().splitlines()) == 1
