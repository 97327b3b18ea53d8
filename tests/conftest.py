"""Shared fixtures: a fresh database per test (SQLite always, PostgreSQL when reachable)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlmodel import Session, SQLModel

from db.dashboard import _CARDS, _EVIDENCE
from db.engine import engine_for, init_db
from db.study_facts import _FACTS

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


@pytest.fixture
def sqlite_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'test.sqlite3'}"
    monkeypatch.setenv("DATABASE_URL", url)
    init_db(url)
    yield url
    engine_for(url).dispose()


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A throwaway PostgreSQL database for this test session (so parallel runs never collide)."""
    admin_url = make_url(POSTGRES_ADMIN_URL)
    try:
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
        with admin.connect() as connection:
            name = f"ke_test_{uuid.uuid4().hex[:12]}"
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001  (any failure to reach PostgreSQL means: skip)
        pytest.skip(f"PostgreSQL not reachable at {admin_url.render_as_string()}: {exc}".splitlines()[0])
    url = admin_url.set(database=name).render_as_string(hide_password=False)
    yield url
    engine_for(url).dispose()
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def postgres_url(postgres_database: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    engine = engine_for(postgres_database)
    SQLModel.metadata.drop_all(engine)
    init_db(postgres_database)
    # Same URL, new tables: what a process cached of the last test's data is not this test's.
    _FACTS.pop(postgres_database, None)
    _CARDS.pop(postgres_database, None)
    _EVIDENCE.pop(postgres_database, None)
    monkeypatch.setenv("DATABASE_URL", postgres_database)
    yield postgres_database


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """Run the test once on SQLite and once on PostgreSQL."""
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def session(db_url: str) -> Iterator[Session]:
    with Session(engine_for(db_url)) as session:
        yield session
