"""The audit trail's hash chain: audit_chain seals every audit event; existing events are sealed in order.

Revision ID: 0005_audit_chain
Revises: 0004_records_older
Create Date: 2026-12-04 17:55:00

See db.review.audit_chain. Events recorded before this revision are sealed here in id order, so
`audit verify` vouches for them from now on (not for what happened to them before).
"""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace

import sqlalchemy as sa
from alembic import op

from db.review.audit_chain import event_digest, link_hash

revision: str = "0005_audit_chain"
down_revision: str | None = "0004_records_older"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    chain = op.create_table(
        "audit_chain",
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("event_id"),
    )
    events = sa.table(
        "audit_event",
        *(
            sa.column(name)
            for name in (
                "id",
                "at",
                "actor_id",
                "actor_name",
                "action",
                "entity",
                "entity_id",
                "claim_id",
                "pmid",
                "before",
                "after",
                "reason",
                "source",
            )
        ),
    )
    connection = op.get_bind()
    head: str | None = None
    links = []
    for row in connection.execute(sa.select(events).order_by(events.c.id)):
        values = dict(row._mapping)
        values.update(before=_json(values["before"]), after=_json(values["after"]))
        head = link_hash(head, event_digest(SimpleNamespace(**values)))
        links.append({"event_id": row.id, "hash": head})
    if links:
        op.bulk_insert(chain, links)


def _json(value: object) -> object:
    # Read through a bare table, JSON columns arrive as text on SQLite; the digest wants the values.
    import orjson

    return orjson.loads(value) if isinstance(value, str | bytes) else value


def downgrade() -> None:
    op.drop_table("audit_chain")
