"""The report as text: ``report.md`` and the self-contained ``report.html`` (figures inlined as base64).

Labels from data are escaped for each format: :func:`~lethe.report.tables.md_cell` in markdown,
:func:`html.escape` in HTML, so a user's label is shown as typed and never becomes markup.
"""
from __future__ import annotations

import base64
import html

from .plots import CURVES_PNG, HEATMAP_PNG, RADAR_PNG, plot_alt, plot_caption
from .summary import (
    MAIN_COLUMNS, NA, all_metric_columns, bench_lines, columns_of, configs, header, notes, provenance, radar_of, title,
)
from .tables import (
    CI_LEGEND, ROBUSTNESS_LEGEND, curve_tables, format_table, heatmap_table, interval_cells, md_cell,
    md_lines, robustness_cells, robustness_header, value_rows,
)


def render_markdown(summary: dict, png_name: str = "tradeoff.png") -> str:
    out = [f"# {md_cell(title(summary))}", ""]
    out += [f"- **{k}**: {md_cell(v)}" for k, v in bench_lines(summary)]
    out += ["", "## Results", "", format_table(summary)]
    out += ["↑ / ↓: higher / lower is better. Bold: the best unlearning method per column "
            "(the target and the retain model are references). n/a: not measured in this run.", "",
            "## Trade-off", "", f"![{md_cell(plot_alt(summary))}]({png_name})", "", md_cell(plot_caption(summary)), ""]
    cols, cells = interval_cells(summary)
    if cols:
        head = ["model", *(md_cell(header(summary, c)) for c in cols)]
        out += ["## 95 % confidence intervals", "", *md_lines(head, ([md_cell(n), *r] for n, r in cells)),
                "", CI_LEGEND, ""]
    if rob := robustness_cells(summary):
        out += ["## Robustness: does the knowledge come back?", ""]
        out += md_lines(robustness_header(summary), ([md_cell(c) for c in r] for r in rob), left=2)
        out += ["", ROBUSTNESS_LEGEND, ""]
    head, cells = heatmap_table(summary)
    if head:
        h = summary["heatmap"]
        out += ["## Per attack", "", f"![{md_cell(h.get('title', 'heat map'))}]({HEATMAP_PNG})", ""]
        out += md_lines([md_cell(c) for c in head], ([md_cell(c) for c in r] for r in cells)) + [""]
        if h.get("caption"):
            out += [h["caption"], ""]
    if radar_of(summary):
        out += ["## Three axes", "", f"![three-axis plot]({RADAR_PNG})", "", summary["radar"].get("caption", ""), ""]
    if tables := curve_tables(summary):
        out += ["## Over rounds", "", f"![metrics over rounds]({CURVES_PNG})", ""]
        for m, head, rows in tables:
            out += [f"**{md_cell(header(summary, m))}**", ""]
            out += md_lines(head, ([md_cell(x) for x in r] for r in rows)) + [""]
    extra = all_metric_columns(summary)
    if [c for c in extra if c not in MAIN_COLUMNS]:
        out += ["## All metrics", "", format_table(summary, columns=extra)]
    if given := notes(summary):
        out += ["## Notes", ""] + [f"- {n}" for n in given] + [""]
    if configured := configs(summary):
        out += ["## Method configs", ""] + [f"- **{md_cell(n)}**: `{c}`" for n, c in configured] + [""]
    if prov := provenance(summary):
        out += ["## Provenance", ""] + [f"- **{k}**: {v}" for k, v in prov] + [""]
    return "\n".join(out)


CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1100px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.9em; overflow-x: auto; display: block; }
th, td { padding: 0.35em 0.7em; border-bottom: 1px solid #e3e3e3; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
th { background: #f4f4f4; }
tr.target td:first-child::after { content: " (target)"; color: #888; font-size: 0.85em; }
tr.retain td:first-child::after { content: " (gold standard)"; color: #888; font-size: 0.85em; }
td.best { background: #dff3df; font-weight: 600; }
td.na { color: #999; }
img { max-width: 100%; }
.caption, .legend { color: #555; font-size: 0.9em; }
code { background: #f4f4f4; padding: 0 0.25em; word-break: break-all; }
"""


def _td(text: str, best: bool) -> str:
    cls = "best" if best else ("na" if text == NA else "")
    return f'<td class="{cls}">{html.escape(text)}</td>' if cls else f"<td>{html.escape(text)}</td>"


def _html_table(summary: dict, columns=None) -> str:
    cols = columns_of(summary, columns)
    head = "".join(f"<th>{html.escape(header(summary, c))}</th>" for c in cols)
    trs = []
    for row, (name, cells) in zip(summary["rows"], value_rows(summary, cols)):
        kind = html.escape(str(row.get("kind") or ""), quote=True)
        trs.append(f'<tr class="{kind}"><td>{html.escape(name)}</td>{"".join(_td(t, b) for t, b in cells)}</tr>')
    body = "\n".join(trs)
    return f"<table>\n<thead><tr><th>model</th>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"


def html_img(png: bytes, alt: str) -> str:
    return f'<img src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}" alt="{html.escape(alt)}">'


def html_table(head, rows) -> str:
    """A plain table: one header row, then the rows; every cell escaped."""
    th = "".join(f"<th>{html.escape(str(h))}</th>" for h in head)
    trs = "".join("<tr>" + "".join(f"<td>{html.escape(str(x))}</td>" for x in r) + "</tr>" for r in rows)
    return f"<table><tr>{th}</tr>{trs}</table>"


def _list(items, code: bool = False) -> str:
    """``<ul>`` of (label, text) pairs, the text in ``<code>`` when ``code``."""
    fmt = "<li><b>{}</b>: <code>{}</code></li>" if code else "<li><b>{}</b>: {}</li>"
    return "<ul>" + "".join(fmt.format(html.escape(k), html.escape(v)) for k, v in items) + "</ul>"


def render_html(summary: dict, png: bytes, curves: bytes | None = None, heatmap: bytes | None = None,
                radar: bytes | None = None) -> str:
    esc = html.escape
    page_title = esc(title(summary))
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{page_title}</title><style>{CSS}</style></head><body>", f"<h1>{page_title}</h1>",
             _list(bench_lines(summary)), "<h2>Results</h2>", _html_table(summary),
             '<p class="legend">↑ / ↓: higher / lower is better. Highlighted: the best unlearning method per '
             "column (the target and the retain model are references). n/a: not measured in this run.</p>",
             "<h2>Trade-off</h2>", html_img(png, plot_alt(summary)),
             f'<p class="caption">{esc(plot_caption(summary))}</p>']
    cols, cells = interval_cells(summary)
    if cols:
        parts += ["<h2>95 % confidence intervals</h2>",
                  html_table(["model", *(header(summary, c) for c in cols)], ([name, *row] for name, row in cells)),
                  f'<p class="legend">{esc(CI_LEGEND)}</p>']
    if rob := robustness_cells(summary):
        parts += ["<h2>Robustness: does the knowledge come back?</h2>", html_table(robustness_header(summary), rob),
                  f'<p class="legend">{esc(ROBUSTNESS_LEGEND)}</p>']
    if heatmap is not None:
        parts += ["<h2>Per attack</h2>", html_img(heatmap, "heat map"), html_table(*heatmap_table(summary))]
        if summary["heatmap"].get("caption"):
            parts.append(f'<p class="legend">{esc(summary["heatmap"]["caption"])}</p>')
    if radar is not None:
        parts += ["<h2>Three axes</h2>", html_img(radar, "three-axis plot"),
                  f'<p class="caption">{esc(summary["radar"].get("caption", ""))}</p>']
    if curves is not None:
        parts += ["<h2>Over rounds</h2>", html_img(curves, "metrics over rounds")]
        for m, head, rows in curve_tables(summary):
            parts += [f"<h3>{esc(header(summary, m))}</h3>", html_table(head, rows)]
    extra = all_metric_columns(summary)
    if [c for c in extra if c not in MAIN_COLUMNS]:
        parts += ["<details><summary>All metrics</summary>", _html_table(summary, columns=extra), "</details>"]
    if given := notes(summary):
        parts += ["<h2>Notes</h2>", "<ul>" + "".join(f"<li>{esc(n)}</li>" for n in given) + "</ul>"]
    if configured := configs(summary):
        parts += ["<h2>Method configs</h2>", _list(configured, code=True)]
    if prov := provenance(summary):
        parts += ["<h2>Provenance</h2>", _list(prov, code=True)]
    parts.append("</body></html>\n")
    return "\n".join(parts)
