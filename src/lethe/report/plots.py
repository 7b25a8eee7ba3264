"""The report's figures as PNG bytes, each on its own Agg canvas (no pyplot state).

Text from data goes through :func:`literal`: matplotlib reads a text holding two ``$`` as maths, and a
label such as ``$\\frac$`` would otherwise crash the report after all the training.
"""
from __future__ import annotations

import math
from io import BytesIO

from .summary import FQ_FLOOR, curves_of, direction, heatmap_of, number, radar_of, row_name, row_value, title

CURVES_PNG = "curves.png"
HEATMAP_PNG = "heatmap.png"
RADAR_PNG = "radar.png"
LABEL_CHARS = 60  # longer labels are shortened in the figures (the tables keep them whole)
METHOD_COLORS = [f"C{k}" for k in (0, 1, 4, 5, 6, 7, 8, 9)]  # C2 (green), C3 (red): retain model, target


def literal(text: object, limit: int = LABEL_CHARS) -> str:
    """``text`` as matplotlib draws it literally (every ``$`` escaped: legends and tick labels take no
    ``parse_math`` option), shortened to ``limit`` characters (head … tail)."""
    text = str(text)
    if len(text) > limit:
        head = (limit - 1) * 2 // 3
        text = text[:head] + "…" + text[len(text) - (limit - 1 - head):]
    return text.replace("$", r"\$")


def _legend_label(text: object) -> str:
    """A legend entry: matplotlib leaves out labels that start with "_", so such a label gets a space."""
    text = literal(text)
    return " " + text if text.startswith("_") else text


def png_bytes(fig, dpi: int) -> bytes:
    buf = BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def figure(figsize: tuple[float, float]):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def axis_label(summary: dict, column: str, log: bool = False) -> str:
    arrow = {"higher": "→", "lower": "← (lower is better)"}.get(direction(summary, column) or "", "")
    return f"{column.replace('_', ' ')}{' (log)' if log else ''} {arrow}".strip()


DEFAULT_TRADEOFF = {"x": "model_utility", "y": "forget_quality", "log_y": True}


def tradeoff_axes(summary: dict) -> dict:
    """The plot's axes: ``summary["tradeoff"]`` = {"x", "y", "log_y"} (a scenario's own pair of
    metrics), by default TOFU's forget quality (log) against model utility."""
    axes = dict(DEFAULT_TRADEOFF)
    given = summary.get("tradeoff")
    if isinstance(given, dict):
        axes.update({k: given[k] for k in ("x", "y", "log_y") if k in given})
    axes["default"] = (axes["x"], axes["y"]) == (DEFAULT_TRADEOFF["x"], DEFAULT_TRADEOFF["y"])
    return axes


def _plot_points(summary: dict) -> tuple[list[dict], list[str], list[str]]:
    """Points of the trade-off plot, the names clipped to the floor, the names left out (and why)."""
    axes = tradeoff_axes(summary)
    points, clipped, skipped = [], [], []
    for i, row in enumerate(summary["rows"]):
        name = row_name(row, i)
        x, y = row_value(row, axes["x"]), row_value(row, axes["y"])
        missing = [k for k, v in ((axes["x"], x), (axes["y"], y)) if v is None or math.isinf(v)]
        if missing:
            skipped.append(f"{name} (no {' / '.join(missing)})")
            continue
        if axes["log_y"] and y < FQ_FLOOR:
            clipped.append(name)
        points.append({"name": name, "kind": row.get("kind"), "x": x, "y": max(y, FQ_FLOOR) if axes["log_y"] else y})
    return points, clipped, skipped


def plot_alt(summary: dict) -> str:
    """The trade-off image's alternative text."""
    axes = tradeoff_axes(summary)
    return f"{axes['y'].replace('_', ' ')} against {axes['x'].replace('_', ' ')}"


def plot_caption(summary: dict) -> str:
    """The trade-off plot's caption, including which values were clipped or left out."""
    axes = tradeoff_axes(summary)
    _, clipped, skipped = _plot_points(summary)
    if axes["default"]:
        out = ("Forget quality (log scale; higher = closer to the retain model) against model utility "
               "(higher = more of everything else kept). Star: target model; square: retain model "
               "(dashed line: its forget quality); circles: unlearning methods.")
    else:
        out = (f"{axes['y']} against {axes['x']}. Star: target model; square: retain model "
               f"(dashed line: its {axes['y']}); circles: unlearning methods.")
    if clipped:
        out += f" Values below {FQ_FLOOR:.0e} (0 included) drawn at {FQ_FLOOR:.0e}: {', '.join(clipped)}."
    if skipped:
        out += f" Not plotted: {', '.join(skipped)}."
    return out


