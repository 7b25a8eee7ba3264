"""Lethe: machine unlearning for large language models.

Heavy modules (torch, transformers) are imported lazily so ``lethe --help`` stays fast.
"""
from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "run": ("lethe.pipeline", "run"),
    "unlearn": ("lethe.train", "unlearn"),  # every weight-changing kind of method
    "evaluate": ("lethe.evaluation", "evaluate"),
    "load_benchmark": ("lethe.benchmarks", "load_benchmark"),
    "LetheError": ("lethe.errors", "LetheError"),
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'lethe' has no attribute '{name}'")


__all__ = ["__version__", *_LAZY]
