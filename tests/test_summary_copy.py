"""The verdict summary's copy kept in the database (db.read.summary_copy): a new process starts from it,
brings it up to date with the writes since, and never serves a stale or damaged copy."""

from __future__ import annotations

import logging
import random
from typing import Any

import pytest
from sqlalchemy import create_engine, event, func, select, update
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from db.corpus.study_facts import FACTS
from db.engine import SQLITE_BUSY_TIMEOUT_MS, engine_for, open_session
from db.models import Article, Claim, SummaryCopyRecord, User
from db.read import summary, summary_copy
from db.read.summary import SUMMARY, read_mark, warm_summary
from db.review.claims import list_claims
from db.review.pair_index import rebuild_pair_state
from db.review.pairs import pair_statuses
from db.review.verdicts import DesignScope, derive_claim_verdict
from db.vocab import StudyVerdict
from tests.conftest import POSTGRES_ADMIN_URL
from tests.review_builders import vote
from tests.test_pair_state import (
    build_review,
    cards_mismatches,
    random_round,
    random_write,
    reference_evidence,
)


def new_process(url: str) -> None:
    """Forget what this process keeps of the database, as a freshly started one would not have it."""
    SUMMARY.forget(url)
    FACTS.forget(url)


def kept_rows(url: str) -> dict[int, int]:
    """claim id -> the audit event its kept copy is valid at."""
    table = SummaryCopyRecord.__table__
    with open_session(url) as session:
        return {int(c): int(a) for c, a in session.execute(select(table.c.claim_id, table.c.audit_id))}


def reviewed(url: str, seed: int) -> dict[str, User]:
    with open_session(url) as session:
        users = build_review(session)
        random_round(session, {k: session.merge(u) for k, u in users.items()}, random.Random(seed), 25)
    with open_session(url) as session:
        warm_summary(session)  # as the dashboard does at start: this keeps the copy
    return users


def no_whole_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(_session: Session, claim_ids: list[int], *_rest: Any) -> dict[int, Any]:
        if claim_ids:
            raise AssertionError(f"claims {claim_ids} read whole although a copy was kept")
        return {}

    monkeypatch.setattr(summary, "read_claims", refuse)


def one_vote(url: str, users: dict[str, User], pmid: int, verdict: StudyVerdict) -> None:
    with open_session(url) as session:
        claim = list_claims(session)[-1]
        article = session.get(Article, pmid)
        assert article is not None
        vote(session, session.merge(users["r3"]), claim, pmid, verdict, quote=article.abstract[:40])
        session.commit()


def test_the_summary_keeps_a_copy_of_every_claim_in_the_database(db_url: str) -> None:
    reviewed(db_url, seed=1)
    with open_session(db_url) as session:
        claim_ids = {c.id for c in list_claims(session)}
        mark = read_mark(session)
    rows = kept_rows(db_url)
    assert set(rows) == claim_ids
    assert mark.audit is not None and set(rows.values()) <= {mark.audit[0]}


def voted_since_the_copy(url: str) -> dict[str, User]:
    """A review whose copy was kept, two votes since, and a process started after them."""
    users = reviewed(url, seed=2)
    one_vote(url, users, 5001, StudyVerdict.SUPPORTED)
    one_vote(url, users, 5002, StudyVerdict.MIXED)
    new_process(url)
    return users


