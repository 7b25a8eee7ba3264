"""User-facing errors.

A :class:`LetheError` is a mistake the user can fix (bad file, unknown name, impossible value).
The CLI prints its one-line message and exits with status 2, without a traceback.
"""
from __future__ import annotations


class LetheError(Exception):
    """An error caused by user input; the message names the file/field and the fix."""


def where(path, line: int | None = None, field: str | None = None) -> str:
    """Format a location prefix like ``data.jsonl:12: field 'answer'``."""
    out = str(path)
    if line is not None:
        out += f":{line}"
    if field is not None:
        out += f": field '{field}'"
    return out
