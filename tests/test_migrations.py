"""Schema migrations on both engines: empty -> head, a pre-migration release -> head, models == migrations."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Integer, Table, create_engine, insert, inspect, select, text
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel
from streamlit.testing.v1 import AppTest

from db import migrations
from db.clock import utcnow
from db.corpus.fulltext import install_fulltext, match_count
from db.engine import engine_for, init_db, open_session
from db.errors import DatabaseError
from db.migrations import baseline
from db.models import Article, User
from db.vocab import Role
from ingest.cli import main
from tests.conftest import POSTGRES_ADMIN_URL, PROJECT_ROOT

# The tables of the release before migrations existed (commit ae267f6): the ranking and sign-in tables
# came later and were added by create_all at the next start; the baseline migration does that now.
# This release's newest revision, and the one a next release's probe revision adds after it.
RELEASED_HEAD = migrations.head_revision()
_NUMBER = int(RELEASED_HEAD.split("_", 1)[0])
PROBE = f"{_NUMBER + 1:04d}_probe"
NEXT = f"{_NUMBER + 2:04d}"
OLDER_RELEASE_TABLES = [
    t for t in baseline.TABLES if t.name not in {"claim_search_terms", "article_embedding", "user_credential"}
]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with nothing in it: a new SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
        yield url
        engine_for(url).dispose()
        return
    admin = create_engine(
        POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
    )
    name = f"ke_mig_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"PostgreSQL not reachable: {exc}".splitlines()[0])
    url = make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    yield url
    engine_for(url).dispose()
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def revision_of(url: str) -> str | None:
    with engine_for(url).connect() as connection:
        return migrations.current_revision(connection)


def table_names(url: str) -> set[str]:
    return set(inspect(engine_for(url)).get_table_names())


def model_differences(url: str) -> list[object]:
    with engine_for(url).connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"include_object": migrations.include_object, "compare_type": True}
        )
        return list(compare_metadata(context, SQLModel.metadata))


def make_previous_release(url: str, tables: list[Table]) -> None:
    """What a release before migrations left: create_all of its tables, the full-text index, some rows."""
    engine = engine_for(url)
    with engine.begin() as connection:
        for table in sorted(tables, key=lambda t: baseline.TABLES.index(t)):
            table.create(connection)
        install_fulltext(connection)
        now = utcnow()
        connection.execute(
            insert(Article.__table__),
            [
                {
                    "pmid": 1,
                    "title": "Esketamine nasal spray for treatment-resistant depression",
                    "abstract": "A randomised trial.",
                    "journal": "J",
                    "content_hash": "h1",
                    "deleted_in_pubmed": False,
                    "first_seen_at": now,
                    "updated_at": now,
                }
            ],
        )
        connection.execute(
            insert(User.__table__), [{"name": "ada", "role": Role.ADMIN, "active": True, "created_at": now}]
        )


# --- to head -----------------------------------------------------------------------------------------


def test_an_empty_database_migrates_to_head(empty_url: str) -> None:
    assert revision_of(empty_url) is None

    init_db(empty_url)

    assert revision_of(empty_url) == migrations.head_revision()
    assert migrations.model_tables() <= table_names(empty_url)
    assert model_differences(empty_url) == []
    init_db(empty_url)  # again: nothing to do
    assert revision_of(empty_url) == migrations.head_revision()


def test_a_database_of_the_previous_release_is_checked_stamped_and_keeps_its_rows(
    empty_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    make_previous_release(empty_url, list(baseline.TABLES))
    assert revision_of(empty_url) is None

    with caplog.at_level(logging.WARNING, logger="db.migrations"):
        init_db(empty_url)

    assert revision_of(empty_url) == migrations.head_revision()
    assert any(
        "was made before schema migrations; its tables match the baseline" in r.getMessage()
        for r in caplog.records
    )
    with open_session(empty_url) as session:
        assert [a.title for a in session.scalars(select(Article))] == [
            "Esketamine nasal spray for treatment-resistant depression"
        ]
        assert match_count(session, "esketamine") == 1
    assert model_differences(empty_url) == []


def test_upgrading_redoes_older_design_prefills_and_keeps_reviewers_designs(empty_url: str) -> None:
    from alembic import command
    from sqlalchemy import update

    from db.corpus.classifier import CLASSIFIER_VERSION
    from db.models import DesignCorrection
    from db.vocab import StudyDesign

    init_db(empty_url)
    trial = "Ketamine for depression: a double-blind randomized placebo-controlled trial"
    with open_session(empty_url) as session:
        for pmid in (1, 2):
            session.add(
                Article(pmid=pmid, title=trial, abstract="Patients were randomized.", content_hash="h")
            )
        session.flush()
        reviewer = User(name="rev", role=Role.REVIEWER)
        session.add(reviewer)
        session.flush()
        assert reviewer.id is not None
        session.add(
            DesignCorrection(
                pmid=2, design=StudyDesign.REVIEW, previous=StudyDesign.RCT, corrected_by_id=reviewer.id
            )
        )
        # As the previous release left them: prefilled by the older classifier, and wrongly.
        session.execute(
            update(Article.__table__).values(design="review", design_version=CLASSIFIER_VERSION - 1)
        )
        session.commit()
    with engine_for(empty_url).connect() as connection:
        command.downgrade(migrations.alembic_config(connection), "0007_grade_evidence")
        connection.commit()

    init_db(empty_url)

    assert revision_of(empty_url) == migrations.head_revision()
    with open_session(empty_url) as session:
        articles = {a.pmid: a for a in session.scalars(select(Article))}
        assert {a.design for a in articles.values()} == {"rct"}
        assert {a.design_version for a in articles.values()} == {CLASSIFIER_VERSION}
        kept = session.scalars(select(DesignCorrection)).one()
        assert (kept.pmid, kept.design) == (2, StudyDesign.REVIEW)


def test_an_older_pre_migration_database_gets_the_tables_it_lacked(empty_url: str) -> None:
    make_previous_release(empty_url, OLDER_RELEASE_TABLES)

    init_db(empty_url)

    assert {"claim_search_terms", "article_embedding", "user_credential"} <= table_names(empty_url)
    assert revision_of(empty_url) == migrations.head_revision()
    assert model_differences(empty_url) == []


def test_a_pre_migration_database_whose_tables_differ_is_refused_untouched(empty_url: str) -> None:
    engine = engine_for(empty_url)
    with engine.begin() as connection:
        for table in baseline.TABLES:
            table.create(connection)
        connection.exec_driver_sql("ALTER TABLE harvest_run DROP COLUMN host")

    with pytest.raises(
        DatabaseError,
        match=r"made before schema migrations and its tables do not match .*harvest_run lacks host.*dump it",
    ):
        init_db(empty_url)

    assert revision_of(empty_url) is None
    assert "alembic_version" not in table_names(empty_url)


def test_the_models_and_the_migrations_agree(empty_url: str) -> None:
    """The guard: a model change without its migration fails here (and in CI) with what differs."""
    migrations.upgrade(engine_for(empty_url))

    differences = model_differences(empty_url)

    assert differences == [], (
        "The models differ from what the migrations build; add a migration with "
        f"`ketamine-evidence db revision -m 'what changed'`: {differences}"
    )


def test_a_table_wiped_with_drop_all_is_rebuilt(empty_url: str) -> None:
    init_db(empty_url)
    SQLModel.metadata.drop_all(engine_for(empty_url))  # alembic_version survives a drop_all

    init_db(empty_url)

    assert migrations.model_tables() <= table_names(empty_url)


def test_a_model_table_without_a_migration_is_named(sqlite_url: str) -> None:
    probe = Table("probe_without_migration", SQLModel.metadata, Column("id", Integer, primary_key=True))
    try:
        with pytest.raises(
            DatabaseError,
            match=r"probe_without_migration are in the models but no migration creates them.*db revision",
        ):
            init_db(sqlite_url)
    finally:
        SQLModel.metadata.remove(probe)


# --- a pending migration, through init_db, the CLI and the app ---------------------------------------


@pytest.fixture
def migrations_with_a_second_revision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A copy of db/migrations with one more revision, as the next release would ship it."""
    folder = tmp_path / "migrations"
    shutil.copytree(migrations.MIGRATIONS_DIR, folder, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "versions" / f"{PROBE}.py").write_text(
        '"""Probe: a table the next release adds."""\n'
        "import sqlalchemy as sa\nfrom alembic import op\n\n"
        f'revision = "{PROBE}"\ndown_revision = "{RELEASED_HEAD}"\nbranch_labels = None\ndepends_on = None\n\n\n'
        "def upgrade() -> None:\n"
        '    op.create_table("probe", sa.Column("id", sa.Integer(), primary_key=True))\n\n\n'
        "def downgrade() -> None:\n"
        '    op.drop_table("probe")\n'
    )
    monkeypatch.setattr(migrations, "MIGRATIONS_DIR", folder)
    migrations.head_revision.cache_clear()
    yield PROBE
    migrations.head_revision.cache_clear()


