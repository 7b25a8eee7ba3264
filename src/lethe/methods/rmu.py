"""Representation misdirection for unlearning (RMU).

Li et al. 2024, "The WMDP Benchmark: Measuring and Reducing Malicious Use With Unlearning" (ICML),
Sec. 5.2 and Algorithm 1. A fixed random unit vector u (entries drawn uniformly from [0, 1), then
normalised) and a steering coefficient c give the control vector c·u. With h_ℓ the output of decoder
layer ℓ of the model being trained and h_ℓ^frozen that of the model before unlearning:

    L_forget = E_{x_f} [ (1/L_f) sum_{t in x_f} || h_ℓ(t) - c·u ||^2 ]
    L_retain = E_{x_r} [ (1/L_r) sum_{t in x_r} || h_ℓ(t) - h_ℓ^frozen(t) ||^2 ]
    L_RMU    = L_forget + alpha * L_retain

Only the MLPs of layers ℓ-2..ℓ are trained (the authors' code: ``mlp.down_proj`` of layers 5, 6, 7
for ℓ = 7); ``setup`` builds u, c and this parameter subset once, before training.

As implemented here:

- ``||.||^2`` is the mean over the H hidden units, as in the authors' code (``rmu/unlearn.py``:
  ``torch.nn.functional.mse_loss``) and open-unlearning's port; the paper's sum is H times larger.
  Both terms scale alike, so alpha keeps its meaning; c and alpha are the values tuned with the mean.
- Forget tokens (``forget_tokens="answer"``, the default): the positions that predict an answer token.
  The paper steers every token of plain text (``"all"``); with Q&A the template prefix has identical
  hidden states in forget and retain sequences, so steering it while the retain term pins it makes the
  two terms fight, and the answer is recalled from the positions that predict it.
- Retain tokens: every non-pad token of the retain sequence (the paper's choice); token means inside a
  sequence, averaged over sequences by the loop.

Two recipes (``recipe``), chosen once the model is known (``setup``):

- **published**: the authors' Zephyr-7B run behind ``cais/Zephyr_RMU`` (WMDP README,
  ``run_rmu_zephyr.ipynb``): ℓ = 7, ``mlp.down_proj`` of ℓ-2..ℓ, absolute c = 6.5, alpha = 1200: the
  field defaults below, for the options not given.
- **miniature**: for a model too shallow to have the published layer 7 (fewer than 8 decoder layers:
  ℓ is clipped to its last layer). The options not given take :data:`MINIATURE`:
  relative steering (c = steering_scale x the mean ||h_ℓ|| on the forget positions before unlearning,
  Adaptive RMU of Dang et al. 2025, AAAI, scale 5), every parameter of the layers ℓ-2..ℓ (``param_pattern
  = "*"``) and alpha = 20. An option given is kept, whatever its value.

``recipe="auto"`` (the default) takes the miniature recipe for such a model and the published one
otherwise; ``"published"`` / ``"miniature"`` force one (``{method: rmu, recipe: published}`` runs the
Zephyr values on a tiny model). Why the miniature needs its own (docs/rmu.md; Lethe's 2-layer built-in
model, forget10, one CPU thread): the mean token norm of h_ℓ on the forget answer positions is 60 after
layer 0 and 80 after layer 1, so c·u with c = 6.5 lies inside the activations and the forget term falls
mostly by shrinking h, which the final RMSNorm undoes at the last layer (alpha = 1, lr 1e-2: ||h|| 80 -> 31,
forget term -85 %, forget answer NLL 0.13 -> 0.57); the forget term alone moves the retain answers'
activations as much as the forget answers' (ratio 0.93-0.98: forget and retain are one distribution), so
alpha = 1200 pins both; and ``mlp.down_proj`` alone moves h little in the run's 25 steps at lr 1e-3. In a
20-trial sweep of each of the four combinations (absolute / relative, down_proj / whole layers; alpha 1 to
3000) the published one never moved forget quality off the target's, and only relative steering over whole
layers moved it far (9.6e-5 against the target's 3e-22, at 0.95 of the target's utility). Replacing h_ℓ
by c·u outright does erase the answers at either layer (answer NLL 0.13 -> 9.6-10.5): the steering target
is not the problem, reaching it selectively is. ℓ stays the published 7, clipped to the last layer.
"""
from __future__ import annotations

