"""The verbatim-text scenario (MUSE-style): the lethe-news generator, the MUSE folder loader, the
VerbMem / KnowMem metrics and one end-to-end run of ``lethe run scenario=verbatim`` on a tiny setup."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from lethe.benchmarks.news import MAX_SENTENCES, MIN_SENTENCES, chunk_text, generate, load_muse
from lethe.errors import LetheError
from lethe.metrics import METRICS
from lethe.metrics.muse import knowmem, rouge_l_f1_values, verbmem
from lethe.scenarios.verbatim import (
    FewShotEncoder, PrefixEncoder, TextProbes, cut_at_stops, heldout_probes, truncate_reference,
)


def probes(generations, references) -> TextProbes:
    return TextProbes(ids=[f"i{i}" for i in range(len(generations))], generations=list(generations),
                      references=list(references))


# ---------------------------------------------------------------------------------------------- generator


@pytest.fixture(scope="module")
def corpus():
    return generate(n_forget=12, n_retain=30, n_holdout=10, seed=3, n_retain_eval=8)


def test_generator_is_deterministic_and_seeded(corpus):
    again = generate(n_forget=12, n_retain=30, n_holdout=10, seed=3, n_retain_eval=8)
    assert [d.text for d in again.forget + again.retain + again.holdout] == \
        [d.text for d in corpus.forget + corpus.retain + corpus.holdout]
    assert again.knowmem_forget == corpus.knowmem_forget and again.verbmem_forget == corpus.verbmem_forget
    other = generate(n_forget=12, n_retain=30, n_holdout=10, seed=4)
    assert other.forget[0].text != corpus.forget[0].text
    assert corpus.name == "lethe-news" and corpus.version == "1.0"
    assert corpus.spec["seed"] == 3 and corpus.spec["n_forget"] == 12


def test_generator_shape(corpus):
    assert (len(corpus.forget), len(corpus.retain), len(corpus.holdout)) == (12, 30, 10)
    ids = [d.id for d in corpus.forget + corpus.retain + corpus.holdout]
    assert len(set(ids)) == len(ids)
    for d in corpus.forget + corpus.retain + corpus.holdout:
        n = d.text.count(". ") + 1  # sentences end in "." and are joined by one space
        assert MIN_SENTENCES <= n <= MAX_SENTENCES, d.text
        item = d.item()
        assert item.question == "" and item.answer == d.text  # unlearned as a plain document
    # 2-3 questions per article, every answer stated in its article
    texts = {d.id: d.text.lower() for d in corpus.forget + corpus.retain}
    for items in (corpus.knowmem_forget, corpus.knowmem_train_retain):
        per_article = {}
        for it in items:
            per_article[it.group] = per_article.get(it.group, 0) + 1
            assert it.answer.lower() in texts[it.group], (it.answer, texts[it.group])
        assert set(per_article.values()) <= {2, 3}
    assert {it.group for it in corpus.knowmem_forget} == {d.id for d in corpus.forget}
    assert {it.group for it in corpus.knowmem_retain} == {d.id for d in corpus.retain[:8]}
    assert corpus.privleak_forget == corpus.forget and corpus.privleak_holdout == corpus.holdout


def test_verbmem_probes_are_prefix_and_continuation(corpus):
    assert len(corpus.verbmem_forget) == 12 and len(corpus.verbmem_retain) == 8
    for doc, c in zip(corpus.forget, corpus.verbmem_forget):
        assert c.id == doc.id
        assert len(c.prompt.split(" ")) == 16
        assert f"{c.prompt} {c.gt}" == doc.text  # the default continuation is the rest of the article
    short = generate(n_forget=3, n_retain=3, n_holdout=3, prefix_words=5, continuation_words=4)
    assert all(len(c.prompt.split()) == 5 and len(c.gt.split()) == 4 for c in short.verbmem_forget)


def test_made_up_names_are_not_shared_between_articles(corpus):
    """Every made-up name (town, person, company, ...) belongs to one article: no fact of a forget
    article is stated in a retain or holdout article."""
    import re

    from lethe.benchmarks import news_topics

    # the template vocabulary: every word of the templates and the word pools
    pools = [v for k, v in vars(news_topics).items() if k.isupper() and isinstance(v, tuple)]
    template_text = " ".join(str(x) for pool in pools for x in pool)
    template_text += " ".join(t.lead + " ".join(s for s, _ in t.body) for t in news_topics.TOPICS)
    known = {w.lower() for w in re.findall(r"[A-Za-z]+", template_text)} | {"nature", "works", "builders"}

    def made_up(text):  # capitalised words outside the templates
        return {w for w in re.findall(r"[A-Z][a-z]+", text) if w.lower() not in known}

    names = {d.id: made_up(d.text) for d in corpus.forget + corpus.retain + corpus.holdout}
    assert all(len(v) >= 2 for v in names.values())  # a town and a person at least
    forget = set().union(*(names[d.id] for d in corpus.forget))
    others = set().union(*(names[d.id] for d in corpus.retain + corpus.holdout))
    assert not forget & others


def test_generator_rejects_bad_arguments():
    with pytest.raises(LetheError, match="n_forget must be an integer >= 1"):
        generate(n_forget=0)
    with pytest.raises(LetheError, match="at most 1000 articles"):
        generate(n_retain=2000)
    with pytest.raises(LetheError, match="prefix_words"):
        generate(n_forget=2, n_retain=2, n_holdout=2, prefix_words=400)


# ---------------------------------------------------------------------------------------------- MUSE loader


def write_muse(folder, **override):
    """A small folder in MUSE's layout; ``override`` maps a relative path to content (None: no file)."""
    files = {
        "raw/forget.txt": "First forget paragraph, one two three.\n\nSecond forget paragraph.\n\n\nThird one here.",
        "raw/retain1.txt": "A retain paragraph.\n\nAnother retain paragraph with more words in it.",
        "verbmem/forget.json": [{"prompt": "The mayor of", "gt": "Brenholm opened a bridge."},
                                {"prompt": "Snow closed", "gt": "forty roads."}],
        "knowmem/forget_qa.json": [{"question": "Who opened the bridge?", "answer": "the mayor"}],
        "knowmem/retain_qa.json": [{"question": "What fell?", "answer": "snow"},
                                   {"question": "Where?", "answer": "Brenholm"}],
        "knowmem/forget_qa_icl.json": [{"question": "What is two plus two?", "answer": "four"}],
        "privleak/forget.json": ["forget text one", "forget text two"],
        "privleak/holdout.json": [{"text": "holdout text one"}, {"text": "holdout text two"}],
    }
    files.update(override)
    for rel, content in files.items():
        if content is None:
            continue
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return folder


