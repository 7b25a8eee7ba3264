"""Alternate preference optimisation (AltPO): prefer a plausible alternative answer to the true one.

Mekala et al. 2025, "Alternate Preference Optimization for Unlearning Factual Knowledge in Large
Language Models" (COLING). Negative feedback on the true forget answer y alone (GA, NPO) often
leaves nonsensical or inconsistent answers; AltPO adds in-domain positive feedback: an alternative
answer ỹ to the same question, written by the target model itself before unlearning, is preferred to
y in a DPO loss

    L_AltPO = -(2/beta) E_{D_f} [ log sigmoid( beta * ( log pi_theta(ỹ|x) / pi_ref(ỹ|x)
                                                      - log pi_theta(y|x) / pi_ref(y|x) ) ) ]
              + alpha * L_retain

with sequence log-probs summed over answer tokens and L_retain the NLL of retain answers (the
authors' code: ``dataloader.py``, loss "subdpo", ``retain_type: NLL``, ``retain_wt: 1``; open-unlearning's
port, community/methods/AltPO, runs its DPO trainer with the alternate answer preferred).
``forget_loss="npo_nll"`` is the authors' "subnpo": NLL(ỹ|x) - (2/beta) log sigmoid(-beta log(pi_theta(y|x)
/ pi_ref(y|x))). The reference log-probs are constant: computed once before training.

Alternatives (``setup``): the target model rewrites the answer with other plausible facts, asked with
the authors' Llama-2 instruction (``prompts.py``, INST_QAS_INSTR, wrapped by the chat template), the reply
cut at their stop strings, an echoed "Alternate Answer:" dropped. The authors sample 5 alternatives at
temperature 1 (``config/generate.yaml``); Lethe keeps one, greedy, so a run is deterministic. Their
training settings (``config/unlearn_llama2.yaml``): lr 5e-5, 10 epochs, retain NLL weight 1.

Fallback: a reply that is empty, equals or contains the true answer is replaced by the answer of another
item asking for the same fact (``QAItem.fact``), from the forget items, then the retain items, then any
item, seeded by the run's seed and the item id. ``perturbed_answers`` are never used: training towards
the truth ratio's wrong answers would game it. ``alternatives="perturb"`` always uses the fallback; "auto"
does so under 1B parameters, where a model (Lethe's built-in ones) replies with in-domain word salad
("Dunoks: Hidden Kingdoms, friendship.") that no simple test tells from an answer.
"""
from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass

import torch.nn.functional as F

from .. import probes
from ..data import Encoder
from ..errors import LetheError
from ..models import answer_logits
from ..ops import sequence_logprob
from ..reference import eval_mode
from . import MethodState, register_method
from .retain import with_retain

FORGET_LOSSES = ("dpo", "npo_nll")
ALTERNATIVES = ("auto", "generate", "perturb")
# "auto" generates with models of at least this size: following a free-form instruction takes an LLM
# (the paper's models: Llama-2-7B, Llama-3.2-3B); Lethe's built-in models reply with word salad
AUTO_GENERATE_MIN_PARAMETERS = 1_000_000_000
# the authors' instruction for Llama-2 (prompts.py, INST_QAS_INSTR); the chat template wraps it
INSTRUCTION = ("Question: {question}\nAnswer: {answer}\n"
               "Now write another version of the answer with some alternate plausible facts that change answer details.")
STOP = ("Question:", "Q:")  # the authors' stop strings (config/generate.yaml, ``until``)
GENERATION_BATCH = 64


@dataclass(frozen=True)
class AltPOConfig:
    beta: float = 0.1  # inverse temperature of the implicit reward (the authors' config; grid 0.05-0.5)
    alpha: float = 1.0  # weight of the retain term (the authors' retain_wt)
    retain: str = "nll"
    forget_loss: str = "dpo"  # "dpo": AltPO; "npo_nll": NLL of the alternative + NPO on the true answer
    alternatives: str = "auto"  # "generate": the target model writes them (fallback per item); "perturb": the
    # fallback only; "auto": "generate" for models of 1B parameters or more, else "perturb"
    max_new_tokens: int = 0  # for the generation; 0: 1.5 x the longest forget answer + 8, at most 200 (the authors: 200)

    def check(self):
        if not (math.isfinite(self.beta) and self.beta > 0):
            raise LetheError(f"altpo: beta must be a finite number > 0, got {self.beta}")
        if self.forget_loss not in FORGET_LOSSES:
            raise LetheError(f"altpo: forget_loss must be one of {', '.join(FORGET_LOSSES)}, got {self.forget_loss!r}")
        if self.alternatives not in ALTERNATIVES:
            raise LetheError(f"altpo: alternatives must be one of {', '.join(ALTERNATIVES)}, got {self.alternatives!r}")
        if not 0 <= self.max_new_tokens <= 4096:
            raise LetheError(f"altpo: max_new_tokens must be in [0, 4096] (0 = from the answers), got {self.max_new_tokens}")


def _norm(text: str) -> str:
    """Case, spacing and end punctuation do not make an answer different."""
    return re.sub(r"\s+", " ", text).strip().strip(".!?;:,").strip().lower()


def clean_generation(text: str) -> str:
    """The model's alternative answer: cut at the stop strings, without an echoed "Alternate Answer:" label."""
    for stop in STOP:
        text = text.split(stop)[0]
    return re.sub(r"^(alternate|alternative)\s+answer\s*:\s*", "", text.strip(), flags=re.IGNORECASE).strip()


