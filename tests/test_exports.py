"""Exports: claim reports in three formats, assessments, the audit trail, ClaimReview JSON-LD."""

from __future__ import annotations

import csv
import io
import json

import pytest
from sqlmodel import Session

from db.errors import InvalidInputError
from db.exports.assessments import ASSESSMENT_COLUMNS, write_assessments
from db.exports.audit import write_audit
from db.exports.claimreview import claimreview_jsonld, write_claimreview
from db.exports.claims import claim_reports, write_claims
from db.exports.formats import ExportFormat, parse_format
from db.models import User
from db.review.assessment_import import AssessmentRow, import_assessments
from db.review.claims import get_claim
from db.review.signoff import sign_off
from db.vocab import SignOffDecision, StudyVerdict
from tests.review_builders import add_article, add_claim, document_of, team, vote


def _reviewed(session: Session) -> dict[str, User]:
    """Claim 'fast-relief': an MA and an RCT support, a case report against, a retracted RCT; signed off."""
    people = team(session)
    claim = add_claim(session)
    document = document_of(session, claim)
    document.url = "https://example.org/post"
    document.outlet = "Example Blog"
    add_article(session, 1, publication_types=["Meta-Analysis"])
    add_article(session, 2)
    add_article(session, 3, publication_types=["Case Reports"])
    add_article(session, 4, retraction_status="retracted")
    for pmid in (1, 2):
        vote(session, people["reviewer"], claim, pmid, StudyVerdict.SUPPORTED)
        vote(session, people["reviewer2"], claim, pmid, StudyVerdict.SUPPORTED)
    vote(session, people["reviewer"], claim, 3, StudyVerdict.UNSUPPORTED)
    vote(session, people["reviewer"], claim, 4, StudyVerdict.SUPPORTED)
    sign_off(
        session, people["editor"], claim, SignOffDecision.OK_TO_PUBLISH, "An MA and an RCT agree.", "accurate"
    )
    add_claim(session, document, key="stays-well", sentence="Some patients stay well for months.")
    return people


def _export_claims(session: Session, fmt: ExportFormat) -> str:
    out = io.StringIO()
    write_claims(claim_reports(session), fmt, out)
    return out.getvalue()


def test_claims_jsonl_carries_verdict_counts_exclusions_and_signoff(session: Session) -> None:
    _reviewed(session)

    reports = {r["key"]: r for r in map(json.loads, _export_claims(session, ExportFormat.JSONL).splitlines())}
    report = reports["fast-relief"]

    # No participants stated: precision cannot be judged, so high is rated down once.
    assert report["verdict"] == "supported" and report["strength"] == "moderate"
    assert report["reasoning"].startswith(
        "1 meta-analysis and 1 RCT support; 1 case report or series not counted; excluded: PMID 4 (retracted)."
    )
    assert report["counts_by_verdict"] == {
        "supported": 2,
        "mixed": 0,
        "unsupported": 1,
        "not_relevant": 0,
        "unresolved": 0,
    }
    assert report["counts_by_design"] == {"meta_analysis": 1, "rct": 1, "case_report": 1}
    assert report["excluded"] == [{"pmid": 4, "reason": "retracted"}]
    assert report["high_certainty_verdict"] == "supported" and not report["rests_on_weak_studies"]
    assert report["agreement_items"] == 2 and report["percent_agreement"] == 1.0
    assert report["kappa"] is None  # both said "supported" twice: kappa undefined
    assert report["signoff"] == "ok_to_publish" and report["signed_off_by"] == "eve"
    assert report["evidence_changed_since_signoff"] is False
    assert reports["stays-well"]["verdict"] == "insufficient_evidence"


def test_claims_csv_flattens_nested_fields(session: Session) -> None:
    _reviewed(session)

    rows = list(csv.DictReader(io.StringIO(_export_claims(session, ExportFormat.CSV))))

    assert [r["key"] for r in rows] == ["fast-relief", "stays-well"]
    assert rows[0]["counts_by_verdict"] == "supported=2; unsupported=1"
    assert rows[0]["counts_by_design"] == "meta_analysis=1; rct=1; case_report=1"
    assert rows[0]["excluded"] == "4 (retracted)"


