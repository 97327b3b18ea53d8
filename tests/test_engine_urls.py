"""DATABASE_URL values we cannot serve are named in one line with the way out, never a raw import error."""

from __future__ import annotations

import pytest

from db.engine import engine_for
from db.errors import DatabaseError
from ingest.cli import main


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://root@127.0.0.1/test", r"is a mysql database, which Ketamine Evidence does not support"),
        ("mysql+pymysql://root@127.0.0.1/test", r"is a mysql database"),
        (
            "postgresql+psycopg2://postgres@127.0.0.1/test",
            r"asks for the psycopg2 driver, which is not installed",
        ),
        ("oracle://scott:tiger@db/orcl", r"is a oracle database"),
    ],
)
def test_an_unsupported_database_url_is_one_line(url: str, message: str) -> None:
    with pytest.raises(DatabaseError, match=message):
        engine_for(url)


def test_the_cli_says_it_in_one_line_and_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://root:secret@127.0.0.1/test")

    assert main(["info"]) == 1

    err = capsys.readouterr().err
    assert err.startswith("error: DATABASE_URL ") and len(err.strip().splitlines()) == 1
    assert "secret" not in err and "postgresql+psycopg://" in err
