"""Page-oriented reads for the dashboard: claims, evidence meters, conflicts, overview, audit.

Everything here returns plain dataclasses (strings, numbers, tuples) so Streamlit's cache_data can
pickle it, and reads in bulk: one query per table, never one per study. db.pairs.claim_evidence
reads a study's design with one query per study, which is right for one claim in the CLI but
takes seconds for a claim judged on 20,000 studies; `evidence_by_claim` computes the same result
with a handful of queries (tests/test_dashboard_data.py checks that the two agree).
"""

from __future__ import annotations

import re
import threading
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import String, and_, case, exists, func, literal, or_, select, type_coerce, union
from sqlmodel import Session

from db.articles import corpus_summary
from db.assessments import latest_design_corrections
from db.claims import list_claims
from db.design import DESIGN_NOUNS, DESIGN_TIER, StudyDesign, mesh_descriptors, suggest_design
from db.models import Article, HarvestRun, RunStatus, utcnow
from db.pairs import PairState, votes_signature
from db.review_models import (
    Assessment,
    AuditEvent,
    Claim,
    ConflictResolution,
    DesignCorrection,
    NotFoundError,
    SignOff,
    SourceDocument,
    StudyVerdict,
    User,
)
from db.roles import Action, can, require
from db.signoff import describe_changes
from db.verdicts import (
    EXCLUDING_STATUSES,
    ClaimVerdictResult,
    DesignScope,
    StudyEvidence,
    derive_claim_verdict,
    evidence_fingerprint,
    evidence_snapshot,
)

# Above this many PMIDs, reading every article is cheaper than a long IN (...) list.
_ALL_ARTICLES_FROM = 2_000
_IN_CHUNK = 900  # stays under SQLite's bound-parameter limit on old builds

# Designs strongest first, the order meters and queues list them in.
DESIGN_ORDER: tuple[StudyDesign, ...] = tuple(
    sorted(StudyDesign, key=lambda d: (-DESIGN_TIER[d], list(StudyDesign).index(d)))
)
VERDICT_ORDER: tuple[str, ...] = tuple(v.value for v in StudyVerdict)


def design_label(design: StudyDesign | str) -> str:
    """'meta-analysis', 'RCT', ...: the singular noun the verdict reasoning uses."""
    return DESIGN_NOUNS[StudyDesign(design)][0]


def words(value: str | None) -> str:
    """An enum value as words: 'not_relevant' -> 'not relevant'."""
    return (value or "").replace("_", " ")


# --- study facts in bulk ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StudyFacts:
    """What the verdict rule needs of a study: its current design and its PubMed standing."""

    design: StudyDesign
    retraction_status: str | None
    pub_year: int | None


def study_facts(session: Session, pmids: Collection[int] | None = None) -> dict[int, StudyFacts]:
    """Design (latest reviewer correction, else PubMed's suggestion) and standing per PMID.

    `None` means every article. Same rule as db.assessments.effective_design, without a query
    per study. Large requests are served from a per-process copy of every study's facts that is
    rebuilt only when articles or design corrections change (see `_facts_signature`).
    """
    if pmids is None or len(pmids) > _ALL_ARTICLES_FROM:
        every = _all_study_facts(session)
        return every if pmids is None else {p: every[p] for p in pmids if p in every}
    return _read_study_facts(session, sorted(pmids))


def _read_study_facts(session: Session, pmids: list[int] | None) -> dict[int, StudyFacts]:
    table = Article.__table__
    columns = (
        table.c.pmid,
        table.c.publication_types,
        table.c.mesh_headings,
        table.c.retraction_status,
        table.c.pub_year,
    )
    rows: list[Any] = []
    if pmids is None:
        rows = list(session.execute(select(*columns)))
    else:
        for start in range(0, len(pmids), _IN_CHUNK):
            rows.extend(
                session.execute(select(*columns).where(table.c.pmid.in_(pmids[start : start + _IN_CHUNK])))
            )
    corrected = latest_design_corrections(session, pmids)
    facts = {}
    for pmid, types, mesh, status, year in rows:
        design = corrected.get(pmid) or suggest_design(types or [], mesh_descriptors(mesh or []))
        facts[pmid] = StudyFacts(design, status, year)
    return facts


# Every study's facts per database, with the signature they were read at. Parsing 20,000 rows of
# MeSH JSON takes about half a second; the signature query takes a few milliseconds.
_FACTS: dict[str, tuple[tuple[Any, ...], dict[int, StudyFacts]]] = {}
_FACTS_LOCK = threading.Lock()


