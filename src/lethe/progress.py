"""Progress bars for long phases (rich), silent when disabled or not on a terminal."""
from __future__ import annotations

import contextlib
import os
import sys

_ENABLED = True


def set_enabled(flag: bool) -> None:
    global _ENABLED
    _ENABLED = flag


class _Bar:
    """One task of a rich ``Progress``; silent without one."""

    def __init__(self, progress=None, task=None):
        self._p, self._t = progress, task

    def advance(self, n: int = 1) -> None:
        if self._p is not None:
            self._p.advance(self._t, n)

    def update(self, **fields: object) -> None:
        if self._p is not None:
            self._p.update(self._t, **fields)


@contextlib.contextmanager
def bar(description: str, total: int):
    """``with bar("training", n) as b: b.advance()``; a rich progress bar on stderr when enabled."""
    if not _ENABLED or os.environ.get("LETHE_NO_PROGRESS") or not sys.stderr.isatty():
        yield _Bar()
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.fields[info]}"), console=Console(stderr=True), transient=False) as p:
        yield _Bar(p, p.add_task(description, total=total, info=""))
