"""The audit trail is append-only in the database itself, not only through the ORM.

db.models.review refuses changes to an AuditEvent object, but SQL sent another way (a script, a
psql session, a bulk update) would pass it by. Triggers refuse UPDATE and DELETE of audit_event
rows on both databases, and TRUNCATE on PostgreSQL, whoever sends them. Restoring a dump over a
database (`restore --replace`) is the one legitimate wholesale delete: it lifts the guard inside
its own transaction (audit_guard_lifted), so the guard is back, or was never gone, when it ends.

Like the full-text index, this is installed by init_db with its own idempotent DDL rather than by
a migration, so a database that lost a trigger gets it back at the next start.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

MESSAGE = "audit events are append-only; record a new event that corrects it instead"

_SQLITE = {
    "audit_event_no_update": "BEFORE UPDATE",
    "audit_event_no_delete": "BEFORE DELETE",
}
_PG_FUNCTION = "audit_event_append_only"
_PG_LOCK = 0x6B65_6167  # pg_advisory_xact_lock key, apart from the migrations' own
_PG = {
    "audit_event_no_change": "BEFORE UPDATE OR DELETE ON audit_event FOR EACH ROW",
    "audit_event_no_truncate": "BEFORE TRUNCATE ON audit_event FOR EACH STATEMENT",
}


def install_audit_guard(engine: Engine) -> None:
    """Create the triggers that are missing. Cheap when they are all there."""
    with engine.begin() as connection:
        _install(connection)


@contextmanager
def audit_guard_lifted(connection: Connection) -> Iterator[None]:
    """Within the caller's transaction: drop the triggers, run the block, put them back.

    Both databases run DDL inside transactions, so other connections never see the guard gone,
    and a failure rolls the drop back with everything else.
    """
    for name in _SQLITE if connection.dialect.name == "sqlite" else _PG:
        connection.exec_driver_sql(_drop_sql(connection, name))
    yield
    _install(connection)


def _install(connection: Connection) -> None:
    dialect = connection.dialect.name
    if dialect == "sqlite":
        present = set(
            connection.execute(
                text("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_event'")
            ).scalars()
        )
        for name, timing in _SQLITE.items():
            if name not in present:
                connection.exec_driver_sql(
                    f"CREATE TRIGGER IF NOT EXISTS {name} {timing} ON audit_event "
                    f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
                )
    elif dialect == "postgresql":
        if set(_PG) <= _pg_triggers(connection):
            return
        # Two processes starting at once: the second waits here, then finds the triggers made.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})
        present = _pg_triggers(connection)
        # restrict_violation: SQLAlchemy reports it as an IntegrityError, as SQLite's ABORT is.
        connection.exec_driver_sql(
            f"CREATE OR REPLACE FUNCTION {_PG_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'restrict_violation'; END $$"
        )
        for name, timing in _PG.items():
            if name not in present:
                connection.exec_driver_sql(
                    f"CREATE TRIGGER {name} {timing} EXECUTE FUNCTION {_PG_FUNCTION}()"
                )


def _pg_triggers(connection: Connection) -> set[str]:
    return set(
        connection.execute(
            text("SELECT tgname FROM pg_trigger WHERE tgrelid = 'audit_event'::regclass AND NOT tgisinternal")
        ).scalars()
    )


def _drop_sql(connection: Connection, name: str) -> str:
    if connection.dialect.name == "sqlite":
        return f"DROP TRIGGER IF EXISTS {name}"
    return f"DROP TRIGGER IF EXISTS {name} ON audit_event"
