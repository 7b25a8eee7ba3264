"""GCG: an adversarial suffix found by Greedy Coordinate Gradient search (Zou et al. 2023).

Zou, Wang, Carlini, Nasr, Kolter, Fredrikson 2023, "Universal and Transferable Adversarial Attacks on
Aligned Language Models". A suffix of ``suffix_length`` tokens is appended to the user's request and
optimised so that the model's reply begins with a target string. The loss is the paper's adversarial
loss, ``-log p(target | prompt + suffix)``, over the first ``target_tokens`` target tokens and divided by
their number (a mean NLL per token). One step of Algorithm 1:

1. the gradient of the loss w.r.t. the one-hot suffix matrix, ``d L / d e_{x_i}`` for every position i;
2. per position, the ``topk`` tokens with the most negative gradient (largest expected decrease);
3. ``batch_size`` candidates, each the current suffix with ONE random position set to one random
   token of that position's top-k;
4. the loss of every candidate (batched forward passes); the suffix becomes the best candidate.

The best suffix over all steps is returned. "Universal" suffixes (Algorithm 2) are optimised over
several (request, target) pairs at once: the loss is the sum of the pairs' losses (reported divided by
their number, so it reads as a per-token NLL). The paper adds the prompts one at a time as each
succeeds; Lethe uses all of them from the first step, which is simpler and optimises the same objective.

Two filters keep the search honest, as the reference implementation does: special tokens (BOS, EOS,
padding, any added token) and, unless ``allow_non_ascii``, tokens that do not decode to printable
ASCII are never candidates; and a candidate is kept only if its decoded text, put back into the
request (``with_suffix``) and tokenised the normal way (:class:`lethe.data.Encoder`), gives exactly the
candidate's ids in every prompt. So the suffix found is the string a user would type, and the loss is
the one that string gets. The ids are laid out by :func:`split_prompt`; the space before the suffix
belongs to the suffix's tokens (byte-level and SentencePiece tokenizers glue a space to the word after it).

The model is not changed: ``requires_grad`` and its train/eval mode are restored after the search.
"""
from __future__ import annotations

import inspect
import time
from dataclasses import asdict, dataclass, field, replace

import torch

from ..data import answer_ids, bos_ids, prompt_text
from ..config import check_fields, is_int
from ..errors import LetheError
from ..ops import IGNORE, sequence_nll
from . import attack_config


def with_suffix(request: str, suffix: str) -> str:
    """The request a user would send: ``request + " " + suffix``."""
    return f"{request} {suffix}"


@dataclass(frozen=True)
class GCGConfig:
    suffix_length: int = 12  # suffix tokens (the paper: 20)
    steps: int = 40  # optimisation steps T (the paper: 500)
    topk: int = 32  # k: candidate tokens per position (the paper: 256)
    batch_size: int = 64  # B: candidates evaluated per step (the paper: 512)
    target_tokens: int = 12  # the loss covers the target's first tokens (its EOS included if shorter)
    n_prompts: int = 4  # the registered attack: optimise on the first n forget items
    init: str = "!"  # the start suffix: init repeated with spaces, cut to suffix_length tokens ("! ! ! ...")
    seed: int = 0  # the torch.Generator drawing candidate positions and tokens
    allow_non_ascii: bool = False  # also search tokens that do not decode to printable ASCII
    early_stop: bool = True  # stop once the best suffix makes every prompt's greedy reply begin with its target

    def check(self, prefix: str = "attacks.gcg") -> None:
        ints = {"suffix_length": (1, 512), "steps": (1, 100_000), "topk": (1, 1_000_000),
                "batch_size": (1, 65_536), "target_tokens": (1, 4096), "n_prompts": (1, 100_000)}
        check_fields(prefix, [
            *((not is_int(v := getattr(self, k)) or not lo <= v <= hi, k,
               f"must be an integer in [{lo}, {hi}], got {v!r}") for k, (lo, hi) in ints.items()),
            (not isinstance(self.init, str) or not self.init.strip() or self.init != self.init.strip(), "init",
             f"must be non-empty text without leading or trailing whitespace, got {self.init!r}"),
            (not is_int(self.seed), "seed", f"must be an integer, got {self.seed!r}"),
            *((not isinstance(getattr(self, k), bool), k, f"must be true or false, got {getattr(self, k)!r}")
              for k in ("allow_non_ascii", "early_stop")),
        ])


