"""TOFU-layout folders as their authors meant them: the Closer-Look release (sail-sg/closer-look-LLM-unlearning,
data/tofu: forget files of task_id-numbered requests, each with its complement, no full.json), the public
TOFU layout, and the forget/retain invariant every loader checks. Every fixture is written here, in the
real files' layout (same names, columns and nesting), with invented content."""
from __future__ import annotations

import json
from collections import Counter

import pytest

from lethe.benchmarks import (
    Benchmark,
    QAItem,
    describe_splits,
    generate,
    load_benchmark,
    load_benchmark_folder,
    load_tofu,
    overlap_report,
    save_benchmark,
)
from lethe.errors import LetheError

K = 2  # Q&A per invented author
THINGS = ("a brass key", "a red kite", "an old map", "a tin whistle", "a glass bird", "a paper moon")


def invented_authors(n: int, k: int = K) -> list[list[dict]]:
    return [[{"question": f"What does author Vell{i:02d} keep in drawer {j}?",
              "answer": f"Vell{i:02d} keeps {THINGS[(i + j) % len(THINGS)]} in drawer {j}."} for j in range(k)]
            for i in range(n)]


def _write(folder, name, rows):
    (folder / f"{name}.json").write_text("".join(json.dumps(r) + "\n" for r in rows))


def write_closer_look(folder, authors: list[list[dict]], n_tasks=(10, 10, 9), per_task=(1, 2, 4)):
    """The Closer-Look data/tofu layout: forget01/05/10.json = n_tasks requests of per_task authors each
    (task_id strings "1", "2", ...), nested (forget01 ⊂ forget05 ⊂ forget10, each first task a prefix of the
    next's), the complements retain90/50/10.json (question, answer only), *_perturbed files with task_id,
    retain_perturbed.json (authors never forgotten), world_facts / real_authors_perturbed with original_answer.
    Returns {forget file: [[author indices of task 1], [task 2], ...]}."""
    folder.mkdir(parents=True, exist_ok=True)
    n10 = n_tasks[2] * per_task[2]
    keep = len(authors) - n10
    forgotten = list(range(keep, len(authors)))  # the last authors, as in TOFU
    tasks = {}
    for name, complement, n, p in zip(("forget01", "forget05", "forget10"), ("retain90", "retain50", "retain10"),
                                      n_tasks, per_task):
        tasks[name] = [forgotten[t * p:(t + 1) * p] for t in range(n)]
        rows = [{"task_id": str(t + 1), **row} for t, task in enumerate(tasks[name]) for a in task for row in authors[a]]
        _write(folder, name, rows)
        _write(folder, f"{name}_perturbed", [{**r, "paraphrased_answer": "In other words: " + r["answer"],
                                              "perturbed_answer": [r["answer"].replace("keeps", "lost"),
                                                                   r["answer"].replace("keeps", "sold")],
                                              "paraphrased_question": r["question"].replace("What", "Which thing")}
                                             for r in rows])
        inside = {a for task in tasks[name] for a in task}
        _write(folder, complement, [row for a in range(len(authors)) if a not in inside for row in authors[a]])
    _write(folder, "retain_perturbed", [{**r, "paraphrased_answer": "Put simply: " + r["answer"],
                                         "perturbed_answer": [r["answer"].replace("keeps", "hid")],
                                         "paraphrased_question": r["question"]}
                                        for a in range(min(2, keep)) for r in authors[a]])
    for base, q in (("world_facts", "Which river runs through Orlin?"), ("real_authors", "Who wrote 'The Tin Gate'?")):
        _write(folder, f"{base}_perturbed", [{"question": f"{q} ({i})", "answer": f"Answer {i}",
                                              "perturbed_answer": [f"Wrong {i}a", f"Wrong {i}b", f"Wrong {i}c"],
                                              "original_answer": f"The long answer is Answer {i}."} for i in range(3)])
    return tasks


def _qa(items):
    return Counter((it.question, it.answer) for it in items)


def _rows(folder, name):
    return [json.loads(line) for line in (folder / f"{name}.json").read_text().splitlines() if line.strip()]


@pytest.fixture()
def closer_look(tmp_path):
    authors = invented_authors(40)
    tasks = write_closer_look(tmp_path / "tofu", authors)
    return tmp_path / "tofu", authors, tasks


