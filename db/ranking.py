"""Ranked review queues: every untagged study ordered by relevance to a claim, learning from reviewers.

Three signals, each turned into a standing in (0, 1] among all studies so they can be mixed:
1. lexical: the full-text index's score for the claim's statement expanded with its editors' terms;
2. learned: naive Bayes trained on the studies reviewers already tagged for the claim (from the first
   relevant and the first not-relevant tag on), weighted more as tags accumulate;
3. semantic (optional extra): cosine similarity of stored study embeddings to the claim.
A small bonus for stronger designs puts meta-analyses and RCTs first among equally relevant studies.
Ranking orders, it never excludes: every untagged study is in the queue, and ties break by PMID.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import select
from sqlmodel import Session

from db import embeddings
from db.claims import get_claim
from db.design import DESIGN_NOUNS, DESIGN_TIER, EvidenceTier, StudyDesign
from db.fulltext import any_of, claim_match_scores, matching_pmids
from db.ranking_model import Corpus, Model, current_corpus, percentile, score, train
from db.ranking_terms import claim_terms, query_terms
from db.review_models import Assessment, Claim, ConflictResolution, DesignCorrection, StudyVerdict, User
from db.roles import get_user

log = logging.getLogger(__name__)

# How much the learned model counts against the lexical score: labels / (labels + LEARNING_HALF_WEIGHT),
# so with 20 tagged studies the two weigh the same and the model leads from then on. Trusting the model
# sooner made the judged-set benchmark worse (8: mean WSS@95 0.400, 20: 0.466): a few tags are noisy.
LEARNING_HALF_WEIGHT = 20.0
MAX_LEARNING_WEIGHT = 0.85  # the lexical score always keeps a say: it is what the editors asked for
SEMANTIC_WEIGHT = 0.25  # share of the non-learned part given to embeddings when they are available
DESIGN_BONUS: dict[EvidenceTier, float] = {
    EvidenceTier.DECISIVE: 0.04,
    EvidenceTier.SUPPORTING: 0.02,
    EvidenceTier.NOT_COUNTED: 0.0,
}
RELEVANT_VERDICTS = frozenset({StudyVerdict.SUPPORTED, StudyVerdict.MIXED, StudyVerdict.UNSUPPORTED})
MAX_MATCHED_TERMS_SHOWN = 5


@dataclass(frozen=True)
class RankedStudy:
    """One study's place in a claim's queue and the reasons for it."""

    rank: int
    pmid: int
    score: float
    design: StudyDesign
    title: str
    matched_terms: tuple[str, ...]
    lexical: float  # the full-text score (bm25 on SQLite, ts_rank on PostgreSQL); 0 when no term matched
    model: float | None  # the learned model's standing in (0, 1]; None before it can be trained
    semantic: float | None  # cosine similarity to the claim; None without the semantic extra
    why: str = field(default="")


@dataclass(frozen=True)
class RankingOptions:
    """Which stages run; the benchmark compares them, the queue uses the defaults."""

    expand: bool = True
    learn: bool = True
    semantic: bool = True
    design_bonus: bool = True


# --- what reviewers told us ----------------------------------------------------------------------------


def claim_labels(session: Session, claim: Claim) -> dict[int, bool]:
    """Each tagged study's relevance to the claim: True when any vote (or the editor's resolution) judges
    it (supported, mixed or unsupported), False when it was only screened out as not relevant."""
    labels: dict[int, bool] = {}
    for pmid, verdict in session.execute(
        select(Assessment.pmid, Assessment.verdict).where(Assessment.claim_id == claim.id)
    ):
        labels[int(pmid)] = labels.get(int(pmid), False) or StudyVerdict(verdict) in RELEVANT_VERDICTS
    resolutions = select(ConflictResolution.pmid, ConflictResolution.verdict).where(
        ConflictResolution.claim_id == claim.id
    )
    for pmid, verdict in session.execute(resolutions.order_by(ConflictResolution.id)):
        labels[int(pmid)] = StudyVerdict(verdict) in RELEVANT_VERDICTS  # the latest resolution wins
    return labels


def _tagged_by(session: Session, claim: Claim, reviewer: User) -> set[int]:
    query = select(Assessment.pmid).where(
        Assessment.claim_id == claim.id, Assessment.reviewer_id == reviewer.id
    )
    return {int(pmid) for pmid in session.execute(query).scalars()}


def _design_corrections(session: Session) -> dict[int, StudyDesign]:
    latest: dict[int, StudyDesign] = {}
    for pmid, design in session.execute(
        select(DesignCorrection.pmid, DesignCorrection.design).order_by(DesignCorrection.id)
    ):
        latest[int(pmid)] = StudyDesign(design)
    return latest


# --- the ranking ---------------------------------------------------------------------------------------


def rank_studies(
    session: Session,
    claim_key: str,
    *,
    top: int | None = None,
    options: RankingOptions | None = None,
) -> list[RankedStudy]:
    """Every study nobody has tagged for the claim, most relevant (and strongest design) first.

    `top` cuts the list after ranking; without it every untagged study is returned.
    """
    claim = get_claim(session, claim_key)
    labels = claim_labels(session, claim)
    return _rank(session, claim, labels, exclude=set(labels), top=top, options=options or RankingOptions())


def review_queue(
    session: Session, claim_key: str, reviewer: User | str, limit: int | None = None
) -> list[RankedStudy]:
    """The reviewer's queue for a claim: the studies they have not tagged yet, in ranked order.

    Learns from every reviewer's tags on the claim (the team's knowledge); a study others tagged stays in
    this reviewer's queue, since each study gets its own votes.
    """
    claim = get_claim(session, claim_key)
    user = get_user(session, reviewer) if isinstance(reviewer, str) else reviewer
    labels = claim_labels(session, claim)
    return _rank(
        session, claim, labels, exclude=_tagged_by(session, claim, user), top=limit, options=RankingOptions()
    )


def rank_with_labels(
    session: Session,
    claim_key: str,
    labels: Mapping[int, bool],
    *,
    options: RankingOptions | None = None,
    top: int | None = None,
) -> list[RankedStudy]:
    """Rank the studies not in `labels` as if reviewers had given those labels (screening simulations)."""
    claim = get_claim(session, claim_key)
    return _rank(
        session, claim, dict(labels), exclude=set(labels), top=top, options=options or RankingOptions()
    )


def _rank(
    session: Session,
    claim: Claim,
    labels: dict[int, bool],
    *,
    exclude: set[int],
    top: int | None,
    options: RankingOptions,
) -> list[RankedStudy]:
    corpus = current_corpus(session)
    if corpus.size == 0:
        return []
    terms = query_terms(session, claim, expand=options.expand)
    lexical = np.zeros(corpus.size)
    found = claim_match_scores(session, terms)
    if found:
        rows = corpus.positions(found)
        lexical[rows] = [found[int(pmid)] for pmid in corpus.pmids[rows]]
    # Studies no term matched share the lowest standing rather than an arbitrary order among themselves.
    lexical_standing = np.where(lexical > 0, percentile(lexical), 0.0)

    model = train(corpus, labels) if options.learn else None
    model_standing = percentile(score(corpus, model)) if model is not None else None
    semantic = _semantic_scores(session, claim, corpus) if options.semantic else None

    base = lexical_standing
    if semantic is not None:
        base = (1 - SEMANTIC_WEIGHT) * lexical_standing + SEMANTIC_WEIGHT * percentile(semantic)
    relevance = base
    if model_standing is not None:
        weight = min(MAX_LEARNING_WEIGHT, len(labels) / (len(labels) + LEARNING_HALF_WEIGHT))
        relevance = (1 - weight) * base + weight * model_standing

    designs = list(corpus.designs)
    corrections = _design_corrections(session)
    for row in corpus.positions(corrections):
        designs[row] = corrections[int(corpus.pmids[row])]
    bonus = np.array([DESIGN_BONUS[DESIGN_TIER[d]] for d in designs]) if options.design_bonus else 0.0
    final = relevance + bonus

    excluded = np.fromiter(exclude, dtype=np.int64, count=len(exclude))
    candidates = np.flatnonzero(~np.isin(corpus.pmids, excluded))
    order = candidates[np.lexsort((corpus.pmids[candidates], -final[candidates]))]
    if top is not None:
        order = order[: max(0, top)]
    shown = [int(corpus.pmids[row]) for row in order]
    # The editors' terms explain a match better than the statement's words, so they are listed first.
    display = tuple(dict.fromkeys((claim_terms(session, claim).all if options.expand else ()) + terms))
    matched = _matched_terms(session, display, shown, lexical_rows=lexical[order] > 0)
    results = []
    for rank, row in enumerate(order, start=1):
        pmid = int(corpus.pmids[row])
        standing = None if model_standing is None else float(model_standing[row])
        similarity = None if semantic is None else float(semantic[row])
        terms_matched = matched.get(pmid, ())
        results.append(
            RankedStudy(
                rank=rank,
                pmid=pmid,
                score=round(float(final[row]), 6),
                design=designs[row],
                title=corpus.titles[row],
                matched_terms=terms_matched,
                lexical=float(lexical[row]),
                model=standing,
                semantic=similarity,
                why=_why(terms_matched, designs[row], standing, model, similarity),
            )
        )
    return results


def _matched_terms(
    session: Session, terms: Sequence[str], pmids: list[int], lexical_rows: np.ndarray
) -> dict[int, tuple[str, ...]]:
    """Which of the query's terms each shown study matched (only studies with a lexical score can)."""
    within = [pmid for pmid, has_score in zip(pmids, lexical_rows, strict=True) if has_score]
    if not within:
        return {}
    found: dict[int, list[str]] = {}
    for term in terms:
        for pmid in matching_pmids(session, any_of([term]), within=within):
            found.setdefault(pmid, []).append(term)
    return {pmid: tuple(names) for pmid, names in found.items()}


