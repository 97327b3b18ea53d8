"""What `ketamine-evidence db current` and `db revision` ask of the migrations: state, and a new revision."""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import Engine

from db import migrations


@dataclass(frozen=True)
class SchemaState:
    """A database's revision (None: no migrations applied), this release's head, and whether it has tables."""

    revision: str | None
    head: str
    has_tables: bool


def schema_state(engine: Engine) -> SchemaState:
    head = migrations.head_revision()
    with engine.connect() as connection:
        revision = migrations.current_revision(connection)
        tables = set(inspect(connection).get_table_names()) & migrations.model_tables()
    return SchemaState(revision, head, bool(tables))


def write_revision(message: str) -> list[str]:
    """Autogenerate a migration from the models against a scratch SQLite database at head; its paths."""
    script = ScriptDirectory.from_config(migrations.alembic_config())
    number = len(list(script.walk_revisions())) + 1
    slug = re.sub(r"[^a-z0-9]+", "_", message.lower()).strip("_")[:40] or "change"
    with tempfile.TemporaryDirectory() as folder:
        engine = create_engine(f"sqlite:///{Path(folder) / 'scratch.sqlite3'}")
        with engine.connect() as connection:
            command.upgrade(migrations.alembic_config(connection), "head")
            connection.commit()
            config = migrations.alembic_config(connection)
            config.set_main_option("file_template", "%%(rev)s")
            written = command.revision(
                config, message=message, autogenerate=True, rev_id=f"{number:04d}_{slug}"
            )
        engine.dispose()
    return [item.path for item in (written if isinstance(written, list) else [written]) if item is not None]
