"""The audit trail: every change recorded with who, what, before, after, why; append-only."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from db.engine import engine_for, init_db
from db.errors import AuditImmutableError
from db.models import AuditEvent
from db.review.assessments import update_assessment
from db.review.audit import audit_events, claim_history, study_history
from db.review.pairs import resolve_conflict
from db.vocab import AuditAction, StudyDesign, StudyVerdict
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


@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit_event SET reason = 'rewritten history'", "DELETE FROM audit_event"],
    ids=["update", "delete"],
)
def test_the_database_itself_refuses_changes_to_the_audit_trail(db_url: str, statement: str) -> None:
    # SQL that bypasses the ORM (a script, a psql session) meets the database's own triggers.
    with Session(engine_for(db_url)) as session:
        team(session)
        add_claim(session)
        session.commit()
        before = session.scalar(select(func.count()).select_from(AuditEvent))
    engine = engine_for(db_url)
    with pytest.raises(IntegrityError, match="audit events are append-only"), engine.begin() as connection:
        connection.exec_driver_sql(statement)
    with Session(engine) as session:
        assert before and session.scalar(select(func.count()).select_from(AuditEvent)) == before
        assert "rewritten history" not in [event.reason for event in session.scalars(select(AuditEvent))]


@pytest.mark.postgres
def test_postgres_refuses_truncating_the_audit_trail(postgres_url: str) -> None:
    with pytest.raises(IntegrityError, match="append-only"), engine_for(postgres_url).begin() as connection:
        connection.exec_driver_sql("TRUNCATE audit_event")


def test_a_dropped_guard_is_back_at_the_next_start(sqlite_url: str) -> None:
    engine = engine_for(sqlite_url)
    with Session(engine) as session:
        team(session)
        add_claim(session)
        session.commit()
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TRIGGER audit_event_no_delete")
    init_db(sqlite_url)
    with pytest.raises(IntegrityError, match="append-only"), engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM audit_event")
