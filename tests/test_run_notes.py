"""What a run cannot measure, or measures on cut inputs, is said in its notes."""
from __future__ import annotations

from lethe.data import Encoder
from lethe.models import save_model, tiny_llama
from lethe.evaluation import input_length_notes, missing_holdout_notes


def test_prompts_longer_than_the_model_are_counted_per_split(tmp_path, tokenizer, forget_items, retain_items):
    model = tiny_llama(len(tokenizer), hidden_size=16, num_layers=1, num_heads=2, max_positions=8,
                       bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                       pad_token_id=tokenizer.pad_token_id)
    save_model(model, tokenizer, tmp_path / "m")
    enc = Encoder(tokenizer)
    long_forget = sum(enc.lengths(it)[0] > 8 for it in forget_items)
    long_retain = sum(enc.lengths(it)[0] > 8 for it in retain_items)
    assert 0 < long_forget and 0 < long_retain  # the fixture's prompts are longer than 8 tokens
    notes = input_length_notes(str(tmp_path / "m"), {"forget": forget_items, "retain": retain_items})
    assert notes == [
        f"inputs that do not fit: forget: {long_forget} of 4 prompts exceed the model's 8 positions",
        f"inputs that do not fit: retain: {long_retain} of 4 prompts exceed the model's 8 positions",
    ]
    save_model(tiny_llama(len(tokenizer), hidden_size=16, num_layers=1, num_heads=2, max_positions=512,
                          bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                          pad_token_id=tokenizer.pad_token_id), tokenizer, tmp_path / "big")
    assert input_length_notes(str(tmp_path / "big"), {"forget": forget_items}) == []


def test_missing_holdout_says_what_is_not_measured(forget_items):
    [note] = missing_holdout_notes({"forget": forget_items, "retain": forget_items})
    assert "no holdout split" in note and "PrivLeak" in note and "membership inference" in note
    assert missing_holdout_notes({"forget": forget_items, "holdout": forget_items}) == []


def test_extraction_is_measured_without_a_holdout_split(memorised_model, tokenizer, forget_items):
    """Exact memorisation and extraction strength read the forget answers only: no holdout needed."""
    import dataclasses

    from lethe.config import EvalConfig
    from lethe.data import Encoder
    from lethe.metrics.extraction import exact_memorization
    from lethe.evaluation import evaluate
    from lethe.probes_tokens import token_scores

    items = [dataclasses.replace(it, perturbed_answers=("No idea.",)) for it in forget_items]
    res = evaluate(memorised_model, tokenizer, {"forget": items}, eval_cfg=EvalConfig(bootstrap=0, generate=False))
    assert "mia_loss" not in res.summary and "privleak" not in res.summary
    enc = Encoder(tokenizer)
    tokens = token_scores(memorised_model, [enc.qa(it.question, it.answer) for it in items], tokenizer.pad_token_id)
    assert res.summary["forget_exact_memorization"] == exact_memorization(tokens).value
    assert res.summary["forget_exact_memorization"] > 0.5  # the model memorised these answers
    assert 0 <= res.summary["forget_extraction_strength"] <= 1
