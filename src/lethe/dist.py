"""The processes of one launch (``torchrun``, ``accelerate launch``): docs/scale.md.

Every process runs the same code. Training splits each optimizer step's sequences across the processes
and sums the gradients once a step; evaluation splits the batches and gathers the results in item order;
the first process alone writes files. One process (no launcher) takes none of these paths.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from contextvars import ContextVar

BUCKET = 25_000_000  # gradient elements summed in one all-reduce (DDP's default bucket is 25 MB)


def launched() -> int:
    """The number of processes the launcher started (``WORLD_SIZE``; 1 without a launcher)."""
    n = os.environ.get("WORLD_SIZE", "1")
    return int(n) if n.isdigit() and int(n) > 0 else 1


def init() -> None:
    """Join the launch's process group through accelerate (gloo on CPUs, NCCL on GPUs)."""
    if launched() > 1 and not _group():
        import torch
        from accelerate import PartialState

        PartialState(cpu=not torch.cuda.is_available())


def _group() -> bool:
    import torch.distributed as td

    return td.is_available() and td.is_initialized()


def world() -> int:
    if launched() == 1 or not _group() or _ALONE.get():
        return 1
    import torch.distributed as td

    return td.get_world_size()


def rank() -> int:
    if world() == 1:
        return 0
    import torch.distributed as td

    return td.get_rank()


def is_main() -> bool:
    return rank() == 0


def broadcast(obj):
    """The first process's ``obj``, on every process."""
    if world() == 1:
        return obj
    import torch.distributed as td

    box = [obj]
    td.broadcast_object_list(box, src=0)
    return box[0]


def on_main(fn, *args):
    """``fn(*args)`` on the first process alone; the others wait for it and raise its error too (one line),
    so every process stays at the same step. Returns ``fn``'s value there, None elsewhere."""
    if world() == 1:
        return fn(*args)
    from .errors import LetheError

    out, error, text = None, None, None
    if is_main():
        try:
            out = fn(*args)
        except BaseException as exc:
            error, text = exc, str(exc) if isinstance(exc, LetheError) else f"{type(exc).__name__}: {exc}"
    text = broadcast(text)
    if error is not None:
        raise error
    if text is not None:
        raise LetheError(text)
    return out


def share_rows(done: list[int], *columns) -> None:
    """Fill each column (a list or array indexed by item) with the rows the other processes computed;
    ``done``: the items this process computed (each item is computed by one process)."""
    if world() == 1:
        return
    import torch.distributed as td

    parts: list = [None] * world()
    td.all_gather_object(parts, {i: tuple(c[i] for c in columns) for i in done})
    for part in parts:
        for i, row in part.items():
            for c, v in zip(columns, row):
                c[i] = v


_ALONE: ContextVar[bool] = ContextVar("lethe_alone", default=False)


@contextmanager
def alone():
    """Within the block this process of a launch works as if it were the only one: it splits nothing, sums
    nothing with the others and writes its own files (a sweep's trial of its own, ``sweep.launch=trials``)."""
    token = _ALONE.set(True)
    try:
        yield
    finally:
        _ALONE.reset(token)


def mine(n: int) -> list[int]:
    """The batches (of ``n``, numbered as one process numbers them) this process evaluates."""
    return list(range(rank(), n, world()))


_LOCKSTEP: ContextVar[bool] = ContextVar("lethe_lockstep", default=False)


@contextmanager
def lockstep():
    """Within the block the evaluated model is sharded across the processes (``eval.sharding``): each of its
    passes gathers the weights from every process, so every process must run as many passes
    (:func:`passes`) and generation steps (``synced_gpus``) as the others."""
    token = _LOCKSTEP.set(world() > 1)
    try:
        yield
    finally:
        _LOCKSTEP.reset(token)


def in_lockstep() -> bool:
    return _LOCKSTEP.get()


