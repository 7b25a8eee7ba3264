"""data: prompt templates, exact answer masks, collation (right-padded training, left-padded prompts)."""
from __future__ import annotations

import copy

import pytest
import torch

from lethe.data import (FALLBACK_PROMPT, Encoded, Encoder, Sequence, UnlearnBatch, collate, collate_prompts,
                        prompt_text, turn_end_ids)
from lethe.ops import IGNORE

Q = "Where was Alice Moon born?"
A = "Alice Moon was born in Paris."


def ids(tok, text):
    return tok(text, add_special_tokens=False)["input_ids"]


def test_chat_template_of_lethe_tokenizer(tokenizer):
    assert prompt_text(tokenizer, Q) == f"<s>Q: {Q}\nA:"
    # the rendered BOS string becomes the single BOS id, not the characters '<', 's', '>'
    p = Encoder(tokenizer).prompt(Q)
    assert p[0] == tokenizer.bos_token_id and p.count(tokenizer.bos_token_id) == 1
    assert p == ids(tokenizer, f"<s>Q: {Q}\nA:")
    assert tokenizer.decode(p) == f"<s>Q: {Q}\nA:"


def test_qa_masks_exactly_the_prompt_and_ends_with_eos(tokenizer, encoder):
    prompt = encoder.prompt(Q)
    answer = ids(tokenizer, " " + A)  # the answer is a new word after "A:" -> leading space
    s = encoder.qa(Q, A)
    # tokenised separately and concatenated: no BPE merge crosses the prompt/answer boundary
    assert list(s.ids) == prompt + answer + [tokenizer.eos_token_id]
    assert s.n_prompt == len(prompt)
    assert s.ids[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(list(s.ids[s.n_prompt:]), skip_special_tokens=True) == " " + A

    enc = collate([s], tokenizer.pad_token_id)
    lab = enc.labels[0].tolist()
    assert lab[: len(prompt)] == [IGNORE] * len(prompt)  # every prompt token unscored
    assert lab[len(prompt):] == list(s.ids[len(prompt):])  # every answer token (and EOS) scored


def test_answer_after_trailing_space_gets_no_extra_space(tokenizer):
    tok = copy.deepcopy(tokenizer)
    tok.chat_template = "{{ bos_token }}Q: {{ messages[0]['content'] }}\nA: "
    enc = Encoder(tok)
    s = enc.qa(Q, A)
    assert list(s.ids[s.n_prompt:]) == ids(tok, A) + [tok.eos_token_id]


def test_builtin_tokenizer_answers_are_unchanged(tokenizer):
    """Lethe's own template ends a reply with "</s>\\n": the answer still ends with EOS alone, token
    for token what the encoder gave before end-of-turn handling (prompt + answer + [EOS], cut)."""
    assert turn_end_ids(tokenizer) == [tokenizer.eos_token_id]
    for max_length in (512, 14, 3):
        enc = Encoder(tokenizer, max_length=max_length)
        for q, a in ((Q, A), ("What does Bruno Vale write?", "Bruno Vale writes novels about trains.")):
            prompt = [tokenizer.bos_token_id] + ids(tokenizer, f"Q: {q}\nA:")
            old = (prompt + ids(tokenizer, " " + a) + [tokenizer.eos_token_id])[:max_length]
            s = enc.qa(q, a)
            assert list(s.ids) == old and s.n_prompt == min(len(prompt), len(old) - 1)
    tok = copy.deepcopy(tokenizer)
    tok.chat_template = None  # the plain "Question: ...\nAnswer:" fallback
    assert turn_end_ids(tok) == [tok.eos_token_id]
    assert Encoder(tok).qa(Q, A).ids[-1] == tok.eos_token_id


@pytest.mark.parametrize("template", [
    "{{ bos_token }}Q: {{ messages[0]['content'] }}\nA: ",  # writes prompts only
    "{% for m in messages %}{% if m['role'] == 'assistant' %}{{ raise_exception('no replies') }}{% endif %}"
    "{{ m['content'] }}{% endfor %}",  # refuses to render a reply
    "{% for m in messages %}{{ m['content'] }}\n{% endfor %}",  # no special token after a reply
])
def test_a_template_without_a_closing_token_keeps_eos(tokenizer, template):
    tok = copy.deepcopy(tokenizer)
    tok.chat_template = template
    assert turn_end_ids(tok) == [tok.eos_token_id]
    assert Encoder(tok).qa(Q, A).ids[-1] == tok.eos_token_id


def test_fallback_prompt_without_chat_template_prepends_bos(tokenizer):
    tok = copy.deepcopy(tokenizer)
    tok.chat_template = None
    assert prompt_text(tok, Q) == FALLBACK_PROMPT.format(question=Q)
    s = Encoder(tok).qa(Q, A)
    prompt = [tok.bos_token_id] + ids(tok, FALLBACK_PROMPT.format(question=Q))
    assert list(s.ids[: s.n_prompt]) == prompt
    assert list(s.ids[s.n_prompt:]) == ids(tok, " " + A) + [tok.eos_token_id]


def test_truncation_keeps_at_least_one_scored_token(tokenizer):
    full = Encoder(tokenizer).qa(Q, A)
    s = Encoder(tokenizer, max_length=full.n_prompt + 3).qa(Q, A)
    assert s.ids == full.ids[: full.n_prompt + 3] and s.n_prompt == full.n_prompt
    short = Encoder(tokenizer, max_length=5).qa(Q, A)
    assert len(short.ids) == 5 and short.n_prompt == 4


def test_text_scores_everything_after_bos(tokenizer, encoder):
    s = encoder.text("The cat sat on the mat.")
    assert list(s.ids) == [tokenizer.bos_token_id] + ids(tokenizer, "The cat sat on the mat.") + [tokenizer.eos_token_id]
    assert s.n_prompt == 1


def test_collate_right_pads_and_ignores_pads():
    a = Sequence((10, 11, 12, 13, 14), n_prompt=2)
    b = Sequence((20, 21, 22), n_prompt=1)
    enc = collate([a, b], pad_id=0)
    assert enc.input_ids.tolist() == [[10, 11, 12, 13, 14], [20, 21, 22, 0, 0]]
    assert enc.attention_mask.tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]
    assert enc.labels.tolist() == [[IGNORE, IGNORE, 12, 13, 14], [IGNORE, 21, 22, IGNORE, IGNORE]]
    assert len(enc) == 2


