"""SISA-style exact unlearning (lethe.sisa): shard assignment, deletion by retraining the shards that
held a forget author (the others reused bitwise), exactness from the recorded author lists, the
ensemble's mean-of-probabilities by hand, its cached greedy decoding against a cache-free loop, and
``lethe run methods=[sisa]`` end to end on the miniature of tests/test_cli.py."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
from test_cli import TINY, run_cli  # the miniature settings of the CLI tests

from lethe.benchmarks import load_benchmark
from lethe.config import load_config
from lethe.data import Encoder, collate, collate_prompts
from lethe.errors import LetheError
from lethe.methods import get_method
from lethe.builtin import builtin_model_root
from lethe.probes import generate
from lethe.sisa import EXACT, ShardEnsemble, SISAConfig, assign_shards, author_ids, build_sisa
from lethe.train import unlearn

# ------------------------------------------------------------------------------------------------
# Sharding


def test_assignment_is_deterministic_balanced_and_covers_every_author_once():
    authors = [f"a{i:03d}" for i in range(23)]
    shards = assign_shards(authors, 5, seed=0)
    assert shards == assign_shards(list(reversed(authors)), 5, seed=0)  # from the author set and the seed only
    assert sorted(a for s in shards for a in s) == authors  # every author exactly once
    assert sorted(len(s) for s in shards) == [4, 4, 5, 5, 5]
    assert shards != assign_shards(authors, 5, seed=1)
    with pytest.raises(LetheError, match="'shards'"):
        assign_shards(authors[:3], 5)


@pytest.mark.parametrize("options, field", [({"shards": 1}, "shards"), ({"lora_r": -1}, "lora_r"),
                                            ({"shards": 2.5}, "shards"), ({"slices": 3}, "slices")])
def test_bad_options_name_the_field(options, field):
    with pytest.raises(LetheError, match=f"'{field}'"):
        get_method("sisa").make_config(options)


def test_registration_and_refusals(tiny_model, tokenizer, forget_items, retain_items):
    spec = get_method("sisa")
    assert spec.kind == "training-time" and spec.family == "training-time / exact" and "Bourtoule" in spec.paper
    assert SISAConfig.__dataclass_params__.frozen and spec.make_config() == SISAConfig()
    with pytest.raises(LetheError, match="training-time method.*lethe run methods=\\[sisa\\]"):
        unlearn(tiny_model, tokenizer, "sisa", forget_items, retain_items)


# ------------------------------------------------------------------------------------------------
# Deletion on the miniature benchmark


def _tiny_setting():
    cfg = load_config(None, [o for o in TINY if o.startswith(("benchmark_options.", "tiny_model."))])
    return load_benchmark("lethe-authors", **cfg.benchmark_options), cfg.tiny_model


def _digest(folder: Path) -> str:
    return hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def deletions(tmp_path_factory, tiny_models):
    """forget05 then forget10 deleted from one set of shards, in one cache (also used by the CLI test) that
    starts from the session's built-in models: the shards are fine-tuned from its base model."""
    cache = tmp_path_factory.mktemp("sisa") / "cache"
    bench, tiny = _tiny_setting()
    assert tiny_models(cache) == builtin_model_root(bench, tiny, cache)  # the same benchmark and tiny model
    log = []
    _, _, st05 = build_sisa(bench, "forget05", tiny, cache, SISAConfig(), log=log.append)
    root = builtin_model_root(bench, tiny, cache)
    before = {p.name: _digest(p) for p in sorted((root / "sisa-5").glob("shard-?"))}
    ens, tok, st10 = build_sisa(bench, "forget10", tiny, cache, SISAConfig(), log=log.append)
    return {"cache": cache, "bench": bench, "tiny": tiny, "root": root, "st05": st05, "st10": st10, "before": before,
            "ens": ens, "tok": tok, "log": log}


