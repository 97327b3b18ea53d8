"""One harvest at a time per database, across processes, on SQLite (file lock) and PostgreSQL (advisory lock)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from db.engine import open_session
from db.errors import DatabaseError
from db.models import HarvestRun
from db.ops.locks import LockBusyError, LockLostError, job_lock, sqlite_lock_path
from tests.conftest import POSTGRES_ADMIN_URL, PROJECT_ROOT
from tests.eutils_server import FakeEutils, Fault, make_records

EMAIL = "tests@example.org"
HOST = re.escape(socket.gethostname())

_HOLDER = """
import sys
from db.ops.locks import job_lock
with job_lock(sys.argv[1], "harvest"):
    print("locked", flush=True)
    sys.stdin.read()  # hold the lock until the parent closes our standard input
"""

_HARVEST = """
from db.settings import load_settings
from ingest.eutils import EutilsClient, RateLimiter
from ingest.harvest import harvest

settings = load_settings()
client = EutilsClient.from_settings(settings, rate_limiter=RateLimiter(sleep=lambda s: None), timeout=120)
harvest(settings, query="ketamine AND depression", batch_size=10, client=client)
"""


def child_env(**extra: str) -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "NCBI_EMAIL": EMAIL, **extra}


@pytest.fixture
def holder(db_url: str) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the harvest lock of `db_url` until its stdin closes."""
    child = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, db_url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "locked"
    yield child
    if child.poll() is None:
        child.kill()
    child.communicate(timeout=30)


def assert_busy(url: str) -> None:
    with pytest.raises(LockBusyError):
        job_lock(url).__enter__()


def acquire_eventually(url: str, seconds: float = 20.0) -> None:
    """Take and release the lock, allowing the server a moment to notice a dead holder."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with job_lock(url):
                return
        except LockBusyError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_a_second_holder_is_refused_with_who_holds_it(db_url: str, holder: subprocess.Popen[str]) -> None:
    expected = (
        rf"^Another harvest \(pid {holder.pid} on {HOST}, started \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d UTC\) "
        r"is running on this database; wait for it or stop it\.$"
    )
    with pytest.raises(LockBusyError, match=expected), job_lock(db_url):
        pytest.fail("took a lock that another process holds")

    holder.communicate(input="", timeout=30)  # the holder finishes and lets go
    acquire_eventually(db_url, seconds=5)


def test_a_killed_holder_leaves_no_stale_lock(db_url: str, holder: subprocess.Popen[str]) -> None:
    with pytest.raises(LockBusyError), job_lock(db_url):
        pass

    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)

    acquire_eventually(db_url)


def test_the_lock_is_per_database_and_per_purpose(tmp_path: Path) -> None:
    first, second = (f"sqlite:///{tmp_path / name}" for name in ("a.sqlite3", "b.sqlite3"))

    with job_lock(first), job_lock(second), job_lock(first, "restore"):
        assert_busy(first)

    assert sqlite_lock_path(first, "harvest") == tmp_path / "a.sqlite3-harvest.lock"
    assert sqlite_lock_path("sqlite://", "harvest") is None
    assert (
        sqlite_lock_path(f"sqlite:///file:{tmp_path / 'c.db'}?mode=ro&uri=true", "x")
        == tmp_path / "c.db-x.lock"
    )


def test_a_lock_file_that_cannot_be_created_says_why(tmp_path: Path) -> None:
    (tmp_path / "not-a-folder").write_text("")
    url = f"sqlite:///{tmp_path / 'not-a-folder' / 'x.sqlite3'}"

    with (
        pytest.raises(
            DatabaseError, match=r"Cannot create the lock file .*must be writable to run a harvest"
        ),
        job_lock(url),
    ):
        pass


@pytest.mark.postgres
def test_losing_the_postgres_lock_connection_stops_the_job(postgres_url: str) -> None:
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    database = make_url(postgres_url).database
    with job_lock(postgres_url) as lock:
        lock.check()
        with admin.connect() as connection:
            killed = connection.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = :db AND application_name LIKE 'ketamine-evidence harvest pid%'"
                ),
                {"db": database},
            ).scalar()
        assert killed == 1
        with pytest.raises(LockLostError, match="connection holding the lock dropped"):
            lock.check()
    admin.dispose()
    acquire_eventually(postgres_url, seconds=5)


# --- two real harvests -------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_second_harvest_exits_saying_another_is_running(db_url: str, server: HTTPServer) -> None:
    fake = FakeEutils(server, make_records(25))
    fake.inject("efetch", None, Fault.HANG)  # the first harvest stalls in its second batch, lock held
    env = child_env(DATABASE_URL=db_url, EUTILS_BASE_URL=fake.base_url)
    first = subprocess.Popen([sys.executable, "-c", _HARVEST], env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert fake.hung.wait(timeout=60), "the first harvest never reached its second batch"
        second = subprocess.run(
            [sys.executable, "-m", "ingest.cli", "harvest", "--query", "ketamine AND depression"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        fake.release.set()
    _, first_err = first.communicate(timeout=60)

    assert first.returncode == 0, first_err
    assert second.returncode == 1
    assert second.stderr.strip() == (
        f"error: Another harvest (pid {first.pid} on {socket.gethostname()}, started "
        + second.stderr.split("started ", 1)[1].split(")", 1)[0]
        + ") is running on this database; wait for it or stop it."
    )
    with open_session(db_url) as session:
        runs = list(session.scalars(select(HarvestRun)))
    assert [(run.status, run.records_new) for run in runs] == [
        ("succeeded", 25)
    ]  # the refused one left no run
