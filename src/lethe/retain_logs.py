"""Published retain-model evaluations as the gold standard (docs/metrics.md, "Published retain-model evaluations").

Forget quality (Maini et al. 2024, Sec. 2.5.2) compares the unlearned model's per-item forget truth ratios with
those the TOFU authors' eval logs (``{statistic: {"<index>": value}}``) or open-unlearning's ``TOFU_EVAL.json``
(``{metric: {"agg_value", "value_by_index"}}``) hold for a retain model. Each source's truth-ratio convention is
kept (``CONVENTIONS``), so the forget quality against a log is what that source's own code computes.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .benchmarks.base import decode_text, read_text
from .errors import LetheError
from .metrics import MetricResult
from .metrics.tofu import MODEL_UTILITY_KEYS, truth_ratio_log
from .probes import SplitProbes

TOFU_LAYOUT = "tofu-eval-log"
OPEN_UNLEARNING_LAYOUT = "open-unlearning"

TOFU_FORGET_FILE = "eval_log_forget.json"
TOFU_AGGREGATED_FILE = "eval_log_aggregated.json"
OPEN_UNLEARNING_FILE = "TOFU_EVAL.json"
OPEN_UNLEARNING_ENTRY = "forget_truth_ratio"
LOG_FILES = (TOFU_FORGET_FILE, TOFU_AGGREGATED_FILE, OPEN_UNLEARNING_FILE)

# TOFU's four evaluation files and Lethe's names of their splits
# (aggregate_eval_stat.get_model_utility: eval_task_dict).
TOFU_FILES = {
    "eval_log_forget.json": "forget",
    "eval_log.json": "retain",
    "eval_real_author_wo_options.json": "known_people",
    "eval_real_world_wo_options.json": "world_facts",
}

# open-unlearning's truth ratio divides by (P(correct) + 1e-10) (src/evals/metrics/memorization.py:
# truth_ratio); the 1e-10 is kept so our values are the ones its TOFU_EVAL.json holds.
OPEN_UNLEARNING_EPS = 1e-10

CONVENTIONS = {
    # aggregate_eval_stat.get_forget_quality: np.exp(perturbed - paraphrase) of the avg losses
    TOFU_LAYOUT: "exp(mean_k L(perturbed_k) - L(paraphrase)) = P(paraphrase)/P(perturbed) = 1/R, L = per-token "
                 "mean NLL (locuslab/tofu aggregate_eval_stat.get_forget_quality)",
    # memorization.truth_ratio (aggregator closer_to_1_better) -> privacy.ks_test on the scores
    OPEN_UNLEARNING_LAYOUT: "exp(-mean_k L(perturbed_k)) / (exp(-L(paraphrase)) + 1e-10) ~ R, L = per-token mean NLL "
                            "(open-unlearning evals/metrics/memorization.truth_ratio)",
}

# open-unlearning metric names -> Lethe's summary names (the same statistic, see docs/metrics.md).
OPEN_UNLEARNING_AGGREGATES = {
    "forget_Q_A_Prob": "forget_probability", "forget_Q_A_ROUGE": "forget_rouge_l",
    "forget_truth_ratio": "forget_truth_ratio",
    "retain_Q_A_Prob": "retain_probability", "retain_Q_A_ROUGE": "retain_rouge_l",
    "retain_Truth_Ratio": "retain_truth_ratio",
    "ra_Q_A_Prob_normalised": "known_people_probability", "ra_Q_A_ROUGE": "known_people_rouge_l",
    "ra_Truth_Ratio": "known_people_truth_ratio",
    "wf_Q_A_Prob_normalised": "world_facts_probability", "wf_Q_A_ROUGE": "world_facts_rouge_l",
    "wf_Truth_Ratio": "world_facts_truth_ratio",
    "model_utility": "model_utility",
}

_WHAT = (f"a TOFU {TOFU_FORGET_FILE} or {TOFU_AGGREGATED_FILE} (locuslab/tofu eval_results/ds_size300/) or an "
         f"open-unlearning {OPEN_UNLEARNING_FILE} (saves/eval/tofu_<model>_retain90/), or the folder holding it")


@dataclass(frozen=True)
class RetainLogs:
    """A retain model's published forget-split evaluation, as read from one JSON file."""

    source: str  # the JSON file the forget values were read from
    layout: str  # TOFU_LAYOUT | OPEN_UNLEARNING_LAYOUT
    sha256: str  # of that file's bytes
    entry: str  # where in the file: "eval_log_forget.json" (aggregated TOFU log), "forget_truth_ratio", "" (whole file)
    index: tuple[str, ...]  # (N,) the items' index keys in file order ("0", "1", ...)
    values: tuple[float, ...]  # (N,) per-item truth ratios in the source's convention (CONVENTIONS[layout])
    answers: tuple[str, ...] = ()  # (N,) ground-truth answers when the file records them, else ()
    aggregates: dict = field(default_factory=dict)  # the retain model's own numbers under Lethe's summary names
    notes: tuple[str, ...] = ()  # what was left out of the aggregates, and why

    @property
    def items(self) -> int:
        return len(self.values)


