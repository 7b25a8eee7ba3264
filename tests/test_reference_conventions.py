"""Lethe's defaults equal the reference implementations, on hand-made inputs where the conventions differ.

Each reference formula is re-implemented here from its source, next to the citation, and run on the
same toy inputs as Lethe's code:

* open-unlearning (locuslab/open-unlearning): ``src/evals/metrics/utils.py`` (``evaluate_probability``,
  ``tokenwise_logprobs``, ``tokenwise_vocab_logprobs``, ``extract_target_texts_from_processed_data``),
  ``src/evals/metrics/mia/*.py``, ``src/evals/metrics/mia/utils.py`` (``mia_auc``),
  ``src/evals/metrics/memorization.py``, ``src/evals/metrics/privacy.py`` (``privleak``);
* Closer-Look (sail-sg/closer-look-LLM-unlearning): ``metrics/metrics.py`` (``compute_token_entropy``,
  ``eval_cosine_similarity``, ``get_entailment_results``, ``get_all_evals``).

The toy "model" is a bigram over 4 tokens (token 3 = EOS), so every log-prob is known by hand and
the EOS position can be made to matter: the inputs are chosen so that keeping the EOS (Lethe's old
convention, still an option) gives other numbers than the reference. Lethe scores in float32, so
per-token values agree to float32 rounding (1e-6) and AUCs exactly.
"""
from __future__ import annotations

import math
import zlib
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score  # what open-unlearning's mia_auc calls
from torch import nn

from lethe.data import Encoder, Sequence
from lethe.metrics import METRICS, privleak
from lethe.metrics.extraction import exact_memorization_values, extraction_strength_values
from lethe.metrics.mia import (
    gradnorm_values,
    loss_scores,
    mia_gradnorm,
    mia_min_k,
    mia_min_k_plus_plus,
    min_k_plus_plus_scores,
    min_k_scores,
    zlib_scores,
)
from lethe.metrics.mia.min_k import DEFAULT_K
from lethe.metrics.semantic import embedding_similarity, entailment_score, semantic_references, token_entropy
from lethe.probes import SplitProbes, entailment_pairs
from lethe.probes_tokens import gradient_norms, scored_texts, token_scores

from toy import Bigram

IGNORE_INDEX = -100
EOS = 3
PAD = 0

# p(next | current) over V = 4 tokens; row 3 (after the EOS) is never used for scoring
P = [[0.10, 0.60, 0.20, 0.10],
     [0.05, 0.15, 0.70, 0.10],
     [0.30, 0.30, 0.35, 0.05],  # after token 2 the EOS is unlikely: low log-prob, a wrong argmax
     [0.25, 0.25, 0.25, 0.25]]
# the model is Bigram(P, bias=True): logits W[current token] + b, two parameter tensors (the gradient
# norm's mean and global L2 norm differ); with b = 0, softmax(W[a]) = P[a]; no logits_to_keep


# (ids, n_prompt) as lethe.data.Encoder.qa builds them: prompt, answer, EOS; every answer ends in EOS
FORGET = [Sequence((0, 1, 2, 2, EOS), 1), Sequence((0, 0, 1, 2, EOS), 2), Sequence((1, 1, 2, 0, 1, EOS), 1)]
HOLDOUT = [Sequence((0, 2, 0, 1, EOS), 1), Sequence((2, 1, 1, 2, 2, EOS), 2), Sequence((0, 1, 0, EOS), 1),
           Sequence((0, 1, 2, 0, 1, 2, 2, EOS), 1)]


def ou_batch(seq):
    """open-unlearning's item layout (``preprocess_chat_instance``): labels = IGNORE on the prompt,
    the token ids from the answer on, EOS included. One sequence per batch: no padding."""
    ids = torch.tensor([seq.ids])
    labels = torch.tensor([[IGNORE_INDEX] * seq.n_prompt + list(seq.ids[seq.n_prompt:])])
    return {"input_ids": ids, "labels": labels, "attention_mask": torch.ones_like(ids)}


