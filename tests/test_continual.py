"""Continual unlearning: request order and cuts by hand, and one end-to-end run on a miniature."""
from __future__ import annotations

import json
import os

import pytest

from lethe.cli import main
from lethe.errors import LetheError
from lethe.scenarios.continual import cut_requests, plan_requests, request_order

os.environ.setdefault("LETHE_NO_PROGRESS", "1")

from tiny_run import FAST as TINY  # noqa: E402


def test_cut_requests_hits_the_nested_splits():
    authors = [f"a{i}" for i in range(10)]
    # 3 rounds of 10: plain cuts 3/7/10, moved onto the nested sizes 1 and 5
    assert [len(q) for q in cut_requests(authors, 3, [1, 5])] == [1, 4, 5]
    assert [len(q) for q in cut_requests(authors, 10, [1, 5])] == [1] * 10
    assert [len(q) for q in cut_requests(authors, 4)] == [2, 3, 3, 2]  # bounds round(2.5)=2, 5, round(7.5)=8, 10
    assert [len(q) for q in cut_requests(authors, 4, [1, 5])] == [1, 4, 3, 2]  # 2 -> 1 and 5 kept
    cut = cut_requests(authors, 4, [1, 5])
    assert sum(cut, []) == authors and len(cut) == 4  # order kept, nothing lost or repeated
    with pytest.raises(LetheError, match="rounds must be between 1 and"):
        cut_requests(authors, 11)


def test_request_order_passes_through_every_nested_split():
    from lethe.benchmarks import load_benchmark

    bench = load_benchmark("lethe-authors")
    order = request_order(bench, "forget10")
    assert sorted(order) == sorted(bench.forget_sets["forget10"])
    assert set(order[:1]) == set(bench.forget_sets["forget01"])
    assert set(order[:5]) == set(bench.forget_sets["forget05"])


def test_release_rounds_are_the_task_ids(tmp_path):
    """The Closer-Look TOFU release fixes its requests: the rounds are its task_ids in order, not cuts."""
    from test_tofu_layouts import invented_authors, write_closer_look

    from lethe.benchmarks import load_tofu

    tasks = write_closer_look(tmp_path, invented_authors(40))
    bench = load_tofu(tmp_path, items_per_author=2)
    group_of = {it.question: it.group for it in bench.splits["authors"]}
    authors = invented_authors(40)
    for split, n in (("forget01", 10), ("forget05", 10), ("forget10", 9)):
        order, requests, ids = plan_requests(bench, split, 10, rounds_given=False)
        assert ids == [str(t) for t in range(1, n + 1)]
        assert requests == [[group_of[authors[a][0]["question"]] for a in task] for task in tasks[split]]
        assert order == sum(requests, []) and requests[0] == bench.forget_sets[split]
    assert plan_requests(bench, "forget10", 9, rounds_given=True)[1] == bench.spec["rounds"]["forget10"]
    with pytest.raises(LetheError, match=r"rounds = 4, but forget10 .* sequence of 9 requests \(task_id 1..9\); "
                                         "drop scenario_options.rounds"):
        plan_requests(bench, "forget10", 4, rounds_given=True)
    # without release rounds: the nested cuts as before
    built = generate_small()
    assert plan_requests(built, "forget10", 2, rounds_given=True)[1] == cut_requests(
        request_order(built, "forget10"), 2, [1, 2])


def generate_small():
    from lethe.benchmarks import generate

    return generate(n_authors=20, n_holdout=0, n_world=4, n_people=4)


def test_continual_run_end_to_end(tmp_path, capsys, tiny_models):
    tiny_models(tmp_path / "cache")  # the session's target and retain model; the rounds' gold standards train here
    args = ["run", "scenario=continual", *TINY, f"cache_dir={tmp_path / 'cache'}", f"output={tmp_path / 'runs'}",
            "name=c1", "methods=[ga, grad_diff]", "scenario_options={rounds: 2}"]
    assert main(args) == 0
    run = tmp_path / "runs" / "c1"
    for name in ("summary.json", "results.json", "report.md", "report.html", "curves.png", "tradeoff.png"):
        assert (run / name).is_file(), name
    summary = json.loads((run / "summary.json").read_text())
    assert summary["scenario"] == "continual"
    assert [r["name"] for r in summary["rows"]] == ["target", "retain model", "ga", "grad_diff"]
    curves = summary["curves"]
    assert curves["rounds"] == [1, 2]
    for label in ("ga", "grad_diff"):
        fq = curves["series"][label]["forget_quality"]
        assert len(fq) == 2 and all(v is not None and 0 <= v <= 1 for v in fq)  # a gold standard every round here
    results = json.loads((run / "results.json").read_text())
    reqs = results["requests"]
    assert len(reqs) == 2 and all(len(q) == 1 for q in reqs)
    rounds = [r for r in results["rounds"] if r["method"] == "ga"]
    assert [r["round"] for r in rounds] == [1, 2] and [r["request"] for r in rounds] == reqs
    # the final row is the last round's model: its forget split holds both requests (2 authors x 8 facts)
    final = next(m for m in results["models"] if m["name"] == "ga")
    assert len(final["splits"]["forget"]["probes"]["ids"]) == 16
    assert summary["rows"][2]["metrics"] == rounds[-1]["metrics"]
    md = (run / "report.md").read_text()
    assert "## Over rounds" in md and "curves.png" in md