def _facts_signature(session: Session) -> tuple[Any, ...]:
    # Any insert, update or delete of an article moves its count or max(updated_at) (updates set
    # updated_at); corrections are only ever added.
    articles = Article.__table__
    corrections = DesignCorrection.__table__
    row = session.execute(
        select(
            select(func.count()).select_from(articles).scalar_subquery(),
            select(func.max(articles.c.updated_at)).scalar_subquery(),
            select(func.count()).select_from(corrections).scalar_subquery(),
            select(func.max(corrections.c.id)).scalar_subquery(),
        )
    ).one()
    return tuple(row)


def _all_study_facts(session: Session) -> dict[int, StudyFacts]:
    key = str(session.get_bind().url)
    signature = _facts_signature(session)
    cached = _FACTS.get(key)
    if cached is not None and cached[0] == signature:
        return cached[1]
    with _FACTS_LOCK:
        cached = _FACTS.get(key)
        if cached is not None and cached[0] == signature:
            return cached[1]
        facts = _read_study_facts(session, None)
        _FACTS[key] = (signature, facts)
        return facts


# --- pairs and evidence in bulk --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PairSummary:
    """One judged (claim, study) pair: its state and resolved verdict, as db.pairs.pair_statuses says."""

    claim_id: int
    pmid: int
    state: PairState
    verdict: StudyVerdict | None  # None while in conflict
    reviewer_ids: tuple[int, ...]
    reopened: bool = False  # in conflict although an editor resolved it once (the votes changed since)


class PairScope(StrEnum):
    """Which judged pairs to read. Most pairs of a large review are only screened out (every vote
    "not relevant"): the verdict rule needs just their number, so pages read them as counts."""

    ALL = "all"
    EVIDENCE = "evidence"  # all but the screened-out pairs (see screened_out_counts)
    DISAGREEING = "disagreeing"  # pairs whose votes differ: open conflicts and resolved ones


def pair_summaries(
    session: Session,
    claim_ids: Collection[int] | None = None,
    pmids: Collection[int] | None = None,
    scope: PairScope = PairScope.ALL,
) -> dict[int, list[PairSummary]]:
    """claim id -> its judged pairs by PMID (of `pmids` only, if given), from two queries."""
    table = Assessment.__table__
    # Plain strings: converting 200,000 verdicts to enum objects in SQLAlchemy costs more than the query.
    verdict = type_coerce(table.c.verdict, String)
    query = select(table.c.claim_id, table.c.pmid, table.c.reviewer_id, verdict, table.c.id)
    if claim_ids is not None:
        query = query.where(table.c.claim_id.in_(list(claim_ids)))
    if pmids is not None:
        query = query.where(table.c.pmid.in_(list(pmids)))
    if scope is not PairScope.ALL:
        keys = _pair_keys(session, scope, claim_ids, pmids)
        query = query.join(keys, and_(table.c.claim_id == keys.c.claim_id, table.c.pmid == keys.c.pmid))
    votes: dict[tuple[int, int], list[tuple[int, str, int]]] = defaultdict(list)
    for claim_id, pmid, reviewer_id, value, assessment_id in session.execute(query):
        votes[(claim_id, pmid)].append((reviewer_id, value, assessment_id))

    resolutions = _latest_resolutions(session, claim_ids, pmids)
    signatures = _signatures(session, [key for key in resolutions if key in votes])
    by_claim: dict[int, list[PairSummary]] = defaultdict(list)
    for (claim_id, pmid), ballot in sorted(votes.items()):
        verdicts = {value for _, value, _ in ballot}
        reviewers = tuple(reviewer_id for reviewer_id, _, _ in ballot)
        resolution = resolutions.get((claim_id, pmid))
        if resolution is not None and resolution[1] == signatures.get((claim_id, pmid)):
            summary = PairSummary(claim_id, pmid, PairState.RESOLVED, StudyVerdict(resolution[0]), reviewers)
        elif len(verdicts) == 1:
            summary = PairSummary(claim_id, pmid, PairState.AGREED, StudyVerdict(verdicts.pop()), reviewers)
        else:
            summary = PairSummary(claim_id, pmid, PairState.CONFLICT, None, reviewers, resolution is not None)
        by_claim[claim_id].append(summary)
    return dict(by_claim)


_NOT_RELEVANT = StudyVerdict.NOT_RELEVANT.value


