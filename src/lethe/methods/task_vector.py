"""Task-vector negation: model composition by weight arithmetic.

Ilharco et al. 2023, "Editing Models with Task Arithmetic" (ICLR), Sec. 3 (forgetting via negation):
fine-tune the model on the forget data, take the task vector tau = theta_ft - theta, and subtract it,

    theta_unlearned = theta - alpha * tau,

as the "reinforced model" of Eldan & Russinovich 2023 ("Who's Harry Potter?"). The fine-tune uses the
run's training settings; with ``train.lora`` tau is the merged delta of a LoRA adapter. A procedure
(``ProcedureMethod``), not a loss for the training loop.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from ..data import Encoder
from ..errors import LetheError
from ..loop import finetune
from ..models import add_lora
from . import register_procedure


@dataclass(frozen=True)
class TaskVectorConfig:
    alpha: float = 1.0  # scaling of the negated task vector (lambda in Ilharco et al.)

    def check(self):
        if self.alpha <= 0:
            raise LetheError(f"task_vector: alpha must be > 0, got {self.alpha}")


@register_procedure("task_vector", config=TaskVectorConfig, lr=1e-5, epochs=5,
                    space={"alpha": (0.25, 2.0, "linear")},
                    paper="Ilharco et al. 2023, Editing Models with Task Arithmetic (negation)")
def task_vector(model, tokenizer, forget, retain, train, cfg: TaskVectorConfig, description: str | None = None):
    if not forget:
        raise LetheError("the forget set is empty: nothing to unlearn; check the forget split or data file")
    theta = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}  # off the accelerator
    enc = Encoder(tokenizer)
    seqs = [enc.item(it) for it in forget]  # a document (no question) is plain text
    ft = add_lora(model, r=train.lora_r, alpha=train.lora_alpha) if train.lora else model
    ft, stats = finetune(ft, tokenizer, seqs, dataclasses.replace(train, lora=False, lora_merge=False),
                         description or "task vector: fine-tune on forget")
    if train.lora:
        ft = ft.merge_and_unload()
    seen = set()  # tied weights (embeddings = LM head) appear under two names: negate them once
    with torch.no_grad():
        for name, value in ft.state_dict().items():
            if name not in theta or not value.is_floating_point() or value.data_ptr() in seen:
                continue
            seen.add(value.data_ptr())
            before = theta[name].to(value.device)
            tau = value - before  # the forget task vector
            value.copy_(before - cfg.alpha * tau)
    ft.eval()
    return ft, stats
