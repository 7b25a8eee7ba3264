"""Published retain-model evaluations (lethe.retain_logs) against the sources' own formulas.

Fixtures are written by the tests in the real files' layouts (TOFU's eval_log_forget.json /
eval_log_aggregated.json, open-unlearning's TOFU_EVAL.json: same keys, string index keys, same
nesting) with invented numbers. The reference computations are written out below from the sources:
locuslab/tofu aggregate_eval_stat.py (get_forget_quality, get_model_utility) and open-unlearning
src/evals/metrics/memorization.py (truth_ratio) + privacy.py (ks_test).
"""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from scipy.stats import hmean, ks_2samp

from lethe.errors import LetheError
from lethe.metrics.tofu import truth_ratio_values
from lethe.probes import SplitProbes
from lethe.retain_logs import (
    OPEN_UNLEARNING_LAYOUT,
    TOFU_LAYOUT,
    forget_quality_from_logs,
    is_retain_logs,
    load_retain_logs,
    open_unlearning_forget_quality,
    provenance,
    tofu_forget_quality,
    unlearned_values,
)

N, K = 10, 5
ANSWERS = [f"Invented author {i} writes about lighthouses number {i}." for i in range(N)]


# ----------------------------------------------------------------------------------------------
# The references, written out from the sources


def ref_tofu_get_forget_quality(unlearn_result, retain_result):
    """locuslab/tofu aggregate_eval_stat.get_forget_quality (inputs: aggregated logs)."""
    u = unlearn_result["eval_log_forget.json"]
    r = retain_result["eval_log_forget.json"]
    u_para = np.array(list(u["avg_paraphrased_loss"].values()))
    u_pert = np.array(list(u["average_perturb_loss"].values())).mean(axis=-1)
    r_para = np.array(list(r["avg_paraphrased_loss"].values()))
    r_pert = np.array(list(r["average_perturb_loss"].values())).mean(axis=-1)
    return ks_2samp(np.exp(u_pert - u_para), np.exp(r_pert - r_para)).pvalue


def ref_tofu_model_utility(eval_result_dict):
    """locuslab/tofu aggregate_eval_stat.get_model_utility, keyed by Lethe's names."""
    names = {"eval_real_author_wo_options.json": "known_people", "eval_real_world_wo_options.json": "world_facts",
             "eval_log.json": "retain", "eval_log_forget.json": "forget"}
    out = {}
    for k, v in eval_result_dict.items():
        if "eval_log" in k:
            prob = np.mean(np.exp(-1 * np.array(list(v["avg_gt_loss"].values()))))
        else:
            true = np.exp(-1 * np.array(list(v["avg_gt_loss"].values())))
            false = np.exp(-1 * np.array(list(v["average_perturb_loss"].values())))
            prob = np.mean(true / np.concatenate([np.expand_dims(true, axis=-1), false], axis=1).sum(-1))
        rouge = np.array(list(v["rougeL_recall"].values())).mean()
        para = np.array(list(v["avg_paraphrased_loss"].values()))
        pert = np.array(list(v["average_perturb_loss"].values())).mean(axis=-1)
        curr = np.exp(pert - para)
        tr = np.mean(np.minimum(curr, 1 / curr)) if "forget" in k else np.mean(np.maximum(0, 1 - 1 / curr))
        out.update({f"{names[k]}_probability": prob, f"{names[k]}_rouge_l": rouge, f"{names[k]}_truth_ratio": tr})
    out["model_utility"] = hmean([x for key, x in out.items() if not key.startswith("forget")])
    return out


def ref_ou_truth_ratio(correct_vbi, wrong_vbi):
    """open-unlearning memorization.truth_ratio (aggregator closer_to_1_better) -> value_by_index."""
    idx = list(correct_vbi.keys())
    c = np.array([correct_vbi[i]["avg_loss"] for i in idx])
    w = np.array([wrong_vbi[i]["avg_loss"] for i in idx])
    w = np.mean(w, axis=tuple(range(1, w.ndim)))  # aggregate_to_1D
    tr = np.exp(-w) / (np.exp(-c) + 1e-10)
    return {"agg_value": np.mean(np.minimum(tr, 1 / (tr + 1e-10))),
            "value_by_index": dict(zip(idx, [{"score": float(v)} for v in tr]))}