def test_continual_rejects_bad_options_and_methods(tmp_path, capsys):
    base = ["run", "scenario=continual", *TINY, f"cache_dir={tmp_path / 'cache'}", f"output={tmp_path / 'runs'}"]
    assert main([*base, "scenario_options={round: 3}"]) == 2
    assert "scenario_options.round'; did you mean 'scenario_options.rounds'?" in capsys.readouterr().err
    assert main([*base, "scenario_options={gold_standard: sometimes}"]) == 2
    assert "gold_standard must be" in capsys.readouterr().err
    assert main([*base, "methods=[icul]"]) == 2
    assert "the continual scenario evaluates loss methods only" in capsys.readouterr().err
    assert main([*base, "methods=[ga]", "train.eval_every=1"]) == 2
    assert "the continual scenario does not evaluate during unlearning" in capsys.readouterr().err
    assert main([*base, "attacks=[relearn]"]) == 2
    assert "the continual scenario runs no robustness attacks" in capsys.readouterr().err
    assert main(["run", "scenario=contnual"]) == 2
    assert "did you mean 'continual'" in capsys.readouterr().err


def test_continual_on_a_user_model_and_tofu_files(tmp_path, tokenizer, make_tiny, capsys):
    """A user's model on the Closer-Look TOFU layout (forget files of task_id-numbered requests): the rounds
    are the release's tasks; no per-round gold standard exists, so it must be asked for as none, and no
    forget quality is reported."""
    from test_tofu_layouts import write_closer_look

    from lethe.benchmarks import load_benchmark
    from lethe.models import save_model

    bench = load_benchmark("lethe-authors", n_authors=20, n_holdout=2, n_world=30, n_people=12)
    rows = {}
    for it in bench.splits["authors"]:
        rows.setdefault(it.group, []).append({"question": it.question, "answer": it.answer})
    tasks = write_closer_look(tmp_path / "tofu", list(rows.values()), n_tasks=(2, 2, 2), per_task=(1, 1, 2))
    model_dir = save_model(make_tiny(tokenizer), tokenizer, tmp_path / "model")
    base = ["run", "scenario=continual", f"model={model_dir}", f"benchmark={tmp_path / 'tofu'}",
            "benchmark_options={items_per_author: 8}", f"output={tmp_path / 'runs'}", "methods=[ga]",
            "train.max_steps=1", "eval.max_new_tokens=6", "eval.embedding_model=", "eval.bootstrap=0", "threads=1"]
    assert main([*base, "scenario_options={rounds: 2}"]) == 2
    assert "gold_standard: none" in capsys.readouterr().err
    assert main([*base, "name=u", "scenario_options={gold_standard: none}"]) == 0, capsys.readouterr().err
    summary = json.loads((tmp_path / "runs" / "u" / "summary.json").read_text())
    assert [r["name"] for r in summary["rows"]] == ["target", "ga"]
    assert summary["curves"]["rounds"] == [1, 2]  # the release's two tasks, not the default 10 rounds
    assert all(v is None for v in summary["curves"]["series"]["ga"]["forget_quality"])  # n/a, never invented
    assert "forget_rouge_l" in summary["rows"][1]["metrics"]
    assert "task_id 1, 2 of forget10.json" in summary["notes"][0]
    assert any("no holdout split" in n and "PrivLeak" in n for n in summary["notes"])  # the release has none
    results = json.loads((tmp_path / "runs" / "u" / "results.json").read_text())
    names = list(rows)  # the generator's author ids, in order: the fixture forgets the last ones
    assert results["task_ids"] == ["1", "2"]
    loaded = load_benchmark(str(tmp_path / "tofu"), items_per_author=8)
    group_of = {it.question: it.group for it in loaded.splits["authors"]}
    assert results["requests"] == [[group_of[rows[names[a]][0]["question"]] for a in task]
                                   for task in tasks["forget10"]]
