"""Engine-neutral dump and restore: one JSON Lines file per table plus a manifest with counts and checksums."""

from __future__ import annotations

import base64
import enum
import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from alembic.script import ScriptDirectory
from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Float,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Table,
    Time,
    TypeDecorator,
    func,
    inspect,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import SQLModel

from db.engine import describe_operational_error, engine_for, init_db
from db.errors import DatabaseError
from db.migrations import alembic_config, load_models
from db.review.audit_guard import audit_guard_lifted
from db.review.pair_index import rebuild_pair_state

FORMAT_NAME = "ketamine-evidence-dump"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
# Tables whose rows are computed from others, left out of dumps. article_embedding holds sentence
# embeddings of each article's text, recomputed by the ranking's semantic stage when missing;
# article_terms holds each article's word counts for the learning queue, recounted when missing;
# pair_state is where each (claim, study) pair stands, rebuilt from the assessments by every restore;
# summary_copy is the verdict summary's copy of it, refilled by the first summary after a restore. The
# full-text index (SQLite FTS5 table and triggers, PostgreSQL generated tsvector column) is DDL
# outside SQLModel.metadata: never dumped, and rebuilt by the database itself as rows are restored.
DERIVED_TABLES: frozenset[str] = frozenset(
    {"article_embedding", "article_terms", "pair_state", "summary_copy"}
)
_BATCH = 2_000


class DumpError(ValueError):
    """A dump or restore that cannot go ahead; the message names the file and why."""


class RestoreTargetNotEmpty(DumpError):
    """Restore refuses to mix a dump into a database that already holds data."""


@dataclass(frozen=True)
class TableEntry:
    """One table of a dump: its file, how many rows, their checksum, and the columns in order."""

    name: str
    file: str
    rows: int
    sha256: str
    columns: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "file": self.file,
            "rows": self.rows,
            "sha256": self.sha256,
            "columns": list(self.columns),
        }


@dataclass(frozen=True)
class Manifest:
    format_version: int
    schema_revision: str | None
    tables: tuple[TableEntry, ...]

    @property
    def total_rows(self) -> int:
        return sum(entry.rows for entry in self.tables)

    def as_dict(self) -> dict[str, Any]:
        # No timestamp or source name on purpose: dumps of the same data are byte-identical,
        # whichever engine they came from and whenever they were taken.
        return {
            "format": FORMAT_NAME,
            "format_version": self.format_version,
            "schema_revision": self.schema_revision,
            "tables": [entry.as_dict() for entry in self.tables],
        }


def dumped_tables() -> list[Table]:
    """Every table of SQLModel.metadata in dependency order (parents first), less the derived ones."""
    load_models()  # every table module, not only those this process happened to import
    return [
        table
        for table in SQLModel.metadata.sorted_tables
        if table.name not in DERIVED_TABLES and not table.info.get("derived")
    ]


# --- canonical values ------------------------------------------------------------------------------


def base_type(column_type: Any) -> Any:
    """The SQL type under any TypeDecorator (SQLModel wraps DateTime and String in its own)."""
    while isinstance(column_type, TypeDecorator):
        column_type = column_type.impl_instance
    return column_type


def encode_value(column_type: Any, value: Any) -> Any:
    """A column value as canonical JSON: the same data gives the same bytes on every engine."""
    column_type = base_type(column_type)
    if value is None:
        return None
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(column_type, DateTime) or isinstance(value, datetime):
        # Naive values are UTC by the project's convention (db.clock.utcnow); microseconds
        # are always written so equal instants never differ in spelling.
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(column_type, Boolean):
        return bool(value)
    return value


def decode_value(column_type: Any, value: Any) -> Any:
    """The inverse of encode_value: what the driver expects for the column."""
    column_type = base_type(column_type)
    if value is None:
        return None
    if isinstance(column_type, DateTime):
        parsed = datetime.fromisoformat(value).astimezone(UTC)
        return parsed if column_type.timezone else parsed.replace(tzinfo=None)
    if isinstance(column_type, Date):
        return date.fromisoformat(value)
    if isinstance(column_type, Time):
        return time.fromisoformat(value)
    if isinstance(column_type, LargeBinary):
        return base64.b64decode(value)
    if isinstance(column_type, Numeric) and not isinstance(column_type, Float):
        return Decimal(value)
    return value