def _why(
    matched: tuple[str, ...],
    design: StudyDesign,
    standing: float | None,
    model: Model | None,
    similarity: float | None,
) -> str:
    """The reasons for a study's place, in words: matched terms, design, model and similarity."""
    parts = []
    if matched:
        shown = ", ".join(matched[:MAX_MATCHED_TERMS_SHOWN])
        more = len(matched) - MAX_MATCHED_TERMS_SHOWN
        parts.append(f"matched {shown}" + (f" (+{more} more)" if more > 0 else ""))
    else:
        parts.append("no claim term matched")
    parts.append(f"design: {DESIGN_NOUNS[design][0]}")
    if standing is not None and model is not None:
        parts.append(
            f"model: top {max(1, round((1 - standing) * 100))}% "
            f"(learnt from {model.relevant} relevant, {model.irrelevant} not)"
        )
    if similarity is not None:
        parts.append(f"similarity {similarity:.2f}")
    return "; ".join(parts)


def _semantic_scores(session: Session, claim: Claim, corpus: Corpus) -> np.ndarray | None:
    """Cosine similarity of each study to the claim, or None when the extra or the embeddings are missing."""
    similarities = embeddings.claim_similarities(session, claim)
    if not similarities:
        return None
    values = np.zeros(corpus.size)
    rows = corpus.positions(similarities)
    values[rows] = [similarities[int(pmid)] for pmid in corpus.pmids[rows]]
    return values


def claim_query_terms(session: Session, claim_key: str) -> tuple[str, ...]:
    """The phrases the claim's lexical stage searches for (statement words and editor terms)."""
    claim = get_claim(session, claim_key)
    return query_terms(session, claim, expand=True)


__all__ = [
    "RankedStudy",
    "RankingOptions",
    "claim_labels",
    "claim_query_terms",
    "claim_terms",
    "rank_studies",
    "rank_with_labels",
    "review_queue",
]
