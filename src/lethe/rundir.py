"""The run folder: claimed at once, written as results arrive, never outside ``output``.

A run builds ``<output>/.<name>.partial`` and renames it to ``<output>/<name>`` when it ends; the name
is one safe path component (:func:`check_name`), claimed with an ``O_EXCL`` lock holding the owner's
host and pid (a dead process's lock is taken over); ``overwrite=true`` replaces only a Lethe run folder.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import socket
import time
from pathlib import Path

from . import dist
from .adapters import adapter_chain, is_adapter_folder
from .errors import LetheError

RESULTS = "results.json"
MARKERS = ("summary.json", "results.json", "config.yaml")  # files that make a folder a Lethe run folder


def check_name(value: str, what: str = "name") -> str:
    """``value`` if it is one safe path component, else a one-line error naming ``what``."""
    text = str(value)
    bad = None
    if not text.strip():
        bad = "is empty"
    elif text in (".", ".."):
        bad = f"is '{text}'"
    elif "/" in text or "\\" in text or os.path.isabs(text):
        bad = "contains a path separator"
    elif any(ord(c) < 32 or ord(c) == 127 for c in text):
        bad = "contains a control character"
    elif text.startswith("."):
        bad = "starts with '.' (hidden names are kept for unfinished runs)"
    elif len(text.encode("utf-8")) > 200:
        bad = "is longer than 200 bytes"
    if bad:
        raise LetheError(f"{what} {text!r} {bad}; give a plain name of letters, digits, '-', '_', '+' or '.'")
    return text


def _alive(owner: dict) -> bool:
    """Whether the process that wrote a lock still runs (always True for another host: we cannot see it)."""
    if owner.get("host") != socket.gethostname():
        return True
    pid = owner.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    started = owner.get("started_ticks")
    return started is None or started == _start_ticks(pid)  # a recycled pid is another process


def _start_ticks(pid: int):
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _read_owner(lock: Path) -> dict:
    """The owner a lock file names (``{}``: none, or unreadable)."""
    try:
        return json.loads(lock.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _os_error(path: Path, exc: OSError, doing: str) -> LetheError:
    why = {errno.ENOSPC: "the disk is full", errno.EROFS: "the file system is read-only",
           errno.EACCES: "permission denied", errno.EPERM: "permission denied",
           errno.ENOTDIR: "a part of the path is a file"}.get(exc.errno, exc.strerror or str(exc))
    return LetheError(f"{path}: cannot {doing}: {why}")


class RunFolder:
    """One claimed run: ``partial`` is written during the run, ``final`` is where it ends up."""

    def __init__(self, output: str | Path, name: str):
        self.output = Path(output)
        self.name = check_name(name, "run name")
        self.final = self.output / self.name
        self.partial = self.output / f".{self.name}.partial"
        self.lock = self.output / f".{self.name}.lock"
        self.resumed = False
        self._held = False
        self._made_output = False  # claim made the output folder: an empty one goes again with the run

    # -- claiming ------------------------------------------------------------------------------

    def claim(self, overwrite: bool = False, resume: bool = False, log=print) -> "RunFolder":
        """Take the name, or stop with a one-line error (the CLI's exit 2) before any model work. Launched as
        several processes, the first claims the folder for all of them."""
        dist.on_main(self._claim, overwrite, resume, log)
        self.resumed = dist.broadcast(self.resumed)
        return self

    def _claim(self, overwrite: bool, resume: bool, log) -> None:
        if self.output.exists() and not self.output.is_dir():
            raise LetheError(f"output {self.output} is a file, not a folder; give output=<folder>")
        self._made_output = not self.output.exists()
        try:
            self.output.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _os_error(self.output, exc, "create the output folder") from None
        self._take_lock()
        try:
            self._prepare(overwrite, resume, log)
        except BaseException:
            self.release()
            raise

    def _take_lock(self) -> None:
        owner = {"host": socket.gethostname(), "pid": os.getpid(), "started_ticks": _start_ticks(os.getpid()),
                 "since": time.strftime("%Y-%m-%dT%H:%M:%S")}
        for attempt in (1, 2):
            try:
                fd = os.open(self.lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                held = _read_owner(self.lock)
                if attempt == 1 and not _alive(held):
                    self.lock.unlink(missing_ok=True)  # its process is gone: a killed run's lock
                    continue
                raise LetheError(f"run '{self.name}' is being written by another process (pid {held.get('pid')} on "
                                 f"{held.get('host')}, since {held.get('since')}); choose another name=... or wait "
                                 f"(if no such process runs, delete {self.lock})") from None
            except OSError as exc:
                raise _os_error(self.output, exc, "write in the output folder") from None
            with os.fdopen(fd, "w") as f:
                json.dump(owner, f)
            self._held = True
            return

    def _prepare(self, overwrite: bool, resume: bool, log) -> None:
        finished = self.final.exists()
        if finished and not self.final.is_dir():
            raise LetheError(f"{self.final} exists and is a file; choose another name=...")
        if finished and not is_run_folder(self.final):
            raise LetheError(f"{self.final} exists and is not a Lethe run folder; choose another name=... "
                             "(overwrite=true replaces only run folders)")
        if resume:
            if self.partial.is_dir():
                self.resumed = True
                log(f"resuming the unfinished run in {self.partial}")
            elif finished:
                os.replace(self.final, self.partial)  # retried in place; renamed back at the end
                self.resumed = True
                log(f"resuming {self.final}: finished models are kept, failed ones are run again")
            else:
                raise LetheError(f"nothing to resume: neither {self.final} nor {self.partial} exists")
            return
        if finished and not overwrite:
            raise LetheError(f"{self.final}: output folder exists (a finished run); choose another name=..., resume it "
                             f"(lethe run --resume {self.final}) or pass overwrite=true")
        if self.partial.exists():
            if not overwrite:
                raise LetheError(f"{self.partial} holds an unfinished run of that name (its process is gone); continue "
                                 f"it with lethe run --resume {self.final}, or start again with overwrite=true")
            log(f"removing the unfinished run {self.partial} (overwrite=true)")
            shutil.rmtree(self.partial)
        try:
            self.partial.mkdir()
        except OSError as exc:
            raise _os_error(self.partial, exc, "create the run folder") from None

    def release(self) -> None:
        if self._held:
            self.lock.unlink(missing_ok=True)
            self._held = False

    # -- writing -------------------------------------------------------------------------------

    def check_space(self, model: str | Path, copies: int) -> None:
        """One line when the output's file system has less free space than ``copies`` saved copies of the
        local model folder ``model`` (+ 5 %)."""
        needed_bytes = copies * folder_bytes(model) if copies else 0
        free = shutil.disk_usage(self.partial).free
        if needed_bytes and free < needed_bytes * 1.05:
            raise LetheError(f"{self.output}: {free / 1e9:.2f} GB free, but {copies} saved models need about "
                             f"{needed_bytes / 1e9:.2f} GB; free space or set output=... elsewhere")

    def write_text(self, name: str, text: str) -> Path:
        """``partial/name`` replaced atomically; a full or read-only disk is one line, and the old file stays."""
        from .benchmarks.base import atomic_write_text

        path = self.partial / name
        try:
            atomic_write_text(path, text)
        except OSError as exc:
            raise _os_error(path, exc, "write") from None
        return path

    def read_results(self) -> dict | None:
        path = self.partial / RESULTS
        if not path.exists():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            raise LetheError(f"{path} is damaged (not valid JSON); the run cannot be resumed, start it again "
                             "with overwrite=true") from None

    def discard_if_empty(self, log=print) -> None:
        """After a failure: a folder without any model's results holds nothing to keep and goes; one with
        results stays for ``--resume`` (said in one line)."""
        if not self.partial.is_dir() or not self._held:
            return
        if (self.partial / RESULTS).exists() or self.resumed:
            log(f"the results so far are kept in {self.partial}: lethe run --resume {self.final} continues the run")
            return
        shutil.rmtree(self.partial, ignore_errors=True)
        if self._made_output:
            self.release()
            with contextlib.suppress(OSError):
                self.output.rmdir()  # made by this run and left empty

    def finish(self) -> Path:
        """Rename the finished run into place (replacing an older run of the same name) and let the name go."""
        dist.on_main(self._finish)
        return self.final

    def _finish(self) -> None:
        if self.final.exists():
            shutil.rmtree(self.final)
        os.replace(self.partial, self.final)
        self.release()


def is_run_folder(path: Path) -> bool:
    return path.is_dir() and any((path / m).is_file() for m in MARKERS)


def folder_bytes(path: str | Path) -> int:
    """Bytes of the files under a local folder (0 for a hub id); for a LoRA adapter folder, those of its whole
    chain down to the base model: it loads merged, and an unlearned copy is saved whole (unless it is a new adapter)."""
    if not str(path):  # no model given (the built-in one): not the working directory
        return 0
    folders = adapter_chain(path) if is_adapter_folder(path) else [path]
    return sum(f.stat().st_size for p in map(Path, folders) if p.is_dir() for f in p.rglob("*") if f.is_file())


def stale_runs(output: str | Path) -> list[Path]:
    """Unfinished runs in ``output`` whose process is gone (kept: ``--resume`` continues them)."""
    out = Path(output)
    if not out.is_dir():
        return []
    owners = {p: _read_owner(out / (p.name[: -len(".partial")] + ".lock")) for p in sorted(out.glob(".*.partial"))}
    return [p for p, owner in owners.items() if not owner or not _alive(owner)]
