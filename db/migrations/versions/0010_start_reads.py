"""What a new process reads first: the verdict summary's copy of each claim's evidence, kept in the
database; the excluded studies and every study's facts from covering indexes.

Revision ID: 0010_start_reads
Revises: 0009_read_indexes
Create Date: 2026-12-05 12:00:00.000000

A new process read every listed pair and every study's facts before its first verdict summary:
2.6 to 2.8 s at 100,000 studies and 1,000,000 votes. db.read.summary_copy keeps each claim's copy
here, with the audit event and study facts it is valid at, so a new process starts from it and
reads only the pairs written since. Derived data: the table starts empty and fills itself.

Such a start also asks which studies the verdict rule excludes (retracted, under an expression of
concern, notices): ix_article_retraction_status lists them, but on SQLite each entry then costs a
look-up of its PMID in the article table (100 ms for 3,500 retracted studies among 100,000). An
index on (retraction_status, pmid) answers from the index alone.

Every study's facts (design, its confidence, standing, year: db.corpus.study_facts), which the
Claims page's study list and sign-off read for every study of a claim, were read by scanning the
articles themselves, abstracts and all: 0.84 s of SQLite's time at 100,000 studies. An index
holding the six columns answers in a fifth of that.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_start_reads"
down_revision: str | None = "0009_read_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# As db.models.corpus.Article declares it in this release.
_FACTS = ("pmid", "design", "design_confidence", "is_notice", "retraction_status", "pub_year")


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
    op.create_index("ix_article_retraction_pmid", "article", ["retraction_status", "pmid"], unique=False)
    op.create_index("ix_article_facts", "article", list(_FACTS), unique=False)


def downgrade() -> None:
    op.drop_index("ix_article_facts", table_name="article")
    op.drop_index("ix_article_retraction_pmid", table_name="article")
    op.drop_table("summary_copy")