def test_a_deletion_retrains_exactly_the_shards_holding_forget_authors(deletions):
    bench, root = deletions["bench"], deletions["root"]
    shards = assign_shards(author_ids(bench), 5, 0)
    for split, st in (("forget05", deletions["st05"]), ("forget10", deletions["st10"])):
        forget = set(bench.forget_sets[split])
        holding = [k for k, s in enumerate(shards) if forget & set(s)]
        assert st["retrained"] == holding and st["shards_retrained"] == len(holding) and st["shards"] == 5
        # the cache holds a retrained copy of exactly those shards
        assert sorted(p.name for p in (root / f"sisa-5-{split}").glob("shard-?")) == [f"shard-{k}" for k in holding]
        for k, folder in enumerate(st["shard_folders"]):
            assert Path(folder) == root / (f"sisa-5-{split}" if k in holding else "sisa-5") / f"shard-{k}"
    assert deletions["st05"]["trained_now"] == 5 + deletions["st05"]["shards_retrained"]
    # the second deletion reuses the five original shards: it trains only its own retrained ones
    assert deletions["st10"]["trained_now"] == deletions["st10"]["shards_retrained"]
    # the untouched shards are the very files trained before any deletion
    after = {p.name: _digest(p) for p in sorted((root / "sisa-5").glob("shard-?"))}
    assert after == deletions["before"] and len(after) == 5
    untouched = [k for k in range(5) if k not in deletions["st10"]["retrained"]]
    assert untouched
    for k in untouched:
        from lethe.models import load_model

        shard, _ = load_model(root / "sisa-5" / f"shard-{k}")
        member = deletions["ens"].shards[k]
        assert all(torch.equal(v, member.state_dict()[n]) for n, v in shard.state_dict().items())
    # costs: recorded seconds, known again on a cache hit
    _, _, again = build_sisa(deletions["bench"], "forget10", deletions["tiny"], deletions["cache"], SISAConfig(),
                             log=lambda *_: None)
    assert again["trained_now"] == 0
    for key in ("build_seconds", "deletion_seconds", "retain_seconds", "retrained", "shard_authors"):
        assert again[key] == deletions["st10"][key]
    st = deletions["st10"]
    assert 0 < st["deletion_seconds"] < st["build_seconds"] and st["retain_seconds"] > 0
    assert st["speedup_vs_retrain"] == pytest.approx(st["retain_seconds"] / st["deletion_seconds"])


def test_no_shard_of_the_ensemble_saw_a_forget_author(deletions):
    bench, root, st = deletions["bench"], deletions["root"], deletions["st10"]
    forget = {it.group for it in bench.forget("forget10")}
    retain = set(author_ids(bench)) - forget
    seen = []
    for folder in st["shard_folders"]:  # what each shard recorded it was trained on
        record = json.loads(Path(folder + ".json").read_text())
        assert not forget & set(record["authors"]), folder
        seen += record["authors"]
    assert sorted(seen) == sorted(retain) == sorted(a for s in st["shard_authors"] for a in s)
    assert st["exact"] == EXACT
    # a retrained shard records whom it lost
    removed = [a for k in st["retrained"]
               for a in json.loads((root / "sisa-5-forget10" / f"shard-{k}.json").read_text())["removed"]]
    assert sorted(removed) == sorted(forget)


def test_a_shard_that_saw_a_forget_author_is_refused(deletions, monkeypatch):
    from lethe import sisa

    train_shard = sisa._train_shard

    def leaky(folder, authors, *args, **kwargs):  # a bug that keeps the forget authors in
        rec = train_shard(folder, authors, *args, **kwargs)
        return {**rec, "authors": sorted(set(rec["authors"]) | set(kwargs.get("removed", ())))}

    monkeypatch.setattr(sisa, "_train_shard", leaky)
    with pytest.raises(RuntimeError, match="trained on forget authors"):
        build_sisa(deletions["bench"], "forget10", deletions["tiny"], deletions["cache"], log=lambda *_: None)


def test_a_shard_left_without_authors_leaves_the_ensemble(deletions, monkeypatch):
    from lethe import sisa

    bench = deletions["bench"]
    forget = sorted(bench.forget_sets["forget10"])
    rest = sorted(set(author_ids(bench)) - set(forget))
    monkeypatch.setattr(sisa, "assign_shards", lambda authors, shards, seed: [forget, rest])
    ens, _, st = build_sisa(bench, "forget10", deletions["tiny"], deletions["cache"], SISAConfig(shards=2),
                            log=lambda *_: None)
    assert st["retrained"] == [0] and st["dropped"] == [0] and st["deletion_seconds"] == 0
    assert len(ens.shards) == 1 and st["shard_authors"] == [rest]


# ------------------------------------------------------------------------------------------------
# Aggregation


