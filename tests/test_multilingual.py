"""Multilingual facts: the German twin of lethe-authors, translations, the cross_lingual attack and
one end-to-end run of ``lethe run scenario=multilingual`` on a miniature."""
from __future__ import annotations

import hashlib
import json
import os
import re

import pytest

from lethe.benchmarks import (
    generate,
    load_benchmark,
    load_benchmark_folder,
    save_benchmark,
)
from lethe.benchmarks import synthetic as S
from lethe.benchmarks.base import QAItem, read_jsonl, write_jsonl
from lethe.cli import main
from lethe.errors import LetheError

os.environ.setdefault("LETHE_NO_PROGRESS", "1")

from tiny_run import NO_EMBEDDINGS as TINY  # noqa: E402
# English glue words of the answer / paraphrase templates: none may appear in a German item
ENGLISH_GLUE = {"born", "native", "parents", "worked", "genres", "writes", "winner", "went", "author", "books",
                "wrote", "both", "explores", "recurring", "themes", "degree", "graduated", "collects", "has",
                "large", "collection", "and", "the", "of", "with", "in year"}


@pytest.fixture(scope="module")
def default():
    return generate()


@pytest.fixture(scope="module")
def bilingual():
    return generate(languages=("en", "de"))


def _digest(bench) -> str:
    data = {"name": bench.name, "version": bench.version, "spec": bench.spec, "forget_sets": bench.forget_sets,
            "pretrain": bench.pretrain_text, "splits": {k: [it.to_json() for it in v] for k, v in bench.splits.items()}}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


# --- the default benchmark is exactly what it was ----------------------------------------------------
def test_default_benchmark_is_unchanged(default):
    # spec (-> the cached models' hash) and every item, as generated before languages existed
    assert default.spec == {"seed": 0, "n_authors": 100, "n_holdout": 10, "n_world": 120, "n_people": 60,
                            "items_per_author": 8, "n_perturbed": 3}
    assert _digest(default) == "6ad40d35269ab4d14735cc43f2ffd021602b5c7fa1f4d7fcab5d2e9bac3f275f"
    assert generate(languages=["en"]) == default and "languages" not in generate(languages=["en"]).spec
    assert all(it.language == "" and "language" not in it.to_json() for it in default.splits["authors"])


def test_second_language_leaves_the_english_data_alone(default, bilingual):
    assert bilingual.spec == {**default.spec, "languages": ["en", "de"]}
    for name, items in default.splits.items():
        assert bilingual.splits[name] == items, name
    assert bilingual.pretrain_text == default.pretrain_text and bilingual.forget_sets == default.forget_sets
    assert set(bilingual.splits) - set(default.splits) == {"authors_de", "holdout_de", "retain_eval_de"}
    assert generate(languages=("en", "de")) == bilingual  # deterministic
    small = generate(seed=3, n_authors=12, n_holdout=2, languages=("en", "de"))
    assert small.splits["authors"] == generate(seed=3, n_authors=12, n_holdout=2).splits["authors"]


# --- the German items -----------------------------------------------------------------------------
def test_every_author_fact_exists_in_german(bilingual):
    for split in ("authors", "holdout", "retain_eval"):
        en, de = bilingual.splits[split], bilingual.splits[f"{split}_de"]
        assert len(en) == len(de)
        for e, d in zip(en, de):
            assert d.id == e.id + "-de" and d.group == e.group and d.fact == e.fact
            assert d.language == "de" and e.language == ""
            assert len(d.perturbed_answers) == len(e.perturbed_answers) == S.N_PERTURBED


def test_german_items_use_german_templates_and_words(bilingual):
    facts = {f.name: f for f in S.AUTHOR_FACTS}
    for e, d in zip(bilingual.splits["authors"], bilingual.splits["authors_de"]):
        w = S.wording(d.fact, "de")
        name = e.question[len(facts[e.fact].question.split("{n}")[0]):].removesuffix(
            facts[e.fact].question.split("{n}")[1])
        assert d.question == w.question.format(n=name) and d.paraphrased_question == w.paraphrased_question.format(n=name)
        assert name in d.question  # the fictitious name is unchanged
        for text in (d.answer, d.paraphrased_answer, *d.perturbed_answers, d.question, d.paraphrased_question):
            words = {x.lower() for x in re.findall(r"[^\W\d_]+", text)}
            assert not words & ENGLISH_GLUE, (d.id, text)
    de = bilingual.splits["authors_de"]
    first = {d.fact: d for d in de[:8]}
    assert first["birth"].answer.startswith("Geboren ") and first["parents"].answer.startswith("Eltern: ")
    assert first["collection"].question.startswith("Was sammelt ")
    # pool words are translated: no English occupation / theme / colour in the German answers
    english_pools = {w for pool in (S.OCCUPATIONS, S.THEMES, S.COLORS, S.COLLECT_THINGS, S.GENRE_FORMS) for w in pool}
    for d in de:
        assert not set(re.findall(r"[a-z]+", d.answer)) & english_pools, d.answer
    assert any("ä" in d.answer or "ü" in d.answer or "ö" in d.answer or "ß" in d.paraphrased_answer for d in de)