def test_collate_pad_id_equal_to_a_real_token_still_masks_only_pads():
    # pad = EOS for many hub tokenizers: the real EOS stays scored, the padding does not
    a = Sequence((5, 6, 1), n_prompt=1)
    b = Sequence((5, 1), n_prompt=1)
    enc = collate([a, b], pad_id=1)
    assert enc.labels.tolist() == [[IGNORE, 6, 1], [IGNORE, 1, IGNORE]]
    assert enc.attention_mask.tolist() == [[1, 1, 1], [1, 1, 0]]


def test_collate_prompts_left_pads():
    ids_, att = collate_prompts([[7, 8, 9], [4]], pad_id=0)
    assert ids_.tolist() == [[7, 8, 9], [0, 0, 4]]
    assert att.tolist() == [[1, 1, 1], [0, 0, 1]]


def test_collate_left_side_masks_prompt_after_padding():
    enc = collate([Sequence((1, 2, 3), 2), Sequence((4, 5), 1)], pad_id=0, side="left")
    assert enc.input_ids.tolist() == [[1, 2, 3], [0, 4, 5]]
    assert enc.labels.tolist() == [[IGNORE, IGNORE, 3], [IGNORE, IGNORE, 5]]


def test_unlearn_batch_to_keeps_missing_parts():
    e = Encoded(torch.zeros(1, 2, dtype=torch.long), torch.ones(1, 2, dtype=torch.long), torch.zeros(1, 2, dtype=torch.long))
    b = UnlearnBatch(forget=e, forget_keys=["k"]).to("cpu")
    assert b.retain is None and b.forget_idk is None and b.retain_idk is None
    assert b.forget_keys == ["k"] and torch.equal(b.forget.input_ids, e.input_ids)


@pytest.mark.parametrize("question", [Q, "What does Bruno Vale write?"])
def test_prompt_cache_returns_same_ids(encoder, question):
    assert encoder.prompt(question) == encoder.prompt(question)
    assert list(encoder.qa(question, "x").ids[: len(encoder.prompt(question))]) == encoder.prompt(question)


def test_parts_and_lengths_are_the_uncut_encoding(tokenizer):
    from lethe.benchmarks.base import QAItem

    enc = Encoder(tokenizer, max_length=6)
    p, a = enc.parts(Q, A)
    assert p == Encoder(tokenizer).prompt(Q) and a == ids(tokenizer, " " + A) + [tokenizer.eos_token_id]
    assert list(enc.qa(Q, A).ids) == (p + a)[:6]
    assert enc.lengths(QAItem(id="q", question=Q, answer=A)) == (len(p), len(a))
    doc = "The cat sat on the mat."
    assert enc.lengths(QAItem(id="d", question="", answer=doc)) == (1, len(ids(tokenizer, doc)) + 1)
