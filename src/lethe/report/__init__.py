"""Reports of a run: a markdown table, the TOFU trade-off plot, one self-contained HTML page.

Input is the run's ``summary.json`` (written by the pipeline)::

    {"lethe_version": ..., "benchmark": {"name", "version"}, "forget_split": ...,
     "rows": [{"name", "kind": "target" | "retain" | "method", "method", "metrics": {...},
               "seconds": {"unlearn", "eval"}, "config": {...}}, ...],
     "directions": {metric: "higher" | "lower"}, "notes": [...], "provenance": {...}}

A missing, null or NaN value is shown as "n/a": a report never invents a number (DESIGN.md,
principle 5). Every file is written to a temp file and renamed, so a crash leaves no half report.
Row names and metric keys are drawn and printed as literal text, whatever characters they hold.

``import lethe.report`` stays light: matplotlib and rich are imported inside the functions that draw.

- :mod:`.summary`: reading and checking ``summary.json``, value formatting, columns, best rows;
- :mod:`.tables`: markdown, terminal, interval, robustness, heat-map and curve tables;
- :mod:`.plots`: the PNG figures (trade-off, curves, heat map, radar);
- :mod:`.page`: ``report.md`` and ``report.html``;
- :mod:`.files`: the run folder, ``results.json`` and the report files, each written atomically.
"""
from __future__ import annotations

from .files import partial_folder, write_report, write_results, write_run_files
from .page import render_html, render_markdown
from .plots import (
    CURVES_PNG,
    DEFAULT_TRADEOFF,
    HEATMAP_PNG,
    RADAR_PNG,
    curves_png,
    heatmap_png,
    plot_caption,
    radar_png,
    radar_values,
    tradeoff_axes,
    tradeoff_png,
)
from .summary import (
    ARROWS,
    FQ_FLOOR,
    MAIN_COLUMNS,
    NA,
    SECONDS_COLUMN,
    SHORT,
    all_metric_columns,
    best_rows,
    format_value,
    load_summary,
)
from .tables import (
    CI_COLUMNS,
    CI_LEGEND,
    ROBUSTNESS_HEADER,
    ROBUSTNESS_LEGEND,
    curve_tables,
    format_table,
    heatmap_table,
    interval_cells,
    interval_table,
    print_summary,
    robustness_cells,
    robustness_header,
    robustness_keys,
)
