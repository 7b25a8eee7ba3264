"""``lethe``: one CLI, thin subcommands over the API.

Heavy libraries are imported inside the subcommands, so ``lethe --help`` answers at once.
User mistakes print one line and exit with status 2, without a traceback.
"""
from __future__ import annotations

import argparse
import importlib.util
import dataclasses
import json
import os
import sys
from pathlib import Path

from . import dist
from .errors import LetheError
from .progress import set_enabled

EPILOG = """examples:
  lethe run                                   built-in benchmark, forget10, the default methods
  lethe run forget_split=forget05 methods=[npo,me]
  lethe run my.yaml train.lr=1e-4             YAML config + dotted overrides
  lethe unlearn npo model=path/to/model benchmark=path/to/tofu retain_model=runs/x/results.json
  lethe eval model=path/to/model              evaluate a model without unlearning
  lethe attack runs/<run>/models/npo attacks=[relearn,jailbreak]
  lethe safety                                fictional harmful requests: 7 methods, 10 jailbreaks + GCG, trilemma
  lethe ls datasets                           safety datasets (AdvBench, XSTest, MMLU, ...) and their roles
  lethe harness runs/<run>/models/npo --tasks my_mcq --include my_tasks/
  lethe report runs/lethe-authors-forget10-...
  lethe ls methods
  lethe validate data.jsonl
"""


def _split_args(args: list[str]) -> tuple[str | None, list[str]]:
    config, overrides = None, []
    for a in args:
        if "=" in a:
            overrides.append(a)
        elif config is None and a.endswith((".yaml", ".yml")):
            config = a
        else:
            raise LetheError(f"unexpected argument '{a}': give a config file (.yaml) and key=value overrides")
    return config, overrides


def _config(args) -> "object":
    from .config import load_config

    return load_config(*_split_args(args.settings))


def cmd_run(args) -> int:
    from .pipeline import run
    from .report import load_summary, print_summary
    from .scenarios._run import ReportFailed

    cfg = _resume_config(args) if getattr(args, "resume", None) else _config(args)
    try:
        out = run(cfg, evaluate_only=args.command == "eval")
    except ReportFailed as exc:
        if dist.is_main():  # every process of a launch raises it; one says it
            print(f"lethe: {exc}", file=sys.stderr)
        return 1
    summary = load_summary(out)
    print_summary(summary)
    print(f"run folder: {out}\n  report: {out / 'report.md'}\n  page:   {out / 'report.html'}")
    if (failed := summary.get("failed")) and dist.is_main():
        print(f"lethe: {len(failed)} of {sum(r.get('kind') == 'method' for r in summary['rows'])} methods failed "
              f"({'; '.join(failed)}); the others' results are in {out}; lethe run --resume {out} runs the failed "
              "ones again", file=sys.stderr)
        return 1
    return 1 if failed else 0


def _resume_config(args):
    """``lethe run --resume RUN``: the run's own config.yaml (finished or unfinished run), resume=true."""
    from .config import load_config

    _, overrides = _split_args(args.settings)
    if changed := sorted({o.split("=", 1)[0].strip() for o in overrides} - {"threads"}):
        raise LetheError(f"--resume continues a run with its own config; drop {', '.join(changed)} (only threads= may "
                         "change)")
    run_dir = Path(args.resume)
    partial = run_dir.parent / f".{run_dir.name}.partial"
    for folder in (partial, run_dir):
        if (folder / "config.yaml").is_file():
            cfg = load_config(folder / "config.yaml", overrides)
            return dataclasses.replace(cfg, resume=True, name=run_dir.name, output=str(run_dir.parent))
    raise LetheError(f"{run_dir}: no run to resume (neither it nor {partial} holds a config.yaml)")


def cmd_sweep(args) -> int:
    from .sweep import load_sweep_config, run_sweep

    cfg, scfg = load_sweep_config(*_split_args(args.settings))
    out = run_sweep(cfg, scfg)
    print(f"sweep folder: {out}\n  report: {out / 'report.md'}\n  page:   {out / 'report.html'}")
    return 0


def cmd_safety(args) -> int:
    """``lethe safety ...`` = ``lethe run scenario=safety ...``."""
    _, overrides = _split_args(args.settings)
    if any(o.split("=", 1)[0].strip() == "scenario" for o in overrides):
        raise LetheError("`lethe safety` runs scenario=safety; drop scenario=... (or use `lethe run`)")
    args.settings = list(args.settings) + ["scenario=safety"]
    return cmd_run(args)


def cmd_unlearn(args) -> int:
    from .methods import get_method
    from .pipeline import run

    cfg = dataclasses.replace(_config(args), methods=(args.method,), save_models=True)
    spec = get_method(args.method)
    if not spec.saves_model:
        raise LetheError(f"'{args.method}' is {spec.no_model}; evaluate it with: lethe run methods=[{args.method}]")
    out = run(cfg)
    print(f"unlearned model: {out / 'models' / args.method}\nreport: {out / 'report.md'}")
    return 0