def ref_ou_ks_test(model_eval, retain_eval):
    """open-unlearning privacy.ks_test with reference_logs include forget_truth_ratio -> retain."""
    forget = np.array([e["score"] for e in model_eval["forget_truth_ratio"]["value_by_index"].values()])
    retain = np.array([e["score"] for e in retain_eval["forget_truth_ratio"]["value_by_index"].values()])
    return ks_2samp(forget, retain).pvalue


# ----------------------------------------------------------------------------------------------
# Fixtures in the real layouts


def _losses(seed: int, shift: float, n: int = N, k: int = K):
    rng = np.random.default_rng(seed)
    para = rng.uniform(0.5, 3.0, n)  # per-token mean NLL of the paraphrased answer
    pert = para[:, None] + shift + rng.normal(0.0, 0.6, (n, k))  # (n, k) of the perturbed answers
    ntok = rng.integers(5, 40, n)
    ntok_pert = rng.integers(5, 40, (n, k))
    return para, np.abs(pert), ntok, ntok_pert


def tofu_forget_log(para, pert, ntok, ntok_pert, answers=ANSWERS):
    """eval_log_forget.json as evaluate_util.get_all_evals writes it: {stat: {"<index>": value}}."""
    idx = [str(i) for i in range(len(para))]
    gt = para * 0.5
    r = np.exp(para - pert.mean(axis=1))  # the file's own 'truth_ratio' field (P(pert)/P(para))
    return {
        "avg_gt_loss": dict(zip(idx, gt.tolist())),
        "gt_loss": dict(zip(idx, (gt * ntok).tolist())),
        "num_token_gt": dict(zip(idx, ntok.tolist())),
        "generated_text": {i: [f"[INST] Question {i}? [/INST]", f"Generated {i}.", answers[int(i)]] for i in idx},
        "rouge1_recall": {i: 0.5 for i in idx},
        "rougeL_recall": dict(zip(idx, np.linspace(0.2, 0.6, len(idx)).tolist())),
        "average_perturb_loss": dict(zip(idx, pert.tolist())),
        "avg_paraphrased_loss": dict(zip(idx, para.tolist())),
        "truth_ratio": dict(zip(idx, r.tolist())),
        "paraphrased_loss": dict(zip(idx, (para * ntok).tolist())),
        "perturb_loss": dict(zip(idx, (pert * ntok_pert).tolist())),
        "num_token_paraphrased": dict(zip(idx, ntok.tolist())),
        "num_token_perturb": dict(zip(idx, ntok_pert.tolist())),
    }


def ou_eval(para, pert, answers=ANSWERS):
    """TOFU_EVAL.json as open-unlearning's Evaluator saves it (sorted metric names, string indices)."""
    idx = [str(i) for i in range(len(para))]
    correct = {i: {"prob": float(np.exp(-c)), "avg_loss": float(c)} for i, c in zip(idx, para)}
    wrong = {i: {"prob": np.exp(-w).tolist(), "avg_loss": w.tolist()} for i, w in zip(idx, pert)}
    logs = {
        "forget_Q_A_PARA_Prob": {"agg_value": float(np.mean(np.exp(-para))), "value_by_index": correct},
        "forget_Q_A_PERT_Prob": {"agg_value": float(np.mean(np.exp(-pert))), "value_by_index": wrong},
        "forget_Q_A_Prob": {"agg_value": 0.15, "value_by_index": {i: {"prob": 0.15, "avg_loss": 1.9} for i in idx}},
        "forget_Q_A_ROUGE": {"agg_value": 0.4, "value_by_index": {
            i: {"rouge1_recall": 0.5, "rougeL_f1": 0.4, "rougeL_recall": 0.4, "input": f"[INST] Question {i}? [/INST]",
                "ground_truth": answers[int(i)], "generation": f"Generated {i}."} for i in idx}},
        "forget_quality": {"agg_value": None},
        "forget_truth_ratio": ref_ou_truth_ratio(correct, wrong),
        "model_utility": {"agg_value": 0.61},
    }
    return dict(sorted(logs.items()))