def _read_json(file: Path) -> tuple[object, bytes]:
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise LetheError(f"{file}: cannot be read ({exc.strerror or exc}); give {_WHAT}") from None
    text = decode_text(raw, file)  # bytes in another encoding: one line with the offset of the first bad one
    try:
        # JSON only (never unpickle); Python's json also accepts NaN/Infinity, rejected per value below
        return json.loads(text), raw
    except json.JSONDecodeError as exc:
        raise LetheError(f"{file}: not valid JSON ({exc}); give {_WHAT}") from None


def _detect(data: object) -> str | None:
    """The layout of a parsed log, from its top-level keys (file names can be changed, keys cannot)."""
    if not isinstance(data, dict):
        return None
    # any one of a layout's own keys identifies it, so a damaged file is named by the key it lacks
    if TOFU_FORGET_FILE in data or data.keys() & {"avg_paraphrased_loss", "average_perturb_loss", "avg_gt_loss"}:
        return TOFU_LAYOUT
    if data.keys() & {OPEN_UNLEARNING_ENTRY, "forget_quality", "forget_Q_A_Prob", "forget_Q_A_PARA_Prob"}:
        return OPEN_UNLEARNING_LAYOUT
    return None


def _pick_file(folder: Path) -> Path:
    found = [folder / n for n in LOG_FILES if (folder / n).is_file()]  # eval_log_forget.json first
    if len(found) > 1 and found[-1].name == OPEN_UNLEARNING_FILE:
        raise LetheError(f"{folder}: holds both TOFU logs ({found[0].name}) and an open-unlearning {found[-1].name}; "
                         "give the file to use")
    if found:
        return found[0]
    raise LetheError(f"{folder}: holds no {TOFU_FORGET_FILE}, {TOFU_AGGREGATED_FILE} or {OPEN_UNLEARNING_FILE}; "
                     f"give {_WHAT}")


def is_retain_logs(path: str | Path) -> bool:
    """Whether ``path`` is a published retain-model evaluation (rather than, e.g., a Lethe results.json
    or a model folder): a folder holding one of the known files, or a JSON file in one of the layouts.
    A .json file that is not UTF-8 text is no layout at all: its one-line error is raised here."""
    p = Path(path)
    if p.is_dir():
        return any((p / n).is_file() for n in LOG_FILES)
    if not p.is_file() or p.suffix != ".json":
        return False
    try:
        return p.name in LOG_FILES or _detect(json.loads(read_text(p))) is not None
    except (OSError, json.JSONDecodeError):
        return False


def load_retain_logs(path: str | Path) -> RetainLogs:
    """Read a retain model's published evaluation (one of :data:`LOG_FILES`, or a folder holding one; siblings
    of an ``eval_log_forget.json`` add the retain model's other numbers); one-line LetheError when malformed."""
    p = Path(path)
    if not (p.is_dir() or p.is_file()):
        raise LetheError(f"{p}: no such file or folder; give {_WHAT}")
    file = _pick_file(p) if p.is_dir() else p
    data, raw = _read_json(file)
    layout = _detect(data)
    if layout is None:
        keys = ", ".join(list(data)[:8]) if isinstance(data, dict) else type(data).__name__
        raise LetheError(f"{file}: not a retain-model evaluation log (needs the keys avg_paraphrased_loss and "
                         f"average_perturb_loss, or {TOFU_FORGET_FILE}, or {OPEN_UNLEARNING_ENTRY}; found: {keys}); "
                         f"give {_WHAT}")
    if layout == TOFU_LAYOUT and file.name in TOFU_FILES and file.name != TOFU_FORGET_FILE:
        # eval_log.json and the real-world logs have the same keys but hold other splits
        raise LetheError(f"{file}: this is TOFU's log of the {TOFU_FILES[file.name]} split, not the forget split; give "
                         f"{file.parent / TOFU_FORGET_FILE} (or the folder holding it)")
    read = _tofu_logs if layout == TOFU_LAYOUT else _open_unlearning_logs
    return read(file, data, hashlib.sha256(raw).hexdigest())


