"""Page-oriented reads about studies: the Studies page's index, search and study page, and the
Review page's queue, study card and highlighted terms. Plain data only (see db.read.cards)."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import unquote

from sqlalchemy import func, select
from sqlmodel import Session, col

from db.corpus.authors import author_name
from db.corpus.design import explain_design
from db.corpus.fulltext import search_articles_fulltext
from db.corpus.study_facts import study_facts
from db.errors import NotFoundError
from db.models import Article, ArticleRevision, Assessment, Claim, DesignCorrection, User
from db.ranking.queue import review_queue
from db.ranking.terms import query_terms
from db.read.drilldown import VoteRow
from db.read.evidence import evidence_suggestions
from db.read.pairs import pair_summaries
from db.review.assessments import suggested_design
from db.review.evidence_prefill import Suggestion
from db.review.pairs import pair_votes
from db.review.roles import Action, require
from db.review.sources import split_sentences
from db.text import key_terms

PUBMED_URL = "https://pubmed.ncbi.nlm.nih.gov/{pmid}/"
DOI_URL = "https://doi.org/{doi}"

# --- the Studies page ------------------------------------------------------------------------------


def study_index(session: Session) -> list[dict[str, Any]]:
    """One row per article for filtering in memory: the page filters 20,000 rows faster than SQL
    could be built for every combination, and the design comes from Python (db.corpus.design)."""
    table = Article.__table__
    facts = study_facts(session)
    query = select(
        table.c.pmid,
        table.c.title,
        table.c.journal,
        table.c.pub_year,
        table.c.publication_types,
        table.c.retraction_status,
        table.c.doi,
        func.length(table.c.abstract) > 0,
    )
    rows = []
    for pmid, title, journal, year, types, status, doi, has_abstract in session.execute(query):
        design = facts[pmid].design
        rows.append(
            {
                "pmid": pmid,
                "title": title,
                "journal": journal,
                "year": year,
                "design": design.value,
                "design_label": design.label,
                "publication_types": tuple(types or ()),
                "retraction_status": status or "",
                "doi": doi or "",
                "has_abstract": bool(has_abstract),
            }
        )
    return rows


def search_pmids(session: Session, text: str, limit: int | None = None) -> list[tuple[int, float]]:
    """(pmid, score) of the articles matching search-box text, best first, from the full-text index
    (title, abstract, MeSH and keywords; db.corpus.fulltext). An empty search matches nothing.

    Text that names a stored study by PMID or DOI (see named_study) puts that study first."""
    hits = search_articles_fulltext(session, text, limit=limit)
    named = named_study(session, text)
    if named is None:
        return hits
    best = max((score for _, score in hits), default=0.0) + 1.0
    found = [(named, best), *((pmid, score) for pmid, score in hits if pmid != named)]
    return found[:limit] if limit is not None else found


_PMID_TEXT = re.compile(r"(?:pmid\s*:?\s*)?(\d{1,9})", re.IGNORECASE)
_DOI_TEXT = re.compile(
    r"(?:doi\s*:?\s*|https?://(?:dx\.)?doi\.org/|(?:dx\.)?doi\.org/)?(10\.\d{4,9}/\S+)", re.IGNORECASE
)


def named_study(session: Session, text: str) -> int | None:
    """The PMID of the stored study that search text names by identifier, else None: a PMID
    ("27797938", "PMID: 27797938") or a DOI ("10.1001/jama.2016.1234", "doi:10...", a doi.org URL).
    DOIs compare without regard to case, as the DOI system does."""
    text = text.strip()
    table = Article.__table__
    if match := _PMID_TEXT.fullmatch(text):
        query = select(table.c.pmid).where(table.c.pmid == int(match.group(1)))
    elif match := _DOI_TEXT.fullmatch(unquote(text) if "doi.org/" in text.lower() else text):
        doi = match.group(1).rstrip(".,;")  # a DOI pasted from a sentence keeps its full stop
        query = select(table.c.pmid).where(func.lower(table.c.doi) == doi.lower()).order_by(table.c.pmid)
    else:
        return None
    return session.scalars(query.limit(1)).first()


def judged_pmids_by_claim(session: Session) -> dict[int, set[int]]:
    """claim id -> PMIDs anyone judged for it (for the tagged / untagged filters)."""
    result: dict[int, set[int]] = defaultdict(set)
    for claim_id, pmid in session.execute(select(col(Assessment.claim_id), col(Assessment.pmid)).distinct()):
        result[claim_id].add(pmid)
    return dict(result)


def publication_type_counts(rows: Iterable[dict[str, Any]]) -> list[tuple[str, int]]:
    """Publication types of an index, most common first (for the filter's choices)."""
    counts: dict[str, int] = defaultdict(int)
    for row in rows:
        for kind in row["publication_types"]:
            counts[kind] += 1
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


@dataclass(frozen=True)
class ClaimVotes:
    """The votes on one study for one claim, as a viewer may see them."""

    claim_key: str
    statement: str
    state: str
    verdict: str | None
    votes: tuple[VoteRow, ...]
    hidden: int  # others' votes blind mode withholds until the viewer records their own


@dataclass(frozen=True)
class DesignChange:
    at: datetime
    by: str
    previous: str
    design: str
    reason: str


@dataclass(frozen=True)
class Revision:
    at: datetime
    change: str
    fields: tuple[str, ...]


@dataclass(frozen=True)
class StudyDetail:
    pmid: int
    title: str
    abstract: str
    journal: str
    journal_iso: str | None
    pub_date: str | None
    year: int | None
    authors: tuple[str, ...]
    doi: str | None
    pmcid: str | None
    languages: tuple[str, ...]
    publication_types: tuple[str, ...]
    mesh_terms: tuple[str, ...]
    keywords: tuple[str, ...]
    retraction_status: str | None
    notices: tuple[str, ...]
    deleted_in_pubmed: bool
    design: str
    suggested_design: str
    design_history: tuple[DesignChange, ...]
    claims: tuple[ClaimVotes, ...]
    revisions: tuple[Revision, ...]
    pubmed_url: str
    doi_url: str | None
    # The prefill's confidence and the features that decided it; 1.0 and none once a reviewer set it.
    design_confidence: float = 1.0
    design_cues: tuple[str, ...] = ()
    needs_design_confirmation: bool = False
    is_notice: bool = False
    notice_of: int | None = None


def study_detail(session: Session, viewer: User, pmid: int) -> StudyDetail:
    """Everything about one study: metadata, links, design history, and every assessment of it
    the viewer may see (blind mode hides others' votes on a claim until the viewer judged it)."""
    require(viewer, Action.READ)
    article = session.get(Article, pmid)
    if article is None:
        raise NotFoundError(f"No article with PMID {pmid} in the database; harvest or import it first.")
    facts = study_facts(session, [pmid])[pmid]
    names = dict(session.execute(select(col(User.id), col(User.name))).all())
    corrections = session.scalars(
        select(DesignCorrection).where(col(DesignCorrection.pmid) == pmid).order_by(col(DesignCorrection.id))
    )
    history = tuple(
        DesignChange(
            c.corrected_at, names.get(c.corrected_by_id, "?"), str(c.previous), str(c.design), c.reason
        )
        for c in corrections
    )
    claim_ids = list(
        session.scalars(select(col(Assessment.claim_id)).where(col(Assessment.pmid) == pmid).distinct())
    )
    summaries = pair_summaries(session, claim_ids, [pmid])
    claims = []
    for claim in session.scalars(select(Claim).where(col(Claim.id).in_(claim_ids)).order_by(col(Claim.id))):
        assert claim.id is not None
        seen = pair_votes(session, viewer, claim, pmid)
        status = next(iter(summaries.get(claim.id, [])), None)
        votes = ([seen.own] if seen.own else []) + list(seen.others)
        hidden_verdict = seen.hidden > 0  # the pair's verdict would tell the hidden votes
        claims.append(
            ClaimVotes(
                claim_key=claim.key,
                statement=claim.statement,
                state=status.state.value if status and not hidden_verdict else "hidden",
                verdict=status.verdict.value if status and status.verdict and not hidden_verdict else None,
                votes=tuple(_vote_row(v) for v in votes),
                hidden=seen.hidden,
            )
        )
    revisions = session.scalars(
        select(ArticleRevision).where(col(ArticleRevision.pmid) == pmid).order_by(col(ArticleRevision.id))
    )
    return StudyDetail(
        pmid=pmid,
        title=article.title,
        abstract=article.abstract,
        journal=article.journal,
        journal_iso=article.journal_iso,
        pub_date=article.pub_date,
        year=article.pub_year,
        authors=tuple(author_name(a) for a in article.authors or []),
        doi=article.doi,
        pmcid=article.pmcid,
        languages=tuple(article.languages or ()),
        publication_types=tuple(article.publication_types or ()),
        mesh_terms=tuple(
            m.get("descriptor", "") if isinstance(m, dict) else str(m) for m in article.mesh_headings or []
        ),
        keywords=tuple(article.keywords or ()),
        retraction_status=article.retraction_status,
        notices=tuple(
            f"{n.get('type', '')} PMID {n.get('pmid')}" if n.get("pmid") else str(n.get("type", ""))
            for n in article.notices or []
        ),
        deleted_in_pubmed=article.deleted_in_pubmed,
        design=facts.design.value,
        suggested_design=suggested_design(article).value,
        design_history=history,
        claims=tuple(claims),
        revisions=tuple(Revision(r.changed_at, r.change, tuple(r.changed_fields or ())) for r in revisions),
        pubmed_url=PUBMED_URL.format(pmid=pmid),
        doi_url=DOI_URL.format(doi=article.doi) if article.doi else None,
        design_confidence=facts.design_confidence,
        design_cues=explain_design(article) if not history else (),
        needs_design_confirmation=facts.needs_design_confirmation,
        is_notice=article.is_notice,
        notice_of=article.notice_of,
    )


def _vote_row(vote: Any) -> VoteRow:
    return VoteRow(
        reviewer=vote.reviewer,
        verdict=vote.verdict,
        quote=vote.quote,
        note=vote.note,
        design=vote.design,
        version=vote.version,
        assessment_id=vote.assessment_id,
    )


# --- the Review page -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewStudy:
    """One study as the Review page shows it to a reviewer for one claim."""

    pmid: int
    title: str
    abstract: str
    journal: str
    year: int | None
    design: str
    publication_types: tuple[str, ...]
    retraction_status: str | None
    sentences: tuple[str, ...]  # the abstract's sentences: the quotes a reviewer can pick
    own: VoteRow | None  # the viewer's own vote, when they judged it already
    others: tuple[VoteRow, ...]
    hidden: int  # others' votes withheld by blind mode
    # Evidence field -> the prefill's suggestion from the abstract (db.read.evidence), to show editable.
    suggestions: dict[str, Suggestion] = field(default_factory=dict)


def review_study(
    session: Session, viewer: User, claim_id: int, pmid: int, *, suggest: bool = True
) -> ReviewStudy:
    """The study as the Review page shows it; `suggest=False` skips reading evidence suggestions
    from the abstract (for a study already judged)."""
    claim = session.get(Claim, claim_id)
    article = session.get(Article, pmid)
    if claim is None or article is None:
        raise NotFoundError(f"No claim {claim_id} or no article with PMID {pmid}; reload the page.")
    seen = pair_votes(session, viewer, claim, pmid)
    return ReviewStudy(
        pmid=pmid,
        title=article.title,
        abstract=article.abstract,
        journal=article.journal,
        year=article.pub_year,
        design=study_facts(session, [pmid])[pmid].design.value,
        publication_types=tuple(article.publication_types or ()),
        retraction_status=article.retraction_status,
        sentences=tuple(
            s.text for s in split_sentences(article.abstract) if not s.heading or len(s.text) > 40
        ),
        own=_vote_row(seen.own) if seen.own else None,
        others=tuple(_vote_row(v) for v in seen.others),
        hidden=seen.hidden,
        suggestions=evidence_suggestions(article.title, article.abstract, claim) if suggest else {},
    )


def judged_by(session: Session, claim_id: int, reviewer_id: int) -> set[int]:
    """PMIDs this reviewer judged for this claim (their queue skips them)."""
    query = select(col(Assessment.pmid)).where(
        col(Assessment.claim_id) == claim_id, col(Assessment.reviewer_id) == reviewer_id
    )
    return set(session.scalars(query))


@dataclass(frozen=True)
class QueueOrder:
    """The next studies of a reviewer's queue for a claim, and why each is there."""

    pmids: tuple[int, ...]
    reasons: dict[int, str]


def review_order(session: Session, claim_key: str, reviewer: User, limit: int | None = None) -> QueueOrder:
    """The first `limit` studies the reviewer has not judged for the claim, most relevant and
    strongest designs first (db.ranking.queue.review_queue: full-text relevance with the claim's
    expansion terms, learning from every reviewer's tags, or in blind mode the reviewer's own). Ranking
    orders; it never drops a study."""
    ranked = review_queue(session, claim_key, reviewer, limit)
    return QueueOrder(tuple(r.pmid for r in ranked), {r.pmid: r.why for r in ranked if r.why})


def next_in_queue(order: Sequence[int], judged: Collection[int], skipped: Sequence[int], n: int) -> list[int]:
    """The next `n` studies of `order` not yet judged; skipped ones go to the back, in skip order."""
    skipped_set = set(skipped)
    picked = [p for p in order if p not in judged and p not in skipped_set][:n]
    if len(picked) < n:
        picked += [p for p in skipped if p not in judged][: n - len(picked)]
    return picked


# --- key terms and highlighting --------------------------------------------------------------------


def claim_terms(claim: Claim | Any, extra: Iterable[str] = ()) -> list[str]:
    """The key terms of a claim to highlight: content words of its statement and PICO fields
    (stems), plus `extra` phrases (e.g. the ranking module's expansion terms)."""
    return key_terms([claim.statement, claim.population, claim.outcome, claim.comparator], extra)


def claim_terms_for(session: Session, claim_id: int) -> list[str]:
    claim = session.get(Claim, claim_id)
    if claim is None:
        raise NotFoundError(f"No claim with id {claim_id}; reload the page.")
    return claim_terms(claim, _expansion_terms(session, claim))


def _expansion_terms(session: Session, claim: Claim) -> list[str]:
    # The phrases the ranking searches for (statement words and the editors' synonyms): what made
    # the study rank is what the reviewer sees marked.
    return list(query_terms(session, claim, expand=True))
