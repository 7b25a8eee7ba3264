"""``lethe sweep``: the search space, the Pareto front and the selection rule by hand, and a sweep on the tiny
miniature that continues where it stopped (a trial cut off by a kill runs again) and selects by its rule."""
from __future__ import annotations

import json

import pytest

from lethe.cli import main
from lethe.config import load_config
from lethe.errors import LetheError
from lethe.sweep import SweepConfig, grid, load_sweep_config, method_entry, pareto, select, space_of
from tiny_run import TINY


def test_grid_points_by_hand():
    space = space_of(SweepConfig(method="npo", space={"beta": [0.1, 0.3]}), "npo")
    assert space["train.lr"] == ("range", 1e-4, 1e-2, "log") and space["beta"] == ("choice", (0.1, 0.3))
    assert space["alpha"] == ("range", 0.1, 10.0, "log")  # declared beside NPO
    points = grid(space, 3)
    assert points["train.lr"] == [1e-4, 1e-3, 1e-2]
    assert points["train.epochs"] == [1, 6, 10]  # 1 + 9 * (0, 1/2, 1), rounded
    assert points["beta"] == [0.1, 0.3]
    assert grid({"x": ("range", 0.0, 1.0, "linear")}, 5)["x"] == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_entries_fix_what_they_name_and_drop_a_retain_weight_without_a_retain_term():
    scfg = SweepConfig(methods=("ga", {"method": "idk", "retain": "ap"}, {"method": "npo", "label": "npo+kl",
                                                                           "retain": "kl", "beta": 0.2,
                                                                           "train": {"epochs": 3}}),
                       space={"beta": [0.05, 0.1]})
    entries = scfg.entries()
    assert list(entries) == ["ga", "idk-ap", "npo+kl"]
    assert sorted(space_of(scfg, "ga")) == ["train.epochs", "train.lr"]  # GA has no retain term: no alpha
    assert space_of(scfg, "idk-ap")["beta"] == ("choice", (0.05, 0.1))  # IDK's AP temperature: sweep.space reaches it
    assert sorted(space_of(scfg, "idk-ap")) == ["alpha", "beta", "train.epochs", "train.lr"]
    assert sorted(space_of(scfg, "npo+kl")) == ["alpha", "train.lr"]  # beta and train.epochs are fixed
    assert method_entry(entries["npo+kl"], "npo+kl-t003", {"train.lr": 1e-3, "alpha": 2.0}) == {
        "method": "npo", "retain": "kl", "beta": 0.2, "label": "npo+kl-t003", "alpha": 2.0,
        "train": {"epochs": 3, "lr": 1e-3}}
    with pytest.raises(LetheError, match=r"^sweep\.methods: two entries are labelled 'ga'"):
        SweepConfig(methods=("ga", {"method": "ga"})).entries()
    with pytest.raises(LetheError, match=r"sweep label"):
        SweepConfig(methods=({"method": "ga", "label": "../x"},)).entries()


def test_workers_take_the_gpus_in_turn():
    from lethe.sweep_pool import trial_devices

    assert trial_devices(3, "auto", None, 2) == ["0", "1", "0"]
    assert trial_devices(2, "cuda", "4, 6", 8) == ["4", "6"]  # the GPUs the user left visible, by their numbers
    assert trial_devices(2, "auto", None, 0) == [None, None]  # no GPU: the CPU, threads split between the workers
    assert trial_devices(2, "cpu", None, 4) == [None, None] and trial_devices(2, "cuda:1", None, 4) == [None, None]


def test_pareto_front_by_hand():
    # (forget quality higher, a loss lower): (0.5, 1) dominates (0.4, 2); (0.9, 3) and (0.2, 0.5) trade off
    points = [(0.5, 1.0), (0.4, 2.0), (0.9, 3.0), (0.2, 0.5), (0.5, 1.0)]
    assert pareto(points, ["higher", "lower"]) == [0, 2, 3, 4]  # equal points do not dominate each other
    assert pareto([(1.0,), (3.0,), (2.0,)], ["higher"]) == [1]


