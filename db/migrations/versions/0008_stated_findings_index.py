"""A partial index on the assessments that state evidence fields, for the verdict summary.

Revision ID: 0008_stated_findings_index
Revises: 0007_grade_evidence
Create Date: 2026-12-05 07:50:00.000000

db.review.pair_evidence reads, for every claim, the few assessments that state any evidence field
(participants, follow-up, ...). Without an index that read scanned every vote of the claims: 11 s
of the first verdict summary after a start on 1,000,000 assessments (SQLite). The index holds only
the assessments that state a field, so it stays small and costs a write nothing otherwise. The
predicate is frozen here as this release writes it (db.models.review.STATED_FINDINGS).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_stated_findings_index"
down_revision: str | None = "0007_grade_evidence"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATED = (
    "participants IS NOT NULL OR follow_up_days IS NOT NULL OR population IS NOT NULL"
    " OR intervention IS NOT NULL OR directness IS NOT NULL OR indirect_reason IS NOT NULL"
    " OR risk_of_bias IS NOT NULL"
)


def upgrade() -> None:
    op.create_index(
        "ix_assessment_stated_findings",
        "assessment",
        ["claim_id", "pmid"],
        unique=False,
        sqlite_where=sa.text(_STATED),
        postgresql_where=sa.text(_STATED),
    )


def downgrade() -> None:
    op.drop_index("ix_assessment_stated_findings", table_name="assessment")
