"""Benchmarks: the lethe-authors generator, Lethe's folder format, the TOFU layout, bad input."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from lethe.benchmarks import (
    BENCHMARKS,
    export_tofu,
    generate,
    load_benchmark,
    load_benchmark_folder,
    load_tofu,
    save_benchmark,
    template_rouge_floor,
)
from lethe.benchmarks import synthetic
from lethe.errors import LetheError

K = synthetic.ITEMS_PER_AUTHOR


@pytest.fixture(scope="module")
def bench():
    return generate()


def _authors(items):
    return list(dict.fromkeys(it.group for it in items))


def _name(item) -> str:
    """The author's full name, read back from the 'What does X collect?' style question."""
    fact = next(f for f in synthetic.AUTHOR_FACTS if f.name == item.fact)
    head, tail = fact.question.split("{n}")
    return item.question[len(head): len(item.question) - len(tail)]


# --- the generator ----------------------------------------------------------------------------------
def test_deterministic_and_seed_dependent(bench):
    assert generate() == bench
    other = generate(seed=1)
    assert other.splits["authors"] != bench.splits["authors"]
    assert other.pretrain_text != bench.pretrain_text
    # independent streams: the world does not move when the number of authors changes
    small = generate(n_authors=20, n_holdout=3)
    assert small.pretrain_text == bench.pretrain_text
    assert small.splits["world_facts"] == bench.splits["world_facts"]
    # and trained authors do not move when the holdout size changes
    assert generate(n_holdout=0).splits["authors"] == bench.splits["authors"]


def test_stable_across_python_processes(bench):
    code = ("from lethe.benchmarks import generate; b = generate(); "
            "print(b.splits['authors'][-1].question, b.splits['known_people'][-1].answer, b.pretrain_text[-1])")
    out = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONHASHSEED": str(seed)}).stdout for seed in (1, 2)}
    last = bench.splits
    assert out == {f"{last['authors'][-1].question} {last['known_people'][-1].answer} {bench.pretrain_text[-1]}\n"}


def test_split_sizes_and_nesting(bench):
    s = bench.splits
    assert len(s["authors"]) == 100 * K and len(s["holdout"]) == 10 * K
    assert len(s["retain_eval"]) == 10 * K
    assert len(s["world_facts"]) == 120 and len(s["known_people"]) == 60
    ids = _authors(s["authors"])
    assert ids == [f"a{i:03d}" for i in range(100)]
    fs = bench.forget_sets
    assert fs["forget01"] == ids[-1:] and fs["forget05"] == ids[-5:] and fs["forget10"] == ids[-10:]
    assert set(fs["forget01"]) <= set(fs["forget05"]) <= set(fs["forget10"])
    for split in fs:
        forget, retain = bench.forget(split), bench.retain(split)
        assert not {it.id for it in forget} & {it.id for it in retain}
        assert len(forget) + len(retain) == len(s["authors"])
        assert len(forget) == len(fs[split]) * K
        assert not set(_authors(s["retain_eval"])) & set(fs[split])
    assert _authors(s["retain_eval"]) == ids[:10]
    assert not set(_authors(s["holdout"])) & set(ids)


