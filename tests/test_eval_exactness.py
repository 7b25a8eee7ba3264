"""The faster evaluation paths give the numbers of the plain ones, bit for bit: batched encodings, a
sequence scored once where a batch holds it twice, per-token probes gathered over runs of rows; the
``lethe`` command's own exit (no interpreter teardown) keeps its exit code and output."""
from __future__ import annotations

import subprocess
import sys
from dataclasses import asdict

import numpy as np
import pytest
import torch

from lethe.benchmarks.base import QAItem
from lethe.data import Encoder, collate
from lethe.models import answer_logits

Q1, Q2 = "Where was Alice Moon born?", "What does the cat eat?"
PAIRS = [(Q1, "Alice Moon was born in Paris."), (Q2, "The cat eats fish."), (Q1, "She was born in Lima."),
         (Q1, "Alice Moon was born in Paris."), (Q2, ""), (Q2, "The cat eats fish.")]


class Prefixed(Encoder):
    def rewrite(self, question: str) -> str:
        return "Answer briefly. " + question


@pytest.mark.parametrize("cls", [Encoder, Prefixed])
def test_batched_encodings_equal_one_by_one(tokenizer, cls):
    one = cls(tokenizer)
    expected = [one.qa(q, a) for q, a in PAIRS]
    many = cls(tokenizer)
    assert many.qa_many(PAIRS) == expected
    assert many.qa_many(PAIRS[::-1]) == expected[::-1]  # from its cache now
    assert cls(tokenizer).parts_many(PAIRS) == [cls(tokenizer).parts(q, a) for q, a in PAIRS]
    p, a = many.parts(*PAIRS[0])
    a.append(-1)  # the caller's list: the cached encoding stays as it was
    assert many.qa(*PAIRS[0]) == expected[0]
    items = [QAItem(id=str(i), question=q, answer=a or "x") for i, (q, a) in enumerate(PAIRS)]
    items.append(QAItem(id="doc", question="", answer="Poems about the sea are often sad."))
    assert cls(tokenizer).lengths_many(items) == [cls(tokenizer).lengths(it) for it in items]
    short = cls(tokenizer, max_length=12)
    assert short.qa_many(PAIRS) == [cls(tokenizer, max_length=12).qa(q, a) for q, a in PAIRS]


def _sequences(tokenizer):
    enc = Encoder(tokenizer)
    items = [(Q1, "Alice Moon was born in Paris."), (Q2, "The cat eats fish."), (Q1, "She was born in Oslo.")]
    pairs = [(q, a) for q, a in items for _ in range(2)] + [(Q2, "The cat eats mice and fish.")]
    return enc.qa_many(pairs)  # every answer twice (a paraphrase that is the answer itself), one once


def test_a_sequence_twice_in_a_batch_gets_the_numbers_of_the_batch(tokenizer, tiny_model):
    from lethe.probes import score_sequences
    from lethe.probes_tokens import answer_logit_batches

    tiny_model.eval()
    seqs = _sequences(tokenizer)
    pad = tokenizer.pad_token_id
    for batch_size in (3, 4, len(seqs)):
        for idx, logits, labels in answer_logit_batches(tiny_model, seqs, pad, batch_size):
            with torch.no_grad():
                whole_logits, whole_labels = answer_logits(tiny_model, collate([seqs[i] for i in idx], pad))
            assert torch.equal(logits, whole_logits) and torch.equal(labels, whole_labels)
    lp, nt = score_sequences(tiny_model, seqs, pad, len(seqs))  # one batch: both copies, the same numbers
    assert lp[0] == lp[1] and lp[2] == lp[3] and nt[0] == nt[1]


def test_per_token_probes_in_runs_of_rows_equal_row_by_row(tokenizer, tiny_model, monkeypatch):
    import lethe.probes_tokens as pt
    from lethe.ops import token_logprobs

    tiny_model.eval()
    seqs = _sequences(tokenizer)
    pad = tokenizer.pad_token_id
    expected = {name: [None] * len(seqs) for name in ("logprobs", "mu", "sigma", "argmax_hit")}
    with torch.no_grad():
        for idx, logits, labels in pt.answer_logit_batches(tiny_model, seqs, pad, 4):
            logp, mask = token_logprobs(logits, labels)
            for b, i in enumerate(idx):
                r = mask.bool()[b]
                m, s, h = pt.vocab_stats(logits[b, :-1][r], labels[b, 1:][r])
                for name, x in zip(expected, (logp[b][r].double(), m.double(), s.double(), h)):
                    expected[name][i] = x.numpy()
    V = tiny_model.config.vocab_size
    for chunk in (1 << 24, 3 * V, V):  # the whole batch in one gather, a few rows at a time, one row at a time
        monkeypatch.setattr(pt, "_CHUNK_ELEMENTS", chunk)
        got = pt.token_scores(tiny_model, seqs, pad, 4)
        for name, rows in expected.items():
            assert all(np.array_equal(a, b) for a, b in zip(getattr(got, name), rows)), (chunk, name)


def test_qa_item_json_is_the_dataclass_fields():
    it = QAItem(id="a0", question="q", answer="a", paraphrased_answer="p", perturbed_answers=("x", "y"), group="g",
                fact="f", language="de", original_answer="o")
    d = asdict(it)
    d["perturbed_answers"] = ["x", "y"]
    assert it.to_json() == d and list(it.to_json()) == list(d)
    plain = QAItem(id="a1", question="q", answer="a")
    assert "language" not in plain.to_json() and "original_answer" not in plain.to_json()


def test_the_command_ends_itself_with_its_exit_code():
    run = [sys.executable, "-m", "lethe"]
    ok = subprocess.run(run + ["ls", "methods"], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and "npo" in ok.stdout
    bad = subprocess.run(run + ["run", "train.lrr=1"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "did you mean 'train.lr'" in bad.stderr


def test_exit_now_leaves_a_traced_process_to_the_interpreter(monkeypatch):
    import lethe.cli as cli

    def no_exit(code):
        raise AssertionError(f"os._exit({code}) under a tracer")

    monkeypatch.setattr(cli.os, "_exit", no_exit)
    monkeypatch.setattr(cli.sys, "gettrace", lambda: object())  # as under coverage or a debugger
    assert cli.exit_now(0) is None
    assert cli.main(["ls", "scenarios"]) == 0  # an argv list: the code comes back to the caller