def test_load_muse_reads_the_layout(tmp_path):
    c = load_muse(write_muse(tmp_path / "news"), chunk_words=6)
    assert c.name == "muse:news" and c.version.startswith("files-")
    assert [d.text for d in c.forget] == ["First forget paragraph, one two three.",
                                          "Second forget paragraph.\n\nThird one here."]
    assert [d.text for d in c.retain] == ["A retain paragraph.", "Another retain paragraph with more words",
                                          "in it."]
    assert [(v.prompt, v.gt) for v in c.verbmem_forget] == [("The mayor of", "Brenholm opened a bridge."),
                                                            ("Snow closed", "forty roads.")]
    assert [(q.question, q.answer) for q in c.knowmem_retain] == [("What fell?", "snow"), ("Where?", "Brenholm")]
    assert [q.answer for q in c.knowmem_icl["forget"]] == ["four"] and "retain" not in c.knowmem_icl
    assert [d.text for d in c.privleak_forget] == ["forget text one", "forget text two"]
    assert [d.text for d in c.privleak_holdout] == ["holdout text one", "holdout text two"]
    assert c.holdout == c.privleak_holdout
    assert set(c.spec["files"]) >= {"raw/forget.txt", "privleak/holdout.json"}
    # the version is a hash of the data: the same files in another folder keep it, an edited file changes it
    assert load_muse(write_muse(tmp_path / "copy"), chunk_words=6).version == c.version
    edited = write_muse(tmp_path / "edited", **{"privleak/holdout.json": ["holdout text one"]})
    assert load_muse(edited, chunk_words=6).version != c.version


