"""Pair state: where each judged (claim, study) pair stands, kept as data and backfilled; an index
on article.updated_at, which per-process caches read the newest of on every call.

Revision ID: 0002_pair_state
Revises: 0001_baseline
Create Date: 2026-11-26 17:21:17.370822
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from db.review.pair_index import rebuild_pair_state

revision: str = "0002_pair_state"
down_revision: str | None = "0001_baseline"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    table = op.create_table(
        "pair_state",
        sa.Column("claim_id", sa.Integer(), nullable=False),
        sa.Column("pmid", sa.BigInteger(), nullable=False),
        sa.Column(
            "state",
            sa.Enum("agreed", "conflict", "resolved", name="pairstate", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column(
            "verdict",
            sa.Enum(
                "supported",
                "mixed",
                "unsupported",
                "not_relevant",
                name="studyverdict",
                native_enum=False,
                length=32,
            ),
            nullable=True,
        ),
        sa.Column("votes", sa.Integer(), nullable=False),
        sa.Column("resolved_once", sa.Boolean(), nullable=False),
        sa.Column("screened_out", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["claim_id"], ["claim.id"]),
        sa.ForeignKeyConstraint(["pmid"], ["article.pmid"]),
        sa.PrimaryKeyConstraint("claim_id", "pmid"),
    )
    # Backfill before indexing: one index build instead of a million index updates. This table's
    # columns are passed in, so a later change to the model cannot change what this revision writes.
    rebuild_pair_state(op.get_bind(), table)
    op.create_index(
        "ix_pair_state_claim_scope",
        "pair_state",
        ["claim_id", "screened_out", "pmid", "state", "verdict", "resolved_once"],
        unique=False,
    )
    op.create_index("ix_pair_state_pmid", "pair_state", ["pmid"], unique=False)
    op.create_index("ix_article_updated_at", "article", ["updated_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_article_updated_at", table_name="article")
    op.drop_index("ix_pair_state_pmid", table_name="pair_state")
    op.drop_index("ix_pair_state_claim_scope", table_name="pair_state")
    op.drop_table("pair_state")
