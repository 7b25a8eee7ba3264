"""Inference-time methods (lethe.inference): ICUL, guardrail prompt, output filter, ULD.

Hand-checkable: prefixes are compared line by line with the items they must hold, the filter's
ROUGE-L against rouge-score, ULD's logits against l_t - alpha * l_a computed by hand, and its
cached greedy decoding against Hugging Face's generate and against a cache-free loop.
"""
from __future__ import annotations

import dataclasses

import time

import numpy as np
import pytest
import torch

from lethe.benchmarks.base import QAItem
from lethe.config import TrainConfig
from lethe.data import Encoder, collate, collate_prompts
from lethe.errors import LetheError
from lethe.inference import (
    REFUSAL,
    GuardrailConfig,
    ICULConfig,
    OutputFilter,
    OutputFilterConfig,
    PromptEncoder,
    ULDConfig,
    ULDModel,
    forget_entities,
    relative_top_mask,
)
from lethe.methods import METHODS, InferenceMethod
from lethe.methods.inference_time import build
from lethe.probes import generate, probe_split, score_sequences


def _with_facts(items):
    """The conftest items with a fact type (born / writes) and an author group."""
    # "Where was Alice Moon born?" / "What does Alice Moon write?": the name is the 3rd and 4th word
    return [dataclasses.replace(it, fact="birth" if "born" in it.question else "genre",
                                group=" ".join(it.question.split()[2:4]))
            for it in items]


@pytest.fixture()
def forget(forget_items):
    items = _with_facts(forget_items)
    # perturbed answers, so the items can go through probe_split (truth ratio needs one)
    return [dataclasses.replace(it, perturbed_answers=(it.answer.replace("Paris", "Oslo").replace("Lima", "Rome"),))
            for it in items]


@pytest.fixture()
def retain(retain_items):
    return [dataclasses.replace(it, perturbed_answers=(it.answer.replace("Oslo", "Paris"),))
            for it in _with_facts(retain_items)]


def _lines(encoder: PromptEncoder, question: str) -> list[str]:
    return encoder.prefix(question).splitlines()


# ------------------------------------------------------------------------------------------------
# ICUL


def test_icul_prefix_holds_flipped_forget_then_retain_examples(tiny_model, tokenizer, forget, retain):
    cfg = ICULConfig(n_forget=2, n_retain=2, max_prefix_tokens=1000)
    enc = build("icul", tiny_model, tokenizer, forget, retain, cfg).encoder
    answers = {it.question: it.answer for it in forget + retain}
    f1, f3 = forget[0], forget[2]  # the two "birth" forget items
    lines = _lines(enc, f1.question)
    assert len(lines) == 4
    # the query itself comes first, with the other birth item's answer (same fact type) as the wrong answer
    assert lines[0] == f"{f1.question} {f3.answer}"
    # a second forget example, also with a wrong answer
    q2 = next(it for it in forget if lines[1].startswith(it.question + " "))
    assert q2 is not f1 and lines[1] != f"{q2.question} {q2.answer}"
    assert lines[1][len(q2.question) + 1:] in {it.answer for it in forget if it.fact == q2.fact}
    # then two distinct retain examples with their true answers
    for line in lines[2:]:
        r = next(it for it in retain if line.startswith(it.question + " "))
        assert line == f"{r.question} {answers[r.question]}"
    assert len(set(lines[2:])) == 2
    # the full prompt: prefix, then the question, inside the chat template
    assert enc.rewrite(f1.question) == enc.prefix(f1.question) + f1.question
    # a retain query never sees its own answer
    r1 = retain[0]
    lines = _lines(enc, r1.question)
    assert all(not line.startswith(r1.question) for line in lines)
    assert sum(any(line.startswith(it.question + " ") for it in forget) for line in lines) == 2


def test_icul_without_the_query_itself(tiny_model, tokenizer, forget, retain):
    enc = build("icul", tiny_model, tokenizer, forget, retain,
                ICULConfig(n_forget=3, n_retain=0, include_query=False, max_prefix_tokens=1000)).encoder
    lines = _lines(enc, forget[0].question)
    assert len(lines) == 3 and not any(line.startswith(forget[0].question) for line in lines)