def probes_from_losses(para, pert, ntok, ntok_pert, ids=None) -> SplitProbes:
    """Lethe's probes (summed log-probs, token counts) whose per-token NLLs are the given losses."""
    n = len(para)
    return SplitProbes(
        ids=ids or [f"f{i}" for i in range(n)],
        answer_logprob=-1.0 * ntok, answer_ntokens=ntok,
        paraphrase_logprob=-para * ntok, paraphrase_ntokens=ntok,
        perturbed_logprob=-pert * ntok_pert, perturbed_ntokens=ntok_pert,
    )


def _write(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=4))
    return path


@pytest.fixture()
def pair():
    """(unlearned losses, retain losses): the unlearned model still prefers the true answers a bit."""
    return _losses(1, shift=0.2), _losses(2, shift=0.0)


# ----------------------------------------------------------------------------------------------
# TOFU eval logs


def test_tofu_log_forget_quality_equals_get_forget_quality(tmp_path, pair):
    u, r = pair
    u_log, r_log = tofu_forget_log(*u), tofu_forget_log(*r)
    path = _write(tmp_path / "ds_size300" / "eval_log_forget.json", r_log)
    logs = load_retain_logs(path)
    assert logs.layout == TOFU_LAYOUT and logs.items == N and logs.index == tuple(str(i) for i in range(N))
    # the stored values are get_forget_quality's exp(perturbed - paraphrase) = 1/R, not R
    np.testing.assert_allclose(logs.values, np.exp(r[1].mean(axis=1) - r[0]), rtol=0, atol=0)

    expected = ref_tofu_get_forget_quality({"eval_log_forget.json": u_log}, {"eval_log_forget.json": r_log})
    assert 1e-4 < expected < 0.999  # a non-trivial p-value, so a wrong convention would show
    got = forget_quality_from_logs(probes_from_losses(*u), logs)
    assert got.value == pytest.approx(expected, abs=1e-12, rel=0) and got.per_sample == []
    assert tofu_forget_quality(u_log, r_log) == pytest.approx(expected, abs=1e-12, rel=0)
    assert tofu_forget_quality({"eval_log_forget.json": u_log}, {"eval_log_forget.json": r_log}) == \
        pytest.approx(expected, abs=1e-12, rel=0)
    # the same retain model judged against itself: identical samples, p = 1
    assert forget_quality_from_logs(probes_from_losses(*r), logs).value == pytest.approx(1.0)


def test_tofu_aggregated_log_and_folder(tmp_path, pair):
    u, r = pair
    forget = tofu_forget_log(*r)
    others = {}
    for name, seed, k in (("eval_log.json", 3, 5), ("eval_real_author_wo_options.json", 4, 3),
                          ("eval_real_world_wo_options.json", 5, 3)):
        para, pert, nt, ntp = _losses(seed, shift=1.0, k=k)
        others[name] = tofu_forget_log(para, pert, nt, ntp)
    aggregated = {"eval_log.json": others["eval_log.json"],
                  "eval_real_author_wo_options.json": others["eval_real_author_wo_options.json"],
                  "eval_real_world_wo_options.json": others["eval_real_world_wo_options.json"],
                  "eval_log_forget.json": forget}
    path = _write(tmp_path / "agg" / "eval_log_aggregated.json", aggregated)
    logs = load_retain_logs(path)
    assert logs.entry == "eval_log_forget.json" and logs.items == N and logs.notes == ()
    expected = ref_tofu_get_forget_quality({"eval_log_forget.json": tofu_forget_log(*u)}, aggregated)
    assert forget_quality_from_logs(probes_from_losses(*u), logs).value == pytest.approx(expected, abs=1e-12, rel=0)
    ref = ref_tofu_model_utility(aggregated)
    assert logs.aggregates.keys() == ref.keys()
    for key, value in ref.items():
        assert logs.aggregates[key] == pytest.approx(value, rel=1e-12), key

    # a folder of the four files: the forget file is the one read, its siblings give the same numbers
    folder = tmp_path / "eval_results" / "ds_size300"
    for name, d in aggregated.items():
        _write(folder / name, d)
    from_folder = load_retain_logs(folder)
    assert from_folder.source == str(folder / "eval_log_forget.json") and from_folder.entry == ""
    assert from_folder.values == logs.values
    assert from_folder.aggregates == pytest.approx(logs.aggregates, rel=1e-12)


