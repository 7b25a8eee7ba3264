"""RMU (lethe.methods.rmu): the loss by hand, the setup, the two recipes, and why the miniature needs its own.

The loss by hand on a toy "model" whose hidden states are its embedding rows; the setup's random direction
(unit norm, seeded), layer clipping and parameter subset; only that subset moves in ``lethe.train.unlearn``.
The recipes: which one a model gets (its depth), what the miniature one replaces (only the options not
given), that the loss weighs the retain term with the resolved alpha, and that on a memorised tiny
model the miniature recipe unlearns where the published one does not. docs/rmu.md holds the measurements.
"""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lethe.data import Encoded, Encoder, UnlearnBatch
from lethe.errors import LetheError
from lethe.methods import MethodState, SetupContext, get_method
from lethe.methods.rmu import MINIATURE, RMUConfig, recipe_for, resolve
from lethe.models import decoder_layers, tiny_llama
from lethe.ops import IGNORE
from lethe.probes import score_sequences
from lethe.train import TrainConfig, forget_only, unlearn

I = IGNORE


def approx(x):
    return pytest.approx(x, abs=1e-5)


def enc(ids, labels, att=None) -> Encoded:
    att = att if att is not None else [[1] * len(row) for row in ids]
    return Encoded(torch.tensor(ids), torch.tensor(att), torch.tensor(labels))


def setup_ctx(model, tokenizer, forget, retain, options=None, seed=0):
    cfg = get_method("rmu").make_config(options)
    return SetupContext(model, tokenizer, forget, retain, cfg, TrainConfig(seed=seed), "cpu")


def llama(tokenizer, layers: int, hidden: int = 16):
    return tiny_llama(len(tokenizer), hidden_size=hidden, num_layers=layers, num_heads=2,
                      bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                      pad_token_id=tokenizer.pad_token_id)


# --- the loss by hand: a toy model whose layer-ℓ hidden states are known -----------------------------------
# V = 3 tokens, H = 2: the output of layer ℓ is (ℓ + 1) x the token's embedding row. The loss reads
# hidden states through ``lethe.reference.hidden_states`` (model) and ``ref.hidden_states`` (reference);
# both are replaced here, so the test checks RMU's maths whatever way the states are captured.
E = [[1.0, 0.0], [0.0, 2.0], [3.0, 1.0]]
D = [[1.0, 1.0], [0.0, 0.0], [0.0, 2.0]]  # the reference's embedding rows are E + D


class Toy(nn.Module):
    def __init__(self, rows):
        super().__init__()
        self.E = nn.Parameter(torch.tensor(rows))

    def states(self, enc, layer):
        return (layer + 1) * self.E[enc.input_ids]  # (B, T, H)


class ToyRef:
    def __init__(self, rows):
        self.model = Toy(rows)

    @torch.no_grad()
    def hidden_states(self, enc, layer):
        return self.model.states(enc, layer)


@pytest.fixture()
def toy_states(monkeypatch):
    monkeypatch.setattr("lethe.methods.rmu.hidden_states", lambda model, enc, layer: model.states(enc, layer))


def sq(a, b) -> float:
    """||a - b||^2 / H: the squared distance as RMU averages it (over hidden units)."""
    return sum((x - y) ** 2 for x, y in zip(a, b)) / len(a)


# forget: [0 | 1 2] and [2 | 2] + a pad; retain: [1 | 0 0] and [0 | 2] + a pad
R_FORGET = enc([[0, 1, 2], [2, 2, 0]], [[I, 1, 2], [I, 2, I]], [[1, 1, 1], [1, 1, 0]])
R_RETAIN = enc([[1, 0, 0], [0, 2, 1]], [[I, 0, 0], [I, 2, I]], [[1, 1, 1], [1, 1, 0]])
C = 2.0
U = [0.6, 0.8]
CU = [C * x for x in U]


