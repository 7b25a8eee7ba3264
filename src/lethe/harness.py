"""General utility through EleutherAI's lm-evaluation-harness (``lm_eval``): see ``docs/harness.md``.

``lm_eval`` is heavy and optional (``pip install 'lethe[harness]'``): it is imported inside the functions that need it.
"""
from __future__ import annotations

import contextlib
import importlib.metadata
import json
import logging
import math
import random
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .benchmarks.base import atomic_write_text
from .errors import LetheError, did_you_mean, where
from .models import load_model

INSTALL_HINT = "pip install lm-eval (or pip install 'lethe[harness]')"
TEMPLATE = Path(__file__).parent / "resources" / "lm_eval" / "lethe_mcq.yaml"
_TASK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")
# HFLM warns about every pre-loaded model; passing one is the point here, so the two lines are noise.
_EXPECTED_WARNINGS = ("`pretrained` model kwarg is not of type `str`",
                      "Passed an already-initialized model through `pretrained`")


@dataclass
class HarnessResult:
    """What one lm-eval run measured. ``metrics[task]``: ``{"acc": 0.5, "acc_stderr": 0.2}`` (a filter
    other than ``none`` keeps lm-eval's spelling, ``"exact_match,strict-match"``; a stderr lm-eval could
    not compute is ``None``). ``samples[task]``: lm-eval's per-document records, made JSON-ready."""

    metrics: dict[str, dict[str, float | None]]
    lm_eval_version: str
    seconds: float
    n_samples: dict[str, int] = field(default_factory=dict)  # documents evaluated per task
    higher_is_better: dict[str, dict[str, bool]] = field(default_factory=dict)  # lm-eval's own directions
    versions: dict[str, object] = field(default_factory=dict)  # task versions (metadata.version)
    n_shot: dict[str, int] = field(default_factory=dict)
    config: dict = field(default_factory=dict)  # tasks, include_path, limit, num_fewshot, batch_size, seed
    samples: dict[str, list[dict]] = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)


def _import_lm_eval():
    try:
        import lm_eval
        from lm_eval.models.huggingface import HFLM
        from lm_eval.tasks import TaskManager
    except ImportError as exc:
        raise LetheError(f"lm-evaluation-harness is not available ({exc}); {INSTALL_HINT}") from None
    return lm_eval, HFLM, TaskManager


def _check_row(i: int, row) -> dict:
    """One MCQ row as lm-eval will read it: question, choices, and ``answer`` as a 0-based index."""
    if not isinstance(row, dict):
        raise LetheError(f"{where('rows', i)}: expected an object with question, choices, answer; "
                         f"got {type(row).__name__}")
    question, choices, answer = row.get("question"), row.get("choices"), row.get("answer")
    if not isinstance(question, str) or not question.strip():
        raise LetheError(f"{where('rows', i, 'question')}: give the question as a non-empty string")
    if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) and c for c in choices):
        raise LetheError(f"{where('rows', i, 'choices')}: give a list of at least two non-empty strings")
    if isinstance(answer, str):  # the right choice's text: store its index, one type for the whole column
        if answer not in choices:
            raise LetheError(f"{where('rows', i, 'answer')}: '{answer}' is not one of the choices")
        answer = choices.index(answer)
    if isinstance(answer, bool) or not isinstance(answer, int) or not 0 <= answer < len(choices):
        raise LetheError(f"{where('rows', i, 'answer')}: {answer!r} is not a 0-based index into "
                         f"{len(choices)} choices; give the index or the right choice's text")
    return {"question": question, "choices": list(choices), "answer": answer}


def write_mcq_task(folder: str | Path, name: str, rows) -> Path:
    """Write ``<name>.jsonl`` (``rows``: question, choices, answer as index or text) and the task ``<name>.yaml``
    (Lethe's MCQ template) into ``folder``; returns the YAML's path. The YAML names the JSONL by its absolute
    path: lm-eval resolves a relative ``data_files`` path against the current directory, not the YAML's."""
    import yaml

    if not _TASK_NAME.match(name):
        raise LetheError(f"task name '{name}': use letters, digits, '_' and '-' (it names the files and the task)")
    checked = [_check_row(i, r) for i, r in enumerate(rows)]
    if not checked:
        raise LetheError(f"task '{name}': no rows; give at least one question")
    folder = Path(folder).resolve()
    data = folder / f"{name}.jsonl"
    atomic_write_text(data, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in checked))
    cfg = {"task": name, **yaml.safe_load(TEMPLATE.read_text(encoding="utf-8")),
           "dataset_kwargs": {"data_files": {"test": str(data)}}}
    task_yaml = folder / f"{name}.yaml"
    header = ("# Written by lethe.harness.write_mcq_task; the format is explained in "
              f"lethe/resources/lm_eval/{TEMPLATE.name}\n")
    atomic_write_text(task_yaml, header + _dump_yaml(cfg))
    return task_yaml