# TOFU's eval logs
def _number(x, where: str) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        raise LetheError(f"{where}: expected a finite number, got {x!r}; the log is damaged, take it again from "
                         "its source")
    return float(x)


def _section(d: Mapping, key: str, where: str) -> dict:
    if not isinstance(d, Mapping) or key not in d:
        raise LetheError(f"{where}: missing key '{key}'; give an unmodified log written by its evaluation code")
    sec = d[key]
    if not isinstance(sec, Mapping) or not sec:
        raise LetheError(f"{where}: '{key}' must be a non-empty {{\"<index>\": value}} object")
    return dict(sec)


def _tofu_losses(d: Mapping, where: str) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """(index, avg_paraphrased_loss (N,), average_perturb_loss (N, K)) of an eval_log_forget dict."""
    para = _section(d, "avg_paraphrased_loss", where)
    pert = _section(d, "average_perturb_loss", where)
    # get_forget_quality pairs the two by the order of .values(): a log whose two statistics index the
    # items differently would pair the wrong numbers there, so it is refused here
    if list(para) != list(pert):
        bad = next((a for a, b in zip(para, pert) if a != b), None)
        raise LetheError(f"{where}: 'avg_paraphrased_loss' ({len(para)} items) and 'average_perturb_loss' "
                         f"({len(pert)} items) index different items (first difference at '{bad}'); give an "
                         "unmodified log")
    index = tuple(para)
    para_np = np.array([_number(para[i], f"{where}: avg_paraphrased_loss['{i}']") for i in index])  # (N,)
    rows = []
    for i in index:
        row = pert[i]
        if not isinstance(row, list) or not row:
            raise LetheError(f"{where}: average_perturb_loss['{i}'] must be a non-empty list of losses, one per "
                             f"perturbed answer; got {row!r}")
        rows.append([_number(x, f"{where}: average_perturb_loss['{i}']") for x in row])
    for i, row in zip(index, rows):
        if len(row) != len(rows[0]):
            raise LetheError(f"{where}: average_perturb_loss['{i}'] has {len(row)} losses, item '{index[0]}' has "
                             f"{len(rows[0])}; every item needs the same number of perturbed answers")
    return index, para_np, np.array(rows)  # (N, K)


def _tofu_ratio(para: np.ndarray, pert: np.ndarray) -> np.ndarray:
    """aggregate_eval_stat.get_forget_quality: np.exp(perturbed.mean(axis=-1) - paraphrase) -> (N,)."""
    with np.errstate(over="ignore"):  # an overflow to inf is what the reference computes too
        return np.exp(pert.mean(axis=-1) - para)


def _tofu_forget_entry(d: object, where: str) -> tuple[Mapping, str]:
    """The eval_log_forget dict inside an aggregated log, or the dict itself."""
    if not isinstance(d, Mapping):
        raise LetheError(f"{where}: expected a JSON object, got {type(d).__name__}")
    return (d[TOFU_FORGET_FILE], TOFU_FORGET_FILE) if TOFU_FORGET_FILE in d else (d, "")


def _tofu_answers(d: Mapping, index: tuple[str, ...]) -> tuple[str, ...]:
    """Ground truths from generated_text: {"<index>": [prompt, generation, ground truth]}."""
    gen = d.get("generated_text")
    if not isinstance(gen, Mapping) or list(gen) != list(index) or not all(
            isinstance(v, list) and len(v) == 3 and isinstance(v[2], str) for v in gen.values()):
        return ()
    return tuple(v[2] for v in gen.values())