def rmu_state(layer=0, recipe="published"):
    return MethodState(data={"recipe": recipe, "layer": layer, "control": torch.tensor(CU), "c": C})


def rmu_run(options=None, ref_rows=None, layer=0, recipe="published"):
    spec = get_method("rmu")
    cfg = spec.make_config(options)
    ref = ToyRef([[e + d for e, d in zip(er, dr)] for er, dr in zip(E, D)] if ref_rows == "shifted" else E)
    batch = UnlearnBatch(forget=R_FORGET, retain=R_RETAIN)
    loss, stats = spec.loss(Toy(E), batch, ref, cfg, rmu_state(layer, recipe))
    assert loss.shape == (2,) and loss.requires_grad
    return loss.tolist(), stats


def test_rmu_forget_term_by_hand_on_answer_positions(toy_states):
    # positions that predict an answer token: seq a -> t = 0, 1 (tokens 0, 1); seq b -> t = 0 (token 2)
    forget = [(sq(E[0], CU) + sq(E[1], CU)) / 2, sq(E[2], CU)]
    assert forget == approx([1.05, 1.8])  # the same, spelled out
    loss, stats = rmu_run({"alpha": 5.0})  # the reference equals the model: the retain term is 0
    assert loss == approx(forget)
    assert stats["forget_loss"] == approx(sum(forget) / 2) and stats["retain_loss"] == approx(0.0)


def test_rmu_forget_term_on_all_tokens_and_another_layer(toy_states):
    loss, _ = rmu_run({"forget_tokens": "all"})  # every non-pad token: seq a -> 0, 1, 2; seq b -> 2, 2
    assert loss == approx([(sq(E[0], CU) + sq(E[1], CU) + sq(E[2], CU)) / 3, sq(E[2], CU)])
    loss, _ = rmu_run(layer=1)  # layer 1 outputs 2 x the embedding
    twice = [[2 * x for x in row] for row in E]
    assert loss == approx([(sq(twice[0], CU) + sq(twice[1], CU)) / 2, sq(twice[2], CU)])


# model - reference = -D at every token; retain tokens are all non-pad ones
RETAIN_BY_HAND = [(sq(D[1], [0, 0]) + 2 * sq(D[0], [0, 0])) / 3, (sq(D[0], [0, 0]) + sq(D[2], [0, 0])) / 2]
FORGET_BY_HAND = [(sq(E[0], CU) + sq(E[1], CU)) / 2, sq(E[2], CU)]


def test_rmu_retain_term_by_hand(toy_states):
    assert RETAIN_BY_HAND == approx([2 / 3, 1.5])  # per token 1, 0, 2 (tokens 0, 1, 2): (0 + 1 + 1) / 3, (1 + 2) / 2
    loss, stats = rmu_run({"alpha": 3.0}, ref_rows="shifted")
    assert loss == approx([FORGET_BY_HAND[i] + 3.0 * RETAIN_BY_HAND[i] for i in range(2)])
    assert stats["retain_loss"] == approx(sum(RETAIN_BY_HAND) / 2)


def test_rmu_loss_weighs_the_retain_term_with_the_recipes_alpha(toy_states):
    # the alpha left at its published 1200: the published recipe keeps it, the miniature one takes 20
    loss, stats = rmu_run(ref_rows="shifted", recipe="published")
    assert loss == pytest.approx([FORGET_BY_HAND[i] + 1200.0 * RETAIN_BY_HAND[i] for i in range(2)], rel=1e-6)
    assert stats["alpha"] == 1200.0 and stats["recipe"] == "published"
    loss, stats = rmu_run(ref_rows="shifted", recipe="miniature")
    assert loss == approx([FORGET_BY_HAND[i] + 20.0 * RETAIN_BY_HAND[i] for i in range(2)])
    assert loss == approx([1.05 + 40 / 3, 1.8 + 30]) and stats["alpha"] == 20.0 and stats["recipe"] == "miniature"
    loss, _ = rmu_run({"alpha": 3.0}, ref_rows="shifted", recipe="miniature")  # a given alpha is kept
    assert loss == approx([FORGET_BY_HAND[i] + 3.0 * RETAIN_BY_HAND[i] for i in range(2)])
    # SAM's forget-only loss (alpha = 0) stays forget-only under the miniature recipe
    spec = get_method("rmu")
    sam = forget_only(spec.make_config())
    loss, _ = spec.loss(Toy(E), UnlearnBatch(forget=R_FORGET, retain=R_RETAIN), ToyRef([[e + d for e, d in zip(er, dr)]
                        for er, dr in zip(E, D)]), sam, rmu_state(recipe="miniature"))
    assert loss.tolist() == approx(FORGET_BY_HAND)