def test_tofu_log_without_siblings_says_what_is_missing(tmp_path, pair):
    logs = load_retain_logs(_write(tmp_path / "eval_log_forget.json", tofu_forget_log(*pair[1])))
    assert "model_utility" not in logs.aggregates and "forget_truth_ratio" in logs.aggregates
    assert any("eval_log.json" in n for n in logs.notes)


# ----------------------------------------------------------------------------------------------
# open-unlearning TOFU_EVAL.json


def test_open_unlearning_forget_quality_equals_ks_test(tmp_path, pair):
    u, r = pair
    u_eval, r_eval = ou_eval(u[0], u[1]), ou_eval(r[0], r[1])
    folder = tmp_path / "saves" / "eval" / "tofu_Llama-3.2-1B-Instruct_retain90"
    _write(folder / "TOFU_EVAL.json", r_eval)
    logs = load_retain_logs(folder)
    assert logs.layout == OPEN_UNLEARNING_LAYOUT and logs.items == N and logs.answers == tuple(ANSWERS)
    assert logs.aggregates == {"forget_probability": 0.15, "forget_rouge_l": 0.4, "model_utility": 0.61,
                               "forget_truth_ratio": pytest.approx(r_eval["forget_truth_ratio"]["agg_value"])}

    expected = ref_ou_ks_test(u_eval, r_eval)
    assert 1e-4 < expected < 0.999
    probes = probes_from_losses(*u)
    assert forget_quality_from_logs(probes, logs).value == pytest.approx(expected, abs=1e-12, rel=0)
    assert open_unlearning_forget_quality(u_eval, r_eval) == pytest.approx(expected, abs=1e-12, rel=0)
    # per item, Lethe's probes give the scores open-unlearning writes (up to lp/n rounding)
    scores = [e["score"] for e in u_eval["forget_truth_ratio"]["value_by_index"].values()]
    np.testing.assert_allclose(unlearned_values(probes, OPEN_UNLEARNING_LAYOUT), scores, rtol=1e-12)


def test_open_unlearning_epsilon_is_kept(tmp_path):
    """memorization.truth_ratio divides by P(correct) + 1e-10: with a near-zero P(correct) that reorders
    the items, so the KS test must run on open-unlearning's scores, not on the plain ratio R."""
    rng = np.random.default_rng(7)
    r_para = rng.uniform(1, 2, N)
    r_pert = r_para[:, None] + rng.uniform(0.5, 3.0, (N, K))  # retain scores R in ~[0.05, 0.6]
    u_para = np.concatenate([np.full(5, 30.0), rng.uniform(1, 2, 5)])  # P(correct) = e^-30 < 1e-10
    u_pert = np.concatenate([np.full((5, K), 25.0), rng.uniform(1, 2, (5, K))])  # R = e^5, but score ~ 0.14: inside the retain scores
    nt, ntp = np.full(N, 10), np.full((N, K), 10)
    r_eval, u_eval = ou_eval(r_para, r_pert), ou_eval(u_para, u_pert)
    logs = load_retain_logs(_write(tmp_path / "TOFU_EVAL.json", r_eval))
    probes = probes_from_losses(u_para, u_pert, nt, ntp)
    got = forget_quality_from_logs(probes, logs).value
    assert got == pytest.approx(ref_ou_ks_test(u_eval, r_eval), abs=1e-12, rel=0)
    naive = ks_2samp(truth_ratio_values(probes), np.asarray(logs.values)).pvalue
    assert abs(got - naive) > 1e-3


