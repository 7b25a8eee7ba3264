"""Generation stops where a chat model's turn ends; answers end the same way; inputs that do not fit warn.

The chat tokenizers are Lethe's tiny BPE with the special tokens and a chat template in the style of
each family added (the templates follow the hub models' ``tokenizer_config.json`` chat templates of
Llama-3-Instruct, Gemma-it, Phi-3-mini-instruct and Qwen2-Instruct), so nothing is downloaded.
"""
from __future__ import annotations

import copy

import pytest
import torch

from lethe.benchmarks.base import QAItem
from lethe.data import Encoder, collate, turn_end_ids
from lethe.generation import end_of_turn_ids, length_warnings, stop_token_ids
from lethe.models import max_positions
from lethe.ops import IGNORE
from lethe.probes import generate

Q = "Where was Alice Moon born?"
A = "Alice Moon was born in Paris."

LLAMA3 = (
    "{% for message in messages %}{% set content = '<|start_header_id|>' + message['role'] + "
    "'<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
GEMMA = (
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}"
    "{% else %}{% set role = message['role'] %}{% endif %}"
    "{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}"
)
PHI3 = (
    "{% for message in messages %}{% if message['role'] == 'user' %}{{'<|user|>\n' + message['content'] + '<|end|>\n'}}"
    "{% elif message['role'] == 'assistant' %}{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}"
)
CHATML = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# name -> (template, bos, eos, other special tokens, end-of-turn token); the EOS is the base model's
# end-of-text token, not the end-of-turn token, as in the hub configs where the two differ
STYLES = {
    "llama3": (LLAMA3, "<|begin_of_text|>", "<|end_of_text|>", ["<|start_header_id|>", "<|end_header_id|>"],
               "<|eot_id|>"),
    "gemma": (GEMMA, "<bos>", "<eos>", ["<start_of_turn>"], "<end_of_turn>"),
    "phi3": (PHI3, "<s>", "<|endoftext|>", ["<|user|>", "<|assistant|>"], "<|end|>"),
    "chatml": (CHATML, "<s>", "<|endoftext|>", ["<|im_start|>"], "<|im_end|>"),
}


def chat_tokenizer(tokenizer, style: str):
    template, bos, eos, others, eot = STYLES[style]
    tok = copy.deepcopy(tokenizer)
    tok.add_special_tokens({"bos_token": bos, "eos_token": eos, "additional_special_tokens": others + [eot]})
    tok.chat_template = template
    return tok, tok.convert_tokens_to_ids(eot)


def ids(tok, text):
    return tok(text, add_special_tokens=False)["input_ids"]


@pytest.mark.parametrize("style", list(STYLES))
def test_answer_ends_with_the_templates_end_of_turn(tokenizer, style):
    tok, eot = chat_tokenizer(tokenizer, style)
    assert eot not in (tok.eos_token_id, tok.unk_token_id)
    assert turn_end_ids(tok) == [eot]
    enc = Encoder(tok)
    s = enc.qa(Q, A)
    prompt = enc.prompt(Q)
    # each template's prompt ends in a newline, so the answer gets no leading space
    assert tok.decode(prompt[-1:]).endswith("\n")
    assert list(s.ids) == prompt + ids(tok, A) + [eot]
    assert s.n_prompt == len(prompt)
    # the end-of-turn token is scored (the model learns to stop there), the tokenizer's EOS is not there
    lab = collate([s], tok.pad_token_id).labels[0].tolist()
    assert lab[-1] == eot and tok.eos_token_id not in s.ids
    assert lab[: len(prompt)] == [IGNORE] * len(prompt)
    # the scored answer is exactly the text the template writes for the reply, up to its end-of-turn token
    full = tok.apply_chat_template([{"role": "user", "content": Q}, {"role": "assistant", "content": A}],
                                   tokenize=False)
    answer_text = tok.decode(list(s.ids[s.n_prompt:]))
    assert answer_text == A + STYLES[style][4]
    assert answer_text in full


def test_text_items_end_with_eos_whatever_the_template(tokenizer):
    tok, eot = chat_tokenizer(tokenizer, "llama3")
    s = Encoder(tok).text("The cat sat on the mat.")
    assert s.ids[-1] == tok.eos_token_id and eot not in s.ids


@pytest.mark.parametrize("style", list(STYLES))
def test_stop_ids_are_generation_config_eos_and_end_of_turn(tokenizer, make_tiny, style):
    tok, eot = chat_tokenizer(tokenizer, style)
    model = make_tiny(tok)
    extra = tok.convert_tokens_to_ids(STYLES[style][3][0])  # one more stop id only the model's config knows
    model.generation_config.eos_token_id = [tok.eos_token_id, extra]
    assert end_of_turn_ids(tok) == [eot]
    assert stop_token_ids(model, tok) == [tok.eos_token_id, extra, eot]
    model.generation_config.eos_token_id = 7  # a single int is read as a one-element list
    assert stop_token_ids(model, tok) == [7, tok.eos_token_id, eot]


