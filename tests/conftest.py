"""Shared fixtures: a fresh database per test (SQLite always, PostgreSQL when reachable)."""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import NullPool
from sqlmodel import Session

from db.corpus.study_facts import FACTS
from db.engine import engine_for, init_db
from db.read.summary import SUMMARY
from db.review.throttle import SIGN_IN_THROTTLE
from tests.eutils_server import cleared, running_server

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TEST_DATA = Path(__file__).resolve().parent / "data"
# Real recorded NCBI data lives beside the project, never inside it; tests using it skip when absent.
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"

POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def shared_file(*parts: str) -> Path:
    """A file of ../shared/data, or a clean skip where that folder is not there."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not present: {path}")
    return path


@pytest.fixture(autouse=True)
def _isolated_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Never let a test fall back to the user's real database or NCBI itself.
    monkeypatch.setenv("KETAMINE_EVIDENCE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("EUTILS_BASE_URL", "http://127.0.0.1:9/unset-in-tests/")
    monkeypatch.setenv("NCBI_EMAIL", "tests@example.org")
    monkeypatch.delenv("NCBI_API_KEY", raising=False)
    monkeypatch.delenv("KETAMINE_EVIDENCE_USER", raising=False)  # a developer's own must not act in tests
    SIGN_IN_THROTTLE.clear()  # wrong passwords of one test must not make the next one wait


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite file migrated to head for the whole session; each test gets a copy of it."""
    path = tmp_path_factory.mktemp("template") / "migrated.sqlite3"
    url = f"sqlite:///{path}"
    init_db(url)
    engine_for(url).dispose()
    return path


@pytest.fixture(scope="module")
def running() -> Iterator[HTTPServer]:
    """A loopback HTTP server shared by a test module (starting one costs about half a second)."""
    with running_server() as started:
        yield started


@pytest.fixture
def server(running: HTTPServer) -> Iterator[HTTPServer]:
    """The module's loopback server, cleared of the last test's handlers and requests."""
    with cleared(running):
        yield running


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    path = tmp_path / "test.sqlite3"
    # SQLite's backup API copies a consistent image, WAL pages included (a plain file copy could miss them).
    with closing(sqlite3.connect(sqlite_template)) as source, closing(sqlite3.connect(path)) as target:
        source.backup(target)
    url = f"sqlite:///{path}"
    monkeypatch.setenv("DATABASE_URL", url)
    init_db(url)  # at head already: only the start-up checks every command makes
    yield url
    _forget(url)


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[Engine]:
    admin_url = make_url(POSTGRES_ADMIN_URL)
    try:
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
        with admin.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001  (any failure to reach PostgreSQL means: skip)
        pytest.skip(f"PostgreSQL not reachable at {admin_url.render_as_string()}: {exc}".splitlines()[0])
    yield admin
    admin.dispose()


def _postgres_url(name: str) -> str:
    return make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


# What a test could change of the schema: tables, columns, indexes, triggers (and whether they are
# enabled), functions and the migration revision. Equal before and after: emptying the tables is enough.
_SCHEMA_FINGERPRINT = """
SELECT md5(string_agg(item, ',' ORDER BY item)) FROM (
    SELECT format('%s.%s:%s', c.relname, a.attname, format_type(a.atttypid, a.atttypmod)) AS item
      FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
      JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = 'public' AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL SELECT format('index %s', indexdef) FROM pg_indexes WHERE schemaname = 'public'
    UNION ALL SELECT format('trigger %s %s %s', tgrelid::regclass, tgname, tgenabled)
      FROM pg_trigger WHERE NOT tgisinternal
    UNION ALL SELECT format('function %s', p.oid::regprocedure)
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'
    UNION ALL SELECT format('revision %s', version_num) FROM alembic_version
) AS schema
"""


class _PostgresDatabases:
    """This worker's test database: a copy of a migrated template, emptied between tests.

    Copying the template (`CREATE DATABASE ... TEMPLATE`) costs the server about 0.3 s a test;
    emptying the tables costs under 0.1 s. A test that changed the schema (a dropped trigger, a
    migration) gets a fresh copy instead, so every test starts from the migrated schema and no rows.
    """

    def __init__(self, admin: Engine) -> None:
        self._admin = admin
        self.template = f"ke_template_{uuid.uuid4().hex[:12]}"
        self._admin_execute(f'CREATE DATABASE "{self.template}"')
        url = _postgres_url(self.template)
        init_db(url)
        with engine_for(url).connect() as connection:
            self._fingerprint = connection.exec_driver_sql(_SCHEMA_FINGERPRINT).scalar_one()
        engine_for(url).dispose()  # CREATE DATABASE ... TEMPLATE needs the template without connections
        self.current: str | None = None

    def take(self) -> str:
        """The URL of a database at head with empty tables."""
        if self.current is not None and not self._emptied(self.current):
            self._drop(self.current)
            self.current = None
        if self.current is None:
            self.current = f"ke_test_{uuid.uuid4().hex[:12]}"
            self._admin_execute(f'CREATE DATABASE "{self.current}" TEMPLATE "{self.template}"')
        return _postgres_url(self.current)

    def close(self) -> None:
        if self.current is not None:
            self._drop(self.current)
        self._drop(self.template)

    def _emptied(self, name: str) -> bool:
        engine = create_engine(_postgres_url(name), poolclass=NullPool)
        try:
            with engine.connect() as connection:
                if connection.exec_driver_sql(_SCHEMA_FINGERPRINT).scalar_one() != self._fingerprint:
                    return False
                tables = connection.exec_driver_sql(
                    "SELECT quote_ident(tablename) FROM pg_tables "
                    "WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
                ).scalars()
                # As superuser, with triggers off: the audit trail refuses TRUNCATE to everyone else.
                connection.exec_driver_sql("SET lock_timeout = '5s'")
                connection.exec_driver_sql("SET session_replication_role = replica")
                connection.exec_driver_sql(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
                connection.commit()
            return True
        except Exception:  # noqa: BLE001  (a connection left holding a lock: start from a new copy)
            return False
        finally:
            engine.dispose()

    def _drop(self, name: str) -> None:
        self._admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _admin_execute(self, statement: str) -> None:
        with self._admin.connect() as connection:
            connection.execute(text(statement))


@pytest.fixture(scope="session")
def postgres_databases(postgres_admin: Engine) -> Iterator[_PostgresDatabases]:
    """Named per session: parallel runs and pytest-xdist workers on one server never collide."""
    databases = _PostgresDatabases(postgres_admin)
    yield databases
    databases.close()


@pytest.fixture
def postgres_url(postgres_databases: _PostgresDatabases, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = postgres_databases.take()
    init_db(url)  # at head already: only the start-up checks every command makes
    monkeypatch.setenv("DATABASE_URL", url)
    yield url
    _forget(url)


def _forget(url: str) -> None:
    """Close the test database's connections and drop what this process cached of it."""
    engine_for(url).dispose()
    FACTS.forget(url)
    SUMMARY.forget(url)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """Run the test once on SQLite and once on PostgreSQL."""
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def session(db_url: str) -> Iterator[Session]:
    with Session(engine_for(db_url)) as session:
        yield session


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Slow tests first: spread over the workers (pytest-xdist) from the start, they no longer finish
    # alone at the end of the run while the other workers sit idle.
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
