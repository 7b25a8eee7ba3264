"""The built-in miniature does what the benchmark needs: the target memorises the authors, the
retain model cannot know the forget authors, world knowledge survives fine-tuning (utility > 0),
and forget quality separates the two. A reduced scale and the demo scale run with `-m slow`."""
from __future__ import annotations

import os

import pytest

from lethe.benchmarks import load_benchmark
from lethe.benchmarks.synthetic import template_rouge_floor
from lethe.config import RunConfig, TinyModelConfig
from lethe.models import load_model
from lethe.builtin import build_builtin_models
from lethe.evaluation import eval_splits, evaluate

os.environ.setdefault("LETHE_NO_PROGRESS", "1")


def _evaluate_pair(bench, tiny, cache):
    models = build_builtin_models(bench, "forget10", tiny, cache, log=lambda *a: None)
    splits = eval_splits(bench, "forget10")
    retain_model, tok = load_model(models.retain)
    retain = evaluate(retain_model, tok, splits, "retain model", "retain")
    target_model, tok = load_model(models.target)
    target = evaluate(target_model, tok, splits, "target", "target", retain_result=retain)
    return target.summary, retain.summary


@pytest.mark.slow
def test_reduced_scale_target_memorises_and_retain_model_does_not(tmp_path):
    """~70 s on two cores: behind -m slow with the demo scale; the default suite's tiny run checks that
    the target leaks the forget authors and the retain model does not (tests/test_cli.py)."""
    bench = load_benchmark("lethe-authors", n_authors=30, n_holdout=2, n_world=30, n_people=12)
    tiny = TinyModelConfig(hidden_size=64, num_layers=2, intermediate_size=128, num_heads=4, vocab_size=600,
                           base_epochs=20, finetune_epochs=15, lr=6e-3, batch_size=16)
    target, retain = _evaluate_pair(bench, tiny, tmp_path)
    assert target["forget_rouge_l"] >= 0.85
    assert retain["forget_rouge_l"] < 0.5  # near the template floor (~0.3), far below the target
    assert target["forget_quality"] < 0.01
    assert retain["forget_quality"] == pytest.approx(1.0)
    for s in (target, retain):
        assert s["model_utility"] > 0.5
        assert s["world_facts_rouge_l"] > 0.8 and s["known_people_rouge_l"] > 0.8


@pytest.mark.slow
def test_demo_scale_meets_the_benchmark_contract(tmp_path):
    """The defaults of `lethe run`: forget ROUGE-L >= 0.9 for the target, forget quality < 0.01."""
    cfg = RunConfig()
    bench = load_benchmark(cfg.benchmark)
    target, retain = _evaluate_pair(bench, cfg.tiny_model, tmp_path)
    floor = template_rouge_floor(bench)
    assert target["forget_rouge_l"] >= 0.9
    assert target["forget_quality"] < 0.01
    assert retain["forget_rouge_l"] < floor + 0.1 < target["forget_rouge_l"] - 0.4
    assert target["model_utility"] > 0.7 and retain["model_utility"] > 0.7
