"""LoRA (peft) adapter folders: what ``save_model`` writes for a LoRA-wrapped model, so every unlearned model of
a ``train.lora=true`` run without ``train.lora_merge``. ``models.load_model`` loads them like any model; this
module reads the folders and puts the adapters on a loaded base.

Security: adapter weights load from ``adapter_model.safetensors`` only (never ``adapter_model.bin``, a pickle).
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

from .errors import LetheError

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
MAX_ADAPTERS = 16  # adapters stacked on one base (a chain this long is a loop in base_model_name_or_path)


def is_adapter_folder(path: str | os.PathLike) -> bool:
    """A peft adapter folder: ``adapter_config.json`` and no ``config.json``."""
    path = Path(path)
    return (path / ADAPTER_CONFIG).is_file() and not (path / "config.json").exists()


def adapter_base(folder: Path) -> str:
    """The base model an adapter folder was trained on: ``base_model_name_or_path`` of its adapter_config.json.

    peft writes the string it was given, so a relative path means what it meant to the process that saved it:
    it is read from the current directory, as peft and transformers read it (a Lethe run's adapters name its
    target as the run was given it: run Lethe from where the run was started), not from the adapter folder.
    A path that exists is a local folder; one that does not is a hub id when it has a hub id's form
    (``name`` or ``owner/name``), else an error.
    """
    where = folder / ADAPTER_CONFIG
    fix = f"edit base_model_name_or_path in {where} to the base model's folder or hub id"
    try:
        config = json.loads(where.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LetheError(f"{where}: not a readable adapter config ({exc}); save the adapter again") from None
    base = config.get("base_model_name_or_path") if isinstance(config, dict) else None
    if not isinstance(base, str) or not base.strip():
        raise LetheError(f"{where}: base_model_name_or_path is empty, so the adapter's base model is unknown; {fix}")
    hub_like = base.count("/") <= 1 and not base.startswith((".", "/", "~")) and "\\" not in base
    if not Path(base).exists() and not hub_like:
        raise LetheError(f"{where}: base_model_name_or_path '{base}' does not exist (a relative path is read from the "
                         f"current directory, {Path.cwd()}); {fix}, or run Lethe from the directory the adapter was "
                         "saved from")
    return base


def adapter_chain(folder: str | os.PathLike) -> list[str]:
    """``[folder, its base, ..., the base model]``: an adapter's base may itself be an adapter folder (a LoRA run
    on a target that was one); the last entry is a model folder or hub id. Checks each adapter's weights file."""
    chain = [str(folder)]
    while is_adapter_folder(chain[-1]):
        if not (Path(chain[-1]) / ADAPTER_WEIGHTS).is_file():
            found = "adapter_model.bin, a pickle" if (Path(chain[-1]) / "adapter_model.bin").exists() else "none found"
            raise LetheError(f"{chain[-1]}: cannot load model weights (no {ADAPTER_WEIGHTS}: {found}); Lethe loads "
                             "safetensors weights only")
        base = adapter_base(Path(chain[-1]))
        if len(chain) > MAX_ADAPTERS or any(Path(base).resolve() == Path(c).resolve() for c in chain):
            raise LetheError(f"{Path(chain[-1]) / ADAPTER_CONFIG}: base_model_name_or_path '{base}' leads back to "
                             f"an adapter already on the way ({' -> '.join(chain)}); edit base_model_name_or_path "
                             "to the model the adapter was trained on")
        chain.append(base)
    return chain


def put_adapters(model, chain: list[str], merge: bool = True):
    """The base ``model`` (``chain[-1]``, loaded) with the adapters of ``chain`` on it, innermost first
    (``PeftModel.from_pretrained``: the adapter frozen, weights from safetensors).

    Every adapter but the outermost is merged (``merge_and_unload``): the next one was trained on that merged
    model. ``merge`` merges the outermost too and returns a plain model, as ``train.lora_merge=true`` would have;
    its parameters are trainable again, as ``from_pretrained`` returns them, and its ``name_or_path`` is the
    adapter folder, so an adapter trained on it names that folder as its base. ``merge=False`` returns the
    ``PeftModel`` itself. Adapters that cannot merge (prompt learning) stay as they are.
    """
    adapters, base = chain[:-1], chain[-1]
    if not adapters:  # a plain model: peft is not imported (0.15-0.3 s of start-up)
        return model
    from peft import PeftModel

    for i, a in enumerate(reversed(adapters)):
        try:
            with warnings.catch_warnings():  # peft calls a property deprecated in transformers 5 (see add_lora)
                warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
                model = PeftModel.from_pretrained(model, a)
        except (OSError, ValueError, KeyError, RuntimeError, TypeError) as exc:  # another base, a damaged config
            first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
            raise LetheError(f"{a}: cannot put the adapter on {base} ({first}); base_model_name_or_path in its "
                             f"{ADAPTER_CONFIG} must name the model the adapter was trained on") from None
        except Exception as exc:  # safetensors' own error type for a damaged file
            if type(exc).__name__ != "SafetensorError":
                raise
            raise LetheError(f"{a}: damaged safetensors weights ({exc}); save the adapter again") from None
        if (merge or i < len(adapters) - 1) and hasattr(model, "merge_and_unload"):
            model = model.merge_and_unload()
            for p in model.parameters():
                p.requires_grad_(True)
            model.name_or_path = model.config.name_or_path = a
    return model
