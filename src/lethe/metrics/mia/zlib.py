"""zlib attack (Carlini et al. 2021, "Extracting Training Data from Large Language Models",
USENIX Security, Sec. 5.1): the model's log-perplexity relative to the text's zlib entropy, so that
text that is simply easy to predict (repetitive, low entropy) is not mistaken for memorised text.

    score_i = -NLL_i / zlib_i        NLL_i = mean token NLL (= log-perplexity)
                                     zlib_i = len(zlib.compress(text_i.encode("utf-8")))  (bytes)

Higher = member. Carlini et al.'s code (``np.log(perplexity) / zlib_entropy``), the Min-K% code and
open-unlearning's ``ZLIBAttack`` (``avg_loss / zlib_len``) all use the *mean* NLL (log-perplexity),
not the summed NLL; so does this. zlib at its default level, as in all three.

Which NLL and which text, as open-unlearning (``src/evals/metrics/mia/zlib.py``): the NLL is
``evaluate_probability``'s mean over every labelled token, EOS included (:func:`._tokens.mean_logprob`);
the text is ``extract_target_texts_from_processed_data``: the labelled token ids decoded with
``tokenizer.decode(ids, skip_special_tokens=True)`` (the EOS vanishes, the answer's leading space
and the tokenizer's clean-up stay), not the answer string of the data file.
:func:`lethe.probes_tokens.scored_texts` gives that text; ``lethe.evaluation.membership`` fills
``TokenProbes.texts`` with it.
"""
from __future__ import annotations

import zlib

import numpy as np

from ._tokens import mean_logprob


def zlib_length(text: str) -> int:
    """Bytes of the zlib-compressed UTF-8 text (the paper's "zlib entropy")."""
    return len(zlib.compress(text.encode("utf-8")))


def zlib_scores(logprobs, texts) -> np.ndarray:
    """``logprobs``: N per-token log-prob arrays; ``texts``: the N scored texts (decoded labels,
    :func:`lethe.probes_tokens.scored_texts`) -> (N,) scores = minus open-unlearning's score."""
    ll = mean_logprob(logprobs)  # (N,) = -NLL
    if texts is None or len(texts) != ll.size:
        got = "none" if texts is None else str(len(texts))
        raise ValueError(
            f"the zlib attack needs the text of each scored sequence: {ll.size} sequences, {got} texts "
            "(set TokenProbes.texts)"
        )
    z = np.asarray([zlib_length(str(t)) for t in texts], dtype=np.float64)  # (N,) >= 8 bytes
    return ll / z
