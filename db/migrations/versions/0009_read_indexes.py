"""Indexes for the dashboard's reads at 100,000 studies: the assessments that state evidence
fields, and each claim's open conflicts and single-vote pairs.

Revision ID: 0009_read_indexes
Revises: 0008_design_prefill_v2
Create Date: 2026-12-05 07:50:00.000000

db.review.pair_evidence reads, for every claim, the few assessments that state any evidence field
(participants, follow-up, ...). Without an index that read scanned every vote of the claims: 11 s
of the first verdict summary after a start on 1,000,000 assessments (SQLite). The index holds only
the assessments that state a field, so it stays small and costs a write nothing otherwise. The
predicate is frozen here as this release writes it (db.models.review.STATED_FINDINGS).

Every summary read again after a write counts each claim's open conflicts and pairs with one vote
(db.read.standing.pair_tallies): a grouped read of all 850,000 pairs, 0.5 s on SQLite. An index on
(claim_id, state) and one on (claim_id, votes) make each count an index range.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_read_indexes"
down_revision: str | None = "0008_design_prefill_v2"
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
    op.create_index("ix_pair_state_claim_state", "pair_state", ["claim_id", "state"], unique=False)
    op.create_index("ix_pair_state_claim_votes", "pair_state", ["claim_id", "votes"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_pair_state_claim_votes", table_name="pair_state")
    op.drop_index("ix_pair_state_claim_state", table_name="pair_state")
    op.drop_index("ix_assessment_stated_findings", table_name="assessment")
