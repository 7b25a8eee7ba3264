"""The built-in generators' data, pinned: a SHA-256 of everything each one generates.

The generated data is the cache key of every trained model (``Benchmark.fingerprint``) and what the
published numbers were measured on, so a change to a generator, a word pool or the made-up words
(:mod:`lethe.benchmarks.lexicon`) that moves a single byte must be deliberate: bump the benchmark's
VERSION, re-run the documented results, and pin the new hashes here.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest

from lethe.benchmarks import hazard, news, synthetic

PINNED = [
    # (module, generate() arguments, SHA-256 of the JSON of everything generated)
    (synthetic, {}, "06bbc3d61b716324c550cf0378dbb409eabcec5de97d74c6d9cb78600ea8fbbb"),
    (synthetic, {"seed": 3, "n_authors": 40, "n_holdout": 5, "languages": ("en", "de")},
     "20297fe920c9ea12eed2201fc6540c1fc9352ce2950b2334ffaa2963aab5203f"),
    (news, {}, "8a753600d19faa4cbb872dca1f03139a6f2ef5b064160471a1c9b147311f5f88"),
    (news, {"seed": 7, "n_forget": 5, "n_retain": 10, "n_holdout": 5},
     "601dfc280ebdd1d3b7c7dab981d25c659ce4265da951ab2222608188d75be391"),
    (hazard, {}, "b7fe6284f0b0b0e961ee5e2d372a0616235c353776d0302d0e9d358d3ceffda8"),
    # more substances than heads and held-out towns beyond the free heads: Lexicon.spread's second branch
    (hazard, {"seed": 4, "n_substances": 30, "n_towns": 40, "n_heldout_towns": 10},
     "ad31d60dd0541cefb304170826fe85e3a576ca1e289ba5dbc16bcfa298dea79d"),
]
MOVED = ("the generated data changed: the cache keys of trained models and the published numbers move with it. "
         "If that is intended, bump {name}'s VERSION, re-run the documented results and pin the new hash")


def _sha256(data) -> str:
    return hashlib.sha256(json.dumps(dataclasses.asdict(data), sort_keys=True, ensure_ascii=False).encode()).hexdigest()


@pytest.mark.parametrize("module,params,digest", PINNED, ids=[f"{m.NAME}-{i}" for i, (m, _, _) in enumerate(PINNED)])
def test_generated_data_is_pinned(module, params, digest):
    assert _sha256(module.generate(**params)) == digest, MOVED.format(name=module.NAME)


def test_default_lethe_authors_cache_key_is_pinned():
    """The content hash results and caches are keyed on, for the default built-in benchmark."""
    assert synthetic.generate().fingerprint() == "acce0180c463827e", MOVED.format(name=synthetic.NAME)
