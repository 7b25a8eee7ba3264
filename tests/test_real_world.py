"""Real-world unlearning: entity splits from the built-in world, and one run on a miniature."""
from __future__ import annotations

import json
import os

import pytest

from lethe.cli import main
from lethe.errors import LetheError
from lethe.scenarios.real_world import entity_splits

os.environ.setdefault("LETHE_NO_PROGRESS", "1")

from tiny_run import NO_EMBEDDINGS  # noqa: E402

# more of the world (the scenario's data), later overrides win
TINY = [*NO_EMBEDDINGS, "benchmark_options.n_world=60", "benchmark_options.n_people=30", "tiny_model.finetune_epochs=1",
        "eval.max_new_tokens=8"]


def test_entity_splits_partition_the_world():
    from lethe.benchmarks import load_benchmark

    bench = load_benchmark("lethe-authors")
    d = entity_splits(bench, 3)
    assert len(d["forget_countries"]) == 3 and d == entity_splits(bench, 3)  # deterministic
    assert entity_splits(bench, 3, seed=1)["forget_groups"] != d["forget_groups"]
    # forget + retain = every world fact; neighbour + known_people = every known-people item
    assert sorted(it.id for it in d["forget"] + d["retain"]) == sorted(it.id for it in bench.splits["world_facts"])
    assert sorted(it.id for it in d["neighbour"] + d["known_people"]) == sorted(it.id for it in bench.splits["known_people"])
    assert all(it.group in d["forget_groups"] for it in d["forget"])
    # every forget question names a forget country; no retain question does
    assert all(any(c in it.question for c in d["forget_countries"]) for it in d["forget"])
    assert not any(c in it.question for it in d["retain"] for c in d["forget_countries"])
    # the pretraining sentences of the forget countries: 7 relations each, and nothing else removed
    assert len(d["forget_text"]) == 7 * 3 and len(d["forget_text"]) + len(d["retain_text"]) == len(bench.pretrain_text)
    # neighbours: people whose pretraining sentence says they come from a forget country
    homes = [t for t in bench.pretrain_text if " was a famous " in t]
    for it in d["neighbour"]:
        assert any(c in t for t in homes for c in d["forget_countries"] if t.split(" was a famous ")[0] in it.question
                   or t.split(" was a famous ")[0] == it.answer)
    with pytest.raises(LetheError, match="forget_entities must be between 1 and"):
        entity_splits(bench, 0)


