"""Options and value types shared by the command groups, each defined once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, TypeVar

import click

ACTOR_ENV = "KETAMINE_EVIDENCE_USER"

F = TypeVar("F", bound=Callable[..., Any])


class PositiveInt(click.ParamType):
    name = "N"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            number = value
        else:
            try:
                number = int(value)
            except ValueError:
                self.fail(f"{value!r} is not a whole number", param, ctx)
        if number < 1:
            self.fail(f"{number} must be 1 or more", param, ctx)
        return number


class Day(click.ParamType):
    name = "DATE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> date:
        if isinstance(value, date):
            return value
        for pattern in ("%Y-%m-%d", "%Y/%m/%d"):
            try:
                return datetime.strptime(value, pattern).date()
            except ValueError:
                continue
        self.fail(f"{value!r} is not a date; write it as YYYY-MM-DD, e.g. 2024-01-31", param, ctx)


class ClockTime(click.ParamType):
    name = "HH:MM"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> time:
        if isinstance(value, time):
            return value
        try:
            return datetime.strptime(value, "%H:%M").time()
        except ValueError:
            self.fail(f"{value!r} is not a time of day; write it as HH:MM, e.g. 03:00", param, ctx)


class TermList(click.ParamType):
    """Terms separated by ';', blanks dropped."""

    name = "TERMS"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> list[str]:
        if isinstance(value, list):
            return value
        return [part.strip() for part in str(value).split(";") if part.strip()]


POSITIVE = PositiveInt()
DAY = Day()
CLOCK_TIME = ClockTime()
TERMS = TermList()


def actor_option(who: str = "the user doing this") -> Callable[[F], F]:
    """`--as NAME`, falling back on $KETAMINE_EVIDENCE_USER; `who` says whose name it wants."""
    return click.option(
        "--as", "actor", metavar="NAME", envvar=ACTOR_ENV, help=f"{who} (default: ${ACTOR_ENV})"
    )


def output_option(what: str = "write here instead of standard output") -> Callable[[F], F]:
    """`-o/--output FILE`; `-` is standard output. Commands write through `ingest.cli.output.output`."""
    return click.option(
        "-o",
        "--output",
        "output_path",
        metavar="FILE",
        type=click.Path(path_type=Path, allow_dash=True),
        help=what,
    )


def format_option(
    help: str, *, choices: Sequence[str] | None = None, default: str | None = None
) -> Callable[[F], F]:
    """`--format`; without `choices` the command checks the value (a wrong one is exit 1, not 2)."""
    return click.option(
        "--format",
        "fmt",
        metavar="FORMAT" if choices is None else None,
        type=click.Choice(list(choices)) if choices else None,
        default=default,
        help=help,
    )
