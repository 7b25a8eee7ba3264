"""The results schema: one :class:`ModelResult` per evaluated model, with per-sample values kept.

``results.json`` holds every model's probes (log-probs, token counts, generations) and metric
values per item, so forget quality, MIA AUCs, confidence intervals and re-aggregation never need
the model again. A retain model's results file can stand in for the retain model itself.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import LetheError
from .metrics import MetricResult
from .probes import SplitProbes

SCHEMA_VERSION = 1

_ARRAYS = ("answer_logprob", "answer_ntokens", "paraphrase_logprob", "paraphrase_ntokens",
           "perturbed_logprob", "perturbed_ntokens")
# ModelResult's dict fields in results.json, in their order there
_SECTIONS = ("summary", "intervals", "robustness", "seconds", "train", "config", "directions")


def probes_to_json(p: SplitProbes) -> dict:
    d = {"ids": list(p.ids), "generations": list(p.generations), "references": list(p.references),
         "generation_tokens": [list(t) for t in p.generation_tokens],
         "generation_similarity": list(p.generation_similarity), "generation_nli": list(p.generation_nli)}
    if any(p.original_answers):  # written only when some item has one: other results files stay as they were
        d["original_answers"] = list(p.original_answers)
    for name in _ARRAYS:
        d[name] = np.asarray(getattr(p, name)).tolist()
    return d


def probes_from_json(d: dict, where: str = "results") -> SplitProbes:
    try:
        arrays = {name: np.asarray(d[name], dtype=np.float64) for name in _ARRAYS}
        arrays.update({name: arrays[name].astype(np.int64) for name in _ARRAYS if name.endswith("_ntokens")})
        return SplitProbes(ids=list(d["ids"]), generations=list(d.get("generations", [])),
                           references=list(d.get("references", [])),
                           original_answers=[str(x) for x in d.get("original_answers", [])],
                           generation_tokens=[list(t) for t in d.get("generation_tokens", [])],
                           generation_similarity=list(d.get("generation_similarity", [])),
                           generation_nli=[str(x) for x in d.get("generation_nli", [])], **arrays)
    except (KeyError, TypeError, ValueError) as exc:
        raise LetheError(f"{where}: malformed probes ({exc}); regenerate the results file with `lethe eval`") from None


@dataclass
class ModelResult:
    name: str
    kind: str  # "target" | "retain" | "method" | "model"
    method: str | None = None
    probes: dict[str, SplitProbes] = field(default_factory=dict)
    metrics: dict[str, dict[str, MetricResult]] = field(default_factory=dict)
    summary: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    train: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    intervals: dict[str, list[float]] = field(default_factory=dict)  # summary key -> [low, high] (bootstrap)
    robustness: dict = field(default_factory=dict)  # attack -> {"before": {...}, "after": {...}, "info": {...}}
    directions: dict = field(default_factory=dict)  # directions of summary keys named at run time (lm-eval tasks)
    record: dict = field(default_factory=dict)  # a scenario's own per-model values (continual: every round)
    # a published per-item evaluation (retain_logs.RetainLogs) standing in for the retain model's probes:
    # forget quality is computed against it; not written to results.json (its source is in the provenance)
    logs: object = None

    def summary_row(self) -> dict:
        """The model's row in a run's summary.json (what reports read)."""
        return {"name": self.name, "kind": self.kind, "method": self.method, "metrics": self.summary,
                "intervals": self.intervals, "robustness": self.robustness, "seconds": self.seconds,
                "config": self.config, "train": self.train}

    def to_json(self) -> dict:
        splits = {s: {"metrics": {m: {"value": r.value, "per_sample": list(r.per_sample)}
                                  for m, r in self.metrics.get(s, {}).items()},
                      "probes": probes_to_json(p)} for s, p in self.probes.items()}
        return {"name": self.name, "kind": self.kind, "method": self.method,
                **{k: getattr(self, k) for k in _SECTIONS}, **({"record": self.record} if self.record else {}),
                "splits": splits}

    @classmethod
    def from_json(cls, d: dict, where: str = "results") -> "ModelResult":
        try:
            splits = d["splits"]
            return cls(
                name=d["name"], kind=d["kind"], method=d.get("method"),
                probes={s: probes_from_json(v["probes"], f"{where}: split '{s}'") for s, v in splits.items()},
                metrics={s: {m: MetricResult(r["value"], r["per_sample"]) for m, r in v.get("metrics", {}).items()}
                         for s, v in splits.items()},
                **{k: d.get(k, {}) for k in _SECTIONS}, record=d.get("record") or {},
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise LetheError(f"{where}: not a Lethe model result (missing {exc}); give a results.json written by "
                             "Lethe") from None


def read_results(path: str | Path) -> dict:
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    if not path.is_file():
        raise LetheError(f"{path}: results file not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise LetheError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict) or "models" not in data:
        raise LetheError(f"{path}: not a Lethe results file (no 'models'); give a results.json written by Lethe")
    return data


def load_retain_result(path: str | Path, forget_split: dict, benchmark: str = "",
                       eval_recipe: str = "") -> tuple[ModelResult, list[str]]:
    """The retain model's row of a results.json, checked against this run's data (``forget_split``:
    ``Benchmark.split_fingerprint``; ``benchmark``: its content fingerprint); returns (result, run notes).
    Forget quality compares truth ratios item by item, so a retain model evaluated on other data is refused.
    A file from another ``eval_recipe`` loses its membership-inference numbers: PrivLeak against them would
    mix two conventions (Min-K% at another k, say)."""
    data = read_results(path)
    rows = [m for m in data["models"] if isinstance(m, dict) and m.get("kind") == "retain"]
    if not rows:
        names = ", ".join(str(m.get("name", "?")) for m in data["models"] if isinstance(m, dict)) or "none"
        raise LetheError(f"{path}: holds no retain-model row (models: {names}); give the results.json of a run that "
                         "evaluated the retain model (e.g. `lethe eval model=<target> retain_model=<retain model "
                         "folder>`)")
    if len(rows) > 1:
        raise LetheError(f"{path}: holds {len(rows)} retain-model rows; give a results file with one")
    result = ModelResult.from_json(rows[0], str(path))
    prov = data.get("provenance") if isinstance(data.get("provenance"), dict) else {}
    theirs = prov.get("forget_split") if isinstance(prov.get("forget_split"), dict) else None
    bench_theirs = (prov.get("benchmark") or {}).get("fingerprint") if isinstance(prov.get("benchmark"), dict) else None
    ours = f"forget split '{forget_split['name']}' ({forget_split['items']} items, sha256 {forget_split['sha256']})"
    if theirs is not None:
        if theirs.get("sha256") != forget_split["sha256"] or theirs.get("items") != forget_split["items"]:
            raise LetheError(
                f"{path}: its retain model was evaluated on forget split '{theirs.get('name')}' ({theirs.get('items')} "
                f"items, sha256 {theirs.get('sha256')}), this run uses {ours}; give the retain results of the same "
                "benchmark and forget split")
        if benchmark and bench_theirs and bench_theirs != benchmark:
            raise LetheError(f"{path}: its retain model was evaluated on another benchmark content (fingerprint "
                             f"{bench_theirs}, this run's {benchmark}: other data, seed or files); give the retain "
                             "results of the same benchmark")
    forget = result.probes.get("forget")
    if forget is None:
        raise LetheError(f"{path}: the retain-model row has no forget split; evaluate the retain model on {ours}")
    if list(forget.ids) != list(forget_split["ids"]):
        raise LetheError(f"{path}: the retain model's forget items ({len(forget.ids)}) are not this run's {ours}; "
                         "give the retain results of the same benchmark and forget split")
    answers = forget_split.get("answers")
    if theirs is None and answers is not None and forget.references and list(forget.references) != list(answers):
        changed = sum(a != b for a, b in zip(forget.references, answers))
        raise LetheError(f"{path}: the retain model was evaluated on other answers for {changed} of the "
                         f"{len(answers)} forget items of {ours} (another benchmark seed or an edited file); give "
                         "the retain results of the same benchmark")
    notes = []
    theirs_recipe = prov.get("eval_recipe", "")
    if eval_recipe and theirs_recipe != eval_recipe:
        dropped = sorted(k for k in result.summary if k.startswith("mia_") or k == "privleak"
                         or k.startswith("forget_exact_memorization") or k.startswith("forget_extraction"))
        for k in dropped:
            result.summary.pop(k)
            result.intervals.pop(k, None)
        notes.append(f"retain model's results ({path}) come from evaluation recipe '{theirs_recipe or 'unrecorded'}', "
                     f"this run's is '{eval_recipe}': their membership-inference numbers are left out and PrivLeak is "
                     "not reported (evaluate the retain model again to get them)")
    return result, notes