def test_a_world_without_neighbours_is_one_line_before_any_model(tmp_path, capsys):
    """A built-in world so small that no known person comes from a forget country: the run stops at once with
    one line, not with an empty split deep in the evaluation after the models are built."""
    args = ["run", "scenario=real_world", "benchmark_options.n_authors=20", "benchmark_options.n_holdout=2",
            "benchmark_options.n_world=30", "benchmark_options.n_people=12", "scenario_options={forget_entities: 4}",
            f"cache_dir={tmp_path / 'cache'}", f"output={tmp_path / 'runs'}"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("lethe: error: scenario real_world: none of the 12 known people comes from the forget "
                          "countries (") and err.endswith("), so the neighbour set is empty; raise "
                                                         "benchmark_options.n_people or scenario_options.forget_entities")
    assert not (tmp_path / "cache" / "models").exists()  # nothing trained


def test_real_world_run_end_to_end(tmp_path, capsys):
    args = ["run", "scenario=real_world", *TINY, f"cache_dir={tmp_path / 'cache'}", f"output={tmp_path / 'runs'}",
            "name=rw", "methods=[ga]", "scenario_options={forget_entities: 4}"]
    assert main(args) == 0, capsys.readouterr().err
    run = tmp_path / "runs" / "rw"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["scenario"] == "real_world"
    assert [r["name"] for r in summary["rows"]] == ["target", "retain model", "ga"]
    for row in summary["rows"]:
        m = row["metrics"]
        for key in ("forget_rouge_l", "neighbour_rouge_l", "retain_rouge_l", "known_people_rouge_l", "forget_quality"):
            assert key in m, (row["name"], key)
    assert summary["rows"][1]["metrics"]["forget_quality"] == pytest.approx(1.0)
    assert summary["tradeoff"] == {"x": "neighbour_rouge_l", "y": "forget_rouge_l", "log_y": False}
    assert summary["directions"]["neighbour_rouge_l"] == "higher"
    # the gold standard is cached next to the built-in models
    assert list((tmp_path / "cache" / "models").glob("*/real-world-retain-*"))
    assert "neighbour" in (run / "report.md").read_text()


PLAIN = ("name", "question", "answer", "golden_answer", "task_id")  # the columns of the plain forget.json


def _release(folder, forget_people=("Ana Vell", "Tomas Eld"), neighbour_people=("Ori Sand", "Mara Holt"), drop=None,
             plain=False):
    """A folder in the public real-world layout (Yuan et al. 2025), our own made-up rows: the *_perturbed.json
    files, or with ``plain`` the plain forget.json / neighbor.json (no paraphrases, no wrong answers)."""
    folder.mkdir(parents=True, exist_ok=True)
    for stem, people in (("forget", forget_people), ("neighbor", neighbour_people)):
        rows = []
        for t, person in enumerate(people, start=1):
            for q, a, wrong in (("Where was {p} born?", "{p} was born in Orlin.", "{p} was born in Tarsk."),
                                ("What does {p} write?", "{p} writes poems.", "{p} writes plays.")):
                row = {"name": person, "question": q.format(p=person),
                       "answer": a.format(p=person) + " That is all I know about it.",
                       "golden_answer": a.format(p=person), "paraphrased_answer": a.format(p=person),
                       "perturbed_answer": [wrong.format(p=person), wrong.format(p=person).replace(".", " too.")],
                       "paraphrased_question": q.format(p=person).replace("?", ", please?"), "task_id": t}
                if drop:
                    row.pop(drop)
                if plain:
                    row = {k: v for k, v in row.items() if k in PLAIN and (stem == "forget" or k != "task_id")}
                rows.append(json.dumps(row))
        (folder / f"{stem}{'' if plain else '_perturbed'}.json").write_text("\n".join(rows) + "\n")
    return folder


def test_real_world_loader_reads_the_public_layout(tmp_path):
    from lethe.benchmarks.real_world import load_real_world

    data = load_real_world(_release(tmp_path / "rw"))
    assert len(data.forget) == 4 and len(data.neighbour) == 4
    it, tr = data.forget[0], data.forget_train[0]
    assert it.id == tr.id == "forget-Ana_Vell-0" and it.group == "Ana Vell" and it.fact == "1"
    assert it.answer == "Ana Vell was born in Orlin." and tr.answer.endswith("That is all I know about it.")
    assert len(it.perturbed_answers) == 2 and it.paraphrased_question == "Where was Ana Vell born, please?"
    with pytest.raises(LetheError, match=r"forget_perturbed.json:1: field 'perturbed_answer': missing"):
        load_real_world(_release(tmp_path / "bad", drop="perturbed_answer"))
    with pytest.raises(LetheError, match="appear in both forget and neighbor"):
        load_real_world(_release(tmp_path / "overlap", neighbour_people=("Ana Vell",)))
    with pytest.raises(LetheError, match="no neighbor.json"):
        (tmp_path / "only").mkdir()
        (tmp_path / "only" / "forget.json").write_text((tmp_path / "rw" / "forget_perturbed.json").read_text())
        load_real_world(tmp_path / "only")


def test_real_world_plain_files_and_the_authors_split_of_roles(tmp_path):
    from lethe.benchmarks.real_world import load_real_world

    # plain files only: accepted, without wrong answers (the truth ratio is n/a, the scenario says so)
    data = load_real_world(_release(tmp_path / "plain", plain=True))
    assert data.wrong_answers is False and len(data.forget) == 4 and len(data.neighbour_train) == 4
    assert data.forget[0].perturbed_answers == () and data.forget[0].answer == "Ana Vell was born in Orlin."
    assert data.forget_train[0].answer.endswith("That is all I know about it.")
    # both kinds, as in the release: unlearning on forget.json + neighbor.json, evaluation on *_perturbed.json
    # (the release's neighbor.json and neighbor_perturbed.json are different persons)
    both = _release(tmp_path / "both", neighbour_people=("Ori Sand", "Mara Holt"))
    _release(both, neighbour_people=("Ilse Dorn",), plain=True)
    data = load_real_world(both)
    assert data.wrong_answers is True
    assert {it.group for it in data.neighbour_train} == {"Ilse Dorn"}
    assert {it.group for it in data.neighbour} == {"Ori Sand", "Mara Holt"}
    assert data.files["neighbour_train"].endswith("neighbor.json") and data.files["forget"].endswith("forget_perturbed.json")
    # a forget item that also stands in the retain data of unlearning: both files and the count
    bad = _release(tmp_path / "bad", plain=True)
    forget_rows = (bad / "forget.json").read_text().splitlines()
    row = json.loads(forget_rows[0])
    row["name"] = "Ori Sand"  # the same Q&A filed under a neighbour's name
    (bad / "neighbor.json").write_text((bad / "neighbor.json").read_text() + json.dumps(row) + "\n")
    with pytest.raises(LetheError, match=r"forget\.json, .*neighbor\.json: 1 forget item \(question \+ answer\) "
                                         "also stand in the retain data"):
        load_real_world(bad)
    # wrong answers on some rows only: refused, never a truth ratio over part of a split
    mixed = _release(tmp_path / "mixed", plain=True)
    lines = (mixed / "forget.json").read_text().splitlines()
    lines[1] = json.dumps({**json.loads(lines[1]), "perturbed_answer": ["Ana Vell was born in Tarsk."]})
    (mixed / "forget.json").write_text("\n".join(lines) + "\n")
    with pytest.raises(LetheError, match=r"forget\.json:2: field 'perturbed_answer': given here but not on line 1"):
        load_real_world(mixed)


def test_real_world_release_on_a_user_model(tmp_path, tokenizer, make_tiny, capsys):
    from lethe.models import save_model

    model_dir = save_model(make_tiny(tokenizer), tokenizer, tmp_path / "model")
    data = _release(tmp_path / "rw")
    args = ["run", "scenario=real_world", f"model={model_dir}", f"benchmark={data}", f"output={tmp_path / 'runs'}",
            "name=u", "methods=[ga]", "train.max_steps=2", "eval.max_new_tokens=6", "eval.embedding_model=",
            "eval.bootstrap=0", "threads=1"]
    assert main(args) == 0, capsys.readouterr().err
    summary = json.loads((tmp_path / "runs" / "u" / "summary.json").read_text())
    assert [r["name"] for r in summary["rows"]] == ["target", "ga"]
    for row in summary["rows"]:
        assert {"forget_rouge_l", "neighbour_rouge_l", "forget_truth_ratio"} <= set(row["metrics"])
        assert "forget_quality" not in row["metrics"]  # no gold standard: not reported, and said so
    assert any("no gold standard" in n for n in summary["notes"])
    assert any("no holdout split" in n and "membership inference" in n for n in summary["notes"])
    results = json.loads((tmp_path / "runs" / "u" / "results.json").read_text())
    assert len(results["provenance"]["data_fingerprint"]) == 16  # what was read, in every results.json
    # the plain files alone: probability and ROUGE-L as usual, the truth ratio n/a, and a note says why
    plain = _release(tmp_path / "plain", plain=True)
    assert main([*args[:3], f"benchmark={plain}", *args[4:5], "name=p", *args[6:]]) == 0, capsys.readouterr().err
    summary = json.loads((tmp_path / "runs" / "p" / "summary.json").read_text())
    for row in summary["rows"]:
        assert {"forget_rouge_l", "forget_probability", "neighbour_rouge_l"} <= set(row["metrics"])
        assert not {"forget_truth_ratio", "forget_efficacy"} & set(row["metrics"])
    assert any("no wrong answers" in n and "truth ratio and forget efficacy are n/a" in n for n in summary["notes"])
    assert main(["run", "scenario=real_world", f"benchmark={data}", f"output={tmp_path / 'runs'}"]) == 2
    assert "give model=" in capsys.readouterr().err
    # inference-time methods are evaluated like the others; SISA's shard models know no real-world data
    assert main([*args[:5], "name=i", "methods=[icul]", *args[7:]]) == 0, capsys.readouterr().err
    summary = json.loads((tmp_path / "runs" / "i" / "summary.json").read_text())
    assert [r["name"] for r in summary["rows"]] == ["target", "icul"] and summary["rows"][1]["train"]["inference_time"]
    assert main([*args[:5], "name=s", "methods=[sisa]", *args[7:]]) == 2
    assert "the real_world scenario evaluates loss methods" in capsys.readouterr().err