def cmd_finetune(args) -> int:
    from .finetune import finetune_benchmark, load_finetune_config, next_command

    config, overrides = _split_args(args.settings)
    if config:
        raise LetheError(f"lethe finetune takes key=value settings only, not a config file ({config})")
    cfg, explicit = load_finetune_config(overrides)
    record = finetune_benchmark(cfg, explicit)
    out = cfg.out_folder()
    print(f"target model: {out / 'target'}\nretain model: {out / 'retain'}\nrecord:       {out / 'finetune.json'} "
          f"({record['recipe']} recipe)\nnext:         {next_command(out, cfg)}")
    return 0


def cmd_attack(args) -> int:
    from .benchmarks.base import atomic_write_text
    from .pipeline import attack_model
    from .report import ROBUSTNESS_HEADER, format_value

    hub_like = args.model.count("/") == 1 and not args.model.startswith((".", "/", "~"))  # owner/name
    if not Path(args.model).exists() and not hub_like:
        raise LetheError(f"{args.model}: no such model folder; give a saved model (e.g. runs/<run>/models/<method>)")
    out = attack_model(_config(args), args.model)
    print(" | ".join(ROBUSTNESS_HEADER[1:]))
    for name, r in out["robustness"].items():
        cells = [f"{format_value(k, r['before'].get(k))} -> {format_value(k, r['after'].get(k))}"
                 for k in ("forget_probability", "forget_rouge_l", "forget_truth_ratio")]
        print(" | ".join([name, str(r["items"]), *cells]))
    if args.out:
        atomic_write_text(Path(args.out), json.dumps(out, indent=2))
        print(f"wrote {args.out}")
    return 0


def cmd_harness(args) -> int:
    from .harness import harness_main
    from .models import placed, placement

    if not args.tasks:
        raise LetheError("name at least one lm-eval task: lethe harness MODEL --tasks TASK [TASK ...]")
    with placed(placement()):  # the GPU in bfloat16 when there is one, else the CPU in float32
        harness_main(args.model, args.tasks, args.include, args.limit, args.out, args.trust_remote_code)
    return 0


def cmd_report(args) -> int:
    from .report import load_summary, print_summary, write_report

    paths = write_report(args.run_dir)
    print_summary(load_summary(args.run_dir))
    print(*paths.values(), sep="\n")
    return 0


def _table(header: str, rows) -> None:
    print(header, *(f"  {row}" for row in rows), sep="\n")


def cmd_ls(args) -> int:
    what = args.what
    if what in ("methods", "all"):
        from .methods import FAMILIES, METHODS

        rank = {f: i for i, f in enumerate(FAMILIES)}
        methods = sorted(METHODS.items(), key=lambda kv: (rank.get(kv[1].family, len(rank)), kv[0]))
        _table("methods (by family, with their kind; the gold standard is the retain model: retraining without the "
               "forget data):", (f"{n:<16} {spec.kind:<14} {spec.family:<28} {spec.paper}" for n, spec in methods))
    if what in ("metrics", "all"):
        from .metrics import METRICS

        arrows = {True: "higher is better", False: "lower is better"}
        _table("metrics:", (f"{n:<24} {spec.level:<10} {arrows[bool(spec.higher_is_better)]:<17} {spec.description}"
                            for n, spec in METRICS.items()))
    if what in ("benchmarks", "all"):
        from .benchmarks import BENCHMARKS

        _table("benchmarks:", BENCHMARKS)
    if what in ("attacks", "all"):
        from .attacks import ATTACKS, GROUPS
        from .config import DEFAULT_ATTACKS

        docs = {name: " ".join((fn.__doc__ or "").split()) for name, fn in ATTACKS.items()}
        _table(f"attacks (attacks=[...]; default: {', '.join(DEFAULT_ATTACKS)}):",
               [*(f"{n:<30} {d if len(d) <= 100 else d[:97] + '...'}" for n, d in docs.items()),
                *(f"{group:<30} all of: {', '.join(members)}" for group, members in GROUPS.items())])
    if what in ("datasets", "all"):
        from .benchmarks.safety_datasets import describe_datasets

        _table("safety datasets (lethe safety scenario_options.harmful=[NAME=PATH] / benign / utility):",
               (f"{n:<18} {role:<8} {desc}" for n, role, desc in describe_datasets()))
    if what in ("judges", "all"):
        from .judges import JUDGES

        _table("judges (scenario_options.judge=NAME):", (f"{n:<18} {spec.description}" for n, spec in JUDGES.items()))
    if what in ("scenarios", "all"):
        from .scenarios import DESCRIPTIONS, scenario_names

        _table("scenarios (lethe run scenario=NAME):", (f"{n:<16} {DESCRIPTIONS.get(n, '')}"
                                                         for n in sorted(scenario_names(), key=lambda n: n != "tofu")))
    return 0


