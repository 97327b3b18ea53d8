"""Exports under hostile text and blind review: no live formulas, no script breakout, no leaked votes."""

from __future__ import annotations

import csv
import io
import json

import pytest
from sqlmodel import Session

from db.errors import PermissionDenied
from db.exports.articles import write_articles
from db.exports.assessments import write_assessments
from db.exports.audit import write_audit
from db.exports.claimreview import ClaimReviewExport, write_claimreview
from db.exports.claims import claim_reports
from db.exports.formats import ExportFormat, csv_safe
from db.models import User
from db.vocab import StudyVerdict
from ingest.cli import main
from tests.review_builders import add_article, add_claim, team, vote

FORMULAS = [
    '=HYPERLINK("http://evil.example","x")',
    "+1+2",
    "-2+3",
    "@SUM(A1)",
    "\tTab",
    "\rReturn",
    "'quoted",
]


@pytest.mark.parametrize("text", FORMULAS)
def test_a_formula_cell_becomes_text_and_the_original_is_recoverable(text: str) -> None:
    cell = csv_safe(text)
    assert cell.startswith("'") and cell[1:] == text


@pytest.mark.parametrize("text", ["Ketamine works", "", "3-day follow-up", "a=b"])
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert csv_safe(text) == text


def test_every_csv_export_neutralises_formulas(session: Session) -> None:
    people = team(session)
    claim = add_claim(session)
    add_article(session, 1, title='=HYPERLINK("http://evil.example","Ketamine")')
    vote(
        session,
        people["reviewer"],
        claim,
        1,
        StudyVerdict.SUPPORTED,
        quote='=HYPERLINK("http://evil.example","Ketamine")',
    )
    session.flush()

    articles, assessments, audit = io.StringIO(), io.StringIO(), io.StringIO()
    write_articles(session, articles, "csv")
    write_assessments(session, ExportFormat.CSV, assessments, viewer=people["editor"])
    write_audit(session, ExportFormat.CSV, audit, viewer=people["editor"])

    for name, text in (("articles", articles), ("assessments", assessments), ("audit", audit)):
        cells = [cell for row in csv.reader(io.StringIO(text.getvalue())) for cell in row]
        assert not [c for c in cells if c.startswith(("=", "+", "-", "@", "\t", "\r"))], name
    [row] = list(csv.DictReader(io.StringIO(assessments.getvalue())))
    assert row["quote"] == '\'=HYPERLINK("http://evil.example","Ketamine")'


def test_claimreview_json_ld_can_be_embedded_in_a_page_as_it_is() -> None:
    rationale = "Fine.</script><script>alert('x')</script> & more"
    out = io.StringIO()

    write_claimreview(ClaimReviewExport({"@graph": [{"reviewBody": rationale}]}, []), out)

    text = out.getvalue()
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text)["@graph"][0]["reviewBody"] == rationale  # the same data, read back


def _blind_review(session: Session) -> dict[str, User]:
    people = team(session)
    claim = add_claim(session)  # the test document has blind mode on
    for pmid in (1, 2):
        add_article(session, pmid)
    vote(session, people["reviewer"], claim, 1, StudyVerdict.SUPPORTED)
    vote(session, people["reviewer2"], claim, 1, StudyVerdict.MIXED)
    vote(session, people["reviewer2"], claim, 2, StudyVerdict.UNSUPPORTED)
    session.flush()
    return people


def test_a_reviewer_in_blind_mode_exports_others_votes_only_where_they_voted(session: Session) -> None:
    people = _blind_review(session)

    def exported(viewer: User) -> set[tuple[str, str]]:
        out = io.StringIO()
        write_assessments(session, ExportFormat.CSV, out, viewer=viewer)
        return {(row["reviewer"], row["pmid"]) for row in csv.DictReader(io.StringIO(out.getvalue()))}

    assert exported(people["reviewer"]) == {("rita", "1"), ("rob", "1")}  # not rob's vote on study 2
    assert exported(people["editor"]) == {("rita", "1"), ("rob", "1"), ("rob", "2")}


def test_a_reviewer_in_blind_mode_gets_no_audit_events_of_pairs_they_did_not_judge(session: Session) -> None:
    people = _blind_review(session)
    out = io.StringIO()

    write_audit(session, ExportFormat.JSONL, out, viewer=people["reviewer"])

    pairs = {(event["claim_id"], event["pmid"]) for event in map(json.loads, out.getvalue().splitlines())}
    assert all(pmid != 2 for _, pmid in pairs) and any(pmid == 1 for _, pmid in pairs)


def test_a_reviewer_in_blind_mode_cannot_export_claim_reports(session: Session) -> None:
    people = _blind_review(session)

    with pytest.raises(PermissionDenied, match=r"Blind mode is on for claim\(s\) fast-relief"):
        claim_reports(session, viewer=people["reviewer"])
    assert claim_reports(session, viewer=people["editor"])  # editors resolve conflicts: they see votes


def test_vote_exports_on_the_command_line_need_to_know_who_asks(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for kind in ("assessments", "audit", "claims"):
        assert main(["export", kind]) == 1
        assert "Say who is acting: pass --as NAME" in capsys.readouterr().err
