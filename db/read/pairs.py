"""Many claims' judged pairs at once, read from the votes: for conflicts, drill-downs and checks.

Each pair's standing is db.review.pair_rule.pair_standing's; `evidence_by_claim` computes what
db.review.pairs.claim_evidence does for many claims at once (tests/test_pages_data.py checks that the
two agree). Reads in bulk: one query per table, never one per study.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import String, and_, case, exists, func, literal, or_, select, tuple_, type_coerce, union
from sqlmodel import Session, col

from db.chunks import chunked
from db.corpus.study_facts import StudyFacts, study_facts
from db.models import Article, Assessment, ConflictResolution
from db.review.pair_evidence import Findings, pair_findings, with_findings
from db.review.pair_index import EvidencePair
from db.review.pair_rule import pair_standing
from db.review.pairs import votes_signature
from db.review.verdicts import EXCLUDING_STATUSES, StudyEvidence
from db.vocab import PairState, StudyVerdict


@dataclass(frozen=True, slots=True)
class PairSummary:
    """One judged (claim, study) pair: its state and resolved verdict (db.review.pair_rule)."""

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
    verdict_text = type_coerce(table.c.verdict, String)
    query = select(table.c.claim_id, table.c.pmid, table.c.reviewer_id, verdict_text, table.c.id)
    if claim_ids is not None:
        query = query.where(table.c.claim_id.in_(list(claim_ids)))
    if pmids is not None:
        query = query.where(table.c.pmid.in_(list(pmids)))
    if scope is PairScope.ALL:
        rows: Iterable[Any] = session.execute(query)
    else:
        # The scope's pairs first, then their votes a chunk of pairs at a time. Joining the grouped
        # pairs back to the assessments let SQLite walk a claim's every vote once per pair (seconds).
        keys = _pair_keys(session, scope, claim_ids, pmids)
        wanted = sorted(tuple(key) for key in session.execute(select(keys.c.claim_id, keys.c.pmid)))
        pair = tuple_(table.c.claim_id, table.c.pmid)
        rows = (
            row
            for chunk in chunked(wanted, params_each=2)
            for row in session.execute(query.where(pair.in_(chunk)))
        )
    votes: dict[tuple[int, int], list[tuple[int, str, int]]] = defaultdict(list)
    for claim_id, pmid, reviewer_id, value, assessment_id in rows:
        votes[(claim_id, pmid)].append((reviewer_id, value, assessment_id))

    resolutions = _latest_resolutions(session, claim_ids, pmids)
    signatures = _signatures(session, [key for key in resolutions if key in votes])
    by_claim: dict[int, list[PairSummary]] = defaultdict(list)
    for (claim_id, pmid), ballot in sorted(votes.items()):
        reviewers = tuple(reviewer_id for reviewer_id, _, _ in ballot)
        resolution = resolutions.get((claim_id, pmid))
        state, verdict = pair_standing(
            (value for _, value, _ in ballot), signatures.get((claim_id, pmid)), resolution
        )
        reopened = state is PairState.CONFLICT and resolution is not None
        by_claim[claim_id].append(
            PairSummary(
                claim_id, pmid, state, StudyVerdict(verdict) if verdict else None, reviewers, reopened
            )
        )
    return dict(by_claim)


NOT_RELEVANT = StudyVerdict.NOT_RELEVANT.value


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
    judged = grouped.having(or_(func.min(verdict) != NOT_RELEVANT, func.max(verdict) != NOT_RELEVANT))
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
        .having(and_(func.min(verdict) == NOT_RELEVANT, func.max(verdict) == NOT_RELEVANT))
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
        for chunk in chunked(pmids):
            query = select(Assessment).where(
                col(Assessment.claim_id) == claim_id, col(Assessment.pmid).in_(chunk)
            )
            for assessment in session.scalars(query):
                found[(claim_id, assessment.pmid)].append(assessment)
    return {key: votes_signature(rows) for key, rows in found.items()}


def evidence_by_claim(
    session: Session, claim_ids: Collection[int] | None = None
) -> dict[int, list[StudyEvidence]]:
    """claim id -> what db.review.pairs.claim_evidence returns for it, for many claims at once."""
    pairs = pair_summaries(session, claim_ids)
    facts = study_facts(session, {p.pmid for rows in pairs.values() for p in rows})
    findings = pair_findings(session, list(pairs))
    return {
        claim_id: study_evidence(rows, facts, {pmid: f for (c, pmid), f in findings.items() if c == claim_id})
        for claim_id, rows in pairs.items()
    }


def study_evidence(
    pairs: Iterable[PairSummary | EvidencePair],
    facts: dict[int, StudyFacts],
    findings: Mapping[int, Findings] | None = None,
) -> list[StudyEvidence]:
    """The verdict rule's view of these pairs: design and standing from `facts`, the stated evidence
    fields from `findings` (PMID -> db.review.pair_evidence.pair_findings of the claim)."""
    findings = findings or {}
    return [
        with_findings(
            StudyEvidence(p.pmid, p.verdict, facts[p.pmid].design, facts[p.pmid].retraction_status),
            findings.get(p.pmid),
        )
        for p in pairs
        if p.pmid in facts
    ]
