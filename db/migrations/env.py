"""Alembic's environment: our engine, SQLModel.metadata, batch mode on SQLite, full-text objects left alone."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from db.migrations import configure_context, load_models

load_models()


def _run(connection: Connection) -> None:
    configure_context(context, connection, SQLModel.metadata)
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:  # db.migrations.upgrade passes its own connection and transaction
        _run(connection)
        return
    # The `alembic` command line itself: DATABASE_URL, as everywhere else.
    from db.engine import engine_for
    from db.settings import load_settings

    with engine_for(load_settings().database_url).connect() as connection:
        _run(connection)
        connection.commit()


if context.is_offline_mode():
    raise SystemExit("Offline (--sql) migrations are not supported; run them against a database.")
_main()