def _tofu_split_numbers(name: str, d: Mapping, where: str) -> dict[str, float]:
    """One file's three numbers as aggregate_eval_stat.get_model_utility computes them."""
    split = TOFU_FILES[name]
    gt = np.array([_number(v, f"{where}: avg_gt_loss") for v in _section(d, "avg_gt_loss", where).values()])
    true_p = np.exp(-gt)  # (N,)
    index, para, pert = _tofu_losses(d, where)
    if "eval_log" in name:  # retain and forget: per-token probability of the answer
        prob = float(np.mean(true_p))
    else:  # real authors / world facts: normalised over the answer and the wrong ones
        if len(gt) != len(index):
            raise LetheError(f"{where}: 'avg_gt_loss' has {len(gt)} items, 'average_perturb_loss' {len(index)}")
        all_p = np.concatenate([true_p[:, None], np.exp(-pert)], axis=1).sum(-1)
        prob = float(np.mean(true_p / all_p))
    rouge = np.array([_number(v, f"{where}: rougeL_recall") for v in _section(d, "rougeL_recall", where).values()])
    curr = _tofu_ratio(para, pert)  # 1/R
    tr = float(np.mean(np.minimum(curr, 1 / curr) if split == "forget" else np.maximum(0, 1 - 1 / curr)))
    return {f"{split}_probability": prob, f"{split}_rouge_l": float(rouge.mean()), f"{split}_truth_ratio": tr}


def _tofu_aggregates(files: Mapping[str, tuple[Mapping, str]]) -> tuple[dict, tuple[str, ...]]:
    """The retain model's TOFU numbers (and model utility when all three non-forget files are there).
    They are for the report only, so a damaged sibling leaves a note instead of stopping the run."""
    out: dict[str, float] = {}
    notes: list[str] = []
    for name, (d, where) in files.items():
        try:
            out.update(_tofu_split_numbers(name, d, where))
        except LetheError as exc:
            notes.append(f"retain-model numbers of {name} left out: {exc}")
    missing = [n for n in TOFU_FILES if n not in files]
    if missing:
        notes.append(f"no {', '.join(missing)}: the retain model's numbers on those splits are not reported")
    if all(k in out for k in MODEL_UTILITY_KEYS):
        from scipy.stats import hmean  # get_model_utility: hmean of the nine non-forget numbers

        out["model_utility"] = float(hmean([out[k] for k in MODEL_UTILITY_KEYS]))
    return out, tuple(notes)


def _tofu_logs(file: Path, data: Mapping, digest: str) -> RetainLogs:
    forget, entry = _tofu_forget_entry(data, str(file))
    where = f"{file}: entry '{entry}'" if entry else str(file)
    index, para, pert = _tofu_losses(forget, where)
    notes_read: list[str] = []
    if entry:  # aggregated: every file of the evaluation is inside
        files = {n: (data[n], f"{file}: entry '{n}'") for n in TOFU_FILES if isinstance(data.get(n), Mapping)}
    else:  # a single eval_log_forget.json: its siblings, when they sit next to it
        files = {TOFU_FORGET_FILE: (data, str(file))}
        for n in TOFU_FILES:
            if n != TOFU_FORGET_FILE and (file.parent / n).is_file():
                try:
                    files[n] = (_read_json(file.parent / n)[0], str(file.parent / n))
                except LetheError as exc:  # a sibling only adds report numbers: note it, go on
                    notes_read.append(f"retain-model numbers of {n} left out: {exc}")
    aggregates, notes = _tofu_aggregates(files)
    return RetainLogs(source=str(file), layout=TOFU_LAYOUT, sha256=digest, entry=entry, index=index,
                      values=tuple(float(v) for v in _tofu_ratio(para, pert)), answers=_tofu_answers(forget, index),
                      aggregates=aggregates, notes=tuple(notes_read) + notes)


# open-unlearning's TOFU_EVAL.json
def _ou_scores(data: object, where: str) -> tuple[tuple[str, ...], np.ndarray]:
    """forget_truth_ratio.value_by_index[i].score -> (index, (N,)), as privacy.ks_test reads them."""
    if not isinstance(data, Mapping):
        raise LetheError(f"{where}: expected a JSON object, got {type(data).__name__}")
    ftr = data.get(OPEN_UNLEARNING_ENTRY)
    if not isinstance(ftr, Mapping):
        raise LetheError(f"{where}: missing key '{OPEN_UNLEARNING_ENTRY}' (the forget truth ratios); evaluate the "
                         "retain model with open-unlearning's tofu eval, which writes it")
    vbi = _section(ftr, "value_by_index", f"{where}: '{OPEN_UNLEARNING_ENTRY}'")
    scores = []
    for i, v in vbi.items():
        if not isinstance(v, Mapping) or "score" not in v:
            raise LetheError(f"{where}: '{OPEN_UNLEARNING_ENTRY}.value_by_index['{i}']' has no key 'score'")
        scores.append(_number(v["score"], f"{where}: '{OPEN_UNLEARNING_ENTRY}.value_by_index['{i}'].score'"))
    return tuple(vbi), np.array(scores)


