"""Faults: connections dropped mid-harvest and mid-review, the dashboard while the database is away,
a full disk and a read-only database. Each ends in a clear message and loses nothing acknowledged."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from pytest_httpserver import HTTPServer
from sqlalchemy import create_engine, event, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from streamlit.testing.v1 import AppTest

from db.engine import engine_for, init_db, open_session
from db.errors import DatabaseError
from db.models import Article, Assessment, AuditEvent, HarvestRun
from db.review.assessments import record_assessment
from db.settings import Settings
from db.vocab import Role, StudyVerdict
from ingest import harvest as harvest_module
from ingest.cli import main
from ingest.eutils import EutilsClient, RateLimiter
from ingest.harvest import harvest
from tests.conftest import POSTGRES_ADMIN_URL, PROJECT_ROOT, TEST_DATA
from tests.dashboard_builders import add_team, navigation_only_in_apptest
from tests.eutils_server import FakeEutils, Fault, make_records
from tests.review_builders import add_article, add_claim, add_user

EMAIL = "tests@example.org"
QUERY = "ketamine AND depression"


def terminate_backends(url: str, only_pid: int | None = None) -> int:
    """Drop connections to the database at `url` from the server side, as a restart would."""
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            return int(
                connection.execute(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = :db AND pid <> pg_backend_pid() AND (CAST(:pid AS integer) IS NULL OR pid = CAST(:pid AS integer))"
                    ),
                    {"db": make_url(url).database, "pid": only_pid},
                ).scalar()
                or 0
            )
    finally:
        admin.dispose()


def articles(url: str) -> list[tuple[int, str]]:
    with open_session(url) as session:
        return [(a.pmid, a.title) for a in session.scalars(select(Article).order_by(Article.pmid))]


def run_statuses(url: str) -> list[str]:
    with open_session(url) as session:
        return [run.status for run in session.scalars(select(HarvestRun).order_by(HarvestRun.id))]


def quick_client(base_url: str) -> EutilsClient:
    return EutilsClient(base_url, EMAIL, rate_limiter=RateLimiter(sleep=lambda s: None), backoff_base=0.001)


# --- mid-harvest ----------------------------------------------------------------------------------


@pytest.mark.postgres
def test_a_connection_dropped_mid_batch_fails_the_run_and_the_next_run_completes_it(
    postgres_url: str, server: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeEutils(server, make_records(45))
    settings = Settings(postgres_url, EMAIL, None, fake.base_url)
    real_store = harvest_module.store_batch
    calls = {"n": 0}

    def store_then_lose_the_connection(session: Any, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:  # the third batch: its transaction is open when the server drops it
            backend = session.execute(text("SELECT pg_backend_pid()")).scalar()
            assert terminate_backends(postgres_url, only_pid=backend) == 1
        return real_store(session, *args, **kwargs)

    monkeypatch.setattr(harvest_module, "store_batch", store_then_lose_the_connection)
    with pytest.raises(DatabaseError, match=r"^Cannot reach the database .*terminating connection"):
        harvest(settings, query=QUERY, batch_size=10, client=quick_client(fake.base_url))
    assert len(articles(postgres_url)) == 20  # two whole batches, nothing of the third
    assert run_statuses(postgres_url) == ["failed"]

    monkeypatch.setattr(harvest_module, "store_batch", real_store)
    harvest(settings, query=QUERY, batch_size=10, client=quick_client(fake.base_url))

    assert [pmid for pmid, _ in articles(postgres_url)] == [record.pmid for record in fake.records]
    assert run_statuses(postgres_url) == ["failed", "succeeded"]


@pytest.mark.postgres
@pytest.mark.slow
def test_a_database_restart_mid_harvest_stops_it_and_the_next_run_resumes(
    postgres_url: str, server: HTTPServer
) -> None:
    fake = FakeEutils(server, make_records(35))
    fake.inject("efetch", None, None, Fault.HANG)  # the harvest waits in its third batch...
    env = {
        **os.environ,
        "DATABASE_URL": postgres_url,
        "EUTILS_BASE_URL": fake.base_url,
        "NCBI_EMAIL": EMAIL,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])),
    }
    command = [sys.executable, "-m", "ingest.cli", "harvest", "--query", QUERY, "--batch-size", "10"]
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert fake.hung.wait(timeout=60), "the harvest never reached its third batch"
        assert terminate_backends(postgres_url) >= 1  # ...while the database restarts under it
    finally:
        fake.release.set()
    _, err = child.communicate(timeout=60)

    assert child.returncode == 1
    assert err.strip().splitlines()[-1].startswith("error: The connection holding the lock dropped")
    assert "Run it again: committed work is kept." in err
    assert len(articles(postgres_url)) == 20

    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)

    assert again.returncode == 0, again.stderr
    assert [pmid for pmid, _ in articles(postgres_url)] == [record.pmid for record in fake.records]
    assert run_statuses(postgres_url) == ["failed", "succeeded"]


# --- mid-review -----------------------------------------------------------------------------------


@pytest.mark.postgres
def test_a_review_save_cut_off_by_the_server_is_not_acknowledged_and_nothing_acknowledged_is_lost(
    postgres_url: str,
) -> None:
    with open_session(postgres_url) as session:
        claim = add_claim(session)
        reviewer = add_user(session, "rita", Role.REVIEWER)
        for pmid in range(8001, 8013):
            add_article(session, pmid)
        session.commit()
        claim_id, reviewer_id = claim.id, reviewer.id
    acknowledged, refused = [], []
    for pmid in range(8001, 8013):
        try:
            with open_session(postgres_url) as session:
                record_assessment(
                    session,
                    session.get(type(reviewer), reviewer_id),
                    session.get(type(claim), claim_id),
                    pmid,
                    StudyVerdict.SUPPORTED,
                    quote="Ketamine reduced depressive symptoms",
                )
                if pmid in (8004, 8009):  # the server goes away between the work and the commit
                    backend = session.execute(text("SELECT pg_backend_pid()")).scalar()
                    terminate_backends(postgres_url, only_pid=backend)
                session.commit()
            acknowledged.append(pmid)
        except OperationalError as exc:
            refused.append((pmid, str(exc.orig)))

    assert [pmid for pmid, _ in refused] == [8004, 8009]
    assert all("terminating connection" in message for _, message in refused)
    with open_session(postgres_url) as session:
        stored = sorted(session.scalars(select(Assessment.pmid)))
        audited = session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.entity == "assessment")
        )
    assert stored == acknowledged  # the next saves reconnected by themselves (pool pre-ping)
    assert audited == len(acknowledged)


# --- the dashboard while the database is away ------------------------------------------------------


class TcpProxy:
    """A loopback TCP forwarder to PostgreSQL that can be taken down and brought back on the same port."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._listener: socket.socket | None = None
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        """Refuse new connections and cut the open ones, as a stopped server does."""
        if self._listener is not None:
            # shutdown() first: on Linux, close() alone leaves a thread blocked in accept() accepting.
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._open += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def proxied_postgres(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, TcpProxy]]:
    target = make_url(postgres_url)
    proxy = TcpProxy((target.host or "127.0.0.1", target.port or 5432))
    url = target.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    monkeypatch.setenv("DATABASE_URL", url)
    st.cache_data.clear()
    st.cache_resource.clear()
    navigation_only_in_apptest(monkeypatch)
    yield url, proxy
    proxy.down()
    engine_for(url).dispose()


