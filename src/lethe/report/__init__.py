"""Reports of a run, drawn from its ``summary.json`` alone: tables, PNG figures, ``report.md``, ``report.html``.

``summary.json`` (written by the run)::

    {"lethe_version": ..., "benchmark": {"name", "version"}, "forget_split": ...,
     "rows": [{"name", "kind": "target" | "retain" | "method", "method", "metrics": {...},
               "seconds": {"unlearn", "eval"}, "config": {...}}, ...],
     "directions": {metric: "higher" | "lower"}, "notes": [...], "provenance": {...}}

``import lethe.report`` stays light: matplotlib and rich are imported inside the functions that draw.
"""
from __future__ import annotations

from .files import write_report
from .page import render_html, render_markdown
from .plots import curves_png, heatmap_png, radar_png, radar_values, tradeoff_png
from .summary import FQ_FLOOR, format_value, load_summary
from .tables import ROBUSTNESS_HEADER, format_table, print_summary, robustness_cells, robustness_header