# --- the recipes ------------------------------------------------------------------------------------------

def test_recipe_depends_on_the_models_depth_unless_forced():
    cfg = RMUConfig()
    assert cfg.recipe == "auto" and cfg.layer == 7
    # a model with no layer 7 (fewer than 8 decoder layers) gets the miniature recipe
    assert [recipe_for(cfg, n) for n in (1, 2, 7, 8, 32)] == ["miniature"] * 3 + ["published"] * 2
    assert recipe_for(RMUConfig(recipe="published"), 2) == "published"
    assert recipe_for(RMUConfig(recipe="miniature"), 32) == "miniature"


def test_resolve_replaces_only_the_options_not_given():
    published = resolve(RMUConfig(), "published")
    assert published == RMUConfig(recipe="published")  # every option as given: the Zephyr-7B values
    assert (published.steering, published.steering_coeff, published.alpha, published.param_pattern) == \
        ("absolute", 6.5, 1200.0, "*mlp.down_proj*")
    mini = resolve(RMUConfig(), "miniature")
    assert MINIATURE == {"steering": "relative", "param_pattern": "*", "alpha": 20.0}
    assert (mini.steering, mini.param_pattern, mini.alpha, mini.recipe) == ("relative", "*", 20.0, "miniature")
    assert (mini.layer, mini.steering_scale, mini.trainable_layers, mini.forget_tokens) == (7, 5.0, (), "answer")
    given = resolve(RMUConfig(alpha=3.0, param_pattern="*mlp*", forget_tokens="all"), "miniature")
    assert (given.steering, given.param_pattern, given.alpha, given.forget_tokens) == ("relative", "*mlp*", 3.0, "all")
    assert resolve(RMUConfig(steering="relative", alpha=10.0), "miniature").param_pattern == "*"
    # an option given at its published value is given all the same: kept
    pinned = resolve(get_method("rmu").make_config({"param_pattern": "*mlp.down_proj*", "alpha": 1200}), "miniature")
    assert (pinned.steering, pinned.param_pattern, pinned.alpha) == ("relative", "*mlp.down_proj*", 1200.0)
    assert resolve(RMUConfig(7, (), "*mlp.down_proj*"), "miniature").param_pattern == "*mlp.down_proj*"  # positional
    with pytest.raises(ValueError, match="decided recipe"):
        resolve(RMUConfig(), "auto")


