"""Baseline: the schema as it stood when migrations began, plus the full-text index.

Revision ID: 0001_baseline
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from db.corpus.fulltext import install_fulltext
from db.migrations import baseline

revision: str = "0001_baseline"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    bind = op.get_bind()
    # Only what is missing: a database made before migrations keeps its tables and rows (their
    # columns were checked against the baseline before this runs; see db.migrations.upgrade).
    baseline.create_missing(bind)
    # Its own DDL (SQLite FTS5 and triggers, PostgreSQL tsvector column and GIN index); idempotent.
    install_fulltext(bind)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        bind.exec_driver_sql("DROP TABLE IF EXISTS article_fts")
        bind.exec_driver_sql("DROP VIEW IF EXISTS article_fts_source")
    baseline.drop_all(bind)
