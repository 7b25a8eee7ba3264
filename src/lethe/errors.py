"""User-facing errors.

A :class:`LetheError` is a mistake the user can fix (bad file, unknown name, impossible value).
The CLI prints its one-line message and exits with status 2, without a traceback.
"""
from __future__ import annotations


class LetheError(Exception):
    """An error caused by user input; the message names the file/field and the fix."""


def did_you_mean(name: str, known, prefix: str = "") -> str:
    """``"; did you mean '<prefix><closest>'?"`` for the closest of ``known`` to ``name``, or ""."""
    import difflib

    close = difflib.get_close_matches(name, list(known), n=1)
    return f"; did you mean '{prefix}{close[0]}'?" if close else ""


def where(path, line: int | None = None, field: str | None = None) -> str:
    """Format a location prefix like ``data.jsonl:12: field 'answer'``."""
    return str(path) + (f":{line}" if line is not None else "") + (f": field '{field}'" if field is not None else "")
