"""Running a shared instance: dump, restore, and the schema's migrations (db upgrade|current|revision)."""

from __future__ import annotations

from pathlib import Path

import click

from ingest.cli.output import say, warn
from ingest.cli.session import database_session, database_url, display_url


@click.command(
    "dump",
    short_help="Write the whole database to a folder of JSON Lines files (engine-neutral backup).",
    help="Dump every table into DIR as one JSON Lines file per table, in primary-key order, plus "
    "manifest.json with the format version, the schema revision, row counts and SHA-256 checksums. The "
    "same data gives byte-identical dumps on SQLite and PostgreSQL.",
)
@click.option(
    "-o",
    "--output",
    "directory",
    required=True,
    metavar="DIR",
    type=click.Path(path_type=Path),
    help="a new or empty folder",
)
def dump_command(directory: Path) -> int:
    from db.ops.backup import dump_database

    manifest = dump_database(database_url(), directory)
    say(
        f"Dumped {manifest.total_rows:,} rows of {len(manifest.tables)} tables to {directory} "
        f"(schema revision {manifest.schema_revision or 'none'})."
    )
    return 0


@click.command(
    "restore",
    short_help="Load a dump into an empty database (SQLite or PostgreSQL), all in one transaction.",
    help="Check the manifest, checksums and row counts of the dump in DIR (the folder `dump -o` wrote), "
    "then load it into DATABASE_URL in one transaction. The database must be empty unless --replace is "
    "given.",
)
@click.argument("directory", metavar="DIR", type=click.Path(path_type=Path))
@click.option(
    "--replace", is_flag=True, help="delete everything in the database first (in the same transaction)"
)
def restore_command(directory: Path, replace: bool) -> int:
    from db.ops.backup import restore_database

    manifest = restore_database(database_url(), directory, replace=replace)
    say(f"Restored {manifest.total_rows:,} rows of {len(manifest.tables)} tables from {directory}.")
    return 0


@click.group(
    "db",
    short_help="Schema migrations: upgrade the database to this release, show its revision.",
    help="The schema is versioned with Alembic migrations (db/migrations). Every command and the dashboard "
    "apply pending migrations at start; `db upgrade` does it on its own, e.g. right after installing a "
    "new release and before restarting the dashboard.",
)
def db_group() -> None:
    pass


@db_group.command("upgrade", help="Apply pending migrations (safe to repeat).")
def db_upgrade() -> int:
    from db import migrations
    from db.engine import engine_for
    from db.errors import DatabaseError

    url = database_url()
    try:
        outcome = migrations.upgrade(engine_for(url))
    except migrations.MigrationError as exc:
        raise DatabaseError(str(exc)) from exc
    where = display_url(url)
    if outcome.created:
        say(f"Created the tables of {where} at revision {outcome.after}.")
    elif outcome.adopted:
        say(f"{where} was made before migrations; its tables match, now at revision {outcome.after}.")
    elif outcome.changed:
        say(f"Upgraded {where} from revision {outcome.before} to {outcome.after}.")
    else:
        say(f"{where} is up to date (revision {outcome.after}).")
    return 0


@db_group.command("current", help="Show the database's revision and this release's.")
def db_current() -> int:
    from db.engine import engine_for
    from db.migrations.authoring import schema_state

    url = database_url()
    state = schema_state(engine_for(url))
    where, head = display_url(url), state.head
    if state.revision is None and not state.has_tables:
        say(f"{where} is empty; `ketamine-evidence db upgrade` creates the tables (revision {head}).")
    elif state.revision is None:
        say(
            f"{where} was made before migrations; `ketamine-evidence db upgrade` adopts it (revision {head})."
        )
    elif state.revision == head:
        say(f"{where} is at revision {state.revision} (this release's head).")
    else:
        say(
            f"{where} is at revision {state.revision}; this release is at {head}: run `ketamine-evidence db upgrade`."
        )
    return 0


@db_group.command(
    "revision",
    help="(developers) Write a new migration from the difference between the models and the migrations.",
)
@click.option("-m", "--message", required=True, help="what the migration changes, in a few words")
def db_revision(message: str) -> int:
    from db.migrations.authoring import write_revision

    paths = write_revision(message)
    say(f"Wrote {', '.join(paths)}; read it, test it on both engines, and commit it with the model change.")
    return 0


@click.group("audit", help="Check the audit trail: its hash chain and the guard that keeps it append-only.")
def audit_group() -> None:
    pass


@audit_group.command(
    "verify",
    short_help="Check that no audit event was changed, deleted or slipped in.",
    help="Walk the audit trail's hash chain: every event sealed once at commit, unchanged since, in an "
    "unbroken chain; and check the guard's triggers. Prints the chain's head: keep it somewhere else "
    "(a log, a ticket) and compare later, since an owner of the tables could rewrite the whole chain. "
    "Exit 1 when anything is wrong.",
)
def audit_verify_command() -> int:
    from db.engine import engine_for
    from db.review.audit_chain import verify_audit_chain
    from db.review.audit_guard import audit_guard_problems

    url = database_url()
    with database_session() as session:
        report = verify_audit_chain(session)
    problems = [*report.problems, *audit_guard_problems(engine_for(url))]
    for problem in problems:
        warn(f"problem: {problem}")
    if problems:
        raise click.ClickException(
            f"The audit trail of {display_url(url)} is not intact ({len(problems)} problem(s) above); "
            "restore the last good dump, or investigate who changed the database (docs/deploy.md)."
        )
    say(f"Audit trail intact: {report.events:,} events, each sealed once; head {report.head or '(empty)'}.")
    return 0


COMMANDS = [dump_command, restore_command, db_group, audit_group]