# ------------------------------------------------------ open-unlearning's helpers, from utils.py


def ou_evaluate_probability(model, batch):
    """``evaluate_probability``: avg_loss = summed CE over the labelled positions / their count."""
    with torch.no_grad():
        logits = model(**batch).logits
    labels = batch["labels"]
    shifted_labels = labels[..., 1:]
    logits = logits[..., :-1, :]
    losses = nn.CrossEntropyLoss(ignore_index=IGNORE_INDEX, reduction="none")(logits.transpose(-1, -2),
                                                                                shifted_labels).sum(dim=-1)
    num_token_gt = (batch["labels"] != IGNORE_INDEX).sum(-1)
    return [{"avg_loss": float(x)} for x in losses / num_token_gt]


def ou_tokenwise_logprobs(model, batch, grad=False):
    """``tokenwise_logprobs``: log-probs of the labelled tokens but the last ("-1 to ignore eos prediction")."""
    with torch.set_grad_enabled(grad):
        logits = model(**batch).logits
    log_probs = torch.log_softmax(logits, dim=-1)[:, :-1, :]
    next_tokens = batch["input_ids"][:, 1:].unsqueeze(-1)
    target_log_probs = torch.gather(log_probs, dim=2, index=next_tokens).squeeze(-1)
    out = []
    for i in range(logits.shape[0]):
        actual_indices = (batch["labels"][i] != IGNORE_INDEX).nonzero(as_tuple=True)[0][:-1]
        start_idx, end_idx = actual_indices[0].item(), actual_indices[-1].item()
        out.append(target_log_probs[i, start_idx - 1 : end_idx])
    return out


def ou_tokenwise_vocab_logprobs(model, batch):
    """``tokenwise_vocab_logprobs(..., return_labels=True)``: full distributions and labels, same positions."""
    with torch.no_grad():
        logits = model(**batch).logits
    log_probs = torch.log_softmax(logits, dim=-1)[:, :-1, :]
    lps, labs = [], []
    for i in range(logits.shape[0]):
        labels = batch["labels"][i]
        actual_indices = (labels != IGNORE_INDEX).nonzero(as_tuple=True)[0][:-1]
        start_idx, end_idx = actual_indices[0].item(), actual_indices[-1].item()
        lps.append(log_probs[i, start_idx - 1 : end_idx])
        labs.append(labels[actual_indices])
    return lps, labs


def ou_auc(forget_scores, holdout_scores):
    """``mia/utils.py`` ``mia_auc``: forget labelled 0, holdout 1, scores higher = non-member."""
    labels = np.array([0] * len(forget_scores) + [1] * len(holdout_scores))
    return roc_auc_score(labels, np.array(list(forget_scores) + list(holdout_scores)))


# ------------------------------------------------------------------------ which positions go


def test_open_unlearning_drops_the_last_labelled_position_the_eos():
    """Its per-token helpers keep every answer token and drop only the last labelled position, which
    is the EOS: exactly Lethe's per-token arrays without their last element."""
    model = Bigram(P, bias=True)
    tp = token_scores(model, FORGET, PAD)
    for i, seq in enumerate(FORGET):
        ou = ou_tokenwise_logprobs(model, ou_batch(seq))[0].numpy()
        answer = seq.ids[seq.n_prompt:]
        by_hand = [math.log(P[a][b]) for a, b in zip(seq.ids[seq.n_prompt - 1:-1], answer)]  # every answer token + EOS
        assert tp.logprobs[i] == pytest.approx(by_hand, abs=1e-6)
        assert ou == pytest.approx(by_hand[:-1], abs=1e-6)  # the EOS prediction (last) is the one dropped
        assert answer[-1] == EOS


# ----------------------------------------------------------------------------------- attacks


def scores_both_ways(model, seqs, ou_score, lethe_score_default, lethe_score_kept):
    tp = token_scores(model, seqs, PAD)
    ou = [ou_score(seq) for seq in seqs]
    return tp, ou, lethe_score_default(tp), lethe_score_kept(tp)


