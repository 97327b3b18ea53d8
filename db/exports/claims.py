"""Exports: claim reports (JSONL, CSV, Markdown), assessments, the audit trail, ClaimReview JSON-LD."""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, TextIO

from sqlalchemy import select
from sqlmodel import Session

from db.errors import InvalidInputError
from db.models import Assessment, Claim, SourceDocument, User
from db.review.agreement import claim_agreement
from db.review.audit import audit_events
from db.review.claims import list_claims
from db.review.pairs import claim_evidence
from db.review.signoff import signoff_state
from db.review.verdicts import sensitivity
from db.vocab import ClaimStatus, ClaimVerdict, SignOffDecision, Strength, StudyDesign, StudyVerdict


class ExportFormat(StrEnum):
    JSONL = "jsonl"
    CSV = "csv"
    MARKDOWN = "markdown"


def parse_format(value: str, allowed: tuple[ExportFormat, ...], what: str) -> ExportFormat:
    try:
        chosen = ExportFormat(value.strip().lower())
    except ValueError:
        chosen = None
    if chosen not in allowed:
        names = "|".join(f.value for f in allowed)
        raise InvalidInputError(f"Cannot export {what} as {value!r}; use --format {names}.")
    return chosen


# --- claim reports ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimReport:
    key: str
    statement: str
    sentence: str
    document: str
    status: str
    time_frame: str | None
    verdict: str
    strength: str
    reasoning: str
    counts_by_verdict: dict[str, int]
    counts_by_design: dict[str, int]
    excluded: list[dict[str, Any]]
    unresolved: list[int]
    high_certainty_verdict: str
    all_designs_verdict: str
    rests_on_weak_studies: bool
    agreement_items: int
    percent_agreement: float | None
    kappa: float | None
    fleiss_kappa: float | None
    signoff: str | None  # the latest decision, None when never signed off
    signed_off_by: str | None
    signed_off_at: str | None
    evidence_changed_since_signoff: bool
    evidence_changes: list[str]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def claim_report(session: Session, claim: Claim) -> ClaimReport:
    """Everything an editor reads about one claim, as plain data."""
    evidence = claim_evidence(session, claim)
    views = sensitivity(evidence)
    result = views.graded
    by_verdict = {v.value: 0 for v in StudyVerdict}
    for verdict, n in result.counts_by_verdict().items():
        by_verdict[verdict.value] = n
    by_verdict[StudyVerdict.NOT_RELEVANT.value] = result.not_relevant
    by_verdict["unresolved"] = len(result.unresolved)
    by_design = {
        d.value: n
        for d, n in sorted(result.counts_by_design().items(), key=lambda kv: list(StudyDesign).index(kv[0]))
    }
    agreement = claim_agreement(session, claim)
    state = signoff_state(session, claim)
    document = session.get(SourceDocument, claim.document_id)
    return ClaimReport(
        key=claim.key,
        statement=claim.statement,
        sentence=claim.sentence,
        document=document.slug if document else "",
        status=ClaimStatus(claim.status).value,
        time_frame=claim.time_frame,
        verdict=result.verdict.value,
        strength=result.strength.value,
        reasoning=result.reasoning,
        counts_by_verdict=by_verdict,
        counts_by_design=by_design,
        excluded=[{"pmid": e.pmid, "reason": e.reason} for e in result.excluded],
        unresolved=list(result.unresolved),
        high_certainty_verdict=views.high_certainty.verdict.value,
        all_designs_verdict=views.all_designs.verdict.value,
        rests_on_weak_studies=views.rests_on_weak_studies,
        agreement_items=agreement.items,
        percent_agreement=_round(agreement.percent),
        kappa=_round(agreement.kappa),
        fleiss_kappa=_round(agreement.fleiss),
        signoff=SignOffDecision(state.signoff.decision).value if state.signoff else None,
        signed_off_by=state.signed_by,
        signed_off_at=state.signoff.signed_at.isoformat(timespec="seconds") if state.signoff else None,
        evidence_changed_since_signoff=state.evidence_changed,
        evidence_changes=state.changes,
    )


