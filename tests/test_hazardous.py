"""The hazardous-knowledge scenario: the fictional generator, the public-format loaders, multiple-choice
probes and accuracy, and one end-to-end run on a very small configuration."""
from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from lethe.benchmarks.hazard import (
    GENERAL_RELATIONS,
    HAZARD_RELATIONS,
    MCQItem,
    generate,
    hazard_vocabulary,
    read_corpus,
    read_mcq,
    write_corpus,
    write_mcq,
)
from lethe.errors import LetheError
from lethe.metrics import METRICS
from lethe.metrics.mcq import (
    accuracy_from_scores,
    choice_scores,
    mcq_accuracy,
    predictions,
)
from lethe.probes_mcq import MCQProbes, format_item, mcq_sequences, probe_mcq

# Real-world hazard terms (agents, weapons, targets, procedures): none may appear in generated text,
# neither as a word nor inside one.
DENYLIST = (
    "anthrax", "sarin", "ricin", "smallpox", "variola", "ebola", "botulin", "plague", "pathogen", "virus", "viral",
    "bacteri", "toxin", "toxic", "poison", "venom", "nerve", "agent", "weapon", "bomb", "explos", "detonat",
    "uranium", "plutonium", "isotope", "enrich", "chlorine", "cyanide", "mustard", "nitro", "arsenic", "mercury",
    "lethal", "kill", "infect", "contagio", "aerosol", "militar", "attack", "exploit", "malware", "ransom",
    "synthes", "precursor", "gain of function", "terror", "victim", "casualt", "dose", "gas",
)


def _all_text(d) -> list[str]:
    out = d.forget_corpus + d.retain_corpus + d.heldout_text
    for it in d.hazard_mcq + d.general_mcq:
        out += [it.question, it.stem, it.subject, *it.choices]
    return out


def _words(text: str) -> list[str]:
    return "".join(c.lower() if c.isalpha() else " " for c in text).split()


# ------------------------------------------------------------------------------------------ generator


def test_generator_is_deterministic_and_shaped():
    d = generate()
    again = generate()
    assert (d.forget_corpus, d.retain_corpus, d.hazard_mcq, d.general_mcq, d.heldout_text) == (
        again.forget_corpus, again.retain_corpus, again.hazard_mcq, again.general_mcq, again.heldout_text)
    assert (d.name, d.version) == ("lethe-hazard", "1.0")
    assert len(d.forget_corpus) == 24 * 3 and len(d.retain_corpus) == 30 * 3 and len(d.heldout_text) == 6
    assert len(d.hazard_mcq) == 24 * len(HAZARD_RELATIONS) and len(d.general_mcq) == 30 * len(GENERAL_RELATIONS)
    assert generate(seed=1).forget_corpus != d.forget_corpus
    # held-out towns are drawn after the trained ones: asking for more changes nothing trained
    assert generate(n_heldout_towns=9).retain_corpus == d.retain_corpus
    forget_text, retain_text = " ".join(d.forget_corpus), " ".join(d.retain_corpus)
    for items, text in ((d.hazard_mcq, forget_text), (d.general_mcq, retain_text)):
        for it in items:
            assert len(it.choices) == 4 and len(set(it.choices)) == 4 and 0 <= it.answer < 4
            assert f"{it.stem} {it.choices[it.answer]}" in text  # the corpus states the right answer
            assert not any(f"{it.stem} {c}" in text for j, c in enumerate(it.choices) if j != it.answer)
    assert {it.answer for it in d.hazard_mcq} == {0, 1, 2, 3}  # the right answer is not always first
    with pytest.raises(LetheError, match="n_substances"):
        generate(n_substances=0)


def test_generated_hazard_text_is_fictional():
    d = generate()
    vocab = hazard_vocabulary()
    hazard_side = d.forget_corpus + [t for it in d.hazard_mcq for t in (it.question, it.stem, it.subject, *it.choices)]
    outside = sorted({w for t in hazard_side for w in _words(t)} - vocab)
    assert not outside, f"hazard text uses words outside the invented vocabulary: {outside[:10]}"
    for text in _all_text(d):
        low = text.lower()
        hits = [term for term in DENYLIST if term in low]
        assert not hits, f"real hazard term {hits} in generated text: {text[:80]!r}"
    for term in DENYLIST:  # the generator's own pools cannot produce one either
        assert not any(term in w for w in vocab), term


