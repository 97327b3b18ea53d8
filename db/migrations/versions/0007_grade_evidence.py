"""GRADE's raw material: evidence fields per assessment, each claim's time frame and scope, the
editor's published rating on sign-off.

Revision ID: 0007_grade_evidence
Revises: 0006_design_prefill
Create Date: 2026-12-04 21:00:00.000000

Every new column is optional: existing assessments keep their verdicts and read as "not stated";
existing sign-offs have no rating (they were made before the rating scale). The seed claims that
still have no time frame in days or scope get the ones the package ships (db/seed/claims.json);
claims editors wrote are left alone.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_grade_evidence"
down_revision: str | None = "0006_design_prefill"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _assessment_columns() -> tuple[sa.Column[object], ...]:
    return (
        sa.Column("participants", sa.Integer(), nullable=True),
        sa.Column("follow_up", sa.Text(), nullable=True),
        sa.Column("follow_up_days", sa.Float(), nullable=True),
        sa.Column("effect", sa.Text(), nullable=True),
        sa.Column("population", sa.String(length=32), nullable=True),
        sa.Column("intervention", sa.String(length=32), nullable=True),
        sa.Column("directness", sa.String(length=32), nullable=True),
        sa.Column("indirect_reason", sa.Text(), nullable=True),
        sa.Column("risk_of_bias", sa.String(length=32), nullable=True),
    )


def _claim_columns() -> tuple[sa.Column[object], ...]:
    return (
        sa.Column("follow_up_min_days", sa.Float(), nullable=True),
        sa.Column("follow_up_max_days", sa.Float(), nullable=True),
        sa.Column("populations", sa.JSON(), server_default="[]", nullable=False),
        sa.Column("interventions", sa.JSON(), server_default="[]", nullable=False),
    )


def upgrade() -> None:
    # Plain ADD COLUMN (no batch copy): the tables hold foreign keys other tables rely on.
    for column in _assessment_columns():
        op.add_column("assessment", column)
    for column in _claim_columns():
        op.add_column("claim", column)
    op.add_column("claim_signoff", sa.Column("rating", sa.String(length=32), nullable=True))
    _scope_seed_claims()


def _scope_seed_claims() -> None:
    from db.review.sources import seed_content  # the package's seed, as of this release

    claim = sa.table(
        "claim",
        sa.column("key", sa.String),
        sa.column("follow_up_min_days", sa.Float),
        sa.column("follow_up_max_days", sa.Float),
        sa.column("populations", sa.JSON),
        sa.column("interventions", sa.JSON),
    )
    connection = op.get_bind()
    for seed in seed_content()["claims"]:
        connection.execute(
            sa.update(claim)
            .where(
                claim.c.key == seed["key"],
                claim.c.follow_up_min_days.is_(None),
                claim.c.follow_up_max_days.is_(None),
                sa.cast(claim.c.populations, sa.Text) == json.dumps([]),
                sa.cast(claim.c.interventions, sa.Text) == json.dumps([]),
            )
            .values(
                follow_up_min_days=seed.get("follow_up_min_days"),
                follow_up_max_days=seed.get("follow_up_max_days"),
                populations=seed.get("populations", []),
                interventions=seed.get("interventions", []),
            )
        )


def downgrade() -> None:
    op.drop_column("claim_signoff", "rating")
    for column in reversed(_claim_columns()):
        op.drop_column("claim", column.name)
    for column in reversed(_assessment_columns()):
        op.drop_column("assessment", column.name)
