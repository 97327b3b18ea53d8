"""Claim reports: everything an editor reads about each claim, as JSON lines, CSV or Markdown."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any, TextIO

from sqlmodel import Session

from db.errors import PermissionDenied
from db.exports.formats import ExportFormat, SafeCsvWriter, markdown_text
from db.models import Claim, SourceDocument, User
from db.read.evidence_profile import evidence_profile
from db.read.standing import ClaimStanding, pair_tallies
from db.review.agreement import claim_agreement
from db.review.claims import list_claims
from db.review.pairs import is_blinded
from db.review.roles import Action, require
from db.review.signoff import signoff_state
from db.review.verdicts import ClaimScope, days_text
from db.vocab import (
    ClaimStatus,
    ClaimVerdict,
    Rating,
    SignOffDecision,
    Strength,
    StudyDesign,
    StudyVerdict,
)


@dataclass(frozen=True)
class ClaimReport:
    key: str
    statement: str
    sentence: str
    document: str
    status: str
    time_frame: str | None
    verdict: str  # supported, mixed, unsupported, insufficient_evidence
    certainty: str  # high, moderate, low, very_low
    strength: str  # the certainty, under its earlier name
    downgrades: list[dict[str, str]]  # [{domain, reason}]
    participants: int  # stated participants of the deciding studies
    follow_up_days: list[float] | None  # [shortest, longest] of the deciding studies
    reasoning: str
    provisional: bool  # no current sign-off: the verdict may still change
    open_conflicts: int
    awaiting_second_vote: int
    rating: str | None  # the editor's published rating (db.vocab.Rating), when signed off with one
    rating_rationale: str | None
    studies: list[dict[str, Any]]  # every included study (db.read.evidence_profile.IncludedStudy)
    left_out: list[dict[str, Any]]  # relevant studies the verdict leaves out, with the reason
    screened_out: list[dict[str, Any]]  # studies judged not relevant (up to 200), with a reviewer's note
    absolute_words: list[str]  # words of the claim no study can back ("undeniable", "always")
    flow: dict[str, Any]  # PRISMA 2020-style: identified, screened, relevant, included, excluded
    search: dict[str, Any]  # the queries, the last harvest's date, the files imported
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
        # Shallow: every field is already plain data built for this report (no deep copy of the studies).
        return {f.name: getattr(self, f.name) for f in fields(self)}


def claim_report(session: Session, claim: Claim) -> ClaimReport:
    """Everything an editor reads about one claim, as plain data."""
    profile = evidence_profile(session, claim)
    result = profile.result
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
    assert claim.id is not None
    standing = ClaimStanding.of(
        None if state.signoff is None else state.evidence_changed,
        pair_tallies(session, [claim.id]).get(claim.id),
    )
    document = session.get(SourceDocument, claim.document_id)
    signed = state.signoff
    return ClaimReport(
        key=claim.key,
        statement=claim.statement,
        sentence=claim.sentence,
        document=document.slug if document else "",
        status=ClaimStatus(claim.status).value,
        time_frame=claim.time_frame or ClaimScope.of(claim).time_frame(),
        verdict=result.verdict.value,
        certainty=result.strength.value,
        strength=result.strength.value,
        downgrades=[d.as_dict() for d in result.downgrades],
        participants=result.participants,
        follow_up_days=list(result.follow_up_days) if result.follow_up_days else None,
        reasoning=result.reasoning,
        provisional=standing.provisional,
        open_conflicts=standing.open_conflicts,
        awaiting_second_vote=standing.awaiting_second_vote,
        rating=Rating(signed.rating).value if signed is not None and signed.rating else None,
        rating_rationale=signed.rationale if signed is not None else None,
        studies=[study.as_dict() for study in profile.studies],
        left_out=[asdict(item) for item in profile.left_out],
        screened_out=[asdict(item) for item in profile.screened_out],
        absolute_words=list(profile.absolute_words),
        flow=profile.flow.as_dict(),
        search=asdict(profile.provenance),
        counts_by_verdict=by_verdict,
        counts_by_design=by_design,
        excluded=[{"pmid": e.pmid, "reason": e.reason} for e in result.excluded],
        unresolved=list(result.unresolved),
        high_certainty_verdict=profile.high_certainty.verdict.value,
        all_designs_verdict=profile.all_designs.verdict.value,
        rests_on_weak_studies=profile.high_certainty.verdict is not result.verdict,
        agreement_items=agreement.items,
        percent_agreement=_round(agreement.percent),
        kappa=_round(agreement.kappa),
        fleiss_kappa=_round(agreement.fleiss),
        agreement={
            "kappa": _round(agreement.kappa),
            "relevance_kappa": _round(agreement.relevance_kappa),
            "verdict_kappa": _round(agreement.verdict_kappa),
        },
        signoff=SignOffDecision(signed.decision).value if signed else None,
        signed_off_by=state.signed_by,
        signed_off_at=signed.signed_at.isoformat(timespec="seconds") if signed else None,
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
    # One row per claim, its summary of findings; nested fields flatten to one readable cell each
    # ("rct=3; observational=1"; studies as "PMID 123 (RCT, 120, 7 days): supported"). The study
    # table itself is in the Markdown and JSON Lines reports.
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
        row["downgrades"] = "; ".join(f"{d['domain']}: {d['reason']}" for d in row["downgrades"])
        row["follow_up_days"] = _days_range(report.follow_up_days)
        row["studies"] = "; ".join(_study_cell(study) for study in report.studies)
        row["left_out"] = "; ".join(f"{item['pmid']} ({item['reason']})" for item in report.left_out)
        row["screened_out"] = "; ".join(
            f"{item['pmid']}" + (f" ({item['note']})" if item["note"] else "") for item in report.screened_out
        )
        row["absolute_words"] = "; ".join(report.absolute_words)
        row["flow"] = _pairs({k: v for k, v in report.flow.items() if isinstance(v, int)})
        row["search"] = "; ".join(report.search["queries"]) + (
            f" (last harvest {report.search['last_harvest']})" if report.search["last_harvest"] else ""
        )
        writer.writerow(row)


def _pairs(values: dict[str, int]) -> str:
    return "; ".join(f"{name}={n}" for name, n in values.items() if n)


def _study_cell(study: dict[str, Any]) -> str:
    facts = [StudyDesign(study["design"]).label]
    if study["participants"] is not None:
        facts.append(f"{study['participants']:,} participants")
    if study["follow_up_days"] is not None:
        facts.append(days_text(study["follow_up_days"]))
    if not study["direct"]:
        facts.append("indirect")
    return f"PMID {study['pmid']} ({', '.join(facts)}): {StudyVerdict(study['verdict']).label}"


def _days_range(span: list[float] | None) -> str:
    if not span:
        return ""
    low, high = span
    return days_text(low) if low == high else f"{days_text(low)} to {days_text(high)}"


def claims_markdown(reports: list[ClaimReport]) -> str:
    """The report an editor hands a writer: a summary of findings, then per claim its verdict, the
    certainty and why it was rated down, the editor's rating, every included study with its quote,
    what was left out, and how the studies were found."""
    lines = [
        "# Claim verdicts",
        "",
        "Verdicts follow GRADE: studies weigh by design and participants; certainty is rated down for "
        "risk of bias, inconsistency, indirectness and imprecision. A provisional verdict is not yet "
        "signed off by an editor and may change.",
        "",
        "| claim | verdict | certainty | studies | participants | follow-up | editor's rating | status |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in reports:
        insufficient = r.verdict == ClaimVerdict.INSUFFICIENT_EVIDENCE.value
        lines.append(
            f"| {markdown_text(r.key)} | {ClaimVerdict(r.verdict).label} "
            f"| {'—' if insufficient else Strength(r.certainty).label} "
            f"| {len(r.studies)} | {'none direct' if insufficient else f'{r.participants:,}' if r.participants else 'not stated'} "
            f"| {'—' if insufficient else _days_range(r.follow_up_days) or 'not stated'} "
            f"| {Rating(r.rating).label if r.rating else 'none'} | {_status(r)} |"
        )
    for r in reports:
        lines += _claim_section(r)
    return "\n".join(lines) + "\n"


def _status(r: ClaimReport) -> str:
    if not r.provisional and r.signoff:
        return SignOffDecision(r.signoff).label
    waiting = []
    if r.open_conflicts:
        waiting.append(f"{r.open_conflicts} open conflict{'s' if r.open_conflicts != 1 else ''}")
    if r.awaiting_second_vote:
        waiting.append(f"{r.awaiting_second_vote} awaiting a second vote")
    why = "evidence changed since sign-off" if r.evidence_changed_since_signoff else "not signed off"
    return f"provisional ({why}{'; ' + ', '.join(waiting) if waiting else ''})"


def _claim_section(r: ClaimReport) -> list[str]:
    lines = ["", f"## {markdown_text(r.key)}", "", f"> {markdown_text(r.sentence)}", ""]
    lines += [f"**Claim:** {markdown_text(r.statement)}", ""]
    if r.status != ClaimStatus.ACTIVE.value:
        lines += [f"*Status: {r.status}.*", ""]
    certainty = (
        ""
        if r.verdict == ClaimVerdict.INSUFFICIENT_EVIDENCE.value
        else f", {Strength(r.certainty).label} certainty"
    )
    lines += [f"**Verdict:** {ClaimVerdict(r.verdict).label}{certainty} — {_status(r)}", ""]
    if r.absolute_words:
        words = ", ".join(f"“{markdown_text(w)}”" for w in r.absolute_words)
        lines += [
            f"**Wording:** the claim says {words}. Studies can show an effect, how large and for how long, "
            "never that it is beyond doubt: the editor's rating should say how far the evidence goes.",
            "",
        ]
    if r.rating:
        lines += [
            f"**Editor's rating:** {Rating(r.rating).label}. {markdown_text(r.rating_rationale)}",
            "",
        ]
    if r.downgrades:
        lines += ["**Rated down for:**", ""]
        lines += [f"- {d['domain'].replace('_', ' ')}: {markdown_text(d['reason'])}" for d in r.downgrades]
        lines.append("")
    lines += [markdown_text(r.reasoning), ""]
    lines.append(
        f"Sensitivity: high-certainty designs only: {ClaimVerdict(r.high_certainty_verdict).label}; "
        f"all designs alike: {ClaimVerdict(r.all_designs_verdict).label}"
        + (" (the verdict rests on weaker studies)." if r.rests_on_weak_studies else ".")
    )
    if r.studies:
        lines += [
            "",
            "### Included studies",
            "",
            "| PMID | year | design | participants | follow-up | verdict | direct | effect | quote |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for study in r.studies:
            days = study["follow_up_days"]
            direct = "yes" if study["direct"] else f"no: {markdown_text(study['indirect_reason'])}"
            # A direct study that does not decide is of a weaker design than those that do.
            weaker = study["direct"] and not study["decides"]
            design = StudyDesign(study["design"]).label + (" (does not decide)" if weaker else "")
            lines.append(
                f"| [{study['pmid']}]({study['url']}) | {study['year'] or ''} | {design} "
                f"| {study['participants'] if study['participants'] is not None else 'not stated'} "
                f"| {days_text(days) if days is not None else 'not stated'} "
                f"| {StudyVerdict(study['verdict']).label} | {direct} | {markdown_text(study['effect'])} "
                f"| {markdown_text(study['quote'])} |"
            )
    if r.left_out:
        lines += ["", "### Left out", ""]
        lines += [f"- PMID {item['pmid']}: {markdown_text(item['reason'])}" for item in r.left_out]
    if r.screened_out:
        lines += ["", "### Judged not relevant", ""]
        lines += [
            f"- PMID {item['pmid']}" + (f": {markdown_text(item['note'])}" if item["note"] else "")
            for item in r.screened_out
        ]
        more = r.flow["screened"] - r.flow["relevant"] - len(r.screened_out)
        if more > 0:
            lines.append(f"- and {more:,} more")
    lines += ["", "### How the studies were found", ""]
    flow = r.flow
    lines.append(
        f"Records identified: {flow['identified']:,}; screened for this claim: {flow['screened']:,}; "
        f"not relevant: {flow['screened'] - flow['relevant']:,}; relevant: {flow['relevant']:,}; "
        f"included: {flow['included']:,}; excluded: {flow['excluded']:,}"
        + (
            " (" + ", ".join(f"{reason}: {n}" for reason, n in flow["excluded_reasons"].items()) + ")"
            if flow["excluded_reasons"]
            else ""
        )
        + "."
    )
    queries = r.search["queries"]
    searched = "; ".join(f"`{markdown_text(q)}`" for q in queries) if queries else "no PubMed search run"
    last = f", last run {r.search['last_harvest']}" if r.search["last_harvest"] else ""
    imports = r.search["imports"]
    lines.append(
        f"PubMed search: {searched}{last}"
        + (f"; {imports} file{'s' if imports != 1 else ''} imported" if imports else "")
        + "."
    )
    if r.evidence_changes:
        lines += ["", "Evidence changed since sign-off: " + markdown_text("; ".join(r.evidence_changes))]
    return lines
