"""Reading a run's ``summary.json`` and the small facts every report shares: values, headers, best rows.

A missing, null or NaN value is shown as "n/a": a report never invents a number (DESIGN.md, principle 5).
"""
from __future__ import annotations

import json
import math
import numbers
import re
from pathlib import Path

from ..errors import LetheError

# The main table in the TOFU paper's order: the two headline numbers, the forget split, what must survive.
MAIN_COLUMNS: tuple[str, ...] = ("forget_quality", "model_utility", "forget_rouge_l", "forget_probability",
                                 "forget_truth_ratio", "retain_rouge_l", "world_facts_rouge_l", "known_people_rouge_l")
SECONDS_COLUMN = "unlearn_seconds"  # from row["seconds"]["unlearn"]; lower is better
FQ_FLOOR = 1e-20  # forget quality below this (0 included) is drawn at this height on the log axis
NA = "n/a"
ARROWS = {"higher": "↑", "lower": "↓"}


def load_summary(run_dir: str | Path) -> dict:
    """Read and check ``run_dir/summary.json``; one-line :class:`LetheError` naming the file otherwise."""
    run_dir = Path(run_dir)
    path = run_dir / "summary.json"
    if not path.is_file():
        raise LetheError(f"{run_dir}: no summary.json; run `lethe run` or `lethe eval` first")
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise LetheError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}); re-create it with `lethe run` or "
                         "`lethe eval`") from None
    except UnicodeDecodeError:
        raise LetheError(f"{path}: not UTF-8 text; re-create it with `lethe run` or `lethe eval`") from None
    check_summary(summary, path)
    return summary


def check_summary(summary: object, source: str | Path) -> None:
    """One-line :class:`LetheError` naming ``source`` unless ``summary`` has the shape the reports read."""
    if not isinstance(summary, dict):
        raise LetheError(f"{source}: expected a JSON object with a 'rows' list, got {type(summary).__name__}")
    rows = summary.get("rows")
    if not isinstance(rows, list):
        what = "missing" if rows is None else f"a {type(rows).__name__}, not a list"
        raise LetheError(f"{source}: field 'rows' is {what}; expected the summary written by `lethe run` or "
                         "`lethe eval`")
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise LetheError(f"{source}: field 'rows[{i}]': expected an object, got {type(row).__name__}")
        for key in ("metrics", "seconds"):
            if row.get(key) is not None and not isinstance(row[key], dict):
                raise LetheError(f"{source}: field 'rows[{i}].{key}': expected an object")


def number(value: object) -> float | None:
    """The value as a finite-or-infinite float, or None when missing / null / NaN / not a number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    value = float(value)
    return None if math.isnan(value) else value


def row_name(row: dict, i: int) -> str:
    name = row.get("name")
    return str(name) if name not in (None, "") else f"row {i}"


def row_value(row: dict, column: str) -> float | None:
    if column == SECONDS_COLUMN:
        return number((row.get("seconds") or {}).get("unlearn"))
    return number((row.get("metrics") or {}).get(column))


def format_value(column: str, value: object) -> str:
    """How a number is shown: forget quality (a p-value) in scientific notation, seconds with one
    decimal, every other metric with three decimals; "n/a" when there is no number."""
    v = number(value)
    return NA if v is None else format(v, {"forget_quality": ".2e", SECONDS_COLUMN: ".1f"}.get(column, ".3f"))


def direction(summary: dict, column: str) -> str | None:
    if column == SECONDS_COLUMN:
        return "lower"
    d = (summary.get("directions") or {}).get(column)
    return d if d in ARROWS else None


def header(summary: dict, column: str, short: bool = False) -> str:
    """A column's header with its direction's arrow; ``short``: the terminal's, with a line break (:data:`SHORT`)."""
    label = SHORT.get(column, column) if short else ("unlearn s" if column == SECONDS_COLUMN else column)
    arrow = ARROWS.get(direction(summary, column) or "", "")
    return f"{label} {arrow}".rstrip()


# terminal headers: short enough that nine columns fit 80 characters (a legend follows the table)
SHORT = {"forget_quality": "forget\nquality", "model_utility": "model\nutility", "forget_rouge_l": "forget\nROUGE",
         "forget_probability": "forget\nprob", "forget_truth_ratio": "forget\nTR", "retain_rouge_l": "retain\nROUGE",
         "world_facts_rouge_l": "world\nROUGE", "known_people_rouge_l": "people\nROUGE", SECONDS_COLUMN: "unlearn\nsec",
         "hazard_accuracy": "hazard\nacc", "general_accuracy": "general\nacc", "forget_corpus_nll": "forget\nNLL",
         "retain_corpus_nll": "retain\nNLL", "heldout_nll": "held-out\nNLL", "neighbour_rouge_l": "neighbour\nROUGE",
         "neighbour_probability": "neighbour\nprob", "retain_probability": "retain\nprob",
         "known_people_probability": "people\nprob", "forget_verbmem": "forget\nVerbMem",
         "forget_knowmem": "forget\nKnowMem", "retain_knowmem": "retain\nKnowMem", "retain_verbmem": "retain\nVerbMem",
         "privleak": "Priv\nLeak"}


