"""pipeline.evaluate: the probes of a memorised tiny model in fp32 and under opt-in bf16 autocast."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from lethe.config import EvalConfig
from lethe.errors import LetheError
from lethe.evaluation import evaluate


def _with_options(items):
    # the truth ratio needs a paraphrase and wrong answers; reuse other items' answers as wrong ones
    answers = [it.answer for it in items]
    return [dataclasses.replace(it, perturbed_answers=tuple(a for a in answers if a != it.answer)[:3])
            for it in items]


def test_bf16_evaluation_close_to_fp32_and_model_left_as_it_came(memorised_model, tokenizer, forget_items,
                                                                 retain_items):
    splits = {"forget": _with_options(forget_items), "retain": _with_options(retain_items)}
    memorised_model.set_attn_implementation("sdpa")
    r32 = evaluate(memorised_model, tokenizer, splits, eval_cfg=EvalConfig())
    r16 = evaluate(memorised_model, tokenizer, splits, eval_cfg=EvalConfig(precision="bf16"))
    assert memorised_model.config._attn_implementation == "sdpa"
    for split in splits:
        a, b = r32.probes[split].answer_logprob, r16.probes[split].answer_logprob
        assert np.all(a / r32.probes[split].answer_ntokens > -0.7)  # memorised answers: a meaningful yardstick
        np.testing.assert_allclose(b, a, atol=0.25)  # bf16 matmuls: small absolute error on log-probs
        assert not np.array_equal(a, b)  # bf16 really ran
        assert r16.probes[split].generations == r32.probes[split].generations
    # an fp32 pass after the bf16 one gives the fp32 numbers again
    again = evaluate(memorised_model, tokenizer, splits, eval_cfg=EvalConfig())
    np.testing.assert_array_equal(again.probes["forget"].answer_logprob, r32.probes["forget"].answer_logprob)


@pytest.mark.parametrize("field,value", [("batch_size", 0), ("max_new_tokens", -1), ("precision", "fp8")])
def test_eval_config_check_names_the_field(field, value, memorised_model, tokenizer, forget_items):
    cfg = dataclasses.replace(EvalConfig(), **{field: value})
    with pytest.raises(LetheError, match=rf"eval\.{field}\b"):
        evaluate(memorised_model, tokenizer, {"forget": _with_options(forget_items)}, eval_cfg=cfg)


def test_evaluate_times_every_group_of_model_and_metric_work(memorised_model, tokenizer, forget_items, retain_items):
    """seconds["eval: <group>"]: scoring, generation, per-token scoring (MIA) and the metric groups; they
    add up to the whole evaluate() (the rest is "other")."""
    import dataclasses

    from lethe.config import EvalConfig
    from lethe.evaluation import MODEL_GROUPS, evaluate

    def with_wrong(items):
        answers = [it.answer for it in items]
        return [dataclasses.replace(it, perturbed_answers=tuple(a for a in answers if a != it.answer)[:2])
                for it in items]

    splits = {"forget": with_wrong(forget_items), "retain": with_wrong(retain_items),
              "holdout": with_wrong(retain_items)}
    res = evaluate(memorised_model, tokenizer, splits, eval_cfg=EvalConfig(embedding_model="", bootstrap=50))
    groups = {k[len("eval: "):]: v for k, v in res.seconds.items() if k.startswith("eval: ")}
    for g in ("scoring", "generation", "per-token scoring", "metrics: tofu", "metrics: token entropy",
              "metrics: mia + extraction", "metrics: bootstrap", "other"):
        assert g in groups and groups[g] >= 0, g
    assert "embedding model" not in groups  # switched off: not timed, not invented
    assert sum(groups.values()) == pytest.approx(res.seconds["eval"], rel=1e-6)
    assert {"scoring", "generation", "per-token scoring"} <= set(MODEL_GROUPS)


def test_forget_answers_are_scored_once_for_tofu_and_membership(memorised_model, tokenizer, forget_items,
                                                                 retain_items, monkeypatch):
    """With a holdout split, the forget answers go through the model once (per token): the TOFU numbers and
    the MIA AUCs equal those of the two-pass computation (per-sequence scoring + a separate per-token pass)."""
    import dataclasses

    import lethe.probes_tokens as pt
    from lethe.evaluation import membership
    from lethe.probes import probe_split

    def with_wrong(items):
        answers = [it.answer for it in items]
        return [dataclasses.replace(it, perturbed_answers=tuple(a for a in answers if a != it.answer)[:2])
                for it in items]

    forget, holdout = with_wrong(forget_items), with_wrong(retain_items)
    calls = []
    real = pt.token_scores
    monkeypatch.setattr(pt, "token_scores", lambda model, seqs, *a, **k: calls.append(len(seqs)) or real(model, seqs, *a, **k))
    res = evaluate(memorised_model, tokenizer, {"forget": forget, "holdout": holdout},
                   eval_cfg=EvalConfig(embedding_model="", bootstrap=0, generate=False))
    assert calls == [len(forget), len(holdout)]  # one per-token pass each, none repeated for the forget split
    two_pass = probe_split(memorised_model, tokenizer, forget, generate_answers=False)
    assert np.allclose(res.probes["forget"].answer_logprob, two_pass.answer_logprob, atol=1e-4)
    assert np.array_equal(res.probes["forget"].answer_ntokens, two_pass.answer_ntokens)
    separate = membership(memorised_model, tokenizer, forget, holdout)
    for key, value in separate.items():
        assert res.summary[key] == pytest.approx(value, abs=1e-9), key


def test_an_evaluation_without_generation_gives_the_metrics_it_says(memorised_model, tokenizer, forget_items,
                                                                    retain_items):
    """``WITHOUT_GENERATION`` is what evaluate gives with ``eval.generate=false``: forget quality, membership
    inference and extraction; everything else it gives needs the generations."""
    import dataclasses

    from lethe.config import EvalConfig
    from lethe.evaluation import WITHOUT_GENERATION, evaluate

    answers = [it.answer for it in forget_items + retain_items]
    splits = {name: [dataclasses.replace(it, perturbed_answers=tuple(a for a in answers if a != it.answer)[:2])
                     for it in items] for name, items in
              (("forget", forget_items), ("retain", retain_items), ("holdout", retain_items))}
    quick, full = (evaluate(memorised_model, tokenizer, splits, kind="retain",
                            eval_cfg=EvalConfig(embedding_model="", bootstrap=0, generate=g)).summary
                   for g in (False, True))
    assert set(quick) == set(WITHOUT_GENERATION) - {"mia_gradnorm", "mia_reference"}  # those two when asked
    assert all(quick[k] == full[k] for k in quick)  # the same numbers with generation
    assert "forget_rouge_l" in full and "forget_rouge_l" not in WITHOUT_GENERATION
