"""Tables of a run: markdown, the terminal (rich), confidence intervals, robustness, heat map, curves.

A markdown cell escapes what would change the table or its rendering (:func:`md_cell`), so a label is shown as typed.
"""
from __future__ import annotations

from .summary import (
    MAIN_COLUMNS, best_rows, check_summary, columns_of, curves_of, format_value, header, heatmap_of, legend, number,
    row_name, row_value, title,
)

_MD_ESCAPES = str.maketrans({"\\": "\\\\", "|": "\\|", "$": "\\$", "<": "\\<", "`": "\\`", "[": "\\[", "]": "\\]",
                             "\n": " ", "\r": " "})


def md_cell(text: object) -> str:
    """``text`` as literal markdown inside a table cell (a backslash escape is valid for any ASCII
    punctuation in CommonMark, so the escaped text renders exactly as typed)."""
    return str(text).translate(_MD_ESCAPES)


def md_lines(head: list[str], rows, left: int = 1) -> list[str]:
    """A markdown table's lines from ready cells: the first ``left`` columns left-aligned, the others right."""
    line = "| {} |".format
    return [line(" | ".join(head)), "|" + "---|" * left + "---:|" * (len(head) - left),
            *(line(" | ".join(r)) for r in rows)]


def value_rows(summary: dict, cols: list[str]) -> list[tuple[str, list[tuple[str, bool]]]]:
    """Per row: its name and, per column, the value as text and whether it is the column's best."""
    best = {c: best_rows(summary, c) for c in cols}
    return [(row_name(row, i), [(format_value(c, row_value(row, c)), i in best[c]) for c in cols])
            for i, row in enumerate(summary["rows"])]


def format_table(summary: dict, columns=None) -> str:
    """The markdown table of ``summary``: one row per model, direction arrows in the header,
    the best method's value per column in bold. ``columns`` defaults to :data:`MAIN_COLUMNS`
    plus the unlearning seconds."""
    check_summary(summary, "summary")
    cols = columns_of(summary, columns)
    rows = [[md_cell(name), *(f"**{t}**" if b else t for t, b in cells)] for name, cells in value_rows(summary, cols)]
    return "\n".join(md_lines(["model", *(md_cell(header(summary, c)) for c in cols)], rows)) + "\n"


def print_summary(summary: dict, console=None, columns=None):
    """Print the summary table to the terminal with rich; returns the ``rich.table.Table``."""
    from rich import box
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    check_summary(summary, "summary")
    if columns is None and not summary.get("columns"):  # fit an 80-column terminal; report.md has them all
        columns = [c for c in MAIN_COLUMNS if c != "forget_probability"]
    cols = columns_of(summary, columns)
    table = Table(title=escape(title(summary)), title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                  padding=(0, 0, 0, 1))
    table.add_column("model", style="bold", no_wrap=True)
    for c in cols:
        table.add_column(escape(header(summary, c, short=True)), justify="right", no_wrap=True)
    for name, cells in value_rows(summary, cols):
        table.add_row(escape(name), *(f"[bold green]{t}[/]" if b else t for t, b in cells))
    if console is None:
        console = Console()
        if not console.is_terminal:  # a file or a pipe: no reason to squeeze the table into 80 columns
            console = Console(width=max(console.width, 100))
    console.print(table)
    console.print(escape(legend(summary, cols)), style="dim")
    return table


CI_COLUMNS = ("forget_quality", "model_utility", "forget_efficacy", "forget_rouge_l", "forget_truth_ratio",
              "retain_rouge_l")
CI_LEGEND = ("value [low, high]: percentile bootstrap over items (eval.bootstrap resamples); model utility "
             "resamples each split's items jointly, forget quality both models' forget items.")


def interval_cells(summary: dict) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """Columns and per-row cells "value [low, high]" of the main aggregates; ([], []) without intervals."""
    rows = [r for r in summary["rows"] if r.get("intervals")]
    wanted = summary.get("columns") or CI_COLUMNS  # a scenario's main columns, else TOFU's aggregates
    cols = [c for c in wanted if any(c in r["intervals"] for r in rows)][:6]
    if not cols:
        return [], []

    def cell(row: dict, c: str) -> str:
        iv, v = (row.get("intervals") or {}).get(c), row_value(row, c)
        text = format_value(c, v)
        return text if iv is None or v is None else f"{text} [{format_value(c, iv[0])}, {format_value(c, iv[1])}]"

    return cols, [(row_name(row, i), [cell(row, c) for c in cols]) for i, row in enumerate(summary["rows"])]


ROBUSTNESS_LEGEND = ("Forget-set metrics on the items each attack did not train on, before → after the attack "
                     "(relearning scores the held-out part of the forget set). Knowledge that comes back was still "
                     "in the weights; the retain model under the same attack is the control.")

ROBUSTNESS_HEADER = ["model", "attack", "items", "forget probability", "forget ROUGE-L", "forget truth ratio"]
ROBUSTNESS_LABELS = {"forget_probability": "forget probability", "forget_rouge_l": "forget ROUGE-L",
                     "forget_truth_ratio": "forget truth ratio", "forget_verbmem": "forget VerbMem",
                     "forget_knowmem": "forget KnowMem"}


def robustness_keys(summary: dict) -> list[str]:
    """The metric keys the run's attacks measured (a scenario's own: the TOFU three, VerbMem, hazard
    accuracy, ...), in their first order."""
    attacks = [r for row in summary["rows"] for r in (row.get("robustness") or {}).values()]
    keys = dict.fromkeys(k for r in attacks for k in [*r.get("before", {}), *r.get("after", {})])
    return list(keys) or list(ROBUSTNESS_HEADER[3:])


def robustness_header(summary: dict) -> list[str]:
    labels = (ROBUSTNESS_LABELS.get(k, k.replace("_", " ")) for k in robustness_keys(summary))
    return ["model", "attack", "items", *labels]


def robustness_cells(summary: dict) -> list[list[str]]:
    """Rows [model, attack, items, one "before → after" cell per measured key]."""
    keys = robustness_keys(summary)
    out = []
    for i, row in enumerate(summary["rows"]):
        for attack, r in (row.get("robustness") or {}).items():
            before, after = r.get("before", {}), r.get("after", {})
            out.append([row_name(row, i), attack, str(r.get("items", "")),
                        *(f"{format_value(k, before.get(k))} → {format_value(k, after.get(k))}" for k in keys)])
    return out


def heatmap_table(summary: dict) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the heat map's values as text; ([], []) without a heat map."""
    h = heatmap_of(summary)
    if h is None:
        return [], []
    metric = str(h.get("metric", ""))
    return ["model", *h["columns"]], [[r["name"], *[format_value(metric, v) for v in r["values"]]] for r in h["rows"]]


def curve_tables(summary: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    """Per metric: (metric, header, rows) with one row per method (+ the gold standard), one column per round."""
    c = curves_of(summary)
    if c is None:
        return []
    rounds = list(c["rounds"])
    ref = c.get("reference") or {}
    out = []
    for m in c.get("metrics") or []:
        rows = [[name] + [format_value(m, v) for v in (values.get(m) or [])] for name, values in c["series"].items()]
        if any(number(v) is not None for v in (ref.get("values") or {}).get(m) or []):
            rows.append([ref.get("name", "gold standard")] + [format_value(m, v) for v in ref["values"][m]])
        out.append((m, ["model"] + [str(r) for r in rounds], rows))
    return out