def test_probe_conventions_on_hand_made_logprobs():
    # one item, K = 2: per-token log-probs paraphrase -6/3 = -2, perturbed -8/2 = -4 and -9/3 = -3
    p = SplitProbes(ids=["a"], answer_logprob=np.array([-1.0]), answer_ntokens=np.array([1]),
                    paraphrase_logprob=np.array([-6.0]), paraphrase_ntokens=np.array([3]),
                    perturbed_logprob=np.array([[-8.0, -9.0]]), perturbed_ntokens=np.array([[2, 3]]))
    # R = exp(mean(-4, -3) - (-2)) = exp(-1.5); TOFU's log holds exp(mean(4, 3) - 2) = exp(1.5) = 1/R
    assert unlearned_values(p, TOFU_LAYOUT)[0] == pytest.approx(np.exp(1.5), rel=1e-15)
    assert unlearned_values(p, OPEN_UNLEARNING_LAYOUT)[0] == pytest.approx(np.exp(-3.5) / (np.exp(-2.0) + 1e-10),
                                                                           rel=1e-15)
    assert truth_ratio_values(p)[0] == pytest.approx(np.exp(-1.5), rel=1e-15)


# ----------------------------------------------------------------------------------------------
# Matching items, counts, malformed files, provenance


def test_count_mismatch_is_one_line_naming_file_and_counts(tmp_path, pair):
    u, r = pair
    path = _write(tmp_path / "eval_log_forget.json", tofu_forget_log(*r))
    short = probes_from_losses(*(x[:N - 1] for x in u))
    with pytest.raises(LetheError) as exc:
        forget_quality_from_logs(short, load_retain_logs(path))
    msg = str(exc.value)
    assert "\n" not in msg and str(path) in msg and f"{N} forget items" in msg and f"evaluated on {N - 1}" in msg


def test_probes_without_wrong_answers_raise_one_line(tmp_path, pair):
    logs = load_retain_logs(_write(tmp_path / "eval_log_forget.json", tofu_forget_log(*pair[1])))
    p = probes_from_losses(*pair[0])
    p.perturbed_logprob, p.perturbed_ntokens = np.zeros((N, 0)), np.zeros((N, 0), dtype=int)
    with pytest.raises(LetheError, match="perturbed") as exc:
        forget_quality_from_logs(p, logs)
    assert "\n" not in str(exc.value)


def test_logged_items_are_matched_by_answer(tmp_path):
    """A log of 6 items (as TOFU's ds_size=300 logs hold the first 300 of forget10) against probes of
    all 10: with the answers, the unlearned model is judged on exactly the logged items."""
    u, r = _losses(11, shift=0.3), _losses(12, shift=0.0, n=6)
    logs = load_retain_logs(_write(tmp_path / "eval_log_forget.json", tofu_forget_log(*r, answers=ANSWERS[:6])))
    order = [3, 0, 9, 1, 8, 2, 7, 4, 6, 5]  # the run's items in another order than the log's
    probes = probes_from_losses(*(x[order] for x in u))
    # the benchmark's text may space punctuation differently from a log's decoded ground truth
    spaced = [ANSWERS[i].replace(" lighthouses", "  lighthouses").replace(".", " .") for i in order]
    got = forget_quality_from_logs(probes, logs, answers=spaced).value
    first6 = probes_from_losses(*(x[:6] for x in u))
    assert got == pytest.approx(forget_quality_from_logs(first6, logs).value, abs=1e-12, rel=0)
    edited = [("An edited answer." if i == 2 else ANSWERS[i]) for i in order]
    with pytest.raises(LetheError, match=r"item '2' .* is not in this run's forget split"):
        forget_quality_from_logs(probes, logs, answers=edited)