def _encode_row(columns: list[Any], row: Iterable[Any]) -> bytes:
    values = {
        column.name: encode_value(column.type, value) for column, value in zip(columns, row, strict=True)
    }
    # Sorted keys all the way down: JSON columns come out canonical whatever order the engine kept.
    return orjson.dumps(values, option=orjson.OPT_SORT_KEYS) + b"\n"


# --- dump ------------------------------------------------------------------------------------------


def dump_database(url: str, directory: Path) -> Manifest:
    """Write every table of the database at `url` into `directory` (new or empty); manifest last.

    The tables are read in one transaction, so the dump is a consistent snapshot even while a
    harvest or reviewers write. A dump without its manifest is recognisably unfinished.
    """
    directory = Path(directory)
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise DumpError(
            f"{directory} already exists and is not an empty folder; dump into a new folder "
            "(dumps are never merged)."
        )
    init_db(url)
    directory.mkdir(parents=True, exist_ok=True)
    engine = engine_for(url)
    entries = []
    try:
        with engine.connect() as connection:
            _begin_snapshot(connection)
            revision = schema_revision(connection)
            for table in dumped_tables():
                entries.append(_dump_table(connection, table, directory))
            connection.rollback()
    except OperationalError as exc:
        raise DatabaseError(describe_operational_error(url, exc)) from exc
    manifest = Manifest(FORMAT_VERSION, revision, tuple(entries))
    partial = directory / (MANIFEST_NAME + ".partial")
    partial.write_text(json.dumps(manifest.as_dict(), indent=2) + "\n", encoding="utf-8")
    os.replace(partial, directory / MANIFEST_NAME)
    return manifest