def test_the_rule_keeps_a_fraction_of_the_target():
    directions = {"forget_quality": "higher", "model_utility": "higher", "forget_rouge_l": "lower"}
    trials = [{"number": 0, "metrics": {"forget_quality": 0.9, "model_utility": 0.50, "forget_rouge_l": 0.2}},
              {"number": 1, "metrics": {"forget_quality": 0.6, "model_utility": 0.80, "forget_rouge_l": 0.5}},
              {"number": 2, "metrics": {"forget_quality": 0.3, "model_utility": 0.85, "forget_rouge_l": 0.4}}]
    target = {"model_utility": 0.8, "forget_rouge_l": 0.9}
    chosen, rule = select(trials, target, directions, "forget_quality", {"model_utility": 0.95})
    assert chosen["number"] == 1 and rule == "highest forget_quality with model_utility >= 0.95 x the target's"
    # lower is better: at most the target's value / 0.5 = 1.8 (all pass), the lowest ROUGE-L wins
    chosen, rule = select(trials, target, directions, "forget_rouge_l", {"forget_rouge_l": 0.5})
    assert chosen["number"] == 0 and rule == "lowest forget_rouge_l with forget_rouge_l <= 1/0.5 x the target's"
    assert select(trials, target, directions, "forget_quality", {"model_utility": 1.1})[0] is None


@pytest.mark.parametrize("settings, message", [
    ([], r"^sweep\.method is missing"),
    (["sweep.methods=[npo, icul]"], r"^sweep\.method 'icul' trains nothing a sweep could tune"),
    (["sweep.method=npo", "sweep.space={gamma: [0.1, 1.0, log]}"], r"^sweep\.space: 'gamma' is neither an option "),
    (["sweep.method=npo", "sweep.space={beta: [1.0, 0.1, log]}"], r"^sweep\.space: 'beta' range 1\.0\.\.0\.1 \(log\)"),
    (["sweep.method=npo", "sweep.samplr=grid"], r"^unknown config key 'sweep\.samplr'"),
    (["sweep.method=npo", "sweep.workers=0"], r"^sweep\.workers must be >= 1, got 0"),
    # values a trial would fail on are refused before any trial runs
    (["sweep.method=npo", "sweep.space={beta: [0.1, 0]}"], r"^sweep\.space: 'beta' = 0 for npo: npo: beta must be > 0"),
    (["sweep.method=npo", "sweep.space={train.lr: [0.0, 0.01, linear]}"],
     r"^sweep\.space: 'train\.lr' = 0\.0 for npo: train\.lr must be > 0"),
    (["sweep.method=npo", "sweep.space={beta: [fast]}"], r"^sweep\.space: 'beta' = 'fast' for npo: method 'npo': option "
                                                        r"'beta' must be float"),
    (["sweep.method=npo", "sweep.launch=nodes"], r"^sweep\.launch must be one of auto, trials, runs, got 'nodes'"),
])
def test_bad_sweep_settings_are_one_line(settings, message):
    with pytest.raises(LetheError, match=message):
        _, scfg = load_sweep_config(None, settings)
        scfg.check()
        space_of(scfg, next(iter(scfg.entries())))


@pytest.mark.parametrize("settings, env, mode", [
    ([], {}, "trials"),  # each process its own trials
    (["sweep.launch=runs"], {}, "runs"),
    (["train.sharding=fsdp"], {}, "runs"),  # a model that needs the processes together
    (["eval.sharding=fsdp"], {}, "runs"),
    (["sweep.methods=[{method: ga, train: {sharding: zero3}}]"], {}, "runs"),
    ([], {"ACCELERATE_USE_FSDP": "true"}, "runs"),  # accelerate launch --config_file <an FSDP config>
    (["sweep.launch=trials", "eval.sharding=fsdp"], {},
     r"^sweep\.launch=trials runs each trial in one process, which shards nothing, but eval\.sharding shards the "
     r"model; set sweep\.launch=runs \(each trial across all the processes\)$"),
    (["sweep.workers=2"], {}, r"^sweep\.workers=2: under a launch its 2 processes run the trials \(sweep\.launch\); "
                              r"set sweep\.workers=1$"),
])
def test_a_launch_shares_the_trials_by_sweep_launch(monkeypatch, settings, env, mode):
    """In a launch of two processes: which way its processes share the sweep, or why not, in one line."""
    from lethe import dist
    from lethe.sweep import launch_mode

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(dist, "init", lambda: None)
    cfg, scfg = load_sweep_config(None, ["sweep.method=ga", *settings])
    assert launch_mode(cfg, scfg, scfg.entries()) == ""  # one process: no launch to share
    monkeypatch.setattr(dist, "world", lambda: 2)
    if mode in ("trials", "runs"):
        assert launch_mode(cfg, scfg, scfg.entries()) == mode
    else:
        with pytest.raises(LetheError, match=mode):
            launch_mode(cfg, scfg, scfg.entries())