def test_load_muse_refuses_forget_text_in_the_retain_data(tmp_path):
    from lethe.benchmarks.news import describe_muse, forget_overlap

    # the retain file holds the forget file's first paragraph again: the retain model would learn it
    folder = write_muse(tmp_path / "news", **{
        "raw/retain1.txt": "A retain paragraph.\n\nFirst forget paragraph,  one two three.\n\nMore words here."})
    with pytest.raises(LetheError) as err:
        load_muse(folder, chunk_words=6)
    msg = str(err.value)
    assert msg.startswith(f"{folder / 'raw' / 'forget.txt'}: 1 of its 2 documents")
    assert f"also stand in the retain data {folder / 'raw' / 'retain1.txt'} (first: f00000)" in msg and "\n" not in msg
    lines = describe_muse(folder, chunk_words=6)
    assert "  forget documents also in the retain data: 1 (refused at load)" in lines
    clean = load_muse(write_muse(tmp_path / "clean"), chunk_words=6)
    assert forget_overlap(clean.forget, clean.retain) == []
    lines = describe_muse(tmp_path / "clean", chunk_words=6)
    assert "  raw/forget.txt: 2 documents of at most 6 words" in lines
    assert "  knowmem: 1 forget and 2 retain questions, few-shot examples for forget" in lines


def test_chunk_text_packs_paragraphs():
    assert chunk_text("a b\n\nc d\n\ne", 4) == ["a b\n\nc d", "e"]
    assert chunk_text("a b c d e f g", 3) == ["a b c", "d e f", "g"]
    assert chunk_text("\n\n  \n\n", 3) == []


@pytest.mark.parametrize("override, match", [
    ({"raw/retain1.txt": None}, r"raw/retain1\.txt: file not found"),
    ({"verbmem/forget.json": '[{"prompt": "x",'}, r"verbmem/forget\.json:1: not valid JSON"),
    ({"verbmem/forget.json": [{"prompt": "x"}]}, r"verbmem/forget\.json: row 0: field 'gt' missing or empty"),
    ({"knowmem/forget_qa.json": [{"question": "q", "answer": 3}]}, r"forget_qa\.json: row 0: field 'answer'"),
    ({"knowmem/retain_qa.json": []}, r"retain_qa\.json: expected a non-empty JSON list of rows, got an empty list"),
    ({"knowmem/retain_qa.json": {"question": "q"}},
     r"retain_qa\.json: expected a non-empty JSON list of rows, got a dict"),
    ({"privleak/holdout.json": [{"txt": "x"}]}, r"holdout\.json: row 0: expected a non-empty string or an object"),
    ({"raw/forget.txt": "\n\n"}, r"raw/forget\.txt: the file is empty"),
])
def test_load_muse_errors_name_file_row_and_field(tmp_path, override, match):
    folder = write_muse(tmp_path / "bad", **override)
    with pytest.raises(LetheError, match=match) as err:
        load_muse(folder)
    assert "\n" not in str(err.value)


def test_load_muse_on_a_missing_folder(tmp_path):
    with pytest.raises(LetheError, match="not a folder"):
        load_muse(tmp_path / "nope")


# ---------------------------------------------------------------------------------------------- metrics


def test_verbmem_and_knowmem_by_hand():
    # "the cat sat" vs "the cat sat on the mat": LCS 3, P = 3/3, R = 3/6, F1 = 2PR/(P+R) = 2/3
    r = verbmem(probes(["the cat sat", "on the mat", ""], ["the cat sat on the mat"] * 3))
    assert r.per_sample == pytest.approx([2 / 3, 2 / 3, 0.0])
    assert r.value == pytest.approx(4 / 9)
    # "Mayor Orla Kestrin" vs "Orla Kestrin": LCS 2, P = 2/3, R = 1, F1 = 0.8; case and punctuation ignored
    k = knowmem(probes(["Mayor Orla Kestrin", "orla, KESTRIN!", "Bram Solvik"], ["Orla Kestrin"] * 3))
    assert k.per_sample == pytest.approx([0.8, 1.0, 0.0])
    # MUSE does not stem (TOFU's ROUGE does): "opens" is not "opened"
    assert knowmem(probes(["opens"], ["opened"])).value == 0.0
    # F1, not recall: a continuation that says everything and more is not a perfect score
    assert verbmem(probes(["a b c d", "a b"], ["a b", "a b c d"])).per_sample == pytest.approx([2 / 3, 2 / 3])


