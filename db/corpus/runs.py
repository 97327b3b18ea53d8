"""The harvest-run log: start, progress, finish, and the last successful run of a query."""

from __future__ import annotations

import os
import socket
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from db.clock import utcnow
from db.corpus.articles import BatchOutcome
from db.models import HarvestRun
from db.vocab import RunStatus


def start_run(
    session: Session,
    kind: str,
    query: str,
    since: date | None = None,
    *,
    started_at: datetime | None = None,
) -> HarvestRun:
    """Log a new run (committing it at once, so a crash still leaves a trace)."""
    _mark_dead_runs_interrupted(session)
    run = HarvestRun(
        kind=kind,
        query=query,
        since=since,
        pid=os.getpid(),
        host=socket.gethostname(),
        started_at=started_at or utcnow(),
    )
    session.add(run)
    session.commit()
    return run


def _mark_dead_runs_interrupted(session: Session) -> None:
    # A run killed mid-way (SIGKILL, power loss) never finishes its own log entry.
    host = socket.gethostname()
    running = session.scalars(select(HarvestRun).where(col(HarvestRun.status) == RunStatus.RUNNING.value))
    for run in running:
        if run.host == host and run.pid is not None and not _pid_alive(run.pid):
            run.status = RunStatus.INTERRUPTED.value
            run.error = "The process ended without finishing this run (killed or crashed)."
            run.finished_at = run.finished_at or utcnow()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def record_batch(run: HarvestRun, outcome: BatchOutcome, requests_made: int | None = None) -> None:
    """Add a committed batch's counts to the run (the caller commits with the batch)."""
    run.records_new += outcome.new
    run.records_updated += outcome.updated
    run.records_unchanged += outcome.unchanged
    run.records_older += outcome.older
    run.records_deleted += outcome.deleted
    if requests_made is not None:
        run.requests_made = requests_made


def finish_run(session: Session, run: HarvestRun, status: RunStatus, error: str | None = None) -> None:
    """Close the run log entry and commit."""
    run.status = status.value
    run.error = error
    run.finished_at = utcnow()
    session.add(run)
    session.commit()


def last_successful_run(session: Session, query: str, kind: str = "harvest") -> HarvestRun | None:
    statement = (
        select(HarvestRun)
        .where(col(HarvestRun.kind) == kind, col(HarvestRun.query) == query)
        .where(col(HarvestRun.status) == RunStatus.SUCCEEDED.value)
        .order_by(col(HarvestRun.started_at).desc(), col(HarvestRun.id).desc())
        .limit(1)
    )
    return session.scalars(statement).first()


def recent_runs(session: Session, limit: int = 20) -> list[dict[str, Any]]:
    statement = select(HarvestRun).order_by(col(HarvestRun.id).desc()).limit(limit)
    return [run.model_dump() for run in session.scalars(statement)]