def _pair_keys(
    session: Session, scope: PairScope, claim_ids: Collection[int] | None, pmids: Collection[int] | None
) -> Any:
    """A subquery of (claim_id, pmid) for a scope, grouped in the database."""
    table = Assessment.__table__
    verdict = type_coerce(table.c.verdict, String)
    grouped = select(table.c.claim_id, table.c.pmid).group_by(table.c.claim_id, table.c.pmid)
    if claim_ids is not None:
        grouped = grouped.where(table.c.claim_id.in_(list(claim_ids)))
    if pmids is not None:
        grouped = grouped.where(table.c.pmid.in_(list(pmids)))
    if scope is PairScope.DISAGREEING:
        return grouped.having(func.min(verdict) != func.max(verdict)).subquery()
    # EVIDENCE: the complement of screened_out_counts' pairs.
    judged = grouped.having(or_(func.min(verdict) != _NOT_RELEVANT, func.max(verdict) != _NOT_RELEVANT))
    resolutions = ConflictResolution.__table__
    resolved = select(resolutions.c.claim_id, resolutions.c.pmid)
    excluded = grouped.where(table.c.pmid.in_(_excluded_pmids()))
    if claim_ids is not None:
        resolved = resolved.where(resolutions.c.claim_id.in_(list(claim_ids)))
    if pmids is not None:
        resolved = resolved.where(resolutions.c.pmid.in_(list(pmids)))
    return union(judged, resolved, excluded).subquery()


def _excluded_pmids() -> Any:
    # A retracted study screened out is still listed as excluded by the verdict rule, so its pairs
    # are evidence, not just a count.
    articles = Article.__table__
    return select(articles.c.pmid).where(articles.c.retraction_status.in_(list(EXCLUDING_STATUSES)))


@dataclass(frozen=True)
class ScreenedOut:
    """Pairs whose every vote is "not relevant" (no resolution, study not excluded), per claim."""

    total: int
    judged_by_viewer: int  # of those, the pairs the viewer voted on (what blind mode lets them see)


def screened_out_counts(
    session: Session, claim_ids: Collection[int] | None = None, viewer_id: int | None = None
) -> dict[int, ScreenedOut]:
    """claim id -> its screened-out pairs, counted in the database (see PairScope)."""
    table = Assessment.__table__
    resolutions = ConflictResolution.__table__
    verdict = type_coerce(table.c.verdict, String)
    mine = (
        func.max(case((table.c.reviewer_id == viewer_id, 1), else_=0))
        if viewer_id is not None
        else literal(0)
    )
    pairs = (
        select(table.c.claim_id, mine.label("mine"))
        .where(~table.c.pmid.in_(_excluded_pmids()))
        .where(
            ~exists().where(resolutions.c.claim_id == table.c.claim_id, resolutions.c.pmid == table.c.pmid)
        )
        .group_by(table.c.claim_id, table.c.pmid)
        .having(and_(func.min(verdict) == _NOT_RELEVANT, func.max(verdict) == _NOT_RELEVANT))
    )
    if claim_ids is not None:
        pairs = pairs.where(table.c.claim_id.in_(list(claim_ids)))
    counted = pairs.subquery()
    query = select(counted.c.claim_id, func.count(), func.sum(counted.c.mine)).group_by(counted.c.claim_id)
    return {claim_id: ScreenedOut(int(n), int(m or 0)) for claim_id, n, m in session.execute(query)}


def _latest_resolutions(
    session: Session, claim_ids: Collection[int] | None, pmids: Collection[int] | None = None
) -> dict[tuple[int, int], tuple[str, str]]:
    table = ConflictResolution.__table__
    query = select(
        table.c.claim_id, table.c.pmid, type_coerce(table.c.verdict, String), table.c.votes_signature
    ).order_by(table.c.id)
    if claim_ids is not None:
        query = query.where(table.c.claim_id.in_(list(claim_ids)))
    if pmids is not None:
        query = query.where(table.c.pmid.in_(list(pmids)))
    return {(claim_id, pmid): (verdict, sig) for claim_id, pmid, verdict, sig in session.execute(query)}


def _signatures(session: Session, pairs: list[tuple[int, int]]) -> dict[tuple[int, int], str]:
    # Only pairs an editor resolved need the (id, version) signature; they are few.
    found: dict[tuple[int, int], list[Assessment]] = defaultdict(list)
    for claim_id in {claim_id for claim_id, _ in pairs}:
        pmids = [pmid for c, pmid in pairs if c == claim_id]
        for start in range(0, len(pmids), _IN_CHUNK):
            query = select(Assessment).where(
                Assessment.claim_id == claim_id, Assessment.pmid.in_(pmids[start : start + _IN_CHUNK])
            )
            for assessment in session.scalars(query):
                found[(claim_id, assessment.pmid)].append(assessment)
    return {key: votes_signature(rows) for key, rows in found.items()}