def test_setup_on_a_shallow_model_takes_the_miniature_recipe(tokenizer, tiny_model, forget_items, retain_items):
    spec = get_method("rmu")
    s = spec.setup(setup_ctx(tiny_model, tokenizer, forget_items, retain_items))
    assert s.data["recipe"] == "miniature" and s.data["layer"] == 0 and s.data["layers"] == [0]
    # c = 5 x the mean token norm of layer 0's output on the positions that predict an answer token, by a hook here
    seen = []
    handle = decoder_layers(tiny_model)[1][0].register_forward_hook(lambda m, a, out: seen.append(out[0] if
                                                                                                 isinstance(out, tuple) else out))
    norms = []
    with torch.no_grad():
        for it in forget_items:
            seq = Encoder(tokenizer).item(it)  # positions n_prompt - 1 .. len - 2 predict the answer's tokens
            tiny_model(input_ids=torch.tensor([seq.ids]))
            norms += seen[-1][0, seq.n_prompt - 1 : len(seq.ids) - 1].norm(dim=-1).tolist()
    handle.remove()
    assert s.data["activation_norm"] == pytest.approx(sum(norms) / len(norms), rel=1e-5)
    assert s.data["c"] == pytest.approx(5.0 * s.data["activation_norm"], rel=1e-6)
    assert torch.allclose(s.data["control"], s.data["c"] * s.data["u"])
    chosen = {n for n, _ in tiny_model.named_parameters() if s.trainable(n)}
    assert chosen == {n for n, _ in tiny_model.named_parameters() if ".layers.0." in n}  # the whole layer
    assert not any("embed" in n or n == "model.norm.weight" for n in chosen)


def test_rmu_setup_is_seeded_with_a_unit_direction(tokenizer, tiny_model, forget_items, retain_items):
    spec = get_method("rmu")
    published = {"recipe": "published"}
    s1 = spec.setup(setup_ctx(tiny_model, tokenizer, forget_items, retain_items, published, seed=3))
    s2 = spec.setup(setup_ctx(tiny_model, tokenizer, forget_items, retain_items, published, seed=3))
    s3 = spec.setup(setup_ctx(tiny_model, tokenizer, forget_items, retain_items, published, seed=4))
    u = s1.data["u"]
    assert u.shape == (tiny_model.config.hidden_size,)
    assert float(u.norm()) == approx(1.0) and bool((u >= 0).all())  # uniform on [0, 1), normalised
    assert torch.equal(u, s2.data["u"]) and not torch.equal(u, s3.data["u"])
    assert s1.data["c"] == 6.5 and torch.allclose(s1.data["control"], 6.5 * u) and s1.data["recipe"] == "published"
    # the tiny model has 1 layer: layer 7 -> 0, layers 5..7 -> [0]
    assert s1.data["layer"] == 0 and s1.data["layers"] == [0]
    chosen = [n for n, _ in tiny_model.named_parameters() if s1.trainable(n)]
    assert chosen == ["model.layers.0.mlp.down_proj.weight"]
    auto = spec.setup(setup_ctx(tiny_model, tokenizer, forget_items, retain_items, seed=3))
    assert torch.equal(auto.data["u"], u)  # the recipe changes c, not the direction


def test_rmu_setup_clips_layers_and_relative_steering(tokenizer, forget_items, retain_items):
    model = llama(tokenizer, layers=3)
    spec = get_method("rmu")
    s = spec.setup(setup_ctx(model, tokenizer, forget_items, retain_items))
    assert s.data["layer"] == 2 and s.data["layers"] == [0, 1, 2]
    s = spec.setup(setup_ctx(model, tokenizer, forget_items, retain_items,
                             {"layer": 1, "param_pattern": "*mlp.*_proj*"}))
    assert s.data["layers"] == [0, 1]
    chosen = {n for n, _ in model.named_parameters() if s.trainable(n)}
    assert chosen == {f"model.layers.{i}.mlp.{p}_proj.weight" for i in (0, 1) for p in ("gate", "up", "down")}
    s = spec.setup(setup_ctx(model, tokenizer, forget_items, retain_items,
                             {"steering": "relative", "steering_scale": 2.0, "trainable_layers": [9]}))  # a YAML list
    assert s.data["layers"] == [2]  # clipped to the last layer
    assert s.data["activation_norm"] > 0 and s.data["c"] == approx(2.0 * s.data["activation_norm"])
    with pytest.raises(LetheError, match="above the steered layer"):
        spec.setup(setup_ctx(model, tokenizer, forget_items, retain_items, {"layer": 1, "trainable_layers": (2,)}))