def test_icul_perturbed_wrong_answers(tiny_model, tokenizer, forget, retain):
    enc = build("icul", tiny_model, tokenizer, forget, retain,
                ICULConfig(n_retain=0, wrong_answer="perturbed", max_prefix_tokens=1000)).encoder
    assert _lines(enc, forget[0].question) == [f"{forget[0].question} {forget[0].perturbed_answers[0]}"]


def test_icul_scores_only_the_answer_tokens(tiny_model, tokenizer, forget, retain):
    enc = build("icul", tiny_model, tokenizer, forget, retain, ICULConfig(max_prefix_tokens=1000)).encoder
    plain = Encoder(tokenizer)
    for it in forget + retain:
        s, p = enc.qa(it.question, it.answer), plain.qa(it.question, it.answer)
        assert s.ids[s.n_prompt:] == p.ids[p.n_prompt:]  # identical answer tokens, and only they are scored
        assert s.n_prompt > p.n_prompt
        assert list(s.ids[: s.n_prompt]) == enc.prompt(it.question)
        assert enc.prompt(it.question)[-3:] == plain.prompt(it.question)[-3:]  # the template still ends the prompt


def test_icul_is_deterministic_per_question(tiny_model, tokenizer, forget, retain):
    cfg = ICULConfig(n_forget=2, n_retain=2, max_prefix_tokens=1000)
    a = build("icul", tiny_model, tokenizer, forget, retain, cfg).encoder
    b = build("icul", tiny_model, tokenizer, forget, retain, cfg).encoder
    qs = [it.question for it in forget + retain]
    first = [a.prefix(q) for q in qs]
    assert first == [b.prefix(q) for q in reversed(qs)][::-1]  # same seed, any order: same prefixes
    other = build("icul", tiny_model, tokenizer, forget, retain, dataclasses.replace(cfg, seed=1)).encoder
    assert first != [other.prefix(q) for q in qs]


def test_icul_prefix_is_capped(tiny_model, tokenizer, forget, retain):
    # one "question answer" line of the conftest tokenizer is ~30 tokens: a 40-token cap keeps one example
    setup = build("icul", tiny_model, tokenizer, forget, retain, ICULConfig(n_forget=2, n_retain=3, max_prefix_tokens=40))
    enc = setup.encoder
    q = forget[1].question
    lines = _lines(enc, q)
    assert len(lines) == 1 and lines[0].startswith(q + " ")  # the query's own flipped example is kept last
    assert len(tokenizer(enc.prefix(q), add_special_tokens=False)["input_ids"]) <= 40
    assert setup.stats["prompts_truncated"] > 0 and setup.stats["prompt_tokens_added_max"] <= 40
    # automatic cap: half the model's 128 positions
    auto = build("icul", tiny_model, tokenizer, forget, retain, ICULConfig(n_retain=3))
    assert auto.stats["max_prefix_tokens"] == 64 and auto.stats["prompt_tokens_added_max"] <= 64


# ------------------------------------------------------------------------------------------------
# Forget entities, guardrail prompt


def test_forget_entities_from_questions(forget, retain):
    assert forget_entities(forget, retain) == ["Alice Moon", "Bruno Vale"]
    # a surname used alone in more questions survives next to the full name; possessives are cut;
    # stop words at a run's start ("Did") are trimmed; names found in retain questions are not names
    items = [QAItem("a", "Did Alice Moon win?", "x", group="g"), QAItem("b", "Is Alice Moon's work sad?", "x", group="g"),
             QAItem("c", "What is Moon's genre?", "x", group="g"), QAItem("d", "Where does Moon live, in Paris?", "x", group="g")]
    kept = [QAItem("r", "Where was Clara Reed born, in Paris?", "x")]
    assert forget_entities(items, kept) == ["Moon", "Alice Moon"]
    # an item without a group is its own group
    assert forget_entities([QAItem("a", "Who is Zed Quill?", "x")], kept) == ["Zed Quill"]
    assert forget_entities([QAItem("a", "Who wrote it?", "x")], kept) == []
    # punctuation splits a run: "Lima, Peru" are two places, not one name
    assert forget_entities([QAItem("a", "Was Ana Ruiz born in Lima, Peru?", "x")], kept) == ["Ana Ruiz", "Lima", "Peru"]


