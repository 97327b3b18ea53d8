"""What every table export shares: the formats, and rows written as CSV or JSON lines."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any, TextIO

from db.errors import InvalidInputError


class ExportFormat(StrEnum):
    JSONL = "jsonl"
    CSV = "csv"
    MARKDOWN = "markdown"


def parse_format(value: str, allowed: tuple[ExportFormat, ...], what: str) -> ExportFormat:
    try:
        chosen = ExportFormat(value.strip().lower())
    except ValueError:
        chosen = None
    if chosen not in allowed:
        names = "|".join(f.value for f in allowed)
        raise InvalidInputError(f"Cannot export {what} as {value!r}; use --format {names}.")
    return chosen


# A cell a spreadsheet would read as a formula (OWASP, "CSV Injection"): =, +, -, @, tab, carriage return.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: Any) -> Any:
    """A text cell that starts like a formula, prefixed with an apostrophe so spreadsheets show it as text.

    Recoverable: a cell starting with an apostrophe had one added (cells that began with an apostrophe
    get a second), so dropping the first apostrophe of such a cell gives the original text back.
    """
    if isinstance(value, str) and value.startswith((*_FORMULA_START, "'")):
        return "'" + value
    return value


def csv_unsafe(text: str) -> str:
    """csv_safe undone: the text of a cell an export wrote, for an import reading the file back."""
    if text.startswith("'") and text[1:2] and text[1:2] in (*_FORMULA_START, "'"):
        return text[1:]
    return text


class SafeCsvWriter:
    """csv.DictWriter whose text cells cannot run as spreadsheet formulas: every CSV export writes through it."""

    def __init__(self, out: TextIO, columns: Sequence[str], **options: Any) -> None:
        options.setdefault("lineterminator", "\n")
        self._writer = csv.DictWriter(out, fieldnames=list(columns), **options)

    def writeheader(self) -> None:
        self._writer.writeheader()

    def writerow(self, row: Mapping[str, Any]) -> None:
        self._writer.writerow({key: csv_safe(value) for key, value in row.items()})

    def writerows(self, rows: Iterable[Mapping[str, Any]]) -> None:
        for row in rows:
            self.writerow(row)


def json_cell(value: Any) -> str:
    return "" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def write_rows(rows: list[dict[str, Any]], columns: tuple[str, ...], fmt: ExportFormat, out: TextIO) -> None:
    if fmt is ExportFormat.CSV:
        writer = SafeCsvWriter(out, columns)
        writer.writeheader()
        writer.writerows(rows)
    else:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")


def iso_time(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value is not None else None


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|#<>!])")


def markdown_text(value: Any) -> str:
    """Text from PubMed, reviewers or editors made inert in Markdown: its markup characters escaped
    (no link, image, HTML or table cell can come out of it) and on one line."""
    text = " ".join(str(value or "").split())
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)