import dataclasses
import fnmatch
import math
from dataclasses import dataclass

import torch

from ..data import Encoder, collate
from ..errors import LetheError
from ..models import decoder_layers, layer_index
from ..ops import IGNORE, masked_mean
from ..reference import eval_mode, hidden_states
from . import MethodState, register_method

STEERING = ("absolute", "relative")
FORGET_TOKENS = ("answer", "all")
RECIPES = ("auto", "published", "miniature")
PUBLISHED_LAYER = 7  # the published ℓ: a model with no layer 7 (fewer than 8 decoder layers) gets the miniature recipe
# the miniature recipe: what an option not given takes instead of its published value (docs/rmu.md: how it was chosen)
MINIATURE = {"steering": "relative", "param_pattern": "*", "alpha": 20.0}


@dataclass(frozen=True)
class RMUConfig:
    layer: int = PUBLISHED_LAYER  # ℓ: decoder layer (0-based) whose output is steered (the authors' layer_id)
    trainable_layers: tuple = ()  # layers whose matching parameters train; () = ℓ-2..ℓ (layer_ids 5,6,7)
    param_pattern: str = "*mlp.down_proj*"  # fnmatch over parameter names (the authors' param_ids [6])
    steering: str = "absolute"  # "absolute": c = steering_coeff; "relative": c = steering_scale x mean ||h_ℓ||
    steering_coeff: float = 6.5  # c, the Zephyr-7B value (the code's default is 20)
    steering_scale: float = 5.0  # c / mean ||h_ℓ|| when steering = "relative" (Adaptive RMU)
    alpha: float = 1200.0  # weight of the retain term (the code's default is 100)
    forget_tokens: str = "answer"  # "answer": positions that predict the answer; "all": every non-pad token
    # "auto": the miniature recipe for a model with fewer than 8 decoder layers, else the published one;
    # "published": the options not given stay at the field defaults above; "miniature": they take MINIATURE
    recipe: str = "auto"

    def check(self):
        if self.layer < 0:
            raise LetheError(f"rmu: layer must be >= 0, got {self.layer}")
        if not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in self.trainable_layers):
            raise LetheError(f"rmu: trainable_layers must be a list of layer indices >= 0, got {list(self.trainable_layers)!r}")
        if not self.param_pattern.strip():
            raise LetheError("rmu: param_pattern must be a non-empty parameter-name pattern, e.g. '*mlp.down_proj*'")
        if self.steering not in STEERING:
            raise LetheError(f"rmu: steering must be one of {', '.join(STEERING)}, got {self.steering!r}")
        for name in ("steering_coeff", "steering_scale"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                raise LetheError(f"rmu: {name} must be a finite number > 0, got {getattr(self, name)}")
        if not (math.isfinite(self.alpha) and self.alpha >= 0):
            raise LetheError(f"rmu: alpha (weight of the retain term) must be a finite number >= 0, got {self.alpha}")
        if self.forget_tokens not in FORGET_TOKENS:
            raise LetheError(f"rmu: forget_tokens must be one of {', '.join(FORGET_TOKENS)}, got {self.forget_tokens!r}")
        if self.recipe not in RECIPES:
            raise LetheError(f"rmu: recipe must be one of {', '.join(RECIPES)}, got {self.recipe!r}")


# Which options were given: the dataclass's own __init__, then the names it was called with (a user's options
# through ``make_config``, or every field through ``dataclasses.replace``), so that a given option is kept even
# at its published value (``{param_pattern: "*mlp.down_proj*"}`` keeps down_proj under the miniature recipe).
_fields_init = RMUConfig.__init__


def _init_recording_given(self, *args, **kwargs):
    _fields_init(self, *args, **kwargs)
    names = [f.name for f in dataclasses.fields(RMUConfig)]
    object.__setattr__(self, "_given", frozenset(names[: len(args)]) | frozenset(kwargs))


RMUConfig.__init__ = _init_recording_given


def recipe_for(cfg: RMUConfig, depth: int) -> str:
    """The recipe ``cfg`` takes on a model of ``depth`` decoder layers: "published" or "miniature"."""
    if cfg.recipe != "auto":
        return cfg.recipe
    return "miniature" if depth <= PUBLISHED_LAYER else "published"


def resolve(cfg: RMUConfig, recipe: str) -> RMUConfig:
    """``cfg`` under ``recipe`` ("published" or "miniature", from :func:`recipe_for`): the miniature recipe
    replaces each option of :data:`MINIATURE` that was not given (left at its published value, the field
    default); a given option is kept, whatever its value (SAM's alpha = 0 included). ``recipe`` of the result
    names it."""
    if recipe not in ("published", "miniature"):
        raise ValueError(f"rmu: resolve takes a decided recipe (published or miniature), got {recipe!r}")
    published = {f.name: f.default for f in dataclasses.fields(RMUConfig)}
    changes = {"recipe": recipe}
    if recipe == "miniature":
        given = getattr(cfg, "_given", frozenset())
        changes.update({k: v for k, v in MINIATURE.items() if k not in given and getattr(cfg, k) == published[k]})
    return dataclasses.replace(cfg, **changes)


def forget_mask(enc, tokens: str) -> torch.Tensor:
    """(B, T) float mask of the forget positions RMU steers: "answer", position t where token t+1 is an
    answer token (the last prompt token and every answer token but the last); "all", every non-pad token."""
    if tokens == "all":
        return enc.attention_mask.float()
    mask = torch.zeros_like(enc.labels, dtype=torch.float32)  # (B, T)
    mask[:, :-1] = (enc.labels[:, 1:] != IGNORE).float()
    return mask


@torch.no_grad()
def _forget_activations(model, tokenizer, items, layer: int, tokens: str, device,
                        batch_size: int = 32) -> tuple[float, int]:
    """Mean token norm ||h_ℓ|| of ``model`` over the forget positions of ``items`` (fp32), and H."""
    enc = Encoder(tokenizer)
    seqs = [enc.item(it) for it in items]  # a document (no question) is plain text
    total, count, hidden = 0.0, 0.0, 0
    with eval_mode(model):
        for i in range(0, len(seqs), batch_size):
            batch = collate(seqs[i : i + batch_size], tokenizer.pad_token_id).to(device)
            h = hidden_states(model, batch, layer).float()  # (B, T, H)
            mask = forget_mask(batch, tokens)  # (B, T)
            total += float((h.norm(dim=-1) * mask).sum())
            count += float(mask.sum())
            hidden = h.size(-1)
    return total / max(count, 1.0), hidden


def rmu_setup(ctx) -> MethodState:
    """The recipe (:func:`recipe_for`), the control vector c·u, the steered layer and the trainable parameter
    subset."""
    model = ctx.model
    n = len(decoder_layers(model)[1])
    cfg = resolve(ctx.cfg, recipe_for(ctx.cfg, n))
    layer = min(cfg.layer, n - 1)  # clipped to the model's depth: the defaults also fit a 1-layer model
    wanted = cfg.trainable_layers or tuple(range(max(0, layer - 2), layer + 1))
    layers = sorted({min(i, n - 1) for i in wanted})
    if layers[-1] > layer:
        raise LetheError(f"rmu: trainable_layers {layers} include layers above the steered layer {layer}: their "
                         f"parameters cannot change its output; choose layers <= rmu.layer")

    layer_of = layer_index(model)  # parameter names of this model (wrapped in LoRA or not) -> layer

    def trainable(name: str) -> bool:
        return layer_of(name) in layers and fnmatch.fnmatch(name, cfg.param_pattern)

    names = [name for name, p in model.named_parameters() if p.requires_grad]
    if not any(trainable(name) for name in names):
        example = ", ".join(([n for n in names if layer_of(n) in layers] or names)[:3])  # the layers' own names
        raise LetheError(f"rmu: param_pattern {cfg.param_pattern!r} in layers {layers} selects no trainable parameter "
                         f"(names look like: {example}); fix rmu.param_pattern or rmu.trainable_layers")

    # u: independent entries uniform on [0, 1), normalised (WMDP Algorithm 1; torch.rand in the code),
    # drawn on the CPU from the run's seed so it is the same on every device
    gen = torch.Generator().manual_seed(ctx.train.seed)
    norm, hidden = None, getattr(getattr(model, "config", None), "hidden_size", None)
    if cfg.steering == "relative" or not isinstance(hidden, int):  # one no-grad pass over the forget set
        norm, hidden = _forget_activations(model, ctx.tokenizer, ctx.forget, layer, cfg.forget_tokens, ctx.device)
    u = torch.rand(hidden, generator=gen, dtype=torch.float32)
    u = u / u.norm()  # (H,)
    c = cfg.steering_coeff if cfg.steering == "absolute" else cfg.steering_scale * norm
    return MethodState(trainable=trainable, data={
        "recipe": cfg.recipe, "layer": layer, "layers": layers, "u": u, "c": float(c),
        "control": (c * u).to(ctx.device),  # (H,) c·u, fp32
        "activation_norm": norm,
    })


@register_method("rmu", config=RMUConfig, needs_ref="logits", needs=("retain",),
                 # the miniature recipe's (relative steering); a published-recipe model tunes c with
                 # sweep.space={steering_coeff: [1, 50, log]}
                 space={"steering_scale": (1.0, 10.0, "log"), "alpha": (1.0, 3000.0, "log")},
                 paper="Li et al. 2024, The WMDP Benchmark (ICML), RMU, Sec. 5.2 / Algorithm 1",
                 setup=rmu_setup, lr=5e-5, epochs=1)
def rmu_loss(model, batch, ref, cfg: RMUConfig, state: MethodState):
    cfg = resolve(cfg, state.data["recipe"])  # the recipe setup chose (its alpha weighs the retain term)
    layer, control = state.data["layer"], state.data["control"]  # control: (H,)
    f, r = batch.forget, batch.retain
    # forget: pull the layer-ℓ activations of the forget positions towards c·u
    h_f = hidden_states(model, f, layer).float()  # (B, T, H); fp32 for the squared norms under bf16 autocast
    dist_f = (h_f - control).pow(2).mean(-1)  # (B, T): ||h - c·u||^2 / H
    mask_f = forget_mask(f, cfg.forget_tokens)  # (B, T)
    forget = masked_mean(dist_f, mask_f)  # (B,)
    # retain: keep the layer-ℓ activations of retain text where the frozen model has them
    h_r = hidden_states(model, r, layer).float()  # (B, T, H)
    with torch.no_grad():
        h_ref = ref.hidden_states(r, layer).float()  # (B, T, H)
    dist_r = (h_r - h_ref).pow(2).mean(-1)  # (B, T)
    retain = masked_mean(dist_r, r.attention_mask.float())  # (B,)
    with torch.no_grad():
        norm_f = masked_mean(h_f.norm(dim=-1), mask_f)  # (B,) ||h_ℓ|| on forget tokens
    return forget + cfg.alpha * retain, {"forget_loss": float(forget.detach().mean()),
                                         "retain_loss": float(retain.detach().mean()),
                                         "forget_activation_norm": float(norm_f.mean()),
                                         "steering_coeff": state.data["c"], "alpha": cfg.alpha,
                                         "recipe": cfg.recipe}