def test_min_k_equals_open_unlearning_at_its_k_without_the_eos():
    model = Bigram(P, bias=True)
    k = 0.4  # configs/eval/{tofu,muse}_metrics/mia_min_k.yaml

    def ou_min_k(seq):  # mia/min_k.py MinKProbAttack.compute_score
        lp = ou_tokenwise_logprobs(model, ou_batch(seq))[0].numpy()
        num_k = max(1, int(len(lp) * k))
        return -np.mean(np.sort(lp)[:num_k])

    assert DEFAULT_K == k
    ft, hd = token_scores(model, FORGET, PAD), token_scores(model, HOLDOUT, PAD)
    ou_f, ou_h = [ou_min_k(s) for s in FORGET], [ou_min_k(s) for s in HOLDOUT]
    assert min_k_scores(ft.logprobs).tolist() == pytest.approx([-x for x in ou_f], abs=1e-6)
    assert min_k_scores(hd.logprobs).tolist() == pytest.approx([-x for x in ou_h], abs=1e-6)
    assert mia_min_k(ft, hd).value == pytest.approx(ou_auc(ou_f, ou_h), abs=1e-12)
    # keeping the EOS (p = 0.05 after token 2, the lowest token of most answers) changes the scores
    kept = min_k_scores(ft.logprobs, keep_last=True)
    assert not np.allclose(kept, min_k_scores(ft.logprobs))
    assert kept[0] == pytest.approx(math.log(0.05), abs=1e-6)  # [1 2 2 EOS]: 4 tokens at 40% -> 1, the EOS
    # as does k = 0.2 (the attack class's own default, overridden by every open-unlearning config):
    # 6 answer tokens without the EOS -> 1 token at 20%, 2 at 40%
    assert min_k_scores(hd.logprobs, k=0.2)[-1] != pytest.approx(min_k_scores(hd.logprobs)[-1])


def test_min_k_plus_plus_equals_open_unlearning():
    model = Bigram(P, bias=True)
    k = 0.4  # configs/eval/tofu_metrics/mia_min_k_plus_plus.yaml

    def ou_min_k_pp(seq):  # mia/min_k_plus_plus.py MinKPlusPlusAttack.compute_score
        all_probs = ou_tokenwise_vocab_logprobs(model, ou_batch(seq))[0][0]
        target_prob = ou_tokenwise_logprobs(model, ou_batch(seq))[0]
        mu = (torch.exp(all_probs) * all_probs).sum(-1)
        sigma = (torch.exp(all_probs) * torch.square(all_probs)).sum(-1) - torch.square(mu)
        sigma = torch.clamp(sigma, min=1e-6)
        scores = (target_prob.numpy() - mu.numpy()) / torch.sqrt(sigma).numpy()
        num_k = max(1, int(len(scores) * k))
        return -np.mean(sorted(scores)[:num_k])

    ft, hd = token_scores(model, FORGET, PAD), token_scores(model, HOLDOUT, PAD)
    ou_f, ou_h = [ou_min_k_pp(s) for s in FORGET], [ou_min_k_pp(s) for s in HOLDOUT]
    assert min_k_plus_plus_scores(ft.logprobs, ft.mu, ft.sigma).tolist() == pytest.approx([-x for x in ou_f], abs=1e-5)
    assert mia_min_k_plus_plus(ft, hd).value == pytest.approx(ou_auc(ou_f, ou_h), abs=1e-12)
    kept = min_k_plus_plus_scores(ft.logprobs, ft.mu, ft.sigma, keep_last=True)
    assert not np.allclose(kept, [-x for x in ou_f], atol=1e-3)


