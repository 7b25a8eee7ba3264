"""Token entropy of generations, by hand, and through evaluate on a memorised tiny model."""
from __future__ import annotations

import math

import numpy as np
import pytest

from lethe.metrics import METRICS
from lethe.metrics.semantic import token_entropy, token_entropy_value
from lethe.probes import SplitProbes


def probes(generations, tokens=None):
    n = len(generations)
    z = np.zeros(n)
    return SplitProbes(ids=[str(i) for i in range(n)], answer_logprob=z, answer_ntokens=z, paraphrase_logprob=z,
                       paraphrase_ntokens=z, perturbed_logprob=np.zeros((n, 1)), perturbed_ntokens=np.zeros((n, 1)),
                       generations=generations, references=generations, generation_tokens=tokens or [])


def test_token_entropy_by_hand():
    assert token_entropy_value(["a", "b", "c", "d"]) == pytest.approx(1.0)  # all distinct: log2 4 / log2 4
    assert token_entropy_value(["a", "a", "a"]) == 0.0
    assert token_entropy_value(["a"]) == 0.0 and token_entropy_value([]) == 0.0
    # a a b b: H = 1 bit, n = 4 -> 1 / 2
    assert token_entropy_value(["a", "a", "b", "b"]) == pytest.approx(0.5)
    # a a a b: H = -(3/4 log2 3/4 + 1/4 log2 1/4)
    h = -(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25))
    assert token_entropy_value(list("aaab")) == pytest.approx(h / 2)


def test_metric_reads_tokenizer_tokens_and_falls_back_to_words():
    r = token_entropy(probes(["x y", "z"], tokens=[["a", "a", "b", "b"], ["q", "r"]]))
    assert r.per_sample == pytest.approx([0.5, 1.0]) and r.value == pytest.approx(0.75)
    assert token_entropy(probes(["the the the", "one two"])).per_sample == pytest.approx([0.0, 1.0])
    assert METRICS.get("token_entropy").higher_is_better


def test_evaluate_reports_token_entropy_per_split(memorised_model, tokenizer, forget_items):
    import dataclasses

    from lethe.evaluation import evaluate

    answers = [it.answer for it in forget_items]
    items = [dataclasses.replace(it, perturbed_answers=tuple(a for a in answers if a != it.answer)[:2])
             for it in forget_items]
    res = evaluate(memorised_model, tokenizer, {"forget": items})
    p = res.probes["forget"]
    # the tokens of the decoded text unstripped (Closer-Look), whose stripped form is the generation
    assert [tokenizer.convert_tokens_to_string(t).strip() for t in p.generation_tokens] == p.generations
    expected = np.mean([token_entropy_value(t) for t in p.generation_tokens])
    assert res.summary["forget_token_entropy"] == pytest.approx(expected)
    assert 0.0 < res.summary["forget_token_entropy"] <= 1.0
    # the memorised model repeats its answers: embedding similarity to the references is high
    assert res.summary["forget_embedding_similarity"] > 0.8
    assert len(p.generation_similarity) == len(items)


def test_embedding_similarity_metric_clips_at_zero():
    from lethe.metrics.semantic import embedding_similarity

    p = probes(["a", "b", "c"])
    p.generation_similarity = [0.9, -0.2, 0.4]
    r = embedding_similarity(p)
    assert r.per_sample == pytest.approx([0.9, 0.0, 0.4]) and r.value == pytest.approx(1.3 / 3)
    with pytest.raises(ValueError, match="embedding probe"):
        embedding_similarity(probes(["a"]))


def test_embedding_probe_uses_the_offline_minilm():
    """The packaged all-MiniLM-L6-v2 loads without the hub: identical texts have cosine 1, a
    paraphrase is closer than an unrelated sentence, and cosines match the embeddings by hand."""
    from lethe.probes import embedding_similarity, load_embedder

    refs = ["The author was born in a small harbour town.", "The author was born in a small harbour town."]
    gens = ["The author was born in a small harbour town.", "She writes cookbooks about desert plants."]
    sims = embedding_similarity(gens, refs, "all-MiniLM-L6-v2")
    assert sims[0] == pytest.approx(1.0, abs=1e-5) and sims[1] < 0.6
    para = embedding_similarity(["The writer's birthplace was a little port town."], refs[:1], "all-MiniLM-L6-v2")[0]
    assert para > sims[1] + 0.2
    e = load_embedder("all-MiniLM-L6-v2").encode([gens[1], refs[1]], convert_to_numpy=True)
    by_hand = float(e[0] @ e[1] / np.linalg.norm(e[0]) / np.linalg.norm(e[1]))
    assert sims[1] == pytest.approx(by_hand, abs=1e-5)
    assert e.shape[1] == 384  # all-MiniLM-L6-v2


