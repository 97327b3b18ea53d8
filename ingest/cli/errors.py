"""Every error the command line reports, and how: one line on stderr, `error: ...`, and an exit code.

Usage errors (a mistyped command line) exit 2; errors from the work (a bad file, the database, NCBI,
a review rule) exit 1. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from typing import NamedTuple

import click

USAGE_EXIT = 2
ERROR_EXIT = 1


class Report(NamedTuple):
    """What to print on stderr and the exit code."""

    text: str
    exit_code: int


def explain(exc: BaseException) -> Report | None:
    """The report for a known error, or None for a bug."""
    if isinstance(exc, click.exceptions.NoArgsIsHelpError):
        return Report(exc.format_message(), USAGE_EXIT)  # the help itself, nothing was asked
    if isinstance(exc, click.UsageError):
        message = first_line(exc.format_message(), exc)
        if exc.ctx is not None:
            message = f"{message.rstrip('.')} (see '{exc.ctx.command_path} --help')."
        return Report(f"error: {message}", USAGE_EXIT)
    if isinstance(exc, click.ClickException):
        return Report(f"error: {first_line(exc.format_message(), exc)}", exc.exit_code)
    explained = _explain_work_error(exc)
    return Report(explained, ERROR_EXIT) if explained is not None else None


def _explain_work_error(exc: BaseException) -> str | None:
    # Imported here, when something failed: the modules are loaded by then, and `--help` stays cheap.
    from sqlalchemy.exc import OperationalError, SQLAlchemyError

    from db.engine import describe_operational_error
    from db.errors import DatabaseError, ImportRejected, ReviewError
    from db.settings import load_settings
    from ingest.eutils import ConfigurationError
    from ingest.eutils_answers import EutilsError
    from ingest.pubmed_xml import PubmedFormatError

    if isinstance(exc, MemoryError):
        return (
            "error: ran out of memory; free some (close other programs) or, for an import, use a smaller "
            "--batch-size, then run the command again."
        )
    if isinstance(exc, ImportRejected):
        return f"error: {exc}"  # every bad row, one per line: one line would hide all but the first
    # Errors whose message is already an explanation for people (ValueError: a bad value or file).
    if isinstance(
        exc,
        ReviewError
        | PubmedFormatError
        | EutilsError
        | ConfigurationError
        | DatabaseError
        | ValueError
        | FileNotFoundError
        | PermissionError,
    ):
        return f"error: {first_line(str(exc), exc)}"
    if isinstance(exc, OperationalError):
        return f"error: {describe_operational_error(load_settings().database_url, exc)}"
    if isinstance(exc, SQLAlchemyError):
        return f"error: database error: {first_line(str(exc), exc)}"
    return None


def first_line(message: str, exc: BaseException) -> str:
    """The first line of an error's message (SQL and details after it are for developers)."""
    lines = message.strip().splitlines()
    return lines[0] if lines else type(exc).__name__