def _options(args) -> dict:
    """``key=value`` loader options as a dict (dotted keys kept whole)."""
    from .config import parse_override

    return {".".join(keys): value for keys, value in map(parse_override, args.options)}


def cmd_validate(args) -> int:
    from .validate import validate

    for line in validate(args.path, _options(args)):
        print(line)
    return 0


def cmd_export(args) -> int:
    from .benchmarks import export_tofu, load_benchmark, save_benchmark

    bench = load_benchmark(args.benchmark, **_options(args))
    (export_tofu if args.format == "tofu" else save_benchmark)(bench, args.folder)
    print(f"wrote {bench.name} v{bench.version} to {args.folder} ({args.format} layout)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    p = argparse.ArgumentParser(prog="lethe", description="Machine unlearning for LLMs: unlearn, evaluate, report.",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"lethe {__version__}")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    settings_help = "a YAML config file and/or key=value overrides (e.g. train.lr=1e-4 forget_split=forget05)"

    def command(name: str, fn, help_: str, *positional: tuple[str, str | None], settings: str | None = None):
        s = sub.add_parser(name, help=help_)
        for arg, arg_help in positional:
            s.add_argument(arg, help=arg_help)
        if settings is not None:
            s.add_argument("settings", nargs="*", help=settings_help + settings)
        s.set_defaults(fn=fn)
        return s

    s = command("run", cmd_run, "the whole job: models, unlearning with every method, evaluation, report", settings="")
    s.add_argument("--resume", metavar="RUN", help="continue a killed or failed run (runs/<name>): finished models "
                                                   "are kept, the others run")
    command("eval", cmd_run, "evaluate the target (and retain) model without unlearning", settings="")
    command("safety", cmd_safety, "safety alignment by unlearning: harmful rate under jailbreaks, over-refusal, "
            "utility (= lethe run scenario=safety; docs/safety.md)",
            settings="; e.g. scenario_options.attacks=[jailbreak]")
    command("unlearn", cmd_unlearn, "unlearn with one method, save the model, evaluate it",
            ("method", "method name (see `lethe ls methods`)"), settings="")
    command("sweep", cmd_sweep, "tune one method under a stated rule: an Optuna study, a Pareto front, the selected "
            "point run with the full suite (docs/sweep.md)",
            settings="; sweep.method=M [sweep.trials=20 sweep.sampler=tpe|grid sweep.objectives=[...] sweep.select=... "
            "sweep.keep={model_utility: 0.95} sweep.space={...}]")
    command("finetune", cmd_finetune, "train a benchmark's target and retain models (docs/finetune.md)",
            settings="; benchmark=B forget_split=S [model=HUB_OR_PATH] out=FOLDER train.*= tiny_model.*=")
    s = command("attack", cmd_attack, "robustness attacks on one saved model: does the forgotten knowledge come back?",
                ("model", "a saved model folder (e.g. runs/<run>/models/<method>) or hub id"),
                settings="; attacks=[relearn, quantize_4bit, paraphrase, jailbreak, ...] (default: relearn, "
                "quantize_4bit, paraphrase)")
    s.add_argument("--out", help="write the results as JSON to this file")
    s = command("harness", cmd_harness, "general utility: lm-evaluation-harness tasks on one model (docs/harness.md)",
                ("model", "a model folder or hub id"))
    s.add_argument("--tasks", nargs="+", default=[], help="lm-eval task names")
    s.add_argument("--include", help="a folder of your own task YAMLs")
    s.add_argument("--limit", type=int, help="the first N documents per task")
    s.add_argument("--out", help="write the results as JSON to this file")
    s.add_argument("--trust-remote-code", action="store_true", help="allow the model's own code (off by default)")
    command("report", cmd_report, "(re)write report.md, tradeoff.png and report.html of a run folder",
            ("run_dir", None))
    s = command("ls", cmd_ls, "list methods, metrics, benchmarks, scenarios, attacks, safety datasets, judges")
    s.add_argument("what", nargs="?", default="all",
                   choices=["methods", "metrics", "benchmarks", "scenarios", "attacks", "datasets", "judges", "all"])
    s = command("validate", cmd_validate, "check a config, a data file or folder, a benchmark or a dataset (NAME=PATH) "
                "and print what was found", ("path", "a .yaml config, a .jsonl file, a benchmark / TOFU / real-world / "
                "MUSE folder, a retain model's evaluation log, or NAME=PATH for a dataset (advbench=..., mmlu=...)"))
    s.add_argument("options", nargs="*", help="loader options, e.g. items_per_author=8 for an exported lethe-authors "
                                              "benchmark in the TOFU layout")
    s = command("export", cmd_export, "write a benchmark to a folder (Lethe or public TOFU layout)", ("folder", None))
    s.add_argument("--benchmark", default="lethe-authors")
    s.add_argument("--format", choices=["lethe", "tofu"], default="lethe")
    s.add_argument("options", nargs="*", help="generator options, e.g. seed=1 n_authors=200")
    return p


# split across the processes of a launch (docs/scale.md)
SPLIT_COMMANDS = ("run", "eval", "safety", "unlearn", "finetune", "attack", "sweep")
MODEL_COMMANDS = ("harness",)  # other commands that load models (lm-eval splits its own way): one process


def join_launch(command: str) -> None:
    """Under torchrun or accelerate launch (WORLD_SIZE > 1): join the process group for a command that splits
    its work, refuse one that does not; the processes but the first print nothing."""
    n = dist.launched()
    if n == 1:
        return
    if command in MODEL_COMMANDS:
        raise LetheError(f"this is one of {n} processes (WORLD_SIZE={n}), but `lethe {command}` is not split "
                         "across processes: each would repeat it; launch one process")
    if command not in SPLIT_COMMANDS:
        return
    if dist.launch_sharding() == "deepspeed" and importlib.util.find_spec("deepspeed") is None:
        raise LetheError("this launch's accelerate config asks for DeepSpeed, and the deepspeed package is not "
                         "installed (pip install deepspeed)")
    dist.init()
    if not dist.is_main():
        set_enabled(False)
        sys.stdout = open(os.devnull, "w")


def main(argv: list[str] | None = None) -> int:
    """The ``lethe`` command. Called with no ``argv`` (the console script, ``python -m lethe``) it ends the
    process itself once the command has returned (:func:`exit_now`); with an ``argv`` list it returns the
    exit code, for callers in Python (tests, notebooks). The command also collects cyclic garbage less often
    (:func:`tune_gc`)."""
    if argv is None:
        tune_gc()
    code = _main(argv)
    if argv is None:
        exit_now(code)
    return code


# Importing torch, transformers, rouge-score (nltk, scipy, sklearn, pandas) and matplotlib allocates millions of
# objects that live as long as the process. At Python's default first threshold (700 allocations) the cyclic
# collector then runs ~1,400 times during one `lethe eval` on the built-in benchmark, 8 times over the whole heap:
# 1.3-1.7 s of a 9 s process on a CPU. At 10,000 it runs ~95 times (0.4 s), and still reaches the oldest
# generation every million net allocations in a long run.
GC_THRESHOLD = 10_000


def tune_gc() -> None:
    """Raise the cyclic collector's first threshold to :data:`GC_THRESHOLD` (the command's own process only;
    a threshold already set higher stays)."""
    import gc

    first, *rest = gc.get_threshold()
    if 0 < first < GC_THRESHOLD:
        gc.set_threshold(GC_THRESHOLD, *rest)


# Modules whose atexit handlers may still have work to do (trackers that upload from background threads):
# with one of them imported, the process ends through the interpreter's normal shutdown.
_SLOW_EXIT_MODULES = ("wandb", "mlflow", "comet_ml", "aim", "clearml", "dvclive", "swanlab", "trackio")


def exit_now(code: int) -> None:
    """End the process with ``code`` without the interpreter's teardown, after flushing stdout and stderr.

    Once torch, transformers and rouge-score (nltk, scipy, sklearn, pandas) are loaded, the normal shutdown
    (clearing thousands of modules, freeing the model and every cached tensor) takes 0.6-1.2 s on a CPU, and a
    command's files are all written and closed by then. Returns (and the interpreter shuts down as usual) when
    that could lose work: a profiler or tracer runs the command (pyinstrument, cProfile, coverage write their
    output after it returns), another non-daemon thread still runs, the process belongs to a launch of several
    (the launcher tears the group down), or an experiment tracker with atexit handlers is loaded."""
    import threading

    if sys.getprofile() is not None or sys.gettrace() is not None:
        return
    if threading.active_count() > 1 and any(t.is_alive() and not t.daemon for t in threading.enumerate()
                                            if t is not threading.main_thread()):
        return
    if dist.launched() > 1 or any(m in sys.modules for m in _SLOW_EXIT_MODULES):
        return
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed or broken stream: nothing more can be said there
        pass
    os._exit(code if isinstance(code, int) else 1)


def _main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "fn", None):
        parser.print_help()
        return 0
    if args.quiet:
        set_enabled(False)
    try:
        join_launch(args.command)
        return args.fn(args)
    except LetheError as exc:
        if dist.is_main():  # every process raises it; one says it
            print(f"lethe: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lethe: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `lethe ls | head`: the reader left; nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
