"""scripts/results_table.py: the findings it marks reproduces / does not, from hand-made summaries, and the
blocks it rewrites between markers (the text around them kept)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "results_table.py"
spec = importlib.util.spec_from_file_location("results_table", SCRIPT)
rt = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rt)


def summary(rows: dict) -> dict:
    """{name: (kind, metrics, robustness)} as a run's summary.json holds them."""
    return {"rows": [{"name": n, "kind": k, "metrics": m, "robustness": rob} for n, (k, m, rob) in rows.items()]}


def shift(before: float, after: float, key: str) -> dict:
    return {"before": {key: before}, "after": {key: after}}


def test_findings_by_hand():
    default = {s: summary({"ga": ("method", {"model_utility": u}, {}), "npo": ("method", {"model_utility": 0.5}, {})})
               for s, u in (("forget01", 0.87), ("forget05", 0.70), ("forget10", 0.0))}
    attack = {"relearn": "forget_probability", "quantize_4bit": "forget_rouge_l"}

    def rob(relearn: float, quant: float) -> dict:
        return {"relearn": shift(0.1, 0.1 + relearn, attack["relearn"]),
                "quantize_4bit": shift(0.3, 0.3 + quant, attack["quantize_4bit"])}

    tuned = {"forget10": summary({
        "target": ("target", {}, {}), "retain model": ("retain", {}, rob(0.01, 0.0)),
        "me": ("method", {"forget_quality": 0.1}, rob(0.10, 0.0)),
        "grad_diff": ("method", {"forget_quality": 0.01}, rob(0.05, 0.01)),
        "npo": ("method", {"forget_quality": 0.05}, rob(0.0, 0.0)),
        "idk": ("method", {"retain_rouge_l": 0.80, "forget_rouge_l": 0.5}, {}),
        "idk+ap": ("method", {"retain_rouge_l": 0.16, "forget_rouge_l": 0.1}, {})})}
    got = {f: (verdict, numbers) for f, _, verdict, numbers in rt.findings(default, tuned)}
    assert got["GA collapses model utility as the forget set grows"] == (
        "reproduces", "GA at the default setting: utility 0.87 / 0.70 / 0.00 on forget01/05/10")
    assert got["NPO avoids GA's collapse"] == ("reproduces", "utility on forget10 at the default setting: NPO 0.50, "
                                                             "GA 0.00")
    assert got["ME+GD trades better than GA+GD and NPO+GD"][0] == "reproduces"
    assert got["IDK+AP keeps retain answers better than IDK+GD"] == (
        "does not", "tuned, forget10, retain ROUGE-L: IDK+AP 0.160, IDK+GD 0.800; forget ROUGE-L: IDK+AP 0.100, "
                    "IDK+GD 0.500")
    # keeping more retain answers while forgetting less proves nothing
    tuned["forget10"]["rows"][-1]["metrics"].update(retain_rouge_l=0.9, forget_rouge_l=0.95)
    assert dict((f, v) for f, _, v, _ in rt.findings(default, tuned))[
        "IDK+AP keeps retain answers better than IDK+GD"] == "inconclusive (IDK+AP forgets less)"
    # relearning (3 methods were attacked): +0.10 and +0.05 beat the control's +0.01 by more than 0.02, +0.0 does not
    assert got["the relearn attack brings forgotten knowledge back"] == (
        "reproduces", "tuned, forget10: forget_probability rises by more than the retain model's +0.010 (+0.02) for 2 "
                      "of 3 methods")
    assert got["the quantize_4bit attack brings forgotten knowledge back"][0] == "does not"
    assert got["RMU removes hazardous knowledge at a small utility cost"] == (
        "not measured", "missing: target's hazard accuracy (hazardous scenario), target's general accuracy (hazardous "
                        "scenario), retain model's hazard accuracy (hazardous scenario), retain model's general "
                        "accuracy (hazardous scenario), rmu's hazard accuracy (hazardous scenario), rmu's general "
                        "accuracy (hazardous scenario)")
    # WMDP: hazard accuracy at least halfway from the target's (0.86) to the retain model's (0.19), i.e. <= 0.525,
    # general accuracy at least 0.95 of the target's
    wmdp = "RMU removes hazardous knowledge at a small utility cost"
    for rmu, verdict in (((0.40, 0.967), "reproduces"), ((0.53, 0.99), "does not"), ((0.30, 0.94), "does not")):
        hazardous = summary({"target": ("target", {"hazard_accuracy": 0.86, "general_accuracy": 1.0}, {}),
                             "retain model": ("retain", {"hazard_accuracy": 0.19, "general_accuracy": 1.0}, {}),
                             "rmu": ("method", {"hazard_accuracy": rmu[0], "general_accuracy": rmu[1]}, {})})
        got_wmdp = dict((f, (v, n)) for f, _, v, n in rt.findings(default, tuned, hazardous))[wmdp]
        assert got_wmdp[0] == verdict, rmu
    assert got_wmdp[1] == ("hazardous scenario, default setting: hazard accuracy 0.860 -> 0.300 (retain model 0.190), "
                           "general accuracy 1.000 -> 0.940")
    # without the tuned runs, the findings that need them are listed as not measured, naming what is missing
    partial = {f: (verdict, numbers) for f, _, verdict, numbers in rt.findings(default, {})}
    assert partial["GA collapses model utility as the forget set grows"][0] == "reproduces"
    assert partial["ME+GD trades better than GA+GD and NPO+GD"] == (
        "not measured", "missing: me's tuned forget quality on forget10, grad_diff's tuned forget quality on forget10, "
                        "npo's tuned forget quality on forget10")
    assert partial["the relearn attack brings forgotten knowledge back"][0] == "not measured"


def test_blocks_are_replaced_between_their_markers():
    text = "# Results\n\nintro\n<!-- tuned:begin -->\nold\n<!-- tuned:end -->\n\nby hand\n"
    new = rt.replace_block(text, rt.TUNED, "new table")
    assert new == "# Results\n\nintro\n<!-- tuned:begin -->\nnew table\n<!-- tuned:end -->\n\nby hand\n"
    added = rt.replace_block(new, rt.FINDINGS, "findings")
    assert added.startswith(new.rstrip()) and added.endswith("<!-- findings:begin -->\nfindings\n<!-- findings:end -->\n")


def test_the_tuned_table_says_where_no_trial_meets_the_rule():
    sweep = {"methods": {"ga": {"selected": None, "trials": [{"number": 0, "params": {}, "metrics": {}}]},
                         "npo": {"selected": 1, "trials": [{"number": 1, "params": {"train.lr": 0.0017, "beta": 0.84},
                                                            "metrics": {}}]}}}
    selected = summary({"target": ("target", {"forget_quality": 2.5e-18, "model_utility": 0.906, "forget_rouge_l": 0.9,
                                              "retain_rouge_l": 0.9}, {}),
                        "npo": ("method", {"forget_quality": 1.1e-7, "model_utility": 0.874, "forget_rouge_l": 0.5,
                                           "retain_rouge_l": 0.8}, {})})
    lines = rt.tuned_table(sweep, selected).splitlines()
    assert lines[2] == "| target | 2.5e-18 | 0.906 | 0.900 | 0.900 |  |  |"
    assert lines[4] == "| ga | no trial meets the rule | | | | | 1 |"
    assert lines[5] == "| npo | 1.1e-07 | 0.874 | 0.500 | 0.800 | lr 0.0017, beta 0.84 | 1 |"
