#!/usr/bin/env python
"""Regenerate the method results tables of docs/results.md on the built-in benchmark.

    .venv/bin/python scripts/results_table.py                         # every method, forget01/05/10
    .venv/bin/python scripts/results_table.py --splits forget10 --methods ga,npo
    .venv/bin/python scripts/results_table.py --tuned                 # + every method tuned by lethe sweep, findings

With ``--tuned`` it also runs ``lethe sweep`` per split (every tunable method plus ``idk+ap``, ``--trials``
each, the default rule: the highest forget quality keeping 0.95 of the target's model utility) and writes the
tuned table (each method at its selected point, run with the full suite) between ``tuned:begin`` /
``tuned:end``, and the papers' findings, each marked reproduces / does not with its numbers, between
``findings:begin`` / ``findings:end`` (WMDP's from a run of the hazardous scenario at its defaults). Studies continue where they stopped (runs/results-table/sweep-<split>).

``--threads N`` sets the torch threads of every run and trial (the built-in models are trained per thread
count, so the default and tuned tables share their target and retain models only at one count), and
``--workers W`` runs W sweep trials at once, N threads each.

Runs ``lethe run`` once per forget split with every registered method (plus ``idk+ap``), at the
built-in defaults (``RunConfig``: lr 1e-3, 5 epochs, batch 16), and rewrites the part of
docs/results.md between the ``results:begin`` / ``results:end`` markers; the discussion around
it is written by hand. Models are cached in ``.lethe-cache`` like any run. About 15 minutes on
two cores the first time (three retain models), a few minutes afterwards.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "results.md"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
TUNED = ("<!-- tuned:begin -->", "<!-- tuned:end -->")
FINDINGS = ("<!-- findings:begin -->", "<!-- findings:end -->")


def all_methods() -> list:
    from lethe.methods import FAMILIES, METHODS

    rank = {f: i for i, f in enumerate(FAMILIES)}
    names = sorted(METHODS, key=lambda n: (rank.get(METHODS.get(n).family, 99), n))
    out: list = []
    for n in names:
        out.append(n)
        if n == "idk":
            out.append({"method": "idk", "retain": "ap"})
    return out


def tunable() -> set:
    from lethe.methods import METHODS

    return {n for n in METHODS if METHODS.get(n).kind in ("loss", "procedure")}


def run_sha(summaries: dict) -> str:
    """The git commits the runs were made at (their provenance), shortened."""
    shas = sorted({(s or {}).get("provenance", {}).get("git_sha", "")[:12] for s in summaries.values()} - {""})
    return ", ".join(shas)


def fmt_fq(x) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:.2g}" if x >= 0.01 else f"{x:.1e}"


def table(summary: dict, families: dict) -> str:
    lines = ["| model | family | forget quality ↑ | model utility ↑ | forget ROUGE-L ↓ | retain ROUGE-L ↑ | seconds |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for row in summary["rows"]:
        m = row["metrics"]
        fam = families.get(row.get("method") or "", "") if row["kind"] == "method" else row["kind"]
        secs = sum(row.get("seconds", {}).get(k, 0.0) for k in ("unlearn", "train")) if row["kind"] == "method" else None
        lines.append(f"| {row['name']} | {fam} | {fmt_fq(m.get('forget_quality'))} | {m.get('model_utility', float('nan')):.3f} "
                     f"| {m.get('forget_rouge_l', float('nan')):.3f} | {m.get('retain_rouge_l', float('nan')):.3f} "
                     f"| {'' if secs is None else f'{secs:.1f}'} |")
    return "\n".join(lines)


def tuned_table(sweep: dict, selected: dict) -> str:
    """Each method at its selected point (``selected``: the full-suite run's summary) beside the references."""
    rows = {r["name"]: r for r in selected["rows"]} if selected else {}
    lines = ["| model | forget quality ↑ | model utility ↑ | forget ROUGE-L ↓ | retain ROUGE-L ↑ | hyperparameters "
             "| trials |", "|---|---:|---:|---:|---:|---|---:|"]
    for name in ("target", "retain model", *sweep["methods"]):
        res = sweep["methods"].get(name, {})
        chosen = next((t for t in res.get("trials", []) if t["number"] == res.get("selected")), None)
        m = rows.get(name, {}).get("metrics") or (chosen or {}).get("metrics", {})
        params = ", ".join(f"{k.removeprefix('train.')} {v:.2g}" if isinstance(v, float) else f"{k.removeprefix('train.')} {v}"
                           for k, v in (chosen or {}).get("params", {}).items())
        if name in sweep["methods"] and chosen is None:
            lines.append(f"| {name} | no trial meets the rule | | | | | {len(res.get('trials', []))} |")
            continue
        lines.append(f"| {name} | {fmt_fq(m.get('forget_quality'))} | {m.get('model_utility', float('nan')):.3f} "
                     f"| {m.get('forget_rouge_l', float('nan')):.3f} | {m.get('retain_rouge_l', float('nan')):.3f} "
                     f"| {params} | {len(res['trials']) if res else ''} |")
    return "\n".join(lines)


def _metric(summary: dict | None, name: str, key: str):
    row = next((r for r in (summary or {}).get("rows", []) if r["name"] == name), None)
    return None if row is None else row.get("metrics", {}).get(key)


def _shift(summary: dict | None, name: str, attack: str, key: str):
    row = next((r for r in (summary or {}).get("rows", []) if r["name"] == name), None)
    rob = (row or {}).get("robustness", {}).get(attack)
    return None if not rob else rob["after"][key] - rob["before"][key]


def findings(default: dict, tuned: dict, hazardous: dict | None = None) -> list[tuple[str, str, str, str]]:
    """The papers' findings on the miniature: (finding, source, verdict, the numbers). ``default``: the
    default-setting runs' summaries by split; ``tuned``: the selected runs' summaries by split; ``hazardous``:
    the summary of the hazardous scenario's default run."""
    out = []

    def missing(finding: str, source: str, what: dict) -> bool:
        """Whether a number the finding needs is missing; if so it is listed as not measured, naming it."""
        gone = [k for k, v in what.items() if v is None]
        if gone:
            out.append((finding, source, "not measured", "missing: " + ", ".join(gone)))
        return bool(gone)

    ga = [_metric(default.get(s), "ga", "model_utility") for s in ("forget01", "forget05", "forget10")]
    if not missing("GA collapses model utility as the forget set grows", "TOFU, Maini et al. 2024",
                   {f"GA's utility on {s} (default setting)": v for s, v in zip(("forget01", "forget05", "forget10"), ga)}):
        yes = ga[0] > ga[1] > ga[2] and ga[2] < 0.5 * ga[0]
        out.append(("GA collapses model utility as the forget set grows", "TOFU, Maini et al. 2024",
                    "reproduces" if yes else "does not",
                    "GA at the default setting: utility " + " / ".join(f"{v:.2f}" for v in ga) + " on forget01/05/10"))
    npo, ga10 = _metric(default.get("forget10"), "npo", "model_utility"), ga[2]
    if not missing("NPO avoids GA's collapse", "NPO, Zhang et al. 2024",
                   {"NPO's utility on forget10": npo, "GA's utility on forget10": ga10}):
        out.append(("NPO avoids GA's collapse", "NPO, Zhang et al. 2024",
                    "reproduces" if npo > ga10 + 0.2 else "does not",
                    f"utility on forget10 at the default setting: NPO {npo:.2f}, GA {ga10:.2f}"))
    t10 = tuned.get("forget10")
    fq = {m: _metric(t10, m, "forget_quality") for m in ("me", "grad_diff", "npo")}
    if not missing("ME+GD trades better than GA+GD and NPO+GD", "A Closer Look, Yuan et al. 2025",
                   {f"{m}'s tuned forget quality on forget10": v for m, v in fq.items()}):
        yes = fq["me"] > max(fq["grad_diff"], fq["npo"])
        out.append(("ME+GD trades better than GA+GD and NPO+GD", "A Closer Look, Yuan et al. 2025",
                    "reproduces" if yes else "does not",
                    "tuned, forget10, forget quality at utility >= 0.95 of the target's: ME+GD "
                    f"{fmt_fq(fq['me'])}, GA+GD {fmt_fq(fq['grad_diff'])}, NPO+GD {fmt_fq(fq['npo'])}"))
    rr = {m: _metric(t10, m, "retain_rouge_l") for m in ("idk+ap", "idk")}
    fr = {m: _metric(t10, m, "forget_rouge_l") for m in ("idk+ap", "idk")}
    if not missing("IDK+AP keeps retain answers better than IDK+GD", "A Closer Look, Yuan et al. 2025",
                   {**{f"{m}'s tuned retain ROUGE-L on forget10": v for m, v in rr.items()},
                    **{f"{m}'s tuned forget ROUGE-L on forget10": v for m, v in fr.items()}}):
        # the comparison holds only where IDK+AP forgets at least as much (a lower or equal forget ROUGE-L)
        verdict = ("inconclusive (IDK+AP forgets less)" if fr["idk+ap"] > fr["idk"]
                   else "reproduces" if rr["idk+ap"] > rr["idk"] else "does not")
        out.append(("IDK+AP keeps retain answers better than IDK+GD", "A Closer Look, Yuan et al. 2025", verdict,
                    f"tuned, forget10, retain ROUGE-L: IDK+AP {rr['idk+ap']:.3f}, IDK+GD {rr['idk']:.3f}; forget "
                    f"ROUGE-L: IDK+AP {fr['idk+ap']:.3f}, IDK+GD {fr['idk']:.3f}"))
    for attack, source, key in (("relearn", "Hu et al. 2025; Fan et al. 2025", "forget_probability"),
                                ("quantize_4bit", "Zhang et al. 2025", "forget_rouge_l")):
        rows = [r["name"] for r in (t10 or {}).get("rows", []) if r["kind"] == "method"]
        control = _shift(t10, "retain model", attack, key)
        shifts = {m: _shift(t10, m, attack, key) for m in rows}
        shifts = {m: v for m, v in shifts.items() if v is not None}
        if not missing(f"the {attack} attack brings forgotten knowledge back", source,
                       {f"the {attack} results of the tuned forget10 run": (control if shifts else None)}):
            back = [m for m, v in shifts.items() if v > control + 0.02]
            out.append((f"the {attack} attack brings forgotten knowledge back", source,
                        "reproduces" if len(back) > len(shifts) / 2 else "does not",
                        f"tuned, forget10: {key} rises by more than the retain model's {control:+.3f} (+0.02) for "
                        f"{len(back)} of {len(shifts)} methods"))
    finding, source = "RMU removes hazardous knowledge at a small utility cost", "WMDP, Li et al. 2024"
    acc = {(m, k): _metric(hazardous, m, f"{k}_accuracy") for m in ("target", "retain model", "rmu")
           for k in ("hazard", "general")}
    if not missing(finding, source, {f"{m}'s {k} accuracy (hazardous scenario)": v for (m, k), v in acc.items()}):
        # WMDP (Zephyr-7B): WMDP-Bio 63.7 -> 31.2 (chance 25), MMLU 58.1 -> 57.1. Here: hazard accuracy at least
        # halfway from the target's to the retain model's (which never saw the hazard corpus: about chance),
        # general accuracy at least 0.95 of the target's
        halfway = (acc["target", "hazard"] + acc["retain model", "hazard"]) / 2
        yes = acc["rmu", "hazard"] <= halfway and acc["rmu", "general"] >= 0.95 * acc["target", "general"]
        out.append((finding, source, "reproduces" if yes else "does not",
                    f"hazardous scenario, default setting: hazard accuracy {acc['target', 'hazard']:.3f} -> "
                    f"{acc['rmu', 'hazard']:.3f} (retain model {acc['retain model', 'hazard']:.3f}), general accuracy "
                    f"{acc['target', 'general']:.3f} -> {acc['rmu', 'general']:.3f}"))
    return out


def findings_table(rows: list[tuple[str, str, str, str]]) -> str:
    return "\n".join(["| finding | source | on the miniature | numbers |", "|---|---|---|---|",
                      *(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows)])


def replace_block(text: str, markers: tuple[str, str], block: str) -> str:
    begin, end = markers
    if begin not in text or end not in text:
        text = text.rstrip() + f"\n\n{begin}\n{end}\n"
    before, rest = text.split(begin, 1)
    _, after = rest.split(end, 1)
    return before + begin + "\n" + block + "\n" + end + after


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--splits", default="forget01,forget05,forget10")
    p.add_argument("--methods", default="", help="comma-separated (default: every registered method + idk+ap)")
    p.add_argument("--output", default=str(ROOT / "runs" / "results-table"))
    p.add_argument("--doc", default=str(DOC))
    p.add_argument("--tuned", action="store_true", help="also tune every method with lethe sweep, and the findings")
    p.add_argument("--trials", type=int, default=20, help="--tuned: trials per method and split")
    p.add_argument("--tuned-splits", default="", help="--tuned: the splits swept (default: --splits)")
    p.add_argument("--threads", type=int, default=0, help="torch threads of every run and of each sweep trial "
                                                           "(default: the usable cores / --workers; the built-in models "
                                                           "differ by it)")
    p.add_argument("--workers", type=int, default=1, help="--tuned: sweep trials at once, --threads each")
    p.add_argument("--reuse", action="store_true", help="read the finished runs and sweeps in --output instead of "
                                                      "running them (after a change to the tables or findings)")
    args = p.parse_args()

    import lethe
    import lethe.provenance
    from lethe.config import load_config
    from lethe.methods import METHODS

    # one thread count for the default runs and every trial, so the tables share their models
    threads = args.threads or max(1, lethe.provenance.thread_count(0) // args.workers)
    methods = all_methods() if not args.methods else [
        {"method": m.split("+")[0], "retain": m.split("+")[1]} if "+" in m else m for m in args.methods.split(",")]
    families = {n: METHODS.get(n).family for n in METHODS}
    sections, default, tuned, tuned_sections = [], {}, {}, []
    for split in args.splits.split(","):
        t0 = time.perf_counter()
        name = f"results-{split}"
        cfg = load_config(overrides=[f"forget_split={split}", f"output={args.output}", f"name={name}", "overwrite=true",
                                     "methods=" + json.dumps(methods), f"threads={threads}"])
        run_dir = Path(args.output) / name if args.reuse else lethe.run(cfg)
        summary = json.loads((Path(run_dir) / "summary.json").read_text())
        default[split] = summary
        notes = "; ".join(summary.get("notes", []))
        sections.append(f"### {split}\n\n{table(summary, families)}\n\n{notes}\n")
        print(f"{split}: {time.perf_counter() - t0:.0f} s -> {run_dir}", file=sys.stderr)

    from lethe.config import RunConfig

    train = RunConfig().train
    header = (f"Built-in benchmark `lethe-authors`, Lethe's tiny target model, every method at its defaults "
              f"with lr {train.lr}, {train.epochs:g} epochs, batch {train.batch_size}, {threads} torch "
              f"thread{'s' * (threads > 1)} (the built-in models differ by it); generated by "
              f"`scripts/results_table.py` (runs at git {run_sha(default) or 'unknown'}).\n")
    doc = Path(args.doc)
    text = doc.read_text(encoding="utf-8") if doc.exists() else "# Results on the built-in benchmark\n"
    text = replace_block(text, (BEGIN, END), header + "\n" + "\n".join(sections))
    if args.tuned:
        from lethe.sweep import load_sweep_config, run_sweep

        entries = [m if isinstance(m, str) else {**m, "label": f"{m['method']}+{m['retain']}"} for m in methods
                   if (m if isinstance(m, str) else m["method"]) in tunable()]
        for split in (args.tuned_splits or args.splits).split(","):
            t0 = time.perf_counter()
            cfg, scfg = load_sweep_config(overrides=[f"forget_split={split}", f"output={args.output}",
                                                     f"name=sweep-{split}", "sweep.methods=" + json.dumps(entries),
                                                     f"sweep.trials={args.trials}", f"threads={threads * args.workers}",
                                                     f"sweep.workers={args.workers}"])
            out = Path(args.output) / f"sweep-{split}" if args.reuse else run_sweep(cfg, scfg)
            sweep = json.loads((out / "sweep.json").read_text())
            selected = json.loads((out / "selected" / "summary.json").read_text()) if sweep.get("selected_run") else None
            tuned[split] = selected
            tuned_sections.append(f"### {split}\n\n{tuned_table(sweep, selected)}\n\nRule: {sweep['rule']}.\n")
            print(f"{split} (tuned): {time.perf_counter() - t0:.0f} s -> {out}", file=sys.stderr)
        head = (f"Every tunable method on `lethe-authors` ({', '.join(tuned)}) at the point `lethe sweep` selects "
                f"({args.trials} TPE trials per method and split, seed 0, {threads} torch thread{'s' * (threads > 1)} "
                f"each), run again with the full suite; generated by "
                f"`scripts/results_table.py --tuned` (runs at git {run_sha(tuned) or 'unknown'}).\n")
        text = replace_block(text, TUNED, head + "\n" + "\n".join(tuned_sections))
        t0 = time.perf_counter()  # the hazardous scenario's default run, for the WMDP finding
        cfg = load_config(overrides=["scenario=hazardous", f"output={args.output}", "name=results-hazardous",
                                     "overwrite=true", f"threads={threads}"])
        run_dir = Path(args.output) / "results-hazardous" if args.reuse else lethe.run(cfg)
        hazardous = json.loads((Path(run_dir) / "summary.json").read_text())
        print(f"hazardous: {time.perf_counter() - t0:.0f} s -> {run_dir}", file=sys.stderr)
        text = replace_block(text, FINDINGS, findings_table(findings(default, tuned, hazardous)))
    doc.write_text(text, encoding="utf-8")
    print(f"wrote {doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
