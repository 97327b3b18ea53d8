"""Engine creation and sessions: the only module that knows SQLite from PostgreSQL."""

from __future__ import annotations

import contextlib
import functools
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlmodel import Session, create_engine

from db import migrations
from db.corpus.fulltext import install_fulltext
from db.errors import DatabaseError
from db.review.audit_guard import install_audit_guard

# The engines and drivers we ship and test; anything else would fail later with a raw import error.
SUPPORTED_DRIVERS = frozenset({("sqlite", "pysqlite"), ("postgresql", "psycopg")})
SQLITE_CACHE_KIB = 8 * 1024
SQLITE_BUSY_TIMEOUT_MS = 30_000


@functools.cache
def engine_for(url: str) -> Engine:
    """Process-wide engine for `url`, created on first use."""
    engine = _new_engine(url)
    _ENGINES.append(engine)
    return engine


_ENGINES: list[Engine] = []


def dispose_engines() -> None:
    """Close every pooled connection of every engine this process made (at exit: SQLite's WAL is then
    checkpointed and its files tidied, PostgreSQL sees a clean goodbye)."""
    for engine in _ENGINES:
        engine.dispose()


def _new_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseError(
            f"DATABASE_URL {url!r} is not a database URL; use sqlite:///PATH or "
            "postgresql+psycopg://USER@HOST/DB."
        ) from exc
    backend, driver = parsed.get_backend_name(), parsed.get_driver_name()
    if (backend, driver) not in SUPPORTED_DRIVERS:
        where = parsed.render_as_string(hide_password=True)
        if backend == "postgresql":
            raise DatabaseError(
                f"DATABASE_URL {where!r} asks for the {driver} driver, which is not installed; "
                "write the URL as postgresql+psycopg://USER@HOST/DB."
            )
        raise DatabaseError(
            f"DATABASE_URL {where!r} is a {backend} database, which Ketamine Evidence does not support; "
            "use sqlite:///PATH or postgresql+psycopg://USER@HOST/DB."
        )
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:" and not parsed.database.startswith("file:"):
            path = Path(parsed.database).expanduser()
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise DatabaseError(
                    f"Cannot create the folder {path.parent} for the SQLite database ({exc.strerror}); "
                    "set DATABASE_URL to a writable location."
                ) from exc
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            json_serializer=_json_dumps,
            json_deserializer=orjson.loads,
        )
        event.listen(engine, "connect", _sqlite_on_connect)
        return engine
    return create_engine(url, pool_pre_ping=True, json_serializer=_json_dumps, json_deserializer=orjson.loads)


def _json_dumps(value: Any) -> str:
    # JSON columns are written for every harvested record; orjson keeps that off the hot path.
    return orjson.dumps(value).decode("utf-8")


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # SQLite ignores FOREIGN KEY clauses unless each connection opts in.
    cursor.execute("PRAGMA foreign_keys = ON")
    # WAL lets the dashboard read while a harvest writes; the busy timeout makes a
    # second writer wait instead of failing with "database is locked".
    cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    with contextlib.suppress(sqlite3.OperationalError):  # a read-only file keeps its mode; reads still work
        cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")
    # An 8 MiB page cache (the default is 2 MiB): an import re-reads fewer b-tree and full-text pages
    # through the OS (a third less system time). More bought little and pushed an import's peak memory
    # past its 200 MB budget (docs/performance.md).
    cursor.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
    cursor.close()


def init_db(url: str) -> Engine:
    """Bring the schema to this release and return the engine. Safe (and cheap) to call at every start.

    An empty database gets every table; an older one gets the pending migrations (logged as a
    warning: "Upgraded the database ... from revision A to B"); a database made before
    migrations existed is checked against the baseline and stamped (see db.migrations.upgrade).
    """
    engine = engine_for(url)
    try:
        migrations.upgrade(engine)
        install_fulltext(engine)  # the full-text index and the triggers that keep it in sync
        install_audit_guard(engine)  # audit_event refuses UPDATE and DELETE, however they are sent
    except migrations.MigrationError as exc:
        raise DatabaseError(str(exc)) from exc
    except OperationalError as exc:
        raise DatabaseError(describe_operational_error(url, exc)) from exc
    return engine


def write_lock(session: Session, key: int) -> None:
    """Hold, until the session's transaction ends, the right to write what `key` names.

    For a read-then-write that two processes may run at once (the first start's seed content):
    PostgreSQL takes the advisory lock `key`; SQLite takes the database's write lock now, before the
    read, since upgrading a read to a write later fails at once ("database is locked") if another
    process wrote meanwhile.
    """
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
    elif connection.dialect.name == "sqlite":
        driver = connection.connection.driver_connection
        if driver is not None and not driver.in_transaction:
            connection.exec_driver_sql("BEGIN IMMEDIATE")


@contextmanager
def open_session(url: str) -> Iterator[Session]:
    """The one way to open a session. The caller commits; an exception rolls back."""
    with Session(engine_for(url), expire_on_commit=False) as session:
        yield session


def describe_operational_error(url: str, exc: OperationalError) -> str:
    """Turn a driver error into one line that names the cause and the way out."""
    text = str(exc.orig) if exc.orig is not None else str(exc)
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    where = make_url(url).render_as_string(hide_password=True)
    lowered = first.lower()
    if "readonly" in lowered or "read-only" in lowered:
        return f"The database {where} is read-only ({first}); check the file's permissions or DATABASE_URL."
    if "locked" in lowered:
        return (
            f"The database {where} is locked by another process ({first}); wait for it to finish and retry."
        )
    if "unable to open" in lowered:
        return f"Cannot open the database {where} ({first}); check that its folder exists and is writable."
    if "disk" in lowered and "full" in lowered:
        return f"The disk holding {where} is full ({first}); free some space and retry."
    if "connection" in lowered or "could not connect" in lowered or "connect" in lowered:
        return f"Cannot reach the database {where} ({first}); check that it is running and DATABASE_URL."
    return f"Database error on {where}: {first}"
