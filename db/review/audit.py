"""The append-only audit trail: record who changed what, and read it per claim, per study or whole."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, SQLModel, col

from db.models import Assessment, AuditEvent, Claim, User
from db.review.audit_chain import note_unsealed
from db.vocab import AuditAction

SYSTEM_ACTOR = "system"  # seed loading, harvest-time flags: changes no person made


def record_event(
    session: Session,
    actor: User | None,
    action: AuditAction,
    entity: SQLModel,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str | None = None,
    claim_id: int | None = None,
    pmid: int | None = None,
    source: str | None = None,
) -> AuditEvent:
    """Append one event. `entity` is the changed row (flushed, so it has its id).

    Claim and assessment rows fill `claim_id` / `pmid` themselves so the per-claim and per-study
    histories find the event.
    """
    if isinstance(entity, Claim):
        claim_id = claim_id or entity.id
    if isinstance(entity, Assessment):
        claim_id = claim_id or entity.claim_id
        pmid = pmid or entity.pmid
    entity_id = getattr(entity, "id", None)
    if entity_id is None and hasattr(entity, "pmid"):
        entity_id = entity.pmid
    event = AuditEvent(
        actor_id=actor.id if actor is not None else None,
        actor_name=actor.name if actor is not None else SYSTEM_ACTOR,
        action=action,
        entity=str(getattr(entity, "__tablename__", type(entity).__name__.lower())),
        entity_id=str(entity_id),
        claim_id=claim_id,
        pmid=pmid,
        before=_jsonable(before),
        after=_jsonable(after),
        reason=reason,
        source=source,
    )
    session.add(event)
    note_unsealed(session, event)  # sealed into the hash chain when the transaction commits
    return event


def _jsonable(values: dict[str, Any] | None) -> dict[str, Any] | None:
    if values is None:
        return None
    return {key: _plain(value) for key, value in values.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def claim_history(session: Session, claim_id: int) -> list[AuditEvent]:
    """Every event about a claim: its wording, merges, assessments, resolutions and sign-offs."""
    query = select(AuditEvent).where(col(AuditEvent.claim_id) == claim_id).order_by(col(AuditEvent.id))
    return list(session.scalars(query))


def study_history(session: Session, pmid: int) -> list[AuditEvent]:
    """Every event about a study: assessments of it under any claim and design corrections."""
    query = select(AuditEvent).where(col(AuditEvent.pmid) == pmid).order_by(col(AuditEvent.id))
    return list(session.scalars(query))


def audit_events(session: Session, since: datetime | None = None) -> list[AuditEvent]:
    """The whole trail in order, optionally only the events at or after `since`."""
    query = select(AuditEvent).order_by(col(AuditEvent.id))
    if since is not None:
        query = query.where(col(AuditEvent.at) >= since)
    return list(session.scalars(query))
