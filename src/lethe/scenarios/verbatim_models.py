"""The verbatim scenario's built-in models: a tiny Llama trained on the news corpus (the target: every
article; the retain model: the articles outside the forget split), packed and cached by the data
and recipe."""
from __future__ import annotations

from pathlib import Path

MODEL_RECIPE = "verbatim-tiny-llama-1"  # bump when the way the tiny target / retain models are trained changes


MODEL_OPTIONS = ("model_epochs", "model_batch_size", "qa_per_sequence")  # what the built-in models depend on


def model_root(corpus, tiny, opts, cache_dir) -> Path:
    from ..builtin import content_hash
    from ..config import to_dict

    key = content_hash({"recipe": MODEL_RECIPE, "benchmark": corpus.name, "version": corpus.version,
                        "spec": corpus.spec, "tiny": to_dict(tiny), **{k: getattr(opts, k) for k in MODEL_OPTIONS}})
    return Path(cache_dir) / "models" / key


def model_train_config(tiny, opts):
    """The recipe of the tiny target and retain models: cfg.tiny_model's learning rate and seed."""
    from ..config import TrainConfig

    return TrainConfig(lr=tiny.lr, epochs=opts.model_epochs, batch_size=opts.model_batch_size,
                       warmup_ratio=0.05, weight_decay=0.0, seed=tiny.seed)


def pack_sequences(seqs: list, k: int, seed: int) -> list:
    """Training sequences of ``k`` Q&A pairs each, in a seeded random order: ``<s>Q: q1 A: a1</s><s>Q: q2
    A: a2</s>`` (each pair keeps its own BOS ... EOS; the first prompt is unscored, the later ones are
    scored as text).

    Why: a Q&A pair is ~25 tokens and an article ~110; in mixed batches padded to the longest member,
    lone pairs spend most of a step's compute on padding. Packing is the usual remedy of language-model
    training. Measured on the default corpus (target, 20 epochs, batch 16; forget VerbMem / KnowMem):
    one pair per sequence (280 sequences) 0.29 / 0.73, two (182) 0.87 / 0.82, three 0.77 / 0.73,
    four 0.77 / 0.57 (the model is asked each question right after BOS, as only the first pair of a
    sequence is).
    """
    import random

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
    from ..builtin import record_training_seconds
    from ..data import Encoder
    from ..models import load_tokenizer, save_model, tiny_llama, train_tokenizer
    from ..loop import finetune

    root = model_root(corpus, tiny, opts, cache_dir)
    target_dir, retain_dir = root / "target", root / "retain"
    if target_dir.exists() and retain_dir.exists():
        log(f"models: from cache {root}")
        return root, target_dir, retain_dir
    done = target_dir if target_dir.exists() else retain_dir if retain_dir.exists() else None
    if done is not None:
        tok = load_tokenizer(done)
    else:
        # the tokenizer plays a pretrained model's: it has seen the whole corpus, holdout included, so
        # members and non-members of membership inference are tokenised alike
        texts = [d.text for d in corpus.forget + corpus.retain + corpus.holdout]
        qa = corpus.knowmem_train_forget + corpus.knowmem_train_retain
        texts += [s for it in qa for s in (it.question, it.answer)]
        tok = train_tokenizer(texts, tiny.vocab_size)
    enc = Encoder(tok)
    train_cfg = model_train_config(tiny, opts)

    def sequences(docs, qa):
        pairs = [enc.qa(it.question, it.answer) for it in qa]
        return [enc.text(d.text) for d in docs] + pack_sequences(pairs, opts.qa_per_sequence, tiny.seed)

    jobs = [("target", target_dir, sequences(corpus.forget + corpus.retain,
                                             corpus.knowmem_train_forget + corpus.knowmem_train_retain)),
            ("retain", retain_dir, sequences(corpus.retain, corpus.knowmem_train_retain))]
    longest = max(len(s.ids) for s in jobs[0][2])
    for label, folder, seqs in jobs:
        if folder.exists():
            continue
        model = tiny_llama(len(tok), tiny.hidden_size, tiny.num_layers, tiny.num_heads, tiny.intermediate_size,
                           max_positions=max(256, longest), seed=tiny.seed, bos_token_id=tok.bos_token_id,
                           eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
        log(f"models: training the {label} model ({sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters) "
            f"on {len(seqs)} sequences for {train_cfg.epochs:g} epochs")
        model, st = finetune(model, tok, seqs, train_cfg, f"train {label} model")
        save_model(model, tok, folder)
        record_training_seconds(root, label, st.seconds)
    return root, target_dir, retain_dir


# ------------------------------------------------------------------------------------------------
# The run