def test_translations_are_one_to_one_per_pool():
    for slot, (english, german) in S._SLOT_POOLS.items():
        assert set(german) == set(english), slot
        assert len(set(german.values())) == len(german), f"{slot}: two words translate the same"
        assert all(" " not in w for w in german.values()), slot
    assert set(S.WORDINGS["de"]) == {f.name for f in S.AUTHOR_FACTS}


def test_german_wrong_answers_share_no_slot_word_with_the_truth(bilingual):
    for d in bilingual.splits["authors_de"]:
        w = S.wording(d.fact, "de")
        true = S._read(w.paraphrase, d.paraphrased_answer, "de")
        assert true == S._read(w.answer, d.answer, "de")
        for p in d.perturbed_answers:
            alt = S._read(w.paraphrase, p, "de")
            assert not set(S._words(true)) & set(S._words(alt)), (d.id, p)


def test_translate_round_trips_every_item(bilingual):
    english = bilingual.splits["authors"] + bilingual.splits["holdout"]
    german = bilingual.splits["authors_de"] + bilingual.splits["holdout_de"]
    for e, d in zip(english, german):
        assert S.translate(e, "de") == d
        assert S.translate(d, "en") == e
        assert S.translate(e, "en") == e
    assert S.translate(QAItem("x", "Who wrote it?", "Someone.", fact="birth"), "de") is None
    assert S.translate(QAItem("x", "Who wrote it?", "Someone."), "de") is None
    with pytest.raises(LetheError, match="unknown language 'fr'"):
        S.translate(english[0], "fr")


def test_template_floor_is_low_in_german_too(bilingual):
    assert S.template_rouge_floor(bilingual, "forget10", "de") < 0.4
    assert S.template_rouge_floor(bilingual, "forget10") == S.template_rouge_floor(generate(), "forget10")
    with pytest.raises(LetheError, match="languages=\\[en, de\\]"):
        S.template_rouge_floor(generate(n_authors=10), "forget10", "de")


@pytest.mark.parametrize("languages,match", [
    (("de",), "'en' first"), (("en", "xx"), "'en' first"), (("en", "de", "de"), "once each"), ("en", "list of"),
    ((), "'en' first"),
])
def test_bad_languages_are_one_line_errors(languages, match):
    with pytest.raises(LetheError, match=match):
        generate(n_authors=4, languages=languages)


# --- QAItem.language ------------------------------------------------------------------------------
def test_language_round_trips(tmp_path, bilingual):
    it = bilingual.splits["authors_de"][0]
    assert it.to_json()["language"] == "de" and QAItem.from_json(it.to_json()) == it
    plain = bilingual.splits["authors"][0]
    assert QAItem.from_json(plain.to_json()) == plain
    with pytest.raises(LetheError, match="language"):
        QAItem.from_json({**it.to_json(), "language": 3})
    write_jsonl(tmp_path / "x.jsonl", [plain, it])
    assert read_jsonl(tmp_path / "x.jsonl") == [plain, it]
    small = generate(n_authors=6, n_holdout=1, n_world=4, n_people=2, languages=("en", "de"))
    assert load_benchmark_folder(save_benchmark(small, tmp_path / "b")) == small
    assert load_benchmark("lethe-authors", n_authors=6, n_holdout=1, n_world=4, n_people=2,
                          languages=["en", "de"]) == small


# --- the cross_lingual attack ---------------------------------------------------------------------
def test_cross_lingual_attack_asks_in_the_other_language(bilingual):
    from lethe.attacks import expand_attacks, run_attack

    forget = bilingual.forget("forget01")
    model = object()
    attacked, info = run_attack("cross_lingual", model, None, forget, bilingual.retain("forget01"), None)
    assert attacked is model  # prompt-level: the model is unchanged
    items = info["eval_forget_items"]
    german = {d.id.removesuffix("-de"): d for d in S.forget_items(bilingual, "forget01", "de")}
    assert [it.id for it in items] == [it.id for it in forget] == info["eval_forget_ids"]  # ids of the originals
    for it in items:
        d = german[it.id]
        assert (it.question, it.answer, it.perturbed_answers, it.language) == (d.question, d.answer,
                                                                                 d.perturbed_answers, "de")
    assert info["translated"] == len(forget) and info["left_out"] == 0 and info["probe_languages"] == ["de"]
    json.dumps({k: v for k, v in info.items() if k != "eval_forget_items"})
    assert expand_attacks(["cross_lingual"]) == ["cross_lingual"]

    # German forget items are asked in English ("auto"), and keep their own ids
    back = run_attack("cross_lingual", model, None, list(german.values()), [], None)[1]["eval_forget_items"]
    assert [it.id for it in back] == [d.id for d in german.values()]
    assert [it.question for it in back] == [it.question for it in forget] and all(it.language == "" for it in back)


