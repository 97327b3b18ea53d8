"""The command line under broken input: a bad file among many, a tampered audit trail, no memory."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from db.engine import engine_for, open_session
from db.errors import ImportRejected
from db.models import HarvestRun
from db.review.audit_guard import audit_guard_lifted
from ingest.cli import main
from tests.conftest import TEST_DATA


def test_one_bad_file_among_many_is_reported_and_the_rest_imported(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.xml"
    empty.write_text('<?xml version="1.0"?>\n<PubmedArticleSet></PubmedArticleSet>\n')
    files = [TEST_DATA / "pubmed_ketamine_sample.xml", empty, TEST_DATA / "ketamine_sample.nbib"]

    assert main(["import", *map(str, files)]) == 1

    out, err = capsys.readouterr()
    assert "pubmed_ketamine_sample.xml: 6 records, 6 new" in out and "ketamine_sample.nbib: 2 records" in out
    assert "empty.xml: holds no PubMed records" in err
    assert err.strip().splitlines()[-1] == (
        f"error: 1 of 3 files failed ({empty}); the others were imported. Fix or replace the failed files "
        "and import them again."
    )
    with open_session(db_url) as session:
        runs = session.scalars(select(HarvestRun).order_by(HarvestRun.id)).all()
    assert [run.status for run in runs] == ["succeeded", "failed", "succeeded"]  # each file its own run


def test_audit_verify_says_intact_then_finds_tampering(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["users", "add", "ada", "--role", "admin"]) == 0
    assert main(["users", "add", "rita", "--role", "reviewer", "--as", "ada"]) == 0
    capsys.readouterr()

    assert main(["audit", "verify"]) == 0
    assert capsys.readouterr().out.startswith("Audit trail intact: ")

    with engine_for(db_url).begin() as connection, audit_guard_lifted(connection):
        connection.exec_driver_sql("UPDATE audit_event SET actor_name = 'mallory' WHERE id = 1")
    assert main(["audit", "verify"]) == 1
    err = capsys.readouterr().err
    assert "problem: audit event 1 (link 1) does not match its seal" in err
    assert err.strip().splitlines()[-1].startswith("error: The audit trail of ")


def test_info_says_whether_the_audit_guard_is_on(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info"]) == 0
    assert "Audit guard: on (audit_event and audit_chain refuse changes)" in capsys.readouterr().out


def test_running_out_of_memory_is_one_line(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def exhausted(*_args: object, **_kwargs: object) -> None:
        raise MemoryError

    monkeypatch.setattr("ingest.importer.import_file", exhausted)

    assert main(["import", str(TEST_DATA / "ketamine_sample.nbib")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ran out of memory;") and len(err.strip().splitlines()) == 1


HEADER = "reviewer,claim_key,pmid,verdict,quote,note\n"


def test_a_latin1_assessments_csv_names_the_file_and_the_fix(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "votes.csv"
    path.write_bytes((HEADER + "rita,rapid-onset,1,supported,Amélioration rapide,\n").encode("latin-1"))

    assert main(["import-assessments", str(path), "--as", "rita"]) == 1

    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {path} is not UTF-8 text (line 2, byte 0xe9)")
    assert "iconv -f latin1 -t utf-8" in err and len(err.splitlines()) == 1


def test_a_cell_past_the_csv_limit_is_named_with_its_line(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "votes.csv"
    path.write_text(
        HEADER + "rita,rapid-onset,1,supported,ok,\n" + f'rita,rapid-onset,2,mixed,"{"x" * 140_000}",\n'
    )

    assert main(["import-assessments", str(path), "--as", "rita"]) == 1

    err = capsys.readouterr().err.strip()
    assert (
        err.startswith(f"error: {path}: line 3: field larger than field limit") and len(err.splitlines()) == 1
    )


def test_bad_rows_are_counted_as_rows_with_their_problems_beside() -> None:
    rejected = ImportRejected("team.csv", [(2, "unknown reviewer"), (2, "unknown claim"), (3, "no pmid")])
    assert str(rejected).splitlines()[0] == (
        "team.csv: 2 bad row(s) (3 problems), nothing was imported; fix them and import again:"
    )


def test_the_hint_after_the_first_user_is_a_command_that_works(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["users", "add", "ada", "--role", "admin"]) == 0
    hint = capsys.readouterr().out.strip().splitlines()[-1]
    command = hint[hint.index("`") + 1 : hint.rindex("`")].split()[1:]  # without the program name
    command[command.index("NAME")] = "eddie"

    assert main(command) == 0
    assert "Added eddie as reviewer." in capsys.readouterr().out
