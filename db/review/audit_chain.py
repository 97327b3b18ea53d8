"""The audit trail as a hash chain: a changed, deleted or slipped-in audit event is found.

The database's triggers (db.review.audit_guard) refuse UPDATE, DELETE and TRUNCATE of the trail, but
whoever owns the tables can switch triggers off. So each event is also sealed: at commit, every new
event gets a link in `audit_chain` holding SHA-256(previous link's hash + the event's digest), the
digest being the event's stored values. `verify_audit_chain` walks the links and finds any event
changed after its seal, any link or event removed, and any event that never got a link.

Events are sealed at commit, under a lock that serialises the sealing (PostgreSQL's advisory lock,
SQLite's write lock), so concurrent writers never fork the chain; the lock comes last in a
transaction, after its row locks, so it cannot deadlock with them. What this cannot stop is a
database owner rewriting the whole chain from the first changed event on: record the head that
`audit verify` prints somewhere else (docs/deploy.md, "The audit trail").
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, col

from db.engine import write_lock
from db.models import AuditChainLink, AuditEvent

# pg_advisory_xact_lock key for sealing, apart from the other locks.
_SEAL_LOCK = 0x6B65_6368
_UNSEALED = "audit_unsealed"  # session.info key: ids of events this transaction added
_VERIFY_CHUNK = 5_000


def event_digest(row: Any) -> str:
    """SHA-256 of an event's stored values, in a fixed order (a row or an AuditEvent)."""
    at = row.at
    if isinstance(at, str):  # SQLite's text, read without the column's type (migrations)
        at = datetime.fromisoformat(at)
    if isinstance(at, datetime) and at.tzinfo is not None:
        at = at.astimezone(UTC).replace(tzinfo=None)
    action = row.action.value if hasattr(row.action, "value") else row.action
    values = [
        row.id,
        at.isoformat(timespec="microseconds") if isinstance(at, datetime) else str(at),
        row.actor_id,
        row.actor_name,
        action,
        row.entity,
        row.entity_id,
        row.claim_id,
        row.pmid,
        row.before,
        row.after,
        row.reason,
        row.source,
    ]
    return hashlib.sha256(orjson.dumps(values, option=orjson.OPT_SORT_KEYS)).hexdigest()


def link_hash(previous: str | None, digest: str) -> str:
    return hashlib.sha256(f"{previous or ''}:{digest}".encode()).hexdigest()


def note_unsealed(session: Session, audit_event: AuditEvent) -> None:
    """Remember an event added in this transaction, to be sealed when it commits."""
    session.info.setdefault(_UNSEALED, []).append(audit_event)


def seal_events(session: Session, events: Sequence[Any]) -> None:
    """Append a link for each of `events` (flushed rows, oldest first) to the chain."""
    if not events:
        return
    write_lock(session, _SEAL_LOCK)
    head = session.scalars(
        select(col(AuditChainLink.hash)).order_by(col(AuditChainLink.seq).desc()).limit(1)
    ).first()
    for row in events:
        head = link_hash(head, event_digest(row))
        session.add(AuditChainLink(event_id=row.id, hash=head))
    session.flush()


def _seal_before_commit(session: Session) -> None:
    pending = session.info.pop(_UNSEALED, None)
    if not pending:
        return
    session.flush()
    ids = sorted({e.id for e in pending if e.id is not None})
    # Read back as stored: the digest must be what `verify` will read, whatever the driver did to it.
    stored = session.execute(
        select(AuditEvent.__table__).where(AuditEvent.__table__.c.id.in_(ids)).order_by("id")
    )
    seal_events(session, list(stored))


def _forget_unsealed(session: Session, *_args: Any) -> None:
    session.info.pop(_UNSEALED, None)


# On every session class (sqlmodel's included): no commit that added audit events goes unsealed.
event.listen(OrmSession, "before_commit", _seal_before_commit)
event.listen(OrmSession, "after_rollback", _forget_unsealed)


@dataclass(frozen=True)
class ChainReport:
    events: int
    links: int
    head: str | None
    problems: tuple[str, ...]

    @property
    def intact(self) -> bool:
        return not self.problems


def verify_audit_chain(session: Session, limit: int = 20) -> ChainReport:
    """Walk the chain from its first link: every event sealed once, unchanged, in an unbroken chain."""
    table = AuditEvent.__table__
    problems: list[str] = []
    previous: str | None = None
    seen: set[int] = set()
    links = 0
    link_rows = session.execute(
        select(col(AuditChainLink.seq), col(AuditChainLink.event_id), col(AuditChainLink.hash)).order_by(
            col(AuditChainLink.seq)
        )
    ).all()
    for start in range(0, len(link_rows), _VERIFY_CHUNK):
        chunk = link_rows[start : start + _VERIFY_CHUNK]
        ids = [link.event_id for link in chunk]
        rows = {row.id: row for row in session.execute(select(table).where(table.c.id.in_(ids)))}
        for link in chunk:
            links += 1
            row = rows.get(link.event_id)
            if row is None:
                problems.append(f"audit event {link.event_id} (link {link.seq}) is gone: it was deleted")
                previous = link.hash
                continue
            if link_hash(previous, event_digest(row)) != link.hash:
                problems.append(
                    f"audit event {link.event_id} (link {link.seq}) does not match its seal: "
                    "it was changed, or a link before it was removed"
                )
            if link.event_id in seen:
                problems.append(f"audit event {link.event_id} is sealed twice (link {link.seq})")
            seen.add(link.event_id)
            previous = link.hash
    unsealed = session.scalars(
        select(table.c.id).where(table.c.id.not_in(select(col(AuditChainLink.event_id)))).order_by(table.c.id)
    ).all()
    problems.extend(
        f"audit event {event_id} has no seal: it was added outside the application" for event_id in unsealed
    )
    return ChainReport(
        events=session.scalar(select(func.count()).select_from(table)) or 0,
        links=links,
        head=previous,
        problems=tuple(problems[:limit])
        + ((f"... and {len(problems) - limit} more",) if len(problems) > limit else ()),
    )
