"""What a new process reads first: the verdict summary's copy of each claim's evidence, kept in the
database, and the studies the verdict rule excludes from an index of their own.

Revision ID: 0010_start_reads
Revises: 0009_read_indexes
Create Date: 2026-12-05 12:00:00.000000

A new process read every listed pair and every study's facts before its first verdict summary:
2.6 to 2.8 s at 100,000 studies and 1,000,000 votes. db.read.summary_copy keeps each claim's copy
here, with the audit event and study facts it is valid at, so a new process starts from it and
reads only the pairs written since. Derived data: the table starts empty and fills itself.

Such a start also asks which studies the verdict rule excludes (retracted, under an expression of
concern, notices): ix_article_retraction_status lists them, but on SQLite each entry then costs a
look-up of its PMID in the article table (100 ms for 3,500 retracted studies among 100,000). A
partial index on (retraction_status, pmid) of the studies with a standing answers from the index
alone and costs an import nothing for the rest.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_start_reads"
down_revision: str | None = "0009_read_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_WITH_STANDING = "retraction_status IS NOT NULL"


def upgrade() -> None:
    op.create_table(
        "summary_copy",
        sa.Column("claim_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("layout", sa.Integer(), nullable=False),
        sa.Column("audit_id", sa.BigInteger(), nullable=False),
        sa.Column("audit_at", sa.String(length=64), nullable=False),
        sa.Column("facts", sa.Text(), nullable=False),
        sa.Column("screened_out", sa.Integer(), nullable=False),
        sa.Column("legend", sa.JSON(), nullable=False),
        sa.Column("pmids", sa.LargeBinary(), nullable=False),
        sa.Column("codes", sa.LargeBinary(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=True),
        sa.Column("tally", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("claim_id"),
        info={"derived": True},
    )
    op.create_index(
        "ix_article_retraction_pmid",
        "article",
        ["retraction_status", "pmid"],
        unique=False,
        sqlite_where=sa.text(_WITH_STANDING),
        postgresql_where=sa.text(_WITH_STANDING),
    )


def downgrade() -> None:
    op.drop_index("ix_article_retraction_pmid", table_name="article")
    op.drop_table("summary_copy")