def evidence_by_claim(
    session: Session, claim_ids: Collection[int] | None = None
) -> dict[int, list[StudyEvidence]]:
    """claim id -> what db.pairs.claim_evidence returns for it, for many claims at once."""
    pairs = pair_summaries(session, claim_ids)
    facts = study_facts(session, {p.pmid for rows in pairs.values() for p in rows})
    return {claim_id: _evidence(rows, facts) for claim_id, rows in pairs.items()}


def _evidence(pairs: Iterable[PairSummary], facts: dict[int, StudyFacts]) -> list[StudyEvidence]:
    return [
        StudyEvidence(p.pmid, p.verdict, facts[p.pmid].design, facts[p.pmid].retraction_status)
        for p in pairs
        if p.pmid in facts
    ]


# --- claim cards: the Claims, Overview and Editor pages ------------------------------------------


@dataclass(frozen=True)
class MeterRow:
    """One segment of a claim's evidence meter: how many studies of a design carry a verdict."""

    design: str
    design_label: str
    verdict: str
    studies: int
    counted: bool  # False: this design does not decide the verdict in the chosen scope


@dataclass(frozen=True)
class SignoffInfo:
    decision: str
    rationale: str
    signed_by: str | None
    signed_at: datetime
    verdict: str
    strength: str
    evidence_changed: bool
    changes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ClaimCard:
    """Everything the pages show about one claim, as the viewer may see it."""

    id: int
    key: str
    statement: str
    sentence: str
    span_start: int
    span_end: int
    document_id: int
    time_frame: str | None
    scope: str
    verdict: str
    strength: str
    reasoning: str
    graded_verdict: str
    high_certainty_verdict: str
    all_designs_verdict: str
    rests_on_weak_studies: bool
    meter: tuple[MeterRow, ...]
    excluded: tuple[tuple[int, str], ...]  # (pmid, reason): retracted, expression of concern, notice
    progress: dict[str, int]  # verdict value or "conflict" -> pairs, over the pairs the viewer may see
    judged: int  # studies anyone judged for this claim (a count reveals no verdict)
    conflicts: int
    blinded: bool  # blind mode limits what this viewer sees to the studies they judged themselves
    hidden: int  # judged studies hidden from this viewer by blind mode
    signoff: SignoffInfo | None = None


def claim_cards(
    session: Session,
    viewer: User,
    *,
    document_id: int | None = None,
    scope: DesignScope = DesignScope.GRADED,
) -> list[ClaimCard]:
    """The active claims (of one document, or all) with their verdicts, as `viewer` may see them.

    Blind mode (db.pairs.is_blinded) shows a blinded reviewer the verdicts only of the studies they
    judged themselves, here as in db.pairs.visible_assessments: their meter and verdict are computed
    from those studies, and the rest are counted as hidden.
    """
    require(viewer, Action.READ)
    claims = list_claims(session, document_id)
    if not claims:
        return []
    claim_ids = [c.id for c in claims if c.id is not None]
    pairs = pair_summaries(session, claim_ids, scope=PairScope.EVIDENCE)
    screened = screened_out_counts(session, claim_ids, viewer.id)
    facts = study_facts(session, {p.pmid for rows in pairs.values() for p in rows})
    blind_documents = _blind_documents(session, viewer)
    signoffs = _latest_signoffs(session, claim_ids)
    names = _user_names(session)
    cards = []
    for claim in claims:
        assert claim.id is not None
        rows = pairs.get(claim.id, [])
        blinded = claim.document_id in blind_documents
        visible = [p for p in rows if viewer.id in p.reviewer_ids] if blinded else rows
        out = screened.get(claim.id, ScreenedOut(0, 0))
        out_visible = out.judged_by_viewer if blinded else out.total
        evidence = _evidence(visible, facts)
        graded, high, every = (
            with_screened_out(derive_claim_verdict(evidence, view), out_visible)
            for view in (DesignScope.GRADED, DesignScope.HIGH_CERTAINTY, DesignScope.ALL_DESIGNS)
        )
        chosen = {
            DesignScope.GRADED: graded,
            DesignScope.HIGH_CERTAINTY: high,
            DesignScope.ALL_DESIGNS: every,
        }[scope]
        progress = Counter("conflict" if p.verdict is None else p.verdict.value for p in visible)
        if out_visible:
            progress[_NOT_RELEVANT] += out_visible
        signoff = signoffs.get(claim.id)
        cards.append(
            ClaimCard(
                id=claim.id,
                key=claim.key,
                statement=claim.statement,
                sentence=claim.sentence,
                span_start=claim.span_start,
                span_end=claim.span_end,
                document_id=claim.document_id,
                time_frame=claim.time_frame,
                scope=scope.value,
                verdict=chosen.verdict.value,
                strength=chosen.strength.value,
                reasoning=chosen.reasoning,
                graded_verdict=graded.verdict.value,
                high_certainty_verdict=high.verdict.value,
                all_designs_verdict=every.verdict.value,
                rests_on_weak_studies=graded.verdict is not high.verdict,
                meter=meter_rows(chosen),
                excluded=tuple((e.pmid, e.reason) for e in chosen.excluded),
                progress=dict(progress),
                judged=len(rows) + out.total,
                conflicts=sum(p.state is PairState.CONFLICT for p in visible),
                blinded=blinded,
                hidden=len(rows) + out.total - len(visible) - out_visible,
                # The sign-off is compared with the full evidence, whoever looks at it (screened-out
                # studies are no part of a sign-off's evidence snapshot).
                signoff=_signoff_info(signoff, _evidence(rows, facts), names) if signoff else None,
            )
        )
    return cards


