"""`claims add`, `claims propose`, `claims accept` and `claims reject`: new claims without the dashboard."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session

from db.engine import engine_for
from db.models import SourceDocument
from db.review.audit import claim_history
from db.review.claims import get_claim
from db.review.sources import SEED_SLUG
from db.vocab import AuditAction
from ingest.cli import main

SEED_SENTENCE = (
    "Ketamine, on the other hand, can start to alleviate symptoms within hours or days of treatment."
)
ARTICLE = """# Ketamine clinics, reviewed

Thousands of patients have been treated in ketamine clinics.

Studies have shown that ketamine reduces depressive symptoms within a day.

Esketamine nasal spray is more effective than placebo for treatment-resistant depression.

We visited three of them.
"""


@pytest.fixture
def team(sqlite_url: str) -> str:
    assert main(["users", "add", "ada", "--role", "admin"]) == 0
    for name, role in (("eve", "editor"), ("ana", "reviewer")):
        assert main(["users", "add", name, "--role", role, "--as", "ada"]) == 0
    return sqlite_url


def test_claims_add_locates_the_sentence_and_keeps_the_time_frame(
    team: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["claims", "add", "onset-within-hours", "--statement", "Ketamine works within hours."]
    assert main([*argv, "--sentence", SEED_SENTENCE, "--time-frame", "hours", "--as", "eve"]) == 0
    assert "Added claim onset-within-hours of ketamine-therapy-blog-post" in capsys.readouterr().out

    with Session(engine_for(team)) as session:
        claim = get_claim(session, "onset-within-hours")
        assert (claim.statement, claim.sentence, claim.time_frame) == (
            "Ketamine works within hours.",
            SEED_SENTENCE,
            "hours",
        )
        document = session.get(SourceDocument, claim.document_id)
        assert document is not None and document.text[claim.span_start : claim.span_end] == SEED_SENTENCE
        assert [e.action for e in claim_history(session, claim.id)] == [AuditAction.CLAIM_ADDED]
    assert main(["claims", "list"]) == 0
    assert "onset-within-hours\tactive\tKetamine works within hours." in capsys.readouterr().out


def test_claims_add_without_a_sentence_needs_the_statement_in_the_document(
    team: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["claims", "add", "quick", "--statement", "Ketamine is quick.", "--as", "eve"]) == 1
    err = capsys.readouterr().err
    assert "not a sentence of document 'ketamine-therapy-blog-post'; give --sentence" in err
    assert len(err.strip().splitlines()) == 1

    assert main(["claims", "add", "quick", "--statement", SEED_SENTENCE, "--as", "eve"]) == 0
    with Session(engine_for(team)) as session:
        assert get_claim(session, "quick").sentence == SEED_SENTENCE


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["bad key", "--statement", "x", "--sentence", SEED_SENTENCE], "is not a stable key"),
        (["rapid-onset", "--statement", "x", "--sentence", SEED_SENTENCE], "exists already"),
        (["new-one", "--statement", "x", "--sentence", "Not in the article."], "does not occur in document"),
        (
            ["new-one", "--statement", "x", "--sentence", SEED_SENTENCE, "--document", "nope"],
            "No source docu",
        ),
    ],
)
def test_claims_add_refuses_with_one_line_naming_the_way_out(
    team: str, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["claims", "add", *argv, "--as", "eve"]) == 1
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_claims_add_is_for_editors(team: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["claims", "add", "new-one", "--statement", "x", "--sentence", SEED_SENTENCE]
    assert main([*argv, "--as", "ana"]) == 1
    assert "editor" in capsys.readouterr().err
    assert main(argv) == 1
    assert "pass --as NAME" in capsys.readouterr().err
    assert main(["claims", "add", "new-one", "--sentence", SEED_SENTENCE, "--as", "eve"]) == 2  # no statement


def test_claims_add_asks_which_document_when_there_are_several(
    team: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "article.md").write_text(ARTICLE, encoding="utf-8")
    assert main(["claims", "propose", str(tmp_path / "article.md"), "--as", "eve"]) == 0
    capsys.readouterr()
    sentence = "We visited three of them."
    assert main(["claims", "add", "visits", "--statement", sentence, "--as", "eve"]) == 1
    assert "2 documents (ketamine-therapy-blog-post, ketamine-clinics-reviewed)" in capsys.readouterr().err
    slug = "ketamine-clinics-reviewed"
    assert main(["claims", "add", "visits", "--statement", sentence, "--document", slug, "--as", "eve"]) == 0
    assert (
        main(
            [
                "claims",
                "add",
                "seed-one",
                "--statement",
                SEED_SENTENCE,
                "--document",
                SEED_SLUG,
                "--as",
                "eve",
            ]
        )
        == 0
    )


def test_claims_propose_lists_claim_like_sentences_and_accepting_one_makes_a_claim(
    team: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "article.md"
    path.write_text(ARTICLE, encoding="utf-8")

    assert main(["claims", "propose", str(path), "--as", "eve"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "ketamine-clinics-reviewed: 3 proposed claim(s)."
    proposals = [line.split("\t") for line in lines[1:-1]]
    sentences = [sentence for _id, _cues, sentence in proposals]
    assert sentences == [
        "Thousands of patients have been treated in ketamine clinics.",
        "Studies have shown that ketamine reduces depressive symptoms within a day.",
        "Esketamine nasal spray is more effective than placebo for treatment-resistant depression.",
    ]
    assert "evidence" in proposals[1][1] and "comparison" in proposals[2][1]
    assert "We visited" not in "\n".join(lines) and "# Ketamine" not in "\n".join(lines)

    # The same file again adds no document and no duplicate proposals.
    assert main(["claims", "propose", str(path), "--as", "eve"]) == 0
    assert capsys.readouterr().out.splitlines()[1:-1] == lines[1:-1]

    onset, esketamine, clinics = proposals[1][0], proposals[2][0], proposals[0][0]
    assert (
        main(["claims", "accept", onset, "--key", "within-a-day", "--time-frame", "1 day", "--as", "eve"])
        == 0
    )
    assert main(["claims", "reject", clinics, "--as", "eve"]) == 0
    assert main(["claims", "accept", clinics, "--key", "clinics", "--as", "eve"]) == 1
    assert "was rejected already" in capsys.readouterr().err
    assert main(["claims", "propose", str(path), "--as", "eve"]) == 0
    assert [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()[1:-1]] == [esketamine]
    with Session(engine_for(team)) as session:
        claim = get_claim(session, "within-a-day")
        assert (claim.statement, claim.time_frame) == (sentences[1], "1 day")


def test_claims_propose_refuses_missing_and_binary_files(
    team: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["claims", "propose", str(tmp_path / "missing.md"), "--as", "eve"]) == 1
    assert "No file" in capsys.readouterr().err
    (tmp_path / "binary.txt").write_bytes(b"\xff\xfe\x00bad")
    assert main(["claims", "propose", str(tmp_path / "binary.txt"), "--as", "eve"]) == 1
    assert "is not UTF-8 text" in capsys.readouterr().err
    (tmp_path / "article.md").write_text(ARTICLE, encoding="utf-8")
    assert main(["claims", "propose", str(tmp_path / "article.md"), "--as", "ana"]) == 1
    assert "editor" in capsys.readouterr().err
    # A different text under a slug that exists is refused, not merged into that document.
    (tmp_path / "other.md").write_text(
        "# Ketamine clinics, reviewed\n\nStudies show nothing.\n", encoding="utf-8"
    )
    assert main(["claims", "propose", str(tmp_path / "article.md"), "--as", "eve"]) == 0
    assert main(["claims", "propose", str(tmp_path / "other.md"), "--as", "eve"]) == 1
    assert "exists already; give another --slug" in capsys.readouterr().err


def test_a_new_claims_search_terms_are_shown_and_it_is_ranked(
    team: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["claims", "add", "quick", "--statement", SEED_SENTENCE, "--time-frame", "hours", "--as", "eve"]
    assert main(argv) == 0
    capsys.readouterr()

    assert main(["claim-terms", "quick"]) == 0
    out = capsys.readouterr().out
    assert "quick (no term list" in out and "alleviate" in out and "onset" in out
    assert main(["claim-terms", "rapid-onset"]) == 0
    assert "rapid-onset (default terms)" in capsys.readouterr().out
    assert main(["rank", "--claim", "quick", "--format", "jsonl"]) == 0  # no studies yet: nothing to list


def test_documents_edit_describes_the_article_as_claimreview_publishes_it(
    team: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from sqlalchemy import select

    from db.models import AuditEvent

    argv = ["documents", "edit", SEED_SLUG, "--author", "Jane Doe", "--url", "https://example.org/ketamine"]
    assert main([*argv, "--reason", "byline found", "--as", "eve"]) == 0
    assert "author Jane Doe" in capsys.readouterr().out

    with Session(engine_for(team)) as session:
        document = session.scalars(select(SourceDocument).where(SourceDocument.slug == SEED_SLUG)).one()
        assert (document.author, document.url) == ("Jane Doe", "https://example.org/ketamine")
        events = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.action == AuditAction.DOCUMENT_CHANGED)
            .order_by(AuditEvent.id)
        ).all()
        assert [(e.before, e.after, e.reason, e.actor_name) for e in events] == [
            ({"author": None}, {"author": "Jane Doe"}, "byline found", "eve"),
            ({"url": None}, {"url": "https://example.org/ketamine"}, "byline found", "eve"),
        ]
    assert main(["documents", "list"]) == 0
    assert "\tJane Doe\t" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--url", "javascript:alert(1)"], "is not a web address; give the article's full address"),
        (["--url", "example.org/ketamine"], "is not a web address"),
        (["--title", " "], "A document's title cannot be empty"),
        (["--author", "X", "--as", "ana"], "managing documents and claims needs the role editor"),
    ],
)
def test_documents_edit_refuses_bad_values_and_changes_nothing(
    team: str, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    acting = [] if "--as" in argv else ["--as", "eve"]
    assert main(["documents", "edit", SEED_SLUG, "--author", "Jane Doe", *argv, *acting]) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    with Session(engine_for(team)) as session:
        document = session.get(SourceDocument, 1)
        assert document is not None and (document.author, document.url) == (None, None)