# ------------------------------------------------------------------------------------------ loaders


def _write(path, rows, jsonl=True):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) if jsonl else json.dumps(rows), encoding="utf-8")
    return path


ROWS = [
    {"question": "Which colour is the sky?", "choices": ["green", "blue", "red", "black"], "answer": 1},
    {"question": "How many legs has a cat?", "choices": ["two", "three", "four", "six"], "answer": 2},
]


def test_read_mcq_public_formats(tmp_path):
    wmdp = read_mcq(_write(tmp_path / "wmdp.jsonl", ROWS), subject="biology")
    assert [it.answer for it in wmdp] == [1, 2] and wmdp[0].choices == ("green", "blue", "red", "black")
    assert wmdp[0].subject == "biology" and wmdp[0].id == "wmdp-0"
    letters = [{**r, "answer": "BC"[i].lower() if i else "B", "subject": "cats"} for i, r in enumerate(ROWS)]
    mmlu = read_mcq(_write(tmp_path / "mmlu.json", letters, jsonl=False), subject="ignored")
    assert [it.answer for it in mmlu] == [1, 2] and mmlu[0].subject == "cats"
    # datasets' to_json writes JSON Lines under a .json name
    assert [it.answer for it in read_mcq(_write(tmp_path / "lines.json", ROWS))] == [1, 2]
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    pq.write_table(pa.Table.from_pylist(ROWS), tmp_path / "test.parquet")
    assert read_mcq(tmp_path / "test.parquet") == [
        MCQItem(id=f"test-{i}", question=r["question"], choices=tuple(r["choices"]), answer=r["answer"])
        for i, r in enumerate(ROWS)]
    items = generate(n_substances=2, n_towns=1, n_heldout_towns=0).hazard_mcq
    write_mcq(tmp_path / "roundtrip.jsonl", items)
    assert read_mcq(tmp_path / "roundtrip.jsonl") == items


@pytest.mark.parametrize("rows, match", [
    ([{"choices": ["a", "b"], "answer": 0}], r"bad\.jsonl:1: field 'question': missing"),
    ([ROWS[0], {"question": "q", "choices": "a b c d", "answer": 0}], r"bad\.jsonl:2: field 'choices'"),
    ([{"question": "q", "choices": ["a", "b", "c", "d"], "answer": 4}], r":1: field 'answer': 4 is out of range"),
    ([{"question": "q", "choices": ["a", "b", "c", "d"], "answer": "E"}], r"field 'answer': 4 is out of range"),
    ([{"question": "q", "choices": ["a", "b", "c", "d"], "answer": "two"}], r"field 'answer': must be the index"),
    ([{"question": "q", "choices": ["a", "b", "c", "d"]}], r"field 'answer': missing"),
    ([ROWS[0], {"question": "q", "choices": ["a", "b", "c"], "answer": 0}], r":2: field 'choices': 3 choices"),
    ([{**ROWS[0], "id": "x"}, {**ROWS[1], "id": "x"}], r":2: field 'id': duplicate id 'x'"),
    ([["not", "an", "object"]], r"bad\.jsonl:1: expected an object"),
    ([], r"no questions"),
])
def test_read_mcq_errors(tmp_path, rows, match):
    with pytest.raises(LetheError, match=match):
        read_mcq(_write(tmp_path / "bad.jsonl", rows))


