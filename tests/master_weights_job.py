"""``torchrun ... tests/master_weights_job.py SHARDING MASTER OUT``: a tiny bf16 Llama fine-tuned at lr 1e-5
(tests/test_launch.py); the first process saves the update of every weight and the training's statistics."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import conftest  # noqa: E402  (the tests' tokenizer corpus, items and tiny shape)


def trained(sharding: str, master: bool) -> tuple[torch.Tensor, dict]:
    from lethe.config import TrainConfig
    from lethe.data import Encoder
    from lethe.loop import finetune
    from lethe.models import tiny_llama, train_tokenizer

    tok = train_tokenizer(conftest.CORPUS, vocab_size=320)
    model = tiny_llama(len(tok), seed=0, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                       pad_token_id=tok.pad_token_id, **conftest.TINY).to(torch.bfloat16)
    before = [p.detach().float().clone() for p in model.parameters()]
    enc = Encoder(tok)
    seqs = [enc.qa(it.question, it.answer) for it in conftest._items(conftest.FORGET + conftest.RETAIN)]
    cfg = TrainConfig(lr=1e-5, epochs=40, batch_size=2, grad_accum=2, warmup_ratio=0.0, seed=3,
                      master_weights=master, sharding=sharding)
    model, stats = finetune(model, tok, seqs, cfg)
    update = torch.cat([(p.detach().float() - b).reshape(-1) for p, b in zip(model.parameters(), before)])
    return update, {"unmoved": stats.unmoved, "master_weights": stats.master_weights, "sharding": stats.sharding,
                    "world_size": stats.world_size}


if __name__ == "__main__":
    update, stats = trained(sys.argv[1], sys.argv[2] == "true")
    if os.environ.get("RANK", "0") == "0":
        torch.save(update, sys.argv[3] + ".pt")
        Path(sys.argv[3] + ".json").write_text(json.dumps(stats))