def test_loss_and_zlib_keep_the_eos_as_open_unlearning(tokenizer):
    """LOSS / zlib read evaluate_probability: every labelled token, EOS included."""
    model = Bigram(P, bias=True)
    tp = token_scores(model, FORGET, PAD)
    ou_loss = [ou_evaluate_probability(model, ou_batch(s))[0]["avg_loss"] for s in FORGET]
    assert loss_scores(tp.logprobs).tolist() == pytest.approx([-x for x in ou_loss], abs=1e-6)
    # zlib: the text is the decoded labels (mia/zlib.py + extract_target_texts_from_processed_data)
    enc = Encoder(tokenizer)
    answers = ["Alice Moon was born in Paris.", "the the the the the the", "Lima"]
    seqs = [enc.qa("Where was Alice Moon born?", a) for a in answers]
    ou_texts = []
    for s in seqs:
        labels = torch.tensor([IGNORE_INDEX] * s.n_prompt + list(s.ids[s.n_prompt:]))
        ou_texts.append(tokenizer.decode(labels[labels != -100].tolist(), skip_special_tokens=True))
    assert scored_texts(tokenizer, seqs) == ou_texts
    assert ou_texts[0] == " " + answers[0]  # the answer's leading space stays, the EOS goes
    lps = [np.full(len(s.ids) - s.n_prompt, -1.5) for s in seqs]
    ou_zlib = [1.5 / len(zlib.compress(t.encode("utf-8"))) for t in ou_texts]  # avg_loss / zlib_entropy
    assert zlib_scores(lps, scored_texts(tokenizer, seqs)).tolist() == pytest.approx([-x for x in ou_zlib], abs=1e-15)
    # the raw answer (Lethe's text before) compresses to another length here
    assert len(zlib.compress(answers[2].encode())) != len(zlib.compress(ou_texts[2].encode()))


def ou_gradnorm(model, seq, p=2):
    """mia/gradnorm.py GradNormAttack.compute_batch_values (p: 2 in its configs), batch_size 1."""
    loss = -torch.mean(ou_tokenwise_logprobs(model, ou_batch(seq), grad=True)[0])
    model.zero_grad()
    loss.backward()
    norms = [param.grad.detach().norm(p=p) for param in model.parameters() if param.grad is not None]
    out = float(torch.stack(norms).mean())
    model.zero_grad()
    return out


def test_gradnorm_equals_open_unlearning_mean_of_tensor_norms_without_the_eos():
    model = Bigram(P, bias=True)
    ou_f = [ou_gradnorm(model, s) for s in FORGET]
    ou_h = [ou_gradnorm(model, s) for s in HOLDOUT]
    gf, gh = gradient_norms(model, FORGET, PAD), gradient_norms(model, HOLDOUT, PAD)
    assert [len(x) for x in gf] == [2, 2, 2]  # W and b
    assert gradnorm_values(gf).tolist() == pytest.approx(ou_f, rel=1e-6)
    ft = SimpleNamespace(grad_norms=gf)
    ht = SimpleNamespace(grad_norms=gh)
    assert mia_gradnorm(ft, ht).value == pytest.approx(ou_auc(ou_f, ou_h), abs=1e-12)
    # the options: one global L2 norm; the EOS in the loss
    glob = gradnorm_values(gf, aggregate="global")
    assert glob.tolist() == pytest.approx([math.sqrt(sum(float(n) ** 2 for n in x)) for x in gf])
    assert not np.allclose(glob, ou_f)
    assert not np.allclose(gradnorm_values(gradient_norms(model, FORGET, PAD, keep_last=True)), ou_f)


def test_privleak_equals_open_unlearning_and_membership_uses_k_04(tiny_model, tokenizer, forget_items, retain_items):
    def ou_privleak(auc, auc_retain):  # privacy.py privleak
        score, ref = 1 - auc, 1 - auc_retain
        return (score - ref) / (ref + 1e-10) * 100

    for a, r in [(0.75, 0.6), (0.3, 0.45), (0.999, 0.5228), (0.5, 0.5)]:
        assert privleak(a, r) == pytest.approx(ou_privleak(a, r), rel=1e-8, abs=1e-8)
    # the run's mia_min_k (and so PrivLeak) is Min-K% at k = 0.4 without the EOS
    from lethe.evaluation import membership

    tiny_model.eval()
    out = membership(tiny_model, tokenizer, forget_items, retain_items, retain_summary={"mia_min_k": 0.6})
    enc = Encoder(tokenizer)
    ft = token_scores(tiny_model, [enc.qa(it.question, it.answer) for it in forget_items], tokenizer.pad_token_id)
    ht = token_scores(tiny_model, [enc.qa(it.question, it.answer) for it in retain_items], tokenizer.pad_token_id)
    expected = METRICS.get("mia_min_k").fn(ft, ht, k=0.4, keep_last=False).value
    assert out["mia_min_k"] == pytest.approx(expected, abs=1e-12)
    assert out["privleak"] == pytest.approx(ou_privleak(expected, 0.6), rel=1e-8, abs=1e-8)