def test_init_db_applies_pending_migrations_and_says_so(
    empty_url: str,
    migrations_with_a_second_revision: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with engine_for(empty_url).connect() as connection:
        from alembic import command

        command.upgrade(migrations.alembic_config(connection), RELEASED_HEAD)
        connection.commit()

    with caplog.at_level(logging.WARNING, logger="db.migrations"):
        init_db(empty_url)

    assert revision_of(empty_url) == PROBE
    assert "probe" in table_names(empty_url)
    assert (
        f"Upgraded the database {make_url(empty_url).render_as_string(hide_password=True)} from revision "
        f"{RELEASED_HEAD} to {PROBE}." in [r.getMessage() for r in caplog.records]
    )


def test_cli_db_current_and_upgrade(
    empty_url: str,
    migrations_with_a_second_revision: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", empty_url)
    assert main(["db", "current"]) == 0
    assert (
        f"is empty; `ketamine-evidence db upgrade` creates the tables (revision {PROBE})"
        in capsys.readouterr().out
    )

    assert main(["db", "upgrade"]) == 0
    assert "Created the tables of" in capsys.readouterr().out
    assert main(["db", "upgrade"]) == 0
    assert f"is up to date (revision {PROBE})" in capsys.readouterr().out
    assert main(["db", "current"]) == 0
    assert f"is at revision {PROBE} (this release's head)" in capsys.readouterr().out


def test_cli_db_revision_writes_the_missing_migration(
    migrations_with_a_second_revision: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    probe = Table("probe", SQLModel.metadata, Column("id", Integer, primary_key=True))  # as in PROBE
    extra = Table("new_feature", SQLModel.metadata, Column("id", Integer, primary_key=True))
    try:
        assert main(["db", "revision", "-m", "Add new feature"]) == 0
    finally:
        SQLModel.metadata.remove(probe)
        SQLModel.metadata.remove(extra)

    written = tmp_path / "migrations" / "versions" / f"{NEXT}_add_new_feature.py"
    assert str(written) in capsys.readouterr().out
    source = written.read_text()
    assert (
        f'revision: str = "{NEXT}_add_new_feature"' in source
        and f'down_revision: str | None = "{PROBE}"' in source
    )
    assert "op.create_table('new_feature'" in source or 'op.create_table("new_feature"' in source
    assert "probe" not in source.replace(PROBE, "")


def test_the_app_start_applies_migrations(empty_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    make_previous_release(empty_url, OLDER_RELEASE_TABLES)
    monkeypatch.setenv("DATABASE_URL", empty_url)
    st.cache_resource.clear()

    at = AppTest.from_file("../app.py", default_timeout=60).run()

    assert not at.exception
    assert revision_of(empty_url) == migrations.head_revision()


@pytest.mark.slow
def test_processes_starting_together_migrate_once(empty_url: str) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])),
    }
    code = "import sys; from db.engine import init_db; init_db(sys.argv[1])"
    starters = [
        subprocess.Popen([sys.executable, "-c", code, empty_url], env=env, stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    results = [(p.wait(timeout=300), p.stderr.read() if p.stderr else "") for p in starters]

    assert all(status == 0 for status, _ in results), results
    assert revision_of(empty_url) == migrations.head_revision()