def _open_unlearning_logs(file: Path, data: Mapping, digest: str) -> RetainLogs:
    index, scores = _ou_scores(data, str(file))
    answers: tuple[str, ...] = ()
    rouge = data.get("forget_Q_A_ROUGE")
    vbi = rouge.get("value_by_index") if isinstance(rouge, Mapping) else None
    if isinstance(vbi, Mapping) and list(vbi) == list(index) and all(
            isinstance(v, Mapping) and isinstance(v.get("ground_truth"), str) for v in vbi.values()):
        answers = tuple(v["ground_truth"] for v in vbi.values())
    aggregates, notes = {}, []
    for theirs, ours in OPEN_UNLEARNING_AGGREGATES.items():
        agg = data.get(theirs)
        x = agg.get("agg_value") if isinstance(agg, Mapping) else None
        if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x):
            aggregates[ours] = float(x)
        else:
            notes.append(f"no finite {theirs}.agg_value: the retain model's {ours} is not reported")
    return RetainLogs(source=str(file), layout=OPEN_UNLEARNING_LAYOUT, sha256=digest, entry=OPEN_UNLEARNING_ENTRY,
                      index=index, values=tuple(float(v) for v in scores), answers=answers,
                      aggregates=aggregates, notes=tuple(notes))


# Forget quality
def _ks_pvalue(unlearned: np.ndarray, retain: np.ndarray) -> float:
    from scipy.stats import ks_2samp  # both sources: ks_2samp(unlearned, retain) with scipy's defaults

    return float(ks_2samp(unlearned, retain).pvalue)


def unlearned_values(p: SplitProbes, layout: str) -> np.ndarray:
    """The unlearned model's per-item truth ratios from Lethe's probes, in ``layout``'s convention -> (N,).
    L = -log P(a|q) / |a| (EOS included, like both sources' labels) is the per-token mean NLL that
    TOFU's ``avg_*_loss`` and open-unlearning's ``avg_loss`` hold."""
    log_r = truth_ratio_log(p)  # validates shapes, finiteness and token counts; mean_k lp~/n~ - lp^/n^
    with np.errstate(over="ignore"):
        if layout == TOFU_LAYOUT:
            # exp(mean_k L~ - L^): the same float as the reference from L = -lp/n, since negation is exact
            return np.exp(-log_r)
        if layout == OPEN_UNLEARNING_LAYOUT:
            correct = -(np.asarray(p.paraphrase_logprob, np.float64) / np.asarray(p.paraphrase_ntokens, np.float64))
            wrong = -(np.asarray(p.perturbed_logprob, np.float64) / np.asarray(p.perturbed_ntokens, np.float64))
            wrong = wrong.mean(axis=1)  # utils.aggregate_to_1D: mean over the K perturbed answers
            return np.exp(-wrong) / (np.exp(-correct) + OPEN_UNLEARNING_EPS)
    raise ValueError(f"unknown retain-log layout '{layout}'; expected {TOFU_LAYOUT} or {OPEN_UNLEARNING_LAYOUT}")


def _norm(text: str) -> str:
    # all whitespace dropped: a log's ground truth is decoded from tokens, and decoding moves spaces
    # (open-unlearning's "Mammadov, is" for TOFU's "Mammadov , is": clean_up_tokenization_spaces)
    return "".join(str(text).split())