def test_claims_markdown_has_a_summary_table_and_a_section_per_claim(session: Session) -> None:
    _reviewed(session)

    text = _export_claims(session, ExportFormat.MARKDOWN)

    assert (
        "| fast-relief | supported | moderate | 3 | not stated | not stated | accurate | ok to publish |"
        in text
    )
    assert "## stays-well" in text
    assert "- PMID 4: retracted" in text
    assert "**Editor's rating:** accurate. An MA and an RCT agree." in text


def test_assessments_csv_can_be_imported_again_unchanged(session: Session) -> None:
    people = _reviewed(session)
    out = io.StringIO()

    count = write_assessments(session, ExportFormat.CSV, out, viewer=people["editor"])
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    again = import_assessments(
        session,
        people["editor"],
        [
            AssessmentRow(
                line,
                *(row[c] for c in ("reviewer", "claim_key", "pmid", "verdict", "quote", "note", "design")),
            )
            for line, row in enumerate(rows, start=2)
        ],
    )

    assert count == 6
    assert tuple(rows[0]) == ASSESSMENT_COLUMNS
    assert (again.created, again.updated, again.unchanged) == (0, 0, 6)


def test_audit_exports_as_jsonl_and_csv(session: Session) -> None:
    people = _reviewed(session)
    session.flush()
    jsonl, table = io.StringIO(), io.StringIO()

    n = write_audit(session, ExportFormat.JSONL, jsonl, viewer=people["editor"])
    write_audit(session, ExportFormat.CSV, table, viewer=people["editor"])
    events = [json.loads(line) for line in jsonl.getvalue().splitlines()]
    rows = list(csv.DictReader(io.StringIO(table.getvalue())))

    assert n == len(events) == len(rows)
    signed = [e for e in events if e["action"] == "claim_signed_off"]
    assert signed[0]["actor"] == "eve" and signed[0]["after"]["decision"] == "ok_to_publish"
    assert json.loads(rows[-1]["after"])  # nested values stay JSON inside a CSV cell


def test_claimreview_is_schema_org_json_ld(session: Session) -> None:
    _reviewed(session)
    out = io.StringIO()

    export = claimreview_jsonld(session, "Health Desk", "https://example.org")
    write_claimreview(export, out)
    document = json.loads(out.getvalue())

    assert document["@context"] == "https://schema.org"
    [review] = document["@graph"]
    assert review["@type"] == "ClaimReview"
    assert review["claimReviewed"] == "Ketamine relieves depression within hours."
    assert review["itemReviewed"]["@type"] == "Claim"
    assert review["itemReviewed"]["appearance"] == {
        "@type": "CreativeWork",
        "name": "Test post",
        "url": "https://example.org/post",
        "author": {"@type": "Organization", "name": "Example Blog"},
    }
    assert review["reviewRating"] == {
        "@type": "Rating",
        "ratingValue": 6,
        "bestRating": 6,
        "worstRating": 1,
        "alternateName": "Accurate",
    }
    assert review["author"] == {"@type": "Organization", "name": "Health Desk", "url": "https://example.org"}
    assert (
        len(review["datePublished"]) == 10 and review["url"] == "https://example.org/post#claim-fast-relief"
    )
    assert export.skipped == []


def test_claimreview_leaves_out_claims_whose_evidence_changed(session: Session) -> None:
    people = _reviewed(session)
    add_article(session, 5)
    vote(session, people["reviewer"], get_claim(session, "fast-relief"), 5, StudyVerdict.UNSUPPORTED)

    export = claimreview_jsonld(session, "Health Desk")

    assert export.document["@graph"] == [] and export.skipped == ["fast-relief"]


def test_unknown_formats_are_refused_with_the_choices() -> None:
    with pytest.raises(
        InvalidInputError, match=r"Cannot export assessments as 'markdown'; use --format csv\|jsonl"
    ):
        parse_format("markdown", (ExportFormat.CSV, ExportFormat.JSONL), "assessments")