def with_screened_out(result: ClaimVerdictResult, screened: int) -> ClaimVerdictResult:
    """`result` as if `screened` more studies screened out as not relevant had been in its evidence.

    They change nothing but the count and its phrase in the reasoning, so the verdict is derived
    from the other studies and the phrase written here as db.verdicts writes it; a test checks
    that this equals derive_claim_verdict over every study.
    """
    if not screened:
        return result
    total = result.not_relevant + screened
    phrase = f"{total} {'study' if total == 1 else 'studies'} screened out as not relevant"
    summary, conclusion = result.reasoning.split(". ", 1)
    parts = [] if summary == "No studies rated yet" else summary.split("; ")
    parts = [part for part in parts if not part.endswith("screened out as not relevant")] + [phrase]
    return replace(result, not_relevant=total, reasoning=f"{'; '.join(parts)}. {conclusion}")


def meter_rows(result: ClaimVerdictResult) -> tuple[MeterRow, ...]:
    """The evidence meter of a verdict: studies per (design, verdict), strongest designs first."""
    counted = {(s.pmid) for s in result.counted}
    tally: Counter[tuple[StudyDesign, str, bool]] = Counter()
    for study in result.considered + result.not_counted:
        if study.verdict is None:
            continue
        tally[(study.design, StudyVerdict(study.verdict).value, study.pmid in counted)] += 1
    rows = [
        MeterRow(design.value, design_label(design), verdict, n, is_counted)
        for (design, verdict, is_counted), n in tally.items()
    ]
    rows.sort(key=lambda r: (DESIGN_ORDER.index(StudyDesign(r.design)), VERDICT_ORDER.index(r.verdict)))
    return tuple(rows)


def _blind_documents(session: Session, viewer: User) -> set[int]:
    # Mirrors db.pairs.is_blinded: editors and admins resolve conflicts and see every vote;
    # viewers cannot vote, so cannot be anchored.
    if can(viewer, Action.RESOLVE_CONFLICTS) or not can(viewer, Action.ASSESS):
        return set()
    query = select(SourceDocument.id).where(SourceDocument.blind_mode.is_(True))
    return {doc_id for doc_id in session.scalars(query) if doc_id is not None}


def _latest_signoffs(session: Session, claim_ids: Collection[int]) -> dict[int, SignOff]:
    query = select(SignOff).where(SignOff.claim_id.in_(list(claim_ids))).order_by(SignOff.id)
    return {s.claim_id: s for s in session.scalars(query)}


def _user_names(session: Session) -> dict[int, str]:
    return {user_id: name for user_id, name in session.execute(select(User.id, User.name)) if user_id}


def _signoff_info(signoff: SignOff, evidence: list[StudyEvidence], names: dict[int, str]) -> SignoffInfo:
    changed = evidence_fingerprint(evidence) != signoff.evidence_fingerprint
    changes = describe_changes(signoff.evidence, evidence_snapshot(evidence)) if changed else []
    return SignoffInfo(
        decision=str(signoff.decision),
        rationale=signoff.rationale,
        signed_by=names.get(signoff.signed_by_id),
        signed_at=signoff.signed_at,
        verdict=str(signoff.verdict),
        strength=str(signoff.strength),
        evidence_changed=changed,
        changes=tuple(changes),
    )


# --- drill-down: every study of a claim ------------------------------------------------------------


@dataclass(frozen=True)
class VoteRow:
    reviewer: str
    verdict: str
    quote: str
    note: str
    design: str
    version: int
    assessment_id: int


