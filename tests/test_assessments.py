"""Assessments: quotes, design prefill and corrections, optimistic versioning, all-or-nothing import."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from db.corpus.design import parse_design, suggest_design
from db.engine import engine_for
from db.errors import ConflictError, ImportRejected, InvalidInputError, NotFoundError, PermissionDenied
from db.models import Assessment, User
from db.review.assessment_import import AssessmentRow, import_assessments
from db.review.assessments import (
    correct_design,
    design_corrections,
    effective_design,
    quote_in_article,
    record_assessment,
    update_assessment,
)
from db.review.roles import get_user
from db.vocab import Role, StudyDesign, StudyVerdict
from tests.conftest import shared_file
from tests.review_builders import add_article, add_claim, add_user, team, vote

ABSTRACT = "RESULTS: Ketamine reduced depressive\n  symptoms within 24 hours compared with placebo."


def test_quote_must_come_from_title_or_abstract_whitespace_aside(session: Session) -> None:
    article = add_article(session, 1, abstract=ABSTRACT)

    assert quote_in_article(article, "reduced depressive symptoms within 24 hours")
    assert quote_in_article(article, "Ketamine for depression")  # from the title
    assert quote_in_article(article, "compared with\tplacebo.")
    assert not quote_in_article(article, "reduced anxiety")
    assert not quote_in_article(article, "   ")


def test_recording_checks_quote_article_and_duplicates(session: Session) -> None:
    people = team(session)
    claim = add_claim(session)
    add_article(session, 1, abstract=ABSTRACT)

    with pytest.raises(
        InvalidInputError, match="'cures depression' is not in the title or abstract of PMID 1"
    ):
        record_assessment(session, people["reviewer"], claim, 1, "supported", quote="cures depression")
    with pytest.raises(InvalidInputError, match="needs a quote"):
        record_assessment(session, people["reviewer"], claim, 1, "supported")
    with pytest.raises(NotFoundError, match="No article with PMID 42"):
        record_assessment(session, people["reviewer"], claim, 42, "supported", quote="x")
    with pytest.raises(InvalidInputError, match="Unknown verdict 'true'"):
        record_assessment(session, people["reviewer"], claim, 1, "true", quote="placebo")
    screened = record_assessment(session, people["reviewer"], claim, 1, "not relevant")
    assert screened.verdict is StudyVerdict.NOT_RELEVANT and screened.version == 1
    with pytest.raises(ConflictError, match="rita has already judged PMID 1"):
        record_assessment(session, people["reviewer"], claim, 1, "mixed", quote="placebo")


def test_design_is_prefilled_from_publication_types() -> None:
    assert (
        suggest_design(["Journal Article", "Systematic Review", "Meta-Analysis"]) is StudyDesign.META_ANALYSIS
    )
    assert suggest_design(["Review", "Systematic Review"]) is StudyDesign.SYSTEMATIC_REVIEW
    assert suggest_design(["Randomized Controlled Trial", "Comparative Study"]) is StudyDesign.RCT
    assert suggest_design(["Clinical Trial, Phase II"]) is StudyDesign.CONTROLLED_TRIAL
    assert suggest_design(["Journal Article"], ["Humans", "Cohort Studies"]) is StudyDesign.OBSERVATIONAL
    assert suggest_design(["Observational Study"]) is StudyDesign.OBSERVATIONAL
    assert suggest_design(["Case Reports"]) is StudyDesign.CASE_REPORT
    assert suggest_design(["Review"]) is StudyDesign.REVIEW
    assert suggest_design(["Journal Article"], ["Animals", "Rats"]) is StudyDesign.PRECLINICAL
    assert suggest_design(["Meta-Analysis"], ["Animals"]) is StudyDesign.PRECLINICAL
    assert suggest_design(["Journal Article"], ["Animals", "Humans"]) is StudyDesign.OTHER
    assert suggest_design(["Randomized Controlled Trial, Veterinary"]) is StudyDesign.PRECLINICAL
    assert suggest_design(["Letter"]) is StudyDesign.OTHER


def test_design_prefill_on_recorded_pubmed_records() -> None:
    path = shared_file("pubmed", "ketamine", "records.jsonl")
    records = {r["pmid"]: r for r in map(json.loads, path.read_text(encoding="utf-8").splitlines())}

    def design(pmid: str) -> StudyDesign:
        return suggest_design(records[pmid]["publication_types"], records[pmid]["mesh_terms"])

    assert design("39915701") is StudyDesign.META_ANALYSIS
    assert design("39915491") is StudyDesign.SYSTEMATIC_REVIEW
    assert design("40015180") is StudyDesign.RCT
    assert design("39955416") is StudyDesign.CONTROLLED_TRIAL
    assert design("40293802") is StudyDesign.CASE_REPORT
    assert design("40274121") is StudyDesign.REVIEW
    assert design("40081264") is StudyDesign.PRECLINICAL  # MeSH Animals, no Humans
    assert design("40311814") is StudyDesign.OTHER  # only "Journal Article": the reviewer decides


def test_parse_design_accepts_values_and_common_names() -> None:
    assert parse_design("rct") is StudyDesign.RCT
    assert parse_design("Meta-Analysis") is StudyDesign.META_ANALYSIS
    assert parse_design("case series") is StudyDesign.CASE_REPORT
    assert parse_design("Cohort") is StudyDesign.OBSERVATIONAL
    with pytest.raises(ValueError, match="unknown design 'anecdote'"):
        parse_design("anecdote")


def test_design_correction_is_kept_with_its_author(session: Session) -> None:
    people = team(session)
    claim = add_claim(session)
    article = add_article(session, 1, publication_types=["Journal Article"])

    assessment = vote(session, people["reviewer"], claim, 1, design=StudyDesign.OBSERVATIONAL)
    correct_design(session, people["reviewer2"], 1, StudyDesign.CONTROLLED_TRIAL, "Non-randomised arms.")

    assert assessment.suggested_design is StudyDesign(article.design)  # the stored prefill
    assert assessment.design is StudyDesign.OBSERVATIONAL
    assert effective_design(session, article) is StudyDesign.CONTROLLED_TRIAL
    corrections = design_corrections(session, 1)
    assert [(c.previous, c.design, c.corrected_by_id) for c in corrections] == [
        (StudyDesign(article.design), StudyDesign.OBSERVATIONAL, people["reviewer"].id),
        (StudyDesign.OBSERVATIONAL, StudyDesign.CONTROLLED_TRIAL, people["reviewer2"].id),
    ]
    # Confirming the current design is no correction.
    assert correct_design(session, people["reviewer"], 1, StudyDesign.CONTROLLED_TRIAL) is None


def test_stale_update_raises_a_conflict_not_an_overwrite(session: Session) -> None:
    people = team(session)
    claim = add_claim(session)
    add_article(session, 1, abstract=ABSTRACT)
    assessment = vote(session, people["reviewer"], claim, 1, quote="placebo")
    assert assessment.id is not None

    update_assessment(session, people["reviewer"], assessment.id, 1, verdict="mixed", note="Small sample.")
    with pytest.raises(
        ConflictError, match=r"changed by rita .* \(you had version 1, it is now version 2\); reload"
    ):
        update_assessment(session, people["reviewer"], assessment.id, 1, verdict="unsupported")

    assert assessment.verdict is StudyVerdict.MIXED and assessment.version == 2


def test_two_sessions_saving_at_once_cannot_both_win(db_url: str) -> None:
    engine = engine_for(db_url)
    with Session(engine) as setup:
        reviewer = add_user(setup, "rita", Role.REVIEWER)
        claim = add_claim(setup)
        add_article(setup, 1, abstract=ABSTRACT)
        assessment = vote(setup, reviewer, claim, 1, quote="placebo")
        setup.commit()
        assessment_id = assessment.id
    assert assessment_id is not None

    # Both windows read version 1; the first save wins, the second is told, nothing is lost.
    with Session(engine) as first, Session(engine) as second:
        first_user, second_user = get_user(first, "rita"), get_user(second, "rita")
        update_assessment(first, first_user, assessment_id, 1, verdict="mixed")
        first.commit()
        with pytest.raises(ConflictError, match="version 2"):
            update_assessment(second, second_user, assessment_id, 1, verdict="unsupported")
        second.rollback()

    with Session(engine) as check:
        stored = check.get(Assessment, assessment_id)
        assert stored is not None and stored.verdict is StudyVerdict.MIXED and stored.version == 2


def test_reviewers_change_only_their_own_assessments(session: Session) -> None:
    people = team(session)
    claim = add_claim(session)
    add_article(session, 1)
    theirs = vote(session, people["reviewer"], claim, 1)
    assert theirs.id is not None

    with pytest.raises(PermissionDenied, match="is rita's; reviewers change only their own"):
        update_assessment(session, people["reviewer2"], theirs.id, 1, verdict="mixed")
    with pytest.raises(PermissionDenied, match="is rita's"):
        update_assessment(session, people["editor"], theirs.id, 1, verdict="mixed")


# --- import ----------------------------------------------------------------------------------------


def _row(line: int, **values: str) -> AssessmentRow:
    base = {
        "reviewer": "rita",
        "claim_key": "fast-relief",
        "pmid": "1",
        "verdict": "supported",
        "quote": "placebo",
    }
    return AssessmentRow(line=line, **(base | values))


def test_import_reports_every_bad_row_and_writes_nothing(session: Session) -> None:
    people = team(session)
    add_claim(session)
    add_article(session, 1, abstract=ABSTRACT)
    rows = [
        _row(2),
        _row(3, claim_key="no-such-claim"),
        _row(4, pmid="999"),
        _row(5, reviewer="rob", verdict="probably"),
        _row(6, reviewer="eve", quote="ketamine cures everything"),
        _row(7, reviewer="zoe"),
        _row(8, pmid="12a"),
        _row(9, reviewer="ada", design="anecdote"),
        _row(10),
    ]

    with pytest.raises(ImportRejected) as caught:
        import_assessments(session, people["editor"], rows, source="team.csv")

    problems = dict(caught.value.problems)
    assert sorted(problems) == [3, 4, 5, 6, 7, 8, 9, 10]
    assert "unknown claim 'no-such-claim'" in problems[3]
    assert "unknown PMID 999" in problems[4]
    assert "bad verdict: Unknown verdict 'probably'" in problems[5]
    assert "quote not in the abstract" in problems[6]
    assert "unknown reviewer 'zoe'" in problems[7]
    assert "PMID '12a' is not a number" in problems[8]
    assert "unknown design 'anecdote'" in problems[9]
    assert "same reviewer, claim and PMID as line 2" in problems[10]
    assert str(caught.value).startswith("team.csv: 8 bad row(s), nothing was imported")
    assert session.scalar(select(func.count()).select_from(Assessment)) == 0


def test_import_creates_updates_and_leaves_unchanged(session: Session) -> None:
    people = team(session)
    add_claim(session)
    add_article(session, 1, abstract=ABSTRACT)
    add_article(session, 2, abstract=ABSTRACT)

    first = import_assessments(session, people["editor"], [_row(2), _row(3, pmid="2", reviewer="rob")])
    second = import_assessments(
        session, people["editor"], [_row(2), _row(3, pmid="2", reviewer="rob", verdict="mixed")]
    )

    assert (first.created, first.updated, first.unchanged) == (2, 0, 0)
    assert (second.created, second.updated, second.unchanged) == (0, 1, 1)
    changed = session.scalars(select(Assessment).where(Assessment.pmid == 2)).one()
    assert changed.verdict is StudyVerdict.MIXED and changed.version == 2


def test_import_of_unknown_reviewers_needs_an_admin_and_the_flag(session: Session) -> None:
    people = team(session)
    add_claim(session)
    add_article(session, 1, abstract=ABSTRACT)

    with pytest.raises(ImportRejected, match="only an admin may create reviewers"):
        import_assessments(session, people["editor"], [_row(2, reviewer="zoe")], create_reviewers=True)
    outcome = import_assessments(session, people["admin"], [_row(2, reviewer="zoe")], create_reviewers=True)

    assert outcome.reviewers_created == ["zoe"]
    assert session.scalars(select(User).where(User.name == "zoe")).one().role is Role.REVIEWER


def test_a_reviewer_imports_only_their_own_rows(session: Session) -> None:
    people = team(session)
    add_claim(session)
    add_article(session, 1, abstract=ABSTRACT)

    with pytest.raises(ImportRejected, match="reviewers import only their own rows"):
        import_assessments(session, people["reviewer"], [_row(2, reviewer="rob")])
    assert import_assessments(session, people["reviewer"], [_row(2)]).created == 1
    with pytest.raises(PermissionDenied, match="recording assessments needs the role reviewer"):
        import_assessments(session, people["viewer"], [_row(2, reviewer="vic")])