def test_a_model_with_eight_layers_gets_the_published_recipe(tokenizer, forget_items, retain_items):
    model = llama(tokenizer, layers=8, hidden=8)
    s = get_method("rmu").setup(setup_ctx(model, tokenizer, forget_items, retain_items))
    assert s.data["recipe"] == "published" and s.data["c"] == 6.5 and s.data["activation_norm"] is None
    assert s.data["layer"] == 7 and s.data["layers"] == [5, 6, 7]
    chosen = [n for n, _ in model.named_parameters() if s.trainable(n)]
    assert chosen == [f"model.layers.{i}.mlp.down_proj.weight" for i in (5, 6, 7)]


@pytest.mark.parametrize("options,needle", [
    ({"steering": "fixed"}, "steering"),
    ({"steering_coeff": 0.0}, "steering_coeff"),
    ({"alpha": -1.0}, "alpha"),
    ({"layer": -1}, "layer"),
    ({"trainable_layers": (-1,)}, "trainable_layers"),
    ({"forget_tokens": "prompt"}, "forget_tokens"),
    ({"param_pattern": " "}, "param_pattern"),
    ({"recipe": "zephyr"}, "recipe"),
])
def test_rmu_bad_options_raise(options, needle):
    with pytest.raises(LetheError, match=needle):
        get_method("rmu").make_config(options)


def test_rmu_pattern_selecting_nothing_is_a_user_error(tokenizer, tiny_model, forget_items, retain_items):
    with pytest.raises(LetheError, match="param_pattern"):
        unlearn(tiny_model, tokenizer, "rmu", forget_items, retain_items, TrainConfig(max_steps=1),
                options={"param_pattern": "*no_such_module*"})


def test_rmu_sweep_space_is_the_miniature_recipes():
    space = get_method("rmu").space
    assert space == {"steering_scale": (1.0, 10.0, "log"), "alpha": (1.0, 3000.0, "log")}


# --- training -----------------------------------------------------------------------------------------------

CONSTANT = dict(epochs=1, batch_size=2, warmup_ratio=0.0, scheduler="constant")


def test_rmu_unlearn_moves_only_the_selected_parameters(tokenizer, tiny_model, forget_items, retain_items):
    before = {k: v.detach().clone() for k, v in tiny_model.named_parameters()}
    model, stats = unlearn(tiny_model, tokenizer, "rmu", forget_items, retain_items, TrainConfig(lr=1e-2, **CONSTANT),
                           options={"recipe": "published"})
    target = "model.layers.0.mlp.down_proj.weight"
    assert stats.trainable_params == before[target].numel() < stats.total_params
    assert all(math.isfinite(x) for x in stats.losses) and stats.last_stats["steering_coeff"] == 6.5
    for name, p in model.named_parameters():
        assert torch.equal(p.detach(), before[name]) == (name != target), name
        assert p.requires_grad  # the caller's flags come back


def test_rmu_miniature_recipe_moves_the_whole_layer_and_nothing_else(tokenizer, tiny_model, forget_items,
                                                                     retain_items):
    before = {k: v.detach().clone() for k, v in tiny_model.named_parameters()}
    model, stats = unlearn(tiny_model, tokenizer, "rmu", forget_items, retain_items, TrainConfig(lr=1e-2, **CONSTANT))
    layer = {n for n in before if ".layers.0." in n}
    assert stats.trainable_params == sum(before[n].numel() for n in layer) < stats.total_params
    assert stats.last_stats["recipe"] == "miniature" and stats.last_stats["alpha"] == 20.0
    moved = {n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])}
    assert moved == layer