def test_stop_ids_of_the_builtin_model_are_its_eos(tokenizer, tiny_model):
    assert stop_token_ids(tiny_model, tokenizer) == [tokenizer.eos_token_id]


def test_known_end_of_turn_names_when_the_template_gives_none(tokenizer, make_tiny):
    # a base model's tokenizer: the instruct vocabulary, no chat template
    tok, eot = chat_tokenizer(tokenizer, "chatml")
    tok.chat_template = None
    assert turn_end_ids(tok) == [tok.eos_token_id]
    assert stop_token_ids(make_tiny(tok), tok) == [tok.eos_token_id, eot]


class _Forced:
    """A forward hook on the LM head: the first decoding step's top token is ``first``, every later
    step's is ``then``. Counts the steps."""

    def __init__(self, first: int, then: int):
        self.first, self.then, self.calls = first, then, 0

    def __call__(self, module, inputs, output):
        out = output.clone()  # (B, T', V)
        out[..., self.first if self.calls == 0 else self.then] = 1e4
        self.calls += 1
        return out


@pytest.mark.parametrize("style", ["llama3", "gemma"])
def test_generation_stops_at_the_end_of_turn_token(tokenizer, make_tiny, style):
    tok, eot = chat_tokenizer(tokenizer, style)
    model = make_tiny(tok).eval()
    word = ids(tok, "Paris")[0]
    forced = _Forced(word, eot)
    handle = model.lm_head.register_forward_hook(forced)
    try:
        out = generate(model, tok, [Q, "What does Bruno Vale write?"], max_new_tokens=20, batch_size=2)
        assert out == [tok.decode([word]).strip()] * 2
        assert forced.calls == 2  # "Paris", then the end-of-turn token: no step after it
        # the check above fails with the tokenizer's EOS as the only stop id (what Lethe used to pass):
        forced.calls = 0
        with torch.no_grad():
            p = torch.tensor([Encoder(tok).prompt(Q)])
            model.generate(input_ids=p, attention_mask=torch.ones_like(p), max_new_tokens=20, do_sample=False,
                           pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
        assert forced.calls == 20
    finally:
        handle.remove()


def _item(i, q, a):
    return QAItem(id=str(i), question=q, answer=a)


def test_length_warnings_count_long_prompts_and_cut_answers(tokenizer, make_tiny):
    model = make_tiny(tokenizer)
    positions = max_positions(model)
    assert positions == 128  # conftest TINY max_positions
    enc = Encoder(tokenizer, max_length=40)
    p_short = len(enc.prompt(Q))
    long_q = " ".join(["Where was Alice Moon born?"] * 30)  # ~200 tokens: over 128 positions
    assert len(enc.prompt(long_q)) > positions
    # a question whose prompt leaves exactly 2 answer tokens under max_length 40
    fill = "cat " * 40
    q2 = next(fill[:n] + "?" for n in range(1, len(fill)) if len(enc.prompt(fill[:n] + "?")) == 38)
    forget = [_item(1, Q, A), _item(2, long_q, A), _item(3, q2, A), _item(4, Q, "Paris.")]
    retain = [_item(5, Q, A)]
    holdout = [_item(6, q2, "cat")]  # answer " cat" + EOS is 2 tokens: it fits, not cut, no warning
    n_cat = len(enc.parts(q2, "cat")[1])
    assert n_cat == 2 and p_short + len(enc.parts(Q, A)[1]) <= 40
    lines = length_warnings(enc, {"forget": forget, "retain": retain, "holdout": holdout}, positions)
    # item 2: prompt > 128 positions and answer cut to 0 tokens; item 3: answer cut to 2 tokens
    assert lines == ["forget: 1 of 4 prompts exceed the model's 128 positions; "
                     "2 of 4 answers truncated to <= 2 tokens by max_length 40"]
    s = enc.qa(q2, A)
    assert len(s.ids) - s.n_prompt == 2  # what the warning counted is what the encoder scores
    # unknown positions: only the cut answers are counted
    assert length_warnings(enc, {"forget": forget}, None) == [
        "forget: 2 of 4 answers truncated to <= 2 tokens by max_length 40"]
    # answers cut to 3 tokens are not flagged
    q3 = next(fill[:n] + "?" for n in range(1, len(fill)) if len(enc.prompt(fill[:n] + "?")) == 37)
    assert length_warnings(enc, {"retain": [_item(7, q3, A)]}, positions) == []


def test_length_warnings_read_text_items(tokenizer):
    enc = Encoder(tokenizer, max_length=3)  # BOS + 2 tokens of a document
    doc = QAItem(id="d", question="", answer="The cat sat on the mat.")
    assert enc.lengths(doc) == (1, len(ids(tokenizer, doc.answer)) + 1)
    assert length_warnings(enc, {"forget": [doc]}, 128) == [
        "forget: 1 of 1 answers truncated to <= 2 tokens by max_length 3"]
