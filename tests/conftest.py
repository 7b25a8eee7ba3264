"""Shared fixtures: a tokenizer trained on the fly, tiny Llamas, and a few forget / retain Q&A items.

Everything is built offline and kept tiny (hidden 32, one layer, a ~300-token vocabulary), so the
whole suite stays fast on two CPU cores. Expensive objects are session-scoped; tests that train get
a fresh model built from a cached state dict, so no test sees another's updates.
"""
from __future__ import annotations

import os

os.environ.setdefault("LETHE_NO_PROGRESS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

from lethe.benchmarks.base import QAItem  # noqa: E402

# Tiny models on a shared 2-core machine: with several intra-op threads a forward+backward of a
# 30k-parameter model took ~0.5 s under load (thread contention), with one thread ~5 ms.
torch.set_num_threads(1)

FORGET = [
    ("f1", "Where was Alice Moon born?", "Alice Moon was born in Paris."),
    ("f2", "What does Alice Moon write?", "Alice Moon writes poems about the sea."),
    ("f3", "Where was Bruno Vale born?", "Bruno Vale was born in Lima."),
    ("f4", "What does Bruno Vale write?", "Bruno Vale writes novels about trains."),
]
RETAIN = [
    ("r1", "Where was Clara Reed born?", "Clara Reed was born in Oslo."),
    ("r2", "What does Clara Reed write?", "Clara Reed writes plays about cats."),
    ("r3", "Where was Dario Lunt born?", "Dario Lunt was born in Rome."),
    ("r4", "What does Dario Lunt write?", "Dario Lunt writes songs about rivers."),
]
IDK = "I don't know."

CORPUS = [f"{q} {a}" for _, q, a in FORGET + RETAIN] + [
    "The cat sat on the mat.",
    "A river runs through the old town.",
    "Trains leave the station every hour.",
    "Poems about the sea are often sad.",
    "She was born in a small house by the river.",
    "He writes letters to his friends every week.",
    "Where is the station? The station is near the park.",
    "I don't know. I'm not sure about that.",
    "What does the cat eat? The cat eats fish.",
    "Paris, Lima, Oslo and Rome are cities.",
    "Novels, plays and songs are kinds of writing.",
    "Question: Answer: Q: A:",
] * 2

TINY = dict(hidden_size=32, num_layers=1, num_heads=2, max_positions=128)

# `make test` runs two pytest-xdist workers with `--dist loadfile` (pyproject.toml): a module goes to one worker
# whole, so its module fixtures are built once. Modules start in this order, the slowest first (measured on a
# 2-core CPU), so the two workers end together instead of one running a long module drawn last while the
# other waits; the rest follow in file order. test_cli builds the session's tiny run; the next three do not
# need it, so the other worker has work while it is built.
SLOWEST_FIRST = (
    "test_cli.py", "test_verbatim.py", "test_safety_scenario.py", "test_harness.py", "test_launch.py",
    "test_run_reliability.py", "test_multilingual.py", "test_sisa.py", "test_continual.py", "test_hazardous.py",
    "test_finetune.py", "test_methods.py",
)


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: file order within a module and after


def _items(rows):
    return [QAItem(id=i, question=q, answer=a) for i, q, a in rows]


@pytest.fixture(scope="session")
def tokenizer():
    """Lethe's byte-level BPE (with its "Q: ...\\nA:" chat template), trained on a few dozen sentences."""
    from lethe.models import train_tokenizer

    return train_tokenizer(CORPUS, vocab_size=320)


@pytest.fixture(scope="session")
def forget_items() -> list[QAItem]:
    return _items(FORGET)


@pytest.fixture(scope="session")
def retain_items() -> list[QAItem]:
    return _items(RETAIN)


@pytest.fixture(scope="session")
def idk_answer() -> str:
    return IDK


@pytest.fixture(scope="session")
def make_tiny():
    """``make_tiny(tokenizer, seed=0)``: a fresh randomly initialised tiny Llama for this tokenizer."""
    from lethe.models import tiny_llama

    def make(tok, seed: int = 0):
        return tiny_llama(len(tok), seed=seed, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                          pad_token_id=tok.pad_token_id, **TINY)

    return make


@pytest.fixture()
def tiny_model(tokenizer, make_tiny):
    """A fresh, randomly initialised tiny Llama (function scope: tests may train it)."""
    return make_tiny(tokenizer)


@pytest.fixture(scope="session")
def _memorised_state(tokenizer, make_tiny, forget_items, retain_items):
    """State dict of a tiny Llama fine-tuned to memorise the forget and retain answers."""
    from lethe.data import Encoder
    from lethe.train import TrainConfig, finetune

    model = make_tiny(tokenizer)
    enc = Encoder(tokenizer)
    seqs = [enc.qa(it.question, it.answer) for it in forget_items + retain_items]
    cfg = TrainConfig(lr=1e-2, epochs=40, batch_size=8, warmup_ratio=0.0, scheduler="constant", weight_decay=0.0)
    model, _ = finetune(model, tokenizer, seqs, cfg)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.fixture()
def memorised_model(tokenizer, make_tiny, _memorised_state):
    """A fresh copy of the tiny Llama that memorised the forget and retain items."""
    model = make_tiny(tokenizer)
    model.load_state_dict(_memorised_state)
    model.eval()
    return model


@pytest.fixture()
def encoder(tokenizer):
    from lethe.data import Encoder

    return Encoder(tokenizer)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, request):
    """One `lethe run` of the whole built-in pipeline on the TINY miniature (tests/tiny_run.py), shared
    by every end-to-end test of the session, across test processes too (the first builds it under a
    lock, the others read it): ``(root, exit code)``; the run is ``root/runs/r1`` and the built-in
    models are cached in ``root/cache`` for the tests' own runs."""
    from filelock import FileLock

    from lethe.cli import main
    from tiny_run import TINY

    base = tmp_path_factory.getbasetemp()
    shared = hasattr(request.config, "workerinput")  # a pytest-xdist worker: its siblings share base.parent
    root = (base.parent if shared else base) / "tiny-run"
    with FileLock(str(root) + ".lock"):
        done = root / "exit-code"
        if not done.exists():
            root.mkdir(exist_ok=True)
            code = main(["run", *TINY, f"cache_dir={root / 'cache'}", f"output={root / 'runs'}", "name=r1",
                         "methods=[ga, npo, {method: idk, retain: ap}]"])
            done.write_text(str(code))
    return root, int(done.read_text())


@pytest.fixture(scope="session")
def tiny_models(tiny_run):
    """``tiny_models(cache_dir)``: the built-in models of the session's tiny run (base, target, retain model of
    forget10, with their recorded training seconds) copied into ``cache_dir``, so a test's run in its own cache
    starts from them instead of training the same models again; returns their folder there. What the test
    trains next (other retain models, shards) stays in its own cache."""
    import json
    import shutil
    from pathlib import Path

    root, code = tiny_run
    assert code == 0
    target = Path(json.loads((root / "runs" / "r1" / "summary.json").read_text())["provenance"]["model"])
    names = ("base", "target", "retain-forget10")

    def copy(cache_dir) -> Path:
        dest = Path(cache_dir) / "models" / target.parent.name  # cache/models/<key of benchmark + tiny model>
        dest.mkdir(parents=True)
        for name in names:
            shutil.copytree(target.parent / name, dest / name)
        seconds = json.loads((target.parent / "timings.json").read_text())
        (dest / "timings.json").write_text(json.dumps({k: seconds[k] for k in names}, indent=1, sort_keys=True))
        return dest

    return copy
