"""Reports: markdown table, trade-off PNG, self-contained HTML, and one-line errors for bad run folders."""
from __future__ import annotations

import base64
import json
import re
import subprocess
import sys

import pytest

from lethe.errors import LetheError
from lethe.report import FQ_FLOOR, format_table, print_summary, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _metrics(fq, mu, f_rouge, **over):
    m = {
        "forget_quality": fq, "model_utility": mu, "forget_rouge_l": f_rouge, "forget_probability": 0.9,
        "forget_truth_ratio": 0.3, "retain_rouge_l": 0.95, "retain_probability": 0.9, "retain_truth_ratio": 0.6,
        "world_facts_rouge_l": 0.8, "world_facts_probability": 0.5, "world_facts_truth_ratio": 0.4,
        "known_people_rouge_l": 0.7, "known_people_probability": 0.45, "known_people_truth_ratio": 0.4,
    }
    m.update(over)
    return m


def make_summary() -> dict:
    npo = _metrics(3.4e-3, 0.47, 0.41, retain_rouge_l=0.88)
    del npo["known_people_rouge_l"]  # a metric this row never measured
    return {
        "lethe_version": "0.1.0",
        "benchmark": {"name": "lethe-authors", "version": "1.0"},
        "forget_split": "forget10",
        "rows": [
            {"name": "target", "kind": "target", "method": None, "metrics": _metrics(1.2e-9, 0.52, 0.97),
             "seconds": {"unlearn": 0.0, "eval": 5.1}},
            {"name": "retain model", "kind": "retain", "method": None, "metrics": _metrics(1.0, 0.51, 0.31),
             "seconds": {"unlearn": 0.0, "eval": 5.0}},
            {"name": "npo", "kind": "method", "method": "npo", "metrics": npo,
             "seconds": {"unlearn": 12.34, "eval": 5.2}, "config": {"beta": 0.1, "alpha": 1.0}},
            {"name": "ga", "kind": "method", "method": "ga", "metrics": _metrics(0.0, 0.05, 0.02, world_facts_rouge_l=None),
             "seconds": {"unlearn": 9.87, "eval": 5.3}, "config": {"lr": 1e-5}},
        ],
        "directions": {
            "forget_quality": "higher", "model_utility": "higher", "forget_rouge_l": "lower",
            "forget_probability": "lower", "forget_truth_ratio": "higher", "retain_rouge_l": "higher",
            "world_facts_rouge_l": "higher", "known_people_rouge_l": "higher",
        },
        "notes": ["retain model's forget ROUGE-L (template floor): 0.31"],
        "provenance": {"git_sha": "abc1234", "created": "2025-01-01T00:00:00Z", "hardware": "cpu",
                       "seeds": {"train": 0}},
    }


def _md_row(md: str, name: str) -> str:
    lines = [ln for ln in md.splitlines() if ln.startswith(f"| {name} |")]
    assert lines, f"no table row for {name!r}"
    return lines[0]