def test_a_new_process_starts_from_the_kept_copy_and_reads_only_the_writes_since(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    users = voted_since_the_copy(db_url)
    with monkeypatch.context() as patch:
        no_whole_reads(patch)
        # Three viewers, one of them blinded, each read twice: the second from this process's copy.
        assert cards_mismatches(db_url, users, ("editor", "r1", "viewer")) == []
    with open_session(db_url) as session:
        mark = read_mark(session)
    assert mark.audit is not None
    # The patched claim's row was written again at the new mark; the others were moved to it.
    assert set(kept_rows(db_url).values()) == {mark.audit[0]}


def test_without_the_writes_since_a_kept_copy_would_go_stale(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The check above must be able to fail: a new process that ignored the writes since the copy
    # was kept would show the cards as they were.
    users = voted_since_the_copy(sqlite_url)
    monkeypatch.setattr(summary, "pairs_changed_since", lambda *args: {})
    assert cards_mismatches(sqlite_url, users, ("editor",)) == ["editor", "editor"]


@pytest.mark.slow  # randomised writes and reads: seconds a run
def test_every_new_process_after_random_writes_shows_what_the_votes_say(db_url: str) -> None:
    users = reviewed(db_url, seed=3)
    rng = random.Random(4)
    for step in range(30):
        with open_session(db_url) as session:
            random_write(session, {k: session.merge(u) for k, u in users.items()}, rng)
        if step % 3 == 0:
            new_process(db_url)
        assert cards_mismatches(db_url, users, ("editor", "r1", "viewer")) == [], step


@pytest.mark.parametrize(
    ("spoil", "values"),
    [
        ("another layout", {"layout": summary_copy.LAYOUT + 1}),
        ("other study facts", {"facts": "0|None|0|None"}),
        ("damaged arrays", {"pmids": b"\x01\x02\x03"}),
        ("an unknown design", {"legend": [["agreed", "supported", False, "horoscope", None]]}),
        ("an audit event since replaced", {"audit_at": "1999-01-01 00:00:00"}),
    ],
)
def test_a_copy_that_does_not_hold_is_read_again_whole(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, spoil: str, values: dict[str, Any]
) -> None:
    users = reviewed(sqlite_url, seed=5)
    with open_session(sqlite_url) as session:
        session.execute(update(SummaryCopyRecord.__table__).values(**values))
        session.commit()
    new_process(sqlite_url)
    wholes: list[int] = []
    read_whole = summary.read_claims
    monkeypatch.setattr(
        summary, "read_claims", lambda s, ids, *a: wholes.append(len(ids)) or read_whole(s, ids, *a)
    )
    assert cards_mismatches(sqlite_url, users, ("editor", "r1")) == [], spoil
    with open_session(sqlite_url) as session:
        claims = session.scalar(select(func.count()).select_from(Claim)) or 0
    assert wholes[0] == claims, spoil


def test_rebuilding_pair_state_drops_the_kept_copies(sqlite_url: str) -> None:
    reviewed(sqlite_url, seed=6)
    assert kept_rows(sqlite_url)
    with engine_for(sqlite_url).begin() as connection:
        rebuild_pair_state(connection)
    assert kept_rows(sqlite_url) == {}


def test_a_late_writer_never_puts_an_older_copy_over_a_newer_one(db_url: str) -> None:
    users = reviewed(db_url, seed=7)
    with open_session(db_url) as session:
        old_mark = read_mark(session)
        old = summary.summary_evidence(session, old_mark).claims
    one_vote(db_url, users, 5003, StudyVerdict.UNSUPPORTED)
    with open_session(db_url) as session:
        warm_summary(session)  # the newer copy, kept
        new_mark = read_mark(session)
    newer = kept_rows(db_url)
    assert old_mark.audit is not None and new_mark.audit is not None
    assert set(newer.values()) == {new_mark.audit[0]}

    for claim in old.values():  # a process that read at the older mark writes late
        claim.stored_at = None
    with open_session(db_url) as session:
        summary_copy.store_copies(session, old.values(), old_mark.audit, old_mark.facts)
    assert kept_rows(db_url) == newer


def test_a_row_another_process_rewrote_is_left_to_it(sqlite_url: str) -> None:
    users = reviewed(sqlite_url, seed=8)
    with open_session(sqlite_url) as session:
        claims = summary.summary_evidence(session, read_mark(session)).claims
    claim_id = next(iter(claims))
    with open_session(sqlite_url) as session:  # another process wrote this claim's row meanwhile
        table = SummaryCopyRecord.__table__
        session.execute(update(table).where(table.c.claim_id == claim_id).values(audit_id=-1))
        session.commit()
    one_vote(sqlite_url, users, 5004, StudyVerdict.NOT_RELEVANT)
    with open_session(sqlite_url) as session:
        mark = read_mark(session)
        assert mark.audit is not None
        unchanged = {c: e for c, e in claims.items() if c == claim_id}
        summary_copy.store_copies(session, unchanged.values(), mark.audit, mark.facts)
    assert kept_rows(sqlite_url)[claim_id] == -1  # not moved: its content is not this process's
    assert claims[claim_id].stored_at is None  # so this process writes it whole next time


def test_a_database_that_refuses_the_copy_still_serves_the_summary(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with open_session(sqlite_url) as session:
        users = build_review(session)
        random_round(session, {k: session.merge(u) for k, u in users.items()}, random.Random(9), 10)

    def read_only(*_args: Any) -> bool:
        raise OperationalError("INSERT", {}, Exception("attempt to write a readonly database"))

    monkeypatch.setattr(summary_copy, "_upsert", read_only)
    with caplog.at_level(logging.WARNING, logger="db.read.summary_copy"):
        assert cards_mismatches(sqlite_url, users, ("editor", "r1")) == []
    assert "not kept in the database" in caplog.text
    assert kept_rows(sqlite_url) == {}


@pytest.mark.postgres
def test_a_write_in_flight_on_another_database_of_the_server_leaves_the_mark_settled(
    postgres_url: str,
) -> None:
    # Another team's database, a test run or an import elsewhere on the same server writes all day:
    # only this database's own transactions can hold back its audit events.
    reviewed(postgres_url, seed=10)
    other = create_engine(POSTGRES_ADMIN_URL)  # the server's `test` database, not this test's
    try:
        with other.connect() as elsewhere:
            elsewhere.exec_driver_sql("SELECT pg_current_xact_id()")  # an xid, in flight until closed
            with open_session(postgres_url) as session:
                assert read_mark(session).audit is not None
            with engine_for(postgres_url).connect() as here:
                here.exec_driver_sql("SELECT pg_current_xact_id()")
                with open_session(postgres_url) as session:
                    assert read_mark(session).audit is None  # one of this database's own: not settled
    finally:
        other.dispose()


def test_sign_off_verdict_in_a_new_process_comes_from_the_kept_copy(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from db.review import signoff

    users = reviewed(db_url, seed=11)
    one_vote(db_url, users, 5005, StudyVerdict.SUPPORTED)  # written after the copy was kept
    new_process(db_url)

    def read_here(*_args: Any) -> Any:
        raise AssertionError("the claim's pairs were read although a copy was kept")

    monkeypatch.setattr(signoff, "listed_evidence", read_here)
    with open_session(db_url) as session:
        for claim in list_claims(session):
            assert claim.id is not None
            evidence = reference_evidence(session, pair_statuses(session, claim.id))
            for scope in DesignScope:
                assert signoff.claim_verdict(session, claim, scope) == derive_claim_verdict(evidence, scope)


def test_an_import_that_changes_studies_keeps_the_summary_current(db_url: str) -> None:
    # Any change of the studies moves their facts and drops every kept copy; the import (as the
    # harvest) reads the summary again at its end, so the dashboard's next start does not.
    from ingest.cli import main
    from tests.conftest import TEST_DATA

    assert main(["import", str(TEST_DATA / "pubmed_ketamine_sample.xml")]) == 0
    with open_session(db_url) as session:
        users = build_review(session)
        claim = list_claims(session)[0]
        article = session.get(Article, 90000001)
        assert article is not None
        vote(session, users["r0"], claim, 90000001, StudyVerdict.SUPPORTED, quote=article.abstract[:40])
        session.commit()
        warm_summary(session)
        before = read_mark(session).facts
    assert main(["import", str(TEST_DATA / "pubmed_ketamine_update.xml")]) == 0
    new_process(db_url)
    with open_session(db_url) as session:
        after = read_mark(session).facts
        assert after != before  # the studies changed
        assert summary_copy.has_copies(session, after)
    with pytest.MonkeyPatch.context() as patch:
        no_whole_reads(patch)
        assert cards_mismatches(db_url, users, ("editor",)) == []


def test_the_excluded_studies_are_read_from_their_partial_index(db_url: str) -> None:
    # A new process asks which studies the rule excludes; on SQLite the plain index on the standing
    # costs a look-up of each one's PMID in the articles (100 ms for 3,500 of 100,000).
    seen: list[tuple[str, Any]] = []

    def keep(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_rest: Any) -> None:
        seen.append((statement, parameters))

    with open_session(db_url) as session:
        engine = session.get_bind().engine
        event.listen(engine, "before_cursor_execute", keep)
        try:
            assert summary.excluded_studies(session) == []
        finally:
            event.remove(engine, "before_cursor_execute", keep)
        ((statement, parameters),) = seen
        connection = session.connection()
        if connection.dialect.name == "sqlite":
            plan = " ".join(
                map(str, connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters))
            )
            assert "COVERING INDEX ix_article_retraction_pmid" in plan, plan
        else:
            connection.exec_driver_sql("SET LOCAL enable_seqscan = off")  # an empty table is scanned anyway
            plan = " ".join(map(str, connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)))
            assert "ix_article_retraction_pmid" in plan, plan


def test_a_page_does_not_wait_for_another_writer_to_keep_the_copy(sqlite_url: str) -> None:
    # Keeping the copy is a write on a page's read: behind an import's open batch it gives up at once
    # (and writes with the next summary) instead of waiting SQLite's 30 s busy timeout.
    with open_session(sqlite_url) as session:
        users = build_review(session)
        random_round(session, {k: session.merge(u) for k, u in users.items()}, random.Random(12), 10)
    with engine_for(sqlite_url).connect() as importer:
        importer.exec_driver_sql("BEGIN IMMEDIATE")  # holds the write lock, as a batch in progress
        assert cards_mismatches(sqlite_url, users, ("editor",)) == []
        importer.exec_driver_sql("ROLLBACK")
    assert kept_rows(sqlite_url) == {}
    with engine_for(sqlite_url).connect() as pooled:  # every pooled connection waits as db.engine set it
        assert pooled.exec_driver_sql("PRAGMA busy_timeout").scalar() == SQLITE_BUSY_TIMEOUT_MS
    with open_session(sqlite_url) as session:
        warm_summary(session)
    assert kept_rows(sqlite_url)
