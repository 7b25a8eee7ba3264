"""Caches are keyed on the data actually read: an edited data file can never be served from a cache
built on the old data, and the same data under another path shares the cache."""
from __future__ import annotations

import json
import shutil

from lethe.benchmarks import generate, load_benchmark, save_benchmark
from lethe.config import RunConfig, TinyModelConfig
from lethe.builtin import builtin_model_root
from lethe.scenarios.tofu import eval_cache_key


def _edit_answer(folder, index: int, answer: str) -> None:
    path = folder / "authors.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    rows[index]["answer"] = answer
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def test_an_edited_data_file_gets_new_model_and_evaluation_keys(tmp_path):
    bench = generate(n_authors=6, n_holdout=1, n_world=10, n_people=5)
    a, b = tmp_path / "a", tmp_path / "b"
    save_benchmark(bench, a)
    shutil.copytree(a, b)
    tiny, cfg = TinyModelConfig(), RunConfig(forget_split="forget10")
    first, moved = load_benchmark(str(a)), load_benchmark(str(b))
    # same content, another folder: the same cache
    assert builtin_model_root(first, tiny, tmp_path) == builtin_model_root(moved, tiny, tmp_path)
    assert eval_cache_key(cfg, first) == eval_cache_key(cfg, moved)
    assert first.fingerprint() == bench.fingerprint()  # a saved folder reads back the same content

    _edit_answer(b, 0, "Somebody else entirely was born somewhere else.")
    edited = load_benchmark(str(b))
    assert (edited.name, edited.version, edited.spec) == (first.name, first.version, first.spec)  # what benchmark.json claims
    assert builtin_model_root(edited, tiny, tmp_path) != builtin_model_root(first, tiny, tmp_path)
    assert eval_cache_key(cfg, edited) != eval_cache_key(cfg, first)


def test_split_fingerprint_follows_the_forget_items():
    bench = generate(n_authors=6, n_holdout=1, n_world=10, n_people=5)
    other = generate(seed=7, n_authors=6, n_holdout=1, n_world=10, n_people=5)
    fp, fo = bench.split_fingerprint("forget10"), other.split_fingerprint("forget10")
    assert fp["ids"] == fo["ids"] == [it.id for it in bench.forget("forget10")]  # same ids ...
    assert fp["sha256"] != fo["sha256"] and bench.fingerprint() != other.fingerprint()  # ... other content
    assert fp == bench.split_fingerprint("forget10")  # deterministic


def test_the_torch_thread_count_is_part_of_the_model_key(tmp_path):
    """1 and 2 CPU threads train different built-in models (float sums split differently), so a model
    cached by a run with one count is never served to a run with another."""
    import torch

    bench, tiny, before = generate(n_authors=6, n_holdout=1, n_world=10, n_people=5), TinyModelConfig(), \
        torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = builtin_model_root(bench, tiny, tmp_path)
        torch.set_num_threads(2)
        two = builtin_model_root(bench, tiny, tmp_path)
        assert one != two and builtin_model_root(bench, tiny, tmp_path) == two
    finally:
        torch.set_num_threads(before)