def test_write_report_files_and_content(tmp_path):
    summary = make_summary()
    paths = write_report(tmp_path, summary)
    assert set(paths) == {"md", "png", "html"}
    for p in paths.values():
        assert p.is_file() and p.parent == tmp_path
    assert not list(tmp_path.glob(".*.tmp")), "temp files left behind"

    md = paths["md"].read_text(encoding="utf-8")
    assert "lethe-authors" in md and "1.0" in md and "forget10" in md
    assert "forget_quality ↑" in md and "forget_rouge_l ↓" in md
    for row in summary["rows"]:
        line = _md_row(md, row["name"])
        m = row["metrics"]
        assert f"{m['forget_quality']:.2e}" in line
        for key in ("model_utility", "forget_rouge_l", "forget_probability", "retain_rouge_l"):
            assert f"{m[key]:.3f}" in line
        assert f"{row['seconds']['unlearn']:.1f}" in line
    assert _md_row(md, "npo").count("n/a") == 1  # known_people_rouge_l absent
    assert _md_row(md, "ga").count("n/a") == 1  # world_facts_rouge_l null
    assert f"{0.0:.2e}" in _md_row(md, "ga")  # forget quality 0 is shown as measured, not clipped
    # best method per column in bold, respecting direction: npo has the higher FQ, ga the lower forget ROUGE-L
    assert f"**{3.4e-3:.2e}**" in _md_row(md, "npo")
    assert f"**{0.02:.3f}**" in _md_row(md, "ga")
    assert f"{FQ_FLOOR:.0e}" in md and "ga" in md.split("Trade-off")[1]  # caption names the clipped row
    assert summary["notes"][0] in md and "abc1234" in md

    png = paths["png"].read_bytes()
    assert png.startswith(PNG_MAGIC)
    import matplotlib.image

    img = matplotlib.image.imread(paths["png"])
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100

    page = paths["html"].read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    match = re.search(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert match and base64.b64decode(match.group(1)) == png
    for row in summary["rows"]:
        assert f"<td>{row['name']}</td>" in page
    assert f'<td class="best">{0.02:.3f}</td>' in page
    assert '<td class="na">n/a</td>' in page
    assert summary["notes"][0].replace("'", "&#x27;") in page and "abc1234" in page


def test_write_report_reads_summary_json(tmp_path):
    summary = make_summary()
    (tmp_path / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    paths = write_report(tmp_path)
    assert "retain model" in paths["md"].read_text(encoding="utf-8")
    assert paths["png"].read_bytes().startswith(PNG_MAGIC)


def test_missing_summary_json(tmp_path):
    run_dir = tmp_path / "run-without-summary"
    run_dir.mkdir()
    with pytest.raises(LetheError, match="no summary.json") as exc:
        write_report(run_dir)
    assert str(run_dir) in str(exc.value)
    assert not list(run_dir.iterdir())


@pytest.mark.parametrize("text", ["{not json", json.dumps({"benchmark": {"name": "x"}}), "[1, 2]"])
def test_malformed_summary_json(tmp_path, text):
    path = tmp_path / "summary.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(LetheError) as exc:
        write_report(tmp_path)
    assert str(path) in str(exc.value)
    assert not (tmp_path / "report.md").exists()


def test_format_table_and_print_summary():
    summary = make_summary()
    table = format_table(summary)
    lines = table.strip().splitlines()
    assert len(lines) == 2 + len(summary["rows"])
    assert all(ln.count("|") == lines[0].count("|") for ln in lines)

    from rich.console import Console

    console = Console(record=True, width=250)
    print_summary(summary, console=console)
    text = console.export_text()
    for row in summary["rows"]:
        assert row["name"] in text
    assert f"{0.52:.3f}" in text and "n/a" in text


def test_plot_without_retain_model_or_forget_quality(tmp_path):
    summary = make_summary()
    summary["rows"] = [r for r in summary["rows"] if r["kind"] != "retain"]
    for r in summary["rows"]:
        r["metrics"].pop("forget_quality")
    paths = write_report(tmp_path, summary)
    assert paths["png"].read_bytes().startswith(PNG_MAGIC)
    md = paths["md"].read_text(encoding="utf-8")
    assert _md_row(md, "target").split("|")[2].strip() == "n/a"
    assert "Not plotted" in md


def test_import_is_light():
    code = "import sys, lethe.report; print(any(m in sys.modules for m in ('matplotlib', 'torch', 'rich')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ----------------------------------------------------------------------------- labels from data are literal

HOSTILE = ["$\\frac$", "a_b^c", "50%", "{x}", "$$", "L" * 150 + "$" + "M" * 149, "", "_x", "[bold]x[/]",
           "a|b", "<i>x</i>", "back\\slash\\|"]
assert len(HOSTILE[5]) == 300


def _hostile_summary(metric_keys: bool) -> dict:
    """Every text the report draws comes from these labels: rows, series, attacks, axes, titles."""
    rows = []
    for i, name in enumerate(HOSTILE):
        metrics = {"model_utility": 0.05 * i, "forget_quality": 10.0 ** -i, "forget_rouge_l": 0.5, "u": 0.4,
                   "s": 0.3, "r": 0.7, "$\\frac$": 0.1 * i, "$$": 0.2}
        rows.append({"name": name, "kind": ("target", "retain")[i] if i < 2 else "method", "metrics": metrics,
                     "seconds": {"unlearn": 1.0}, "config": {"label": name},
                     "intervals": {"forget_rouge_l": [0.4, 0.6]},
                     "robustness": {name: {"items": 2, "before": {"forget_probability": 0.1},
                                           "after": {"forget_probability": 0.4}}}})
    summary = {
        "benchmark": {"name": "$\\frac$", "version": "$$"}, "forget_split": "{x}", "rows": rows,
        "directions": {"model_utility": "higher", "forget_quality": "higher"},
        "curves": {"metrics": ["forget_quality", "$\\frac$"], "rounds": [1, 2],
                   "series": {n: {"forget_quality": [0.1, 0.2], "$\\frac$": [0.3, 0.4]} for n in HOSTILE},
                   "reference": {"name": "$$", "values": {"forget_quality": [1.0, 1.0], "$\\frac$": [0.5, 0.5]}}},
        "heatmap": {"title": "$\\frac$", "metric": "a_b^c", "columns": HOSTILE,
                    "rows": [{"name": n, "values": [0.5] * len(HOSTILE)} for n in HOSTILE]},
        "radar": {"axes": [{"key": "u", "label": "$\\frac$"}, {"key": "s", "label": "$$", "invert": True},
                           {"key": "r", "label": HOSTILE[5]}], "caption": "{x}"},
    }
    if metric_keys:
        summary["tradeoff"] = {"x": "$\\frac$", "y": "$$", "log_y": False}
    return summary


def test_literal_text_is_never_maths():
    from matplotlib.cbook import is_math_text

    from lethe.report.plots import LABEL_CHARS, literal

    for label in HOSTILE + ["\\$", "$a$ and $b$"]:
        text = literal(label)
        assert not is_math_text(text), label
        assert len(text.replace("\\$", "$")) <= LABEL_CHARS
        if len(label) <= LABEL_CHARS:
            assert text.replace("\\$", "$") == label  # matplotlib draws an escaped $ as $


@pytest.mark.parametrize("metric_keys", [False, True], ids=["default-axes", "hostile-metric-keys"])
def test_every_plot_draws_hostile_labels(metric_keys):
    from lethe.report import curves_png, heatmap_png, radar_png, tradeoff_png

    summary = _hostile_summary(metric_keys)
    for draw in (tradeoff_png, curves_png, heatmap_png, radar_png):
        png = draw(summary)
        assert png is not None and png.startswith(PNG_MAGIC) and len(png) > 1000, draw.__name__


def _md_cells(line: str) -> list[str]:
    """A markdown table row split as GFM does (an escaped pipe stays in its cell), each cell unescaped."""
    cells, cur, i = [], "", 0
    while i < len(line):
        ch = line[i]
        if ch == "\\" and i + 1 < len(line):
            cur += line[i + 1]
            i += 2
            continue
        if ch == "|":
            cells.append(cur.strip())
            cur = ""
        else:
            cur += ch
        i += 1
    return cells[1:]  # the text before the first pipe


def _md_table(md: str, heading: str) -> list[str]:
    """The lines of the first table after ``heading``."""
    lines = md.split(heading, 1)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return lines[start:end]


def test_markdown_and_html_escape_hostile_labels():
    import html

    from lethe.report import render_html, render_markdown

    summary = _hostile_summary(metric_keys=True)
    md = render_markdown(summary)
    names = [n or f"row {i}" for i, n in enumerate(HOSTILE)]
    table = _md_table(md, "## Results")
    width = len(_md_cells(table[0]))
    assert all(len(_md_cells(line)) == width for line in table)
    assert [_md_cells(line)[0] for line in table[2:]] == names  # each label reads back exactly
    for line in md.splitlines():
        if line.startswith("|"):
            bare = line.replace("\\\\", "")  # escaped backslashes out of the way
            assert re.search(r"(?<!\\)[$<]", bare) is None, line  # no unescaped $ (maths) or < (a tag)
    rob = _md_table(md, "## Robustness")[2:]
    assert [_md_cells(line)[:2] for line in rob] == [[n, a] for n, a in zip(names, HOSTILE)]
    heat = _md_table(md, "## Per attack")
    assert _md_cells(heat[0]) == ["model", *HOSTILE] and [_md_cells(line)[0] for line in heat[2:]] == HOSTILE

    page = render_html(summary, PNG_MAGIC, PNG_MAGIC, PNG_MAGIC, PNG_MAGIC)
    for name in names:
        assert f"<td>{html.escape(name)}</td>" in page
    assert "<i>x</i>" not in page and "&lt;i&gt;x&lt;/i&gt;" in page
    assert "<title>" + html.escape("Lethe report: $\\frac$ v$$, {x}") + "</title>" in page


def test_print_summary_shows_labels_as_typed():
    from rich.console import Console

    summary = _hostile_summary(metric_keys=False)
    console = Console(record=True, width=400)
    print_summary(summary, console=console, columns=["model_utility"])
    text = console.export_text()
    for name in HOSTILE[:5] + HOSTILE[7:]:
        assert name in text, name


# ----------------------------------------------------------------------------- results.json and failed drawing


def test_results_json_is_replaced_whole(tmp_path):
    from lethe.rundir import RunFolder

    folder = RunFolder(tmp_path, "run").claim()
    path = folder.write_text("results.json", json.dumps({"models": [{"name": "ga"}]}))
    assert path == folder.partial / "results.json"
    assert json.loads(path.read_text(encoding="utf-8")) == {"models": [{"name": "ga"}]}
    folder.write_text("results.json", json.dumps({"models": [{"name": "ga"}, {"name": "npo"}]}))  # after the next model
    assert [m["name"] for m in json.loads(path.read_text(encoding="utf-8"))["models"]] == ["ga", "npo"]
    with pytest.raises(UnicodeEncodeError):
        folder.write_text("results.json", '{"models": ["\ud800"]}')  # cannot be written: the last good file stays
    assert [m["name"] for m in json.loads(path.read_text(encoding="utf-8"))["models"]] == ["ga", "npo"]
    assert sorted(p.name for p in folder.partial.iterdir()) == ["results.json"]
    folder.release()


def test_failed_drawing_leaves_the_run_folder_alone(tmp_path, monkeypatch):
    import lethe.report.plots

    summary = make_summary()
    (tmp_path / "results.json").write_text('{"models": []}', encoding="utf-8")
    (tmp_path / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    write_report(tmp_path, summary)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert {"results.json", "summary.json", "report.md", "report.html", "tradeoff.png"} <= set(before)

    def broken(summary, dpi=130):
        raise RuntimeError("drawing failed")

    monkeypatch.setattr(lethe.report.plots, "radar_png", broken)
    changed = make_summary()
    changed["rows"][2]["name"] = "npo (changed)"
    with pytest.raises(RuntimeError, match="drawing failed"):
        write_report(tmp_path, changed)
    with pytest.raises(RuntimeError, match="drawing failed"):
        write_report(tmp_path)  # from summary.json
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # nothing written, nothing left half


def test_robustness_table_shows_the_keys_the_attacks_measured():
    """TOFU's three forget metrics for the default job; a scenario's own keys (hazard accuracy, VerbMem)
    where its attacks measured those, never "n/a" for a value that is in the summary."""
    from lethe.report import ROBUSTNESS_HEADER, render_markdown, robustness_cells, robustness_header

    tofu = make_summary()
    tofu["rows"][2]["robustness"] = {"relearn": {"items": 4, "before": {
        "forget_probability": 0.2, "forget_rouge_l": 0.3, "forget_truth_ratio": 0.6}, "after": {
        "forget_probability": 0.5, "forget_rouge_l": 0.7, "forget_truth_ratio": 0.5}}}
    assert robustness_header(tofu) == ROBUSTNESS_HEADER
    haz = make_summary()
    haz["rows"][2]["robustness"] = {"relearn": {"items": 4, "before": {"hazard_accuracy": 0.25, "general_accuracy": 0.5},
                                                "after": {"hazard_accuracy": 0.75, "general_accuracy": 0.5}}}
    assert robustness_header(haz) == ["model", "attack", "items", "hazard accuracy", "general accuracy"]
    (cells,) = robustness_cells(haz)
    assert cells[3:] == ["0.250 → 0.750", "0.500 → 0.500"]
    md = render_markdown(haz)
    assert "| hazard accuracy | general accuracy |" in md and "|---|---|---:|---:|---:|" in md
