"""What every table export shares: the formats, and rows written as CSV or JSON lines."""

from __future__ import annotations

import csv
import json
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


def json_cell(value: Any) -> str:
    return "" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def write_rows(rows: list[dict[str, Any]], columns: tuple[str, ...], fmt: ExportFormat, out: TextIO) -> None:
    if fmt is ExportFormat.CSV:
        writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    else:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")


def iso_time(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value is not None else None
