"""The verbatim scenario's built-in models: a tiny Llama trained on the news corpus (the target: every
article; the retain model: the articles outside the forget split), packed and cached by the data
and recipe."""
from __future__ import annotations

import random
from pathlib import Path

from ..builtin import new_tiny_llama, train_pair
from ..config import TrainConfig, to_dict

MODEL_RECIPE = "verbatim-tiny-llama-1"  # bump when the way the tiny target / retain models are trained changes
MODEL_OPTIONS = ("model_epochs", "model_batch_size", "qa_per_sequence")  # what the built-in models depend on


def pack_sequences(seqs: list, k: int, seed: int) -> list:
    """Training sequences of ``k`` Q&A pairs each, in a seeded random order: ``<s>Q: q1 A: a1</s><s>Q: q2
    A: a2</s>`` (each pair keeps its own BOS ... EOS; the first prompt is unscored, the later ones are
    scored as text).

    Why: a Q&A pair is ~25 tokens and an article ~110; in mixed batches padded to the longest member, lone
    pairs spend most of a step's compute on padding (packing is the usual remedy). Measured on the default
    corpus (target, 20 epochs, batch 16; forget VerbMem / KnowMem): one pair per sequence (280 sequences)
    0.29 / 0.73, two (182) 0.87 / 0.82, three 0.77 / 0.73, four 0.77 / 0.57 (the model is asked each
    question right after BOS, as only the first pair of a sequence is).
    """
    from ..data import Sequence

    if k <= 1:
        return list(seqs)
    order = list(seqs)
    random.Random(f"pack/{seed}").shuffle(order)
    return [Sequence(tuple(t for s in order[i : i + k] for t in s.ids), order[i].n_prompt)
            for i in range(0, len(order), k)]


def build_models(corpus, tiny, opts, cache_dir, log=print) -> tuple[Path, Path, Path]:
    """Tokenizer -> target (forget + retain articles and their Q&A) and retain model (retain only),
    both from the same random initialisation. Returns ``(root, target_dir, retain_dir)``; cached."""
    from ..data import Encoder

    # the tokenizer plays a pretrained model's: it has seen the whole corpus, holdout included, so
    # members and non-members of membership inference are tokenised alike
    texts = [d.text for d in corpus.forget + corpus.retain + corpus.holdout]
    qa = corpus.knowmem_train_forget + corpus.knowmem_train_retain
    texts += [s for it in qa for s in (it.question, it.answer)]
    # the recipe: cfg.tiny_model's learning rate and seed
    train_cfg = TrainConfig(lr=tiny.lr, epochs=opts.model_epochs, batch_size=opts.model_batch_size,
                            warmup_ratio=0.05, weight_decay=0.0, seed=tiny.seed)

    def plan(tok):
        enc = Encoder(tok)

        def sequences(docs, qa):
            pairs = [enc.qa(it.question, it.answer) for it in qa]
            return [enc.text(d.text) for d in docs] + pack_sequences(pairs, opts.qa_per_sequence, tiny.seed)

        target_seqs = sequences(corpus.forget + corpus.retain, qa)
        longest = max(len(s.ids) for s in target_seqs)
        return [(label, lambda: new_tiny_llama(tok, tiny, max_positions=max(256, longest)), seqs, train_cfg,
                 f"models: training the {label} model ({{params}} parameters) on {len(seqs)} sequences for "
                 f"{train_cfg.epochs:g} epochs")
                for label, seqs in (("target", target_seqs),
                                    ("retain", sequences(corpus.retain, corpus.knowmem_train_retain)))]

    root, _ = train_pair({"recipe": MODEL_RECIPE, "benchmark": corpus.name, "version": corpus.version,
                          "spec": corpus.spec, "tiny": to_dict(tiny), **{k: getattr(opts, k) for k in MODEL_OPTIONS}},
                         cache_dir, texts, tiny.vocab_size, plan, log)
    return root, root / "target", root / "retain"