# ------------------------------------------------------------------------------- extraction


def ou_em_es(model, seq):
    """memorization.py: _exact_memorization and _extraction_strength, on tokenwise_vocab_logprobs."""
    log_probs, labels = (x[0] for x in ou_tokenwise_vocab_logprobs(model, ou_batch(seq)))
    preds = torch.argmax(log_probs, dim=-1)
    valid_len = len(labels)
    em = float((preds == labels).sum() / valid_len)
    for k in range(valid_len):
        if torch.equal(preds[k:], labels[k:]):
            break
    es = 1 - (k / valid_len)
    return em, es


def test_exact_memorization_and_extraction_strength_equal_open_unlearning():
    model = Bigram(P, bias=True)
    # argmax rows: 0 -> 1, 1 -> 2, 2 -> 2, so [0 | 1 2 2 EOS] is right up to the EOS (missed);
    # [1 | 1 2 0 1 EOS]: 1->1 miss, 1->2 hit, 2->0 miss, 0->1 hit, 1->EOS miss
    seqs = FORGET + HOLDOUT + [Sequence((0, 1, 2, 1, EOS), 1)]  # [1 2 1 EOS]: the last answer token is wrong
    tp = token_scores(model, seqs, PAD)
    ou = [ou_em_es(model, s) for s in seqs]
    assert exact_memorization_values(tp.argmax_hit).tolist() == pytest.approx([e for e, _ in ou])
    assert extraction_strength_values(tp.argmax_hit).tolist() == pytest.approx([s for _, s in ou])
    assert extraction_strength_values(tp.argmax_hit)[-1] == pytest.approx(1 / 3)  # its loop stops at k = n - 1
    # the options give the other conventions
    em_kept = exact_memorization_values(tp.argmax_hit, keep_last=True)
    assert em_kept[0] == pytest.approx(3 / 4) and ou[0][0] == pytest.approx(1.0)  # the EOS miss counted
    assert extraction_strength_values(tp.argmax_hit, allow_empty_suffix=True)[-1] == 0.0
    assert extraction_strength_values(tp.argmax_hit, keep_last=True, allow_empty_suffix=True)[0] == 0.0


# -------------------------------------------------------------------------------- Closer-Look


def cl_compute_token_entropy(tokenizer, sentence, normalize=True):
    """metrics/metrics.py compute_token_entropy (nltk.FreqDist of unigrams = a Counter of tokens)."""
    tokens = tokenizer.tokenize(sentence)
    freqs = np.array(list(Counter(tokens).values()), dtype=float)
    freqs = freqs / freqs.sum()
    entropy = np.sum(-freqs * np.log(freqs) / np.log(2))
    if len(tokens) <= 1:
        return 0
    return entropy / np.log2(len(tokens)) if normalize else entropy


def split_probes(n, **kw):
    z = np.zeros(n)
    return SplitProbes(ids=[str(i) for i in range(n)], answer_logprob=z, answer_ntokens=z, paraphrase_logprob=z,
                       paraphrase_ntokens=z, perturbed_logprob=np.zeros((n, 1)), perturbed_ntokens=np.zeros((n, 1)),
                       **kw)


