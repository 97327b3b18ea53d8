"""An assessment's evidence fields: recorded, changed as a new version, audited, imported and exported."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlmodel import Session, col

from db.engine import engine_for
from db.errors import ConflictError, ImportRejected, InvalidInputError
from db.exports.assessments import ASSESSMENT_COLUMNS, write_assessments
from db.exports.formats import ExportFormat
from db.models import Assessment, AuditEvent
from db.review.assessment_import import AssessmentRow, import_assessments
from db.review.assessments import record_assessment, update_assessment
from db.review.evidence_fields import EVIDENCE_FIELDS, checked_evidence
from db.vocab import AuditAction, Directness, Population, RiskOfBias, StudyVerdict
from ingest.assessment_csv import read_assessment_csv
from ingest.cli import main
from tests.review_builders import add_article, add_claim, team

ABSTRACT = (
    "RESULTS: In 40 patients, ketamine reduced depressive symptoms within 24 hours compared with placebo."
)
EVIDENCE = {
    "participants": "40",
    "follow_up": "24 hours",
    "effect": "-8.1 MADRS points",
    "population": "trd",
    "intervention": "iv_racemic",
    "directness": "direct",
    "risk_of_bias": "some concerns",
}


def _changes(session: Session, assessment: Assessment) -> list[AuditEvent]:
    query = (
        select(AuditEvent)
        .where(
            col(AuditEvent.entity) == "assessment",
            col(AuditEvent.entity_id) == str(assessment.id),
            col(AuditEvent.action) == AuditAction.ASSESSMENT_CHANGED,
        )
        .order_by(col(AuditEvent.id))
    )
    return list(session.scalars(query))


def test_recording_stores_checked_evidence_and_audits_it(session: Session) -> None:
    people = team(session)
    claim = add_claim(session)
    add_article(session, 1, abstract=ABSTRACT)

    assessment = record_assessment(
        session, people["reviewer"], claim, 1, "supported", quote="placebo", evidence=EVIDENCE
    )

    stored = session.get(Assessment, assessment.id)
    assert stored is not None
    assert (stored.participants, stored.follow_up, stored.follow_up_days) == (40, "24 hours", 1.0)
    assert stored.population is Population.TRD and stored.risk_of_bias is RiskOfBias.SOME_CONCERNS
    recorded = session.scalars(
        select(AuditEvent).where(col(AuditEvent.action) == AuditAction.ASSESSMENT_RECORDED)
    ).one()
    assert recorded.after is not None
    assert recorded.after["participants"] == 40 and recorded.after["population"] == "trd"
    assert "indirect_reason" not in recorded.after  # only the fields stated


def test_bad_evidence_is_refused_before_anything_is_written(session: Session) -> None:
    people = team(session)
    claim = add_claim(session)
    add_article(session, 1, abstract=ABSTRACT)

    with pytest.raises(InvalidInputError, match="participants 'many' is not a whole number"):
        record_assessment(
            session,
            people["reviewer"],
            claim,
            1,
            "supported",
            quote="placebo",
            evidence={"participants": "many"},
        )
    assert session.scalar(select(func.count()).select_from(Assessment)) == 0


def test_changing_evidence_alone_is_a_new_audited_version(session: Session) -> None:
    people = team(session)
    claim = add_claim(session)
    add_article(session, 1, abstract=ABSTRACT)
    assessment = record_assessment(
        session, people["reviewer"], claim, 1, "supported", quote="placebo", evidence=EVIDENCE
    )
    assert assessment.id is not None

    same = update_assessment(session, people["reviewer"], assessment.id, 1, evidence=EVIDENCE)
    assert same.version == 1 and _changes(session, assessment) == []  # unchanged: no version, no event
    kept = update_assessment(session, people["reviewer"], assessment.id, 1, note="Small.")
    assert kept.version == 2 and kept.participants == 40  # evidence=None keeps the fields

    indirect = EVIDENCE | {
        "directness": "indirect",
        "indirect_reason": "outcome at 24 hours only",
        "participants": "",
    }
    changed = update_assessment(session, people["reviewer"], assessment.id, 2, evidence=indirect)

    assert changed.version == 3 and changed.directness is Directness.INDIRECT and changed.participants is None
    event = _changes(session, assessment)[-1]
    assert event.before == {"directness": "direct", "indirect_reason": None, "participants": 40, "version": 2}
    assert event.after == {
        "directness": "indirect",
        "indirect_reason": "outcome at 24 hours only",
        "participants": None,
        "version": 3,
    }
    assert event.claim_id == claim.id and event.pmid == 1  # the summary patches this claim's pair


def test_a_stale_evidence_change_is_a_conflict(session: Session) -> None:
    people = team(session)
    claim = add_claim(session)
    add_article(session, 1, abstract=ABSTRACT)
    assessment = record_assessment(session, people["reviewer"], claim, 1, "supported", quote="placebo")
    assert assessment.id is not None
    update_assessment(session, people["reviewer"], assessment.id, 1, evidence={"participants": "12"})

    with pytest.raises(ConflictError, match=r"you had version 1, it is now version 2"):
        update_assessment(session, people["reviewer"], assessment.id, 1, evidence={"participants": "13"})
    assert assessment.participants == 12 and assessment.version == 2


# --- import and export -----------------------------------------------------------------------------


def _row(line: int, evidence: dict[str, str] | None = None, **values: str) -> AssessmentRow:
    base = {
        "reviewer": "rita",
        "claim_key": "fast-relief",
        "pmid": "1",
        "verdict": "supported",
        "quote": "placebo",
    }
    return AssessmentRow(line=line, **(base | values), evidence=evidence)


def test_import_rejects_bad_evidence_with_its_line_and_writes_nothing(session: Session) -> None:
    people = team(session)
    add_claim(session)
    add_article(session, 1, abstract=ABSTRACT)
    add_article(session, 2, abstract=ABSTRACT)
    rows = [
        _row(2, EVIDENCE),
        _row(3, {"population": "teenagers"}, pmid="2"),
        _row(4, {"directness": "indirect"}, reviewer="rob"),
        _row(5, {"follow_up": "until better"}, reviewer="rob", pmid="2"),
    ]

    with pytest.raises(ImportRejected) as caught:
        import_assessments(session, people["editor"], rows, source="team.csv")

    problems = dict(caught.value.problems)
    assert sorted(problems) == [3, 4, 5]
    assert "bad evidence: population 'teenagers' is not one of mdd, trd" in problems[3]
    assert "bad evidence: an indirect study needs indirect_reason" in problems[4]
    assert "bad evidence: follow_up 'until better' names no duration" in problems[5]
    assert session.scalar(select(func.count()).select_from(Assessment)) == 0


def test_import_without_an_evidence_column_keeps_that_field(session: Session) -> None:
    people = team(session)
    add_claim(session)
    add_article(session, 1, abstract=ABSTRACT)
    import_assessments(session, people["editor"], [_row(2, EVIDENCE)])

    unchanged = import_assessments(session, people["editor"], [_row(2)])  # an older file: no evidence columns
    partial = import_assessments(session, people["editor"], [_row(2, {"participants": "41"})])

    assert (unchanged.unchanged, partial.updated) == (1, 1)
    stored = session.scalars(select(Assessment)).one()
    assert (stored.participants, stored.follow_up, stored.population) == (41, "24 hours", Population.TRD)


def test_exported_csv_imports_back_unchanged(session: Session, tmp_path: Path) -> None:
    people = team(session)
    claim = add_claim(session)
    add_article(session, 1, abstract=ABSTRACT)
    add_article(session, 2, abstract=ABSTRACT)
    record_assessment(session, people["reviewer"], claim, 1, "supported", quote="placebo", evidence=EVIDENCE)
    record_assessment(session, people["reviewer2"], claim, 2, StudyVerdict.NOT_RELEVANT)
    out = io.StringIO()
    write_assessments(session, ExportFormat.CSV, out, viewer=people["editor"])
    path = tmp_path / "assessments.csv"
    path.write_text(out.getvalue(), encoding="utf-8")

    header = next(csv.reader(io.StringIO(out.getvalue())))
    assert header == list(ASSESSMENT_COLUMNS) and set(EVIDENCE_FIELDS) <= set(header)
    assert "'-8.1 MADRS points" in out.getvalue()  # kept from running as a spreadsheet formula
    rows = read_assessment_csv(path)
    assert rows[0].evidence is not None and rows[0].evidence["effect"] == "-8.1 MADRS points"
    outcome = import_assessments(session, people["editor"], rows)

    assert (outcome.created, outcome.updated, outcome.unchanged) == (0, 0, 2)
    stored = session.scalars(select(Assessment).where(col(Assessment.pmid) == 1)).one()
    assert checked_evidence(EVIDENCE).as_values() == {
        name: getattr(stored, name) for name in checked_evidence(EVIDENCE).as_values()
    }


def test_cli_export_then_import_round_trips_and_names_bad_lines(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Session(engine_for(sqlite_url)) as session:
        people = team(session)
        claim = add_claim(session)
        add_article(session, 1, abstract=ABSTRACT)
        record_assessment(
            session, people["reviewer"], claim, 1, "supported", quote="placebo", evidence=EVIDENCE
        )
        session.commit()
    exported = tmp_path / "assessments.csv"

    assert main(["export", "assessments", "--format", "csv", "-o", str(exported), "--as", "eve"]) == 0
    assert main(["import-assessments", str(exported), "--as", "eve"]) == 0
    assert "0 new, 0 changed, 1 unchanged" in capsys.readouterr().out

    lines = exported.read_text(encoding="utf-8").splitlines()
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join([lines[0], lines[1].replace(",trd,", ",teenagers,")]) + "\n", encoding="utf-8")
    assert main(["import-assessments", str(bad), "--as", "eve"]) == 1
    assert "line 2: bad evidence: population 'teenagers' is not one of" in capsys.readouterr().err
    with Session(engine_for(sqlite_url)) as session:
        assert session.scalars(select(Assessment)).one().population is Population.TRD
