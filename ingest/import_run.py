"""One file's import as a run: its log entry, every batch stored in its own transaction, a failure logged."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from db.corpus.runs import finish_run, start_run
from db.engine import describe_operational_error, init_db, open_session
from db.errors import DatabaseError
from db.models import HarvestRun
from db.ops.locks import job_lock
from db.vocab import RunStatus
from ingest.items import StoredItem
from ingest.records import PubmedFormatError
from ingest.store import store_batch

if TYPE_CHECKING:
    from ingest.importer import Progress, ReadPosition

log = logging.getLogger("ingest.importer")


def store_file(
    database_url: str,
    path: Path,
    batches: Iterator[list[StoredItem]],
    position: ReadPosition,
    progress: Progress | None,
    *,
    allow_older: bool,
) -> HarvestRun:
    """Migrate the database if need be, then store the batches of `path` as one import run (see import_file)."""
    init_db(database_url)
    # The harvest's lock: an import and a harvest writing the same new records at once would make one
    # of them fail its batch.
    with job_lock(database_url, "harvest"), open_session(database_url) as session:
        return _store_all(database_url, path, session, batches, position, progress, allow_older)


def _store_all(
    database_url: str,
    path: Path,
    session: Session,
    batches: Iterator[list[StoredItem]],
    position: ReadPosition,
    progress: Progress | None,
    allow_older: bool,
) -> HarvestRun:
    run = start_run(session, kind="import", query=str(path))
    done = 0
    try:
        for items in batches:
            store_batch(session, run, items, keep_newer=not allow_older)
            done += len(items)
            if progress:
                # The total is estimated from the share of the file read so far.
                estimate = int(done / position.fraction) if position.fraction > 0 else None
                progress(done, max(estimate, done) if estimate else None)
        run.count = done
        if done == 0:
            raise PubmedFormatError(f"{path}: holds no PubMed records; check that it is the file you meant.")
        finish_run(session, run, RunStatus.SUCCEEDED)
    except PubmedFormatError as exc:
        _fail(session, run, str(exc))
        raise
    except OperationalError as exc:
        message = describe_operational_error(database_url, exc)
        _fail(session, run, message)
        raise DatabaseError(message) from exc
    except BaseException as exc:  # Ctrl-C or a bug: the committed batches stay, the run says failed
        _fail(session, run, f"{type(exc).__name__}: {exc}".strip())
        raise
    log.info(
        "imported %s: %d new, %d updated, %d unchanged",
        path,
        run.records_new,
        run.records_updated,
        run.records_unchanged,
    )
    return run


def _fail(session: Session, run: HarvestRun, message: str) -> None:
    session.rollback()
    try:
        finish_run(session, run, RunStatus.FAILED, message)
    except OperationalError:
        log.warning("could not log the failed run %s: the database is not writable", run.id)