@dataclass
class GCGResult:
    suffix: str  # the text to append: with_suffix(request, suffix)
    suffix_ids: list[int]
    losses: list[float]  # per step: the loss of the step's best candidate (the new current suffix)
    initial_loss: float  # loss of the start suffix
    best_loss: float  # loss of the returned suffix (the lowest seen)
    steps: int  # steps run (fewer than cfg.steps after an early stop)
    seconds: float
    success: bool = False  # every prompt's greedy reply begins with its target, given the returned suffix
    prompts: int = 0
    config: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)


# --- prompt layout ---------------------------------------------------------------------------------

_MARK = "\u27e6lethe-gcg-suffix\u27e7"  # stands for the suffix while the chat template is rendered


@dataclass(frozen=True)
class SuffixPrompt:
    """One (request, target) pair as ids around the suffix: ``prefix + suffix + after + answer`` is
    ``Encoder.qa(with_suffix(request, suffix), target).ids`` (before any max_length cut)."""

    request: str
    prefix: tuple[int, ...]  # (BOS), the template and the request
    after: tuple[int, ...]  # the rest of the template, up to where the answer starts
    answer: tuple[int, ...]  # the target as Encoder.qa scores it: leading space, EOS

    def ids(self, suffix_ids) -> list[int]:
        return [*self.prefix, *suffix_ids, *self.after, *self.answer]


def split_prompt(tokenizer, request: str, target: str, suffix: str) -> tuple[SuffixPrompt, list[int]]:
    """``(prompt, suffix_ids)``: the Encoder's ids of ``with_suffix(request, suffix)`` + ``target``, cut
    where the suffix's characters (with the space before it) begin and end. Needs a fast tokenizer
    (token offsets)."""
    if not getattr(tokenizer, "is_fast", False):
        raise LetheError("attack 'gcg' needs a fast (Rust) tokenizer for token offsets; load it with use_fast=True")
    marked = prompt_text(tokenizer, with_suffix(request, _MARK))  # before + _MARK + after
    if marked.count(_MARK) != 1:
        raise LetheError("attack 'gcg': the tokenizer's chat template does not insert the user's message verbatim; "
                         "GCG needs to know where the suffix sits")
    before, after_text = marked.split(_MARK)
    text = before + suffix + after_text
    if text != prompt_text(tokenizer, with_suffix(request, suffix)):
        raise LetheError(f"attack 'gcg': the chat template changes the suffix {suffix!r}; use a suffix without "
                         "leading/trailing whitespace")
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    start, end = len(before) - 1, len(before) + len(suffix)  # the space before the suffix, then the suffix
    pre, mid, post = [], [], []
    for tok_id, (a, b) in zip(ids, offsets):  # tokens come in order: template+request | suffix | template
        if not mid and not post and b <= start:
            pre.append(tok_id)
        elif not post and a < end:
            if a < start or b > end:  # a token that merges the suffix with its neighbours
                raise LetheError(f"attack 'gcg': under this tokenizer the suffix {suffix!r} merges with the text "
                                 "around it; choose another attacks.gcg.init")
            mid.append(tok_id)
        else:
            post.append(tok_id)
    bos = bos_ids(tokenizer)
    pre = pre if ids[:1] == bos else bos + pre
    answer = answer_ids(tokenizer, text, target)
    return SuffixPrompt(request, tuple(pre), tuple(post), tuple(answer)), mid


def _suffix_text(tokenizer, suffix_ids) -> str:
    """The text of suffix ids: decoded, less the space that joins it to the request."""
    text = tokenizer.decode(list(suffix_ids), skip_special_tokens=False, clean_up_tokenization_spaces=False)
    return text.removeprefix(" ")


