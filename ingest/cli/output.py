"""Where a command's output goes: standard output, or a file written whole for every `-o`."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

import click


@contextmanager
def output(path: Path | None) -> Iterator[TextIO]:
    """stdout, or `path` written through a temporary file beside it and renamed into place.

    A failed export leaves no half-written file behind, and a reader never sees one.
    """
    if path is None or str(path) == "-":
        yield sys.stdout
        return
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with partial.open("w", encoding="utf-8", newline="") as handle:
            yield handle
        partial.replace(path)
    except OSError as exc:
        raise click.ClickException(
            f"Cannot write {path} ({exc.strerror}); choose a writable path with -o."
        ) from exc
    finally:
        partial.unlink(missing_ok=True)


def say(text: str) -> None:
    """One line on standard output."""
    click.echo(text)


def warn(text: str) -> None:
    """One line on standard error: a note beside the output, not an error."""
    click.echo(text, err=True)
