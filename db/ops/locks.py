"""One job of a kind at a time per database: a PostgreSQL advisory lock, or an OS file lock beside SQLite."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from db.engine import describe_operational_error
from db.errors import DatabaseError

_APPLICATION_NAME = re.compile(r"pid (\d+) on (.*)$")


class LockBusyError(DatabaseError):
    """Another process holds the lock; the message says who and what to do."""


class LockLostError(DatabaseError):
    """The lock's database connection dropped, so the job can no longer be sure it runs alone."""


@dataclass(frozen=True)
class LockHolder:
    """Who holds a lock, as far as can be told (any field may be unknown)."""

    pid: int | None
    host: str | None
    started: datetime | None

    def describe(self) -> str:
        who = f"pid {self.pid}" if self.pid is not None else "an unknown process"
        where = f" on {self.host}" if self.host else ""
        when = f", started {self.started.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC" if self.started else ""
        return f"{who}{where}{when}"


class HeldLock:
    """A lock held for the life of a job; `check()` raises LockLostError if it was lost."""

    def __init__(self, connection: Connection | None = None, url: str = "") -> None:
        self._connection = connection
        self._url = url

    def check(self) -> None:
        if self._connection is None:
            return  # a file lock lives as long as this process: it cannot be lost
        try:
            self._connection.exec_driver_sql("SELECT 1")
        except OperationalError as exc:
            raise LockLostError(
                f"The connection holding the lock dropped ({describe_operational_error(self._url, exc)}); "
                "stopping so that two jobs never run at once. Run it again: committed work is kept."
            ) from exc


def lock_key(purpose: str) -> int:
    """The advisory-lock number for `purpose`: stable across processes and releases, below 2**31."""
    return int.from_bytes(hashlib.sha256(f"ketamine-evidence:{purpose}".encode()).digest()[:4]) >> 1


@contextmanager
def job_lock(url: str, purpose: str = "harvest") -> Iterator[HeldLock]:
    """Hold the database's `purpose` lock while the block runs, or raise LockBusyError at once.

    PostgreSQL: a session advisory lock on a connection of its own, released when it closes
    (so also when the process is killed). SQLite: an exclusive flock on `<database>-<purpose>.lock`
    beside the file, which the kernel releases when the process ends; no stale lock to clean up.
    """
    backend = make_url(url).get_backend_name()
    if backend == "postgresql":
        with _postgres_lock(url, purpose) as held:
            yield held
    elif backend == "sqlite":
        path = sqlite_lock_path(url, purpose)
        if path is None:  # an in-memory database lives in one process: nobody else can reach it
            yield HeldLock()
            return
        with _file_lock(path, purpose, url):
            yield HeldLock()
    else:
        raise DatabaseError(f"No job lock for {backend!r} databases; use SQLite or PostgreSQL.")


def _busy_message(purpose: str, holder: LockHolder) -> str:
    return f"Another {purpose} ({holder.describe()}) is running on this database; wait for it or stop it."


# --- PostgreSQL ------------------------------------------------------------------------------------


@contextmanager
def _postgres_lock(url: str, purpose: str) -> Iterator[HeldLock]:
    key = lock_key(purpose)
    name = f"ketamine-evidence {purpose} pid {os.getpid()} on {socket.gethostname()}"
    # NullPool: the connection really closes afterwards, so the lock can never linger in a pool.
    engine = create_engine(
        url, poolclass=NullPool, connect_args={"application_name": name[:63]}, isolation_level="AUTOCOMMIT"
    )
    try:
        with engine.connect() as connection:
            got = connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar()
            if not got:
                raise LockBusyError(_busy_message(purpose, _postgres_holder(connection, key)))
            try:
                yield HeldLock(connection, url)
            finally:
                if not connection.invalidated:
                    with suppress(SQLAlchemyError):  # a dropped connection has released it already
                        connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
    except OperationalError as exc:
        raise DatabaseError(describe_operational_error(url, exc)) from exc
    finally:
        engine.dispose()


def _postgres_holder(connection: Connection, key: int) -> LockHolder:
    row = connection.execute(
        text(
            "SELECT a.application_name, a.backend_start FROM pg_locks AS l "
            "JOIN pg_stat_activity AS a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = 0 AND l.objid = :key "
            "AND l.objsubid = 1 AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ),
        {"key": key},
    ).first()
    if row is None:
        return LockHolder(None, None, None)
    match = _APPLICATION_NAME.search(row[0] or "")
    if match is None:
        return LockHolder(None, None, row[1])
    return LockHolder(int(match.group(1)), match.group(2), row[1])


# --- SQLite ----------------------------------------------------------------------------------------


def sqlite_lock_path(url: str, purpose: str) -> Path | None:
    """`<database>-<purpose>.lock` beside the SQLite file, or None for an in-memory database."""
    database = make_url(url).database or ""
    if database.startswith("file:"):
        database = database[len("file:") :].split("?", 1)[0]
    if not database or database == ":memory:" or "mode=memory" in url:
        return None
    return Path(database).expanduser().with_name(f"{Path(database).name}-{purpose}.lock")


@contextmanager
def _file_lock(path: Path, purpose: str, url: str) -> Iterator[None]:
    try:
        # "a+" never truncates before the lock is ours: the holder's details stay readable.
        handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115  (closed below, after unlocking)
    except OSError as exc:
        raise DatabaseError(
            f"Cannot create the lock file {path} ({exc.strerror}); the database's folder must be writable "
            f"to run a {purpose}."
        ) from exc
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockBusyError(_busy_message(purpose, _file_holder(handle))) from None
        _write_holder(handle)
        yield
    finally:
        handle.close()  # closing releases the flock


def _write_holder(handle: IO[str]) -> None:
    handle.seek(0)
    handle.truncate()
    holder = {"pid": os.getpid(), "host": socket.gethostname(), "started": datetime.now(UTC).isoformat()}
    handle.write(json.dumps(holder) + "\n")
    handle.flush()


def _file_holder(handle: IO[str]) -> LockHolder:
    handle.seek(0)
    try:
        data: dict[str, Any] = json.loads(handle.read() or "{}")
        started = datetime.fromisoformat(data["started"]) if data.get("started") else None
        return LockHolder(data.get("pid"), data.get("host"), started)
    except (ValueError, TypeError):
        return LockHolder(None, None, None)  # the holder is still writing its details