ABBREVIATIONS = (("TR", "truth ratio"), ("world", "world facts"), ("people", "known people"), ("acc", "accuracy"),
                 ("NLL", "negative log-likelihood per token"))


def legend(summary: dict, cols: list[str]) -> str:
    """The terminal table's legend: only the abbreviations its columns use."""
    shown = " ".join(SHORT.get(c, c) for c in cols)
    used = [f"{abbrev} = {meaning}" for abbrev, meaning in ABBREVIATIONS if re.search(rf"\b{abbrev}\b", shown)]
    return "; ".join(["↑/↓ higher/lower is better", *used])


def columns_of(summary: dict, columns=None) -> list[str]:
    if columns is None:
        columns = summary.get("columns") or (list(MAIN_COLUMNS) + [SECONDS_COLUMN])
    return list(columns)


def all_metric_columns(summary: dict) -> list[str]:
    """Every metric some row reports: the directions' order first, then first appearance."""
    seen = dict.fromkeys(key for row in summary["rows"] for key in row.get("metrics") or {})
    order = [k for k in (summary.get("directions") or {}) if k in seen]
    return order + [k for k in seen if k not in order]


def best_rows(summary: dict, column: str) -> set[int]:
    """Indices of the rows holding the best value of ``column`` (ties: all of them), among the unlearning methods:
    the target and the retain model are the references they are judged against (the retain model's forget quality
    is 1 by construction). With no method rows, every row competes. No direction, or all tie: no highlight."""
    d = direction(summary, column)
    if d is None:
        return set()
    rows = summary["rows"]
    candidates = [i for i, r in enumerate(rows) if r.get("kind") == "method"] or list(range(len(rows)))
    values = {i: v for i in candidates if (v := row_value(rows[i], column)) is not None}
    if len(set(values.values())) < 2:
        return set()  # no contest: no value, a single value, or every method ties
    best = max(values.values()) if d == "higher" else min(values.values())
    return {i for i, v in values.items() if v == best}


def _bench(summary: dict) -> dict:
    bench = summary.get("benchmark") or {}
    return bench if isinstance(bench, dict) else {"name": str(bench)}


def title(summary: dict) -> str:
    bench, split = _bench(summary), summary.get("forget_split")
    version = bench.get("version")
    out = f"Lethe report: {bench.get('name', 'unknown benchmark')}" + (f" v{version}" if version else "")
    return out + (f", {split}" if split else "")


def bench_lines(summary: dict) -> list[tuple[str, str]]:
    bench = _bench(summary)
    return [("benchmark", f"{bench.get('name', NA)} (version {bench.get('version', NA)})"),
            ("forget split", str(summary.get("forget_split", NA))),
            ("lethe version", str(summary.get("lethe_version", NA)))]


def _flat(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def notes(summary: dict) -> list[str]:
    given = summary.get("notes") or []
    return [str(n) for n in (given if isinstance(given, list) else [given])]


def provenance(summary: dict) -> list[tuple[str, str]]:
    prov = summary.get("provenance") or {}
    if not isinstance(prov, dict):
        return [("provenance", _flat(prov))]
    return [(str(k), _flat(v)) for k, v in prov.items()]


def configs(summary: dict) -> list[tuple[str, str]]:
    return [(row_name(r, i), _flat(r["config"])) for i, r in enumerate(summary["rows"])
            if isinstance(r.get("config"), dict) and r["config"]]


def curves_of(summary: dict) -> dict | None:
    """``summary["curves"]`` = {"metrics", "rounds", "series": {name: {metric: [...]}}, "reference"}, or None."""
    c = summary.get("curves")
    return c if isinstance(c, dict) and c.get("series") and c.get("rounds") else None


def heatmap_of(summary: dict) -> dict | None:
    """``summary["heatmap"]`` = {"title", "metric", "columns", "rows": [{"name", "values"}]}, or None."""
    h = summary.get("heatmap")
    return h if isinstance(h, dict) and h.get("rows") and h.get("columns") else None


def radar_of(summary: dict) -> dict | None:
    """``summary["radar"]`` = {"axes": [{"key", "label", "invert"}, ...] (three or more), "caption"}, or None."""
    r = summary.get("radar")
    return r if isinstance(r, dict) and len(r.get("axes") or []) >= 3 else None
