"""ROUGE-L and LCS (lethe.metrics.rouge): hand-computed values, equality with rouge-score called
directly, the stemmer each caller uses, and lcs_length against a brute-force definition."""
from __future__ import annotations

import itertools
import random

import numpy as np
import pytest
from rouge_score import rouge_scorer
from rouge_score.tokenizers import DefaultTokenizer

from lethe.metrics import muse, safety, tofu
from lethe.metrics.rouge import (
    lcs_length,
    rouge_l_f1,
    rouge_l_f1_values,
    rouge_l_recall,
    rouge_l_recall_values,
    rouge_l_scorer,
    rouge_tokenizer,
)
from lethe.probes import SplitProbes
from lethe.safety_items import SafetyItem

WORDS = ["the", "The", "cat", "cats", "running", "run", "mat", "on", "a", "über", "naïve", "東京", "don't",
         "42", "3.14", "e-mail", "straße", "😀", "generalization", "generalized"]
PUNCT = [".", ",", "!", "?", "...", "'", "(", ")", "-", "\n", "  "]


def _text(rng: random.Random) -> str:
    n = rng.choice([0, 1, 2, 4, 9, 20])
    toks = [rng.choice(PUNCT) if rng.random() < 0.15 else rng.choice(WORDS) for _ in range(n)]
    if toks and rng.random() < 0.2:
        toks += toks[: rng.randint(1, len(toks))]  # repeated words
    return " ".join(toks) if rng.random() < 0.85 else "".join(toks)


def _pairs(n: int = 300, seed: int = 0) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    fixed = [("", ""), ("", "a"), ("a", ""), ("   ", "the cat"), ("!!! ...", "?"), ("the the the", "the"),
             ("the", "the the the"), ("東京 東京", "東京"), ("A cat was running fast", "The cats were running.")]
    return fixed + [(_text(rng), _text(rng)) for _ in range(n)]


# ---------------------------------------------------------------------------------------- hand-computed


def test_hand_computed_without_stemming():
    # prediction "the cat lay on a mat", reference "the cat sat on the mat": LCS "the cat on mat" = 4
    # recall 4/6, precision 4/6, F1 4/6
    assert rouge_l_recall("the cat lay on a mat", "the cat sat on the mat", use_stemmer=False) == 4 / 6
    assert rouge_l_f1("the cat lay on a mat", "the cat sat on the mat", use_stemmer=False) == pytest.approx(4 / 6)
    # prediction "cat" (1 token), reference "the cat sat" (3): R = 1/3, P = 1, F1 = 2 * 1/3 / (4/3) = 1/2
    assert rouge_l_recall("cat", "the cat sat", use_stemmer=False) == 1 / 3
    assert rouge_l_f1("cat", "the cat sat", use_stemmer=False) == pytest.approx(0.5)
    # rouge-score lowercases and splits on every non-alphanumeric run
    assert rouge_l_recall("THE, cat!", "the cat", use_stemmer=False) == 1.0
    # word order matters: LCS of "a b c" and "c b a" is 1
    assert rouge_l_recall("c b a", "a b c", use_stemmer=False) == 1 / 3


def test_hand_computed_with_stemming():
    # stemmed: reference "the cat were run" (4), prediction "a cat was run fast": LCS "cat run" = 2
    assert rouge_l_recall("A cat was running fast", "The cats were running.", use_stemmer=True) == 0.5
    # unstemmed, "cats" != "cat": LCS "running" = 1 of 4
    assert rouge_l_recall("A cat was running fast", "The cats were running.", use_stemmer=False) == 0.25
    assert rouge_l_recall("running", "run", use_stemmer=True) == 1.0
    assert rouge_l_recall("running", "run", use_stemmer=False) == 0.0


def test_empty_or_tokenless_texts_score_zero():
    for pred, ref in [("", ""), ("", "the cat"), ("the cat", ""), ("!!!", "the cat"), ("the cat", "...")]:
        for stem in (True, False):
            r, f = rouge_l_recall(pred, ref, use_stemmer=stem), rouge_l_f1(pred, ref, use_stemmer=stem)
            assert (r, f) == (0.0, 0.0) and type(r) is float and type(f) is float


# ---------------------------------------------------------------------------------------- equal to rouge-score


@pytest.mark.parametrize("use_stemmer", [True, False])
def test_equal_to_rouge_score_called_directly(use_stemmer):
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=use_stemmer)
    pairs = _pairs()
    want = [scorer.score(target=ref, prediction=pred)["rougeL"] for pred, ref in pairs]
    recall = [rouge_l_recall(pred, ref, use_stemmer=use_stemmer) for pred, ref in pairs]
    f1 = [rouge_l_f1(pred, ref, use_stemmer=use_stemmer) for pred, ref in pairs]
    assert recall == [float(s.recall) for s in want]  # exact, not approx
    assert f1 == [float(s.fmeasure) for s in want]
    preds, refs = [p for p, _ in pairs], [r for _, r in pairs]
    r_vec = rouge_l_recall_values(preds, refs, use_stemmer=use_stemmer)
    f_vec = rouge_l_f1_values(preds, refs, use_stemmer=use_stemmer)
    assert r_vec.dtype == f_vec.dtype == np.float64
    assert r_vec.tolist() == recall and f_vec.tolist() == f1
    assert sum(r > 0 for r in recall) > 20  # the pairs do overlap