# --- the Closer-Look release --------------------------------------------------------------------------
def test_closer_look_loads_as_its_authors_meant(closer_look):
    folder, authors, tasks = closer_look
    bench = load_benchmark(str(folder), items_per_author=K)  # dispatch: a folder of TOFU files
    assert bench.name == "tofu" and bench.spec["layout"] == "closer-look"
    # the 40 authors once each (not retain90 + forget10 = the forgotten rows twice)
    assert len(bench.splits["authors"]) == 40 * K and len(_qa(bench.splits["authors"])) == 40 * K
    assert _qa(bench.splits["authors"]) == Counter((r["question"], r["answer"]) for a in authors for r in a)
    assert overlap_report(bench) == {f"{s}{x}": 0 for s in ("forget01", "forget05", "forget10") for x in ("", " rounds")}
    for name, complement, n_tasks in (("forget01", "retain90", 10), ("forget05", "retain50", 10),
                                      ("forget10", "retain10", 9)):
        rows = _rows(folder, name)
        # forget = task 1 (config/tofu.yaml task_id: 1); retain = as forget.py get_task_data builds it
        # for task 1: the complement file + the forget rows of the tasks not yet unlearned
        assert _qa(bench.forget(name)) == Counter((r["question"], r["answer"]) for r in rows if int(r["task_id"]) == 1)
        want_retain = _rows(folder, complement) + [r for r in rows if int(r["task_id"]) not in [1]]
        assert _qa(bench.retain(name)) == Counter((r["question"], r["answer"]) for r in want_retain)
        assert len(bench.forget(name)) + len(bench.retain(name)) == 40 * K
        # the rounds are the task_ids in numeric order ("10" last, not second), each its task's authors
        assert bench.spec["task_ids"][name] == [str(t) for t in range(1, n_tasks + 1)]
        rounds = bench.spec["rounds"][name]
        assert len(rounds) == n_tasks and rounds[0] == bench.forget_sets[name]
        group_of = {it.question: it.group for it in bench.splits["authors"]}
        assert rounds == [[group_of[authors[a][0]["question"]] for a in task] for task in tasks[name]]
    # evaluation rows: paraphrases and wrong answers from *_perturbed, the long answer of world facts
    assert all(len(it.perturbed_answers) == 2 for it in bench.forget("forget10"))
    assert len(bench.splits["retain_eval"]) == 2 * K and bench.splits["holdout"] == []
    wf = bench.splits["world_facts"][0]
    assert wf.answer == "Answer 0" and wf.original_answer == "The long answer is Answer 0."
    assert bench.splits["known_people"][2].original_answer == "The long answer is Answer 2."
    notes = "\n".join(describe_splits(bench))
    assert "forget05: task_id 1 of forget05.json, 2 authors (4 Q&A)" in notes
    assert "10 requests (task_id 1..10, 20 authors)" in notes and "retain50.json + the later requests" in notes
    assert "retain_perturbed.json, 4 Q&A of 2 authors never in a forget request" in notes
    assert "holdout: none in this release" in notes


def test_closer_look_rounds_follow_task_id_order_not_file_order(closer_look):
    folder, _, _ = closer_look
    rows = _rows(folder, "forget05")
    _write(folder, "forget05", sorted(rows, key=lambda r: -int(r["task_id"])))  # task 10 first in the file
    ints = [{**r, "task_id": int(r["task_id"])} for r in _rows(folder, "forget01")]  # integers are accepted too
    _write(folder, "forget01", ints)
    bench = load_tofu(folder, items_per_author=K)
    want = load_tofu(folder.parent / "tofu", items_per_author=K).spec["rounds"]["forget10"]
    assert bench.spec["rounds"]["forget10"] == want
    by_id = {}
    for r in rows:
        by_id.setdefault(r["task_id"], []).append(r["question"])
    group_of = {it.question: it.group for it in bench.splits["authors"]}
    assert bench.spec["rounds"]["forget05"] == [list(dict.fromkeys(group_of[q] for q in by_id[str(t)]))
                                                for t in range(1, 11)]
    assert bench.forget_sets["forget05"] == bench.spec["rounds"]["forget05"][0]
    assert bench.spec["task_ids"]["forget01"] == [str(t) for t in range(1, 11)]