def _label_offsets(points: list[dict]) -> list[tuple[int, int]]:
    """Stack the labels of points that nearly coincide (same utility, forget quality within a factor
    of ~3 on the log axis), so that, e.g., several methods at the clipping floor stay readable."""
    offsets, placed = [], []
    for p in points:
        ly = math.log10(max(p["y"], FQ_FLOOR))
        level = sum(1 for x, y in placed if abs(x - p["x"]) < 0.08 and abs(y - ly) < 0.5)
        placed.append((p["x"], ly))
        offsets.append((7, 6 + 11 * level))
    return offsets


def tradeoff_png(summary: dict, dpi: int = 150) -> bytes:
    """The TOFU paper's trade-off plot as PNG bytes."""
    axes = tradeoff_axes(summary)
    points, clipped, _ = _plot_points(summary)
    fig = figure((7.5, 5.2))
    ax = fig.add_subplot()
    if axes["log_y"]:
        ax.set_yscale("log")
    ax.set_xlabel("model utility →" if axes["default"] else literal(axis_label(summary, axes["x"]), 120))
    ax.set_ylabel("forget quality (log) →" if axes["default"]
                  else literal(axis_label(summary, axes["y"], axes["log_y"]), 120))
    ax.set_title(literal(title(summary), 120), fontsize=10)
    ax.grid(True, which="major", alpha=0.3)

    style = {"target": dict(marker="*", s=260, color="#d62728", edgecolor="black", zorder=4),
             "retain": dict(marker="s", s=120, color="#2ca02c", edgecolor="black", zorder=4)}
    n_method = 0
    for p, offset in zip(points, _label_offsets(points)):
        kw = style.get(p["kind"])
        if kw is None:
            kw = dict(marker="o", s=70, color=METHOD_COLORS[n_method % 8], edgecolor="black", zorder=3)
            n_method += 1
        ax.scatter([p["x"]], [p["y"]], label=_legend_label(p["name"]), **kw)
        # clipped points are named in the caption; the label stays short so neighbours stay legible
        ax.annotate(literal(p["name"]), (p["x"], p["y"]), textcoords="offset points", xytext=offset, fontsize=9,
                    arrowprops=dict(arrowstyle="-", color="grey", lw=0.5) if offset[1] > 6 else None)

    retain_fq = [p["y"] for p in points if p["kind"] == "retain"]
    if retain_fq:
        ax.axhline(retain_fq[0], color="#2ca02c", linestyle="--", linewidth=1,
                   label="retain model's forget quality" if axes["default"]
                   else _legend_label(f"retain model's {axes['y']}"))
    if clipped:
        ax.axhline(FQ_FLOOR, color="grey", linestyle=":", linewidth=1, label=f"floor {FQ_FLOOR:.0e} (clipped)")
    if points:
        ys = [p["y"] for p in points]
        if axes["log_y"]:
            ax.set_ylim(min(ys) / 30, max(max(ys), 1.0) * 30)
        else:
            span = max(max(ys) - min(ys), 0.05)
            ax.set_ylim(min(ys) - 0.15 * span, max(ys) + 0.15 * span)
        xs = [p["x"] for p in points]
        pad = max((max(xs) - min(xs)) * 0.12, 0.04)
        ax.set_xlim(min(xs) - pad, max(xs) + 2 * pad)  # room on the right for the labels
        ax.legend(fontsize=8, loc="best", framealpha=0.85)
    else:
        if axes["log_y"]:
            ax.set_ylim(FQ_FLOOR, 10)
        ax.text(0.5, 0.5, literal(f"no row has both {axes['x']} and {axes['y']}", 120), transform=ax.transAxes,
                ha="center", va="center", color="grey")
    return png_bytes(fig, dpi)


def curves_png(summary: dict, dpi: int = 130) -> bytes | None:
    """One panel per curve metric, one line per method over rounds, the gold standard's values as
    squares where it exists; None when the summary has no curves."""
    from matplotlib.ticker import MaxNLocator

    c = curves_of(summary)
    if c is None:
        return None
    metrics = list(c.get("metrics") or [])
    rounds = list(c["rounds"])
    ncol = 2 if len(metrics) > 1 else 1
    nrow = (len(metrics) + ncol - 1) // ncol
    fig = figure((5.2 * ncol, 3.4 * nrow))
    ref = (c.get("reference") or {}).get("values") or {}
    for i, m in enumerate(metrics):
        ax = fig.add_subplot(nrow, ncol, i + 1)
        for k, (name, values) in enumerate(c["series"].items()):
            pts = [(x, number(y)) for x, y in zip(rounds, values.get(m) or []) if number(y) is not None]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3, color=f"C{k}",
                        label=_legend_label(name))
        rpts = [(x, number(y)) for x, y in zip(rounds, ref.get(m) or []) if number(y) is not None]
        if rpts:
            ax.scatter([p[0] for p in rpts], [p[1] for p in rpts], marker="s", s=50, color="#2ca02c",
                       edgecolor="black", zorder=4,
                       label=_legend_label((c.get("reference") or {}).get("name", "gold standard")))
        if m == "forget_quality" and any(y for _, y in rpts):
            ax.set_yscale("log")
        ax.set_title(literal(axis_label(summary, m), 120), fontsize=9)
        ax.set_xlabel("round")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        if i == 0:
            ax.legend(fontsize=7)
    return png_bytes(fig, dpi)


