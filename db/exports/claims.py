"""Claim reports: everything an editor reads about each claim, as JSON lines, CSV or Markdown."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, TextIO

from sqlmodel import Session

from db.errors import PermissionDenied
from db.exports.formats import ExportFormat, SafeCsvWriter
from db.models import Claim, SourceDocument, User
from db.review.agreement import claim_agreement
from db.review.claims import list_claims
from db.review.pairs import claim_evidence, is_blinded
from db.review.roles import Action, require
from db.review.signoff import signoff_state
from db.review.verdicts import sensitivity
from db.vocab import ClaimStatus, ClaimVerdict, SignOffDecision, Strength, StudyDesign, StudyVerdict


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
    # {kappa, relevance_kappa, verdict_kappa}: kappa as above; relevant-or-not over every study both
    # reviewers judged; the verdict over the studies both found relevant.
    agreement: dict[str, float | None]
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
        agreement={
            "kappa": _round(agreement.kappa),
            "relevance_kappa": _round(agreement.relevance_kappa),
            "verdict_kappa": _round(agreement.verdict_kappa),
        },
        signoff=SignOffDecision(state.signoff.decision).value if state.signoff else None,
        signed_off_by=state.signed_by,
        signed_off_at=state.signoff.signed_at.isoformat(timespec="seconds") if state.signoff else None,
        evidence_changed_since_signoff=state.evidence_changed,
        evidence_changes=state.changes,
    )


def _round(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None


def claim_reports(
    session: Session, include_retired: bool = True, *, viewer: User | None = None
) -> list[ClaimReport]:
    """Every claim's report; for a `viewer` in blind mode (a reviewer) refused, since a report
    counts every reviewer's votes. Without a viewer: the editors' and the benchmarks' whole view."""
    claims = list_claims(session, include_retired=include_retired)
    if viewer is not None:
        require(viewer, Action.READ)
        blinded = [claim.key for claim in claims if is_blinded(session, viewer, claim)]
        if blinded:
            raise PermissionDenied(
                f"Blind mode is on for claim(s) {', '.join(blinded[:3])}{'...' if len(blinded) > 3 else ''}: "
                "a claim report counts every reviewer's votes; ask an editor for it, or wait until blind "
                "mode is turned off."
            )
    return [claim_report(session, claim) for claim in claims]


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
    writer = SafeCsvWriter(out, columns)
    writer.writeheader()
    for report in reports:
        row = report.as_dict()
        row["counts_by_verdict"] = _pairs(row["counts_by_verdict"])
        row["counts_by_design"] = _pairs(row["counts_by_design"])
        row["excluded"] = "; ".join(f"{e['pmid']} ({e['reason']})" for e in row["excluded"])
        row["unresolved"] = "; ".join(map(str, row["unresolved"]))
        row["evidence_changes"] = "; ".join(row["evidence_changes"])
        row["agreement"] = "; ".join(f"{name}={value}" for name, value in row["agreement"].items())
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
