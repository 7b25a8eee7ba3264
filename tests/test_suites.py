"""Metric suites as data: every direction comes from the metric registry (the metric's own direction,
flipped for knowledge metrics on a forget split), and no ported scenario keeps a direction table of
its own. Also the scenarios' hooks that leave out methods a document scenario cannot run."""
from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import numpy as np
import pytest

from lethe.errors import LetheError
from lethe.metrics import METRICS
from lethe.metrics.likelihood import nll
from lethe.metrics.suites import HAZARDOUS, REAL_WORLD, SUITES, TOFU, VERBATIM, Suite, directions
from lethe.probes import SplitProbes

SCENARIOS = Path(__file__).resolve().parents[1] / "src" / "lethe" / "scenarios"
PORTED = ("tofu.py", "continual.py", "hazardous.py", "verbatim.py", "real_world.py", "safety.py", "safety_sets.py",
          "multilingual.py")


# ------------------------------------------------------------------------------------------ the rule


@pytest.mark.parametrize("name", sorted(SUITES))
def test_every_key_has_a_registered_metric(name):
    suite = SUITES[name]
    keys = suite.keys()
    assert len(keys) == len(set(keys)), "a key twice"
    for split, metric, key in suite.rows:
        spec = METRICS.get(metric)  # raises for an unregistered name
        assert spec.description.strip()
        assert split is not None or spec.level == "aggregate", key
    assert list(directions(suite)) == keys  # every key, in the suite's (the report's) order
    assert set(directions(suite).values()) <= {"higher", "lower"}


def test_knowledge_metrics_flip_on_a_forget_split_only():
    suite = Suite("toy", (("forget", "probability", "a"), ("retain", "probability", "b"),
                          ("forget", "truth_ratio_forget", "c"), (None, "mia_loss", "d"), ("forget", "nll", "e"),
                          ("retain", "nll", "f"), ("forget", "token_entropy", "g"), ("x", "rouge_l", "h")),
                  forget=("forget", "x"))
    assert directions(suite) == {"a": "lower", "b": "higher", "c": "higher", "d": "lower", "e": "higher",
                                 "f": "lower", "g": "higher", "h": "lower"}
    for name in ("probability", "normalized_probability", "rouge_l", "truth_ratio", "exact_memorization",
                 "extraction_strength", "verbmem", "knowmem", "embedding_similarity", "entailment_score",
                 "mcq_accuracy", "nll"):
        assert METRICS.get(name).knowledge, name
    for name in ("truth_ratio_forget", "forget_quality", "model_utility", "mia_loss", "mia_min_k", "privleak",
                 "token_entropy", "forget_efficacy", "model_utility_semantic"):
        assert not METRICS.get(name).knowledge, name


def test_suite_mistakes_are_errors():
    with pytest.raises(LetheError, match="did you mean 'rouge_l'"):
        directions(Suite("bad", (("forget", "rougel", "forget_rougel"),)))
    with pytest.raises(ValueError, match="two rows"):
        directions(Suite("bad", (("forget", "rouge_l", "k"), ("retain", "rouge_l", "k"))))
    with pytest.raises(ValueError, match="needs a split"):
        directions(Suite("bad", ((None, "rouge_l", "rouge_l"),)))


# ------------------------------------------------------------------------- documented directions


DOCUMENTED = {
    "tofu": {"forget_rouge_l": "lower", "retain_rouge_l": "higher", "forget_probability": "lower",
             "known_people_probability": "higher", "world_facts_truth_ratio": "higher", "forget_truth_ratio": "higher",
             "forget_quality": "higher", "model_utility": "higher", "mia_loss": "lower", "mia_zlib": "lower",
             "mia_min_k": "lower", "mia_min_k_plus_plus": "lower", "mia_reference": "lower", "mia_gradnorm": "lower",
             "privleak": "higher", "forget_exact_memorization": "lower", "forget_extraction_strength": "lower",
             "forget_token_entropy": "higher", "forget_embedding_similarity": "lower",
             "retain_entailment_score": "higher", "forget_efficacy": "higher"},
    "real_world": {"neighbour_rouge_l": "higher", "neighbour_probability": "higher", "neighbour_truth_ratio": "higher",
                   "forget_rouge_l": "lower", "forget_entailment_score": "lower"},
    "hazardous": {"hazard_accuracy": "lower", "general_accuracy": "higher", "forget_corpus_nll": "higher",
                  "retain_corpus_nll": "lower", "heldout_nll": "lower"},
    "verbatim": {"forget_verbmem": "lower", "forget_knowmem": "lower", "retain_knowmem": "higher",
                 "retain_verbmem": "higher", "privleak": "higher", "mia_min_k": "lower",
                 "forget_exact_memorization": "lower", "forget_token_entropy": "higher"},
}


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_documented_directions(name):
    d = directions(SUITES[name])
    assert {k: d[k] for k in DOCUMENTED[name]} == DOCUMENTED[name]


def test_scenarios_take_their_directions_from_their_suite():
    from lethe.scenarios import get_scenario, tofu

    expect = {"tofu": TOFU, "continual": TOFU, "real_world": REAL_WORLD, "hazardous": HAZARDOUS, "verbatim": VERBATIM}
    for name, suite in expect.items():
        assert get_scenario(name).directions(None) == directions(suite), name
    assert tofu.directions() == directions(TOFU)


