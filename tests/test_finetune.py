"""``lethe finetune`` (target + retain model of any benchmark) and the tiny recipe's sizing rule: the tiny
path shares `lethe run`'s builder and cache, model= gets the TOFU recipe, bad input is one line each."""
from __future__ import annotations

import json
import os
from dataclasses import replace

import pytest

from lethe.benchmarks import export_tofu, generate
from lethe.builtin import SIZING_REFERENCE_CHARS, fact_characters, size_tiny_model
from lethe.cli import main
from lethe.config import TinyModelConfig

os.environ.setdefault("LETHE_NO_PROGRESS", "1")

SMALL = ["tiny_model.hidden_size=16", "tiny_model.intermediate_size=32", "tiny_model.num_layers=1",
         "tiny_model.num_heads=2", "tiny_model.vocab_size=300", "tiny_model.base_epochs=1",
         "tiny_model.finetune_epochs=1"]
FAST_EVAL = ["eval.bootstrap=0", "eval.embedding_model=", "eval.max_new_tokens=8", "threads=1", "attacks=[]"]


@pytest.fixture(scope="module")
def tofu_folder(tmp_path_factory):
    """A TOFU-layout folder (full.json, forgetNN.json, retainNN.json, ...) of 10 authors x 8 facts."""
    folder = tmp_path_factory.mktemp("tofu") / "tofu"
    export_tofu(generate(n_authors=10, n_holdout=1, n_world=3, n_people=3), folder)
    return folder


def cli(args, capsys):
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_tiny_finetune_writes_both_models_that_lethe_run_takes(tofu_folder, tmp_path, capsys):
    out, cache = tmp_path / "ft", tmp_path / "cache"
    bench = [f"benchmark={tofu_folder}", "benchmark_options.items_per_author=8"]
    code, text, err = cli(["finetune", *bench, f"out={out}", f"cache_dir={cache}", *SMALL], capsys)
    assert code == 0, err
    assert f"model={out / 'target'} retain_model={out / 'retain'}" in text
    assert not (tmp_path / "ft.partial").exists()
    record = json.loads((out / "finetune.json").read_text())
    assert record["recipe"] == "tiny" and record["items"] == {"target": 80, "retain": 72, "forget": 8}
    assert record["tiny_model"]["hidden_size"] == 16 and not record["sized_to_data"]
    for name in ("target", "retain"):
        assert (out / name / "model.safetensors").is_file() and (out / name / "tokenizer.json").is_file()

    # `lethe eval` is `lethe run` without the methods: both folders load and are evaluated
    code, _, err = cli(["eval", *bench, f"output={tmp_path / 'runs'}", *FAST_EVAL, f"model={out / 'target'}",
                        f"retain_model={out / 'retain'}", "name=given"], capsys)
    assert code == 0, err
    summary = json.loads((tmp_path / "runs" / "given" / "summary.json").read_text())
    assert {r["kind"] for r in summary["rows"]} == {"target", "retain"}
    assert summary["provenance"]["model"] == str(out / "target")

    # the same folder without model=: lethe run trains nothing new, it reads the models finetune cached
    code, _, err = cli(["eval", *bench, *SMALL, f"cache_dir={cache}", f"output={tmp_path / 'runs'}", *FAST_EVAL,
                        "name=own"], capsys)
    assert code == 0, err
    summary = json.loads((tmp_path / "runs" / "own" / "summary.json").read_text())
    assert summary["provenance"]["model"] == record["cache"] + "/target"
    assert summary["provenance"]["tiny_models"]["tiny_model"]["hidden_size"] == 16
    assert any(n.startswith("models: Lethe's tiny target and retain models trained on tofu") for n in summary["notes"])


def test_lethe_run_on_a_tofu_folder_trains_then_reads_the_cache(tofu_folder, tmp_path, capsys, monkeypatch):
    import lethe.loop

    args = ["eval", f"benchmark={tofu_folder}", "benchmark_options.items_per_author=8", *SMALL,
            f"cache_dir={tmp_path / 'cache'}", f"output={tmp_path / 'runs'}", *FAST_EVAL]
    code, _, err = cli([*args, "name=first"], capsys)
    assert code == 0, err
    assert len(list((tmp_path / "cache" / "models").glob("*/target"))) == 1

    def no_training(*a, **k):
        raise AssertionError("trained although the models are cached")

    monkeypatch.setattr(lethe.loop, "finetune", no_training)
    code, _, err = cli([*args, "name=second"], capsys)
    assert code == 0, err
    first, second = (json.loads((tmp_path / "runs" / n / "summary.json").read_text()) for n in ("first", "second"))
    assert first["provenance"]["model"] == second["provenance"]["model"]


