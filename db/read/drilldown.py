"""Every judged study of one claim with its votes: the Claims page's drill-down and the conflict list's rows."""

from __future__ import annotations

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
from db.review.pair_index import EvidencePair, PairRow, as_evidence_pair, claim_pair_rows, voted_pairs
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
    excluded = [pmid for pmid, fact in facts.items() if fact.retraction_status in EXCLUDING_STATUSES]
    rows = claim_pair_rows(session, claim_id, evidence_only=evidence_only, excluded=excluded)
    blinded = claim.document_id in blinded_documents(session, viewer)
    if blinded:
        assert viewer.id is not None
        voted = voted_pairs(session, viewer.id, [claim_id])
        visible = [row for row in rows if (claim_id, row[0]) in voted]
    else:
        visible = rows
    hidden = len(rows) - len(visible)
    if evidence_only and blinded:
        out = screened_out_counts(session, [claim_id], viewer.id).get(claim_id, ScreenedOut(0, 0))
        hidden += out.total - out.judged_by_viewer

    def keep(row: PairRow) -> bool:
        pmid, state, verdict, _ = row
        return (
            pmid in facts
            and (not verdicts or (verdict or "conflict") in verdicts)
            and (not designs or facts[pmid].design.value in designs)
            and (not states or state in states)
        )

    chosen = [row for row in visible if keep(row)]
    chosen.sort(key=lambda row: (_DESIGN_RANK[facts[row[0]].design], -(facts[row[0]].pub_year or 0), -row[0]))
    page = [as_evidence_pair(claim_id, row) for row in chosen[offset : offset + limit]]
    return StudyPage(len(chosen), tuple(study_rows(session, claim_id, page, facts)), hidden)


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
