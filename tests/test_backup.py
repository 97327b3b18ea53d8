"""Dump and restore: lossless across engines, byte-identical, refusing damaged dumps and non-empty targets."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel

from db.corpus.fulltext import match_count
from db.engine import engine_for, open_session
from db.models import Article, ArticleRevision, Assessment, AuditEvent, Claim, User
from db.ops.backup import (
    DERIVED_TABLES,
    MANIFEST_NAME,
    DumpError,
    RestoreTargetNotEmpty,
    dump_database,
    dumped_tables,
    restore_database,
    verify_dump,
)
from db.review.assessments import correct_design, record_assessment, update_assessment
from db.review.claims import merge_claims
from db.review.pairs import resolve_conflict
from db.review.roles import add_user, get_user
from db.review.signoff import sign_off
from db.review.sources import ensure_seed_content
from db.vocab import Role, StudyDesign, StudyVerdict
from ingest.cli import main
from ingest.importer import import_file
from tests.conftest import PROJECT_ROOT, TEST_DATA


def fill_instance(url: str) -> None:
    """A small instance touching every kind of data: articles and revisions, runs, users, claims
    (one merged into a later one), assessments changed and resolved, a design correction, a sign-off
    and the audit trail, with non-ASCII text in notes."""
    import_file(url, TEST_DATA / "pubmed_ketamine_sample.xml")
    import_file(url, TEST_DATA / "pubmed_ketamine_update.xml")  # revisions and deletions
    with open_session(url) as session:
        ensure_seed_content(session)
        admin = add_user(session, None, "ada", Role.ADMIN)
        editor = add_user(session, admin, "eve", Role.EDITOR)
        rita = add_user(session, admin, "rita", Role.REVIEWER)
        rob = add_user(session, admin, "rob", Role.REVIEWER)
        claims = {claim.key: claim for claim in session.scalars(select(Claim))}
        pmids = [row.pmid for row in session.scalars(select(ArticleRevision)) if row.change == "revised"]
        pmid = pmids[0]
        first = _record(
            session, rita, claims["rapid-onset"], pmid, StudyVerdict.SUPPORTED, "Ça marche — vite ✓"
        )
        _record(session, rob, claims["rapid-onset"], pmid, StudyVerdict.MIXED, "")
        update_assessment(session, rita, first.id, first.version, verdict="unsupported", reason="reread")
        resolve_conflict(session, editor, claims["rapid-onset"], pmid, "mixed", "Both have a point.")
        correct_design(session, rob, pmid, StudyDesign.OBSERVATIONAL, "cohort, not a trial")
        sign_off(
            session,
            editor,
            claims["rapid-onset"],
            "revise-wording",
            "Say «hours», not minutes.",
            "misleading",
        )
        # Merged into a claim with a larger id: restore must cope with a forward self-reference.
        merge_claims(session, editor, "anesthetic-history", "undeniable-benefits", "same point")
        session.commit()


def _record(
    session: Session, reviewer: User, claim: Claim, pmid: int, verdict: StudyVerdict, note: str
) -> Assessment:
    article = session.get(Article, pmid)
    assert article is not None
    quote = article.title[:30] if verdict is not StudyVerdict.NOT_RELEVANT else ""
    return record_assessment(session, reviewer, claim, pmid, verdict, quote=quote, note=note)


def files_of(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


def row_counts(url: str) -> dict[str, int]:
    with engine_for(url).connect() as connection:
        return {
            table.name: int(connection.execute(select(func.count()).select_from(table)).scalar() or 0)
            for table in dumped_tables()
        }


def search_count(url: str, words: str) -> int:
    with open_session(url) as session:
        return match_count(session, words)


def rewrite_manifest(directory: Path, **changes: object) -> None:
    path = directory / MANIFEST_NAME
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data, indent=2) + "\n")


def refresh_checksum(directory: Path, file_name: str, rows: int | None = None) -> None:
    """Make the manifest agree with an edited file, so only the content itself is wrong."""
    path = directory / MANIFEST_NAME
    data = json.loads(path.read_text())
    for entry in data["tables"]:
        if entry["file"] == file_name:
            entry["sha256"] = hashlib.sha256((directory / file_name).read_bytes()).hexdigest()
            if rows is not None:
                entry["rows"] = rows
    path.write_text(json.dumps(data, indent=2) + "\n")


# --- round trips ----------------------------------------------------------------------------------


@pytest.mark.postgres
def test_sqlite_dump_restored_into_postgres_dumps_byte_identical(
    sqlite_url: str, postgres_url: str, tmp_path: Path
) -> None:
    fill_instance(sqlite_url)
    from_sqlite, from_postgres = tmp_path / "from-sqlite", tmp_path / "from-postgres"

    dump_database(sqlite_url, from_sqlite)
    restore_database(postgres_url, from_sqlite)
    dump_database(postgres_url, from_postgres)

    assert files_of(from_sqlite) == files_of(from_postgres)
    assert row_counts(postgres_url) == row_counts(sqlite_url)
    assert search_count(postgres_url, "ketamine") == search_count(sqlite_url, "ketamine") > 0
    counts = row_counts(sqlite_url)
    for table in ("article", "article_revision", "harvest_run", "claim", "assessment", "audit_event"):
        assert counts[table] > 0, table


@pytest.mark.postgres
def test_postgres_dump_restored_into_sqlite_dumps_byte_identical(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill_instance(postgres_url)
    sqlite_url = f"sqlite:///{tmp_path / 'restored.sqlite3'}"

    dump_database(postgres_url, tmp_path / "a")
    restore_database(sqlite_url, tmp_path / "a")
    dump_database(sqlite_url, tmp_path / "b")

    assert files_of(tmp_path / "a") == files_of(tmp_path / "b")
    engine_for(sqlite_url).dispose()


def test_restored_sqlite_dump_matches_the_original_database(sqlite_url: str, tmp_path: Path) -> None:
    fill_instance(sqlite_url)
    copy_url = f"sqlite:///{tmp_path / 'copy.sqlite3'}"

    dump_database(sqlite_url, tmp_path / "a")
    restore_database(copy_url, tmp_path / "a")
    dump_database(copy_url, tmp_path / "b")

    assert files_of(tmp_path / "a") == files_of(tmp_path / "b")
    assert row_counts(copy_url) == row_counts(sqlite_url)
    # The full-text index is not in the dump: the database rebuilt it as the articles came in.
    assert search_count(copy_url, "ketamine") == search_count(sqlite_url, "ketamine") > 0
    engine_for(copy_url).dispose()


def test_restored_ids_continue_so_new_work_gets_fresh_ids(db_url: str, tmp_path: Path) -> None:
    source = f"sqlite:///{tmp_path / 'source.sqlite3'}"
    fill_instance(source)
    dump_database(source, tmp_path / "dump")
    SQLModel.metadata.drop_all(engine_for(db_url))
    restore_database(db_url, tmp_path / "dump")

    with open_session(db_url) as session:
        largest = session.scalar(select(func.max(AuditEvent.id)))
        user = add_user(session, get_user(session, "ada"), "newcomer", Role.REVIEWER)
        session.commit()
        newest = session.scalar(select(func.max(AuditEvent.id)))
    assert user.id == 5  # ada, eve, rita, rob came from the dump
    assert largest is not None and newest == largest + 1
    engine_for(source).dispose()


# --- the dump's shape -------------------------------------------------------------------------------


def test_dump_is_jsonl_in_primary_key_order_with_canonical_values(sqlite_url: str, tmp_path: Path) -> None:
    fill_instance(sqlite_url)

    manifest = dump_database(sqlite_url, tmp_path / "dump")

    lines = (tmp_path / "dump" / "article.jsonl").read_bytes().splitlines(keepends=True)
    rows = [orjson.loads(line) for line in lines]
    assert [row["pmid"] for row in rows] == sorted(row["pmid"] for row in rows)
    for line, row in zip(lines, rows, strict=True):
        assert line == orjson.dumps(row, option=orjson.OPT_SORT_KEYS) + b"\n"  # sorted keys all the way down
    first = rows[0]
    assert first["first_seen_at"].endswith("Z") and len(first["first_seen_at"]) == len(
        "2024-01-02T03:04:05.000000Z"
    )
    assert isinstance(first["deleted_in_pubmed"], bool)
    assert isinstance(first["authors"], list)
    revised = [r for r in rows if r["date_revised"]]
    assert revised and len(revised[0]["date_revised"]) == len("2024-01-02")
    notes = [
        orjson.loads(line)["note"]
        for line in (tmp_path / "dump" / "assessment.jsonl").read_bytes().splitlines()
    ]
    assert "Ça marche — vite ✓" in notes  # UTF-8, not escaped
    data = json.loads((tmp_path / "dump" / MANIFEST_NAME).read_text())
    assert data["format"] == "ketamine-evidence-dump" and data["format_version"] == 1
    assert [t["name"] for t in data["tables"]] == [t.name for t in manifest.tables]
    assert {t["name"]: t["rows"] for t in data["tables"]} == row_counts(sqlite_url)


def test_every_table_of_the_models_is_dumped_except_derived_ones() -> None:
    names = [table.name for table in dumped_tables()]

    assert names == [t.name for t in SQLModel.metadata.sorted_tables if t.name not in DERIVED_TABLES]
    assert {"article", "assessment", "audit_event", "claim_signoff", "harvest_run"} <= set(names)
    assert "article_embedding" in DERIVED_TABLES  # recomputed from the articles, never lost


def test_dump_refuses_a_folder_that_holds_files(sqlite_url: str, tmp_path: Path) -> None:
    (tmp_path / "dump").mkdir()
    (tmp_path / "dump" / "notes.txt").write_text("mine")

    with pytest.raises(DumpError, match="already exists and is not an empty folder"):
        dump_database(sqlite_url, tmp_path / "dump")


# --- refusals -------------------------------------------------------------------------------------


def test_restore_refuses_a_database_that_holds_data_unless_replace(db_url: str, tmp_path: Path) -> None:
    source = f"sqlite:///{tmp_path / 'source.sqlite3'}"
    fill_instance(source)
    dump_database(source, tmp_path / "dump")
    import_file(db_url, TEST_DATA / "pubmed_ketamine_sample.xml")
    before = row_counts(db_url)

    with pytest.raises(RestoreTargetNotEmpty, match=r"already holds data \(.*article: 6.*\).*--replace"):
        restore_database(db_url, tmp_path / "dump")
    assert row_counts(db_url) == before

    restore_database(db_url, tmp_path / "dump", replace=True)
    assert row_counts(db_url) == row_counts(source)
    engine_for(source).dispose()


def test_replace_clears_the_append_only_audit_trail_and_leaves_it_guarded(
    db_url: str, tmp_path: Path
) -> None:
    source = f"sqlite:///{tmp_path / 'source.sqlite3'}"
    fill_instance(source)
    dump_database(source, tmp_path / "dump")
    fill_instance(db_url)  # audit events of its own, which only a restore may delete
    with open_session(db_url) as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent))

    restore_database(db_url, tmp_path / "dump", replace=True)

    assert row_counts(db_url) == row_counts(source)
    with pytest.raises(IntegrityError, match="append-only"), engine_for(db_url).begin() as connection:
        connection.exec_driver_sql("DELETE FROM audit_event")
    engine_for(source).dispose()


@pytest.fixture
def good_dump(tmp_path: Path) -> Path:
    source = f"sqlite:///{tmp_path / 'source.sqlite3'}"
    fill_instance(source)
    dump_database(source, tmp_path / "dump")
    engine_for(source).dispose()
    return tmp_path / "dump"


def _truncate_last_line(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: data.rstrip(b"\n").rfind(b"\n") + 1])


def _break_json_on_line_2(path: Path) -> None:
    lines = path.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1][: len(lines[1]) // 2] + b"\n"
    path.write_bytes(b"".join(lines))


def _flip_a_letter(path: Path) -> None:
    data = path.read_bytes()
    at = data.index(b"Ketamine")
    path.write_bytes(data[:at] + b"k" + data[at + 1 :])


DAMAGES = {
    "manifest missing": (
        lambda d: (d / MANIFEST_NAME).unlink(),
        r"manifest\.json is missing: .*did not finish",
    ),
    "file missing": (lambda d: (d / "claim.jsonl").unlink(), r"claim\.jsonl is missing; the dump is partial"),
    "checksum": (lambda d: _flip_a_letter(d / "article.jsonl"), r"article\.jsonl does not match its SHA-256"),
    "count": (
        lambda d: _truncate_last_line(d / "audit_event.jsonl"),
        r"audit_event\.jsonl holds \d+ rows but the manifest says \d+",
    ),
    "bad json": (lambda d: _break_json_on_line_2(d / "claim.jsonl"), r"claim\.jsonl: bad JSON at line 2"),
    "schema revision": (
        lambda d: rewrite_manifest(d, schema_revision="9999_from_the_future"),
        r"manifest\.json comes from schema revision '9999_from_the_future', which this release does not know",
    ),
    "format version": (
        lambda d: rewrite_manifest(d, format_version=99),
        r"manifest\.json has format version 99, which this release cannot read",
    ),
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_restore_refuses_a_damaged_dump_in_one_line_naming_the_file(
    damage: str, good_dump: Path, sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    spoil, message = DAMAGES[damage]
    spoil(good_dump)

    status = main(["restore", str(good_dump)])

    err = capsys.readouterr().err
    assert status == 1
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ")
    assert str(good_dump) in err
    assert re.search(message, err), err
    assert sum(row_counts(sqlite_url).values()) == 0  # nothing written


def test_verify_finds_a_row_that_lost_a_column(good_dump: Path) -> None:
    path = good_dump / "app_user.jsonl"
    rows = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    del rows[0]["role"]
    path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    refresh_checksum(good_dump, "app_user.jsonl")

    with pytest.raises(DumpError, match=r"app_user\.jsonl: line 1 is not a row with the manifest's columns"):
        verify_dump(good_dump)


def test_a_restore_that_fails_half_way_writes_nothing(good_dump: Path, db_url: str) -> None:
    # Checksums agree but the last table refers to a user who does not exist: the database must
    # refuse it, and the rows of every earlier table must go too (one transaction).
    path = good_dump / "audit_event.jsonl"
    rows = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    rows[-1]["actor_id"] = 999
    path.write_bytes(b"".join(orjson.dumps(row, option=orjson.OPT_SORT_KEYS) + b"\n" for row in rows))
    refresh_checksum(good_dump, "audit_event.jsonl")

    with pytest.raises(DumpError, match="break a constraint .*nothing was restored"):
        restore_database(db_url, good_dump)

    assert sum(row_counts(db_url).values()) == 0


def test_cli_dump_then_restore_into_a_new_database(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fill_instance(sqlite_url)
    assert main(["dump", "-o", str(tmp_path / "dump")]) == 0
    assert "Dumped" in capsys.readouterr().out
    target = f"sqlite:///{tmp_path / 'new.sqlite3'}"
    monkeypatch.setenv("DATABASE_URL", target)

    assert main(["restore", str(tmp_path / "dump")]) == 0

    assert "Restored" in capsys.readouterr().out
    assert row_counts(target) == row_counts(sqlite_url)
    assert main(["restore", str(tmp_path / "dump")]) == 1
    assert "--replace" in capsys.readouterr().err
    shutil.rmtree(tmp_path / "dump")
    engine_for(target).dispose()
    with open_session(target) as session:
        assert session.scalar(select(func.count()).select_from(Assessment)) == 2


@pytest.mark.slow  # a subprocess: the command as a user runs it
def test_restore_in_a_fresh_process_knows_every_table(good_dump: Path, tmp_path: Path) -> None:
    # A new interpreter has imported only what the CLI imports: every table module must still count.
    target = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    env = {
        **os.environ,
        "DATABASE_URL": target,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])),
    }

    result = subprocess.run(
        [sys.executable, "-m", "ingest.cli", "restore", str(good_dump)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Restored ")
    engine_for(target).dispose()