def test_a_process_of_a_launch_can_work_alone(monkeypatch):
    """dist.alone(): within it a process of a launch splits nothing (a sweep's trial of its own)."""
    import torch.distributed as td

    from lethe import dist

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(dist, "_group", lambda: True)
    monkeypatch.setattr(td, "get_world_size", lambda *a: 2)
    monkeypatch.setattr(td, "get_rank", lambda *a: 1)
    assert (dist.world(), dist.rank(), dist.is_main()) == (2, 1, False)
    with dist.alone():
        assert (dist.world(), dist.rank(), dist.is_main(), dist.mine(3)) == (1, 0, True, [0, 1, 2])
    assert dist.world() == 2


@pytest.mark.parametrize("settings, generate", [
    ([], True),  # model utility reads the generations' ROUGE
    (["sweep.objectives=[forget_quality, mia_min_k]", "sweep.keep={}"], False),
    (["sweep.objectives=[forget_quality]", "sweep.keep={privleak: 0.5}"], False),
    (["sweep.objectives=[forget_quality]", "sweep.keep={model_utility: 0.9}"], True),
    (["sweep.objectives=[forget_quality]", "sweep.keep={}", "eval.generate=false"], False),
])
def test_trials_generate_only_for_a_metric_that_reads_generations(settings, generate):
    from lethe.sweep import trial_eval

    cfg, scfg = load_sweep_config(None, ["sweep.method=npo", *settings])
    trial = trial_eval(cfg.eval, scfg)
    assert (trial.generate, trial.bootstrap) == (generate, 0)


def test_a_setting_newer_than_the_sweep_counts_as_its_default(tmp_path):
    """A sweep (or a resumed run) written before Lethe gained a setting continues: the setting its record
    lacks counts as its default; given otherwise now, it differs (one line)."""
    import dataclasses
    from types import SimpleNamespace

    import yaml

    from lethe.config import to_dict
    from lethe.scenarios._run import _check_resume_config
    from lethe.sweep import _check_continued

    cfg, scfg = load_sweep_config(None, ["sweep.method=npo"])
    record = json.loads(json.dumps({"config": dataclasses.asdict(cfg), "sweep": dataclasses.asdict(scfg)},
                                   default=list))
    old = json.loads(json.dumps(record))
    del old["config"]["eval"]["sharding"], old["sweep"]["workers"]  # settings a later version added
    folder = SimpleNamespace(partial=tmp_path / ".s.partial", final=tmp_path / "s", resumed=True)
    folder.partial.mkdir()
    (folder.partial / "config.yaml").write_text(json.dumps(old))
    _check_continued(folder, record)  # the same settings: continues
    record["config"]["eval"]["sharding"] = "fsdp"
    with pytest.raises(LetheError, match=r"is a sweep with eval=\{.*'sharding': 'none'"):
        _check_continued(folder, record)
    # a run's resume, the same rule
    resolved = {**to_dict(load_config(None, [])), "scenario_options": {}}
    saved = json.loads(json.dumps(resolved))
    del saved["eval"]["sharding"]
    (folder.partial / "config.yaml").write_text(yaml.safe_dump(saved))
    _check_resume_config(folder, resolved)
    resolved["eval"]["sharding"] = "fsdp"
    with pytest.raises(LetheError, match=r"^resume: eval differs from the run being resumed"):
        _check_resume_config(folder, resolved)
    # a mapping-valued setting is compared as saved, not filled: keep={} is not the default keep
    (folder.partial / "config.yaml").write_text(json.dumps(old))
    record["config"]["eval"]["sharding"] = "none"
    record["sweep"]["keep"] = {}
    with pytest.raises(LetheError, match=r"is a sweep with sweep\.keep=\{'model_utility': 0\.95\}, not \{\}"):
        _check_continued(folder, record)


def main_raises(argv):
    """``lethe`` as the library call behind the CLI, so that its one-line error surfaces as the exception."""
    from lethe.sweep import load_sweep_config, run_sweep

    cfg, scfg = load_sweep_config(None, argv[1:])
    run_sweep(cfg, scfg, log=lambda *_: None)


