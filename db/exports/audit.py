"""The audit trail as rows (CSV or JSON lines), oldest first."""

from __future__ import annotations

from datetime import datetime
from typing import TextIO

from sqlmodel import Session

from db.exports.formats import ExportFormat, iso_time, json_cell, write_rows
from db.models import User
from db.review.audit import audit_events
from db.review.pairs import votes_visible_to

AUDIT_COLUMNS = (
    "id",
    "at",
    "actor",
    "action",
    "entity",
    "entity_id",
    "claim_id",
    "pmid",
    "before",
    "after",
    "reason",
    "source",
)


def write_audit(
    session: Session, fmt: ExportFormat, out: TextIO, since: datetime | None = None, *, viewer: User
) -> int:
    """The trail as `viewer` may see it: in blind mode a reviewer's export leaves out the events of
    pairs they have not judged (their before and after would show others' votes)."""
    visible = votes_visible_to(session, viewer)
    rows = [
        {
            "id": e.id,
            "at": iso_time(e.at),
            "actor": e.actor_name,
            "action": str(e.action),
            "entity": e.entity,
            "entity_id": e.entity_id,
            "claim_id": e.claim_id,
            "pmid": e.pmid,
            "before": e.before,
            "after": e.after,
            "reason": e.reason,
            "source": e.source,
        }
        for e in audit_events(session, since)
        if visible(e.claim_id, e.pmid)
    ]
    if fmt is ExportFormat.CSV:
        rows = [dict(row, before=json_cell(row["before"]), after=json_cell(row["after"])) for row in rows]
    write_rows(rows, AUDIT_COLUMNS, fmt, out)
    return len(rows)
