"""Cross-lingual probes: ask the forget questions in another language.

Unlearning in one language often leaves the knowledge reachable in another (Lynch et al. 2024; Choi et
al. 2024). The model is left as it is; every forget item is replaced by the same fact stated in the other
language (question, answer, paraphrase and perturbed answers), read off the item's own templates by
:func:`lethe.benchmarks.synthetic.translate`, so the attack needs nothing but the forget items. Items
that are not built-in author facts have no translation and are left out. The translated items keep the
ORIGINAL ids: "before" and "after" then score the fact in the first and in the second language.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from ..benchmarks.base import QAItem
from ..benchmarks.synthetic import LANGUAGES, MAIN_LANGUAGE, translate
from ..errors import LetheError
from . import attack_config


@dataclass(frozen=True)
class CrossLingualConfig:
    # probe language: "auto" = German for English items and English for the others; or "en" / "de"
    language: str = "auto"

    def check(self, prefix: str = "attacks") -> None:
        if self.language != "auto" and self.language not in LANGUAGES:
            raise LetheError(f"{prefix}.language must be auto or one of {', '.join(LANGUAGES)}, got {self.language!r}")


def cross_lingual_items(forget: list[QAItem], language: str = "auto") -> tuple[list[QAItem], list[str]]:
    """``(translated items, ids left out)``: each forget item stated in its probe language (``language``, or
    with "auto" the other one of English/German), id kept; items already in that language or without a
    translation (not a built-in author fact) are left out."""
    out, left_out = [], []
    for it in forget:
        source = it.language or MAIN_LANGUAGE
        target = language if language != "auto" else ("de" if source == MAIN_LANGUAGE else MAIN_LANGUAGE)
        moved = None if target == source else translate(it, target)
        if moved is None:
            left_out.append(it.id)
        else:
            out.append(replace(moved, id=it.id))
    return out, left_out


def cross_lingual(model, tokenizer, forget, retain, options=None):
    """The ``cross_lingual`` attack (registered in :mod:`lethe.attacks`): same model, forget items in
    the other language (see the module docstring)."""
    cfg = attack_config(CrossLingualConfig, "cross_lingual", options)
    items, left_out = cross_lingual_items(list(forget), cfg.language)
    if not items:
        raise LetheError(f"attack 'cross_lingual': none of the {len(forget)} forget items has a translation; "
                         "cross-lingual probes need the built-in benchmark's author facts (benchmark=lethe-authors)")
    languages = sorted({it.language or "en" for it in items})
    return model, {"attack": "cross_lingual", "language": cfg.language, "probe_languages": languages,
                   "translated": len(items), "left_out": len(left_out),
                   "eval_forget_items": items, "eval_forget_ids": [it.id for it in items], "seconds": 0.0}