def test_model_gets_the_tofu_recipe(tofu_folder, tmp_path, capsys, tokenizer, make_tiny):
    from lethe.models import save_model

    save_model(make_tiny(tokenizer), tokenizer, tmp_path / "base")
    out = tmp_path / "ft"
    code, text, err = cli(["finetune", f"benchmark={tofu_folder}", "benchmark_options.items_per_author=8",
                           "forget_split=forget05", f"model={tmp_path / 'base'}", f"out={out}", "train.max_steps=1",
                           "train.batch_size=4"], capsys)
    assert code == 0, err
    record = json.loads((out / "finetune.json").read_text())
    assert record["recipe"] == "tofu" and record["model"] == str(tmp_path / "base")
    train = record["train"]
    assert (train["lr"], train["epochs"], train["weight_decay"]) == (1e-5, 5.0, 0.01)  # TOFU, unless overridden
    assert (train["warmup_ratio"], train["grad_accum"], train["batch_size"], train["max_steps"]) == (0.2, 1, 4, 1)
    assert record["train_stats"]["target"]["steps"] == 1 and record["items"]["forget"] == 8  # forget05: 1 author
    assert (out / "retain" / "model.safetensors").is_file()


def test_sizing_rule_keeps_todays_model_for_the_builtin_benchmark_and_grows_for_a_larger_one():
    default = TinyModelConfig()
    builtin = generate()
    assert fact_characters(builtin) == 138_192 < SIZING_REFERENCE_CHARS  # 100 authors x 8 facts, 2 wordings
    assert size_tiny_model(builtin, default) == default
    assert size_tiny_model(generate(n_authors=20), default) == default  # smaller data: never smaller
    tofu_sized = generate(n_authors=500)  # 4,000 rows, as TOFU: c = 689,796 / 150,000 = 4.6, s = 1.663
    sized = size_tiny_model(tofu_sized, default)
    assert (sized.hidden_size, sized.num_layers, sized.intermediate_size) == (224, 3, 672)  # 128 s -> 7 x 32
    assert sized.lr == 2.3e-3  # 4e-3 x 128 / 224 = 2.286e-3, two significant digits
    assert replace(sized, hidden_size=128, num_layers=2, intermediate_size=384, lr=4e-3) == default  # nothing else
    assert size_tiny_model(tofu_sized, replace(default, lr=1e-3)).lr == 1e-3  # a learning rate set wins
    # the user's values win: explicitly given, or (lethe run) different from the default
    given = size_tiny_model(tofu_sized, default, explicit={"hidden_size", "num_layers", "intermediate_size"})
    assert given == default
    own = size_tiny_model(tofu_sized, replace(default, num_layers=1))
    assert (own.num_layers, own.hidden_size) == (1, 224)


@pytest.mark.parametrize("args, message", [
    (["benchmark=no-such-benchmark"], "unknown benchmark 'no-such-benchmark'"),
    (["forget_split=forget77"], "unknown forget split 'forget77'"),
    (["train.lr=1e-4"], "train.lr sets the TOFU recipe of model=..."),
    (["model=x", "tiny_model.hidden_size=8"], "tiny_model.hidden_size sets Lethe's tiny recipe"),
    (["outt=x"], "unknown config key 'outt'"),
])
def test_bad_input_is_one_line(args, message, tofu_folder, tmp_path, capsys):
    extra = [] if args[0].startswith("benchmark=") else [f"benchmark={tofu_folder}",
                                                          "benchmark_options.items_per_author=8"]
    code, _, err = cli(["finetune", *extra, *args, f"out={tmp_path / 'ft'}"], capsys)
    assert code == 2 and message in err and err.count("\n") == 1
    assert not (tmp_path / "ft").exists() and not (tmp_path / "ft.partial").exists()


def test_an_existing_out_folder_is_refused_unless_overwrite(tofu_folder, tmp_path, capsys):
    (tmp_path / "ft").mkdir()
    (tmp_path / "ft" / "mine.txt").write_text("keep")
    code, _, err = cli(["finetune", f"benchmark={tofu_folder}", "benchmark_options.items_per_author=8",
                        f"out={tmp_path / 'ft'}", *SMALL], capsys)
    assert code == 2 and "exists and is not empty" in err and "overwrite=true" in err and err.count("\n") == 1
    assert (tmp_path / "ft" / "mine.txt").read_text() == "keep"