def test_a_sweep_continues_selects_by_its_rule_and_runs_the_choice(tiny_run, tmp_path):
    import optuna

    root, _ = tiny_run
    common = [*TINY, "eval.bootstrap=0", "eval.embedding_model=", "attacks=[]", f"cache_dir={root / 'cache'}",
              f"output={tmp_path}", "sweep.method=ga", "sweep.sampler=grid",
              "sweep.objectives=[forget_quality, forget_probability]", "sweep.keep={}"]
    space = "sweep.space={train.lr: [0.003, 0.001, 0.0003, 0.0001], train.epochs: [1]}"
    assert main(["sweep", *common, space, "sweep.trials=2"]) == 0
    folder = tmp_path / "sweep-ga"
    first = json.loads((folder / "sweep.json").read_text())["methods"]["ga"]
    assert [t["number"] for t in first["trials"]] == [0, 1]
    # a trial cut off by a kill: asked, never told (it stays RUNNING in the study)
    points = {"train.lr": [0.003, 0.001, 0.0003, 0.0001], "train.epochs": [1]}
    study = optuna.load_study(study_name="ga", storage=f"sqlite:///{folder / 'study.db'}",
                              sampler=optuna.samplers.GridSampler(points))
    cut = study.ask({k: optuna.distributions.CategoricalDistribution(v) for k, v in points.items()})
    assert cut.params["train.lr"] not in [t["params"]["train.lr"] for t in first["trials"]]  # the grid's third point
    stamp = (folder / "trials" / "ga-000" / "results.json").stat().st_mtime_ns
    # the same sweep, two trials more, at once: two worker processes of one thread each (threads=2 / 2 workers,
    # the threads per trial of the first call)
    assert main(["sweep", *common, space, "sweep.trials=4", "sweep.workers=2", "threads=2"]) == 0
    result = json.loads((folder / "sweep.json").read_text())["methods"]["ga"]
    assert (folder / "trials" / "ga-000" / "results.json").stat().st_mtime_ns == stamp  # not run again
    assert len(result["trials"]) == 4 and cut.number not in [t["number"] for t in result["trials"]]
    lrs = sorted(t["params"]["train.lr"] for t in result["trials"])
    assert lrs == [0.0001, 0.0003, 0.001, 0.003]  # the grid, each point once (the cut-off trial's point run again)
    with pytest.raises(LetheError, match=r"is a sweep with sweep\.sampler='grid', not 'tpe': continue it with its own"):
        main_raises(["sweep", *common, space, "sweep.sampler=tpe"])
    with pytest.raises(LetheError, match=r"is a sweep with threads per trial=1, not 2"):
        main_raises(["sweep", *common, space, "threads=2"])  # other built-in models: 2 threads train other weights
    # each trial is the plain run of its settings, also one a worker process ran
    last = result["trials"][-1]
    lr = last["params"]["train.lr"]
    assert main(["run", *[a for a in common if not a.startswith("sweep.")], "name=plain",
                 f"methods=[{{method: ga, train: {{lr: {lr}, epochs: 1}}}}]"]) == 0
    plain = json.loads((tmp_path / "plain" / "summary.json").read_text())["rows"][-1]["metrics"]
    assert last["metrics"] == plain
    assert len({t["metrics"]["forget_probability"] for t in result["trials"]}) == 4  # the learning rate matters
    # the rule (no constraint): the highest forget quality; its point runs again with the run's own suite
    best = max(result["trials"], key=lambda t: t["metrics"]["forget_quality"])
    assert result["selected"] == best["number"]
    assert json.loads((folder / "sweep.json").read_text())["rule"] == "highest forget_quality"
    selected = json.loads((folder / "selected" / "summary.json").read_text())["rows"][-1]
    assert selected["name"] == "ga" and selected["metrics"]["forget_quality"] == best["metrics"]["forget_quality"]
    report = (folder / "report.md").read_text()
    assert f"| {best['number']} selected |" in report or f"| {best['number']} * selected |" in report
    assert (folder / "pareto.png").stat().st_size > 0 and "<h2>Leaderboard</h2>" in (folder / "report.html").read_text()
    with pytest.raises(LetheError, match=r"^unknown config key 'sweep'"):  # a run takes no sweep keys
        load_config(None, ["sweep.method=ga"])


