"""Runs count the records skipped for being older than the stored revision (harvest_run.records_older).

Revision ID: 0004_records_older
Revises: 0003_article_terms
Create Date: 2026-12-04 17:50:00

An import of an older PubMed file after a newer one used to put the older revision back; now such
records are skipped and counted here.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_records_older"
down_revision: str | None = "0003_article_terms"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("harvest_run") as batch:
        batch.add_column(sa.Column("records_older", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("harvest_run") as batch:
        batch.drop_column("records_older")
