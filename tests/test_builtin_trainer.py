"""The one cached trainer of the built-in models (:func:`lethe.builtin.train_cached`): cached folders are
kept, a damaged one is trained again, seconds are recorded; and every scenario's builder starts from
its cache on a second call, without training."""
from __future__ import annotations

import json
import os

import pytest

from lethe.builtin import Job, from_cache, recorded_training_seconds, train_cached
from lethe.config import TinyModelConfig, TrainConfig
from lethe.data import Encoder

os.environ.setdefault("LETHE_NO_PROGRESS", "1")

SMALLEST = TinyModelConfig(hidden_size=16, intermediate_size=32, num_layers=1, num_heads=2, vocab_size=300,
                           base_epochs=1, finetune_epochs=1)


def _jobs(tmp_path, tokenizer, make_tiny, forget_items):
    enc = Encoder(tokenizer)
    seqs = [enc.qa(it.question, it.answer) for it in forget_items]
    cfg = TrainConfig(lr=1e-3, epochs=1, batch_size=4, seed=0)
    return [Job(name, tmp_path / name, lambda: make_tiny(tokenizer), seqs, cfg, f"training {name} ({{params}})")
            for name in ("one", "two")]


def test_train_cached_trains_saves_and_records_seconds(tmp_path, tokenizer, make_tiny, forget_items):
    from lethe.models import weights_problem

    said = []
    timings = train_cached(tmp_path, _jobs(tmp_path, tokenizer, make_tiny, forget_items), tokenizer, said.append)
    assert sorted(timings) == ["one", "two"] and all(s > 0 for s in timings.values())
    assert recorded_training_seconds(tmp_path) == timings
    assert all(weights_problem(tmp_path / name) == "" for name in ("one", "two"))
    assert len(said) == 2 and said[0].startswith("training one (") and said[0].endswith("M)")


def test_train_cached_skips_cached_folders_and_trains_a_damaged_one_again(tmp_path, tokenizer, make_tiny,
                                                                          forget_items):
    jobs = _jobs(tmp_path, tokenizer, make_tiny, forget_items)
    train_cached(tmp_path, jobs, tokenizer, lambda *a: None)
    first = recorded_training_seconds(tmp_path)
    two = (tmp_path / "two" / "model.safetensors").read_bytes()
    weights = tmp_path / "one" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    said = []
    timings = train_cached(tmp_path, jobs, tokenizer, said.append)
    assert list(timings) == ["one"]  # the whole folder is kept
    assert (tmp_path / "two" / "model.safetensors").read_bytes() == two
    damaged = [s for s in said if "damaged" in s]
    assert len(damaged) == 1 and "one model" in damaged[0] and str(tmp_path / "one") in damaged[0]
    assert "training it again" in damaged[0]
    recorded = json.loads((tmp_path / "timings.json").read_text())
    assert recorded["two"] == first["two"] and recorded["one"] == timings["one"]
    said.clear()
    assert train_cached(tmp_path, jobs, tokenizer, said.append) == {} and said == []
    assert from_cache(tmp_path, [j.folder for j in jobs], said.append) and said == [f"models: from cache {tmp_path}"]


def _authors(cache, log):
    from lethe.builtin import build_builtin_models
    from test_cli import tiny_benchmark

    models = build_builtin_models(tiny_benchmark(), "forget10", SMALLEST, cache, log)
    return models.target, models.retain


def _hazardous(cache, log):
    from lethe.scenarios.hazardous import HazardousOptions, build_models, load_data

    opts = HazardousOptions(n_substances=4, n_towns=3, n_heldout_towns=1, docs_per_entity=2, pretrain_epochs=1,
                            pretrain_batch_size=16)
    return build_models(load_data(opts), SMALLEST, opts, cache, log)[:2]  # (target, retain, timings)


def _safety(cache, log):
    from lethe.scenarios.safety import build_models
    from lethe.scenarios.safety_sets import SafetyOptions, load_sets

    opts = SafetyOptions(n_hazards=8, n_towns=4, pretrain_epochs=1, pretrain_batch_size=8)
    return build_models(load_sets(opts).builtin, SMALLEST, opts, cache, log)[:2]


def _verbatim(cache, log):
    from lethe.config import load_config
    from lethe.scenarios.verbatim import VerbatimOptions, load_corpus
    from lethe.scenarios.verbatim_models import build_models

    cfg = load_config(None, ["scenario=verbatim", "benchmark_options.n_forget=2", "benchmark_options.n_retain=3",
                             "benchmark_options.n_holdout=2", "benchmark_options.n_retain_eval=2"])
    opts = VerbatimOptions(model_epochs=1)
    return build_models(load_corpus(cfg, opts.chunk_words), SMALLEST, opts, cache, log)


def _real_world(cache, log):
    from dataclasses import replace

    from lethe.builtin import builtin_model_root
    from lethe.config import load_config
    from lethe.scenarios.real_world import retain_base, entity_splits
    from test_cli import tiny_benchmark

    bench = tiny_benchmark()
    _authors(cache, log)
    cfg = replace(load_config(None, ["scenario=real_world"]), tiny_model=SMALLEST)
    return retain_base(cfg, entity_splits(bench, 2), builtin_model_root(bench, SMALLEST, cache), log)


@pytest.mark.parametrize("build", [_authors, _hazardous, _safety, _verbatim, _real_world],
                         ids=["authors", "hazardous", "safety", "verbatim", "real_world"])
def test_a_second_call_of_each_builder_reads_the_cache(build, tmp_path, monkeypatch):
    import lethe.loop

    said = []
    first = build(tmp_path, said.append)
    assert any("training" in s or "pretraining" in s for s in said)

    def no_training(*a, **k):
        raise AssertionError("a cached model was trained again")

    monkeypatch.setattr(lethe.loop, "finetune", no_training)
    said.clear()
    assert build(tmp_path, said.append) == first
    assert not any("training" in s for s in said)


def test_a_second_process_sharing_the_cache_waits_for_the_models_the_first_builds(tmp_path):
    """Two runs (or a sweep's workers) on one cache: while one finds or trains the models under a key, another
    waits for it (then finds them cached) instead of training the same models beside it."""
    import subprocess
    import sys
    import time

    from lethe.builtin import building

    root, mark = tmp_path / "models" / "key", tmp_path / "mark"
    child = ("import pathlib, sys, time\nfrom lethe.builtin import building\n"
             "with building(pathlib.Path(sys.argv[1])):\n"
             "    pathlib.Path(sys.argv[2]).write_text('building'); time.sleep(1.0)\n"
             "    pathlib.Path(sys.argv[2]).write_text('built')\n")
    proc = subprocess.Popen([sys.executable, "-c", child, str(root), str(mark)])
    try:
        deadline = time.time() + 60
        while not mark.exists() and time.time() < deadline:
            time.sleep(0.05)
        assert mark.exists(), "the other process never took the lock"
        with building(root):
            assert mark.read_text() == "built"
    finally:
        assert proc.wait(timeout=60) == 0