def _begin_snapshot(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    elif connection.dialect.name == "sqlite":
        # pysqlite opens no transaction for SELECTs; an explicit one pins every read to one snapshot.
        connection.exec_driver_sql("BEGIN")


def schema_revision(connection: Connection) -> str | None:
    """The database's migration revision (alembic_version), or None before migrations."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _ordering(connection: Connection, table: Table) -> list[Any]:
    columns = list(table.primary_key.columns) or list(table.columns)
    # Text keys sort by bytes on both engines; PostgreSQL would otherwise use the locale's order.
    collation = "C" if connection.dialect.name == "postgresql" else "BINARY"
    return [
        column.collate(collation) if isinstance(base_type(column.type), String) else column
        for column in columns
    ]


def _dump_table(connection: Connection, table: Table, directory: Path) -> TableEntry:
    columns = list(table.columns)
    file_name = f"{table.name}.jsonl"
    digest = hashlib.sha256()
    rows = 0
    query = select(*columns).order_by(*_ordering(connection, table))
    result = connection.execution_options(stream_results=True, yield_per=_BATCH).execute(query)
    with open(directory / file_name, "wb") as handle:
        for partition in result.partitions():
            chunk = b"".join(_encode_row(columns, row) for row in partition)
            handle.write(chunk)
            digest.update(chunk)
            rows += len(partition)
    return TableEntry(table.name, file_name, rows, digest.hexdigest(), tuple(c.name for c in columns))


# --- verify ----------------------------------------------------------------------------------------


def read_manifest(directory: Path) -> Manifest:
    """The dump's manifest, checked for shape and format version (not yet the table files)."""
    directory = Path(directory)
    path = directory / MANIFEST_NAME
    if not directory.is_dir():
        raise DumpError(f"{directory} is not a folder; give the folder that `dump -o` wrote.")
    if not path.exists():
        raise DumpError(
            f"{path} is missing: {directory} is not a dump or its dump did not finish; dump again."
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DumpError(
            f"{path} is not valid JSON ({exc}); the dump is damaged, use an intact copy."
        ) from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
        raise DumpError(f"{path} is not a {FORMAT_NAME} manifest; give the folder that `dump -o` wrote.")
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise DumpError(
            f"{path} has format version {version!r}, which this release cannot read (it reads "
            f"{FORMAT_VERSION}); restore with the release that wrote the dump."
        )
    try:
        tables = tuple(
            TableEntry(
                name=str(item["name"]),
                file=str(item["file"]),
                rows=int(item["rows"]),
                sha256=str(item["sha256"]),
                columns=tuple(str(c) for c in item["columns"]),
            )
            for item in data["tables"]
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise DumpError(
            f"{path} lacks a table's name, file, rows, sha256 or columns ({exc}); dump again."
        ) from exc
    for entry in tables:
        if Path(entry.file).name != entry.file:
            raise DumpError(f"{path} names the file {entry.file!r} outside the dump folder; dump again.")
    return Manifest(int(version), data.get("schema_revision"), tables)


def verify_dump(directory: Path) -> Manifest:
    """Check every file of a dump against its manifest: present, valid JSON, row count, SHA-256.

    Raises DumpError naming the first file that fails and why; reads each file once.
    """
    directory = Path(directory)
    manifest = read_manifest(directory)
    if manifest.schema_revision is not None and manifest.schema_revision not in known_revisions():
        raise DumpError(
            f"{directory / MANIFEST_NAME} comes from schema revision {manifest.schema_revision!r}, which this "
            "release does not know (a newer release made it); restore with that release or a newer one."
        )
    known = {table.name: table for table in dumped_tables()}
    for entry in manifest.tables:
        table = known.get(entry.name)
        if table is None:
            raise DumpError(
                f"{directory / entry.file} holds table {entry.name!r}, which this release does not know "
                f"(dump schema revision {manifest.schema_revision}); restore with a newer release."
            )
        unknown = [name for name in entry.columns if name not in table.columns]
        if unknown:
            raise DumpError(
                f"{directory / entry.file} has column(s) {', '.join(unknown)} that table {entry.name!r} "
                "lacks in this release; restore with a newer release."
            )
        _verify_file(directory / entry.file, entry)
    return manifest


def known_revisions() -> set[str]:
    script = ScriptDirectory.from_config(alembic_config())
    return {revision.revision for revision in script.walk_revisions()}


def _verify_file(path: Path, entry: TableEntry) -> None:
    if not path.exists():
        raise DumpError(f"{path} is missing; the dump is partial, use a complete copy or dump again.")
    digest = hashlib.sha256()
    lines = 0
    expected = set(entry.columns)
    with open(path, "rb") as handle:
        for lines, raw in enumerate(handle, start=1):  # noqa: B007  (the count is used below)
            digest.update(raw)
            try:
                row = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise DumpError(f"{path}: bad JSON at line {lines} ({exc}); the file is damaged.") from exc
            if not isinstance(row, dict) or set(row) != expected:
                raise DumpError(
                    f"{path}: line {lines} is not a row with the manifest's columns; the file is damaged."
                )
    if lines != entry.rows:
        raise DumpError(
            f"{path} holds {lines:,} rows but the manifest says {entry.rows:,}; the file is truncated or "
            "altered, use an intact copy."
        )
    if digest.hexdigest() != entry.sha256:
        raise DumpError(
            f"{path} does not match its SHA-256 checksum in the manifest; the file is damaged, "
            "use an intact copy."
        )


# --- restore ---------------------------------------------------------------------------------------


def restore_database(url: str, directory: Path, *, replace: bool = False) -> Manifest:
    """Load a verified dump into the database at `url`, in one transaction.

    The database must hold no rows unless `replace` is set, which deletes everything first (in
    the same transaction, so a failed restore leaves the old data). Tables the dump lacks stay
    empty. PostgreSQL sequences are moved past the restored ids.
    """
    directory = Path(directory)
    manifest = verify_dump(directory)
    init_db(url)
    engine = engine_for(url)
    entries = {entry.name: entry for entry in manifest.tables}
    tables = dumped_tables()
    try:
        with engine.connect() as connection:
            _begin_writing(connection, tables)
            held = _rows_held(connection, SQLModel.metadata.sorted_tables)
            if held and not replace:
                listed = ", ".join(f"{name}: {count:,}" for name, count in held.items())
                raise RestoreTargetNotEmpty(
                    f"The database already holds data ({listed}); restore into a new, empty database "
                    "or pass --replace to delete everything in it first."
                )
            if held:
                with audit_guard_lifted(connection):  # the one wholesale delete of the audit trail
                    for table in reversed(SQLModel.metadata.sorted_tables):
                        connection.execute(table.delete())
            for table in tables:
                if table.name in entries:
                    _restore_table(
                        connection, table, directory / entries[table.name].file, entries[table.name]
                    )
            _reset_sequences(connection, tables)
            rebuild_pair_state(connection)  # derived, not dumped: computed from the restored votes
            connection.commit()
    except OperationalError as exc:
        raise DatabaseError(describe_operational_error(url, exc)) from exc
    except IntegrityError as exc:
        first = str(exc.orig or exc).strip().splitlines()[0]
        raise DumpError(f"{directory}: the rows break a constraint ({first}); nothing was restored.") from exc
    return manifest


def _begin_writing(connection: Connection, tables: list[Table]) -> None:
    if connection.dialect.name == "sqlite":
        # Take the write lock before checking that the database is empty, so nobody slips in between.
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    elif connection.dialect.name == "postgresql":
        names = ", ".join(connection.dialect.identifier_preparer.format_table(t) for t in tables)
        connection.exec_driver_sql(f"LOCK TABLE {names} IN EXCLUSIVE MODE")


def _rows_held(connection: Connection, tables: Iterable[Table]) -> dict[str, int]:
    held = {}
    for table in tables:
        if connection.execute(select(literal(1)).select_from(table).limit(1)).first() is not None:
            held[table.name] = int(connection.execute(select(func.count()).select_from(table)).scalar() or 0)
    return held


def _restore_table(connection: Connection, table: Table, path: Path, entry: TableEntry) -> None:
    columns = [table.columns[name] for name in entry.columns]
    # A foreign key to the same table (claim.merged_into_id) may point at a later row: insert
    # those columns empty, then fill them in once every row is there.
    deferred = [
        column
        for column in columns
        if column.nullable and any(fk.column.table is table for fk in column.foreign_keys)
    ]
    keys = list(table.primary_key.columns)
    pending: list[tuple[list[Any], dict[str, Any]]] = []

    def without_deferred(rows: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for row in rows:
            later = {column.name: row[column.name] for column in deferred if row[column.name] is not None}
            if later:
                pending.append(([row[key.name] for key in keys], later))
                row.update(dict.fromkeys(later))
            yield row

    _insert_batches(connection, table, without_deferred(_decoded_rows(path, columns)))
    for key_values, later in pending:
        condition = [key == value for key, value in zip(keys, key_values, strict=True)]
        connection.execute(update(table).where(*condition).values(later))


def _decoded_rows(path: Path, columns: list[Any]) -> Iterator[dict[str, Any]]:
    with open(path, "rb") as handle:
        for raw in handle:
            row = orjson.loads(raw)
            yield {column.name: decode_value(column.type, row[column.name]) for column in columns}


def _insert_batches(connection: Connection, table: Table, rows: Iterator[dict[str, Any]]) -> None:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= _BATCH:
            connection.execute(table.insert(), batch)
            batch = []
    if batch:
        connection.execute(table.insert(), batch)


def _reset_sequences(connection: Connection, tables: list[Table]) -> None:
    """Move each serial sequence past the largest restored id (rows were inserted with explicit ids)."""
    if connection.dialect.name != "postgresql":
        return  # SQLite's INTEGER PRIMARY KEY continues from the largest rowid by itself
    for table in tables:
        column = table.autoincrement_column
        if column is None or not isinstance(base_type(column.type), Integer):
            continue
        sequence = connection.execute(
            text("SELECT pg_get_serial_sequence(:table, :column)"),
            {"table": table.name, "column": column.name},
        ).scalar()
        if sequence is None:
            continue
        quote = connection.dialect.identifier_preparer.quote
        largest = f"(SELECT MAX({quote(column.name)}) FROM {quote(table.name)})"
        # setval(seq, 1, false) on an empty table: the next id is 1 again.
        connection.execute(
            text(f"SELECT setval(:sequence, COALESCE({largest}, 1), {largest} IS NOT NULL)"),
            {"sequence": sequence},
        )
