"""The console script end to end: import, export, runs, info, and one-line errors with exit codes."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from ingest.cli import cli, main
from ingest.cli.output import output
from tests.conftest import TEST_DATA

SAMPLE = TEST_DATA / "pubmed_ketamine_sample.xml"
NBIB = TEST_DATA / "ketamine_sample.nbib"


def run_cli(*args: str) -> tuple[int, str, str]:
    """Run the CLI in a subprocess, as a user would, with the test's environment."""
    result = subprocess.run(
        [sys.executable, "-m", "ingest.cli", *args],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=120,
    )
    return result.returncode, result.stdout, result.stderr


def test_import_then_export_jsonl_has_the_agreed_columns(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["import", str(SAMPLE), str(NBIB)]) == 0
    out = tmp_path / "articles.jsonl"
    assert main(["export", "articles", "--format", "jsonl", "-o", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 8
    by_pmid = {row["pmid"]: row for row in rows}
    required = {
        "pmid",
        "title",
        "abstract",
        "journal",
        "year",
        "doi",
        "pmcid",
        "publication_types",
        "mesh_terms",
        "retracted",
    }
    assert required <= set(rows[0])
    assert by_pmid[90000001]["mesh_terms"] == [
        "Ketamine",
        "Depressive Disorder, Treatment-Resistant",
        "Humans",
    ]
    assert by_pmid[90000001]["pmcid"] == "PMC9900001"
    assert by_pmid[90000004]["retracted"] is True
    assert by_pmid[90000001]["retracted"] is False
    assert by_pmid[90000101]["year"] == 2025


def test_export_csv_joins_lists(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["import", str(SAMPLE)]) == 0
    capsys.readouterr()
    assert main(["export", "articles", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 6
    row = next(r for r in rows if r["pmid"] == "90000002")
    assert row["publication_types"] == "Meta-Analysis; Systematic Review"
    assert row["authors"] == "Lindqvist M; Ketamine Suicidality Collaborative Group"


def test_runs_and_info_describe_the_database(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs"]) == 0
    assert "No harvests or imports yet" in capsys.readouterr().out
    assert main(["import", str(SAMPLE)]) == 0
    assert main(["runs"]) == 0
    assert "import  succeeded" in capsys.readouterr().out
    assert main(["info"]) == 0
    assert (
        "Articles: 6 (4 with abstract, 2 retracted or under concern; years 2020-2025)"
        in capsys.readouterr().out
    )


@pytest.mark.slow  # a subprocess: the command as a user runs it
@pytest.mark.parametrize(
    ("make_input", "message"),
    [
        (lambda d: d / "missing.xml", "missing.xml: no such file"),
        (lambda d: (d / "empty.xml").write_bytes(b"") and d / "empty.xml" or d / "empty.xml", "empty input"),
        (lambda d: (d / "page.xml").write_text("<html><p>Oops</p></html>") and d / "page.xml", "HTML page"),
        (
            lambda d: (d / "data.csv").write_text("pmid,title\n1,x\n") and d / "data.csv",
            "opens no format import reads; import takes PubMed XML",
        ),
    ],
)
def test_bad_files_give_one_line_errors_and_exit_1(
    sqlite_url: str, tmp_path: Path, make_input, message: str
) -> None:  # type: ignore[no-untyped-def]
    path = make_input(tmp_path)
    code, out, err = run_cli("import", str(path))
    assert code == 1
    assert err.startswith("error: ") and message in err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


@pytest.mark.slow  # a subprocess: the command as a user runs it
def test_usage_errors_exit_2(sqlite_url: str) -> None:
    code, _, err = run_cli("harvest", "--since", "yesterday")
    assert code == 2 and "'yesterday' is not a date" in err
    code, _, err = run_cli("harvest", "--batch-size", "0")
    assert code == 2 and "must be 1 or more" in err
    code, _, err = run_cli("export", "articles", "--format", "xml")
    assert code == 1 and "pass --format jsonl or --format csv" in err


@pytest.mark.slow  # a subprocess: the command as a user runs it
def test_read_only_database_is_reported_without_losing_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "ro.sqlite3"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{db}")
    assert main(["import", str(SAMPLE)]) == 0
    # SQLite's read-only open mode: refuses writes even to root, unlike file permissions.
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///file:{db}?mode=ro&uri=true")
    code, _, err = run_cli("import", str(NBIB))
    assert code == 1
    assert "is read-only" in err and len(err.strip().splitlines()) == 1
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{db}")
    code, out, _ = run_cli("info")
    assert code == 0 and "Articles: 6 " in out


@pytest.mark.slow  # a subprocess: the command as a user runs it
def test_unreachable_database_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    code, _, err = run_cli("info")
    assert code == 1
    assert err.startswith("error: Cannot reach the database postgresql+psycopg://nobody@127.0.0.1:1/none")
    assert len(err.strip().splitlines()) == 1


@pytest.mark.slow  # a subprocess: the command as a user runs it
def test_bad_database_url_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "not a url")
    code, _, err = run_cli("info")
    assert code == 1 and "is not a database URL" in err


@pytest.mark.slow  # a subprocess: the command as a user runs it
def test_help_and_usage_errors_do_not_load_the_database_layer() -> None:
    code = (
        "import sys\n"
        "from ingest.cli import main\n"
        "assert main(['--help']) == 0 and main(['harvest', '--max', '0']) == 2\n"
        "heavy = {'db.engine', 'sqlalchemy', 'sqlmodel', 'numpy', 'alembic', 'streamlit', 'requests'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_every_option_of_every_command_has_help() -> None:
    def walk(command: click.Command, path: str) -> Iterator[tuple[str, click.Command]]:
        yield path, command
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                yield from walk(sub, f"{path} {name}")

    for path, command in walk(cli, "ketamine-evidence"):
        assert command.help, path
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, f"{path} {param.opts}"


def test_a_failed_write_leaves_the_old_file_and_no_partial_one(tmp_path: Path) -> None:
    target = tmp_path / "claims.jsonl"
    target.write_text("before\n")

    with pytest.raises(RuntimeError), output(target) as out:
        out.write("half of it")
        raise RuntimeError("the export failed")

    assert target.read_text() == "before\n"
    assert [p.name for p in tmp_path.iterdir()] == ["claims.jsonl"]


@pytest.mark.slow  # a subprocess: the command as a user runs it
def test_options_on_a_shared_shell_fall_back_on_the_environment(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["users", "add", "ada", "--role", "admin"]) == 0
    monkeypatch.setenv("KETAMINE_EVIDENCE_USER", "ada")
    assert main(["users", "add", "eve", "--role", "editor"]) == 0
    assert main(["queue", "--as", "eve"]) == 0
    assert "Nothing waits for an editor." in capsys.readouterr().out
    code, _, err = run_cli("users", "add", "rita", "--role", "boss")
    assert code == 2 and err.startswith("error: Invalid value for '--role'") and err.count("\n") == 1


@pytest.mark.slow  # a subprocess: the console script's own exit
def test_the_console_script_closes_the_database_and_flushes_before_its_fast_exit(tmp_path: Path) -> None:
    database = tmp_path / "fast-exit.sqlite3"
    env = dict(os.environ, DATABASE_URL=f"sqlite:///{database}")
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(Path(__file__).parent.parent), env.get("PYTHONPATH")])
    )
    command = [sys.executable, "-m", "ingest.cli"]
    done = subprocess.run(
        [*command, "import", str(SAMPLE)], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip().endswith("6 new, 0 updated, 0 unchanged, 0 deleted (run 1).")
    # Closed, not abandoned: SQLite folds the write-ahead log into the file when the last connection closes.
    assert database.exists() and not Path(f"{database}-wal").exists()
    failed = subprocess.run(
        [*command, "import", str(tmp_path / "missing.xml")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert failed.returncode == 1 and "no such file" in failed.stderr
