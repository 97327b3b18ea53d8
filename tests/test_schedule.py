"""`harvest --schedule daily`: when runs happen, that a failed run does not end the loop, and clean stops."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import select

from db.engine import open_session
from db.models import Article, HarvestRun
from db.ops.locks import job_lock
from ingest import schedule
from ingest.cli import main
from ingest.schedule import next_daily_run, run_daily
from tests.conftest import PROJECT_ROOT
from tests.eutils_server import FakeEutils, cleared, make_records, running_server

START = datetime(2026, 3, 10, 14, 30, tzinfo=UTC)


class FakeTime:
    """A clock that moves only when something sleeps; records each nap."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.naps: list[float] = []

    def clock(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.naps.append(seconds)
        self.now += timedelta(seconds=seconds)


def test_next_run_is_today_when_the_time_is_still_ahead_else_tomorrow() -> None:
    assert next_daily_run(START, time(15, 0)) == START.replace(hour=15, minute=0)
    assert next_daily_run(START, time(3, 0)) == datetime(2026, 3, 11, 3, 0, tzinfo=UTC)
    assert next_daily_run(START, time(14, 30)) == START  # due right now


def test_runs_happen_daily_at_the_time_and_a_failed_run_does_not_stop_the_loop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeTime(START)
    started: list[datetime] = []

    def job() -> None:
        started.append(fake.now)
        if len(started) == 1:
            raise RuntimeError("Cannot reach the database X (connection refused); check that it is running.")

    with caplog.at_level(logging.INFO, logger="ketamine_evidence.schedule"):
        assert run_daily(job, time(3, 0), clock=fake.clock, sleep=fake.sleep, max_runs=3) == 0

    assert started == [datetime(2026, 3, d, 3, 0, tzinfo=UTC) for d in (11, 12, 13)]
    assert max(fake.naps) <= schedule.MAX_NAP_SECONDS  # short naps: the clock is read again often
    messages = [record.getMessage() for record in caplog.records]
    assert (
        "Harvest 1 failed: Cannot reach the database X (connection refused); check that it is running.; the next one goes ahead as planned."
        in messages
    )
    assert messages.count("Harvest 2 finished.") == 1 and messages.count("Harvest 3 finished.") == 1
    assert "Next harvest at 2026-03-11 03:00 UTC." in messages


def test_ctrl_c_while_waiting_stops_cleanly() -> None:
    def interrupt(_seconds: float) -> None:
        raise KeyboardInterrupt

    assert run_daily(lambda: pytest.fail("ran"), time(3, 0), clock=lambda: START, sleep=interrupt) == 0


# --- the real command ------------------------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[HTTPServer]:
    with running_server() as started, cleared(started):
        yield started


def test_scheduled_harvests_survive_a_busy_lock_and_a_bad_setting_then_harvest(
    sqlite_url: str,
    server: HTTPServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake_eutils = FakeEutils(server, make_records(12))
    monkeypatch.setenv("EUTILS_BASE_URL", fake_eutils.base_url)
    fake = FakeTime(START)
    lock = job_lock(sqlite_url)
    lock.__enter__()  # run 1 finds another harvest holding the database
    naps = {"count": 0}

    def sleep(seconds: float) -> None:
        # Each wait between runs changes the world a little, like a day passing.
        fake.sleep(seconds)
        if fake.now.timetz() != time(3, 0, tzinfo=UTC):  # only the nap that ends at a run's time
            return
        naps["count"] += 1
        if naps["count"] == 2:
            lock.__exit__(None, None, None)
            monkeypatch.delenv("NCBI_EMAIL")  # run 2: misconfigured
        elif naps["count"] == 3:
            monkeypatch.setenv("NCBI_EMAIL", "tests@example.org")  # run 3: fixed
        elif naps["count"] == 4:
            raise KeyboardInterrupt  # the operator stops the loop before run 4

    monkeypatch.setattr(schedule, "local_now", fake.clock)
    monkeypatch.setattr(schedule, "pause", sleep)

    status = main(["harvest", "--schedule", "daily", "--at", "03:00", "--query", "ketamine AND depression"])

    out, err = capsys.readouterr()
    assert status == 0
    assert "Harvest 1 failed: Another harvest (pid " in err and "wait for it or stop it." in err
    assert "Harvest 2 failed: NCBI_EMAIL is not set." in err
    assert "Harvest 3 finished." in err and err.rstrip().endswith("Stopped; no harvest was running.")
    assert "12 matching, 12 new" in out
    with open_session(sqlite_url) as session:
        assert len(list(session.scalars(select(Article)))) == 12
        assert [run.status for run in session.scalars(select(HarvestRun))] == ["succeeded"]


def test_since_is_refused_with_schedule(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["harvest", "--schedule", "daily", "--since", "2024-01-01"]) == 1
    assert "--since with --schedule would fetch the same days every time" in capsys.readouterr().err


@pytest.mark.slow
def test_sigterm_stops_the_scheduler_between_runs(sqlite_url: str) -> None:
    at = (datetime.now() + timedelta(hours=2)).strftime("%H:%M")
    env = {
        **os.environ,
        "DATABASE_URL": sqlite_url,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])),
    }
    child = subprocess.Popen(
        [sys.executable, "-m", "ingest.cli", "harvest", "--schedule", "daily", "--at", at],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stderr is not None
    first = child.stderr.readline()
    assert "Next harvest at " in first and f" {at} " in first

    child.send_signal(signal.SIGTERM)
    _, rest = child.communicate(timeout=30)

    assert child.returncode == 0
    assert rest.strip().endswith("Stopped; no harvest was running.")
