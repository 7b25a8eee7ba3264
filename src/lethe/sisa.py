"""SISA-style exact unlearning on the built-in benchmark: shard models, retrain the shards that held
the deleted data, aggregate at inference (Bourtoule et al. 2021, "Machine Unlearning", IEEE S&P;
docs/paper_index.md, ``sisa``). Three of SISA's four parts:

* **Sharded.** Whole training authors (``QAItem.group``, the unit of deletion) go to ``S`` disjoint
  shards of near-equal size, uniformly at random, drawn from the author list and the seed only.
* **Isolated.** One model per shard, fine-tuned from the cached base model (shared as the paper's
  transfer-learning setting shares a pretrained model) on its authors' facts plus the world replay,
  with the target's recipe (``TinyModelConfig`` lr / epochs / batch size).
* **Aggregated.** The mean of the shards' next-token distributions: the soft variant of the paper's
  default majority vote, and the only one that gives the log-probabilities the scoring metrics read.
* **Not sliced.** No per-slice checkpoints: a deletion retrains its shards from the base model.

A deletion retrains exactly the shards that held a forget author; untouched shards are reused (the same
files) and a shard left without authors is dropped. :func:`build_sisa` checks exactness from the author
lists recorded with each shard, not from the assignment it intended.

Cache (beside the target, under the built-in models' key ``cache_dir/models/<key>/``)::

    sisa-<S>/shard-<k>/           shard k trained on all its authors (the model before any deletion)
    sisa-<S>/shard-<k>.json       its authors, training seconds, steps, sequences
    sisa-<S>-<split>/shard-<k>/   shard k retrained without the split's forget authors (only those shards)
    timings.json                  training seconds of base, target and retain models (pipeline)

``<S>`` carries ``-seed<n>`` / ``-lora<r>`` when those options differ from the defaults. A deletion of
``m`` authors over ``S`` shards retrains about ``S (1 - (1 - 1/S)^m)`` of them, and every shard replays
the whole world-knowledge set: SISA pays off for small deletions (forget01) and can cost more than one
full retrain for forget10; the results row (``res.train``) reports what it did cost.
"""
from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from .benchmarks.base import atomic_write_text
from .builtin import (author_sequences, build_builtin_models, builtin_finetune_config, builtin_model_root,
                      recorded_training_seconds, world_sequences)
from .data import Encoder
from .errors import LetheError
from .inference import CombinedLM
from .loop import accelerator, finetune
from .models import add_lora, load_model, save_model

PAPER = "Bourtoule et al. 2021, Machine Unlearning (IEEE S&P): SISA training, sharded and aggregated (no slices)"
EXACT = "exact: no shard in the ensemble saw a forget author"


@dataclass(frozen=True)
class SISAConfig:
    shards: int = 5  # S constituent models; more shards: cheaper deletions, each model sees less (5: ~20 authors)
    seed: int = 0  # seeds the random assignment of authors to shards
    # 0: a full fine-tune of each shard (the target's recipe); r > 0: a LoRA of rank r (alpha 2r) on every
    # linear layer, merged afterwards. Measured on the demo model, one shard (20 epochs, 1 CPU thread),
    # probability / ROUGE-L of its own facts: full 0.93 / 0.98 (63 s); LoRA r=8 0.04 / 0.20 (50 s); r=32
    # 0.05 / 0.31 (75 s): a LoRA does not memorise a shard at this scale, nor is it much cheaper.
    lora_r: int = 0

    def check(self) -> None:
        if self.shards < 2:
            raise LetheError(f"sisa: option 'shards' must be >= 2 (one shard is the retain model), got {self.shards}; "
                             "set it with shards=...")
        if self.lora_r < 0:
            raise LetheError(f"sisa: option 'lora_r' must be >= 0 (0: full fine-tune of each shard), got "
                             f"{self.lora_r}; set it with lora_r=...")


# --- sharding ------------------------------------------------------------------------------------

def author_ids(bench) -> list[str]:
    """The training authors (``group`` of ``bench.splits["authors"]``), in order of first appearance."""
    ids: dict[str, None] = {}
    for it in bench.splits["authors"]:
        if not it.group:
            raise LetheError(f"sisa: author item '{it.id}' has no group; SISA shards whole authors")
        ids.setdefault(it.group, None)
    return list(ids)