def test_cross_lingual_attack_errors():
    from lethe.attacks import run_attack

    bench = generate(n_authors=4, n_holdout=0)
    forget = bench.forget("forget01")
    with pytest.raises(LetheError, match="no translation|none of the"):
        run_attack("cross_lingual", None, None, [QAItem("q", "Q?", "A.")], [], None)
    with pytest.raises(LetheError, match="none of the"):  # already in the asked language
        run_attack("cross_lingual", None, None, forget, [], {"language": "en"})
    with pytest.raises(LetheError, match="attacks.cross_lingual.language"):
        run_attack("cross_lingual", None, None, forget, [], {"language": "fr"})
    with pytest.raises(LetheError, match="langauge"):
        run_attack("cross_lingual", None, None, forget, [], {"langauge": "de"})
    mixed = forget + [QAItem("q", "Q?", "A.")]
    info = run_attack("cross_lingual", None, None, mixed, [], {"language": "de"})[1]
    assert info["translated"] == len(forget) and info["left_out"] == 1


# --- the scenario ---------------------------------------------------------------------------------
def test_training_benchmark_holds_both_languages(bilingual):
    from lethe.scenarios.multilingual import (
        language_splits,
        training_benchmark,
        unlearning_view,
    )

    tb = training_benchmark(bilingual)
    assert len(tb.splits["authors"]) == 2 * len(bilingual.splits["authors"]) and "authors_de" not in tb.splits
    assert {it.language for it in tb.forget("forget10")} == {"", "de"} and len(tb.forget("forget10")) == 160
    assert tb.spec != bilingual.spec  # its models are cached apart from English-only ones
    view = unlearning_view(bilingual, "de", "same", "forget10")
    assert {it.language for it in view.forget("forget10") + view.retain("forget10")} == {"de"}
    both = unlearning_view(bilingual, "en", "all", "forget10")
    assert {it.language for it in both.forget("forget10")} == {""}
    assert {it.language for it in both.retain("forget10")} == {"", "de"}
    splits = language_splits(bilingual, "forget10")
    assert set(splits["en"]) == {"forget", "retain", "known_people", "world_facts", "holdout"}
    assert set(splits["de"]) == {"forget", "retain", "holdout"}
    assert all(it.language == "de" for items in splits["de"].values() for it in items)


def test_multilingual_run_end_to_end(tmp_path):
    args = ["run", "scenario=multilingual", *TINY, f"cache_dir={tmp_path / 'cache'}", f"output={tmp_path / 'runs'}",
            "name=m1", "methods=[grad_diff]", "attacks=[cross_lingual]"]
    assert main(args) == 0
    run = tmp_path / "runs" / "m1"
    for name in ("summary.json", "results.json", "report.md", "report.html", "tradeoff.png", "config.yaml"):
        assert (run / name).is_file(), name
    summary = json.loads((run / "summary.json").read_text())
    assert summary["scenario"] == "multilingual" and summary["unlearn_language"] == "en"
    assert [r["name"] for r in summary["rows"]] == ["target", "retain model", "grad_diff"]
    assert summary["tradeoff"] == {"x": "forget_rouge_l_en", "y": "forget_rouge_l_de", "log_y": False}
    for row in summary["rows"]:
        m = row["metrics"]
        for lang in ("en", "de"):
            for key in ("forget_rouge_l", "forget_probability", "forget_truth_ratio", "forget_quality",
                        "retain_rouge_l", "mia_min_k"):
                assert f"{key}_{lang}" in m, (row["name"], key, lang)
        assert "model_utility" in m and "forget_rouge_l" not in m
        assert set(m) <= set(summary["directions"])  # a direction for every key
    assert summary["rows"][1]["metrics"]["forget_quality_de"] == 1.0
    assert set(summary["columns"]) <= set(summary["directions"]) | {"unlearn_seconds"}
    assert summary["directions"]["forget_rouge_l_de"] == "lower"
    rob = summary["rows"][2]["robustness"]["cross_lingual"]
    assert rob["items"] == 16 and set(rob["after"]) >= {"forget_rouge_l", "forget_probability"}
    results = json.loads((run / "results.json").read_text())
    by_lang = results["models"][2]["languages"]
    assert len(by_lang["de"]["splits"]["forget"]["probes"]["ids"]) == 16
    assert all(i.endswith("-de") for i in by_lang["de"]["splits"]["forget"]["probes"]["ids"])
    assert "forget_rouge_l_de" in (run / "report.md").read_text()


def test_multilingual_rejects_bad_options(tmp_path, capsys):
    base = ["run", "scenario=multilingual", *TINY, f"cache_dir={tmp_path / 'cache'}", f"output={tmp_path / 'runs'}"]
    assert main([*base, "scenario_options={unlearn_lang: de}"]) == 2
    assert "did you mean 'scenario_options.unlearn_language'?" in capsys.readouterr().err
    assert main([*base, "scenario_options={unlearn_language: fr}"]) == 2
    assert "unlearn_language must be one of en, de" in capsys.readouterr().err
    assert main([*base, "benchmark_options.languages=[en]"]) == 2
    assert "sets benchmark_options.languages itself" in capsys.readouterr().err
    assert main([*base, "report_columns=[forget_qualty_de]"]) == 2  # before any training
    assert "did you mean 'forget_quality_de'?" in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()