def test_the_tofu_suite_covers_what_evaluate_reports():
    from lethe.evaluation import EVAL_ROLES, MIA_ATTACKS_RUN
    from lethe.metrics.semantic import REQUIRED_PARTS
    from lethe.metrics.tofu import MODEL_UTILITY_KEYS

    keys = set(TOFU.keys())
    assert set(MIA_ATTACKS_RUN) | set(MODEL_UTILITY_KEYS) <= keys
    assert {f"{s}_{m}" for s in EVAL_ROLES for m in REQUIRED_PARTS} <= keys
    assert set(REAL_WORLD.keys()) - keys == {f"neighbour_{m}" for m in (
        "probability", "rouge_l", "truth_ratio", "token_entropy", "embedding_similarity", "entailment_score")}


def _table_literals(path: Path) -> list[str]:
    """Where a direction string is the value of a mapping: a dict display or comprehension, or
    ``d[key] = "higher"`` (a direction used as a default, ``get(key, "higher")``, is not a table)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        values = (node.values if isinstance(node, ast.Dict) else [node.value] if isinstance(node, ast.DictComp)
                  else [node.value] if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Subscript)
                  else [])
        out += [f"{path.name}:{node.lineno}" for v in values
                if isinstance(v, ast.Constant) and v.value in ("higher", "lower")]
    return sorted(out, key=lambda at: int(at.rsplit(":", 1)[1]))


@pytest.mark.parametrize("name", PORTED)
def test_no_direction_table_in_a_ported_scenario(name):
    path = SCENARIOS / name
    assert _table_literals(path) == []
    if name != "tofu.py":  # tofu's eval_hook keeps "higher" as the default of an unset train.best_by
        assert '"higher"' not in path.read_text(encoding="utf-8") and '"lower"' not in path.read_text(encoding="utf-8")


def test_safety_directions_follow_its_data_and_come_from_the_registry():
    from lethe.metrics import METRICS
    from lethe.metrics.suites import safety
    from lethe.scenarios.safety import directions as safety_directions

    suite = safety(("prefix_injection", "gcg"), ("mmlu", "gsm8k"), ("advbench", "harmbench"))
    d = directions(suite)
    assert d == safety_directions(("prefix_injection", "gcg"), ("mmlu", "gsm8k"), ("advbench", "harmbench"))
    assert d["harmful_rate"] == d["asr:gcg"] == d["harmful_rate:advbench"] == d["benign_refusal_rate"] == "lower"
    assert d["utility:gsm8k"] == d["benign_helpful_rate"] == d["harmful_refusal_rate"] == "higher"
    assert all(not METRICS.get(m).knowledge for _, m, _ in suite.rows)  # rates state their goal: no flip
    assert "harmful_rate:advbench" not in directions(safety((), (), ("advbench",)))  # one harmful set: no split key


def test_the_table_finder_finds_tables(tmp_path):
    f = tmp_path / "old.py"
    f.write_text('D = {"a": "lower"}\nE = {k: "higher" for k in "xy"}\nD["b"] = "higher"\nx = D.get("c", "higher")\n')
    assert _table_literals(f) == ["old.py:1", "old.py:2", "old.py:3"]


# ------------------------------------------------------------------------------------ the nll metric


def test_nll_is_the_mean_per_token_loss():
    p = SplitProbes(ids=["a", "b", "c"], answer_logprob=np.array([-2.0, -6.0, -1.5]),
                    answer_ntokens=np.array([1, 3, 0]), paraphrase_logprob=np.zeros(3), paraphrase_ntokens=np.ones(3),
                    perturbed_logprob=np.zeros((3, 1)), perturbed_ntokens=np.ones((3, 1)))
    r = nll(p)
    assert r.per_sample == [2.0, 2.0, 1.5] and r.value == pytest.approx(11 / 6)  # a count of 0 is taken as 1
    spec = METRICS.get("nll")
    assert not spec.higher_is_better and spec.knowledge and spec.level == "split"


# --------------------------------------------------------------------- methods a scenario skips


def _run(scenario_name: str, *overrides: str, methods=None):
    """A run of ``scenario_name`` with its methods resolved (``methods``: in place of the config's)."""
    from lethe.config import load_config
    from lethe.scenarios import get_scenario
    from lethe.scenarios._run import Run, build_options
    from lethe.scenarios._methods import resolve_methods

    scenario = get_scenario(scenario_name)
    cfg = load_config(None, [f"scenario={scenario_name}", *overrides])
    run = Run(scenario, cfg, build_options(scenario, cfg.scenario_options), log=print)
    run.method_runs = resolve_methods(dataclasses.replace(cfg, methods=methods) if methods else cfg)
    run.methods_defaulted = methods is not None
    return scenario, run


@pytest.mark.parametrize("name", ["hazardous", "verbatim"])
def test_question_methods_are_skipped_by_the_hook(name):
    scenario, run = _run(name, "methods=[ga,idk,npo]")
    reasons = {mr.label: scenario.skip_method(run, mr) for mr in run.method_runs}
    assert reasons["ga"] == reasons["npo"] == "" and "no question" in reasons["idk"]


def test_hazardous_check_notes_its_default_methods():
    from lethe.scenarios.hazardous import SCENARIO_METHODS

    scenario, run = _run("hazardous", methods=SCENARIO_METHODS)
    scenario.check(run)
    assert [(mr.label, mr.train.lr, mr.options) for mr in run.method_runs] == [
        ("ga", 1e-3, {}), ("grad_diff", 1e-3, {}), ("npo", 1e-3, {}), ("rmu", 1e-3, {})]  # RMU: its own recipe
    assert len(run.notes) == 1 and "the scenario's defaults ga, grad_diff, npo, rmu" in run.notes[0]
    scenario, run = _run("hazardous", "methods=[ga,rmu]")  # the user's list: as given, no note
    scenario.check(run)
    assert [mr.train.lr for mr in run.method_runs] == [1e-3, 1e-3] and run.notes == []
