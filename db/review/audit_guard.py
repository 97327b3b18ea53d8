"""The audit trail is append-only in the database itself, not only through the ORM.

db.models.review refuses changes to an AuditEvent object, but SQL sent another way (a script, a
psql session, a bulk update) would pass it by. Triggers refuse UPDATE and DELETE of the trail's rows
(audit_event and its seals, audit_chain) on both databases, and TRUNCATE on PostgreSQL, whoever sends
them. Restoring a dump over a database (`restore --replace`) is the one legitimate wholesale delete:
it lifts the guard inside its own transaction (audit_guard_lifted), so the guard is back, or was
never gone, when it ends.

The owner of the tables can still drop or disable triggers. Every start checks: a trigger that is
missing is put back and a disabled one is reported, both loudly (the log and `info`), and the hash
chain (db.review.audit_chain) finds whatever was changed meanwhile. docs/deploy.md explains how to run
the application under a role that cannot do either.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

log = logging.getLogger(__name__)

MESSAGE = "audit events are append-only; record a new event that corrects it instead"
TABLES = ("audit_event", "audit_chain")

_SQLITE = {
    f"{table}_no_{verb.lower()}": (table, f"BEFORE {verb}")
    for table in TABLES
    for verb in ("UPDATE", "DELETE")
}
_PG_FUNCTION = "audit_event_append_only"
_PG_LOCK = 0x6B65_6167  # pg_advisory_xact_lock key, apart from the migrations' own
_PG = {
    name: (table, timing)
    for table in TABLES
    for name, timing in (
        (f"{table}_no_change", f"BEFORE UPDATE OR DELETE ON {table} FOR EACH ROW"),
        (f"{table}_no_truncate", f"BEFORE TRUNCATE ON {table} FOR EACH STATEMENT"),
    )
}


def install_audit_guard(engine: Engine) -> list[str]:
    """Create the triggers that are missing; return what was wrong, each said loudly in the log.

    Cheap when they are all there and enabled. A new database (no audit events yet) gets its triggers
    without a word; anywhere else a missing or disabled trigger means someone changed the database
    outside the application.
    """
    with engine.begin() as connection:
        problems = _install(connection)
    for problem in problems:
        log.error("Audit guard: %s", problem)
    return problems


def audit_guard_problems(engine: Engine) -> list[str]:
    """What is wrong with the guard now (missing or disabled triggers), without changing anything."""
    with engine.connect() as connection:
        return _problems(connection, _present(connection))


@contextmanager
def audit_guard_lifted(connection: Connection) -> Iterator[None]:
    """Within the caller's transaction: drop the triggers, run the block, put them back.

    Both databases run DDL inside transactions, so other connections never see the guard gone,
    and a failure rolls the drop back with everything else.
    """
    for name, (table, _) in (_SQLITE if connection.dialect.name == "sqlite" else _PG).items():
        connection.exec_driver_sql(_drop_sql(connection, name, table))
    yield
    _install(connection, quietly=True)


def _install(connection: Connection, *, quietly: bool = False) -> list[str]:
    dialect = connection.dialect.name
    if dialect not in ("sqlite", "postgresql"):
        return []
    present = _present(connection)
    wanted = _SQLITE if dialect == "sqlite" else _PG
    problems = [] if quietly or not _has_events(connection) else _problems(connection, present)
    if set(wanted) <= set(present):
        return problems
    if dialect == "sqlite":
        for name, (table, timing) in wanted.items():
            if name not in present:
                connection.exec_driver_sql(
                    f"CREATE TRIGGER IF NOT EXISTS {name} {timing} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
                )
        return problems
    # Two processes starting at once: the second waits here, then finds the triggers made.
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})
    present = _present(connection)
    # restrict_violation: SQLAlchemy reports it as an IntegrityError, as SQLite's ABORT is.
    connection.exec_driver_sql(
        f"CREATE OR REPLACE FUNCTION {_PG_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'restrict_violation'; END $$"
    )
    for name, (_, timing) in wanted.items():
        if name not in present:
            connection.exec_driver_sql(f"CREATE TRIGGER {name} {timing} EXECUTE FUNCTION {_PG_FUNCTION}()")
    return problems


def _problems(connection: Connection, present: dict[str, bool]) -> list[str]:
    wanted = _SQLITE if connection.dialect.name == "sqlite" else _PG
    problems = [f"trigger {name} was missing; it is back now" for name in wanted if name not in present]
    problems += [
        f"trigger {name} on {wanted[name][0]} is DISABLED, so the audit trail can be changed; run "
        f"`ALTER TABLE {wanted[name][0]} ENABLE TRIGGER {name}` and `ketamine-evidence audit verify`"
        for name, enabled in present.items()
        if name in wanted and not enabled
    ]
    return problems


def _present(connection: Connection) -> dict[str, bool]:
    """The guard's triggers that exist, and whether each is enabled."""
    if connection.dialect.name == "sqlite":
        names = connection.execute(
            text(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN ('audit_event', 'audit_chain')"
            )
        ).scalars()
        return dict.fromkeys(names, True)  # SQLite triggers cannot be disabled, only dropped
    rows = connection.execute(
        text(
            "SELECT tgname, tgenabled <> 'D' FROM pg_trigger "
            "WHERE tgrelid IN ('audit_event'::regclass, 'audit_chain'::regclass) AND NOT tgisinternal"
        )
    ).all()
    return {name: bool(enabled) for name, enabled in rows}


def _has_events(connection: Connection) -> bool:
    return connection.execute(text("SELECT 1 FROM audit_event LIMIT 1")).first() is not None


def _drop_sql(connection: Connection, name: str, table: str) -> str:
    if connection.dialect.name == "sqlite":
        return f"DROP TRIGGER IF EXISTS {name}"
    return f"DROP TRIGGER IF EXISTS {name} ON {table}"