def passes(n: int) -> list[tuple[int, bool]]:
    """``(batch, kept)`` for the passes this process runs over ``n`` batches: its share (:func:`mine`), kept;
    in :func:`lockstep`, then its last batch again (batch 0 without one), not kept, until it runs as many
    passes as the process with the most."""
    own = mine(n)
    most = -(-n // world()) if in_lockstep() else len(own)
    return [(b, True) for b in own] + [(own[-1] if own else 0, False)] * (most - len(own))


def step_share(items: list[int], paired: list[int], micro: int) -> list[tuple[list[int], list[int]]]:
    """This process's micro-batches of one optimizer step: one process cuts ``items`` into micro-batches
    of ``micro``; with N processes, process r takes micro-batches r, r + N, ... (the same micro-batches,
    so the summed gradient is one process's), or, with fewer micro-batches than processes, one N-th of
    the step (possibly none)."""
    cuts = [(items[m : m + micro], paired[m : m + micro]) for m in range(0, len(items), micro)]
    n, r = world(), rank()
    if n == 1:
        return cuts
    if len(cuts) >= n:
        return cuts[r::n]
    size = -(-len(items) // n)
    share = (items[r * size : (r + 1) * size], paired[r * size : (r + 1) * size])
    return [share] if share[0] else []


def launch_sharding() -> str:
    """What the accelerate config of ``accelerate launch --config_file`` asks for: "fsdp", "deepspeed" or ""."""
    for name in ("fsdp", "deepspeed"):
        if os.environ.get(f"ACCELERATE_USE_{name.upper()}", "").lower() in ("1", "true"):
            return name
    return ""


def launch_mixed_precision_note() -> str:
    """One line when the launch asks accelerate for mixed precision (``accelerate launch --mixed_precision``,
    or its config), which Lethe does not apply (:func:`lethe.loop.accelerator`); "" otherwise."""
    asked = os.environ.get("ACCELERATE_MIXED_PRECISION", "no").lower()
    if asked in ("", "no"):
        return ""
    return (f"the launch's mixed precision ({asked}, accelerate's) is not applied: Lethe's precision comes from "
            "model_dtype (bf16 weights on a GPU, with float32 master weights) and train.precision / eval.precision")


def most_micro_batches(n_items: int, micro: int) -> int:
    """The largest number of micro-batches :func:`step_share` gives one process for a step of ``n_items``."""
    cuts = -(-n_items // micro)
    return -(-cuts // world()) if cuts >= world() else 1


def sum_tensors(tensors: list) -> None:
    """Sum ``tensors`` (in place) over the processes, grouped by dtype and device in buckets."""
    if world() == 1 or not tensors:
        return
    import torch
    import torch.distributed as td

    groups: dict = {}
    for t in tensors:
        groups.setdefault((t.dtype, t.device), []).append(t)
    for group in groups.values():
        start = 0
        while start < len(group):
            end, size = start, 0
            while end < len(group) and (size == 0 or size + group[end].numel() <= BUCKET):
                size += group[end].numel()
                end += 1
            flat = torch.cat([t.reshape(-1) for t in group[start:end]])
            if td.get_backend() == "nccl" and flat.device.type == "cpu":  # NCCL sums GPU tensors only
                flat = flat.to(torch.device("cuda", torch.cuda.current_device()))
            td.all_reduce(flat)
            flat = flat.to(group[start].device)
            offset = 0
            for t in group[start:end]:
                t.copy_(flat[offset : offset + t.numel()].view_as(t))
                offset += t.numel()
            start = end


def sum_gradients(params: list) -> None:
    """Sum the gradients of ``params`` over the processes (a process that trained on nothing adds 0)."""
    if world() == 1:
        return
    import torch

    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    sum_tensors([p.grad for p in params])


def sum_numbers(values: list[float]) -> list[float]:
    """``values`` summed element-wise over the processes (float64)."""
    if world() == 1:
        return list(values)
    import torch

    t = torch.tensor(values, dtype=torch.float64)
    sum_tensors([t])
    return t.tolist()