def usable(alternative: str, answer: str) -> bool:
    """An alternative must say something, and something else than the true answer."""
    alt, true = _norm(alternative), _norm(answer)
    return bool(alt) and alt != true and true not in alt


def fallback_alternative(item, forget: list, retain: list, seed: int) -> str:
    """Another item's answer to the same kind of question (same ``fact``), seeded by ``seed`` and the item id."""
    def pool(items, same_fact: bool) -> list[str]:  # distinct usable answers, in order
        others = [o for o in items if o.id != item.id and (not same_fact or (item.fact and o.fact == item.fact))]
        return list(dict.fromkeys(o.answer for o in others if usable(o.answer, item.answer)))

    rng = random.Random(f"altpo:{seed}:{item.id}")  # string seeds are stable across runs and platforms
    for items, same_fact in ((forget, True), (retain, True), (forget, False), (retain, False)):
        candidates = pool(items, same_fact)
        if candidates:
            return rng.choice(candidates)
    raise LetheError(f"altpo: no alternative answer for forget item '{item.id}': the model gave none and no other "
                     "item has a different answer; add forget or retain items")


def altpo_setup(ctx) -> MethodState:
    """One alternative answer per forget item: generated by the target model, else the fallback."""
    cfg: AltPOConfig = ctx.cfg
    forget = ctx.forget
    alternatives = [""] * len(forget)
    mode = cfg.alternatives
    if mode == "auto":
        size = sum(p.numel() for p in ctx.model.parameters())
        mode = "generate" if size >= AUTO_GENERATE_MIN_PARAMETERS else "perturb"
    if mode == "generate":
        max_new = cfg.max_new_tokens
        if max_new == 0:
            longest = max(len(ctx.tokenizer(it.answer, add_special_tokens=False)["input_ids"]) for it in forget)
            max_new = min(200, int(longest * 1.5) + 8)
        prompts = [INSTRUCTION.format(question=it.question, answer=it.answer) for it in forget]
        # a prompt that would run past the model's positions is not generated (its item takes the fallback):
        # models with learned position embeddings fail there
        limit = getattr(getattr(ctx.model, "config", None), "max_position_embeddings", None)
        encoder = Encoder(ctx.tokenizer)
        fits = [i for i, p in enumerate(prompts)
                if not isinstance(limit, int) or len(encoder.prompt(p)) + max_new <= limit]
        if fits:
            with eval_mode(ctx.model):  # generate() runs under no_grad; dropout off, then the caller's mode back
                replies = probes.generate(ctx.model, ctx.tokenizer, [prompts[i] for i in fits], max_new,
                                          GENERATION_BATCH, encoder)
            for i, reply in zip(fits, replies):
                alternatives[i] = clean_generation(reply)
    fallback = []
    for i, item in enumerate(forget):
        if not usable(alternatives[i], item.answer):
            alternatives[i] = fallback_alternative(item, forget, ctx.retain, ctx.train.seed)
            fallback.append(item.id)
    return MethodState(forget_alt=alternatives, data={"mode": mode, "fallback": fallback,
                                                       "generated": len(forget) - len(fallback)})


@register_method("altpo", config=AltPOConfig, needs_ref="logprobs", needs=("forget_alt",),
                 space={"beta": (0.05, 0.5, "log"), "alpha": (0.1, 10.0, "log")},
                 family="post-training / targeted", setup=altpo_setup, lr=5e-5, epochs=10,
                 paper="Mekala et al. 2025, Alternate Preference Optimization (COLING), AltPO loss")
def altpo_loss(model, batch, ref, cfg: AltPOConfig, state: MethodState):
    keys = batch.forget_keys
    alt_logits, alt_labels = answer_logits(model, batch.forget_alt)  # (B, T', V): the alternative, preferred
    f_logits, f_labels = answer_logits(model, batch.forget)  # (B, T'', V): the true answer, rejected
    lp_alt, n_alt = sequence_logprob(alt_logits, alt_labels)  # (B,) log pi_theta(ỹ|x), answer tokens
    lp_f, _ = sequence_logprob(f_logits, f_labels)  # (B,) log pi_theta(y|x)
    ratio_f = lp_f - ref.sequence_logprob(batch.forget, keys, "forget")  # (B,) log pi_theta(y|x) / pi_ref(y|x)
    nll_alt = -lp_alt / n_alt.clamp(min=1)  # (B,) token mean within the sequence
    stats = {"log_ratio_forget": float(ratio_f.detach().mean()), "alt_nll": float(nll_alt.detach().mean())}
    if cfg.forget_loss == "dpo":
        ratio_alt = lp_alt - ref.sequence_logprob(batch.forget_alt, keys, "forget_alt")  # (B,)
        forget = -(2.0 / cfg.beta) * F.logsigmoid(cfg.beta * (ratio_alt - ratio_f))  # (B,)
        stats["log_ratio_alt"] = float(ratio_alt.detach().mean())
    else:  # "npo_nll": the authors' "subnpo"
        forget = nll_alt - (2.0 / cfg.beta) * F.logsigmoid(-cfg.beta * ratio_f)  # (B,)
    stats["forget_loss"] = float(forget.detach().mean())
    return with_retain(forget, stats, cfg, model, batch, ref, beta=cfg.beta)