def test_closer_look_bad_folders(tmp_path):
    def fresh(name):
        folder = tmp_path / name
        write_closer_look(folder, invented_authors(40))
        return folder

    folder = fresh("shared")  # a forget row also in its complement: named with both files and the count
    _write(folder, "retain50", _rows(folder, "retain50") + [{k: v for k, v in r.items() if k != "task_id"}
                                                            for r in _rows(folder, "forget05")[:3]])
    with pytest.raises(LetheError, match=r"forget05\.json, .*retain50\.json: 3 forget items \(question \+ answer\) "
                                         r"also stand in the retain data"):
        load_tofu(folder, items_per_author=K)

    folder = fresh("short")  # a complement that misses a row: not the same authors
    _write(folder, "retain90", _rows(folder, "retain90")[1:])
    with pytest.raises(LetheError, match=r"forget01\.json, .*retain90\.json: together they are not the Q&A of .*"
                                         r"\(1 rows differ\)"):
        load_tofu(folder, items_per_author=K)

    folder = fresh("no_id")
    rows = _rows(folder, "forget10")
    del rows[5]["task_id"]
    _write(folder, "forget10", rows)
    with pytest.raises(LetheError, match=r"forget10\.json:6: field 'task_id': missing or not a whole number"):
        load_tofu(folder, items_per_author=K)

    folder = fresh("split_author")  # one author's two rows in two requests
    rows = _rows(folder, "forget10")
    rows[0]["task_id"] = "2"
    _write(folder, "forget10", rows)
    with pytest.raises(LetheError, match=r"forget10\.json: task_id 1 has 7 rows, which do not cover whole authors"):
        load_tofu(folder, items_per_author=K)

    folder = fresh("alone")  # no forget file has its complement
    for name in ("retain90", "retain50", "retain10"):
        (folder / f"{name}.json").unlink()
    with pytest.raises(LetheError, match=r"full\.json: file not found, and no forget file has its complement"):
        load_tofu(folder, items_per_author=K)


def test_retain90_plus_forget10_is_never_joined_when_they_overlap(closer_look):
    """The old reading of this release: retain90 + forget10 as 'the authors' (the forgotten rows twice)."""
    folder, _, _ = closer_look
    for name in ("forget01", "forget05", "forget10"):
        _write(folder, name, [{k: v for k, v in r.items() if k != "task_id"} for r in _rows(folder, name)])
    # forget10 (36 authors) and retain90 (all but forget01's 10): 26 authors x 2 Q&A in both
    with pytest.raises(LetheError, match=r"forget10\.json, .*retain90\.json: 52 forget items \(question \+ answer\) "
                                         r"also stand in the retain data; remove them"):
        load_tofu(folder, items_per_author=K)


# --- the public TOFU layout and Lethe's own folders ------------------------------------------------------
def test_tofu_layout_and_export_round_trip(tmp_path):
    from lethe.cli import main

    assert main(["export", "--format", "tofu", str(tmp_path / "t"), "n_authors=20", "n_holdout=2", "n_world=4",
                 "n_people=4"]) == 0
    bench = load_tofu(tmp_path / "t", items_per_author=8)
    want = generate(n_authors=20, n_holdout=2, n_world=4, n_people=4)
    assert bench.spec["layout"] == "tofu" and "rounds" not in bench.spec
    assert bench.forget_sets == want.forget_sets
    for split in want.forget_sets:
        assert _qa(bench.forget(split)) == _qa(want.forget(split))
        assert _qa(bench.retain(split)) == _qa(want.retain(split))
    assert not any(overlap_report(bench).values())
    assert "forget10: the 2 authors of forget10.json (16 Q&A); retain = the other 18 authors" in describe_splits(bench)
    # a TOFU folder whose retain file holds a forget author: both files and the count
    rows = _rows(tmp_path / "t", "retain90") + _rows(tmp_path / "t", "forget10")[:1]
    _write(tmp_path / "t", "retain90", rows)
    with pytest.raises(LetheError, match=r"forget10\.json, .*retain90\.json: 1 forget item \(question \+ answer\) "
                                         r"also stand"):
        load_tofu(tmp_path / "t", items_per_author=8)


def _tiny_bench(duplicate: bool) -> Benchmark:
    items = [QAItem(id=f"{g}_{j}", question=f"What does {g} keep in drawer {j}?", answer=f"{g} keeps a key.", group=g)
             for g in ("a000", "a001", "a002") for j in range(2)]
    if duplicate:  # a retain author carries one of the forget author's Q&A
        items[0] = QAItem(id="a000_0", question=items[4].question, answer=items[4].answer, group="a000")
    return Benchmark("t", "1", {"authors": items}, {"forget": ["a002"]})


def test_overlap_report_and_lethe_folders(tmp_path):
    assert overlap_report(_tiny_bench(False)) == {"forget": 0}
    assert overlap_report(_tiny_bench(True)) == {"forget": 1}  # counted, never raised
    save_benchmark(_tiny_bench(False), tmp_path / "ok")
    assert load_benchmark_folder(tmp_path / "ok").forget_sets == {"forget": ["a002"]}
    save_benchmark(_tiny_bench(True), tmp_path / "bad")
    with pytest.raises(LetheError, match=r"authors\.jsonl \(forget_sets\.forget of benchmark\.json\), .*authors\.jsonl: "
                                         r"1 forget item \(question \+ answer\) also stand"):
        load_benchmark_folder(tmp_path / "bad")