def test_rmu_with_lora_trains_only_the_adapter_of_the_selected_modules(tokenizer, tiny_model, forget_items,
                                                                        retain_items):
    cfg = TrainConfig(lr=1e-2, lora=True, lora_r=2, **CONSTANT)
    model, stats = unlearn(tiny_model, tokenizer, "rmu", forget_items, retain_items, cfg,
                           options={"recipe": "published"})
    lora = {n: p for n, p in model.named_parameters() if "lora_" in n}
    assert stats.trainable_params == sum(p.numel() for n, p in lora.items() if "mlp.down_proj" in n)
    assert all(math.isfinite(x) for x in stats.losses) and stats.last_stats["retain_loss"] > 0
    zero_b = [n for n, p in lora.items() if "lora_B" in n and not bool((p == 0).all())]
    assert zero_b and all("mlp.down_proj" in n for n in zero_b)  # only that adapter left its zero init


def _answer_nll(model, tokenizer, items) -> float:
    enc = Encoder(tokenizer)
    lp, n = score_sequences(model, [enc.qa(it.question, it.answer) for it in items], tokenizer.pad_token_id)
    return float((-(lp / n)).mean())


def test_miniature_recipe_unlearns_a_memorised_model_where_the_published_one_does_not(
        tokenizer, memorised_model, make_tiny, _memorised_state, forget_items, retain_items):
    # 4 steps at lr 1e-2 on the 1-layer model that memorised forget and retain answers (NLL ~0.14 each).
    # Measured: published 0.143 -> 0.147 (forget), miniature 0.143 -> 1.5 (forget) and 0.14 -> 0.47 (retain)
    f0, r0 = _answer_nll(memorised_model, tokenizer, forget_items), _answer_nll(memorised_model, tokenizer, retain_items)
    assert f0 < 0.5 and r0 < 0.5
    cfg = TrainConfig(lr=1e-2, epochs=2, batch_size=2, warmup_ratio=0.0, scheduler="constant")
    results = {}
    for recipe in ("published", "auto"):
        model = make_tiny(tokenizer)
        model.load_state_dict(_memorised_state)
        model, _ = unlearn(model, tokenizer, "rmu", forget_items, retain_items, cfg, options={"recipe": recipe})
        results[recipe] = (_answer_nll(model, tokenizer, forget_items) - f0,
                           _answer_nll(model, tokenizer, retain_items) - r0)
    assert abs(results["published"][0]) < 0.1  # the Zephyr values move nothing here
    forget_rise, retain_rise = results["auto"]
    assert forget_rise > 1.0 and forget_rise > 2 * retain_rise  # forgets, and more than it loses on retain


# --- the cause, pinned: the last layer's output goes through the final RMSNorm -------------------------------

def test_a_rescale_of_the_last_layers_output_changes_no_logit(tokenizer):
    """RMU's forget term ||h - c·u||^2 falls when h shrinks towards 0; when c·u is small against h that is most
    of what it can do, and at the last layer the final RMSNorm undoes it (a scale of h changes no logit). At an
    earlier layer a rescale changes the logits (the residual stream mixes h with what comes after)."""
    torch.manual_seed(0)
    model = llama(tokenizer, layers=2).eval()
    # RMSNorm's eps (1e-6) only shows when rms(h)^2 is near it, as in this random init (not in a trained model,
    # whose rms(h) is ~7 on the built-in one): switched off so that the test sees the norm alone
    model.model.norm.variance_epsilon = 0.0
    ids = torch.tensor([Encoder(tokenizer).qa("Where was Alice Moon born?", "Alice Moon was born in Paris.").ids])

    def logits(layer=None, scale=1.0):
        hook = None
        if layer is not None:
            def rescale(module, args, out):
                return (out[0] * scale, *out[1:]) if isinstance(out, tuple) else out * scale
            hook = decoder_layers(model)[1][layer].register_forward_hook(rescale)
        with torch.no_grad():
            out = model(input_ids=ids).logits
        if hook is not None:
            hook.remove()
        return out

    plain = logits()
    assert torch.allclose(logits(layer=1, scale=0.1), plain, atol=1e-5)  # the last layer: no change
    assert not torch.allclose(logits(layer=0, scale=0.1), plain, atol=1e-2)  # an earlier layer: changed