def test_embedding_probe_embeds_each_distinct_text_once(monkeypatch):
    import lethe.probes as probes_mod

    model = probes_mod.load_embedder("all-MiniLM-L6-v2")
    encoded: list[str] = []
    real = model.encode

    def counting(texts, **kw):
        encoded.extend(texts)
        return real(texts, **kw)

    monkeypatch.setattr(model, "encode", counting)
    monkeypatch.setitem(probes_mod._EMBEDDINGS, "all-MiniLM-L6-v2", {})
    refs = ["Born in Orlin.", "Writes poems.", "Born in Orlin."]
    first = probes_mod.embedding_similarity(["Born in Orlin.", "Sings.", "Writes poems."], refs, "all-MiniLM-L6-v2")
    assert sorted(encoded) == sorted({"Born in Orlin.", "Sings.", "Writes poems."})
    encoded.clear()
    second = probes_mod.embedding_similarity(["Dances.", "Sings.", "Born in Orlin."], refs, "all-MiniLM-L6-v2")
    assert encoded == ["Dances."]  # the references and known answers come from the cache
    assert first[0] == pytest.approx(1.0, abs=1e-5) and second[2] == pytest.approx(1.0, abs=1e-5)
    assert second[1] == pytest.approx(first[1], abs=1e-6)  # "Sings." vs "Writes poems." both times


# --- entailment (NLI), forget efficacy, model utility (semantic) --------------------------------

def _nli_folder(tmp_path, tokenizer, labels=("ENTAILMENT", "NEUTRAL", "CONTRADICTION"), seed=0):
    """A tiny random NLI classifier (Llama + a 3-way head) saved like a hub model, safetensors only."""
    import torch
    from transformers import LlamaConfig, LlamaForSequenceClassification

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2, pad_token_id=tokenizer.pad_token_id,
                      num_labels=len(labels), id2label=dict(enumerate(labels)),
                      label2id={lab: i for i, lab in enumerate(labels)})
    model = LlamaForSequenceClassification(cfg)
    folder = tmp_path / f"nli-{len(labels)}"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    assert (folder / "model.safetensors").exists()
    return folder, model


def test_nli_probe_matches_the_model_pair_by_pair(tmp_path, tokenizer):
    import torch

    from lethe.probes import nli_labels

    folder, model = _nli_folder(tmp_path, tokenizer)
    prem = ["Ana Vell was born in Orlin.", "The sky is green.", "Tomas writes poems about rivers and rain."]
    hyp = ["Ana Vell was born in Orlin.", "Rivers.", "Poems."]
    got = nli_labels(prem, hyp, str(folder), batch_size=2)  # padded batches
    model.eval()
    want = []
    with torch.no_grad():
        for p, h in zip(prem, hyp):  # one pair at a time: no padding at all
            enc = tokenizer(p, h, return_tensors="pt")
            want.append(["entailment", "neutral", "contradiction"][int(model(**enc).logits.argmax(-1))])
    assert got == want


def test_nli_model_without_entailment_label_is_refused(tmp_path, tokenizer):
    from lethe.errors import LetheError
    from lethe.probes import nli_labels

    folder, _ = _nli_folder(tmp_path, tokenizer, labels=("POSITIVE", "NEGATIVE"))
    with pytest.raises(LetheError, match="no single 'entailment' label.*positive, negative"):
        nli_labels(["a"], ["b"], str(folder))
    missing = tmp_path / "no-such-folder"  # an absolute path: never looked up on the hub
    with pytest.raises(LetheError, match="eval.nli_model '.*no-such-folder' could not be loaded"):
        nli_labels(["a"], ["b"], str(missing))


def test_entailment_pairs_follow_yuan_et_al():
    from lethe.probes import entailment_pairs

    assert entailment_pairs(["gen"], ["ref"], "forget") == (["gen"], ["ref"])
    assert entailment_pairs(["gen"], ["ref"], "retain") == (["ref"], ["gen"])
    assert entailment_pairs(["gen"], ["ref"], "multiple_choice") == (["ref"], ["gen"])


def test_entailment_score_by_hand_with_the_rouge_gate():
    from lethe.metrics.semantic import entailment_score

    refs = ["Ana Vell was born in Orlin", "She writes poems", "He won the Gold Quill", "It rains"]
    gens = ["Ana Vell was born in Orlin", "poems", "nothing at all here", "It rains"]
    p = probes(gens)
    p.references = refs
    p.generation_nli = ["entailment", "entailment", "entailment", "neutral"]
    # item 2: ROUGE-L recall 1/3 >= 0.1, entailed -> 1; item 3: recall 0 < 0.1 -> 0 although 'entailment'
    r = entailment_score(p)
    assert r.per_sample == [1.0, 1.0, 0.0, 0.0] and r.value == pytest.approx(0.5)
    p.generation_nli = ["entailment"]
    with pytest.raises(ValueError, match="NLI labels"):
        entailment_score(p)


