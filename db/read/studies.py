"""Page-oriented reads about studies: the Studies page's index, search and study page, and the
Review page's queue, study card and highlighted terms. Plain data only (see db.read.claims)."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session

from db.corpus.design import explain_design
from db.corpus.fulltext import search_articles_fulltext
from db.errors import NotFoundError
from db.models import Article, ArticleRevision, Assessment, Claim, DesignCorrection, User
from db.ranking.queue import review_queue
from db.ranking.terms import query_terms
from db.read.claims import VoteRow, design_label, pair_summaries, study_facts
from db.review.assessments import suggested_design
from db.review.pairs import pair_votes
from db.review.roles import Action, require
from db.review.sources import split_sentences

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
                "design_label": design_label(design),
                "publication_types": tuple(types or ()),
                "retraction_status": status or "",
                "doi": doi or "",
                "has_abstract": bool(has_abstract),
            }
        )
    return rows


def search_pmids(session: Session, text: str, limit: int | None = None) -> list[tuple[int, float]]:
    """(pmid, score) of the articles matching search-box text, best first, from the full-text index
    (title, abstract, MeSH and keywords; db.corpus.fulltext). An empty search matches nothing."""
    return search_articles_fulltext(session, text, limit=limit)


def judged_pmids_by_claim(session: Session) -> dict[int, set[int]]:
    """claim id -> PMIDs anyone judged for it (for the tagged / untagged filters)."""
    result: dict[int, set[int]] = defaultdict(set)
    for claim_id, pmid in session.execute(select(Assessment.claim_id, Assessment.pmid).distinct()):
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


def author_name(author: dict[str, Any]) -> str:
    if author.get("collective_name"):
        return str(author["collective_name"])
    last, fore = author.get("last_name") or "", author.get("fore_name") or author.get("initials") or ""
    return f"{last}, {fore}".strip(", ") if fore else last


def study_detail(session: Session, viewer: User, pmid: int) -> StudyDetail:
    """Everything about one study: metadata, links, design history, and every assessment of it
    the viewer may see (blind mode hides others' votes on a claim until the viewer judged it)."""
    require(viewer, Action.READ)
    article = session.get(Article, pmid)
    if article is None:
        raise NotFoundError(f"No article with PMID {pmid} in the database; harvest or import it first.")
    facts = study_facts(session, [pmid])[pmid]
    names = dict(session.execute(select(User.id, User.name)).all())
    corrections = session.scalars(
        select(DesignCorrection).where(DesignCorrection.pmid == pmid).order_by(DesignCorrection.id)
    )
    history = tuple(
        DesignChange(
            c.corrected_at, names.get(c.corrected_by_id, "?"), str(c.previous), str(c.design), c.reason
        )
        for c in corrections
    )
    claim_ids = list(session.scalars(select(Assessment.claim_id).where(Assessment.pmid == pmid).distinct()))
    summaries = pair_summaries(session, claim_ids, [pmid])
    claims = []
    for claim in session.scalars(select(Claim).where(Claim.id.in_(claim_ids)).order_by(Claim.id)):
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
        select(ArticleRevision).where(ArticleRevision.pmid == pmid).order_by(ArticleRevision.id)
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
        verdict=vote.verdict.value,
        quote=vote.quote,
        note=vote.note,
        design=vote.design.value,
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


def review_study(session: Session, viewer: User, claim_id: int, pmid: int) -> ReviewStudy:
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
    )


def judged_by(session: Session, claim_id: int, reviewer_id: int) -> set[int]:
    """PMIDs this reviewer judged for this claim (their queue skips them)."""
    query = select(Assessment.pmid).where(
        Assessment.claim_id == claim_id, Assessment.reviewer_id == reviewer_id
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
    expansion terms, learning from every reviewer's tags). Ranking orders; it never drops a study."""
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

# Words too common in the claims to mark: every claim is about ketamine, treatments and time spans.
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "been",
        "being",
        "but",
        "by",
        "can",
        "could",
        "for",
        "from",
        "has",
        "have",
        "having",
        "help",
        "helps",
        "helping",
        "how",
        "in",
        "into",
        "is",
        "it",
        "its",
        "may",
        "might",
        "more",
        "most",
        "of",
        "on",
        "or",
        "other",
        "others",
        "over",
        "people",
        "person",
        "patients",
        "s",
        "such",
        "than",
        "that",
        "the",
        "their",
        "them",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "under",
        "unlike",
        "up",
        "use",
        "used",
        "using",
        "very",
        "was",
        "were",
        "what",
        "when",
        "which",
        "while",
        "who",
        "will",
        "with",
        "within",
        "without",
        "would",
        "ketamine",
        "ketamine's",
        "therapy",
        "treatment",
        "treatments",
        "days",
        "hours",
        "weeks",
        "months",
        "years",
    ]
)
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]{2,}")
_SUFFIXES = [
    "ations",
    "ation",
    "ings",
    "ing",
    "ness",
    "ions",
    "ion",
    "ives",
    "ive",
    "ies",
    "ied",
    "es",
    "ed",
    "ly",
    "s",
]  # longest first


def stem(word: str) -> str:
    """A crude prefix stem, so 'depressive' and 'depression' both match 'depress'."""
    word = word.lower().strip("'-")
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def claim_terms(claim: Claim | Any, extra: Iterable[str] = ()) -> list[str]:
    """The key terms of a claim to highlight: content words of its statement and PICO fields
    (stems), plus `extra` phrases (e.g. the ranking module's expansion terms)."""
    texts = [claim.statement, claim.population, claim.outcome, claim.comparator]
    stems: dict[str, None] = {}
    for text in texts:
        for word in _WORD.findall(text or ""):
            if word.lower() in _STOPWORDS:
                continue
            stems.setdefault(stem(word))
    for phrase in extra:
        cleaned = " ".join(phrase.lower().split())
        if cleaned and cleaned not in _STOPWORDS:
            stems.setdefault(cleaned)
    return [s for s in stems if len(s) >= 3]


def claim_terms_for(session: Session, claim_id: int) -> list[str]:
    claim = session.get(Claim, claim_id)
    if claim is None:
        raise NotFoundError(f"No claim with id {claim_id}; reload the page.")
    return claim_terms(claim, _expansion_terms(session, claim))


def _expansion_terms(session: Session, claim: Claim) -> list[str]:
    # The phrases the ranking searches for (statement words and the editors' synonyms): what made
    # the study rank is what the reviewer sees marked.
    return list(query_terms(session, claim, expand=True))


def term_spans(text: str, terms: Sequence[str]) -> list[tuple[int, int]]:
    """Non-overlapping (start, end) spans of `text` where a term starts a word (case-insensitive);
    a term matches the whole word it begins ('depress' marks 'depression')."""
    if not terms or not text:
        return []
    ordered = sorted({t for t in terms if t}, key=len, reverse=True)
    pattern = re.compile(r"\b(?:" + "|".join(re.escape(t) for t in ordered) + r")[\w'-]*", re.IGNORECASE)
    return [(m.start(), m.end()) for m in pattern.finditer(text)]