def _drop(d, key):
    return {k: v for k, v in d.items() if k != key}


def _malformed_cases(r):
    log = tofu_forget_log(*r)
    ou = ou_eval(r[0], r[1])
    ragged = json.loads(json.dumps(log))
    ragged["average_perturb_loss"]["4"] = ragged["average_perturb_loss"]["4"][:2]
    nan = json.loads(json.dumps(log))
    nan["avg_paraphrased_loss"]["3"] = float("nan")
    no_score = json.loads(json.dumps(ou))
    del no_score["forget_truth_ratio"]["value_by_index"]["7"]["score"]
    other_index = json.loads(json.dumps(log))
    other_index["average_perturb_loss"] = {str(int(k) + 1): v for k, v in log["average_perturb_loss"].items()}
    return {
        "missing average_perturb_loss": ("eval_log_forget.json", _drop(log, "average_perturb_loss"), "'average_perturb_loss'"),
        "missing forget_truth_ratio": ("TOFU_EVAL.json", _drop(ou, "forget_truth_ratio"), "'forget_truth_ratio'"),
        "missing score": ("TOFU_EVAL.json", no_score, "value_by_index['7']' has no key 'score'"),
        "ragged perturbed": ("eval_log_forget.json", ragged, "average_perturb_loss['4'] has 2 losses"),
        "nan loss": ("eval_log_forget.json", nan, "avg_paraphrased_loss['3']"),
        "misaligned index": ("eval_log_forget.json", other_index, "index different items"),
        "retain split log": ("eval_log.json", log, "not the forget split"),
        "aggregated without forget": ("eval_log_aggregated.json", {"eval_log_forget.json": {"avg_gt_loss": {}}},
                                      "'avg_paraphrased_loss'"),
        "a list": ("TOFU_EVAL.json", [1, 2], "not a retain-model evaluation log"),
    }


@pytest.mark.parametrize("case", list(_malformed_cases(_losses(2, 0.0))))
def test_malformed_logs_raise_one_line(tmp_path, case):
    name, obj, needle = _malformed_cases(_losses(2, 0.0))[case]
    path = _write(tmp_path / name, obj)
    with pytest.raises(LetheError) as exc:
        load_retain_logs(path)
    msg = str(exc.value)
    assert "\n" not in msg and str(path) in msg and needle in msg


def test_unreadable_inputs_raise_one_line(tmp_path):
    bad = tmp_path / "bad" / "TOFU_EVAL.json"
    bad.parent.mkdir()
    bad.write_text("{not json")
    empty = tmp_path / "empty"
    empty.mkdir()
    for path, needle in ((bad, "not valid JSON"), (tmp_path / "missing.json", "no such file"),
                         (empty, "holds no eval_log_forget.json")):
        with pytest.raises(LetheError) as exc:
            load_retain_logs(path)
        assert "\n" not in str(exc.value) and str(path) in str(exc.value) and needle in str(exc.value)


def test_provenance_and_detection(tmp_path, pair):
    path = _write(tmp_path / "logs" / "TOFU_EVAL.json", ou_eval(pair[1][0], pair[1][1]))
    logs = load_retain_logs(path)
    assert provenance(logs) == {"source": str(path), "layout": "open-unlearning", "items": N,
                                "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "entry": "forget_truth_ratio"}
    assert is_retain_logs(path) and is_retain_logs(path.parent)
    renamed = _write(tmp_path / "retain_eval.json", tofu_forget_log(*pair[1]))
    assert is_retain_logs(renamed)
    results = _write(tmp_path / "run" / "results.json", {"models": [], "provenance": {}})
    assert not is_retain_logs(results) and not is_retain_logs(results.parent)
