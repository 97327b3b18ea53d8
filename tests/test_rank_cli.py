"""`ketamine-evidence rank`, `claim-terms` and `embed`: output formats, editing terms, one-line errors."""

from __future__ import annotations

import json

import click
import pytest

from db.engine import open_session
from db.ranking.model import clear_corpus_cache
from db.review.sources import ensure_seed_content
from db.vocab import Role
from ingest.cli import cli, main
from tests.review_builders import add_article, add_user


@pytest.fixture
def seeded(sqlite_url: str) -> str:
    clear_corpus_cache()
    with open_session(sqlite_url) as session:
        ensure_seed_content(session)
        add_user(session, "ada", Role.ADMIN)
        add_user(session, "eve", Role.EDITOR)
        add_user(session, "rita", Role.REVIEWER)
        add_article(
            session, 11, title="Ketamine for treatment-resistant depression", abstract="TRD remitted."
        )
        add_article(
            session, 12, title="Ketamine in cats", abstract="Anesthesia for surgery.", publication_types=[]
        )
        add_article(session, 13, title="Refractory depression and esketamine", abstract="Refractory cases.")
        session.commit()
    return sqlite_url


def test_rank_prints_jsonl_with_reasons(seeded: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rank", "--claim", "treatment-resistant", "--format", "jsonl"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["rank"] for row in rows] == [1, 2, 3]
    assert {row["pmid"] for row in rows} == {11, 12, 13}
    assert rows[0]["pmid"] in {11, 13} and rows[-1]["pmid"] == 12
    assert set(rows[0]) >= {"pmid", "score", "design", "title", "why", "matched_terms"}
    assert "matched" in rows[0]["why"] and rows[0]["design"] == "rct"


def test_rank_prints_a_table_and_honours_top(seeded: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rank", "--claim", "treatment-resistant", "--top", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:5] == ["rank", "PMID", "score", "design", "title"]
    assert len(lines) == 3
    assert lines[1].split()[0] == "1"


def test_rank_of_an_unknown_claim_is_a_one_line_error(
    seeded: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["rank", "--claim", "no-such-claim"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: No claim with key 'no-such-claim'") and err.count("\n") == 1


def test_reviewer_queue_leaves_out_what_they_tagged(seeded: str, capsys: pytest.CaptureFixture[str]) -> None:
    from db.review.claims import get_claim
    from db.review.roles import get_user
    from tests.review_builders import vote

    with open_session(seeded) as session:
        vote(session, get_user(session, "rita"), get_claim(session, "treatment-resistant"), 11)
        session.commit()
    assert main(["rank", "--claim", "treatment-resistant", "--reviewer", "rita", "--format", "jsonl"]) == 0
    assert {json.loads(line)["pmid"] for line in capsys.readouterr().out.splitlines()} == {12, 13}


def test_claim_terms_are_shown_and_set_by_an_editor(seeded: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["claim-terms", "rapid-onset"]) == 0
    assert "(default terms)" in capsys.readouterr().out
    assert main(["claim-terms", "rapid-onset", "--synonyms", "rapid; 24 h", "--as", "rita"]) == 1
    assert "needs the role" in capsys.readouterr().err
    assert (
        main(["claim-terms", "rapid-onset", "--synonyms", "rapid; 24 h", "--as", "eve", "--reason", "r"]) == 0
    )
    out = capsys.readouterr().out
    assert "(editor terms)" in out and "synonyms: rapid; 24 h" in out
    assert "outcomes: hours" in out  # outcomes kept as they were
    assert main(["claim-terms", "rapid-onset", "--reset", "--as", "eve"]) == 0
    assert "(default terms)" in capsys.readouterr().out


def test_every_rank_option_has_help() -> None:
    for name in ("rank", "claim-terms", "embed"):
        command = cli.commands[name]
        assert command.help
        assert all(param.help for param in command.params if isinstance(param, click.Option))