def logged_positions(logs: RetainLogs, answers: Sequence[str]) -> list[int]:
    """For each item of the log, in log order, its position in ``answers`` (the forget split's answers in
    the order of the unlearned model's probes), matched on the answer text with whitespace ignored:
    nothing else ties a log's index (TOFU's ``ds_size=300``: the first 300 items) to a benchmark item."""
    if not logs.answers:
        raise LetheError(f"{logs.source}: records no ground-truth answers, so its items cannot be matched to the "
                         "forget split's; evaluate the unlearned model on the same items in the same order instead")
    free: dict[str, list[int]] = {}
    for i, a in enumerate(answers):
        free.setdefault(_norm(a), []).append(i)
    out = []
    for key, a in zip(logs.index, logs.answers):
        slots = free.get(_norm(a))
        if not slots:
            short = " ".join(a.split())[:60]
            raise LetheError(f"{logs.source}: item '{key}' (answer \"{short}\") is not in this run's forget split; "
                             "give the retain logs of the same forget split (e.g. retain90 for forget10)")
        out.append(slots.pop(0))  # a repeated answer takes the next unused position
    return out


def _take(p: SplitProbes, idx: Sequence[int]) -> SplitProbes:
    """The probes of the items at ``idx`` (only what the truth ratio reads)."""
    i = np.asarray(idx, dtype=np.int64)
    fields = [f"{w}_{x}" for w in ("answer", "paraphrase", "perturbed") for x in ("logprob", "ntokens")]
    return SplitProbes(ids=[p.ids[j] for j in idx], **{f: np.asarray(getattr(p, f))[i] for f in fields})


def forget_quality_from_logs(unlearned: SplitProbes, logs: RetainLogs,
                             answers: Sequence[str] | None = None) -> MetricResult:
    """TOFU forget quality of an unlearned model against a published retain-model log:

        FQ = p-value of KS_2samp( {t_i(unlearned)}, {t_i(retain model, from the log)} )

    with t in the log's own convention (``CONVENTIONS``), as that source's code computes it (TOFU
    ``aggregate_eval_stat.get_forget_quality``; open-unlearning ``privacy.ks_test`` on
    ``memorization.truth_ratio`` scores). ``answers``: the forget split's answers in the probes' order,
    to match the items by answer text (:func:`logged_positions`); without them both hold the same items.
    """
    n = len(unlearned.ids)
    if np.asarray(unlearned.perturbed_logprob).ndim != 2 or np.asarray(unlearned.perturbed_logprob).shape[1] == 0:
        raise LetheError(f"forget quality against {logs.source} needs the unlearned model's truth ratios: probe the "
                         "forget split with its perturbed (wrong) answers")
    if answers is not None:
        if len(answers) != n:
            raise ValueError(f"answers has {len(answers)} entries, the unlearned probes {n} items")
        unlearned = _take(unlearned, logged_positions(logs, answers))
    elif n != logs.items:
        hint = (" (TOFU's published logs hold the first 300 items of forget10: evaluate on those, or pass the "
                "forget answers so the logged items are matched)" if logs.layout == TOFU_LAYOUT and logs.items == 300
                else "")
        raise LetheError(f"{logs.source}: the retain model's log covers {logs.items} forget items, the unlearned "
                         f"model was evaluated on {n}; evaluate both on the same forget split{hint}")
    ours = unlearned_values(unlearned, logs.layout)
    return MetricResult(_ks_pvalue(ours, np.asarray(logs.values, dtype=np.float64)), [])


def provenance(logs: RetainLogs) -> dict:
    """What a result records about the gold standard it was judged against."""
    entry = {"entry": logs.entry} if logs.entry else {}
    return {"source": logs.source, "layout": logs.layout, "sha256": logs.sha256, "items": logs.items, **entry}


# The sources' own computations, from two logs (used by the tests and for cross-checks)
def tofu_forget_quality(unlearn_log: Mapping, retain_log: Mapping) -> float:
    """``aggregate_eval_stat.get_forget_quality`` re-derived: the KS p-value between the truth ratios of
    two ``eval_log_forget.json`` dicts (or two ``eval_log_aggregated.json`` dicts)."""
    def ratios(log, where):
        return _tofu_ratio(*_tofu_losses(_tofu_forget_entry(log, where)[0], where)[1:])

    return _ks_pvalue(ratios(unlearn_log, "unlearned log"), ratios(retain_log, "retain log"))


def open_unlearning_forget_quality(unlearn_eval: Mapping, retain_eval: Mapping) -> float:
    """open-unlearning's ``privacy.ks_test`` re-derived: the KS p-value between the ``forget_truth_ratio``
    scores of two ``TOFU_EVAL.json`` dicts (the unlearned model's and the retain model's)."""
    return _ks_pvalue(_ou_scores(unlearn_eval, "unlearned log")[1], _ou_scores(retain_eval, "retain log")[1])
