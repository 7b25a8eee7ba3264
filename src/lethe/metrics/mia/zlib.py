"""zlib attack (Carlini et al. 2021, "Extracting Training Data from Large Language Models",
USENIX Security, Sec. 5.1): the model's log-perplexity relative to the text's zlib entropy, so that
text that is simply easy to predict (repetitive, low entropy) is not mistaken for memorised text.

    score_i = -NLL_i / zlib_i        NLL_i = mean token NLL (= log-perplexity)
                                     zlib_i = len(zlib.compress(text_i.encode("utf-8")))  (bytes)

Higher = member. Carlini et al.'s code (``np.log(perplexity) / zlib_entropy``), the Min-K% code and
open-unlearning's ``ZLIBAttack`` (``avg_loss / zlib_len``) use the *mean* NLL and zlib's default level, as
this. As open-unlearning, the NLL covers every labelled token, EOS included, and the text is the labelled
ids decoded with ``skip_special_tokens=True`` (:func:`lethe.probes_tokens.scored_texts`), not the data's answer.
"""
from __future__ import annotations

import zlib

import numpy as np

from ._tokens import mean_logprob


def zlib_scores(logprobs, texts) -> np.ndarray:
    """``logprobs``: N per-token log-prob arrays; ``texts``: the N scored texts (decoded labels,
    :func:`lethe.probes_tokens.scored_texts`) -> (N,) scores = minus open-unlearning's score."""
    ll = mean_logprob(logprobs)  # (N,) = -NLL
    if texts is None or len(texts) != ll.size:
        got = "none" if texts is None else str(len(texts))
        raise ValueError(f"the zlib attack needs the text of each scored sequence: {ll.size} sequences, {got} texts "
                         "(set TokenProbes.texts)")
    z = np.asarray([len(zlib.compress(str(t).encode("utf-8"))) for t in texts], dtype=np.float64)  # (N,) bytes
    return ll / z
