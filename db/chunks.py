"""Batches of bound parameters: one statement's `IN (...)` list stays under SQLite's limit.

SQLite builds before 3.32 refuse a statement with more than 999 bound parameters; every long
`IN (...)` list in db/ is sent in slices of `chunked`, so no caller needs to know the number.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

_T = TypeVar("_T")

# Under SQLITE_MAX_VARIABLE_NUMBER (999) on old builds, with room for a statement's other parameters.
MAX_PARAMETERS = 900


def chunked(values: Sequence[_T], params_each: int = 1) -> Iterator[list[_T]]:
    """`values` in slices that bind at most MAX_PARAMETERS parameters; `params_each`: parameters one
    value binds (2 for a (claim id, PMID) pair in a tuple IN)."""
    size = MAX_PARAMETERS // params_each
    for start in range(0, len(values), size):
        yield list(values[start : start + size])
