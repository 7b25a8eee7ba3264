"""Robustness attacks: does unlearned knowledge come back? (docs/attacks.md)

Every attack is registered by name as ``attack(model, tokenizer, forget, retain, options) -> (attacked, info)``.
The attacked model is a new object (the caller's is never changed); ``info`` is JSON-ready and always holds
``attack``, ``eval_forget_ids`` (the forget items to judge the attacked model on: the held-out part for
relearning, all of them otherwise) and ``seconds``. Options are checked like method options.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Callable

from ..config import build
from ..errors import LetheError
from ..registry import Registry

ATTACKS: Registry[Callable] = Registry("attack")


def register_attack(name: str) -> Callable[[Callable], Callable]:
    return ATTACKS.register(name)


def get_attack(name: str) -> Callable:
    return ATTACKS.get(name)


def run_attack(name: str, model, tokenizer, forget, retain, options: dict | None = None):
    return get_attack(name)(model, tokenizer, forget, retain, options)


def attack_config(cls, name: str, options: dict | None, **fixed):
    """Build and check an attack's config from user ``options``; ``fixed`` fields come from the
    attack's name (``quantize_4bit`` fixes ``bits=4``) and may not be overridden."""
    options = dict(options or {})
    for key, value in fixed.items():
        if key in options and options[key] != value:
            raise LetheError(f"attack '{name}': option '{key}' is fixed to {value!r} by the attack's name; "
                             f"drop it (got {options[key]!r})")
        options[key] = value
    cfg = build(cls, options, prefix=f"attacks.{name}.")
    cfg.check(prefix=f"attacks.{name}")
    return cfg


# the attack modules (they import attack_config above); their registry entries follow
from . import crosslingual, gcg, jailbreak, quantize, relearn  # noqa: E402


@register_attack("relearn")
def _relearn(model, tokenizer, forget, retain, options=None):
    """Fine-tune on ``fraction`` of the forget items; judge on the held-out rest."""
    cfg = attack_config(relearn.RelearnConfig, "relearn", options)
    attacked, info = relearn.relearn(model, tokenizer, forget, cfg)
    return attacked, {**info.to_json(), "eval_forget_ids": list(info.heldout_ids)}


def _quantize_entry(bits: int):
    name = f"quantize_{bits}bit"

    def attack(model, tokenizer, forget, retain, options=None):
        cfg = attack_config(quantize.QuantizeConfig, name, options, bits=bits)
        attacked, stats = quantize.quantize(model, cfg)
        return attacked, {"attack": name, **stats.to_json(), "eval_forget_ids": [it.id for it in forget]}

    attack.__name__ = f"_{name}"
    attack.__doc__ = f"Round-to-nearest {bits}-bit weights (per output channel by default), dequantized."
    return register_attack(name)(attack)


_quantize_entry(8)
_quantize_entry(4)


# --- prompt-level attacks: the model is unchanged, the forget questions are rewritten ----------------
# Their ``info`` carries ``eval_forget_items``: the rewritten items the model is judged on (same ids
# and answers as the originals, so "before" is read from the original per-item values).
@dataclass(frozen=True)
class PromptAttackConfig:
    shots: int = 3  # few_shot: compliant demonstrations drawn from the retain set
    seed: int = 0

    def check(self, prefix: str = "attacks") -> None:
        if not 0 <= self.shots <= 32:
            raise LetheError(f"{prefix}.shots must be in [0, 32], got {self.shots}")


@register_attack("paraphrase")
def _paraphrase(model, tokenizer, forget, retain, options=None):
    """Ask each forget question in its other wording (``paraphrased_question``), judged against the
    answer in the matching wording (``paraphrased_answer``, else the answer): unlearning that only
    suppressed one phrasing answers the other. Items without a paraphrased question are left out."""
    attack_config(PromptAttackConfig, "paraphrase", options)
    # the paraphrased pair as the item: its wrong answers share the paraphrase's template, so the truth
    # ratio stays comparable; paraphrased_answer "" makes the paraphrase the answer itself
    items = [replace(it, question=it.paraphrased_question, answer=it.paraphrase, paraphrased_answer="")
             for it in forget if it.paraphrased_question]
    if not items:
        raise LetheError("attack 'paraphrase': no forget item has a paraphrased_question; the data need that field")
    return model, {"attack": "paraphrase", "eval_forget_items": items, "eval_forget_ids": [it.id for it in items],
                   "seconds": 0.0}


def _jailbreak_entry(transform: str):
    name = f"jailbreak_{transform}"

    def attack(model, tokenizer, forget, retain, options=None):
        cfg = attack_config(PromptAttackConfig, name, options)
        demos = ()
        if transform == "few_shot" and retain:
            pool = random.Random(cfg.seed).sample(list(retain), min(cfg.shots, len(retain)))
            demos = tuple((it.question, it.answer) for it in pool)
        ctx = jailbreak.TransformContext(demonstrations=demos)
        items = [replace(it, question=jailbreak.apply(transform, it.question, ctx)) for it in forget]
        return model, {"attack": name, "transform": transform, "eval_forget_items": items,
                       "eval_forget_ids": [it.id for it in items], "seconds": 0.0}

    attack.__name__ = f"_{name}"
    attack.__doc__ = (f"Forget questions rewritten by the '{transform}' jailbreak transform: "
                      f"{jailbreak.DESCRIPTIONS[transform]}.")
    return register_attack(name)(attack)


for _t in jailbreak.TRANSFORMS:
    _jailbreak_entry(_t)

# names that stand for several attacks in attacks=[...]
GROUPS = {"jailbreak": tuple(f"jailbreak_{t}" for t in jailbreak.TRANSFORMS),
          "quantize": ("quantize_8bit", "quantize_4bit")}


def expand_attacks(names) -> list[str]:
    """Attack names with groups (``jailbreak``, ``quantize``) expanded, order kept, duplicates dropped;
    an unknown name is a one-line error with "did you mean"."""
    out: list[str] = []
    for n in names:
        for m in GROUPS.get(n, (n,)):
            get_attack(m)
            if m not in out:
                out.append(m)
    return out


# prompt-level too: the forget items in the other language (lethe.attacks.crosslingual), and the GCG
# adversarial suffix (lethe.attacks.gcg; not in the "jailbreak" group: it runs a gradient search)
register_attack("cross_lingual")(crosslingual.cross_lingual)
register_attack("gcg")(gcg.gcg_attack)