@pytest.mark.postgres
def test_the_dashboard_says_the_database_is_unreachable_then_works_when_it_is_back(
    proxied_postgres: tuple[str, TcpProxy],
) -> None:
    url, proxy = proxied_postgres

    at = AppTest.from_file("../app.py", default_timeout=60).run()

    assert not at.exception
    assert at.error and at.error[0].value.startswith("Cannot reach the database")
    assert "check that it is running and DATABASE_URL" in at.error[0].value

    proxy.up()
    at.run()

    assert not at.exception
    assert not at.error
    assert at.title[0].value == "Sign in"


@pytest.mark.postgres
def test_the_dashboard_says_so_when_the_database_drops_after_start_and_recovers(
    proxied_postgres: tuple[str, TcpProxy],
) -> None:
    url, proxy = proxied_postgres
    proxy.up()
    with open_session(url) as session:
        add_team(session)
        session.commit()
    at = AppTest.from_file("../app.py", default_timeout=60)
    at.session_state["signed_in_user"] = "eve"
    at.run()
    assert at.title[0].value == "Overview"

    proxy.down()
    st.cache_data.clear()  # a fresh read, as after the cache's time-to-live
    at.run()

    assert not at.exception
    assert at.error and "Cannot reach the database" in at.error[0].value

    proxy.up()
    at.run()
    assert not at.exception and not at.error and at.title[0].value == "Overview"


# --- a full disk, a read-only database --------------------------------------------------------------


@pytest.fixture
def full_sqlite(sqlite_url: str) -> str:
    """The SQLite database may not grow by a single page: every write that needs space fails with SQLITE_FULL."""
    engine = engine_for(sqlite_url)
    with engine.connect() as connection:
        pages = connection.exec_driver_sql("PRAGMA page_count").scalar()
    engine.dispose()

    @event.listens_for(engine, "connect")
    def _cap(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages}")

    yield sqlite_url
    event.remove(engine, "connect", _cap)
    engine.dispose()


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = [
        line for line in err.splitlines() if not line.startswith(("import ", "harvest "))
    ]  # progress bars
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize(
    "command",
    [
        ["import", str(TEST_DATA / "pubmed_ketamine_sample.xml")],
        ["users", "add", "ada", "--role", "admin"],
    ],
    ids=["import", "users-add"],
)
def test_a_full_disk_is_one_clear_line_and_a_non_zero_exit(
    full_sqlite: str, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(command) == 1

    line = one_error_line(capsys)
    assert line == (
        f"error: The disk holding {full_sqlite} is full (database or disk is full); free some space and retry."
    )
    assert articles(full_sqlite) == []


def test_a_full_disk_during_a_harvest_is_one_clear_line(
    full_sqlite: str, server: HTTPServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeEutils(server, make_records(5))
    monkeypatch.setenv("EUTILS_BASE_URL", fake.base_url)

    assert main(["harvest", "--query", QUERY]) == 1

    assert one_error_line(capsys).startswith(f"error: The disk holding {full_sqlite} is full")


@pytest.fixture
def read_only_sqlite(sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    init_db(sqlite_url)
    engine_for(sqlite_url).dispose()
    path = make_url(sqlite_url).database
    url = f"sqlite:///file:{path}?mode=ro&uri=true"
    monkeypatch.setenv("DATABASE_URL", url)
    return url


@pytest.mark.parametrize(
    "command",
    [
        ["import", str(TEST_DATA / "pubmed_ketamine_sample.xml")],
        ["users", "add", "ada", "--role", "admin"],
    ],
    ids=["import", "users-add"],
)
def test_a_read_only_database_is_one_clear_line_and_reads_still_work(
    read_only_sqlite: str, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(command) == 1

    line = one_error_line(capsys)
    assert (
        line.startswith("error: The database ")
        and " is read-only (attempt to write a readonly database)" in line
    )
    assert line.endswith("check the file's permissions or DATABASE_URL.")
    assert main(["info"]) == 0
    assert "Articles: 0" in capsys.readouterr().out
    engine_for(read_only_sqlite).dispose()