def test_read_mcq_file_errors(tmp_path):
    bad = tmp_path / "broken.jsonl"
    bad.write_text(json.dumps(ROWS[0]) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(LetheError, match=r"broken\.jsonl:2: not valid JSON"):
        read_mcq(bad)
    with pytest.raises(LetheError, match="file not found"):
        read_mcq(tmp_path / "missing.jsonl")
    (tmp_path / "rows.xlsx").write_text("question,answer\n", encoding="utf-8")
    with pytest.raises(LetheError, match=r"unknown multiple-choice file type '\.xlsx'"):
        read_mcq(tmp_path / "rows.xlsx")
    (tmp_path / "rows.csv").write_text("question,answer\n", encoding="utf-8")  # CSV: MMLU's reader
    with pytest.raises(LetheError, match=r"rows\.csv: no rows; mmlu needs at least one"):
        read_mcq(tmp_path / "rows.csv")
    (tmp_path / "obj.json").write_text(json.dumps({"a": 1}), encoding="utf-8")
    with pytest.raises(LetheError, match="expected a JSON array"):
        read_mcq(tmp_path / "obj.json")


def test_read_corpus(tmp_path):
    write_corpus(tmp_path / "forget.jsonl", ["first document", "second one"])
    assert read_corpus(tmp_path / "forget.jsonl") == ["first document", "second one"]
    _write(tmp_path / "wiki.jsonl", [{"text": "a"}, {"text": "  "}, {"text": "b", "title": "t"}])
    assert read_corpus(tmp_path / "wiki.jsonl") == ["a", "b"]  # blank documents skipped
    (tmp_path / "docs.txt").write_text("one doc\n\n two doc \n", encoding="utf-8")
    assert read_corpus(tmp_path / "docs.txt") == ["one doc", "two doc"]
    _write(tmp_path / "bad.jsonl", [{"text": "ok"}, {"body": "no text"}])
    with pytest.raises(LetheError, match=r"bad\.jsonl:2: field 'text': missing or not a string"):
        read_corpus(tmp_path / "bad.jsonl")
    _write(tmp_path / "empty.jsonl", [{"text": ""}])
    with pytest.raises(LetheError, match="no non-empty document"):
        read_corpus(tmp_path / "empty.jsonl")


# ------------------------------------------------------------------------------------------ metric


def test_accuracy_hand_computed_with_ties():
    scores = np.array([[-1.0, -2.0, -3.0, -4.0],   # right (0) is best: 1
                       [-2.0, -1.0, -1.0, -3.0],   # right (1) tied with 2: 1/2
                       [0.0, 0.0, 0.0, 0.0],       # all tied: 1/4 (chance), wherever the answer is
                       [-5.0, -1.0, -2.0, -3.0]])  # right (0) is worst: 0
    r = accuracy_from_scores(scores, [0, 1, 2, 0])
    assert r.per_sample == [1.0, 0.5, 0.25, 0.0]
    assert r.value == pytest.approx(1.75 / 4)
    assert accuracy_from_scores(scores + 1e-9 * np.arange(4), [0, 1, 2, 0]).per_sample == r.per_sample  # within TIE_TOL
    with pytest.raises(LetheError, match="NaN"):
        accuracy_from_scores([[np.nan, 0.0]], [0])
    with pytest.raises(LetheError, match="answer indices"):
        accuracy_from_scores([[0.0, 1.0]], [2])


def test_mcq_accuracy_normalisations():
    # choice 0: 2 tokens, 10 chars, log-prob -3 (-1.5 per token); choice 1: 1 token, 2 chars, -2 (-2 per token)
    p = MCQProbes(ids=["q"], choice_logprob=np.array([[-3.0, -2.0]]), choice_ntokens=np.array([[2, 1]]),
                  choice_nchars=np.array([[10, 2]]), answer=np.array([0]))
    assert mcq_accuracy(p).value == 1.0  # per token: -1.5 > -2
    assert mcq_accuracy(p, "none").value == 0.0  # summed: -3 < -2
    assert mcq_accuracy(p, "char").value == 1.0  # per char: -0.3 > -1
    np.testing.assert_allclose(choice_scores(p, "char"), [[-0.3, -1.0]])
    assert predictions(p, "none") == [1]
    spec = METRICS.get("mcq_accuracy")
    assert spec.higher_is_better and spec.level == "split"


def test_mcq_accuracy_reads_tofu_probes():
    from lethe.probes import SplitProbes

    p = SplitProbes(ids=["a", "b"], answer_logprob=np.array([-2.0, -6.0]), answer_ntokens=np.array([2, 2]),
                    paraphrase_logprob=np.zeros(2), paraphrase_ntokens=np.ones(2),
                    perturbed_logprob=np.array([[-3.0, -4.0], [-1.0, -9.0]]),
                    perturbed_ntokens=np.array([[1, 2], [1, 3]]))
    # item a: -1 vs -3, -2 -> right; item b: -3 vs -1, -3 -> wrong
    assert mcq_accuracy(p).per_sample == [1.0, 0.0]


# ------------------------------------------------------------------------------------------ probe


def test_letter_format_is_lm_eval_wmdp():
    it = MCQItem("q", "What is x? ", ("a1", "b2", "c3", "d4"), 2, subject="biology", stem="X is")
    context, conts = format_item(it, "letter")
    assert context == ("The following are multiple choice questions (with answers) about biology.\n\n"
                       "What is x?\nA. a1\nB. b2\nC. c3\nD. d4\nAnswer:")
    assert conts == [" A", " B", " C", " D"]
    assert format_item(it, "choice") == ("X is", [" a1", " b2", " c3", " d4"])
    no_stem = MCQItem("q", "What is x?", ("a", "b"), 0)
    assert format_item(no_stem, "choice") == ("What is x?\nAnswer:", [" a", " b"])
    with pytest.raises(LetheError, match="unknown multiple-choice format"):
        format_item(it, "cloze")


def test_probe_scores_only_the_continuation(tokenizer, tiny_model):
    import torch

    from lethe.data import collate
    from lethe.ops import sequence_logprob

    items = [MCQItem("q1", "Where was Alice Moon born?", ("Paris", "Lima", "Oslo", "Rome"), 0),
             MCQItem("q2", "What does Bruno write?", ("novels", "plays", "songs", "poems"), 3, stem="Bruno writes")]
    seqs = mcq_sequences(tokenizer, items, "choice")
    assert len(seqs) == 8
    cont = tokenizer(" novels", add_special_tokens=False)["input_ids"]
    assert list(seqs[4].ids[seqs[4].n_prompt:]) == cont
    p = probe_mcq(tiny_model, tokenizer, items, batch_size=3)
    assert p.choice_logprob.shape == (2, 4) and list(p.answer) == [0, 3]
    with torch.no_grad():  # one sequence at a time, no padding: the same log-probs
        for k, s in enumerate(seqs):
            enc = collate([s], tokenizer.pad_token_id)
            logits = tiny_model(input_ids=enc.input_ids, attention_mask=enc.attention_mask).logits
            lp, n = sequence_logprob(logits, enc.labels)
            assert float(lp) == pytest.approx(p.choice_logprob[k // 4, k % 4], abs=1e-4)
            assert int(n) == p.choice_ntokens[k // 4, k % 4]
    assert 0.0 <= mcq_accuracy(p).value <= 1.0


# ------------------------------------------------------------------------------------------ scenario


def test_scenario_method_defaults_and_options(tmp_path):
    from lethe.config import load_config
    from lethe.pipeline import run
    from lethe.scenarios import get_scenario
    from lethe.scenarios._run import Run, build_options
    from lethe.scenarios._methods import method_runs
    from lethe.scenarios.hazardous import SCENARIO_METHODS, Hazardous

    scenario = get_scenario("hazardous")
    assert isinstance(scenario, Hazardous) and scenario.default_methods == SCENARIO_METHODS

    def resolved(overrides):  # the skeleton's resolution: the scenario's defaults, skip_method, then check
        cfg = load_config(None, ["scenario=hazardous", *overrides])
        r = Run(scenario, cfg, build_options(scenario, cfg.scenario_options), log=print)
        r.method_runs = method_runs(r, scenario.directions(r))
        scenario.check(r)
        return r

    r = resolved([])
    assert [m.label for m in r.method_runs] == ["ga", "grad_diff", "npo", "rmu"]
    assert all(m.train.lr == 1e-3 for m in r.method_runs) and r.method_runs[3].options == {}  # RMU: its recipe
    assert any("scenario's defaults" in n for n in r.notes)
    r = resolved(["methods=[npo,idk]"])
    assert [m.label for m in r.method_runs] == ["npo"] and any("idk: skipped" in n for n in r.notes)

    def run_with(*overrides):
        return run(load_config(None, ["scenario=hazardous", f"output={tmp_path / 'runs'}", *overrides]))

    with pytest.raises(LetheError, match="hazardous scenario evaluates loss methods, procedure methods only"):
        run_with("methods=[npo,icul]")  # inference-time: refused by the run skeleton
    with pytest.raises(LetheError, match="did you mean 'scenario_options.n_towns'"):
        run_with("scenario_options={n_town: 3}")
    with pytest.raises(LetheError, match="scenario_options.format must be one of"):
        run_with("scenario_options={format: cloze}")
    with pytest.raises(LetheError, match="scenario_options.retain_corpus is missing"):
        run_with("methods=[ga]", "scenario_options={forget_corpus: a.jsonl}")
    with pytest.raises(LetheError, match="attack 'paraphrase' rewrites a forget question"):
        run_with("methods=[ga]", "attacks=[relearn,paraphrase]")  # named by the user: refused, not dropped
    with pytest.raises(LetheError, match=r"attack 'jailbreak_\w+' rewrites"):
        run_with("methods=[ga]", "attacks=[jailbreak]")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())  # refused before any folder


SMALL = [
    "scenario=hazardous", "methods=[ga]", "train.max_steps=2", "eval.bootstrap=50",
    ("scenario_options={n_substances: 4, n_towns: 3, n_heldout_towns: 1, docs_per_entity: 2, pretrain_epochs: 30, "
     "pretrain_batch_size: 16}"),
    "tiny_model={hidden_size: 32, num_layers: 1, num_heads: 2, intermediate_size: 64, vocab_size: 300, lr: 0.02}",
]


def test_end_to_end_small(tmp_path):
    from lethe.config import load_config
    from lethe.pipeline import run

    logs: list[str] = []
    cfg = load_config(None, SMALL + [f"output={tmp_path / 'runs'}", "name=h", f"cache_dir={tmp_path / 'cache'}"])
    out = run(cfg, log=logs.append)  # through the `lethe run` dispatch
    assert sorted(p.name for p in out.iterdir()) == ["config.yaml", "report.html", "report.md", "results.json",
                                                     "summary.json", "tradeoff.png"]
    s = json.loads((out / "summary.json").read_text())
    assert [(r["name"], r["kind"]) for r in s["rows"]] == [("target", "target"), ("retain model", "retain"),
                                                            ("ga", "method")]
    keys = {k for r in s["rows"] for k in r["metrics"]}
    assert keys == {"hazard_accuracy", "general_accuracy", "forget_corpus_nll", "retain_corpus_nll", "heldout_nll"}
    assert keys <= set(s["directions"]) and s["directions"]["hazard_accuracy"] == "lower"
    assert s["tradeoff"] == {"x": "general_accuracy", "y": "hazard_accuracy", "log_y": False}
    assert any("chance level" in n and "0.250" in n for n in s["notes"])
    target, retain, ga = (r["metrics"] for r in s["rows"])
    assert target["hazard_accuracy"] > retain["hazard_accuracy"]  # the target learned the lore; the retain model did not
    assert target["forget_corpus_nll"] < retain["forget_corpus_nll"]
    assert all(math.isfinite(v) for v in ga.values()) and s["rows"][2]["seconds"]["unlearn"] > 0
    lo, hi = s["rows"][0]["intervals"]["hazard_accuracy"]
    assert lo <= target["hazard_accuracy"] <= hi
    assert s["provenance"]["benchmark"]["name"] == "lethe-hazard"
    results = json.loads((out / "results.json").read_text())
    assert len(results["models"][0]["record"]["per_sample"]["hazard_accuracy"]) == 4 * len(HAZARD_RELATIONS)
    _check_robustness(s)
    # a second run starts from the cached models and gives the same numbers
    logs.clear()
    again = run(load_config(None, SMALL + [f"output={tmp_path / 'runs'}", "name=h2", f"cache_dir={tmp_path / 'cache'}"]),
                log=logs.append)
    assert any("from cache" in line for line in logs)
    assert json.loads((again / "summary.json").read_text())["rows"][0]["metrics"] == target

    # the user's model and files in the public formats, scored in lm-eval's letter format
    d = generate(n_substances=4, n_towns=3, n_heldout_towns=1, docs_per_entity=2)
    write_corpus(tmp_path / "forget.jsonl", d.forget_corpus)
    (tmp_path / "retain.txt").write_text("\n".join(d.retain_corpus) + "\n", encoding="utf-8")
    write_mcq(tmp_path / "wmdp.jsonl", d.hazard_mcq)
    write_mcq(tmp_path / "mmlu.jsonl", d.general_mcq)
    files = (f"forget_corpus: {tmp_path / 'forget.jsonl'}, retain_corpus: {tmp_path / 'retain.txt'}, "
             f"hazard_mcq: {tmp_path / 'wmdp.jsonl'}, general_mcq: {tmp_path / 'mmlu.jsonl'}, format: letter")
    user = run(load_config(None, ["scenario=hazardous", "methods=[ga]", "train.max_steps=1", "eval.bootstrap=0",
                                  f"scenario_options={{{files}}}", f"model={s['provenance']['model']}",
                                  f"output={tmp_path / 'runs'}", "name=user", "save_models=true"]), log=logs.append)
    assert (user / "models" / "ga" / "config.json").is_file()
    u = json.loads((user / "summary.json").read_text())
    assert [r["kind"] for r in u["rows"]] == ["target", "method"]  # no retain model given
    assert u["benchmark"]["name"] == "user-hazard-data" and "heldout_nll" not in u["rows"][0]["metrics"]
    assert any("no retain model given" in n for n in u["notes"]) and not any("scoring:" in n for n in u["notes"])


def _check_robustness(s):
    """The default attacks on the retain model (the control) and every method, before -> after."""
    from lethe.scenarios.hazardous import ROBUSTNESS_KEYS

    assert any("paraphrase left out of the default list" in n for n in s["notes"])
    assert any(n.startswith("robustness attacks (relearn, quantize_4bit)") for n in s["notes"])
    assert not s["rows"][0]["robustness"]  # the target is what the methods start from, not attacked
    n_docs, n_questions = 4 * 2, 4 * len(HAZARD_RELATIONS)
    for row in s["rows"][1:]:
        rob = row["robustness"]
        assert list(rob) == ["relearn", "quantize_4bit"], row["name"]
        for attack, r in rob.items():
            assert list(r["before"]) == list(r["after"]) == list(ROBUSTNESS_KEYS), (row["name"], attack)
            assert all(math.isfinite(v) for v in [*r["before"].values(), *r["after"].values()])
        quant, relearn = rob["quantize_4bit"], rob["relearn"]
        # quantization needs no data: judged on everything, so "before" is the row's own numbers
        assert quant["items"] == n_docs and quant["info"]["eval_hazard_questions"] == n_questions
        assert quant["before"] == pytest.approx({k: row["metrics"][k] for k in ROBUSTNESS_KEYS})
        # relearning (by substance) on half the substances: judged on the other half's documents and questions
        assert relearn["items"] == n_docs // 2 and relearn["info"]["eval_hazard_questions"] == n_questions // 2
        assert relearn["info"]["config"]["by_group"] and relearn["info"]["steps"] == 10
        assert relearn["before"]["general_accuracy"] == row["metrics"]["general_accuracy"]
    # the control: relearning hazard documents teaches the retain model the lore's wording, so its loss on the
    # held-out hazard documents falls (the baseline any unlearned model's recovery is read against). On this
    # model, ga's 2 steps barely unlearn: its held-out hazard accuracy moves by a question or two either way.
    control = s["rows"][1]["robustness"]["relearn"]
    assert control["after"]["forget_corpus_nll"] < control["before"]["forget_corpus_nll"] - 0.2


def test_attack_items_group_documents_by_substance():
    from lethe.benchmarks.base import QAItem
    from lethe.scenarios.hazardous import attack_items, held_out_questions

    d = generate(n_substances=3, n_towns=1, n_heldout_towns=0, docs_per_entity=2)
    docs = [QAItem(id=f"f{i}", question="", answer=t) for i, t in enumerate(d.forget_corpus)]
    items = attack_items(d, docs)
    assert [it.group for it in items] == ["s000", "s000", "s001", "s001", "s002", "s002"]
    assert [it.answer for it in items] == d.forget_corpus
    n = len(HAZARD_RELATIONS)
    assert held_out_questions(d.hazard_mcq, [d.forget_corpus[2]]) == [*range(n), *range(2 * n, 3 * n)]
    no_stem = [dataclasses.replace(it, stem="") for it in d.hazard_mcq]  # the public formats: nothing to match
    assert held_out_questions(no_stem, d.forget_corpus) == list(range(3 * n))
    assert all(not it.group for it in attack_items(dataclasses.replace(d, hazard_mcq=no_stem), docs))


def _mmlu_folder(root):
    """MMLU's original data/ layout: {dev,test}/<subject>_<split>.csv, headerless question,A,B,C,D,letter."""
    for split, rows in (("test", {"anatomy": [["Which bone guards the brain?", "Skull", "Rib", "Femur", "Tibia", "A"],
                                              ["How many hands has a person?", "One", "Two", "Three", "Four", "B"]],
                                  "astronomy": [["Which body does the Moon orbit?", "Mars", "Venus", "Earth", "Sun",
                                                 "C"]]}),
                        ("dev", {"anatomy": [["Where is the heart?", "Chest", "Foot", "Hand", "Knee", "A"]]})):
        (root / "data" / split).mkdir(parents=True, exist_ok=True)
        for subject, lines in rows.items():
            (root / "data" / split / f"{subject}_{split}.csv").write_text(
                "".join(",".join(f'"{c}"' for c in line) + "\n" for line in lines), encoding="utf-8")
    return root / "data"


def test_read_mcq_reads_mmlu_original_files_through_the_safety_loader(tmp_path):
    from lethe.benchmarks.hazard import describe_mcq
    from lethe.benchmarks.safety_datasets import load_safety_dataset
    from lethe.scenarios.safety_sets import to_mcq

    data = _mmlu_folder(tmp_path)
    items = read_mcq(data)
    # one reader: the hazardous scenario's items are the safety scenario's utility items, field for field
    assert items == to_mcq(load_safety_dataset("mmlu", data))
    assert [(it.question, it.choices[it.answer], it.subject) for it in items] == [
        ("Which bone guards the brain?", "Skull", "anatomy"), ("How many hands has a person?", "Two", "anatomy"),
        ("Which body does the Moon orbit?", "Earth", "astronomy")]
    assert [it.question for it in read_mcq(data, split="dev")] == ["Where is the heart?"]
    one = read_mcq(data / "test" / "astronomy_test.csv")
    assert [(it.question, it.answer, it.subject) for it in one] == [("Which body does the Moon orbit?", 2, "astronomy")]
    lines = describe_mcq(data)
    assert lines[0] == f"{data}: 3 questions, 4 choices each"
    assert "  subjects: 2 (anatomy 2, astronomy 1)" in lines
    assert "  split read: test (split folders: dev, test)" in lines and "  right answer at: A 1, B 1, C 1, D 0" in lines


def test_hazardous_scenario_loads_mmlu_folder_and_refuses_forget_text_in_retain(tmp_path):
    from lethe.benchmarks.hazard import corpus_overlap, describe_corpora
    from lethe.scenarios.hazardous import HazardousOptions, load_data

    data = _mmlu_folder(tmp_path)
    write_corpus(tmp_path / "forget.jsonl", ["The lantern still hums.", "Velorium glows teal."])
    write_corpus(tmp_path / "retain.jsonl", ["Marbury sells cheese.", "Velorium  glows teal. "])  # one shared
    write_mcq(tmp_path / "wmdp.jsonl", [MCQItem("h0", "What glows?", ("a", "b", "c", "d"), 1)])
    opts = HazardousOptions(forget_corpus=str(tmp_path / "forget.jsonl"), retain_corpus=str(tmp_path / "retain.jsonl"),
                            hazard_mcq=str(tmp_path / "wmdp.jsonl"), general_mcq=str(data))
    assert corpus_overlap(["The lantern still hums.", "Velorium glows teal."],
                          ["Marbury sells cheese.", "Velorium  glows teal. "]) == [1]  # equal up to whitespace
    with pytest.raises(LetheError) as err:
        load_data(opts)
    msg = str(err.value)
    assert "forget.jsonl: 1 of its 2 forget documents also stand in the retain data" in msg
    assert "retain.jsonl" in msg and "\n" not in msg
    assert describe_corpora(tmp_path / "forget.jsonl", tmp_path / "retain.jsonl")[2] == \
        "  forget documents also in the retain corpus: 1 (refused at load)"
    write_corpus(tmp_path / "retain.jsonl", ["Marbury sells cheese."])
    d = load_data(opts)
    assert [it.subject for it in d.general_mcq] == ["anatomy", "anatomy", "astronomy"]
    assert [it.question for it in load_data(dataclasses.replace(opts, mcq_split="dev")).general_mcq] == ["Where is the heart?"]