@dataclass(frozen=True)
class StudyRow:
    """One judged study of a claim with its votes, for the drill-down and the conflict list."""

    pmid: int
    title: str
    journal: str
    year: int | None
    design: str
    state: str  # agreed | conflict | resolved
    verdict: str | None  # the pair's resolved verdict
    excluded: str | None  # why the verdict rule leaves it out (retracted, ...), else None
    retraction_status: str | None
    votes: tuple[VoteRow, ...]
    resolution_reason: str | None = None
    reopened: bool = False


@dataclass(frozen=True)
class StudyPage:
    total: int  # rows matching the filters
    rows: tuple[StudyRow, ...]
    hidden: int = 0  # judged studies blind mode hides from this viewer


def claim_studies(
    session: Session,
    viewer: User,
    claim_id: int,
    *,
    verdicts: Collection[str] = (),
    designs: Collection[str] = (),
    states: Collection[str] = (),
    limit: int = 25,
    offset: int = 0,
) -> StudyPage:
    """Every judged study of a claim the viewer may see, strongest designs first, with votes.

    Filters take enum values; an empty filter means all. A blinded reviewer sees only the studies
    they judged (db.pairs.visible_assessments), and their number of hidden ones.
    """
    require(viewer, Action.READ)
    claim = session.get(Claim, claim_id)
    if claim is None:
        raise NotFoundError(f"No claim with id {claim_id}; reload the page.")
    # Screened-out pairs are most of a big review: read them only when the filter asks for them.
    wanted = PairScope.EVIDENCE if verdicts and _NOT_RELEVANT not in verdicts else PairScope.ALL
    rows = pair_summaries(session, [claim_id], scope=wanted).get(claim_id, [])
    blinded = claim.document_id in _blind_documents(session, viewer)
    visible = [p for p in rows if viewer.id in p.reviewer_ids] if blinded else rows
    hidden = len(rows) - len(visible)
    if wanted is PairScope.EVIDENCE and blinded:
        out = screened_out_counts(session, [claim_id], viewer.id).get(claim_id, ScreenedOut(0, 0))
        hidden += out.total - out.judged_by_viewer
    facts = study_facts(session, {p.pmid for p in visible})

    def keep(p: PairSummary) -> bool:
        design = facts[p.pmid].design.value
        verdict = p.verdict.value if p.verdict is not None else "conflict"
        return (
            (not verdicts or verdict in verdicts)
            and (not designs or design in designs)
            and (not states or p.state.value in states)
        )

    chosen = [p for p in visible if p.pmid in facts and keep(p)]
    chosen.sort(
        key=lambda p: (
            DESIGN_ORDER.index(facts[p.pmid].design),
            -(facts[p.pmid].pub_year or 0),
            -p.pmid,
        )
    )
    page = chosen[offset : offset + limit]
    return StudyPage(len(chosen), tuple(study_rows(session, claim_id, page, facts)), hidden)


def study_rows(
    session: Session, claim_id: int, pairs: Sequence[PairSummary], facts: dict[int, StudyFacts]
) -> list[StudyRow]:
    """Titles, votes and resolutions of a page of pairs of one claim (a few queries, not one per row)."""
    pmids = [p.pmid for p in pairs]
    if not pmids:
        return []
    table = Article.__table__
    articles = {
        row.pmid: row
        for row in session.execute(
            select(table.c.pmid, table.c.title, table.c.journal, table.c.pub_year).where(
                table.c.pmid.in_(pmids)
            )
        )
    }
    names = _user_names(session)
    votes: dict[int, list[VoteRow]] = defaultdict(list)
    query = (
        select(Assessment)
        .where(Assessment.claim_id == claim_id, Assessment.pmid.in_(pmids))
        .order_by(Assessment.id)
    )
    for a in session.scalars(query):
        assert a.id is not None
        votes[a.pmid].append(
            VoteRow(
                names.get(a.reviewer_id, "?"), str(a.verdict), a.quote, a.note, str(a.design), a.version, a.id
            )
        )
    reasons: dict[int, str] = {}
    resolution_query = (
        select(ConflictResolution)
        .where(ConflictResolution.claim_id == claim_id, ConflictResolution.pmid.in_(pmids))
        .order_by(ConflictResolution.id)
    )
    for resolution in session.scalars(resolution_query):
        reasons[resolution.pmid] = resolution.reason
    result = []
    for p in pairs:
        article, fact = articles.get(p.pmid), facts[p.pmid]
        result.append(
            StudyRow(
                pmid=p.pmid,
                title=article.title if article is not None else "",
                journal=article.journal if article is not None else "",
                year=article.pub_year if article is not None else None,
                design=fact.design.value,
                state=p.state.value,
                verdict=p.verdict.value if p.verdict is not None else None,
                excluded=EXCLUDING_STATUSES.get(fact.retraction_status or ""),
                retraction_status=fact.retraction_status,
                votes=tuple(votes.get(p.pmid, ())),
                resolution_reason=reasons.get(p.pmid) if p.state is PairState.RESOLVED else None,
                reopened=p.reopened,
            )
        )
    return result


