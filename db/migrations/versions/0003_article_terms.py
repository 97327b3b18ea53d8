"""Article terms: each study's word counts for the review queue's model; an index for its vote reads.

Revision ID: 0003_article_terms
Revises: 0002_pair_state
Create Date: 2026-11-26 17:35:31.719952

article_terms is derived data, filled by the ranking itself (db.ranking.corpus) the first time a model
needs features, so this revision only creates the empty table. ix_assessment_claim_reviewer_pmid_verdict
lets the review queue read a claim's labels and a reviewer's tags from the index alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_article_terms"
down_revision: str | None = "0002_pair_state"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "article_terms",
        sa.Column("pmid", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("terms", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("pmid"),
        info={"derived": True},
    )
    op.create_index(
        "ix_assessment_claim_reviewer_pmid_verdict",
        "assessment",
        ["claim_id", "reviewer_id", "pmid", "verdict"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_assessment_claim_reviewer_pmid_verdict", table_name="assessment")
    op.drop_table("article_terms")
