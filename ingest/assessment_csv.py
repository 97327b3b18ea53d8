"""Reviewers' assessments as a CSV file (Covidence / Rayyan style): the columns and the reader."""

from __future__ import annotations

import csv
from pathlib import Path

from db.errors import InvalidInputError
from db.review.assessments import AssessmentRow

IMPORT_COLUMNS = ("reviewer", "claim_key", "pmid", "verdict", "quote", "note")
OPTIONAL_IMPORT_COLUMNS = ("design",)


def read_assessment_csv(path: Path) -> list[AssessmentRow]:
    """Rows of an assessments CSV, each with the line it starts on."""
    try:
        handle = path.open(encoding="utf-8-sig", newline="")  # utf-8-sig: Excel writes a BOM
    except OSError as exc:
        raise InvalidInputError(f"Cannot read {path} ({exc.strerror}); check the file name.") from exc
    with handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise InvalidInputError(
                f"{path} is empty; it needs a header row: {','.join(IMPORT_COLUMNS)},design"
            )
        names = [name.strip().lower() for name in header]
        missing = [column for column in IMPORT_COLUMNS if column not in names]
        if missing:
            raise InvalidInputError(
                f"{path} lacks the column(s) {', '.join(missing)}; the header must name "
                f"{', '.join(IMPORT_COLUMNS)} (design optional)."
            )
        rows, line = [], reader.line_num
        for cells in reader:
            start, line = line + 1, reader.line_num  # a quoted cell may span lines: report the first
            if not any(cell.strip() for cell in cells):
                continue
            values = dict(zip(names, cells, strict=False))
            rows.append(
                AssessmentRow(
                    line=start,
                    **{
                        column: values.get(column, "") or ""
                        for column in IMPORT_COLUMNS + OPTIONAL_IMPORT_COLUMNS
                    },
                )
            )
        return rows
