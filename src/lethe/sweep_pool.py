"""Where a sweep's trials run (docs/sweep.md): in the sweep's own process, in a pool of worker processes
(``sweep.workers``), or in the processes of a launch (``sweep.launch``). Each is a pool with ``submit`` and
``shutdown``; a launch's also runs its trials a round at a time (``flush``) and says how many it takes at once
(``capacity``)."""
from __future__ import annotations

import concurrent.futures
import contextlib
import multiprocessing
import os
import time

from . import dist
from .errors import LetheError


class Here:
    """``sweep.workers=1``: each trial runs at once, in this process, as a finished future."""

    def submit(self, fn, *args) -> concurrent.futures.Future:
        job: concurrent.futures.Future = concurrent.futures.Future()
        try:
            job.set_result(fn(*args))
        except Exception as exc:  # noqa: BLE001 - handed to the caller by job.result(), as a pool would
            job.set_exception(exc)
        return job

    def shutdown(self, *_, **__) -> None:
        pass


class Launch:
    """The processes of a launch as the sweep's workers. The first holds the studies and hands out each round of
    trials: with ``mode`` "trials" one to each process, run there alone (:func:`lethe.dist.alone`, on the
    process's own device); with "runs" one trial that every process runs together, as a launched run. The
    messages travel over a gloo group of the sweep's own, whose wait for the slowest trial of a round outlasts
    the launch's collective timeout."""

    def __init__(self, mode: str):
        import datetime

        import torch.distributed as td

        self.mode = mode
        self.capacity = dist.world() if mode == "trials" else 1
        self.group = td.new_group(backend="gloo", timeout=datetime.timedelta(days=30))
        self.asked: list = []  # (future, (fn, args)) asked since the last round

    def submit(self, fn, *args) -> concurrent.futures.Future:
        job: concurrent.futures.Future = concurrent.futures.Future()
        self.asked.append((job, (fn, args)))
        return job

    def flush(self) -> None:
        """One round: the trials asked for run (the first process's own among them); their futures are set."""
        asked, self.asked = self.asked, []
        if not asked:
            return
        if self.mode == "trials":
            jobs = [call for _, call in asked] + [None] * (self.capacity - len(asked))
            self._send(("trials", jobs))
            outcomes = self._gather(_attempt(jobs[0], alone=True))
            for process, ((job, _), outcome) in enumerate(zip(asked, outcomes)):
                _settle(job, outcome, process)
        else:
            ((job, call),) = asked
            self._send(("runs", call))
            outcomes = self._gather(_attempt(call))
            failed = next(((k, o) for k, o in enumerate(outcomes) if o[0] != "ok"), (0, outcomes[0]))
            _settle(job, failed[1], failed[0])
            job.process = "all"

    def lead(self, fn):
        """``fn()`` (the studies) on the first process; then the others stop following, with its error if any."""
        try:
            out = fn()
        except BaseException as exc:
            self._send(("stop", str(exc) if isinstance(exc, LetheError) else f"{type(exc).__name__}: {exc}"))
            raise
        self._send(("stop", None))
        return out

    def follow(self) -> None:
        """The other processes: run what the first hands out until it stops (raising its error)."""
        while True:
            kind, payload = self._send(None)
            if kind == "stop":
                if payload is not None:
                    raise LetheError(payload)
                return None
            self._gather(_attempt(payload[dist.rank()], alone=True) if kind == "trials" else _attempt(payload))

    def _send(self, message):
        import torch.distributed as td

        box = [message]
        td.broadcast_object_list(box, src=0, group=self.group)
        return box[0]

    def _gather(self, outcome) -> list | None:
        import torch.distributed as td

        out = [None] * dist.world() if dist.is_main() else None
        td.gather_object(outcome, out, dst=0, group=self.group)
        return out

    def shutdown(self, *_, **__) -> None:
        pass


def _attempt(call, alone: bool = False) -> tuple | None:
    """``fn(*args)`` of ``call`` (``None``: no trial for this process this round): ("ok" | "failed" | "error",
    its value or the failure's text, seconds)."""
    if call is None:
        return None
    fn, args = call
    t0 = time.perf_counter()
    try:
        with dist.alone() if alone else contextlib.nullcontext():
            return "ok", fn(*args), time.perf_counter() - t0
    except LetheError as exc:
        return "failed", str(exc), time.perf_counter() - t0
    except Exception as exc:  # noqa: BLE001 - reported to the first process, which ends the sweep with it
        return "error", f"{type(exc).__name__}: {exc}", time.perf_counter() - t0


def _settle(job: concurrent.futures.Future, outcome: tuple, process) -> None:
    status, value, seconds = outcome
    job.process, job.seconds = process, seconds
    if status == "ok":
        job.set_result(value)
    elif status == "failed":
        job.set_exception(LetheError(value))
    else:
        job.set_exception(RuntimeError(f"process {process} of the launch: {value}"))


def trial_devices(workers: int, device: str, visible: str | None, gpus: int) -> list[str | None]:
    """Each worker's ``CUDA_VISIBLE_DEVICES`` (``None``: left as it is): with ``device=auto`` or ``cuda`` and GPUs
    (``visible``: the variable's value, else ``gpus`` of them), the workers take them in turn."""
    if device not in ("auto", "cuda"):
        return [None] * workers
    ids = [v.strip() for v in visible.split(",") if v.strip()] if visible is not None else [str(i) for i in range(gpus)]
    return [ids[i % len(ids)] if ids else None for i in range(workers)]


def _start_worker(slots) -> None:
    """A worker process of the pool: its GPU (taken from ``slots``) before torch starts, no progress bars (several
    processes would draw over each other), and an end with the sweep's process (Linux: PR_SET_PDEATHSIG)."""
    gpu = slots.get()
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    os.environ["LETHE_NO_PROGRESS"] = "1"
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def trial_pool(workers: int, device: str):
    """Where trials run: this process (one worker), or a pool of ``workers`` fresh processes (spawned: a forked
    torch is unsafe)."""
    if workers == 1:
        return Here()
    gpus = 0
    if device in ("auto", "cuda") and os.environ.get("CUDA_VISIBLE_DEVICES") is None:
        import torch

        gpus = torch.cuda.device_count()
    ctx = multiprocessing.get_context("spawn")
    slots = ctx.Queue()
    for gpu in trial_devices(workers, device, os.environ.get("CUDA_VISIBLE_DEVICES"), gpus):
        slots.put(gpu)
    return concurrent.futures.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_start_worker, initargs=(slots,))