def test_guardrail_prompt_names_forget_authors(tiny_model, tokenizer, forget, retain):
    setup = build("guardrail", tiny_model, tokenizer, forget, retain, GuardrailConfig(max_prefix_tokens=1000))
    assert setup.model is tiny_model and setup.postprocess is None
    assert setup.stats["names"] == ["Alice Moon", "Bruno Vale"] and setup.stats["names_left_out"] == []
    enc, plain = setup.encoder, Encoder(tokenizer)
    prefix = enc.prefix(retain[0].question)
    assert "Alice Moon, Bruno Vale" in prefix and "Clara" not in prefix
    assert prefix == enc.prefix(forget[0].question)  # one instruction for every question
    for it in forget + retain:
        s, p = enc.qa(it.question, it.answer), plain.qa(it.question, it.answer)
        assert s.ids[s.n_prompt:] == p.ids[p.n_prompt:]
    # explicit names, and a cap that leaves the last name out
    short = build("guardrail", tiny_model, tokenizer, forget, retain,
                  GuardrailConfig(names=("Alice Moon", "Bruno Vale"), template="Never name {names}.\n",
                                  max_prefix_tokens=24))  # 19 tokens with one name, 28 with both
    assert short.stats["names_left_out"] == ["Bruno Vale"]
    assert short.encoder.prefix("q") == "Never name Alice Moon.\n"
    with pytest.raises(LetheError, match="names"):
        build("guardrail", tiny_model, tokenizer, [QAItem("a", "who wrote it?", "x")], retain)


# ------------------------------------------------------------------------------------------------
# Output filter


def test_output_filter_refuses_leaks_only(tiny_model, tokenizer, forget, retain):
    setup = build("output_filter", tiny_model, tokenizer, forget, retain)
    filt = setup.postprocess
    assert setup.model is tiny_model and type(setup.encoder) is Encoder
    qs = ["Where was Clara Reed born?", "Where was Clara Reed born?", "Where was Clara Reed born?",
          "What does Alice Moon write?", "Where was Dario Lunt born?"]
    gens = ["Alice Moon was born in Paris.",  # a forget answer, word for word
            "alice moon was born in paris, I think",  # the same words, case and punctuation aside
            "Clara Reed was born in Oslo.",  # a retain answer sharing the template "was born in" (recall 0.5)
            "I have no idea.",  # the question names a forget author
            "Dario Lunt was born in Rome."]
    out = filt(qs, gens)
    assert out == [REFUSAL, REFUSAL, gens[2], REFUSAL, gens[4]]
    assert filt.refused == {"question": 1, "answer": 2}
    # the question check alone, the answer check alone
    only_answers = build("output_filter", tiny_model, tokenizer, forget, retain, {"check_question": False}).postprocess
    assert only_answers(qs, gens)[3] == gens[3]
    only_questions = build("output_filter", tiny_model, tokenizer, forget, retain, {"check_answer": False}).postprocess
    assert only_questions(qs, gens)[:3] == gens[:3]


def test_output_filter_rouge_matches_rouge_score(forget):
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    filt = OutputFilter([it.answer for it in forget], [], OutputFilterConfig(check_question=False))
    for gen in ["Alice Moon was born in Paris.", "Bruno writes novels about the sea and trains", "born in Lima",
                "The sea. Poems about trains were written by Alice.", "", "nothing in common here"]:
        want = max(scorer.score(it.answer, gen)["rougeL"].recall for it in forget)
        assert filt.max_recall(gen) == pytest.approx(want, abs=1e-12)


