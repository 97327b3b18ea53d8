"""Every reviewer's assessment as a row (CSV or JSON lines): what import-assessments reads back."""

from __future__ import annotations

from typing import Any, TextIO

from sqlalchemy import select
from sqlmodel import Session, col

from db.exports.formats import ExportFormat, iso_time, write_rows
from db.models import Assessment, Claim, User
from db.review.assessments import evidence_of
from db.review.evidence_fields import EVIDENCE_FIELDS
from db.review.pairs import votes_visible_to
from db.vocab import StudyDesign, StudyVerdict

# The import columns first, so an exported CSV can be edited and imported again.
ASSESSMENT_COLUMNS = (
    "reviewer",
    "claim_key",
    "pmid",
    "verdict",
    "quote",
    "note",
    "design",
    *EVIDENCE_FIELDS,
    "suggested_design",
    "version",
    "id",
    "created_at",
    "updated_at",
)


def assessment_rows(session: Session, viewer: User) -> list[dict[str, Any]]:
    """Every assessment `viewer` may see: in blind mode, a reviewer's export holds others' votes only on
    the studies they judged themselves, as the dashboard shows them."""
    visible = votes_visible_to(session, viewer)
    names = {user.id: user.name for user in session.scalars(select(User))}
    keys = {claim.id: claim.key for claim in session.scalars(select(Claim))}
    query = select(Assessment).order_by(col(Assessment.claim_id), col(Assessment.pmid), col(Assessment.id))
    return [
        {
            "reviewer": names[a.reviewer_id],
            "claim_key": keys[a.claim_id],
            "pmid": a.pmid,
            "verdict": StudyVerdict(a.verdict).value,
            "quote": a.quote,
            "note": a.note,
            "design": StudyDesign(a.design).value,
            **{name: value for name, value in evidence_of(a).as_values().items() if name in EVIDENCE_FIELDS},
            "suggested_design": StudyDesign(a.suggested_design).value,
            "version": a.version,
            "id": a.id,
            "created_at": iso_time(a.created_at),
            "updated_at": iso_time(a.updated_at),
        }
        for a in session.scalars(query)
        if visible(a.claim_id, a.pmid)
    ]


def write_assessments(session: Session, fmt: ExportFormat, out: TextIO, *, viewer: User) -> int:
    rows = assessment_rows(session, viewer)
    write_rows(rows, ASSESSMENT_COLUMNS, fmt, out)
    return len(rows)
