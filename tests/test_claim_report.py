"""The claim report an editor hands a writer (issue 13): summary of findings, every included study,
what was left out and why, the PRISMA flow and the search, in JSON Lines, CSV and Markdown."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session

from db.exports.claims import claim_reports, write_claims
from db.exports.formats import ExportFormat
from db.models import Assessment, HarvestRun
from db.review.claims import edit_claim, get_claim
from db.review.roles import get_user
from db.review.signoff import sign_off
from db.vocab import Rating, RunStatus, SignOffDecision, StudyVerdict
from tests.review_builders import add_article, add_claim, team, vote

HOSTILE_QUOTE = "MADRS fell | <script>alert(1)</script> [link](http://x)"


def _stated(assessment: Assessment, **fields: Any) -> None:
    for name, value in fields.items():
        setattr(assessment, name, value)


def _judged(session: Session) -> None:
    """fast-relief (time frame: up to 7 days): a 300-patient RCT at 1 day supports (two agreeing votes),
    a 40-patient RCT found no effect at 12 weeks (direct evidence against: no rapid onset), a
    500-patient RCT supports at 8 weeks (indirect: outside the week, so never weighed), an
    observational study supports, a retracted RCT, one study in conflict, one screened out with a
    note; a PubMed search ran once."""
    people = team(session)
    claim = add_claim(session)
    edit_claim(session, people["editor"], claim.key, follow_up_max_days=7)
    add_article(session, 11, title="Ketamine in a large trial")
    add_article(session, 12, title="Ketamine at twelve weeks")
    add_article(session, 13, publication_types=["Observational Study"])
    add_article(session, 14, retraction_status="retracted")
    add_article(session, 15)
    add_article(session, 16, title="Anaesthesia outcomes")
    add_article(session, 17, title="Ketamine at eight weeks")
    for reviewer in ("reviewer", "reviewer2"):
        large = vote(session, people[reviewer], claim, 11, quote="RESULTS: Ketamine reduced")
        _stated(large, participants=300, follow_up="24 hours", follow_up_days=1.0, effect="MADRS -7.6")
    late = vote(session, people["reviewer"], claim, 12, StudyVerdict.UNSUPPORTED, quote="RESULTS: Ketamine")
    _stated(late, participants=40, follow_up="12 weeks", follow_up_days=84.0)
    hostile = vote(session, people["reviewer"], claim, 13, quote="RESULTS")
    _stated(hostile, participants=80, effect=HOSTILE_QUOTE)
    vote(session, people["reviewer"], claim, 14)
    vote(session, people["reviewer"], claim, 15, StudyVerdict.SUPPORTED)
    vote(session, people["reviewer2"], claim, 15, StudyVerdict.MIXED)
    screened = vote(session, people["reviewer"], claim, 16, StudyVerdict.NOT_RELEVANT, quote="")
    screened.note = "surgical patients, no depression outcome"
    eight_weeks = vote(session, people["reviewer"], claim, 17, quote="RESULTS: Ketamine")
    _stated(eight_weeks, participants=500, follow_up="8 weeks", follow_up_days=56.0)
    session.add_all([large, late, hostile, screened, eight_weeks])
    session.add(
        HarvestRun(
            query="ketamine AND depression[tiab]",
            status=RunStatus.SUCCEEDED.value,
            finished_at=datetime(2026, 11, 15, 6, 0, tzinfo=UTC),
        )
    )
    session.flush()


def _report(session: Session, fmt: ExportFormat) -> str:
    out = io.StringIO()
    write_claims(claim_reports(session), fmt, out)
    return out.getvalue()


def test_jsonl_row_has_the_evidence_profile_contract(session: Session) -> None:
    _judged(session)

    report = json.loads(_report(session, ExportFormat.JSONL).splitlines()[0])

    # Deciding: RCTs 11 (300, supports) and 12 (40, does not); 17 is indirect and not weighed.
    # 300 / 340 = 88% supports: supported. 340 < 400: imprecision once. Against: 12% < 20%.
    # High - 1 = moderate.
    assert report["verdict"] == "supported"
    assert report["certainty"] == "moderate"
    assert report["downgrades"] == [
        {
            "domain": "imprecision",
            "reason": "340 participants, under the optimal information size of 400",
            "levels": 1,
        }
    ]
    assert report["participants"] == 340
    assert report["follow_up_days"] == [1.0, 84.0]
    assert report["provisional"] is True and report["rating"] is None
    assert report["open_conflicts"] == 1
    assert report["awaiting_second_vote"] == 5  # 12, 13, 14, 16 and 17 have one vote each
    studies = {s["pmid"]: s for s in report["studies"]}
    assert list(studies) == [11, 12, 17, 13]  # deciding first, larger first; then the others
    assert studies[11] | {"title": None, "url": None} == {
        "pmid": 11,
        "url": None,
        "title": None,
        "year": None,
        "design": "rct",
        "participants": 300,
        "follow_up": "24 hours",
        "follow_up_days": 1.0,
        "verdict": "supported",
        "quote": "RESULTS: Ketamine reduced",
        "effect": "MADRS -7.6",
        "direct": True,
        "indirect_reason": None,
        "decides": True,
    }
    assert studies[11]["url"] == "https://pubmed.ncbi.nlm.nih.gov/11/"
    assert studies[12]["direct"] is True and studies[12]["decides"] is True
    assert studies[17]["direct"] is False and studies[17]["decides"] is False
    assert studies[17]["indirect_reason"] == "follow-up 8 weeks, beyond the claim's time frame (up to 7 days)"
    assert studies[13]["decides"] is False
    assert report["screened_out"] == [
        {"pmid": 16, "title": "Anaesthesia outcomes", "note": "surgical patients, no depression outcome"}
    ]
    assert report["absolute_words"] == []
    assert report["left_out"] == [
        {"pmid": 14, "title": "Ketamine for depression: a trial", "reason": "retracted"},
        {"pmid": 15, "title": "Ketamine for depression: a trial", "reason": "awaiting conflict resolution"},
    ]
    assert report["flow"] == {
        "identified": 7,
        "screened": 7,
        "relevant": 6,
        "included": 4,
        "excluded": 2,
        "excluded_reasons": {"awaiting conflict resolution": 1, "retracted": 1},
    }
    assert report["search"] == {
        "queries": ["ketamine AND depression[tiab]"],
        "last_harvest": "2026-11-15",
        "imports": 0,
    }
    assert set(report["agreement"]) == {"kappa", "relevance_kappa", "verdict_kappa"}


def test_a_current_signoff_ends_provisional(session: Session) -> None:
    _judged(session)
    sign_off(
        session,
        get_user(session, "eve"),
        get_claim(session, "fast-relief"),
        SignOffDecision.REVISE_WORDING,
        "Say 'within a day'.",
        Rating.MOSTLY_ACCURATE,
    )

    report = json.loads(_report(session, ExportFormat.JSONL).splitlines()[0])
    assert report["provisional"] is False


def test_markdown_reads_as_a_report_with_studies_flow_and_escaped_text(session: Session) -> None:
    _judged(session)

    text = _report(session, ExportFormat.MARKDOWN)

    assert (
        "| fast-relief | supported | moderate | 4 | 340 | 1 day to 12 weeks | none | provisional (not signed off; 1 open conflict, 5 awaiting a second vote) |"
        in text
    )
    assert "- imprecision: 340 participants, under the optimal information size of 400" in text
    assert (
        "| [11](https://pubmed.ncbi.nlm.nih.gov/11/) |  | RCT | 300 | 1 day | supported | yes | MADRS -7.6 |"
        in text
    )
    assert "| RCT | 500 | 8 weeks | supported | no: follow-up 8 weeks, beyond the claim" in text
    assert "- PMID 16: surgical patients, no depression outcome" in text
    assert "observational study (does not decide)" in text
    assert "- PMID 14: retracted" in text
    assert (
        "Records identified: 7; screened for this claim: 7; not relevant: 1; relevant: 6; included: 4; excluded: 2"
        in text
    )
    assert "PubMed search: `ketamine AND depression\\[tiab\\]`, last run 2026-11-15." in text
    # Reviewer text is inert: no HTML, no link, no extra table cell.
    assert "<script>" not in text and "[link](" not in text
    assert "MADRS fell \\| \\<script\\>" in text


def test_csv_lists_the_studies_in_one_cell(session: Session) -> None:
    _judged(session)

    row = next(csv.DictReader(io.StringIO(_report(session, ExportFormat.CSV))))

    assert row["certainty"] == "moderate"
    assert row["follow_up_days"] == "1 day to 12 weeks"
    assert row["studies"].startswith(
        "PMID 11 (RCT, 300 participants, 1 day): supported; PMID 12 (RCT, 40 participants, 12 weeks): unsupported; "
        "PMID 17 (RCT, 500 participants, 8 weeks, indirect): supported"
    )
    assert row["downgrades"] == "imprecision: 340 participants, under the optimal information size of 400"


def test_absolute_wording_is_flagged_for_the_editor(session: Session) -> None:
    people = team(session)
    claim = add_claim(session, key="undeniable", statement="The benefits are undeniable.")
    assert claim.key == "undeniable"
    del people

    text = _report(session, ExportFormat.MARKDOWN)
    report = json.loads(_report(session, ExportFormat.JSONL).splitlines()[0])

    assert report["absolute_words"] == ["undeniable"]
    assert "**Wording:** the claim says “undeniable”." in text
    # Nothing weighed: no certainty and no participants to show, rather than "very low" and 0.
    assert "| undeniable | insufficient evidence | — | 0 | none direct | — | none |" in text


def test_absolute_words_are_whole_words_of_the_statement() -> None:
    from db.read.evidence_profile import absolute_wording

    assert absolute_wording("Ketamine always cures depression, for all patients.") == [
        "always",
        "cures",
        "all patients",
    ]
    assert absolute_wording("It is not a cure-all; the benefits are real.") == []