def assign_shards(authors: list[str], shards: int, seed: int = 0) -> list[list[str]]:
    """Whole authors to ``shards`` disjoint shards, uniformly at random (seeded), sizes differing by at
    most one: shuffle the sorted author ids, deal them out in turn. Each shard's list comes back sorted."""
    if shards > len(authors):
        raise LetheError(f"sisa: option 'shards' ({shards}) exceeds the number of training authors "
                         f"({len(authors)}); set shards=... to at most {len(authors)}")
    order = sorted(set(authors))
    random.Random(f"sisa-shards:{seed}").shuffle(order)
    return [sorted(order[k::shards]) for k in range(shards)]


def shard_folder_name(cfg: SISAConfig, forget_split: str | None = None) -> str:
    name = f"sisa-{cfg.shards}" + (f"-seed{cfg.seed}" if cfg.seed else "")
    name += f"-lora{cfg.lora_r}" if cfg.lora_r else ""
    return f"{name}-{forget_split}" if forget_split else name


# --- aggregation ---------------------------------------------------------------------------------

class ShardEnsemble(CombinedLM):
    """The SISA ensemble as one causal LM (:class:`CombinedLM`) whose logits are its next-token log-probs

        log p(y | x) = log( (1/S) sum_k softmax(l_k)_y ) = logsumexp_k log_softmax(l_k)_y - log S
    """

    label = "sisa"

    def __init__(self, shards: list):
        super().__init__()
        if not shards:
            raise LetheError("sisa: the ensemble has no shard")
        self.shards = torch.nn.ModuleList(shards)

    def members(self) -> list:
        return list(self.shards)

    def mix(self, logits: list[torch.Tensor]) -> torch.Tensor:
        out = None
        for lk in logits:  # running logsumexp: two (.., V) tensors in memory, not S
            lp = lk.float().log_softmax(-1)  # (.., V)
            out = lp if out is None else torch.logaddexp(out, lp)
        return out - math.log(len(logits))  # (.., V)


# --- training and deletion -----------------------------------------------------------------------

def _train_shard(folder: Path, authors: list[str], bench, base_dir: Path, tiny, cfg: SISAConfig, log,
                 removed: list[str] = ()) -> dict:
    """Fine-tune the base model on ``authors``' facts + the world replay; save the model and its record.
    A cached shard whose recorded authors are ``authors`` is kept as it is."""
    meta = folder.with_name(folder.name + ".json")
    if (folder / "config.json").exists() and meta.exists():
        record = json.loads(meta.read_text(encoding="utf-8"))
        if record.get("authors") == list(authors):
            return {**record, "trained_now": False}
    model, tok = load_model(base_dir)
    enc = Encoder(tok)
    wanted = set(authors)
    items = [it for it in bench.splits["authors"] if it.group in wanted]
    seqs = author_sequences(items, enc) + world_sequences(bench, enc)
    if cfg.lora_r:
        model = add_lora(model, r=cfg.lora_r, alpha=2 * cfg.lora_r)
    log(f"sisa: training {folder.parent.name}/{folder.name} on {len(authors)} authors ({len(items)} facts) "
        f"+ world replay")
    model, st = finetune(model, tok, seqs, builtin_finetune_config(tiny), f"train sisa {folder.name}")
    if cfg.lora_r:
        model = model.merge_and_unload()
    save_model(model, tok, folder)
    record = {"authors": list(authors), "removed": list(removed), "facts": len(items), "sequences": len(seqs),
              "steps": st.steps, "tokens": st.tokens, "train_seconds": st.seconds,
              "trainable_params": st.trainable_params, "lora_r": cfg.lora_r}
    atomic_write_text(meta, json.dumps(record, indent=1))
    return {**record, "trained_now": True}


