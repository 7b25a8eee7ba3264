"""The method kinds (``lethe.methods.kinds``): every registered method is exactly one kind, its one
callable has that kind's signature, and one dispatcher applies every kind (``spec.apply``), so
callers never branch on the kind to unlearn."""
from __future__ import annotations

import dataclasses
import inspect

import pytest
import torch
from test_cli import TINY, run_cli  # the miniature settings of the CLI tests

import lethe
from lethe.errors import LetheError
from lethe.methods import (FAMILIES, KINDS, METHODS, InferenceMethod, LossMethod, ProcedureMethod,
                           get_method, register_method)
from lethe.train import TrainConfig

NAMES = list(METHODS)
FIELDS = {cls.work_field for cls in KINDS}


def test_the_registry_holds_every_method_of_every_kind():
    kinds = {name: get_method(name).kind for name in NAMES}
    assert len(NAMES) == 21 and set(kinds.values()) == {cls.kind for cls in KINDS}
    assert [n for n, k in kinds.items() if k == "procedure"] == ["task_vector"]
    assert [n for n, k in kinds.items() if k == "training-time"] == ["sisa"]
    assert sorted(n for n, k in kinds.items() if k == "inference") == ["guardrail", "icul", "output_filter", "uld"]


def test_the_run_skeleton_knows_every_kind():
    from lethe.scenarios._methods import KIND_WORDS, KINDS as KIND_NAMES

    assert KIND_NAMES == tuple(cls.kind for cls in KINDS) and set(KIND_WORDS) == set(KIND_NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_every_method_is_exactly_one_kind_with_its_signature(name):
    spec = get_method(name)
    assert type(spec) in KINDS and sum(isinstance(spec, cls) for cls in KINDS) == 1
    assert spec.name == name and spec.kind == type(spec).kind and spec.family in FAMILIES
    # one callable: the kind's own field, and no other kind's
    assert callable(spec.work) and spec.work is getattr(spec, spec.work_field)
    assert not any(hasattr(spec, f) for f in FIELDS - {spec.work_field})
    params = spec.params + (("state",) if isinstance(spec, LossMethod) and spec.setup is not None else ())
    assert tuple(inspect.signature(spec.work).parameters) == params
    # a frozen config whose defaults are valid
    assert dataclasses.is_dataclass(spec.config) and spec.config.__dataclass_params__.frozen
    assert spec.make_config() == spec.config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "other"  # type: ignore[misc]


@pytest.mark.parametrize("name", NAMES)
def test_saves_model_is_a_property_of_the_kind(name):
    spec = get_method(name)
    assert spec.saves_model == isinstance(spec, (LossMethod, ProcedureMethod))
    assert bool(spec.no_model) != spec.saves_model  # a kind without a model to save says why


def test_ls_methods_lists_every_method_with_its_kind_and_family(capsys):
    code, out, _ = run_cli(["ls", "methods"], capsys)
    assert code == 0
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert set(rows) == set(NAMES)
    for name, line in rows.items():
        spec = get_method(name)
        assert line.split()[1] == spec.kind and spec.family in line


def test_register_method_registers_losses_only():
    @dataclasses.dataclass(frozen=True)
    class Cfg:
        alpha: float = 1.0

    with pytest.raises(TypeError, match="register_procedure"):
        register_method("not_a_loss", config=Cfg, kind="procedure")
    assert "not_a_loss" not in METHODS


def test_inference_methods_are_set_up_from_the_one_registry():
    from lethe.methods import build_inference

    specs = {n: s for n, s in METHODS.items() if isinstance(s, InferenceMethod)}
    assert set(specs) == {"icul", "guardrail", "output_filter", "uld"}
    with pytest.raises(LetheError, match="unknown inference method 'ga'"):
        build_inference("ga", None, None, [], [])  # a loss of the same registry is no inference-time method


# --- one dispatcher: lethe.unlearn applies every kind -----------------------------------------------

CFG = TrainConfig(lr=1e-2, epochs=1, batch_size=2, warmup_ratio=0.0)


def test_public_unlearn_is_the_training_entry_point():
    from lethe.train import unlearn

    assert lethe.unlearn is unlearn


def test_a_procedure_through_unlearn_equals_its_own_contract(make_tiny, tokenizer, forget_items, retain_items):
    """``lethe.unlearn`` trains a loss in the loop and hands a procedure to its ``apply`` (its ``run``):
    bit-identical weights either way."""
    from lethe.methods import get_method

    a, sa = lethe.unlearn(make_tiny(tokenizer), tokenizer, "task_vector", forget_items, retain_items, CFG)
    b, sb = get_method("task_vector").apply(make_tiny(tokenizer), tokenizer, forget_items, retain_items, CFG)
    assert sa.steps == sb.steps == 2
    sd_b = b.state_dict()
    assert all(torch.equal(v, sd_b[k]) for k, v in a.state_dict().items())


def test_a_loss_has_no_apply_of_its_own(tiny_model, tokenizer, forget_items, retain_items):
    from lethe.methods import get_method

    with pytest.raises(LetheError, match="lethe.unlearn"):
        get_method("ga").apply(tiny_model, tokenizer, forget_items, retain_items, CFG)


@pytest.mark.parametrize("name, what", [("icul", "inference-time method.*lethe.methods.build_inference"),
                                        ("sisa", "training-time method.*lethe run methods=\\[sisa\\]")])
def test_kinds_without_a_given_model_refuse_naming_what_to_call(name, what, tiny_model, tokenizer, forget_items,
                                                                 retain_items):
    with pytest.raises(LetheError, match=what) as err:
        lethe.unlearn(tiny_model, tokenizer, name, forget_items, retain_items)
    assert "\n" not in str(err.value)
    with pytest.raises(LetheError, match="unknown option 'bogus'"):  # a bad option is still the first error
        lethe.unlearn(tiny_model, tokenizer, name, forget_items, retain_items, options={"bogus": 1})


def test_a_procedure_keeps_the_eval_every_contract(tiny_model, tokenizer, forget_items, retain_items):
    with pytest.raises(LetheError, match="train.eval_every is set"):
        lethe.unlearn(tiny_model, tokenizer, "task_vector", forget_items, retain_items,
                      dataclasses.replace(CFG, eval_every=1))


@pytest.mark.parametrize("name, what", [("icul", "inference-time method: there is no unlearned model to save"),
                                        ("output_filter", "inference-time method"),
                                        ("sisa", "ensemble of shard models")])
def test_cli_unlearn_refuses_kinds_without_one_model(name, what, tmp_path, capsys):
    code, _, err = run_cli(["unlearn", name, *TINY, f"cache_dir={tmp_path / 'cache'}",
                            f"output={tmp_path / 'runs'}"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert what in err and f"lethe run methods=[{name}]" in err
    assert not (tmp_path / "runs").exists()