def test_output_filter_leaves_log_probs_unchanged(memorised_model, tokenizer, forget, retain):
    setup = build("output_filter", memorised_model, tokenizer, forget, retain)
    got = probe_split(setup.model, tokenizer, forget, encoder=setup.encoder)
    want = probe_split(memorised_model, tokenizer, forget)
    np.testing.assert_array_equal(got.answer_logprob, want.answer_logprob)
    np.testing.assert_array_equal(got.perturbed_logprob, want.perturbed_logprob)
    # the memorised model reproduces its forget answers: the filter refuses every one of them
    assert setup.postprocess([it.question for it in forget], got.generations) == [REFUSAL] * len(forget)
    retain_probes = probe_split(setup.model, tokenizer, retain, encoder=setup.encoder)
    assert setup.postprocess([it.question for it in retain], retain_probes.generations) == retain_probes.generations


# ------------------------------------------------------------------------------------------------
# ULD


def _batch(tokenizer, items):
    enc = Encoder(tokenizer)
    return collate([enc.qa(it.question, it.answer) for it in items], tokenizer.pad_token_id)


def test_uld_combines_logits_exactly(memorised_model, tokenizer, make_tiny, forget, retain):
    # a peaked target (the memorised model), so the relative-top filter has tokens to drop
    target, assistant = memorised_model, make_tiny(tokenizer, seed=1).eval()
    b = _batch(tokenizer, forget + retain)
    with torch.no_grad():
        lt = target(input_ids=b.input_ids, attention_mask=b.attention_mask).logits
        la = assistant(input_ids=b.input_ids, attention_mask=b.attention_mask).logits
        got = ULDModel(target, assistant, alpha=0.7)(input_ids=b.input_ids, attention_mask=b.attention_mask).logits
        assert torch.equal(got, lt - 0.7 * la)
        # logits_to_keep keeps the last positions of the same combination
        last = ULDModel(target, assistant, alpha=0.7)(input_ids=b.input_ids, attention_mask=b.attention_mask,
                                                      logits_to_keep=5).logits
        assert torch.equal(last, (lt - 0.7 * la)[:, -5:])
        # the relative-top filter: where the target finds a token implausible, the target's logit is kept
        filt = ULDModel(target, assistant, alpha=0.7, top_logit_filter=0.1)(
            input_ids=b.input_ids, attention_mask=b.attention_mask).logits
        mask = relative_top_mask(lt, 0.1)
        assert mask.any() and (~mask).any()
        assert torch.equal(filt[mask], lt[mask]) and torch.equal(filt[~mask], (lt - 0.7 * la)[~mask])


def test_relative_top_mask_by_hand():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.004, 0.196]]))
    # max prob 0.5: the threshold 0.05 drops token 2; k = int(0.1 * 4) = 0 -> 1 keeps at least the top token
    assert relative_top_mask(logits, 0.1).tolist() == [[False, False, True, False]]
    # rel 0.7: the threshold 0.35 would drop token 1 (0.3), but k = int(0.7 * 4) = 2 keeps the top two
    assert relative_top_mask(logits, 0.7).tolist() == [[False, False, True, True]]


def test_uld_alpha_zero_is_the_target(tokenizer, make_tiny, forget, retain):
    target, assistant = make_tiny(tokenizer, seed=0).eval(), make_tiny(tokenizer, seed=1).eval()
    uld = ULDModel(target, assistant, alpha=0.0, top_logit_filter=0.01)
    b = _batch(tokenizer, forget + retain)
    with torch.no_grad():
        lt = target(input_ids=b.input_ids, attention_mask=b.attention_mask, logits_to_keep=7).logits
        assert torch.equal(uld(input_ids=b.input_ids, attention_mask=b.attention_mask, logits_to_keep=7).logits, lt)
    # greedy generations equal Hugging Face's on the target: left-padded batches of several lengths
    questions = [it.question for it in forget + retain] + ["Where is the station?", "Paris?", "What does the cat eat?"]
    for n in (1, 5, 24):
        assert generate(uld, tokenizer, questions, max_new_tokens=n, batch_size=4) == \
            generate(target, tokenizer, questions, max_new_tokens=n, batch_size=4)