# --- conflicts for the editor -------------------------------------------------------------------


@dataclass(frozen=True)
class ConflictRow:
    claim_id: int
    claim_key: str
    study: StudyRow


@dataclass(frozen=True)
class ConflictPage:
    total: int
    rows: tuple[ConflictRow, ...]


def conflict_page(
    session: Session, actor: User, *, claim_id: int | None = None, limit: int = 20, offset: int = 0
) -> ConflictPage:
    """Pairs whose reviewers disagree and no editor has resolved (or the votes changed since)."""
    require(actor, Action.RESOLVE_CONFLICTS)
    keys = {c.id: c.key for c in list_claims(session, include_retired=True) if c.id is not None}
    pairs = pair_summaries(session, [claim_id] if claim_id is not None else None, scope=PairScope.DISAGREEING)
    open_pairs = [
        p
        for claim, rows in sorted(pairs.items())
        for p in rows
        if p.state is PairState.CONFLICT and claim in keys
    ]
    page = open_pairs[offset : offset + limit]
    facts = study_facts(session, {p.pmid for p in page})
    rows = []
    for claim, group in _group_by_claim(page).items():
        for study in study_rows(session, claim, group, facts):
            rows.append(ConflictRow(claim, keys[claim], study))
    return ConflictPage(len(open_pairs), tuple(rows))


def _group_by_claim(pairs: Iterable[PairSummary]) -> dict[int, list[PairSummary]]:
    groups: dict[int, list[PairSummary]] = defaultdict(list)
    for p in pairs:
        groups[p.claim_id].append(p)
    return groups


# --- the editor's checklist ----------------------------------------------------------------------


@dataclass(frozen=True)
class ChecklistItem:
    label: str
    done: bool
    detail: str = ""


def signoff_checklist(cards: Sequence[ClaimCard]) -> list[ChecklistItem]:
    """What must hold before a document is ready to publish, each with what is missing."""
    unsigned = [c.key for c in cards if c.signoff is None]
    changed = [c.key for c in cards if c.signoff is not None and c.signoff.evidence_changed]
    conflicted = [f"{c.key} ({c.conflicts})" for c in cards if c.conflicts]
    to_revise = [
        c.key
        for c in cards
        if c.signoff is not None and c.signoff.decision != "ok_to_publish" and not c.signoff.evidence_changed
    ]
    unjudged = [c.key for c in cards if c.judged == 0]
    return [
        ChecklistItem("Every claim has judged studies", not unjudged, ", ".join(unjudged)),
        ChecklistItem("No open conflicts between reviewers", not conflicted, ", ".join(conflicted)),
        ChecklistItem("Every claim signed off", not unsigned, ", ".join(unsigned)),
        ChecklistItem("No evidence changed since sign-off", not changed, ", ".join(changed)),
        ChecklistItem(
            "Claims to reword or remove are dealt with in the text",
            not to_revise,
            ", ".join(to_revise),
        ),
    ]


# --- overview --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Freshness:
    articles: int
    with_abstract: int
    retracted: int
    newest_year: int | None
    oldest_year: int | None
    last_run: dict[str, Any] | None  # the latest harvest or import, any outcome
    last_harvest: dict[str, Any] | None  # the latest successful harvest
    added_since_last_harvest: int
    added_last_7_days: int


def corpus_freshness(session: Session, now: datetime | None = None) -> Freshness:
    """Corpus size and how fresh it is: the last runs, and what arrived since."""
    summary = corpus_summary(session)
    runs = HarvestRun.__table__
    last_run = session.execute(select(runs).order_by(runs.c.id.desc()).limit(1)).mappings().first()
    last_harvest = (
        session.execute(
            select(runs)
            .where(runs.c.kind == "harvest", runs.c.status == RunStatus.SUCCEEDED.value)
            .order_by(runs.c.id.desc())
            .limit(1)
        )
        .mappings()
        .first()
    )
    table = Article.__table__
    now = now or utcnow()

    def added_since(moment: datetime) -> int:
        return int(session.scalar(select(func.count()).where(table.c.first_seen_at >= moment)) or 0)

    since_harvest = 0
    if last_harvest is not None:
        # Records the harvest itself added count as new too: "new since" the previous picture.
        since_harvest = added_since(last_harvest["started_at"])
    return Freshness(
        articles=summary.articles,
        with_abstract=summary.with_abstract,
        retracted=summary.retracted,
        newest_year=summary.newest_year,
        oldest_year=summary.oldest_year,
        last_run=dict(last_run) if last_run is not None else None,
        last_harvest=dict(last_harvest) if last_harvest is not None else None,
        added_since_last_harvest=since_harvest,
        added_last_7_days=added_since(now - timedelta(days=7)),
    )


