"""The audit trail: every change recorded with who, what, before, after, why; append-only."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlmodel import Session

from db.assessments import update_assessment
from db.audit import audit_events, claim_history, study_history
from db.design import StudyDesign
from db.pairs import resolve_conflict
from db.review_models import AuditAction, AuditEvent, AuditImmutableError, StudyVerdict
from tests.review_builders import add_article, add_claim, team, vote


def test_assessment_changes_are_recorded_per_claim_and_per_study(session: Session) -> None:
    people = team(session)
    claim = add_claim(session)
    add_article(session, 1, publication_types=["Journal Article"])
    mine = vote(
        session, people["reviewer"], claim, 1, StudyVerdict.SUPPORTED, design=StudyDesign.OBSERVATIONAL
    )
    vote(session, people["reviewer2"], claim, 1, StudyVerdict.UNSUPPORTED)
    assert mine.id is not None and claim.id is not None
    update_assessment(session, people["reviewer"], mine.id, 1, verdict="mixed", reason="Re-read the results")
    resolve_conflict(session, people["editor"], claim, 1, "mixed", "Small, uncontrolled sample.")
    session.flush()

    by_claim = claim_history(session, claim.id)
    by_study = study_history(session, 1)

    assert [e.action for e in by_claim] == [
        AuditAction.CLAIM_ADDED,
        AuditAction.ASSESSMENT_RECORDED,
        AuditAction.ASSESSMENT_RECORDED,
        AuditAction.ASSESSMENT_CHANGED,
        AuditAction.CONFLICT_RESOLVED,
    ]
    change = by_claim[3]
    assert (change.actor_name, change.reason) == ("rita", "Re-read the results")
    assert change.before == {"verdict": "supported", "version": 1}
    assert change.after == {"verdict": "mixed", "version": 2}
    assert by_claim[4].before == {"votes": {"rita": "mixed", "rob": "unsupported"}}
    assert AuditAction.DESIGN_CORRECTED in [e.action for e in by_study]
    assert all(e.at is not None for e in by_study)
    assert len(audit_events(session)) >= len(by_claim)


def test_audit_events_cannot_be_changed_or_deleted(session: Session) -> None:
    team(session)
    add_claim(session)
    session.commit()
    event = session.scalars(select(AuditEvent)).first()
    assert event is not None

    event.reason = "rewritten history"
    with pytest.raises(AuditImmutableError, match="append-only"):
        session.flush()
    session.rollback()

    event = session.scalars(select(AuditEvent)).first()
    assert event is not None and event.reason != "rewritten history"
    session.delete(event)
    with pytest.raises(AuditImmutableError, match="cannot be changed or deleted"):
        session.flush()