def test_uld_cached_generation_equals_a_cache_free_loop(tokenizer, make_tiny):
    target, assistant = make_tiny(tokenizer, seed=0).eval(), make_tiny(tokenizer, seed=2).eval()
    uld = ULDModel(target, assistant, alpha=0.8, top_logit_filter=0.01)
    enc = Encoder(tokenizer)
    ids, att = collate_prompts([enc.prompt(q) for q in ["Where was Alice Moon born?", "Paris?", "What does the cat eat?"]],
                               tokenizer.pad_token_id)
    out = uld.generate(input_ids=ids, attention_mask=att, max_new_tokens=12, do_sample=False,
                       pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    # the reference: the whole sequence through forward at every step, positions from the mask
    seq, mask, done = ids.clone(), att.clone(), torch.zeros(3, dtype=torch.bool)
    with torch.no_grad():
        for _ in range(12):
            pos = (mask.cumsum(-1) - 1).clamp(min=0)
            nxt = uld(input_ids=seq, attention_mask=mask, position_ids=pos).logits[:, -1].argmax(-1)
            nxt = torch.where(done, torch.full_like(nxt, tokenizer.pad_token_id), nxt)
            done |= nxt == tokenizer.eos_token_id
            seq, mask = torch.cat([seq, nxt[:, None]], 1), torch.cat([mask, torch.ones(3, 1, dtype=mask.dtype)], 1)
            if done.all():
                break
    assert torch.equal(out, seq)
    with pytest.raises(LetheError, match="greedy"):
        uld.generate(input_ids=ids, attention_mask=att, do_sample=True)


def test_uld_forgets_the_forget_set_and_keeps_the_retain_set(memorised_model, tokenizer, forget, retain):
    before = {k: v.clone() for k, v in memorised_model.state_dict().items()}
    train = TrainConfig(lr=1e-2, epochs=30, batch_size=4, warmup_ratio=0.0, weight_decay=0.0, scheduler="constant")
    setup = build("uld", memorised_model, tokenizer, forget, retain, ULDConfig(), train, seed=0)
    st = setup.stats
    assert st["assistant_layers"] == 1 and st["assistant_steps"] == 30 and st["assistant_tokens"] > 0
    assert 0 < st["assistant_train_seconds"] < 30 and st["assistant_trainable_params"] < st["assistant_params"]
    enc = Encoder(tokenizer)
    f = [enc.qa(it.question, it.answer) for it in forget]
    r = [enc.qa(it.question, it.answer) for it in retain]
    pad = tokenizer.pad_token_id
    f0, r0 = score_sequences(memorised_model, f, pad)[0], score_sequences(memorised_model, r, pad)[0]
    f1, r1 = score_sequences(setup.model, f, pad)[0], score_sequences(setup.model, r, pad)[0]
    drop_f, drop_r = (f0 - f1).mean(), (r0 - r1).mean()
    assert drop_f > 20 and drop_r < drop_f / 5, (drop_f, drop_r)
    # the target is untouched: same weights, and the wrapper holds the caller's object
    assert setup.model.target is memorised_model
    assert all(torch.equal(v, memorised_model.state_dict()[k]) for k, v in before.items())
    # same seed, same assistant
    again = build("uld", memorised_model, tokenizer, forget, retain, ULDConfig(), train, seed=0)
    np.testing.assert_array_equal(score_sequences(again.model, f, pad)[0], f1)
    with pytest.raises(LetheError, match="retain"):
        build("uld", memorised_model, tokenizer, forget, [], None, train)


# ------------------------------------------------------------------------------------------------
# Registry, configs, end to end


@pytest.mark.parametrize("name, options, field", [
    ("icul", {"n_forget": 0}, "n_forget"),
    ("icul", {"n_retain": -1}, "n_retain"),
    ("icul", {"wrong_answer": "random"}, "wrong_answer"),
    ("icul", {"max_prefix_tokens": -5}, "max_prefix_tokens"),
    ("icul", {"n_forget": 1.5}, "n_forget"),
    ("icul", {"shots": 3}, "shots"),
    ("guardrail", {"min_share": 0.0}, "min_share"),
    ("guardrail", {"template": "no placeholder"}, "template"),
    ("guardrail", {"names": [""]}, "names"),
    ("output_filter", {"threshold": 1.5}, "threshold"),
    ("output_filter", {"refusal": " "}, "refusal"),
    ("output_filter", {"check_question": False, "check_answer": False}, "check_answer"),
    ("uld", {"alpha": -1.0}, "alpha"),
    ("uld", {"top_logit_filter": 1.0}, "top_logit_filter"),
    ("uld", {"num_layers": -1}, "num_layers"),
    ("uld", {"lora_r": 0}, "lora_r"),
    ("uld", {"lora": "yes"}, "lora"),
])
def test_bad_options_name_the_field(tiny_model, tokenizer, forget, retain, name, options, field):
    with pytest.raises(LetheError, match=f"'{field}'"):
        build(name, tiny_model, tokenizer, forget, retain, options)


def test_registry_and_errors(tiny_model, tokenizer, forget, retain):
    specs = {name: spec for name, spec in METHODS.items() if isinstance(spec, InferenceMethod)}
    assert set(specs) == {"icul", "guardrail", "output_filter", "uld"}
    for spec in specs.values():
        spec.config().check()  # the defaults are valid
        assert dataclasses.is_dataclass(spec.config) and spec.config.__dataclass_params__.frozen
        assert callable(spec.build) and "2024" in spec.paper
    with pytest.raises(LetheError, match="did you mean 'icul'"):
        build("icl", tiny_model, tokenizer, forget, retain)
    with pytest.raises(LetheError, match="forget set is empty"):
        build("icul", tiny_model, tokenizer, [], retain)
    assert build("guardrail", tiny_model, tokenizer, forget, retain, {"names": ["Zed"]}).stats["names"] == ["Zed"]


def test_probe_split_end_to_end(memorised_model, tokenizer, forget, retain):
    """Every method's setup goes through the probes as a weight-changing method's model does."""
    plain = probe_split(memorised_model, tokenizer, forget + retain)
    train = TrainConfig(lr=1e-2, epochs=10, batch_size=4, warmup_ratio=0.0, weight_decay=0.0)
    for name, cfg in [("icul", None), ("guardrail", None), ("output_filter", None), ("uld", None)]:
        t0 = time.perf_counter()
        setup = build(name, memorised_model, tokenizer, forget, retain, cfg, train)
        wall = time.perf_counter() - t0
        p = probe_split(setup.model, tokenizer, forget + retain, encoder=setup.encoder, max_new_tokens=16)
        assert p.ids == plain.ids and len(p.generations) == len(forget) + len(retain)
        np.testing.assert_array_equal(p.answer_ntokens, plain.answer_ntokens)  # same scored tokens
        np.testing.assert_array_equal(p.perturbed_ntokens, plain.perturbed_ntokens)
        assert np.isfinite(p.answer_logprob).all() and np.isfinite(p.perturbed_logprob).all()
        if setup.postprocess:
            gens = setup.postprocess([it.question for it in forget + retain], p.generations)
            assert len(gens) == len(p.generations)
        assert setup.stats["method"] == name and 0 < setup.stats["build_seconds"] <= wall


def test_package_exports_the_builders_and_configs():
    """lethe.inference is one module per method family; configs, builders and the shared pieces are
    importable from the package."""
    import lethe.inference as inf

    names = ["InferenceSetup", "PromptEncoder", "ICULConfig", "build_icul", "forget_entities", "GuardrailConfig",
             "build_guardrail", "REFUSAL", "OutputFilterConfig", "OutputFilter", "build_output_filter", "ULDConfig",
             "relative_top_mask", "CombinedLM", "ULDModel", "train_assistant", "build_uld",
             ]
    assert all(hasattr(inf, n) for n in names)
    # set-up by name sits with the registry (the package imports no method registry: no import circle)
    from lethe.methods import build_inference

    assert build_inference is build
    from lethe.sisa import CombinedLM as sisa_combined

    assert sisa_combined is inf.CombinedLM