def _dump_yaml(cfg: dict) -> str:
    """YAML with multi-line strings double-quoted (``"Question: {{question}}\\nAnswer:"``), as one writes them."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def text(dumper, s: str):
        return dumper.represent_scalar("tag:yaml.org,2002:str", s, style='"' if "\n" in s else None)

    Dumper.add_representer(str, text)
    return yaml.dump(cfg, Dumper=Dumper, sort_keys=False, allow_unicode=True)


def _unreadable_yamls(include_path: str | None) -> str:
    """lm-eval skips a task YAML it cannot parse without a word; name the first such file."""
    if not include_path:
        return ""
    try:  # a private module of lm-eval: only used for this hint, so its absence costs only the hint
        from lm_eval.tasks._yaml_loader import load_yaml
    except ImportError:
        return ""
    for path in sorted(Path(include_path).glob("**/*.yaml")):
        try:
            load_yaml(path, resolve_func=False)
        except Exception as exc:  # noqa: BLE001 - any parse failure is worth naming
            return f"; {path} could not be read ({str(exc).splitlines()[0]})"
    return ""


def _task_manager(TaskManager, tasks: list[str], include_path: str | None):
    """A TaskManager that knows every task in ``tasks``, or a LetheError naming the one it lacks. Indexing
    lm-eval's ~15k built-in task YAMLs takes seconds, so tasks all in ``include_path`` index that folder only."""
    if include_path is not None:
        if not Path(include_path).is_dir():
            raise LetheError(f"include_path {include_path}: no such folder; give the folder holding your task YAMLs")
        local = TaskManager(include_path=include_path, include_defaults=False)
        if all(t in local.all_subtasks for t in tasks):
            return local
    manager = TaskManager(include_path=include_path)
    for t in tasks:
        if t not in manager.all_tasks and not (t.endswith((".yaml", ".yml")) and Path(t).is_file()):
            hint = did_you_mean(t, manager.all_tasks)
            where_ = f"include_path {include_path} and" if include_path else "no include_path;"
            raise LetheError(f"unknown lm-eval task '{t}'{hint} (looked in {where_} lm-eval's built-in tasks"
                             f"{_unreadable_yamls(include_path)})")
    return manager


class _DropExpected(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not any(s in record.getMessage() for s in _EXPECTED_WARNINGS)


@contextlib.contextmanager
def _caller_state_kept(model, tokenizer):
    """Undo what lm-eval does to shared state (docs/harness.md, "What a run leaves alone"). And keep
    ``datasets`` off the network: unless HF offline mode is on, loading its packaged JSON builder pings
    a download counter on S3 (a 3 s timeout on a machine without network)."""
    import datasets
    import numpy as np
    import torch

    modes = [(m, m.training) for m in model.modules()]
    pad_token = tokenizer.pad_token
    rng = (random.getstate(), np.random.get_state(), torch.get_rng_state())
    cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    counts = getattr(datasets.config, "HF_UPDATE_DOWNLOAD_COUNTS", None)
    if counts is not None:
        datasets.config.HF_UPDATE_DOWNLOAD_COUNTS = False
    hf_logger, quiet = logging.getLogger("lm_eval.models.huggingface"), _DropExpected()
    hf_logger.addFilter(quiet)
    try:
        yield
    finally:
        hf_logger.removeFilter(quiet)
        if counts is not None:
            datasets.config.HF_UPDATE_DOWNLOAD_COUNTS = counts
        random.setstate(rng[0])
        np.random.set_state(rng[1])
        torch.set_rng_state(rng[2])
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)
        if tokenizer.pad_token != pad_token:
            tokenizer.pad_token = pad_token
        for m, training in modes:
            m.training = training  # per module: a partly frozen model comes back exactly as it was


def _number(v) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError):  # lm-eval writes "N/A" for a stderr it could not compute
        return None
    return x if math.isfinite(x) else None


def _task_metrics(entry: dict) -> dict[str, float | None]:
    """``{"acc,none": .5, "alias": "x"}`` -> ``{"acc": .5}``: lm-eval's ``metric,filter`` keys, filter
    ``none`` dropped, text fields (alias, name) left out."""
    out: dict[str, float | None] = {}
    for key, value in entry.items():
        metric, comma, filt = key.partition(",")
        if comma:
            out[metric if filt == "none" else key] = _number(value)
    return out


