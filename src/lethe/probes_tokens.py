"""Per-token probes: what membership-inference and extraction metrics read (``lethe.metrics.mia``,
``lethe.metrics.extraction``). :func:`token_scores` is one batched, no-grad, teacher-forced scoring pass;
:func:`gradient_norms` is the one probe that needs a backward pass (the gradient-norm attack).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import dist
from .errors import LetheError
from .models import answer_logits

# float32 elements per log-softmax chunk (64 Mi = 256 MiB per tensor): a (tokens, V) log-softmax of a
# whole batch would be 16 GiB for 64 answers of 512 tokens and a 128k vocabulary.
_CHUNK_ELEMENTS = 1 << 24


@dataclass
class TokenProbes:
    """Per-token model outputs on N sequences, in input order: one 1-D array per sequence over its n_i
    scored tokens, in text order:

    * ``logprobs[i][t]``   = log p(x_t | x_<t)                                (float64)
    * ``mu[i][t]``         = E_{z~p(.|x_<t)} [log p(z | x_<t)]                (float64)
    * ``sigma[i][t]``      = sqrt( E_{z~p(.|x_<t)} [(log p(z | x_<t) - mu)^2] ) (float64)
    * ``argmax_hit[i][t]`` = argmax_z p(z | x_<t) == x_t                      (bool)

    The last element of each array is the EOS the encoder appends: metrics that follow open-unlearning's
    per-token helpers drop it (:func:`lethe.metrics.mia._tokens.drop_last`), so both conventions come
    from one pass.
    """

    logprobs: list[np.ndarray]
    mu: list[np.ndarray]
    sigma: list[np.ndarray]
    argmax_hit: list[np.ndarray]
    texts: list[str] | None = None  # the decoded scored tokens (scored_texts), for the zlib attack
    grad_norms: list[np.ndarray] | None = None  # per-tensor norms (gradient_norms), for the gradient-norm attack

    def __len__(self) -> int:
        return len(self.logprobs)

    @property
    def ntokens(self) -> np.ndarray:  # (N,) scored tokens per sequence
        return np.asarray([len(x) for x in self.logprobs], dtype=np.int64)


def answer_logit_batches(model, seqs, pad_id: int, batch_size: int):
    """``(indices, logits, labels)`` (:func:`lethe.models.answer_logits`, no grad) of ``seqs`` in batches of
    similar length; launched as several processes, each gets its share (:func:`lethe.dist.passes`).

    A sequence that stands twice in a batch (a paraphrase that is the answer itself, as in TOFU's world facts
    and real authors) goes through the model once: each row's logits depend on its own tokens and the batch's
    padded length alone, so both copies get the numbers they would get one by one (bit for bit)."""
    import torch

    from .data import collate

    device = next(model.parameters()).device
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i].ids))
    starts = range(0, len(order), batch_size)
    with torch.no_grad():
        for b, kept in dist.passes(len(starts)):  # a sharded model: as many passes in every process
            idx = order[starts[b] : starts[b] + batch_size]
            first: dict = {}
            unique, inverse = [], []
            for i in idx:
                key = (seqs[i].ids, seqs[i].n_prompt)
                if key not in first:
                    first[key] = len(unique)
                    unique.append(seqs[i])
                inverse.append(first[key])
            logits, labels = answer_logits(model, collate(unique, pad_id).to(device))
            if not kept:
                continue
            if len(unique) < len(idx):  # the same padded length and first answer position: the batch's own tensors
                sel = torch.tensor(inverse, device=device)
                logits, labels = logits[sel], labels[sel]
            yield idx, logits, labels


def vocab_stats(logits, targets):
    """``mu``, ``sigma`` (S,) float32 and argmax ``hit`` (S,) bool of ``logits`` (S, V) at S scored positions
    and their true next tokens ``targets`` (S,), with p = softmax(logits):

        mu    = sum_z p(z) log p(z)                      (= minus the entropy)
        sigma = sqrt( sum_z p(z) (log p(z) - mu)^2 )

    (Zhang et al. 2024, "Min-K%++", Eq. 3-4.) The variance is computed centred, never negative (the
    reference code's E[log p^2] - mu^2 up to rounding); tokens with p = 0 contribute 0, not NaN. ``hit``:
    the greedy choice (the first maximal index on ties). In chunks of positions.
    """
    import torch
    import torch.nn.functional as F

    S, V = logits.shape
    mu = torch.empty(S, dtype=torch.float32, device=logits.device)
    sigma = torch.empty(S, dtype=torch.float32, device=logits.device)
    hit = torch.empty(S, dtype=torch.bool, device=logits.device)
    rows = max(1, _CHUNK_ELEMENTS // max(V, 1))
    for s in range(0, S, rows):
        logp = F.log_softmax(logits[s : s + rows].float(), dim=-1)  # (r, V)
        p = logp.exp()
        live = p > 0
        m = torch.where(live, p * logp, 0.0).sum(-1)  # (r,)
        var = torch.where(live, p * (logp - m[:, None]).square(), 0.0).sum(-1)  # (r,)
        mu[s : s + rows] = m
        sigma[s : s + rows] = var.sqrt()
        hit[s : s + rows] = logp.argmax(-1) == targets[s : s + rows]
    return mu, sigma, hit


def token_scores(model, seqs, pad_id: int, batch_size: int = 64) -> TokenProbes:
    """:class:`TokenProbes` of the scored (answer) tokens of many sequences, batched as
    :func:`lethe.probes.score_sequences`: ``logprobs[i].sum()`` is its summed log-prob of sequence i."""
    from .ops import token_logprobs

    lp, mu, sd, hit = ([None] * len(seqs) for _ in range(4))
    done = []
    for idx, logits, labels in answer_logit_batches(model, seqs, pad_id, batch_size):  # (B, T', V), (B, T')
        done += idx
        logp, mask = token_logprobs(logits, labels)  # (B, T'-1) each
        scored = mask.bool()  # (B, T'-1): position t predicts a scored token
        counts = scored.sum(dim=1).tolist()
        cap = max(1, _CHUNK_ELEMENTS // max(logits.size(-1), 1))  # scored positions per gathered run of rows
        b = 0
        while b < len(idx):  # runs of rows whose scored logits fit one chunk: never an (all tokens, V) copy
            e, n = b + 1, counts[b]
            while e < len(idx) and n + counts[e] <= cap:
                n += counts[e]
                e += 1
            r = scored[b:e]
            m, s, h = vocab_stats(logits[b:e, :-1][r], labels[b:e, 1:][r])  # (n,) each, row after row
            cuts = np.cumsum(counts[b:e])[:-1]
            for i, x, y, z, w in zip(idx[b:e], np.split(logp[b:e][r].double().cpu().numpy(), cuts),
                                     np.split(m.double().cpu().numpy(), cuts), np.split(s.double().cpu().numpy(), cuts),
                                     np.split(h.cpu().numpy(), cuts)):
                lp[i], mu[i], sd[i], hit[i] = x, y, z, w
            b = e
    dist.share_rows(done, lp, mu, sd, hit)
    return TokenProbes(logprobs=lp, mu=mu, sigma=sd, argmax_hit=hit)


def scored_texts(tokenizer, seqs) -> list[str]:
    """The text of each sequence's scored tokens as open-unlearning's zlib attack reads it
    (``src/evals/metrics/utils.py``, ``extract_target_texts_from_processed_data``): the labelled ids,
    EOS included, through ``tokenizer.decode(ids, skip_special_tokens=True)``, so the EOS is gone and
    the answer keeps the leading space it was tokenised with."""
    return [tokenizer.decode(list(s.ids[s.n_prompt :]), skip_special_tokens=True) for s in seqs]


def gradient_norms(model, seqs, pad_id: int, keep_last: bool = False) -> list[np.ndarray]:
    """Per-tensor L2 norms of the gradient of each sequence's mean answer NLL.

        L_i   = -(1/|A_i|) sum_{t in A_i} log p_theta(x_it | x_i<t)
        g_ij  = || grad_{theta_j} L_i ||_2                       -> grad_norms[i] = (g_i1, ..., g_iP_i)

    A_i: the scored (answer) positions of sequence i but the last (the EOS), as open-unlearning's
    ``GradNormAttack``; ``keep_last=True`` keeps it (the training loss). The theta_j: the ``requires_grad``
    tensors the loss reaches (a LoRA model's adapter); one not reached is left out (open-unlearning skips
    ``param.grad is None``). One forward and backward per sequence (open-unlearning's ``batch_size: 1``)
    through ``torch.autograd.grad``: parameters and ``.grad`` stay as they were. Call it in ``eval()`` mode
    (open-unlearning switches to ``train()``: the same without dropout).
    """
    import torch

    from .data import collate
    from .ops import token_logprobs

    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise LetheError("gradient norms need trainable parameters, but every parameter of the model has "
                         "requires_grad=False (a frozen reference?); unfreeze them with p.requires_grad_(True)")
    device = params[0].device
    out: list = [None] * len(seqs)
    with torch.enable_grad():
        for i in dist.mine(len(seqs)):  # one sequence a pass: processes take every N-th
            enc = collate([seqs[i]], pad_id).to(device)
            logp, mask = token_logprobs(*answer_logits(model, enc))  # (1, T'-1) each
            lp = logp[0][mask[0].bool()]  # (n_i,) scored positions in text order, the EOS last
            if not keep_last:
                lp = lp[:-1]
            if lp.numel() == 0:
                raise ValueError(f"sequence {i} has no scored token left without its last position (the EOS); give "
                                 "it a non-empty answer, or pass keep_last=True")
            grads = torch.autograd.grad(-lp.mean(), params, allow_unused=True)
            norms = [float(torch.linalg.vector_norm(g.detach().float())) for g in grads if g is not None]  # fp32 sums
            out[i] = np.asarray(norms, dtype=np.float64)
            del grads
    dist.share_rows(dist.mine(len(seqs)), out)
    return out