def test_metrics_match_rouge_score_directly():
    from rouge_score import rouge_scorer

    rng = np.random.default_rng(0)
    words = "the mayor opened a new bridge in brenholm on tuesday with 400 people and a band".split()
    gens = [" ".join(rng.choice(words, size=rng.integers(0, 12))) for _ in range(40)]
    refs = [" ".join(rng.choice(words, size=rng.integers(1, 12))) for _ in range(40)]
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    want = [scorer.score(r, g)["rougeL"].fmeasure for g, r in zip(gens, refs)]
    assert verbmem(probes(gens, refs)).per_sample == pytest.approx(want, abs=1e-12)
    assert knowmem(probes(gens, refs)).per_sample == pytest.approx(want, abs=1e-12)
    assert rouge_l_f1_values(gens, refs) == pytest.approx(want, abs=1e-12)


def test_metrics_are_registered_with_their_direction():
    for name in ("verbmem", "knowmem"):
        spec = METRICS.get(name)
        assert spec.higher_is_better and spec.level == "split" and "ROUGE-L F1" in spec.description
    with pytest.raises(ValueError, match="2 generations and 1 references"):
        verbmem(TextProbes(ids=["a", "b"], generations=["x", "y"], references=["x"]))
    with pytest.raises(ValueError, match="no items"):
        knowmem(probes([], []))


# ---------------------------------------------------------------------------------------------- probes helpers


def test_prompt_helpers(tokenizer):
    assert cut_at_stops(" four\n\nQuestion: and") == "four"
    assert cut_at_stops("Paris\nQuestion: what") == "Paris"
    assert cut_at_stops("ten Question: x") == "ten"
    bos = tokenizer.bos_token_id
    ids = tokenizer("The cat sat", add_special_tokens=False)["input_ids"]
    assert PrefixEncoder(tokenizer).prompt("The cat sat") == [bos] + ids
    from lethe.benchmarks.base import QAItem

    shots = [QAItem(id="s", question="Where was Alice Moon born?", answer="Paris")]
    text = tokenizer.decode(FewShotEncoder(tokenizer, shots).prompt("What does Bruno Vale write?")[1:])
    assert text == ("Question: Where was Alice Moon born?\nAnswer: Paris\n\n"
                    "Question: What does Bruno Vale write?\nAnswer: ")
    gt = "The cat sat on the mat."
    n = len(tokenizer(gt)["input_ids"])
    assert truncate_reference(tokenizer, gt, 100) == gt
    assert truncate_reference(tokenizer, gt, 2) == tokenizer.decode(tokenizer(gt)["input_ids"][:2]).strip()
    assert n > 2


def test_attacks_are_judged_on_the_probes_of_held_out_documents(corpus):
    held = {d.id for d in corpus.forget[::2]}
    probes_ = heldout_probes(corpus, held)
    assert [c.id for c in probes_["forget_verbmem"]] == [c.id for c in corpus.verbmem_forget if c.id in held]
    assert probes_["forget_knowmem"] and all(it.group in held for it in probes_["forget_knowmem"])
    assert heldout_probes(corpus, {d.id for d in corpus.forget})["forget_knowmem"] == corpus.knowmem_forget
    # MUSE: probes are excerpts of the raw text under their own ids, questions name no document
    from dataclasses import replace

    muse = replace(corpus, verbmem_forget=[replace(c, id=f"v{i}") for i, c in enumerate(corpus.verbmem_forget)],
                   knowmem_forget=[replace(it, group="") for it in corpus.knowmem_forget])
    probes_ = heldout_probes(muse, held)
    assert len(probes_["forget_verbmem"]) == len(held) and probes_["forget_knowmem"] == muse.knowmem_forget


# ---------------------------------------------------------------------------------------------- the scenario


def _cfg(tmp_path, *extra):
    from lethe.config import load_config

    return load_config(None, [
        "scenario=verbatim", "name=vt", f"output={tmp_path / 'runs'}", f"cache_dir={tmp_path / 'cache'}",
        "benchmark_options.n_forget=6", "benchmark_options.n_retain=12", "benchmark_options.n_holdout=6",
        "benchmark_options.n_retain_eval=4",
        "tiny_model.vocab_size=600", "tiny_model.hidden_size=64", "tiny_model.intermediate_size=128",
        "tiny_model.num_layers=1", "tiny_model.lr=1e-2", "tiny_model.batch_size=16",
        "scenario_options.model_epochs=30", "scenario_options.verbmem_max_new_tokens=32",
        "eval.bootstrap=50", "train.max_steps=2", "train.lr=3e-3", *extra,
    ])


