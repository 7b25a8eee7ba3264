"""A sweep's report (``lethe sweep``, docs/sweep.md): the leaderboard (each method at its selected point, the rule,
its trials and seconds), every trial on the trade-off plot with its Pareto front, each method's trials and the
sensitivity of the result to each hyperparameter: ``report.md``, ``report.html`` and ``pareto.png``."""
from __future__ import annotations

import html
import math
from pathlib import Path

from ..benchmarks.base import atomic_write_text
from .page import CSS, html_img, html_table
from .plots import figure, literal, png_bytes
from .tables import md_cell, md_lines

PNG = "pareto.png"


def fmt(v) -> str:
    return "" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)


def _chosen(res: dict) -> dict | None:
    return next((t for t in res["trials"] if t["number"] == res.get("selected")), None)


def params_text(params: dict) -> str:
    return ", ".join(f"{k}={fmt(v)}" for k, v in params.items())


def leaderboard(result: dict) -> tuple[list[str], list[list[str]]]:
    """One row per method: its selected point's metrics and hyperparameters, its trials and seconds."""
    keys = metric_keys(result)
    head = ["method", *keys, "hyperparameters", "trial", "trials", "seconds"]
    rows = [["target", *(fmt(result["target"].get(k)) for k in keys), "", "", "", ""],
            ["retain model", *(fmt(result["retain"].get(k)) for k in keys), "", "", "", ""]]
    for name, res in result["methods"].items():
        t = _chosen(res)
        rows.append([name, *(fmt(t["metrics"].get(k)) if t else "none" for k in keys), params_text(t["params"]) if t else
                     "no trial meets the rule", str(t["number"]) if t else "", str(len(res["trials"])),
                     f"{res['seconds']:.0f}"])
    return head, rows


def metric_keys(result: dict) -> list[str]:
    return list(dict.fromkeys([*result["objectives"], *(k for k in ("forget_quality", "model_utility")
                                                       if k in result["target"])]))


def trial_rows(result: dict, res: dict) -> tuple[list[str], list[list[str]]]:
    keys, params = metric_keys(result), list(res["space"])
    head = ["trial", *keys, *params, "seconds"]
    rows = []
    for t in res["trials"]:
        marks = ("*" if t["number"] in res["pareto"] else "") + (" selected" if t["number"] == res.get("selected") else "")
        rows.append([f"{t['number']}{' ' + marks.strip() if marks else ''}", *(fmt(t["metrics"].get(k)) for k in keys),
                     *(fmt(t["params"].get(p)) for p in params), f"{t['seconds'] or 0:.1f}"])
    return head, rows


def _axes(result: dict) -> tuple[str, str]:
    """The plot's x and y: the first two objectives, else forget quality against model utility."""
    objectives = list(result["objectives"])
    if len(objectives) >= 2:
        return objectives[0], objectives[1]
    return objectives[0], "model_utility" if objectives[0] != "model_utility" else "forget_quality"


def pareto_png(result: dict, dpi: int = 130) -> bytes:
    """Every trial of each method (grey), its Pareto front (a line), the selected point (a star); the target and
    the retain model as references. Forget quality (a p-value) on a log axis."""
    x, y = _axes(result)
    names = list(result["methods"])
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    fig = figure((4.2 * cols, 3.4 * rows))
    for i, name in enumerate(names):
        res, ax = result["methods"][name], fig.add_subplot(rows, cols, i + 1)
        pts = [(t["metrics"].get(x), t["metrics"].get(y), t["number"]) for t in res["trials"]]
        pts = [p for p in pts if p[0] is not None and p[1] is not None]
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=14, color="#999", label="trials")
        front = sorted((p for p in pts if p[2] in res["pareto"]), key=lambda p: p[0])
        ax.plot([p[0] for p in front], [p[1] for p in front], "o-", color="#1f77b4", ms=4, label="Pareto front")
        chosen = [p for p in pts if p[2] == res.get("selected")]
        ax.scatter([p[0] for p in chosen], [p[1] for p in chosen], marker="*", s=160, color="#d62728",
                   zorder=3, label="selected")
        for kind, marker in (("target", "s"), ("retain", "D")):
            ref = result[kind]
            if ref.get(x) is not None and ref.get(y) is not None:
                ax.scatter([ref[x]], [ref[y]], marker=marker, s=40, color="black", facecolors="none",
                           label="target" if kind == "target" else "retain model")
        if x == "forget_quality" and all(p[0] > 0 for p in pts):
            ax.set_xscale("log")
        ax.set_title(literal(name), fontsize=9)
        ax.set_xlabel(x, fontsize=8)
        ax.set_ylabel(y, fontsize=8)
        ax.tick_params(labelsize=7)
        if i == 0:
            ax.legend(fontsize=6)
    return png_bytes(fig, dpi)


def render_markdown(result: dict) -> str:
    head, rows = leaderboard(result)
    x, y = _axes(result)
    out = [f"# Sweep: {md_cell(', '.join(result['methods']))}", "",
           f"Rule: {md_cell(result['rule'])}. Sampler: {result['sampler']}. Objectives: "
           + ", ".join(f"{k} ({d})" for k, d in result["objectives"].items()) + ".", "",
           "## Leaderboard", "", *md_lines(head, ([md_cell(c) for c in r] for r in rows)), "",
           "Each method at the trial its rule selects" + (", then run again with the full suite: "
                                                          "[selected/report.md](selected/report.md)." if
                                                          result.get("selected_run") else "."), "",
           "## Trade-off", "", f"![{x} against {y}, every trial]({PNG})", "",
           f"Every trial (grey), the Pareto front (blue), the selected point (star); the target and the retain "
           f"model for reference. {x} on the x axis, {y} on the y axis.", ""]
    for name, res in result["methods"].items():
        h, r = trial_rows(result, res)
        out += [f"## {md_cell(name)}: every trial", "", *md_lines(h, ([md_cell(c) for c in row] for row in r)), "",
                "\\* on the Pareto front. " + _sensitivity_text(result, res), ""]
    return "\n".join(out)


def _sensitivity_text(result: dict, res: dict) -> str:
    sens, select = res.get("sensitivity") or {}, result["select"]
    if not sens:
        return f"Sensitivity of {select}: too few distinct trials to tell."
    return f"Sensitivity of {select} (Optuna's fANOVA importance): " + ", ".join(
        f"{k} {v:.2f}" for k, v in sorted(sens.items(), key=lambda kv: -kv[1])) + "."


def render_html(result: dict, png: bytes) -> str:
    esc = html.escape
    head, rows = leaderboard(result)
    x, y = _axes(result)
    title = esc("Sweep: " + ", ".join(result["methods"]))
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{title}</title><style>{CSS}</style></head><body>", f"<h1>{title}</h1>",
             f"<p>Rule: {esc(result['rule'])}. Sampler: {esc(result['sampler'])}.</p>",
             "<h2>Leaderboard</h2>", html_table(head, rows),
             "<h2>Trade-off</h2>", html_img(png, f"{x} against {y}, every trial")]
    for name, res in result["methods"].items():
        h, r = trial_rows(result, res)
        parts += [f"<h2>{esc(name)}: every trial</h2>", html_table(h, r),
                  f'<p class="legend">* on the Pareto front. {esc(_sensitivity_text(result, res))}</p>']
    return "\n".join(parts + ["</body></html>"])


def write_sweep_report(folder: Path, result: dict) -> None:
    png = pareto_png(result)
    (folder / PNG).write_bytes(png)
    atomic_write_text(folder / "report.md", render_markdown(result))
    atomic_write_text(folder / "report.html", render_html(result, png))
