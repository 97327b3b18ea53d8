"""The Editor page's reads: open conflicts, the sign-off checklist and the audit trail."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from db.corpus.study_facts import study_facts
from db.models import AuditEvent, Claim, User
from db.read.cards import ClaimCard
from db.read.drilldown import StudyRow, study_rows
from db.read.pairs import PairScope, PairSummary, pair_summaries
from db.review.claims import list_claims
from db.review.roles import Action, require
from db.vocab import AuditAction, PairState


@dataclass(frozen=True)
class ConflictRow:
    claim_id: int
    claim_key: str
    study: StudyRow


@dataclass(frozen=True)
class ConflictPage:
    total: int
    rows: tuple[ConflictRow, ...]


def conflict_page(
    session: Session, actor: User, *, claim_id: int | None = None, limit: int = 20, offset: int = 0
) -> ConflictPage:
    """Pairs whose reviewers disagree and no editor has resolved (or the votes changed since)."""
    require(actor, Action.RESOLVE_CONFLICTS)
    keys = {c.id: c.key for c in list_claims(session, include_retired=True) if c.id is not None}
    pairs = pair_summaries(session, [claim_id] if claim_id is not None else None, scope=PairScope.DISAGREEING)
    open_pairs = [
        p
        for claim, rows in sorted(pairs.items())
        for p in rows
        if p.state is PairState.CONFLICT and claim in keys
    ]
    page = open_pairs[offset : offset + limit]
    facts = study_facts(session, {p.pmid for p in page})
    rows = []
    for claim, group in _group_by_claim(page).items():
        for study in study_rows(session, claim, group, facts):
            rows.append(ConflictRow(claim, keys[claim], study))
    return ConflictPage(len(open_pairs), tuple(rows))


def _group_by_claim(pairs: Iterable[PairSummary]) -> dict[int, list[PairSummary]]:
    groups: dict[int, list[PairSummary]] = defaultdict(list)
    for p in pairs:
        groups[p.claim_id].append(p)
    return groups


@dataclass(frozen=True)
class ChecklistItem:
    label: str
    done: bool
    detail: str = ""


def signoff_checklist(cards: Sequence[ClaimCard]) -> list[ChecklistItem]:
    """What must hold before a document is ready to publish, each with what is missing."""
    unsigned = [c.key for c in cards if c.signoff is None]
    changed = [c.key for c in cards if c.signoff is not None and c.signoff.evidence_changed]
    conflicted = [f"{c.key} ({c.conflicts})" for c in cards if c.conflicts]
    to_revise = [
        c.key
        for c in cards
        if c.signoff is not None and c.signoff.decision != "ok_to_publish" and not c.signoff.evidence_changed
    ]
    unjudged = [c.key for c in cards if c.judged == 0]
    return [
        ChecklistItem("Every claim has judged studies", not unjudged, ", ".join(unjudged)),
        ChecklistItem("No open conflicts between reviewers", not conflicted, ", ".join(conflicted)),
        ChecklistItem("Every claim signed off", not unsigned, ", ".join(unsigned)),
        ChecklistItem("No evidence changed since sign-off", not changed, ", ".join(changed)),
        ChecklistItem(
            "Claims to reword or remove are dealt with in the text",
            not to_revise,
            ", ".join(to_revise),
        ),
    ]


@dataclass(frozen=True)
class AuditRow:
    id: int
    at: datetime
    actor: str
    action: str
    entity: str
    entity_id: str
    claim: str | None
    pmid: int | None
    before: str
    after: str
    reason: str
    source: str


def audit_rows(
    session: Session, *, claim_id: int | None = None, pmid: int | None = None, limit: int = 200
) -> list[AuditRow]:
    """The newest events of the audit trail (of one claim or study), newest first, as plain rows."""
    query = select(AuditEvent).order_by(col(AuditEvent.id).desc()).limit(limit)
    if claim_id is not None:
        query = query.where(col(AuditEvent.claim_id) == claim_id)
    if pmid is not None:
        query = query.where(col(AuditEvent.pmid) == pmid)
    keys = dict(session.execute(select(col(Claim.id), col(Claim.key))).all())
    return [
        AuditRow(
            id=event.id or 0,
            at=event.at,
            actor=event.actor_name,
            action=AuditAction(event.action).label,
            entity=event.entity,
            entity_id=event.entity_id,
            claim=keys.get(event.claim_id) if event.claim_id is not None else None,
            pmid=event.pmid,
            before=_brief(event.before),
            after=_brief(event.after),
            reason=event.reason or "",
            source=event.source or "",
        )
        for event in session.scalars(query)
    ]


def _brief(values: dict[str, Any] | None) -> str:
    if not values:
        return ""
    return "; ".join(f"{key}: {value}" for key, value in values.items())