def test_forget_efficacy_and_semantic_utility_by_hand():
    from scipy.stats import hmean

    from lethe.metrics.semantic import forget_efficacy, model_utility_semantic, semantic_summary

    v = {"forget_rouge_l": 0.4, "forget_probability": 0.2, "forget_truth_ratio": 0.7,
         "forget_embedding_similarity": 0.5, "forget_entailment_score": 0.1, "forget_token_entropy": 0.9}
    fe, used = forget_efficacy(v)
    # 1 - mean(0.4, 0.2, 1 - 0.7, 0.5, 0.1) = 1 - 1.5 / 5; token entropy is not a knowledge measure
    assert fe == pytest.approx(1 - 1.5 / 5) and "token_entropy" not in used and len(used) == 5
    del v["forget_entailment_score"]  # no NLI model: the mean of the four that exist
    assert forget_efficacy(v)[0] == pytest.approx(1 - 1.4 / 4)
    with pytest.raises(ValueError, match="forget_probability"):
        forget_efficacy({"forget_rouge_l": 0.1, "forget_truth_ratio": 0.5})

    u = {}
    for i, s in enumerate(("retain", "known_people", "world_facts")):
        for j, m in enumerate(("probability", "rouge_l", "truth_ratio", "token_entropy", "embedding_similarity")):
            u[f"{s}_{m}"] = 0.3 + 0.1 * i + 0.05 * j
    mu, keys = model_utility_semantic(u)
    assert len(keys) == 15 and mu == pytest.approx(hmean(list(u.values())))
    assert model_utility_semantic({**u, "retain_entailment_score": 0.0})[0] == 0.0  # a zero -> 0 (the limit)
    both = semantic_summary({**u, **v})
    assert set(both) == {"forget_efficacy", "model_utility_semantic"}
    assert semantic_summary({"retain_rouge_l": 1.0}) == {}  # never a default in place of missing numbers
    assert METRICS.get("forget_efficacy").level == "aggregate"


def test_evaluate_with_an_nli_model(tmp_path, memorised_model, tokenizer, forget_items, retain_items):
    import dataclasses

    from lethe.config import EvalConfig
    from lethe.evaluation import evaluate
    from lethe.probes import entailment_pairs, nli_labels

    folder, _ = _nli_folder(tmp_path, tokenizer)

    def with_wrong(items):
        answers = [it.answer for it in items]
        return [dataclasses.replace(it, perturbed_answers=tuple(a for a in answers if a != it.answer)[:2])
                for it in items]

    cfg = EvalConfig(nli_model=str(folder), embedding_model="", bootstrap=0)
    res = evaluate(memorised_model, tokenizer, {"forget": with_wrong(forget_items), "retain": with_wrong(retain_items)},
                   eval_cfg=cfg)
    for split, role in (("forget", "forget"), ("retain", "retain")):
        p = res.probes[split]
        assert p.generation_nli == nli_labels(*entailment_pairs(p.generations, p.references, role), str(folder))
        assert f"{split}_entailment_score" in res.summary
    assert "forget_efficacy" in res.summary and 0.0 <= res.summary["forget_efficacy"] <= 1.0
    # results round-trip keeps the labels
    from lethe.results import probes_from_json, probes_to_json

    assert probes_from_json(probes_to_json(res.probes["forget"])).generation_nli == res.probes["forget"].generation_nli


def test_evaluate_compares_world_facts_with_the_long_answer(monkeypatch, memorised_model, tokenizer):
    """Closer-Look scores real authors / world facts against ``original_answer`` where the data have one."""
    import lethe.probes
    from lethe.benchmarks.base import QAItem
    from lethe.config import EvalConfig
    from lethe.evaluation import evaluate

    seen = {}

    def fake_embedding_similarity(generations, references, model_name):
        seen["references"] = list(references)
        return [0.5] * len(generations)

    monkeypatch.setattr(lethe.probes, "embedding_similarity", fake_embedding_similarity)
    items = [QAItem(id="w1", question="Where is the station?", answer="near the park",
                    perturbed_answers=("by the river",), original_answer="The station is near the park."),
             QAItem(id="w2", question="What does the cat eat?", answer="fish", perturbed_answers=("mice",))]
    evaluate(memorised_model, tokenizer, {"world_facts": items}, eval_cfg=EvalConfig(
        bootstrap=0, embedding_model="stand-in", max_new_tokens=6))
    assert seen["references"] == ["The station is near the park.", "fish"]


def test_token_entropy_reads_the_unstripped_generation(memorised_model, tokenizer, forget_items):
    """Closer-Look's compute_token_entropy tokenises the decoded text as it is; ROUGE reads it stripped."""
    import dataclasses

    from lethe.probes import generate, probe_split

    probes = probe_split(memorised_model, tokenizer, [
        dataclasses.replace(it, perturbed_answers=("No idea.",)) for it in forget_items],
        max_new_tokens=8)
    raw = generate(memorised_model, tokenizer, [it.question for it in forget_items], 8, strip=False)
    assert probes.generation_tokens == [tokenizer.tokenize(t) for t in raw]
    assert probes.generations == [t.strip() for t in raw]
    assert any(t != t.strip() for t in raw)  # the two conventions differ on these generations