@pytest.mark.parametrize("n", [2, 3, 7, 19, 150])
def test_small_and_odd_sizes(n):
    b = generate(n_authors=n, n_holdout=1, n_world=5, n_people=4)
    ids = _authors(b.splits["authors"])
    for split, frac in synthetic.FORGET_FRACTIONS.items():
        assert len(b.forget_sets[split]) == max(1, -(-n * int(frac * 100) // 100))
    assert not set(_authors(b.splits["retain_eval"])) & set(b.forget_sets["forget10"])
    assert len(ids) == n


def test_unique_ids_names_and_perturbed(bench):
    s = bench.splits
    every = [it for items in s.values() for it in items if items is not s["retain_eval"]]
    assert len({it.id for it in every}) == len(every)
    names = [_name(it) for it in s["authors"] + s["holdout"] if it.fact == "birth"]
    assert len(set(names)) == len(names) == 110
    people = {it.answer for it in s["known_people"] if it.fact.endswith("_who")}
    people |= {p for it in s["known_people"] if it.fact.endswith("_who") for p in it.perturbed_answers}
    words = {w for n in names for w in n.split()}
    assert not {w for p in people for w in p.split()} & words
    for it in s["authors"] + s["holdout"] + s["world_facts"] + s["known_people"]:
        assert len(it.perturbed_answers) >= 3
        assert len(set(it.perturbed_answers)) == len(it.perturbed_answers)
        assert it.answer not in it.perturbed_answers


def test_answers_are_short_and_nameless(bench):
    for it in bench.splits["authors"] + bench.splits["holdout"]:
        first, last = _name(it).split()
        for text in (it.answer, it.paraphrased_answer, *it.perturbed_answers):
            assert first not in text and last not in text
        assert len(it.answer.split()) <= 10
        assert len(it.question.split()) <= 14
        assert it.paraphrased_answer and it.paraphrased_answer != it.answer
        assert it.group in it.id and it.fact in it.id


def test_template_rouge_floor(bench):
    floor = template_rouge_floor(bench)
    assert 0.0 < floor <= 0.35
    # the fast path computes exactly what rouge-score's scorer computes
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    one = bench.forget("forget01")[0]
    others = [it.answer for it in bench.splits["authors"] + bench.splits["holdout"]
              if it.fact == one.fact and it.group != one.group]
    expect = sum(scorer.score(one.answer, o)["rougeL"].recall for o in others) / len(others)
    mini = type(bench)(bench.name, bench.version,
                       {"authors": [it for it in bench.splits["authors"] if it.fact == one.fact and it.group != one.group] + [one],
                        "holdout": [it for it in bench.splits["holdout"] if it.fact == one.fact]},
                       {"f": [one.group]})
    assert template_rouge_floor(mini, "f") == pytest.approx(expect)


def test_pretrain_text_states_every_eval_fact(bench):
    text = [s.lower() for s in bench.pretrain_text]
    assert 300 <= len(text) <= 600
    for it in bench.splits["world_facts"] + bench.splits["known_people"]:
        # the entity the question names: its capitalised words after the first one ("the wind lamp": its tail)
        words = [w.strip("?,.").lower() for w in it.question.split()]
        keys = [w for w, raw in zip(words[1:], it.question.split()[1:]) if raw[0].isupper()] or words[-2:]
        assert any(it.answer.lower() in s and all(k in s for k in keys) for s in text), it
    # authors are fine-tuning data only: none of them is in the pretraining text
    joined = " ".join(bench.pretrain_text)
    for it in bench.splits["authors"]:
        assert not re.search(rf"\b{_name(it).split()[1]}\b", joined)


def test_generate_is_fast():
    import time

    t = time.perf_counter()
    generate(seed=3)
    assert time.perf_counter() - t < 0.5


@pytest.mark.parametrize("params", [{"n_authors": 1}, {"n_world": 10_000}, {"n_people": -1}, {"seed": "x"}])
def test_bad_generator_params(params):
    with pytest.raises(LetheError, match=next(iter(params))):
        generate(**params)


# --- folder format ----------------------------------------------------------------------------------
def test_folder_round_trip(bench, tmp_path):
    save_benchmark(bench, tmp_path / "b")
    assert {p.name for p in (tmp_path / "b").iterdir()} == {
        "benchmark.json", "pretrain.txt", *(f"{s}.jsonl" for s in bench.splits)}
    assert load_benchmark_folder(tmp_path / "b") == bench
    assert load_benchmark(str(tmp_path / "b")) == bench
    assert load_benchmark(str(tmp_path / "b" / "benchmark.json")) == bench


def test_folder_errors(bench, tmp_path):
    folder = tmp_path / "b"
    save_benchmark(generate(n_authors=4, n_holdout=1, n_world=3, n_people=3), folder)
    meta = json.loads((folder / "benchmark.json").read_text())

    lines = (folder / "holdout.jsonl").read_text().splitlines()
    (folder / "holdout.jsonl").write_text(lines[0] + "\n{not json\n")
    with pytest.raises(LetheError, match=r"holdout\.jsonl:2"):
        load_benchmark_folder(folder)
    (folder / "holdout.jsonl").unlink()
    with pytest.raises(LetheError, match=r"holdout\.jsonl: file not found"):
        load_benchmark_folder(folder)
    (folder / "holdout.jsonl").write_text("\n".join(lines) + "\n")

    for bad, pattern in [
        ({**meta, "forget_sets": {"forget10": []}}, r"benchmark\.json: field 'forget_sets'.*non-empty"),
        ({**meta, "forget_sets": {"forget10": ["zzz"]}}, r"benchmark\.json: field 'forget_sets'.*zzz"),
        ({k: v for k, v in meta.items() if k != "name"}, r"benchmark\.json: field 'name': missing"),
    ]:
        (folder / "benchmark.json").write_text(json.dumps(bad))
        with pytest.raises(LetheError, match=pattern):
            load_benchmark_folder(folder)
    (folder / "benchmark.json").unlink()
    with pytest.raises(LetheError, match=r"benchmark\.json: file not found"):
        load_benchmark_folder(folder)


def test_unknown_and_empty_forget_split(bench):
    with pytest.raises(LetheError, match="unknown forget split 'forget50'"):
        bench.forget("forget50")
    empty = type(bench)(bench.name, bench.version, bench.splits, {"forget10": []})
    with pytest.raises(LetheError, match="empty"):
        empty.retain("forget10")


def test_load_benchmark_dispatch(tmp_path):
    assert "lethe-authors" in BENCHMARKS
    assert load_benchmark("lethe-authors", seed=2, n_authors=5) == generate(seed=2, n_authors=5)
    for bad in ("tofu-typo", str(tmp_path)):
        with pytest.raises(LetheError, match="unknown benchmark"):
            load_benchmark(bad)
    with pytest.raises(LetheError, match="unknown parameter 'n_autors'"):
        load_benchmark("lethe-authors", n_autors=5)


def test_import_is_light():
    code = "import sys, lethe.benchmarks; print('torch' in sys.modules, 'datasets' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


# --- TOFU layout ------------------------------------------------------------------------------------
def _key(items, group=True):
    return [((it.group,) if group else ()) + (it.question, it.answer, it.paraphrase, it.perturbed_answers)
            for it in items]


def test_tofu_round_trip(bench, tmp_path):
    export_tofu(bench, tmp_path)
    for name in ("full", "forget01", "forget05", "forget10", "retain90", "retain95", "retain99",
                 "forget10_perturbed", "retain_perturbed", "world_facts", "world_facts_perturbed",
                 "real_authors", "real_authors_perturbed", "holdout10"):
        assert (tmp_path / f"{name}.json").is_file(), name
    row = json.loads((tmp_path / "forget10_perturbed.json").read_text().splitlines()[0])
    assert set(row) == {"question", "answer", "paraphrased_answer", "paraphrased_question", "perturbed_answer"}
    row = json.loads((tmp_path / "world_facts.json").read_text().splitlines()[0])
    assert row["answer"] in [row[f"option{j}"] for j in range(1, 5)]

    t = load_benchmark(str(tmp_path), items_per_author=K)
    assert t.name == "tofu" and t.version.startswith("sha256:")
    assert t.forget_sets == bench.forget_sets
    for split in bench.forget_sets:
        assert _key(t.forget(split)) == _key(bench.forget(split))
        assert [(i.group, i.question, i.answer) for i in t.retain(split)] == \
               [(i.group, i.question, i.answer) for i in bench.retain(split)]
    assert _key(t.splits["retain_eval"]) == _key(bench.splits["retain_eval"])
    assert _key(t.splits["holdout"], group=False) == _key(bench.splits["holdout"], group=False)
    for split in ("world_facts", "known_people"):
        assert _key(t.splits[split], group=False) == _key(bench.splits[split], group=False)
    assert t.pretrain_text == bench.pretrain_text


def test_tofu_without_full_or_perturbed(bench, tmp_path):
    export_tofu(generate(n_authors=20, n_holdout=0, n_world=4, n_people=4), tmp_path)
    for name in ("full", "world_facts_perturbed", "forget01", "forget05"):
        (tmp_path / f"{name}.json").unlink()
    t = load_tofu(tmp_path, items_per_author=K)  # full = retain90 + forget10
    assert len(t.splits["authors"]) == 20 * K
    assert t.forget_sets == {"forget10": ["a018", "a019"]}
    assert all(len(it.perturbed_answers) == 3 for it in t.splits["world_facts"])  # from option1..4


def test_tofu_errors(tmp_path):
    export_tofu(generate(n_authors=10, n_holdout=1, n_world=3, n_people=3), tmp_path)
    path = tmp_path / "forget10_perturbed.json"
    rows = [json.loads(line) for line in path.read_text().splitlines()]

    del rows[1]["perturbed_answer"]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(LetheError, match=r"forget10_perturbed\.json:2: column 'perturbed_answer' missing"):
        load_tofu(tmp_path, items_per_author=K)

    path.write_text(json.dumps(rows[0]) + "\n{oops\n")
    with pytest.raises(LetheError, match=r"forget10_perturbed\.json:2: not valid JSON"):
        load_tofu(tmp_path, items_per_author=K)

    rows[0]["question"] = "Who is not in the full set?"
    path.write_text(json.dumps(rows[0]) + "\n")
    with pytest.raises(LetheError, match=r"forget10_perturbed\.json:1: field 'question': not found in full\.json"):
        load_tofu(tmp_path, items_per_author=K)

    (tmp_path / "forget10.json").write_text("")
    with pytest.raises(LetheError, match=r"forget10\.json: empty forget split"):
        load_tofu(tmp_path, items_per_author=K)

    with pytest.raises(LetheError, match=r"full\.json: 80 rows is not a multiple of items_per_author=7"):
        load_tofu(tmp_path, items_per_author=7)
    (tmp_path / "full.json").unlink()
    (tmp_path / "retain90.json").unlink()
    with pytest.raises(LetheError, match=r"full\.json: file not found"):
        load_tofu(tmp_path, items_per_author=K)
    with pytest.raises(LetheError, match="folder not found"):
        load_tofu(tmp_path / "missing")