@dataclass(frozen=True)
class YearDesignCount:
    year: int
    design: str
    design_label: str
    tier: int
    studies: int


def studies_by_year_and_design(session: Session) -> list[YearDesignCount]:
    """How many studies per publication year and design (studies without a year are left out)."""
    tally: Counter[tuple[int, StudyDesign]] = Counter(
        (fact.pub_year, fact.design) for fact in study_facts(session).values() if fact.pub_year is not None
    )
    return [
        YearDesignCount(year, design.value, design_label(design), int(DESIGN_TIER[design]), n)
        for (year, design), n in sorted(
            tally.items(), key=lambda kv: (kv[0][0], DESIGN_ORDER.index(kv[0][1]))
        )
    ]


# --- audit trail -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditRow:
    id: int
    at: datetime
    actor: str
    action: str
    entity: str
    entity_id: str
    claim: str | None
    pmid: int | None
    before: str
    after: str
    reason: str
    source: str


def audit_rows(
    session: Session, *, claim_id: int | None = None, pmid: int | None = None, limit: int = 200
) -> list[AuditRow]:
    """The newest events of the audit trail (of one claim or study), newest first, as plain rows."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if claim_id is not None:
        query = query.where(AuditEvent.claim_id == claim_id)
    if pmid is not None:
        query = query.where(AuditEvent.pmid == pmid)
    keys = dict(session.execute(select(Claim.id, Claim.key)).all())
    return [
        AuditRow(
            id=event.id or 0,
            at=event.at,
            actor=event.actor_name,
            action=words(str(event.action)),
            entity=event.entity,
            entity_id=event.entity_id,
            claim=keys.get(event.claim_id) if event.claim_id is not None else None,
            pmid=event.pmid,
            before=_brief(event.before),
            after=_brief(event.after),
            reason=event.reason or "",
            source=event.source or "",
        )
        for event in session.scalars(query)
    ]


def _brief(values: dict[str, Any] | None) -> str:
    if not values:
        return ""
    return "; ".join(f"{key}: {value}" for key, value in values.items())


# --- small lookups ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DocumentInfo:
    id: int
    slug: str
    title: str
    author: str | None
    outlet: str | None
    url: str | None
    status: str
    blind_mode: bool
    text: str


def documents(session: Session) -> list[DocumentInfo]:
    """The articles under review, oldest first, with their full text."""
    return [
        DocumentInfo(
            id=d.id or 0,
            slug=d.slug,
            title=d.title,
            author=d.author,
            outlet=d.outlet,
            url=d.url,
            status=str(d.status),
            blind_mode=d.blind_mode,
            text=d.text,
        )
        for d in session.scalars(select(SourceDocument).order_by(SourceDocument.id))
    ]


@dataclass(frozen=True)
class ClaimChoice:
    id: int
    key: str
    statement: str
    document_id: int


def claim_choices(session: Session, document_id: int | None = None) -> list[ClaimChoice]:
    """The active claims, in document order, for pickers."""
    return [
        ClaimChoice(c.id or 0, c.key, c.statement, c.document_id) for c in list_claims(session, document_id)
    ]


_KEY_WORDS = re.compile(r"[a-z0-9]+")
_KEY_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "for",
        "from",
        "has",
        "have",
        "in",
        "is",
        "it",
        "of",
        "on",
        "or",
        "that",
        "the",
        "this",
        "to",
        "with",
    ]
)


def suggest_claim_key(sentence: str, taken: Collection[str] = ()) -> str:
    """A stable-key suggestion from a sentence: its first content words, hyphenated, made unique."""
    words_ = [w for w in _KEY_WORDS.findall(sentence.lower()) if w not in _KEY_STOPWORDS][:4]
    base = "-".join(words_)[:60].strip("-") or "claim"
    key, n = base, 2
    while key in taken:
        key, n = f"{base}-{n}", n + 1
    return key