def build_sisa(bench, forget_split: str, tiny, cache_dir: str | Path, cfg: SISAConfig | None = None, log=print):
    """Train (or reuse) the ``S`` shard models, delete ``forget_split``'s authors by retraining the
    shards that held one: ``(ShardEnsemble, tokenizer, stats)``. ``stats``: the costs (recorded training
    seconds, known on cache hits too), the ensemble's per-shard author lists, the exactness checked here."""
    cfg = cfg or SISAConfig()
    cfg.check()
    if bench.name != "lethe-authors":
        raise LetheError(f"sisa needs the built-in benchmark (lethe-authors): it trains its shard models from the "
                         f"built-in base model; benchmark '{bench.name}' has none")
    root = builtin_model_root(bench, tiny, cache_dir)
    base_dir = root / "base"
    if not base_dir.exists() or not (root / f"retain-{forget_split}").exists():
        build_builtin_models(bench, forget_split, tiny, cache_dir, log)
    authors = author_ids(bench)
    forget = {it.group for it in bench.forget(forget_split)}
    assignment = assign_shards(authors, cfg.shards, cfg.seed)

    t0 = time.perf_counter()
    full_dir = root / shard_folder_name(cfg)
    original = [_train_shard(full_dir / f"shard-{k}", shard, bench, base_dir, tiny, cfg, log)
                for k, shard in enumerate(assignment)]
    # the deletion: retrain exactly the shards holding a forget author, without them
    delete_dir = root / shard_folder_name(cfg, forget_split)
    used, retrained, dropped, folders = [], [], [], []
    for k, shard in enumerate(assignment):
        hit = sorted(forget.intersection(shard))
        if not hit:
            used.append(original[k])
            folders.append(full_dir / f"shard-{k}")
            continue
        retrained.append(k)
        kept = [a for a in shard if a not in forget]
        if not kept:
            dropped.append(k)
            continue
        used.append(_train_shard(delete_dir / f"shard-{k}", kept, bench, base_dir, tiny, cfg, log, removed=hit))
        folders.append(delete_dir / f"shard-{k}")
    wall = time.perf_counter() - t0
    if not used:
        raise LetheError(f"sisa: every shard held only forget authors of {forget_split}; nothing is left to "
                         "aggregate (use fewer shards=...)")

    # exactness, from what each shard recorded it was trained on
    seen = [set(r["authors"]) for r in used]
    leaked = sorted(set().union(*seen) & forget)
    if leaked:
        raise RuntimeError(f"sisa: a shard of the ensemble was trained on forget authors {leaked}")
    if set().union(*seen) != set(authors) - forget or sum(map(len, seen)) != len(set(authors) - forget):
        raise RuntimeError("sisa: the ensemble's shards do not hold every retain author exactly once")

    device = accelerator().device
    loaded = [load_model(folder) for folder in folders]  # (model, tokenizer) pairs
    ensemble = ShardEnsemble([model.to(device).eval() for model, _ in loaded]).eval()
    tok = loaded[-1][1]

    timings = recorded_training_seconds(root)
    build_seconds = sum(r["train_seconds"] for r in original)
    deletion_seconds = sum(r["train_seconds"] for r in used if r.get("removed"))
    retain_seconds = timings.get(f"retain-{forget_split}")
    stats = {
        "shards": cfg.shards, "shards_retrained": len(retrained), "retrained": retrained, "dropped": dropped,
        "forget_authors": len(forget),
        "build_seconds": build_seconds,  # all S shards, before any deletion
        "deletion_seconds": deletion_seconds,  # retraining the shards that held a forget author
        "retain_seconds": retain_seconds,  # the full retrain (the retain model), None if not recorded
        "target_seconds": timings.get("target"),
        "speedup_vs_retrain": retain_seconds / deletion_seconds if retain_seconds and deletion_seconds else None,
        "shard_sequences": [r["sequences"] for r in used], "shard_authors": [r["authors"] for r in used],
        "shard_folders": [str(f) for f in folders],
        "trained_now": sum(r["trained_now"] for r in original + [u for u in used if u.get("removed")]),
        "wall_seconds": wall, "lora_r": cfg.lora_r, "exact": EXACT,
    }
    log(f"sisa: {len(retrained)} of {cfg.shards} shards retrained for {forget_split} ({deletion_seconds:.1f} s "
        f"recorded; all shards {build_seconds:.1f} s; full retrain "
        f"{'not recorded' if retain_seconds is None else f'{retain_seconds:.1f} s'}); {EXACT}")
    if retain_seconds is None:
        stats["note"] = ("the retain model's training seconds were not recorded (its cache predates timings.json); "
                         "delete its folder to retrain and record it")
    return ensemble, tok, stats
