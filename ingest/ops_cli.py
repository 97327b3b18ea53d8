"""CLI subcommands for running a shared instance: dump, restore, db upgrade/current, scheduled harvests."""

from __future__ import annotations

import argparse
import logging
import re
import signal
import sys
import tempfile
import time as time_module
from collections.abc import Callable
from datetime import datetime, time, timedelta
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from db import migrations
from db.engine import describe_operational_error, engine_for
from db.errors import DatabaseError
from db.ops.backup import dump_database, restore_database
from db.settings import load_settings

Command = Callable[[argparse.Namespace], int]
Clock = Callable[[], datetime]
Sleep = Callable[[float], None]

DEFAULT_AT = time(3, 0)
# Sleep in short steps and look at the clock again: a suspended laptop or a clock change then
# shifts the next run by at most this much instead of by the time spent asleep.
MAX_NAP_SECONDS = 60.0

schedule_log = logging.getLogger("ketamine_evidence.schedule")


def add_ops_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register dump and restore, and add `--schedule daily [--at HH:MM]` to the harvest command."""
    dump = commands.add_parser(
        "dump",
        help="write the whole database to a folder of JSON Lines files (engine-neutral backup)",
        description="Dump every table into DIR as one JSON Lines file per table, in primary-key order, "
        "plus manifest.json with the format version, the schema revision, row counts and SHA-256 "
        "checksums. The same data gives byte-identical dumps on SQLite and PostgreSQL.",
    )
    dump.add_argument("-o", "--output", type=Path, required=True, metavar="DIR", help="a new or empty folder")
    dump.set_defaults(func=cmd_dump)

    restore = commands.add_parser(
        "restore",
        help="load a dump into an empty database (SQLite or PostgreSQL), all in one transaction",
        description="Check a dump's manifest, checksums and row counts, then load it into DATABASE_URL "
        "in one transaction. The database must be empty unless --replace is given.",
    )
    restore.add_argument("directory", type=Path, metavar="DIR", help="the folder `dump -o` wrote")
    restore.add_argument(
        "--replace",
        action="store_true",
        help="delete everything in the database first (in the same transaction)",
    )
    restore.set_defaults(func=cmd_restore)

    db = commands.add_parser(
        "db",
        help="schema migrations: upgrade the database to this release, show its revision",
        description="The schema is versioned with Alembic migrations (db/migrations). Every command and "
        "the dashboard apply pending migrations at start; `db upgrade` does it on its own, e.g. right "
        "after installing a new release and before restarting the dashboard.",
    )
    db_commands = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    upgrade = db_commands.add_parser("upgrade", help="apply pending migrations (safe to repeat)")
    upgrade.set_defaults(func=cmd_db_upgrade)
    current = db_commands.add_parser("current", help="show the database's revision and this release's")
    current.set_defaults(func=cmd_db_current)
    revision = db_commands.add_parser(
        "revision",
        help="(developers) write a new migration from the difference between the models and the migrations",
    )
    revision.add_argument("-m", "--message", required=True, help="what the migration changes, in a few words")
    revision.set_defaults(func=cmd_db_revision)

    _add_schedule_options(commands.choices["harvest"])


# --- dump and restore ------------------------------------------------------------------------------


def cmd_dump(args: argparse.Namespace) -> int:
    url = load_settings().database_url
    manifest = dump_database(url, args.output)
    print(
        f"Dumped {manifest.total_rows:,} rows of {len(manifest.tables)} tables to {args.output} "
        f"(schema revision {manifest.schema_revision or 'none'})."
    )
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    url = load_settings().database_url
    manifest = restore_database(url, args.directory, replace=args.replace)
    print(f"Restored {manifest.total_rows:,} rows of {len(manifest.tables)} tables from {args.directory}.")
    return 0


# --- schema migrations -----------------------------------------------------------------------------


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    url = load_settings().database_url
    try:
        outcome = migrations.upgrade(engine_for(url))
    except migrations.MigrationError as exc:
        raise DatabaseError(str(exc)) from exc
    where = _display_url(url)
    if outcome.created:
        print(f"Created the tables of {where} at revision {outcome.after}.")
    elif outcome.adopted:
        print(f"{where} was made before migrations; its tables match, now at revision {outcome.after}.")
    elif outcome.changed:
        print(f"Upgraded {where} from revision {outcome.before} to {outcome.after}.")
    else:
        print(f"{where} is up to date (revision {outcome.after}).")
    return 0


def cmd_db_current(args: argparse.Namespace) -> int:
    url = load_settings().database_url
    head = migrations.head_revision()
    with engine_for(url).connect() as connection:
        revision = migrations.current_revision(connection)
        tables = set(inspect(connection).get_table_names()) & migrations.model_tables()
    where = _display_url(url)
    if revision is None and not tables:
        print(f"{where} is empty; `ketamine-evidence db upgrade` creates the tables (revision {head}).")
    elif revision is None:
        print(
            f"{where} was made before migrations; `ketamine-evidence db upgrade` adopts it (revision {head})."
        )
    elif revision == head:
        print(f"{where} is at revision {revision} (this release's head).")
    else:
        print(
            f"{where} is at revision {revision}; this release is at {head}: run `ketamine-evidence db upgrade`."
        )
    return 0


def cmd_db_revision(args: argparse.Namespace) -> int:
    """Autogenerate a migration: compare the models with a scratch SQLite database at head."""
    script = ScriptDirectory.from_config(migrations.alembic_config())
    number = len(list(script.walk_revisions())) + 1
    slug = re.sub(r"[^a-z0-9]+", "_", args.message.lower()).strip("_")[:40] or "change"
    with tempfile.TemporaryDirectory() as folder:
        engine = create_engine(f"sqlite:///{Path(folder) / 'scratch.sqlite3'}")
        with engine.connect() as connection:
            command.upgrade(migrations.alembic_config(connection), "head")
            connection.commit()
            config = migrations.alembic_config(connection)
            config.set_main_option("file_template", "%%(rev)s")
            written = command.revision(
                config, message=args.message, autogenerate=True, rev_id=f"{number:04d}_{slug}"
            )
        engine.dispose()
    paths = [item.path for item in (written if isinstance(written, list) else [written]) if item is not None]
    print(f"Wrote {', '.join(paths)}; read it, test it on both engines, and commit it with the model change.")
    return 0


def _display_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


# --- scheduled harvests ----------------------------------------------------------------------------


def _clock_time(text: str) -> time:
    try:
        return datetime.strptime(text, "%H:%M").time()
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a time of day; write it as HH:MM, e.g. 03:00"
        ) from None


def _add_schedule_options(harvest: argparse.ArgumentParser) -> None:
    # The harvest command itself lives in ingest/cli.py; scheduling wraps it rather than copying it.
    harvest.add_argument(
        "--schedule",
        choices=["daily"],
        help="keep running in the foreground and harvest incrementally every day (see --at); "
        "a failed run is logged and the next day's run goes ahead",
    )
    harvest.add_argument(
        "--at",
        type=_clock_time,
        default=DEFAULT_AT,
        metavar="HH:MM",
        help=f"with --schedule: the local time of day to harvest (default {DEFAULT_AT:%H:%M}; NCBI asks "
        "for large jobs at night or at weekends, US Eastern time)",
    )
    plain = harvest.get_default("func")
    harvest.set_defaults(func=partial(cmd_harvest_maybe_scheduled, plain))


def cmd_harvest_maybe_scheduled(plain: Command, args: argparse.Namespace) -> int:
    if args.schedule is None:
        return plain(args)
    if args.since is not None:
        raise ValueError(
            "--since with --schedule would fetch the same days every time; leave it out (each run asks "
            "for what changed since the last successful one)."
        )
    _log_to_stderr()
    return run_daily(partial(_harvest_once, plain, args), args.at)


def _log_to_stderr() -> None:
    # Timestamped lines on stderr: what journald, cron mail or a terminal shows for a long-running loop.
    for old in list(schedule_log.handlers):
        schedule_log.removeHandler(old)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    schedule_log.addHandler(handler)
    schedule_log.setLevel(logging.INFO)
    schedule_log.propagate = False


def _harvest_once(plain: Command, args: argparse.Namespace) -> None:
    try:
        status = plain(args)
    except OperationalError as exc:
        raise RuntimeError(describe_operational_error(load_settings().database_url, exc)) from exc
    if status != 0:
        raise RuntimeError(f"the harvest exited with status {status}")


def next_daily_run(now: datetime, at: time) -> datetime:
    """The first moment at or after `now` whose wall-clock time is `at` (same timezone as `now`)."""
    candidate = now.replace(hour=at.hour, minute=at.minute, second=0, microsecond=0)
    if candidate < now:
        candidate = (candidate.replace(tzinfo=None) + timedelta(days=1)).replace(tzinfo=now.tzinfo)
    return candidate


def _local_now() -> datetime:
    return datetime.now().astimezone()


def run_daily(
    job: Callable[[], None],
    at: time,
    *,
    clock: Clock | None = None,
    sleep: Sleep | None = None,
    max_runs: int | None = None,
) -> int:
    """Run `job` every day at `at` until stopped (Ctrl-C or SIGTERM), surviving failed runs.

    Returns 0 when stopped between runs; a stop during a run propagates (the harvest marks its
    run interrupted and keeps its committed batches). `max_runs` bounds the loop for tests.
    """
    clock = clock or _local_now
    sleep = sleep or time_module.sleep
    previous = _stop_on_sigterm()
    runs = 0
    try:
        last_due: datetime | None = None
        while max_runs is None or runs < max_runs:
            now = clock()
            if last_due is not None:  # a quick run must not be followed by a second one the same day
                now = max(now, last_due + timedelta(seconds=1))
            due = last_due = next_daily_run(now, at)
            try:
                schedule_log.info("Next harvest at %s.", f"{due:%Y-%m-%d %H:%M %Z}".strip())
                _sleep_until(due, clock, sleep)
            except KeyboardInterrupt:
                schedule_log.info("Stopped; no harvest was running.")
                return 0
            runs += 1
            schedule_log.info("Harvest %d starting.", runs)
            try:
                job()
            except Exception as exc:  # noqa: BLE001  (a failed run must not end the schedule)
                text = str(exc).strip().splitlines()
                schedule_log.error(
                    "Harvest %d failed: %s; the next one goes ahead as planned.",
                    runs,
                    text[0] if text else type(exc).__name__,
                )
            else:
                schedule_log.info("Harvest %d finished.", runs)
        return 0
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _sleep_until(due: datetime, clock: Clock, sleep: Sleep) -> None:
    while (remaining := (due - clock()).total_seconds()) > 0:
        sleep(min(remaining, MAX_NAP_SECONDS))


def _stop_on_sigterm() -> Any:
    # systemd and `kill` send SIGTERM: treat it like Ctrl-C, so a running harvest logs itself interrupted.
    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    try:
        return signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread (an embedding program): leave signals alone
        return None
