"""SISA (Bourtoule et al. 2021): training-time exact unlearning on the built-in benchmark.

Not a loss and not a procedure on the target: the method trains its own shard models from the
built-in base model, retrains the shards that held a forget author, and aggregates them at inference
(``lethe.sisa``). ``lethe run`` evaluates it like every other method (``TrainingTimeMethod``).
"""
from __future__ import annotations

from ..sisa import PAPER, SISAConfig, build_sisa
from . import register_training_time

register_training_time("sisa", config=SISAConfig, paper=PAPER)(build_sisa)