@pytest.mark.slow
def test_a_sweep_killed_mid_trial_continues_the_same_study(tiny_run, tmp_path):
    """``kill -9`` during a trial, then the same command: the complete trials stay, the cut-off trial's run
    folder goes and its point runs again, the study ends with the trials asked for."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import optuna
    import sqlalchemy.exc

    root, _ = tiny_run
    args = [*TINY, "eval.bootstrap=0", "eval.embedding_model=", "attacks=[]", f"cache_dir={root / 'cache'}",
            f"output={tmp_path}", "sweep.method=npo", "sweep.trials=4", "sweep.keep={}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LETHE_NO_PROGRESS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "lethe", "sweep", *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    db = tmp_path / ".sweep-npo.partial" / "study.db"
    deadline = time.time() + 120
    while time.time() < deadline:  # kill it once a trial is complete and the next one runs
        if db.exists():
            try:
                trials = optuna.load_study(study_name="npo", storage=f"sqlite:///{db}").trials
            except (KeyError, sqlalchemy.exc.OperationalError, optuna.exceptions.StorageInternalError):
                trials = []  # the file is there, the study not yet; or the sweep is writing it (database is locked)
            if any(t.state.name == "COMPLETE" for t in trials) and trials[-1].state.name == "RUNNING":
                break
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = optuna.load_study(study_name="npo", storage=f"sqlite:///{db}").trials
    complete = [t.number for t in before if t.state.name == "COMPLETE"]
    assert complete and before[-1].state.name == "RUNNING"
    assert main(["sweep", *args]) == 0
    study = optuna.load_study(study_name="npo", storage=f"sqlite:///{tmp_path / 'sweep-npo' / 'study.db'}")
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(done) == 4 and set(complete) <= {t.number for t in done}
    assert study.trials[before[-1].number].state.name == "FAIL"  # the cut-off one, run again under a new number
    assert before[-1].params.items() <= next(t for t in done if t.number > before[-1].number).params.items()
    assert not list((tmp_path / "sweep-npo" / "trials").glob(".*"))  # no unfinished run folder, no lock left


def sweep_and_plain(tmp_path, common: list[str], lrs: list[float], plain_lr: float, *plain_extra: str):
    """A GA sweep over the grid ``lrs`` (one epoch) with the scenario's default objectives and rule, and the
    plain run of the point ``plain_lr``: (sweep.json, its trials by learning rate, the plain run's summary)."""
    assert main(["sweep", *common, "sweep.method=ga", "sweep.sampler=grid",
                 f"sweep.space={{train.lr: {lrs}, train.epochs: [1]}}"]) == 0
    result = json.loads((tmp_path / "sweep-ga" / "sweep.json").read_text())
    trials = {t["params"]["train.lr"]: t for t in result["methods"]["ga"]["trials"]}
    assert sorted(trials) == sorted(lrs)  # the grid, each point once
    assert main(["run", *common, "name=plain", *plain_extra,
                 f"methods=[{{method: ga, train: {{lr: {plain_lr}, epochs: 1}}}}]"]) == 0
    return result, trials, json.loads((tmp_path / "plain" / "summary.json").read_text())


def test_a_hazardous_sweep_trades_hazard_against_general_accuracy(tmp_path):
    """Another scenario's sweep: its own forget and utility metrics by default (hazard accuracy, lower, against
    general accuracy), each trial the scenario's plain run of its point."""
    from test_hazardous import SMALL

    common = [*[a for a in SMALL if a not in ("methods=[ga]", "eval.bootstrap=50")], "eval.bootstrap=0",
              f"cache_dir={tmp_path / 'cache'}", f"output={tmp_path}"]
    result, by_lr, plain = sweep_and_plain(tmp_path, common, [0.01, 0.0001], 0.01)
    assert result["objectives"] == {"hazard_accuracy": "lower", "general_accuracy": "higher"}
    assert result["rule"] == "lowest hazard_accuracy with general_accuracy >= 0.95 x the target's"
    assert set(result["target"]) >= {"hazard_accuracy", "general_accuracy"} and result["retain"]
    assert by_lr[0.01]["metrics"] == plain["rows"][-1]["metrics"]  # a trial is the plain run of its point
    trials = list(by_lr.values())
    kept = [t for t in trials
            if t["metrics"]["general_accuracy"] >= 0.95 * result["target"]["general_accuracy"]]
    best = min(kept, key=lambda t: (t["metrics"]["hazard_accuracy"], t["number"]), default=None)
    assert result["methods"]["ga"]["selected"] == (best["number"] if best else None)
    with pytest.raises(LetheError, match=r"^sweep: 'forget_rouge_l' is not a metric of the hazardous scenario"):
        main_raises(["sweep", *common, "sweep.method=ga", "sweep.select=forget_rouge_l", "name=other"])
    with pytest.raises(LetheError, match=r"^lethe sweep tunes methods in the .*tofu.* scenarios \(a forget metric "
                                         r"against a utility metric per method\); got scenario=multilingual$"):
        main_raises(["sweep", "sweep.method=ga", "scenario=multilingual", f"output={tmp_path}"])


@pytest.mark.parametrize("scenario, forget, utility", [
    ("tofu", "forget_quality", "model_utility"), ("real_world", "forget_rouge_l", "neighbour_rouge_l"),
    ("hazardous", "hazard_accuracy", "general_accuracy"), ("verbatim", "forget_verbmem", "retain_knowmem"),
    ("continual", "forget_quality", "model_utility"), ("safety", "harmful_rate", "utility"),
])
def test_each_swept_scenario_brings_its_forget_and_utility_metrics(scenario, forget, utility):
    from lethe.scenarios import get_scenario
    from lethe.sweep import for_scenario

    sc = get_scenario(scenario)
    assert sc.sweep_objectives == (forget, utility) and {forget, utility} <= set(sc.directions(None))
    scfg = for_scenario(SweepConfig(method="ga"), sc.sweep_objectives)
    assert (scfg.objectives, scfg.select, scfg.keep) == ((forget, utility), forget, {utility: 0.95})
    mine = SweepConfig(method="ga", objectives=("mia_min_k",), select="mia_min_k", keep={})
    assert for_scenario(mine, sc.sweep_objectives) == mine  # what the user set stays


@pytest.mark.slow
def test_a_continual_sweep_selects_on_the_last_round(tmp_path, tiny_models):
    """scenario=continual: a method's row is its model after the last request, which the sweep optimises (the
    tofu job's metrics); each trial is the plain continual run of its point."""
    tiny_models(tmp_path / "cache")
    common = [*TINY, "scenario=continual", "scenario_options={rounds: 2}", "eval.bootstrap=0", "eval.embedding_model=",
              "attacks=[]", f"cache_dir={tmp_path / 'cache'}", f"output={tmp_path}"]
    result, trials, plain = sweep_and_plain(tmp_path, common, [0.003, 0.0003], 0.003)
    assert result["rule"] == "highest forget_quality with model_utility >= 0.95 x the target's"
    assert trials[0.003]["metrics"] == plain["rows"][-1]["metrics"]
    assert result["retain"] == plain["rows"][1]["metrics"]  # the last round's gold standard


@pytest.mark.slow
def test_an_objective_the_run_does_not_compute_is_one_line(tiny_run, tmp_path):
    """A user's model without its retain model: the trial has no forget quality to optimise, said in one line."""
    root, _ = tiny_run
    target = json.loads((root / "runs" / "r1" / "summary.json").read_text())["provenance"]["model"]
    with pytest.raises(LetheError, match=r"^sweep: the run reports no 'forget_quality' \(forget quality, for one, "
                                         r"needs a retain model\); choose sweep\.objectives among its metrics: "):
        main_raises(["sweep", *TINY, "eval.bootstrap=0", "eval.embedding_model=", "attacks=[]", f"model={target}",
                     f"cache_dir={root / 'cache'}", f"output={tmp_path}", "sweep.method=ga", "sweep.trials=1"])


def test_a_safety_sweep_leaves_the_attacks_out_of_its_trials_unless_it_reads_them():
    from lethe.scenarios import get_scenario

    safety = get_scenario("safety")
    assert safety.trial_options({"harmful_rate", "utility"}) == {"attacks": []}
    assert safety.trial_options({"asr_max", "utility"}) == {} and safety.trial_options({"harmful_rate_any"}) == {}
    assert get_scenario("tofu").trial_options({"forget_quality"}) == {}


@pytest.mark.slow
def test_a_safety_sweep_trades_harm_against_utility(tmp_path):
    """scenario=safety: harmful rate (lower) against utility by default; the trials run without the jailbreaks
    (the cheap suite), each the plain run of its point without them; the selected point runs with them."""
    from test_safety_scenario import MINI

    common = [*[a for a in MINI if not a.startswith("eval.bootstrap")], "scenario=safety", "eval.bootstrap=0",
              f"cache_dir={tmp_path / 'cache'}", f"output={tmp_path}"]
    result, trials, plain = sweep_and_plain(tmp_path, common, [0.01, 0.0001], 0.01, "scenario_options.attacks=[]")
    assert result["rule"] == "lowest harmful_rate with utility >= 0.95 x the target's"
    assert not any(k.startswith("asr") for t in trials.values() for k in t["metrics"])  # no attack ran
    assert trials[0.01]["metrics"] == plain["rows"][-1]["metrics"]
    selected = json.loads((tmp_path / "sweep-ga" / "selected" / "summary.json").read_text())["rows"][-1]["metrics"]
    assert "asr_max" in selected  # the full suite: the attacks ran
