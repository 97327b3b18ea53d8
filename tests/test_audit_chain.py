"""The audit trail's hash chain and its guard: tampering by someone who got past the triggers is found."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text
from sqlmodel import Session

from db import migrations
from db.engine import engine_for, init_db, open_session
from db.review.audit_chain import verify_audit_chain
from db.review.audit_guard import audit_guard_lifted, audit_guard_problems
from db.review.claims import find_claim
from db.review.roles import find_user
from db.vocab import StudyVerdict
from tests.review_builders import add_article, add_claim, team, vote


def build_trail(url: str) -> None:
    with open_session(url) as session:
        people = team(session)
        claim = add_claim(session)
        for pmid in (1, 2, 3):
            add_article(session, pmid)
            vote(session, people["reviewer"], claim, pmid, StudyVerdict.SUPPORTED)
            session.commit()


def tamper(url: str, statement: str) -> None:
    """What an owner of the tables can do: lift the guard and write what they like."""
    with engine_for(url).begin() as connection, audit_guard_lifted(connection):
        connection.exec_driver_sql(statement)


def test_an_untouched_trail_verifies_with_every_event_sealed_once(db_url: str) -> None:
    build_trail(db_url)
    with open_session(db_url) as session:
        report = verify_audit_chain(session)
    assert report.intact, report.problems
    assert report.events == report.links >= 4 and report.head is not None  # a claim and three votes


@pytest.mark.parametrize(
    ("statement", "found"),
    [
        (
            "UPDATE audit_event SET reason = 'nothing to see' WHERE id = 3",
            "audit event 3 (link 3) does not match",
        ),
        (
            "UPDATE audit_event SET actor_name = 'someone else' WHERE id = 2",
            "audit event 2 (link 2) does not match",
        ),
        ("DELETE FROM audit_event WHERE id = 4", "audit event 4 (link 4) is gone"),
        ("DELETE FROM audit_chain WHERE seq = 2", "audit event 3 (link 3) does not match its seal"),
        (
            "INSERT INTO audit_event (at, actor_name, action, entity, entity_id) "
            "VALUES ('2026-01-01 00:00:00', 'mallory', 'claim_edited', 'claim', '1')",
            "has no seal: it was added outside the application",
        ),
    ],
)
def test_a_changed_deleted_or_slipped_in_event_is_found(db_url: str, statement: str, found: str) -> None:
    build_trail(db_url)

    tamper(db_url, statement)

    with open_session(db_url) as session:
        report = verify_audit_chain(session)
    assert not report.intact
    assert any(found in problem for problem in report.problems), report.problems


def test_later_events_extend_the_chain_and_it_stays_intact(db_url: str) -> None:
    build_trail(db_url)
    with open_session(db_url) as session:
        head = verify_audit_chain(session).head
        reviewer, claim = find_user(session, "rita"), find_claim(session, "fast-relief")
        assert reviewer is not None and claim is not None
        add_article(session, 9)
        vote(session, reviewer, claim, 9, StudyVerdict.MIXED)
        session.commit()
        report = verify_audit_chain(session)
    assert report.intact and report.head != head


def test_a_dropped_trigger_is_put_back_and_said_loudly(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    build_trail(sqlite_url)
    with engine_for(sqlite_url).begin() as connection:
        connection.exec_driver_sql("DROP TRIGGER audit_event_no_delete")

    with caplog.at_level(logging.ERROR, logger="db.review.audit_guard"):
        init_db(sqlite_url)

    assert "trigger audit_event_no_delete was missing; it is back now" in caplog.text
    assert audit_guard_problems(engine_for(sqlite_url)) == []


@pytest.mark.postgres
def test_a_disabled_trigger_is_reported_at_every_start(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    build_trail(postgres_url)
    with engine_for(postgres_url).begin() as connection:
        connection.execute(text("ALTER TABLE audit_event DISABLE TRIGGER USER"))

    with caplog.at_level(logging.ERROR, logger="db.review.audit_guard"):
        init_db(postgres_url)

    assert "audit_event_no_change on audit_event is DISABLED" in caplog.text
    assert any("DISABLED" in problem for problem in audit_guard_problems(engine_for(postgres_url)))
    with engine_for(postgres_url).begin() as connection:
        connection.execute(text("UPDATE audit_event SET reason = 'rewritten' WHERE id = 2"))
    with open_session(postgres_url) as session:
        assert not verify_audit_chain(session).intact  # and the chain finds what was done meanwhile


def test_a_new_database_gets_its_guard_without_a_word(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path}/fresh.sqlite3"
    with caplog.at_level(logging.ERROR, logger="db.review.audit_guard"):
        init_db(url)
    assert caplog.text == "" and audit_guard_problems(engine_for(url)) == []
    with Session(engine_for(url)) as session:
        assert verify_audit_chain(session).intact


def test_the_migration_seals_the_events_recorded_before_it(db_url: str) -> None:
    build_trail(db_url)
    with engine_for(db_url).connect() as connection:
        command.downgrade(migrations.alembic_config(connection), "0004_records_older")
        connection.commit()

    init_db(db_url)  # the start after an upgrade: revision 0005 seals what is there, in order

    with open_session(db_url) as session:
        report = verify_audit_chain(session)
    assert report.intact and report.links == report.events >= 4, report.problems