def heatmap_png(summary: dict, dpi: int = 130) -> bytes | None:
    """``summary["heatmap"]`` = {"title", "columns", "rows": [{"name", "values"}]} as an annotated heat
    map (rows: models, columns: e.g. attacks; values in [0, 1], missing values grey); None without one."""
    import numpy as np
    from matplotlib import colormaps

    h = heatmap_of(summary)
    if h is None:
        return None
    cols, rows = list(h["columns"]), list(h["rows"])
    values = np.array([[np.nan if number(v) is None else float(v) for v in r["values"]] for r in rows])
    fig = figure((1.0 + 0.75 * len(cols), 1.2 + 0.42 * len(rows)))
    ax = fig.add_subplot()
    im = ax.imshow(np.ma.masked_invalid(values), cmap=colormaps["Reds"].with_extremes(bad="#dddddd"), vmin=0.0,
                   vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(cols)), [literal(str(c).replace("_", " ")) for c in cols], rotation=40, ha="right",
                  fontsize=8)
    ax.set_yticks(range(len(rows)), [literal(r["name"]) for r in rows], fontsize=8)
    for (i, j), v in np.ndenumerate(values):
        ax.text(j, i, "n/a" if np.isnan(v) else f"{v:.2f}", ha="center", va="center", fontsize=7,
                color="white" if not np.isnan(v) and v > 0.6 else "black")
    ax.set_title(literal(h.get("title", ""), 120), fontsize=9)
    fig.colorbar(im, ax=ax, shrink=0.8, label=literal(str(h.get("metric", "")).replace("_", " ")))
    return png_bytes(fig, dpi)


def radar_values(summary: dict) -> list[tuple[str, str, list[float | None]]]:
    """(name, kind, values on the radar's axes): an axis with ``invert`` shows 1 - value, so that 1 is
    the best end of every axis."""
    r = radar_of(summary)
    if r is None:
        return []

    def value(row, ax):
        v = row_value(row, ax["key"])
        return None if v is None else (1.0 - v if ax.get("invert") else v)

    return [(row_name(row, i), row.get("kind") or "", [value(row, ax) for ax in r["axes"]])
            for i, row in enumerate(summary["rows"])]


def radar_png(summary: dict, dpi: int = 130) -> bytes | None:
    """One polygon per model on the radar's axes (each in [0, 1], 1 best); None without ``radar``."""
    import numpy as np

    r = radar_of(summary)
    if r is None:
        return None
    axes = r["axes"]
    angles = np.linspace(0, 2 * np.pi, len(axes), endpoint=False).tolist()
    fig = figure((7.2, 6.6))
    ax = fig.add_subplot(projection="polar")
    ax.set_theta_offset(np.pi / 2)
    ax.set_ylim(0, 1.05)
    ax.set_xticks(angles, [literal(a["label"]) for a in axes], fontsize=8)
    ax.set_yticks([0.25, 0.5, 0.75, 1.0], ["0.25", "0.5", "0.75", "1"], fontsize=7, color="grey")
    n_method = 0
    for name, kind, vals in radar_values(summary):
        if any(v is None for v in vals):
            continue
        style = {"target": dict(color="#d62728", linewidth=2.2, linestyle="--"),
                 "retain": dict(color="#2ca02c", linewidth=2.2, linestyle=":")}.get(kind)
        if style is None:
            style = dict(color=METHOD_COLORS[n_method % 8], linewidth=1.4)
            n_method += 1
        ax.plot(angles + angles[:1], vals + vals[:1], label=_legend_label(name), marker="o", ms=3, **style)
        ax.fill(angles + angles[:1], vals + vals[:1], color=style["color"], alpha=0.05)
    fig.legend(fontsize=7, loc="outside lower center", ncols=4)
    ax.set_title(literal(title(summary), 120), fontsize=9, pad=22)
    return png_bytes(fig, dpi)
