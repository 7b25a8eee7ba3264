"""Writing a run's report files, each to a temp file in the same folder and renamed (DESIGN.md, principle 10)."""
from __future__ import annotations

from pathlib import Path

from ..benchmarks.base import atomic_write_bytes, atomic_write_text
from . import plots
from .page import render_html, render_markdown
from .summary import check_summary, load_summary


def write_report(run_dir: str | Path, summary: dict | None = None) -> dict[str, Path]:
    """Write ``report.md``, ``tradeoff.png``, ``report.html`` (and the optional figures) into ``run_dir``;
    returns ``{"md": ..., "png": ..., "html": ...}``. Everything is rendered in memory before the first
    file is written, so when drawing fails the old report stays whole."""
    run_dir = Path(run_dir)
    if summary is None:
        summary = load_summary(run_dir)
    else:
        check_summary(summary, "summary")
    paths = {"md": run_dir / "report.md", "png": run_dir / "tradeoff.png", "html": run_dir / "report.html"}
    png, curves, heatmap, radar = (draw(summary) for draw in (plots.tradeoff_png, plots.curves_png,
                                                                plots.heatmap_png, plots.radar_png))
    md = render_markdown(summary, png_name=paths["png"].name)
    page = render_html(summary, png, curves, heatmap, radar)
    atomic_write_bytes(paths["png"], png)
    for key, name, data in (("curves", plots.CURVES_PNG, curves), ("heatmap", plots.HEATMAP_PNG, heatmap),
                            ("radar", plots.RADAR_PNG, radar)):
        if data is not None:
            paths[key] = run_dir / name
            atomic_write_bytes(paths[key], data)
    atomic_write_text(paths["md"], md)
    atomic_write_text(paths["html"], page)
    return paths
