"""Writing a run folder: the folder itself (all or nothing), its results and its report files.

Every file is written to a temp file in the same folder and renamed (DESIGN.md, principle 10), so a
crash leaves either the old file or the new one, never half of one.
"""
from __future__ import annotations

import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from ..benchmarks.base import atomic_write_bytes, atomic_write_text
from . import plots
from .page import render_html, render_markdown
from .summary import check_summary, load_summary


@contextmanager
def partial_folder(out: str | Path):
    """``with partial_folder(out) as tmp:`` -- build a run folder in ``.<name>.partial`` next to ``out`` and
    rename it to ``out`` when the block succeeds (replacing an old ``out``); on any error it is removed,
    so a crash never leaves half a run."""
    out = Path(out)
    tmp = out.parent / f".{out.name}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_results(folder: str | Path, results: dict) -> Path:
    """Write ``folder/results.json`` atomically; returns its path.

    Cheap enough to call after every model, so a run that fails later keeps what it has measured."""
    path = Path(folder) / "results.json"
    atomic_write_text(path, json.dumps(results))
    return path


def write_run_files(folder: str | Path, resolved_config: dict, summary: dict, results: dict) -> None:
    """config.yaml, results.json, summary.json and the report of a run, into ``folder``."""
    import yaml

    folder = Path(folder)
    atomic_write_text(folder / "config.yaml", yaml.safe_dump(resolved_config, sort_keys=False))
    write_results(folder, results)
    atomic_write_text(folder / "summary.json", json.dumps(summary, indent=2))
    write_report(folder, summary)


def write_report(run_dir: str | Path, summary: dict | None = None) -> dict[str, Path]:
    """Write ``report.md``, ``tradeoff.png`` and ``report.html`` (and the optional figures) into ``run_dir``.

    ``summary`` defaults to ``run_dir/summary.json``. Returns ``{"md": ..., "png": ..., "html": ...}``.
    Every figure and page is rendered in memory before the first file is written, so when drawing
    fails nothing in ``run_dir`` changes: ``results.json`` and ``summary.json`` are only ever read here,
    and the old report stays whole. Each file is then written atomically.
    """
    run_dir = Path(run_dir)
    if summary is None:
        summary = load_summary(run_dir)
    else:
        check_summary(summary, "summary")
    paths = {"md": run_dir / "report.md", "png": run_dir / "tradeoff.png", "html": run_dir / "report.html"}
    png = plots.tradeoff_png(summary)
    curves = plots.curves_png(summary)
    heatmap = plots.heatmap_png(summary)
    radar = plots.radar_png(summary)
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