def _jsonable(x):
    """lm-eval's sample records hold tuples and NumPy scalars; JSON wants lists and plain numbers."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (str, bool, int)) or x is None:
        return x
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if hasattr(x, "item"):  # NumPy / torch scalars
        return _jsonable(x.item())
    return str(x)


def _datasets_error(exc: Exception, tasks: list[str]) -> LetheError:
    msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, FileNotFoundError):
        return LetheError(f"lm-eval tasks {tasks}: data file not found ({msg}); a task's dataset_kwargs.data_files "
                          "must be an absolute path (it is resolved against the current directory, not the YAML's)")
    return LetheError(f"lm-eval tasks {tasks}: dataset not reachable ({msg}); run once with network access to fill "
                      "the Hugging Face datasets cache, or define a local task (lethe.harness.write_mcq_task)")


def run_harness(model, tokenizer, tasks: list[str], *, include_path: str | None = None, limit: int | None = None,
                num_fewshot: int | None = None, batch_size: int = 16, seed: int = 0, log_samples: bool = True,
                bootstrap_iters: int = 100000) -> HarnessResult:
    """Run lm-eval ``tasks`` on a loaded ``transformers`` model (arguments: docs/harness.md)."""
    if isinstance(tasks, str) or not tasks:
        raise LetheError(f"tasks: give a list of lm-eval task names, got {tasks!r}")
    if limit is not None and limit < 1:
        raise LetheError(f"limit={limit}: give a positive number of documents per task, or None for all")
    lm_eval, HFLM, TaskManager = _import_lm_eval()
    tasks = list(tasks)
    include_path = str(include_path) if include_path is not None else None
    t0 = time.perf_counter()
    manager = _task_manager(TaskManager, tasks, include_path)
    with _caller_state_kept(model, tokenizer):
        lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size)
        try:
            out = lm_eval.simple_evaluate(
                model=lm, tasks=tasks, task_manager=manager, limit=limit, num_fewshot=num_fewshot,
                batch_size=batch_size, log_samples=log_samples, bootstrap_iters=bootstrap_iters,
                random_seed=seed, numpy_random_seed=seed, torch_random_seed=seed, fewshot_random_seed=seed)
        except (FileNotFoundError, ConnectionError) as exc:
            raise _datasets_error(exc, tasks) from None
    return HarnessResult(
        metrics={t: _task_metrics(e) for t, e in out["results"].items()},
        lm_eval_version=importlib.metadata.version("lm_eval"),  # lm_eval 0.4.8 has no __version__
        seconds=time.perf_counter() - t0,
        n_samples={t: int(n["effective"]) for t, n in (out.get("n-samples") or {}).items()},
        higher_is_better={t: dict(d) for t, d in (out.get("higher_is_better") or {}).items()},
        versions=_jsonable(out.get("versions") or {}),
        n_shot=_jsonable(out.get("n-shot") or {}),
        config={"tasks": tasks, "include_path": include_path, "limit": limit, "num_fewshot": num_fewshot,
                "batch_size": batch_size, "seed": seed, "bootstrap_iters": bootstrap_iters},
        samples={t: _jsonable(s) for t, s in (out.get("samples") or {}).items()} if log_samples else {},
    )


def _key(*parts: str) -> str:
    return "_".join(re.sub(r"[^0-9A-Za-z]+", "_", p).strip("_") for p in parts)


def _values(result: HarnessResult) -> list[tuple[str, str, float | None]]:
    """``(task, name, value)`` of every measured value, stderrs left out."""
    return [(task, name, value) for task, metrics in result.metrics.items() for name, value in metrics.items()
            if not name.split(",", 1)[0].endswith("_stderr")]


def flat_summary(result: HarnessResult) -> tuple[dict[str, float | None], dict[str, str]]:
    """``(values, directions)`` for a Lethe summary: ``lm_eval_<task>_<metric>`` (e.g. ``lm_eval_arc_easy_acc``,
    ``lm_eval_arc_easy_acc_norm``; a filter joins with ``_``). Stderrs stay in ``result.metrics``;
    directions are lm-eval's own (``higher`` for acc), and a metric without one gets none."""
    values: dict[str, float | None] = {}
    directions: dict[str, str] = {}
    for task, name, value in _values(result):
        key = _key("lm_eval", task, name)
        values[key] = value
        metric, hib = name.split(",", 1)[0], result.higher_is_better.get(task, {})
        if metric in hib:
            directions[key] = "higher" if hib[metric] else "lower"
    return values, directions


def format_table(result: HarnessResult) -> str:
    rows = [("task", "metric", "value", "stderr", "n")]
    for task, name, value in _values(result):
        metric, _, filt = name.partition(",")
        err = result.metrics[task].get(f"{metric}_stderr" + (f",{filt}" if filt else ""))
        rows.append((task, name, "n/a" if value is None else f"{value:.4f}",
                     "" if err is None else f"±{err:.4f}", str(result.n_samples.get(task, ""))))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def harness_main(model_path: str, tasks: list[str], include_path: str | None, limit: int | None, out: str | None,
                 trust_remote_code: bool = False) -> dict:
    """Load a model folder (or hub id), run ``tasks``, print a table; write JSON to ``out`` when given."""
    _import_lm_eval()  # fail on a missing lm-eval before spending time loading the model
    model, tokenizer = load_model(model_path, trust_remote_code)
    result = run_harness(model, tokenizer, tasks, include_path=include_path, limit=limit)
    values, directions = flat_summary(result)
    doc = {"model": str(model_path), **result.to_json(), "summary": values, "directions": directions}
    print(format_table(result))
    print(f"lm-eval {result.lm_eval_version}, {result.seconds:.1f} s")
    if out:
        atomic_write_text(out, json.dumps(doc, indent=2, allow_nan=False) + "\n")
    return doc