def test_token_entropy_equals_closer_look_on_the_raw_decoded_generation(tokenizer):
    raw = [" cat cat", " the the the\n", " Alice Moon was born in Paris.", " a"]  # as batch_decode gives them
    p = split_probes(len(raw), generations=[g.strip() for g in raw],
                     generation_tokens=[tokenizer.tokenize(g) for g in raw])
    cl = [cl_compute_token_entropy(tokenizer, g) for g in raw]
    assert token_entropy(p).per_sample == pytest.approx(cl, abs=1e-12)
    assert cl[0] == 0.0  # " cat cat" -> ["Ġcat", "Ġcat"]
    # tokenising the stripped text (Lethe's probes before) differs: "cat cat" -> ["c", "at", "Ġcat"]
    stripped = split_probes(len(raw), generation_tokens=[tokenizer.tokenize(g.strip()) for g in raw])
    assert token_entropy(stripped).per_sample[0] == pytest.approx(1.0)


def test_similarity_and_entailment_compare_with_the_original_answer_as_closer_look():
    short = ["Paris", "Jane Austen"]
    long = ["The capital of France is Paris.", ""]  # the second item has no long form: its answer is used
    gens = ["It is Paris, in France.", "Charlotte Bronte"]
    p = split_probes(2, generations=gens, references=short, original_answers=long)
    refs = semantic_references(p)
    assert refs == ["The capital of France is Paris.", "Jane Austen"]  # get_all_evals: original_answer
    assert semantic_references(p, long_form=False) == short
    # eval_cosine_similarity: max(0, cosine_similarity(e(gen), e(ref))) on unnormalised embeddings
    e = {gens[0]: np.array([1.0, 2.0, 0.0]), refs[0]: np.array([2.0, 1.0, 1.0]),
         gens[1]: np.array([1.0, 0.0, 0.0]), refs[1]: np.array([-1.0, 0.5, 0.0])}
    cl = [max(0.0, float(e[g] @ e[r] / np.linalg.norm(e[g]) / np.linalg.norm(e[r]))) for g, r in zip(gens, refs)]
    unit = {t: v / np.linalg.norm(v) for t, v in e.items()}  # the embedding probe's normalised dot product
    p.generation_similarity = [float(unit[g] @ unit[r]) for g, r in zip(gens, refs)]
    assert embedding_similarity(p).per_sample == pytest.approx(cl, abs=1e-12)
    # get_entailment_results (TOFU, a non-forget task): premise = original answer, hypothesis = generation;
    # the ROUGE gate reads rougeL_recall against the short ground truth
    premises, hypotheses = entailment_pairs(gens, refs, "multiple_choice")
    assert premises == refs and hypotheses == gens
    p.generation_nli = ["entailment", "entailment"]
    # item 2: ROUGE-L recall of "Jane Austen" in "Charlotte Bronte" is 0 -> 'none'; item 1: recall 1 -> kept
    assert entailment_score(p).per_sample == [1.0, 0.0]


def test_original_answers_are_saved_with_the_probes_and_old_files_still_load():
    from lethe.results import probes_from_json, probes_to_json

    p = split_probes(2, generations=["a", "b"], references=["x", "y"], original_answers=["The long x.", ""])
    d = probes_to_json(p)
    assert d["original_answers"] == ["The long x.", ""]
    assert probes_from_json(d).original_answers == ["The long x.", ""]
    q = split_probes(2, references=["x", "y"], original_answers=["", ""])
    assert "original_answers" not in probes_to_json(q)  # files without long forms stay as they were
    old = probes_to_json(q)
    assert probes_from_json(old).original_answers == []
    assert semantic_references(probes_from_json(old)) == ["x", "y"]


def test_probe_split_keeps_the_original_answers(tiny_model, tokenizer, forget_items):
    import dataclasses

    from lethe.probes import probe_split

    items = [dataclasses.replace(it, perturbed_answers=("I don't know.",)) for it in forget_items[:2]]
    items[0] = dataclasses.replace(items[0], original_answer="Alice Moon was born in Paris, where she still lives.")
    p = probe_split(tiny_model, tokenizer, items, generate_answers=False)
    assert p.original_answers == [items[0].original_answer, ""]
    assert semantic_references(p) == [items[0].original_answer, items[1].answer]