def test_scenario_options_are_checked(tmp_path):
    from lethe.pipeline import run

    with pytest.raises(LetheError, match=r"unknown config key 'scenario_options\.min_kk'; did you mean "
                                         r"'scenario_options\.min_k'"):
        run(_cfg(tmp_path, "scenario_options.min_kk=0.2"))
    with pytest.raises(LetheError, match=r"scenario_options\.min_k is a fraction"):
        run(_cfg(tmp_path, "scenario_options.min_k=2"))
    with pytest.raises(LetheError, match="unknown parameter 'n_forgot'"):
        run(_cfg(tmp_path, "benchmark_options.n_forgot=3"))
    with pytest.raises(LetheError, match="unknown benchmark 'nowhere'"):
        run(_cfg(tmp_path, "benchmark=nowhere"))
    with pytest.raises(LetheError, match="unknown metric 'forget_rouge' in report_columns"):
        run(_cfg(tmp_path, "report_columns=[forget_rouge]"))
    with pytest.raises(LetheError, match="no built-in models"):
        run(_cfg(tmp_path, f"benchmark={write_muse(tmp_path / 'm')}", "benchmark_options={}"))
    with pytest.raises(LetheError, match="retain_model="):
        run(_cfg(tmp_path, "model=some/model", "benchmark_options={}"))
    with pytest.raises(LetheError, match="attack 'paraphrase' rewrites the forget questions.*choose from relearn"):
        run(_cfg(tmp_path, "attacks=[relearn,paraphrase]"))
    assert not (tmp_path / "runs").exists()


def test_question_methods_are_skipped_with_a_note(tmp_path):
    from lethe.pipeline import run
    from lethe.scenarios import get_scenario
    from lethe.scenarios._methods import method_runs
    from lethe.scenarios._run import Run

    scenario = get_scenario("verbatim")
    r = Run(scenario, _cfg(tmp_path, "methods=[ga,idk,npo]"), None, log=print)
    assert [mr.label for mr in method_runs(r, scenario.directions(r))] == ["ga", "npo"]
    assert len(r.notes) == 1 and "idk: skipped" in r.notes[0] and "no question" in r.notes[0]
    # methods that do not change the target's weights: the skeleton's one-line refusal, before any work
    for name, kind in (("icul", "an inference-time method"), ("sisa", "a training-time method")):
        with pytest.raises(LetheError, match=f"method '{name}' is {kind}.*the verbatim scenario evaluates"):
            run(_cfg(tmp_path, f"methods=[ga,{name}]"))
    assert not (tmp_path / "runs").exists()
    assert scenario.default_methods == ("ga", "grad_diff", "kl", "npo")  # MUSE's baselines


