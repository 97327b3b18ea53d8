"""Reviewers' assessments as a CSV file (Covidence / Rayyan style): the columns and the reader."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from db.errors import InvalidInputError
from db.exports.formats import csv_unsafe
from db.review.assessment_import import AssessmentRow
from db.review.evidence_fields import EVIDENCE_FIELDS

IMPORT_COLUMNS = ("reviewer", "claim_key", "pmid", "verdict", "quote", "note")
OPTIONAL_IMPORT_COLUMNS = ("design",)
# The evidence fields (db.review.evidence_fields): a file without one of these columns leaves that
# field of an existing assessment as it is; a blank cell in a present column clears it.
EVIDENCE_COLUMNS = EVIDENCE_FIELDS


def read_assessment_csv(path: Path) -> list[AssessmentRow]:
    """Rows of an assessments CSV, each with the line it starts on.

    The file must be UTF-8 and no cell longer than the csv module's limit (131,072 characters): both
    are named with their line and the fix, never a traceback.
    """
    try:
        handle = path.open(encoding="utf-8-sig", newline="")  # utf-8-sig: Excel writes a BOM
    except OSError as exc:
        raise InvalidInputError(f"Cannot read {path} ({exc.strerror}); check the file name.") from exc
    reader = csv.reader(handle)
    try:
        with handle:
            return _rows(path, reader)
    except UnicodeDecodeError:
        raise InvalidInputError(
            f"{path} is not UTF-8 text ({_first_undecodable(path)}); save it as 'CSV UTF-8' from your "
            "spreadsheet, or convert it with `iconv -f latin1 -t utf-8`, and import it again."
        ) from None
    except csv.Error as exc:
        raise InvalidInputError(
            f"{path}: line {reader.line_num}: {exc}; a quote or note that long is not one, so check the "
            "file's quoting (an unclosed quote swallows the rows after it)."
        ) from None


def _first_undecodable(path: Path) -> str:
    """Where the file stops being UTF-8, as "line N, byte 0xAB".

    The text reader decodes ahead in large blocks, so its line count at the error says nothing.
    """
    with path.open("rb") as raw:
        for number, line in enumerate(raw, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                return f"line {number}, byte 0x{line[exc.start]:02x}"
    return "at its end"  # a multi-byte character cut off by the end of the file


def _rows(path: Path, reader: Any) -> list[AssessmentRow]:  # reader: a csv.reader
    header = next(reader, None)
    if header is None:
        raise InvalidInputError(f"{path} is empty; it needs a header row: {','.join(IMPORT_COLUMNS)},design")
    names = [name.strip().lower() for name in header]
    missing = [column for column in IMPORT_COLUMNS if column not in names]
    if missing:
        raise InvalidInputError(
            f"{path} lacks the column(s) {', '.join(missing)}; the header must name "
            f"{', '.join(IMPORT_COLUMNS)} (design and {', '.join(EVIDENCE_COLUMNS)} optional)."
        )
    rows, line = [], reader.line_num
    for cells in reader:
        start, line = line + 1, reader.line_num  # a quoted cell may span lines: report the first
        if not any(cell.strip() for cell in cells):
            continue
        # csv_unsafe: a file this project exported has an apostrophe before cells like "-2.1 points".
        values = {name: csv_unsafe(cell) for name, cell in zip(names, cells, strict=False)}
        evidence = {column: values.get(column, "") or "" for column in EVIDENCE_COLUMNS if column in names}
        rows.append(
            AssessmentRow(
                line=start,
                **{
                    column: values.get(column, "") or ""
                    for column in IMPORT_COLUMNS + OPTIONAL_IMPORT_COLUMNS
                },
                evidence=evidence or None,
            )
        )
    return rows