def test_vectorised_helpers_check_lengths():
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        rouge_l_recall_values(["a", "b"], ["a"], use_stemmer=True)
    with pytest.raises(ValueError, match="1 predictions but 0 references"):
        rouge_l_f1_values(["a"], [], use_stemmer=False)
    assert rouge_l_f1_values([], [], use_stemmer=False).shape == (0,)


def test_scorer_and_tokenizer_are_built_once_per_setting():
    assert rouge_l_scorer(True) is rouge_l_scorer(True)
    assert rouge_l_scorer(True) is not rouge_l_scorer(False)
    assert rouge_tokenizer(False) is rouge_tokenizer(False)
    assert rouge_tokenizer(True).tokenize("The cats were running.") == ["the", "cat", "were", "run"]


# ---------------------------------------------------------------------------------------- callers' settings


def test_each_caller_keeps_its_stemmer():
    """TOFU's ROUGE stems (recall); MUSE, the safety utility sets (F1) and answer_match (recall) do not."""
    pairs = _pairs(n=80, seed=1) + [("running", "run")]
    preds, refs = [p for p, _ in pairs], [r for _, r in pairs]
    n = len(pairs)
    p = SplitProbes(ids=[f"q{i}" for i in range(n)], answer_logprob=np.zeros(n), answer_ntokens=np.ones(n),
                    paraphrase_logprob=np.zeros(n), paraphrase_ntokens=np.ones(n),
                    perturbed_logprob=np.zeros((n, 2)), perturbed_ntokens=np.ones((n, 2)),
                    generations=preds, references=refs)
    stemmed = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    plain = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    assert tofu.rouge_l_recall(p).per_sample == [float(stemmed.score(r, g)["rougeL"].recall) for g, r in pairs]
    f1 = [float(plain.score(r, g)["rougeL"].fmeasure) for g, r in pairs]
    assert muse.rouge_l_f1_values(preds, refs).tolist() == f1
    assert muse.verbmem(p).per_sample == f1
    assert safety.rouge_l(preds, refs).per_sample == f1
    from lethe.judges import make_judge

    kept = [(g, r) for g, r in pairs if r.strip()]
    items = [SafetyItem(id=f"h{i}", prompt="q", role="harmful", harmful_response=r) for i, (_, r) in enumerate(kept)]
    verdicts = make_judge("answer_match").judge(["q"] * len(kept), [g for g, _ in kept], items)
    assert [v.score for v in verdicts] == [float(plain.score(r, g)["rougeL"].recall) for g, r in kept]
    assert verdicts[-1].score == 0.0  # "running" vs "run", unstemmed


# ---------------------------------------------------------------------------------------- LCS


def _lcs_brute_force(a: list[str], b: list[str]) -> int:
    """The longest subsequence of ``a`` (tried from the longest down) that is also one of ``b``."""
    def is_subsequence(s, t):
        it = iter(t)
        return all(x in it for x in s)

    for k in range(min(len(a), len(b)), 0, -1):
        if any(is_subsequence(sub, b) for sub in itertools.combinations(a, k)):
            return k
    return 0


def test_lcs_length_hand_computed():
    assert lcs_length([], []) == 0
    assert lcs_length(["a"], []) == 0 and lcs_length([], ["a"]) == 0
    assert lcs_length(list("abcbdab"), list("bdcaba")) == 4  # CLRS 15.4: "bcba"
    assert lcs_length(["the", "the", "the"], ["the"]) == 1
    assert lcs_length(["a", "b", "c"], ["c", "b", "a"]) == 1
    assert lcs_length(list("abc"), list("abc")) == 3


def test_lcs_length_against_brute_force():
    rng = random.Random(3)
    for _ in range(400):
        a = [rng.choice("abcd") for _ in range(rng.randint(0, 7))]
        b = [rng.choice("abcd") for _ in range(rng.randint(0, 7))]
        got = lcs_length(a, b)
        assert got == _lcs_brute_force(a, b), (a, b)
        assert got == lcs_length(b, a)  # symmetric


def test_lcs_length_is_the_rouge_l_numerator():
    """On rouge-score's own tokens, LCS / |reference| is rouge-score's recall, bit for bit."""
    for stem in (True, False):
        tok = DefaultTokenizer(use_stemmer=stem)
        for pred, ref in _pairs(n=150, seed=2):
            p, r = tok.tokenize(pred), tok.tokenize(ref)
            want = rouge_l_recall(pred, ref, use_stemmer=stem)
            assert (lcs_length(r, p) / len(r) if r and p else 0.0) == want