def test_verbatim_run_end_to_end(tmp_path):
    from lethe.pipeline import run
    from lethe.report import load_summary

    logs = []
    out = run(_cfg(tmp_path, "methods=[ga,npo]"), log=logs.append)
    assert sorted(p.name for p in out.iterdir()) == ["config.yaml", "report.html", "report.md", "results.json",
                                                    "summary.json", "tradeoff.png"]
    summary = load_summary(out)
    assert summary["scenario"] == "verbatim" and summary["benchmark"] == {"name": "lethe-news", "version": "1.0"}
    assert [(r["name"], r["kind"]) for r in summary["rows"]] == [
        ("target", "target"), ("retain model", "retain"), ("ga", "method"), ("npo", "method")]
    assert summary["tradeoff"] == {"x": "retain_knowmem", "y": "forget_verbmem", "log_y": False}
    keys = set(summary["directions"])
    for row in summary["rows"]:
        m = row["metrics"]
        assert set(m) <= keys and {"forget_verbmem", "forget_knowmem", "retain_knowmem", "retain_verbmem",
                                   "mia_min_k", "privleak", "forget_token_entropy"} <= set(m)
        assert all(math.isfinite(v) for v in m.values())
        assert all(0 <= m[k] <= 1 for k in ("forget_verbmem", "forget_knowmem", "retain_knowmem", "mia_min_k"))
        lo, hi = row["intervals"]["forget_verbmem"]
        assert lo <= m["forget_verbmem"] <= hi
    target, retain = summary["rows"][0]["metrics"], summary["rows"][1]["metrics"]
    # the target memorised the forget articles; the gold standard never saw them
    assert target["forget_verbmem"] > retain["forget_verbmem"] + 0.2
    assert target["forget_knowmem"] > retain["forget_knowmem"]
    assert target["mia_min_k"] > retain["mia_min_k"]
    assert retain["privleak"] == 0.0 and target["privleak"] < 0  # MUSE's sign: the forget set stands out
    assert summary["rows"][2]["seconds"]["unlearn"] > 0 and summary["rows"][2]["train"]["steps"] == 2
    assert any("forget VerbMem: target" in n for n in summary["notes"])
    # robustness (the default attacks less paraphrase): forget VerbMem / KnowMem on the probes each attack did
    # not train on, before -> after, on every unlearned model and the retain model (the control)
    assert "attacks: left out of the default list: paraphrase (it rewrites questions, and documents have none)" \
        in summary["notes"]
    assert summary["rows"][0]["robustness"] == {}
    for row in summary["rows"][1:]:
        assert list(row["robustness"]) == ["relearn", "quantize_4bit"]
        for attack, r in row["robustness"].items():
            assert set(r["before"]) == set(r["after"]) == {"forget_verbmem", "forget_knowmem"}
            assert all(math.isfinite(v) for v in [*r["before"].values(), *r["after"].values()])
            assert r["items"] == (3 if attack == "relearn" else 6) and r["info"]["attack"] == attack
    relearn = summary["rows"][2]["robustness"]["relearn"]
    assert relearn["info"]["questions"] < 15 and "eval_forget_ids" not in relearn["info"]
    results = json.loads((out / "results.json").read_text())
    ga = results["models"][2]
    rec = ga["record"]
    assert len(rec["per_sample"]["forget_verbmem"]) == 6 and len(rec["probes"]["forget_knowmem"]["generations"]) >= 12
    assert len(rec["probes"]["mia"]["forget_min_k"]) == 6 and len(rec["probes"]["mia"]["holdout_min_k"]) == 6
    assert len(results["references"]["forget_verbmem"]) == 6
    # a second run starts from the cached models and evaluations; a method that answers questions is skipped
    logs.clear()
    out = run(_cfg(tmp_path, "methods=[ga,idk]", "name=vt2"), log=logs.append)
    assert any("models: from cache" in line for line in logs)
    assert not any("evaluating the" in line for line in logs)
    summary = load_summary(out)
    assert [r["name"] for r in summary["rows"]] == ["target", "retain model", "ga"]
    assert any(n.startswith("idk: skipped") for n in summary["notes"])


def test_verbatim_run_on_a_muse_folder(tmp_path, tokenizer, make_tiny):
    """The MUSE path with a user's models (random tiny ones here): the run folder, no numbers to trust."""
    from lethe.models import save_model
    from lethe.pipeline import run
    from lethe.report import load_summary

    for name, seed in (("target", 0), ("retain", 1)):
        save_model(make_tiny(tokenizer, seed=seed), tokenizer, tmp_path / name)
    folder = write_muse(tmp_path / "muse")
    out = run(_cfg(tmp_path, f"benchmark={folder}", "benchmark_options={}", f"model={tmp_path / 'target'}",
                   f"retain_model={tmp_path / 'retain'}", "methods=[grad_diff]", "train.max_steps=1",
                   "scenario_options.verbmem_max_new_tokens=8", "scenario_options.knowmem_max_new_tokens=4",
                   "name=muse"), log=lambda *_: None)
    summary = load_summary(out)
    assert summary["benchmark"]["name"] == "muse:muse"
    assert [r["kind"] for r in summary["rows"]] == ["target", "retain", "method"]
    m = summary["rows"][2]["metrics"]
    assert {"forget_verbmem", "forget_knowmem", "retain_knowmem", "mia_min_k"} <= set(m)
    assert "retain_verbmem" not in m  # MUSE has no retain continuations
    # PrivLeak is relative to the retain model's AUC; at AUC 1 it is undefined: left out, with a note
    # one forget document: relearning has nothing to hold out, and paraphrase no question
    assert [list(r["robustness"]) for r in summary["rows"]] == [[], ["quantize_4bit"], ["quantize_4bit"]]
    assert any(n.startswith("attacks: left out of the default list: paraphrase (") and "relearn (it needs 2" in n
               for n in summary["notes"])
    retain_auc = summary["rows"][1]["metrics"]["mia_min_k"]
    assert ("privleak" in m) == (retain_auc < 1)
    assert (retain_auc < 1) or any("PrivLeak is not reported" in n for n in summary["notes"])