def _round(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None


def claim_reports(session: Session, include_retired: bool = True) -> list[ClaimReport]:
    return [claim_report(session, claim) for claim in list_claims(session, include_retired=include_retired)]


def write_claims(reports: list[ClaimReport], fmt: ExportFormat, out: TextIO) -> None:
    if fmt is ExportFormat.JSONL:
        for report in reports:
            out.write(json.dumps(report.as_dict(), ensure_ascii=False) + "\n")
    elif fmt is ExportFormat.CSV:
        _write_claims_csv(reports, out)
    else:
        out.write(claims_markdown(reports))


def _write_claims_csv(reports: list[ClaimReport], out: TextIO) -> None:
    # Nested fields flatten to one cell each, readable in a spreadsheet ("rct=3; observational=1").
    columns = list(ClaimReport.__dataclass_fields__)
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for report in reports:
        row = report.as_dict()
        row["counts_by_verdict"] = _pairs(row["counts_by_verdict"])
        row["counts_by_design"] = _pairs(row["counts_by_design"])
        row["excluded"] = "; ".join(f"{e['pmid']} ({e['reason']})" for e in row["excluded"])
        row["unresolved"] = "; ".join(map(str, row["unresolved"]))
        row["evidence_changes"] = "; ".join(row["evidence_changes"])
        writer.writerow(row)


def _pairs(values: dict[str, int]) -> str:
    return "; ".join(f"{name}={n}" for name, n in values.items() if n)


def claims_markdown(reports: list[ClaimReport]) -> str:
    lines = [
        "# Claim verdicts",
        "",
        "| claim | verdict | strength | studies | kappa | sign-off |",
        "|---|---|---|---|---|---|",
    ]
    for r in reports:
        studies = sum(n for name, n in r.counts_by_verdict.items() if name != StudyVerdict.NOT_RELEVANT.value)
        kappa = f"{r.kappa:.2f}" if r.kappa is not None else "n/a"
        signoff = SignOffDecision(r.signoff).label if r.signoff else "not signed off"
        if r.evidence_changed_since_signoff:
            signoff += " (evidence changed since)"
        lines.append(
            f"| {r.key} | {ClaimVerdict(r.verdict).label} | {Strength(r.strength).label} | {studies} | {kappa} | {signoff} |"
        )
    for r in reports:
        lines += ["", f"## {r.key}", "", f"> {r.sentence}", "", f"**Claim:** {r.statement}", ""]
        if r.status != ClaimStatus.ACTIVE.value:
            lines += [f"*Status: {r.status}.*", ""]
        lines += [
            f"**Verdict:** {ClaimVerdict(r.verdict).label} ({Strength(r.strength).label} strength)",
            "",
            r.reasoning,
            "",
        ]
        lines.append(
            f"Sensitivity: high-certainty designs only: {ClaimVerdict(r.high_certainty_verdict).label}; "
            f"all designs alike: {ClaimVerdict(r.all_designs_verdict).label}"
            + (" (the verdict rests on weaker studies)." if r.rests_on_weak_studies else ".")
        )
        if r.excluded:
            lines += ["", "Excluded: " + "; ".join(f"PMID {e['pmid']} ({e['reason']})" for e in r.excluded)]
        if r.evidence_changes:
            lines += ["", "Evidence changed since sign-off: " + "; ".join(r.evidence_changes)]
    return "\n".join(lines) + "\n"


# --- assessments and audit -------------------------------------------------------------------------

# The import columns first, so an exported CSV can be edited and imported again.
ASSESSMENT_COLUMNS = (
    "reviewer",
    "claim_key",
    "pmid",
    "verdict",
    "quote",
    "note",
    "design",
    "suggested_design",
    "version",
    "id",
    "created_at",
    "updated_at",
)


def assessment_rows(session: Session) -> list[dict[str, Any]]:
    names = {user.id: user.name for user in session.scalars(select(User))}
    keys = {claim.id: claim.key for claim in session.scalars(select(Claim))}
    query = select(Assessment).order_by(Assessment.claim_id, Assessment.pmid, Assessment.id)
    return [
        {
            "reviewer": names[a.reviewer_id],
            "claim_key": keys[a.claim_id],
            "pmid": a.pmid,
            "verdict": StudyVerdict(a.verdict).value,
            "quote": a.quote,
            "note": a.note,
            "design": StudyDesign(a.design).value,
            "suggested_design": StudyDesign(a.suggested_design).value,
            "version": a.version,
            "id": a.id,
            "created_at": _iso(a.created_at),
            "updated_at": _iso(a.updated_at),
        }
        for a in session.scalars(query)
    ]


def write_assessments(session: Session, fmt: ExportFormat, out: TextIO) -> int:
    rows = assessment_rows(session)
    _write_rows(rows, ASSESSMENT_COLUMNS, fmt, out)
    return len(rows)


AUDIT_COLUMNS = (
    "id",
    "at",
    "actor",
    "action",
    "entity",
    "entity_id",
    "claim_id",
    "pmid",
    "before",
    "after",
    "reason",
    "source",
)


def write_audit(session: Session, fmt: ExportFormat, out: TextIO, since: datetime | None = None) -> int:
    rows = [
        {
            "id": e.id,
            "at": _iso(e.at),
            "actor": e.actor_name,
            "action": str(e.action),
            "entity": e.entity,
            "entity_id": e.entity_id,
            "claim_id": e.claim_id,
            "pmid": e.pmid,
            "before": e.before,
            "after": e.after,
            "reason": e.reason,
            "source": e.source,
        }
        for e in audit_events(session, since)
    ]
    if fmt is ExportFormat.CSV:
        rows = [dict(row, before=_json_cell(row["before"]), after=_json_cell(row["after"])) for row in rows]
    _write_rows(rows, AUDIT_COLUMNS, fmt, out)
    return len(rows)


def _json_cell(value: Any) -> str:
    return "" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def _write_rows(rows: list[dict[str, Any]], columns: tuple[str, ...], fmt: ExportFormat, out: TextIO) -> None:
    if fmt is ExportFormat.CSV:
        writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    else:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value is not None else None


# --- schema.org ClaimReview ------------------------------------------------------------------------

# Our verdicts on a 1..4 scale, best first; alternateName carries the words, as fact-check readers
# show them. "Insufficient evidence" sits above "unsupported": no study contradicts the claim.
RATINGS: dict[ClaimVerdict, tuple[int, str]] = {
    ClaimVerdict.SUPPORTED: (4, "Supported by the evidence"),
    ClaimVerdict.MIXED: (3, "Mixed evidence"),
    ClaimVerdict.INSUFFICIENT_EVIDENCE: (2, "Insufficient evidence"),
    ClaimVerdict.UNSUPPORTED: (1, "Not supported by the evidence"),
}


@dataclass(frozen=True)
class ClaimReviewExport:
    document: dict[str, Any]  # the JSON-LD document
    skipped: list[str]  # keys of signed-off claims left out because their evidence changed since


def claimreview_jsonld(
    session: Session, publisher: str, publisher_url: str | None = None
) -> ClaimReviewExport:
    """schema.org ClaimReview for every signed-off claim whose sign-off still matches the evidence.

    The rating is the verdict the editor signed off (kept with the sign-off), not today's.
    """
    reviews, skipped = [], []
    author: dict[str, Any] = {"@type": "Organization", "name": publisher}
    if publisher_url:
        author["url"] = publisher_url
    for claim in list_claims(session, include_retired=True):
        state = signoff_state(session, claim)
        if state.signoff is None:
            continue
        if state.evidence_changed:
            skipped.append(claim.key)
            continue
        document = session.get(SourceDocument, claim.document_id)
        assert document is not None
        value, name = RATINGS[ClaimVerdict(state.signoff.verdict)]
        appearance: dict[str, Any] = {"@type": "CreativeWork", "name": document.title}
        if document.url:
            appearance["url"] = document.url
        if document.author or document.outlet:
            appearance["author"] = {
                "@type": "Person" if document.author else "Organization",
                "name": document.author or document.outlet,
            }
        review: dict[str, Any] = {
            "@type": "ClaimReview",
            "claimReviewed": claim.statement,
            "itemReviewed": {"@type": "Claim", "appearance": appearance, "text": claim.sentence},
            "reviewRating": {
                "@type": "Rating",
                "ratingValue": value,
                "bestRating": 4,
                "worstRating": 1,
                "alternateName": name,
            },
            "author": author,
            "datePublished": state.signoff.signed_at.date().isoformat(),
            "reviewBody": state.signoff.rationale,
            "identifier": claim.key,
        }
        if document.url:
            review["url"] = f"{document.url}#claim-{claim.key}"
        reviews.append(review)
    return ClaimReviewExport({"@context": "https://schema.org", "@graph": reviews}, skipped)


def write_claimreview(export: ClaimReviewExport, out: TextIO) -> None:
    json.dump(export.document, out, ensure_ascii=False, indent=2)
    out.write("\n")