def test_ensemble_distribution_is_the_mean_of_the_shards_softmaxes(tokenizer, make_tiny, forget_items, retain_items):
    a, b = make_tiny(tokenizer, seed=0).eval(), make_tiny(tokenizer, seed=1).eval()
    ens = ShardEnsemble([a, b])
    enc = Encoder(tokenizer)
    batch = collate([enc.qa(it.question, it.answer) for it in forget_items + retain_items], tokenizer.pad_token_id)
    with torch.no_grad():
        la = a(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
        lb = b(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
        want = torch.log((la.softmax(-1) + lb.softmax(-1)) / 2)  # (B, T, V)
        got = ens(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(got.log_softmax(-1), got, atol=1e-5, rtol=0)  # already log-probabilities
        last = ens(input_ids=batch.input_ids, attention_mask=batch.attention_mask, logits_to_keep=4).logits
        torch.testing.assert_close(last, want[:, -4:], atol=1e-5, rtol=1e-5)
        # one token by hand: p = (0.5 * softmax_a + 0.5 * softmax_b) at (0, 3, 7)
        pa, pb = la[0, 3].softmax(-1)[7].item(), lb[0, 3].softmax(-1)[7].item()
        assert got[0, 3, 7].exp().item() == pytest.approx((pa + pb) / 2, rel=1e-5)
    # S copies of one model are that model: greedy answers equal Hugging Face's generate on it
    questions = [it.question for it in forget_items + retain_items] + ["Paris?", "What does the cat eat?"]
    assert generate(ShardEnsemble([a, a, a]), tokenizer, questions, max_new_tokens=10, batch_size=4) == \
        generate(a, tokenizer, questions, max_new_tokens=10, batch_size=4)


def test_cached_greedy_generation_equals_a_cache_free_argmax_loop(tokenizer, make_tiny):
    ens = ShardEnsemble([make_tiny(tokenizer, seed=s).eval() for s in (0, 2, 3)])
    enc = Encoder(tokenizer)
    prompts = [enc.prompt(q) for q in ["Where was Alice Moon born?", "Paris?", "What does the cat eat?"]]
    ids, att = collate_prompts(prompts, tokenizer.pad_token_id)  # left padding: three lengths
    assert (att == 0).any()
    out = ens.generate(input_ids=ids, attention_mask=att, max_new_tokens=10, do_sample=False,
                       pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    seq, mask, done = ids.clone(), att.clone(), torch.zeros(3, dtype=torch.bool)
    with torch.no_grad():
        for _ in range(10):
            pos = (mask.cumsum(-1) - 1).clamp(min=0)
            lp = ens(input_ids=seq, attention_mask=mask, position_ids=pos).logits[:, -1]  # (B, V)
            nxt = torch.where(done, torch.full((3,), tokenizer.pad_token_id), lp.argmax(-1))
            done |= nxt == tokenizer.eos_token_id
            seq, mask = torch.cat([seq, nxt[:, None]], 1), torch.cat([mask, torch.ones(3, 1, dtype=mask.dtype)], 1)
            if done.all():
                break
    assert torch.equal(out, seq)
    with pytest.raises(LetheError, match="sisa: only greedy"):
        ens.generate(input_ids=ids, attention_mask=att, do_sample=True)


# ------------------------------------------------------------------------------------------------
# lethe run


def test_lethe_run_sisa_end_to_end(deletions, tmp_path, capsys):
    code, out, err = run_cli(["run", *TINY, f"cache_dir={deletions['cache']}", f"output={tmp_path}", "name=s",
                              "methods=[sisa]"], capsys)
    assert code == 0, err
    assert "sisa: training" not in out  # every shard came from the cache
    summary = json.loads((tmp_path / "s" / "summary.json").read_text())
    rows = {r["name"]: r for r in summary["rows"]}
    assert set(rows) == {"target", "retain model", "sisa"}
    row = rows["sisa"]
    st = deletions["st10"]
    for key in ("shards", "shards_retrained", "build_seconds", "deletion_seconds", "retain_seconds", "exact"):
        assert row["train"][key] == st[key], key
    assert row["seconds"]["unlearn"] == st["deletion_seconds"]
    assert 0.0 <= row["metrics"]["forget_quality"] <= 1.0 and 0.0 <= row["metrics"]["model_utility"] <= 1.0


@pytest.mark.parametrize("extra", [["model=some/model"], ["unlearn"]])
def test_sisa_needs_the_builtin_benchmark_and_saves_no_model(extra, tmp_path, capsys):
    args = ["unlearn", "sisa", *TINY] if extra == ["unlearn"] else ["run", *TINY, *extra, "methods=[sisa]"]
    code, _, err = run_cli([*args, f"cache_dir={tmp_path / 'cache'}", f"output={tmp_path / 'runs'}"], capsys)
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    if extra == ["unlearn"]:
        assert "training-time method" in err and "lethe run methods=[sisa]" in err
    else:
        assert "sisa needs the built-in benchmark" in err and "model=some/model" in err
    assert not (tmp_path / "cache").exists() and not (tmp_path / "runs").exists()
