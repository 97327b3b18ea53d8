"""Where a command's output goes: standard output, or a file written whole for every `-o`."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

import click


@contextmanager
def output(path: Path | None) -> Iterator[TextIO]:
    """stdout, or `path` written whole by db.exports.writer (a temporary file renamed into place).

    A failed export leaves no half-written file behind, and a reader never sees one.
    """
    if path is None or str(path) == "-":
        yield sys.stdout
        return
    from db.exports.writer import atomic_text_file  # here: `--help` stays free of db/

    with atomic_text_file(path) as handle:
        yield handle


def say(text: str) -> None:
    """One line on standard output."""
    click.echo(text)


def warn(text: str) -> None:
    """One line on standard error: a note beside the output, not an error."""
    click.echo(text, err=True)
