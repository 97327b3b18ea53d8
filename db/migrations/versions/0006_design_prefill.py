"""Design prefill: each article's classified design and its confidence; publication notices.

Revision ID: 0006_design_prefill
Revises: 0005_audit_chain
Create Date: 2026-12-04 17:40:00.000000

Adds the columns and fills them for every existing article with db.corpus.design.reclassify (the
classifier that ships with the package, a few milliseconds per article). Reviewers' designs live in
design_correction and are not touched: they still win over the prefill.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel import Session

revision: str = "0006_design_prefill"
down_revision: str | None = "0005_audit_chain"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD / DROP COLUMN (SQLite 3.35+): a batch copy of the table would trip the foreign keys
    # that reviewers' tables hold on article.pmid.
    op.add_column(
        "article", sa.Column("design", sa.String(length=32), server_default="other", nullable=False)
    )
    op.add_column("article", sa.Column("design_confidence", sa.Float(), server_default="0", nullable=False))
    op.add_column("article", sa.Column("design_version", sa.Integer(), server_default="0", nullable=False))
    op.add_column("article", sa.Column("is_notice", sa.Boolean(), server_default="0", nullable=False))
    op.add_column("article", sa.Column("notice_of", sa.BigInteger(), nullable=True))

    from db.corpus.design import reclassify  # the package's classifier, as of this release

    with Session(bind=op.get_bind()) as session:
        reclassify(session)
        session.flush()


def downgrade() -> None:
    for name in ("notice_of", "is_notice", "design_version", "design_confidence", "design"):
        op.drop_column("article", name)