def _keep(tokenizer, prompts: list[SuffixPrompt], cands: list[list[int]]) -> list[int]:
    """Indices of the candidates whose text gives back exactly their ids in every prompt (the
    re-tokenisation filter), without leading/trailing whitespace a template or a user would strip."""
    texts = tokenizer.batch_decode(cands, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    texts = [t.removeprefix(" ") for t in texts]
    ok = [bool(t) and t == t.strip() for t in texts]
    bos = bos_ids(tokenizer)
    for p in prompts:
        todo = [i for i in range(len(cands)) if ok[i]]
        if not todo:
            break
        # lethe.data.prompt_ids of every candidate's prompt, in one batched tokenizer call
        full = tokenizer([prompt_text(tokenizer, with_suffix(p.request, texts[i])) for i in todo],
                         add_special_tokens=False)["input_ids"]
        for i, ids in zip(todo, full):
            ok[i] = (ids if ids[:1] == bos else bos + ids) == [*p.prefix, *cands[i], *p.after]
    return [i for i in range(len(cands)) if ok[i]]


def allowed_tokens(tokenizer, vocab: int, allow_non_ascii: bool = False) -> torch.Tensor:
    """Mask (vocab,) of tokens the search may use: no special or added token, no id the tokenizer
    does not know, and (unless ``allow_non_ascii``) only tokens that decode to printable ASCII."""
    n = min(len(tokenizer), vocab)
    mask = torch.zeros(vocab, dtype=torch.bool)
    mask[:n] = True
    banned = set(tokenizer.all_special_ids) | set(getattr(tokenizer, "added_tokens_decoder", {}) or {})
    mask[[i for i in banned if 0 <= i < vocab]] = False
    if not allow_non_ascii:
        texts = tokenizer.batch_decode([[i] for i in range(n)], skip_special_tokens=False,
                                       clean_up_tokenization_spaces=False)
        mask[[i for i, t in enumerate(texts) if not (t.isascii() and t.isprintable())]] = False
    return mask


# --- losses ------------------------------------------------------------------------------------------

def _logits_tail(model, n: int, **inputs) -> torch.Tensor:
    """Logits of the last ``n`` positions, (B, n, V); the LM head runs on those only where the model
    supports ``logits_to_keep``."""
    kw = {"logits_to_keep": n} if "logits_to_keep" in inspect.signature(model.forward).parameters else {}
    return model(**inputs, use_cache=False, **kw).logits[:, -n:, :]


def _target_stats(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean target NLL (B,) and whether greedy decoding reproduces the target (B,), from the logits of
    the last n+1 positions (B, n+1, V) of sequences ending with the n target tokens."""
    B, n = logits.size(0), target.numel()
    labels = torch.full((B, n + 1), IGNORE, dtype=torch.long, device=logits.device)
    labels[:, 1:] = target
    nll = sequence_nll(logits, labels)  # the training NLL's code (lethe.ops)
    # greedy continuation begins with the target <=> every target token is the argmax given the ones before
    hit = (logits[:, :-1, :].argmax(-1) == target).all(-1)
    return nll, hit


@torch.no_grad()
def _candidate_losses(model, prompts, targets, cands: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Loss (C,) of each candidate suffix (C, L), averaged over the prompts, and whether it makes every
    prompt's greedy reply begin with its target (C,)."""
    C = cands.size(0)
    total = torch.zeros(C, device=cands.device)
    hit_all = torch.ones(C, dtype=torch.bool, device=cands.device)
    for p, tgt in zip(prompts, targets):
        pre = torch.tensor(p.prefix, dtype=torch.long, device=cands.device).expand(C, -1)
        post = torch.tensor(p.after, dtype=torch.long, device=cands.device).expand(C, -1)
        ids = torch.cat([pre, cands, post, tgt.expand(C, -1)], dim=1)  # (C, T)
        nll, hit = _target_stats(_logits_tail(model, tgt.numel() + 1, input_ids=ids), tgt)
        total += nll.float()
        hit_all &= hit
    return total / len(prompts), hit_all


def _suffix_gradient(model, embed, prompts, targets, suffix: torch.Tensor) -> torch.Tensor:
    """Gradient of the loss w.r.t. the one-hot suffix matrix, (L, V).

    With e_i = W^T x_i (x_i one-hot), dL/dx_i = W dL/de_i: the gradient w.r.t. the suffix's input
    embeddings times the embedding matrix. A model that scales its embeddings by a constant changes
    the gradient by that positive factor only, so the top-k tokens stay the same.
    """
    W = embed.weight  # (V, d)
    e = embed(suffix).detach().requires_grad_(True)  # (L, d)
    with torch.enable_grad():
        for p, tgt in zip(prompts, targets):
            with torch.no_grad():
                pre = embed(torch.tensor(p.prefix, dtype=torch.long, device=W.device))  # (P, d)
                post = embed(torch.cat([torch.tensor(p.after, dtype=torch.long, device=W.device), tgt]))
            x = torch.cat([pre, e, post])[None]  # (1, T, d)
            nll, _ = _target_stats(_logits_tail(model, tgt.numel() + 1, inputs_embeds=x), tgt)
            (nll.sum() / len(prompts)).backward()
    return e.grad @ W.detach().T  # (L, V)


# --- the search --------------------------------------------------------------------------------------

def gcg_suffix(model, tokenizer, requests: list[str], targets: list[str], cfg: GCGConfig) -> GCGResult:
    """One adversarial suffix for all ``(request, target)`` pairs (Algorithm 1; Algorithm 2 with all
    prompts from the start). Deterministic for a seed on given hardware; the model is left as it was."""
    cfg.check()
    if not requests or len(requests) != len(targets):
        raise LetheError(f"attack 'gcg': needs as many targets as requests (at least one), got "
                         f"{len(requests)} requests and {len(targets)} targets")
    t0 = time.perf_counter()
    embed = model.get_input_embeddings()
    device, vocab = embed.weight.device, embed.weight.size(0)

    # start suffix: init repeated, laid out in the first prompt, cut to suffix_length tokens
    start = " ".join([cfg.init] * cfg.suffix_length)
    init_ids = split_prompt(tokenizer, requests[0], targets[0], start)[1][: cfg.suffix_length]
    init_text = _suffix_text(tokenizer, init_ids)
    prompts = [split_prompt(tokenizer, r, t, init_text)[0] for r, t in zip(requests, targets)]
    allowed = allowed_tokens(tokenizer, vocab, cfg.allow_non_ascii)
    if not all(allowed[i] for i in init_ids) or not _keep(tokenizer, prompts, [init_ids]):
        raise LetheError(f"attack 'gcg': the start suffix {init_text!r} ({cfg.suffix_length} tokens of "
                         f"attacks.gcg.init={cfg.init!r} repeated) holds an excluded token or does not tokenise "
                         "back to itself; choose another init or suffix_length")
    k = min(cfg.topk, int(allowed.sum()))
    tgts = [torch.tensor(p.answer[: cfg.target_tokens], dtype=torch.long, device=device) for p in prompts]
    gen = torch.Generator().manual_seed(cfg.seed)

    was_training = model.training
    grad_flags = [(q, q.requires_grad) for q in model.parameters()]
    try:
        model.eval()
        for q, _ in grad_flags:
            q.requires_grad_(False)
        current = torch.tensor(init_ids, dtype=torch.long, device=device)  # (L,)
        loss, hit = _candidate_losses(model, prompts, tgts, current[None])
        initial = best_loss = float(loss[0])
        best, best_hit = current.clone(), bool(hit[0])
        losses: list[float] = []  # one per step
        ban = ~allowed.to(device)
        while len(losses) < cfg.steps and not (cfg.early_stop and best_hit):
            grad = _suffix_gradient(model, embed, prompts, tgts, current)  # (L, V)
            top = (-grad.float()).masked_fill(ban, float("-inf")).topk(k, dim=-1).indices.cpu()  # (L, k)
            pos = torch.randint(0, current.numel(), (cfg.batch_size,), generator=gen)
            pick = torch.randint(0, k, (cfg.batch_size,), generator=gen)
            cands = current.cpu().repeat(cfg.batch_size, 1)  # (B, L)
            cands[torch.arange(cfg.batch_size), pos] = top[pos, pick]
            keep = _keep(tokenizer, prompts, cands.tolist())
            if not keep:  # every candidate failed the re-tokenisation filter: keep the suffix, draw again
                losses.append(losses[-1] if losses else initial)
                continue
            cands = cands[keep].to(device)
            loss, hit = _candidate_losses(model, prompts, tgts, cands)
            j = int(loss.argmin())
            current = cands[j]
            losses.append(float(loss[j]))
            if float(loss[j]) < best_loss:
                best_loss, best, best_hit = float(loss[j]), current.clone(), bool(hit[j])
    finally:
        for q, flag in grad_flags:
            q.requires_grad_(flag)
        model.train(was_training)

    ids = best.tolist()
    return GCGResult(suffix=_suffix_text(tokenizer, ids), suffix_ids=ids, losses=losses, initial_loss=initial,
                     best_loss=best_loss, steps=len(losses), seconds=time.perf_counter() - t0, success=best_hit,
                     prompts=len(prompts), config=asdict(cfg))


def gcg_attack(model, tokenizer, forget, retain, options=None):
    """The ``gcg`` attack (registered in :mod:`lethe.attacks`): one suffix searched on the first ``n_prompts``
    forget items (request: the question, target: the answer), appended to every forget question; those it
    was optimised on (``optimised_on``) are judged too, items without a question are left out."""
    cfg = attack_config(GCGConfig, "gcg", options)
    items = [it for it in forget if it.question]
    if not items:
        raise LetheError("attack 'gcg': no forget item has a question; GCG appends its suffix to questions")
    train = items[: cfg.n_prompts]
    res = gcg_suffix(model, tokenizer, [it.question for it in train], [it.answer for it in train], cfg)
    attacked = [replace(it, question=with_suffix(it.question, res.suffix)) for it in items]
    return model, {"attack": "gcg", "suffix": res.suffix, "seconds": res.seconds,
                   "optimised_on": [it.id for it in train], "gcg": res.to_json(),
                   "eval_forget_items": attacked, "eval_forget_ids": [it.id for it in attacked]}
