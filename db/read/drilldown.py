"""Every judged study of one claim with its votes: the Claims page's drill-down and the conflict list's rows."""

from __future__ import annotations

import heapq
import threading
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlmodel import Session, col

from db.corpus.study_facts import StudyFacts, study_facts
from db.errors import NotFoundError
from db.models import Article, Assessment, Claim, ConflictResolution, User
from db.read.cards import DESIGN_ORDER, blinded_documents, user_names
from db.read.pairs import NOT_RELEVANT, PairSummary, ScreenedOut, screened_out_counts
from db.review.pair_index import (
    EvidencePair,
    PairRow,
    as_evidence_pair,
    claim_pair_count,
    claim_pair_rows,
    claim_pair_rows_of,
    claim_pmids,
    voted_pairs,
)
from db.review.roles import Action, require
from db.review.verdicts import EXCLUDING_STATUSES
from db.vocab import PairState, StudyDesign, StudyVerdict


@dataclass(frozen=True)
class VoteRow:
    reviewer: str
    verdict: StudyVerdict
    quote: str
    note: str
    design: StudyDesign
    version: int
    assessment_id: int


@dataclass(frozen=True)
class StudyRow:
    """One judged study of a claim with its votes, for the drill-down and the conflict list."""

    pmid: int
    title: str
    journal: str
    year: int | None
    design: StudyDesign
    state: PairState
    verdict: StudyVerdict | None  # the pair's resolved verdict
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
    they judged (db.review.pairs.visible_assessments), and their number of hidden ones.
    """
    require(viewer, Action.READ)
    claim = session.get(Claim, claim_id)
    if claim is None:
        raise NotFoundError(f"No claim with id {claim_id}; reload the page.")
    # Where each pair stands comes from pair_state (one row a pair), not from grouping the claim's
    # votes: 1 s at 100,000 studies. Screened-out pairs are most of a big review: they are read
    # only when the filter asks for them. Votes are read for the page shown only.
    evidence_only = bool(verdicts) and NOT_RELEVANT not in verdicts
    facts = study_facts(session)
    order = STUDY_ORDER.of(str(session.get_bind().engine.url), facts)
    blinded = claim.document_id in blinded_documents(session, viewer)
    if not (verdicts or states or designs or blinded):
        total = claim_pair_count(session, claim_id)
        if total * _DENSE >= len(order.ordered):
            # Most studies are judged for this claim: walking the order from the top finds the page
            # after a few times its length, without reading the claim's 90,000 PMIDs.
            page = [as_evidence_pair(claim_id, row) for row in _walk(session, claim_id, order, offset, limit)]
            return StudyPage(total, tuple(study_rows(session, claim_id, page, facts)), 0)
    stand: dict[int, PairRow] | None = None  # PMID -> where the pair stands, when it was read
    if verdicts or states:
        rows = claim_pair_rows(session, claim_id, evidence_only=evidence_only, excluded=order.excluded)
        stand = {row[0]: row for row in rows}
        pmids = [
            pmid
            for pmid, state, verdict, _ in rows
            if (not verdicts or (verdict or "conflict") in verdicts) and (not states or state in states)
        ]
        judged = len(rows)
    else:
        # Nothing to filter on but the design (a fact): the PMIDs alone, from the index; where the
        # pairs shown stand is read for those only.
        pmids = claim_pmids(session, claim_id)
        judged = len(pmids)
    hidden = 0
    if blinded:
        assert viewer.id is not None
        voted = {pmid for _, pmid in voted_pairs(session, viewer.id, [claim_id])}
        visible = len(voted.intersection(stand) if stand is not None else voted.intersection(pmids))
        hidden = judged - visible
        pmids = [pmid for pmid in pmids if pmid in voted]
        if evidence_only:
            out = screened_out_counts(session, [claim_id], viewer.id).get(claim_id, ScreenedOut(0, 0))
            hidden += out.total - out.judged_by_viewer
    if designs:
        pmids = [pmid for pmid in pmids if pmid in facts and facts[pmid].design.value in designs]
    # Strongest designs first, then newest, then highest PMID: each study's place in that order is
    # worked out once per copy of the facts, so a page takes the few it shows, not a sort of all.
    ranks = [r for r in map(order.rank.get, pmids) if r is not None]
    shown = [order.ordered[r] for r in heapq.nsmallest(offset + limit, ranks)[offset:]]
    if stand is None:
        stand = {row[0]: row for row in claim_pair_rows_of(session, claim_id, shown)}
    page = [as_evidence_pair(claim_id, stand[pmid]) for pmid in shown if pmid in stand]
    return StudyPage(len(ranks), tuple(study_rows(session, claim_id, page, facts)), hidden)


# A claim judged for at least one study in this many is paged by walking the order (`_walk`).
_DENSE = 8


def _walk(session: Session, claim_id: int, order: StudyOrder, offset: int, limit: int) -> list[PairRow]:
    """The claim's pairs at `offset`, `limit` in the page's order: every study in that order, read
    in growing slices until enough of them turn out to be judged for the claim."""
    found: list[PairRow] = []
    start, size = 0, max(2 * (offset + limit), 64)
    while len(found) < offset + limit and start < len(order.ordered):
        chunk = order.ordered[start : start + size]
        judged = {row[0]: row for row in claim_pair_rows_of(session, claim_id, chunk)}
        found += [judged[pmid] for pmid in chunk if pmid in judged]
        start, size = start + size, size * 4
    return found[offset : offset + limit]


@dataclass(frozen=True)
class StudyOrder:
    """Derived from one copy of every study's facts: each study's place in the drill-down's order
    (strongest designs first, then newest, then highest PMID) and the studies the rule excludes."""

    facts: dict[int, StudyFacts]
    ordered: list[int]  # every study's PMID, in that order
    rank: dict[int, int]  # PMID -> its place in `ordered`
    excluded: list[int]


class StudyOrderCache:
    """A StudyOrder per database, kept while db.corpus.study_facts serves the same copy of the facts."""

    def __init__(self) -> None:
        self._kept: dict[str, StudyOrder] = {}
        self._lock = threading.Lock()

    def of(self, url: str, facts: dict[int, StudyFacts]) -> StudyOrder:
        kept = self._kept.get(url)
        if kept is not None and kept.facts is facts:
            return kept
        ordered = sorted(facts, key=lambda p: (_DESIGN_RANK[facts[p].design], -(facts[p].pub_year or 0), -p))
        excluded = [pmid for pmid, fact in facts.items() if fact.retraction_status in EXCLUDING_STATUSES]
        order = StudyOrder(facts, ordered, {pmid: n for n, pmid in enumerate(ordered)}, excluded)
        with self._lock:
            self._kept[url] = order
        return order

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()


STUDY_ORDER = StudyOrderCache()


_DESIGN_RANK = {design: rank for rank, design in enumerate(DESIGN_ORDER)}


def study_rows(
    session: Session,
    claim_id: int,
    pairs: Sequence[PairSummary | EvidencePair],
    facts: dict[int, StudyFacts],
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
    names = user_names(session)
    votes: dict[int, list[VoteRow]] = defaultdict(list)
    query = (
        select(Assessment)
        .where(col(Assessment.claim_id) == claim_id, col(Assessment.pmid).in_(pmids))
        .order_by(col(Assessment.id))
    )
    for a in session.scalars(query):
        assert a.id is not None
        votes[a.pmid].append(
            VoteRow(
                names.get(a.reviewer_id, "?"),
                StudyVerdict(a.verdict),
                a.quote,
                a.note,
                StudyDesign(a.design),
                a.version,
                a.id,
            )
        )
    reasons: dict[int, str] = {}
    resolution_query = (
        select(ConflictResolution)
        .where(col(ConflictResolution.claim_id) == claim_id, col(ConflictResolution.pmid).in_(pmids))
        .order_by(col(ConflictResolution.id))
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
                design=fact.design,
                state=p.state,
                verdict=p.verdict,
                excluded=EXCLUDING_STATUSES.get(fact.retraction_status or ""),
                retraction_status=fact.retraction_status,
                votes=tuple(votes.get(p.pmid, ())),
                resolution_reason=reasons.get(p.pmid) if p.state is PairState.RESOLVED else None,
                reopened=p.reopened,
            )
        )
    return result
