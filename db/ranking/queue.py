"""Ranked review queues: every untagged study ordered by relevance to a claim, learning from reviewers.

Three signals, each turned into a standing in (0, 1] among all studies so they can be mixed:
1. lexical: the full-text index's score for the claim's statement expanded with its editors' terms;
2. learned: naive Bayes trained on the studies reviewers already tagged for the claim (from the first
   relevant and the first not-relevant tag on), weighted more as tags of both kinds accumulate. It is
   mixed in as a score, not a rank: put on a standing's scale (mean and spread), so a study the model
   is sure of moves further than one it barely prefers;
3. semantic (optional extra): cosine similarity of stored study embeddings to the claim.
A small bonus for stronger designs puts meta-analyses and RCTs first among equally relevant studies.
Ranking orders, it never excludes: every untagged study is in the queue, and ties break by PMID.
Publication notices (retractions, errata, ...) are not studies and are never queued.

What does not change between two requests is kept with the corpus (db.ranking.corpus): a claim's
lexical scores until the articles or its terms change, its labels and naive Bayes' counts until the
next audited write (every decision appends an audit event naming the claim and the study). The first
request after a decision re-reads only the studies decided since and moves their rows in the counts;
the requests after it reuse the model. prepare_queues fills all of it ahead (dashboard start).
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace

import numpy as np
from sqlalchemy import case, func, select
from sqlmodel import Session, col

from db.chunks import chunked
from db.corpus.design import DESIGN_TIER
from db.models import Assessment, AuditEvent, Claim, ConflictResolution, DesignCorrection, User
from db.ranking.corpus import PERSONAL_CACHE_SIZE, keep, recall
from db.ranking.model import (
    ClassTotals,
    Corpus,
    Model,
    can_train,
    class_totals,
    corpus_features,
    current_corpus,
    model_from_totals,
    percentile,
    score,
    standardised,
    update_totals,
)
from db.ranking.query import PRF_WEIGHT, feedback_standing
from db.ranking.signals import (
    DESIGN_BONUS,
    design_bonus,
    lexical_scores,
    matched_terms,
    semantic_scores,
    why,
)
from db.ranking.terms import claim_terms, has_term_list, query_terms
from db.review.claims import get_claim
from db.review.pairs import is_blinded
from db.review.roles import get_user
from db.vocab import StudyDesign, StudyVerdict

log = logging.getLogger(__name__)

# How much the learned model counts against the lexical score: n / (n + LEARNING_HALF_WEIGHT), where n is
# twice the tags of the rarer kind (relevant or not): naive Bayes contrasts the two kinds, and learns
# no more than the rarer one tells it (30 relevant tags and 1 not-relevant one say little about what
# "not relevant" looks like). With 10 of each the two signals weigh the same; balanced tags count as
# all tags did before. Trusting the model sooner made the judged-set benchmark worse (8: mean WSS@95
# 0.400, 20: 0.466, counting all tags and mixing by rank); bench/README.md has the measurements.
LEARNING_HALF_WEIGHT = 20.0
MAX_LEARNING_WEIGHT = 0.85  # the lexical score always keeps a say: it is what the editors asked for
STANDING_SPREAD = 1 / math.sqrt(12)  # standard deviation of standings spread evenly over (0, 1]
# Share of the non-learned part given to embeddings when they are available, for a claim without a term
# list only: on bench/judged_claims.json they lift new claims (mean AP 0.618 to 0.650) but pull the seed
# claims' hand-written search down (0.841 to 0.806); the held-out set agreed (0.283 to 0.303, 0.488 to 0.412).
SEMANTIC_WEIGHT = 0.25
RELEVANT_VERDICTS = frozenset({StudyVerdict.SUPPORTED, StudyVerdict.MIXED, StudyVerdict.UNSUPPORTED})
# After this many changed studies since the last request, labels are read again whole, not one by one.
MAX_INCREMENTAL_CHANGES = 5000


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
    # A new claim's pseudo-relevance feedback starts from the decisions made (db.ranking.query); with
    # `learn` only, since the benchmark's queue before any tag has none.
    decisions: bool = True


# --- what reviewers told us ----------------------------------------------------------------------------


def claim_labels(session: Session, claim: Claim, reviewer: User | None = None) -> dict[int, bool]:
    """Each tagged study's relevance to the claim: True when any vote (or the editor's resolution) judges
    it (supported, mixed or unsupported), False when it was only screened out as not relevant.

    With `reviewer`, that reviewer's own votes alone (what a queue in blind mode may learn from)."""
    # One row per study, decided in SQL: a claim of a large instance has ~100,000 votes.
    return _labels_of(session, claim, None, reviewer)


def _labels_of(
    session: Session, claim: Claim, pmids: list[int] | None, reviewer: User | None = None
) -> dict[int, bool]:
    """claim_labels, of every tagged study or only of `pmids`; of `reviewer`'s votes alone when given."""
    relevant = [verdict.value for verdict in RELEVANT_VERDICTS]
    judged = func.max(case((col(Assessment.verdict).in_(relevant), 1), else_=0))
    votes = (
        select(col(Assessment.pmid), judged)
        .where(col(Assessment.claim_id) == claim.id)
        .group_by(col(Assessment.pmid))
    )
    if reviewer is not None:
        votes = votes.where(col(Assessment.reviewer_id) == reviewer.id)
    resolutions = (
        select(col(ConflictResolution.pmid), col(ConflictResolution.verdict))
        .where(col(ConflictResolution.claim_id) == claim.id)
        .order_by(col(ConflictResolution.id))
    )
    chunks: list[list[int] | None] = [None] if pmids is None else list(chunked(pmids))
    labels: dict[int, bool] = {}
    for chunk in chunks:
        narrowed_votes, narrowed_resolutions = votes, resolutions
        if chunk is not None:
            narrowed_votes = votes.where(col(Assessment.pmid).in_(chunk))
            narrowed_resolutions = resolutions.where(col(ConflictResolution.pmid).in_(chunk))
        labels.update((int(pmid), bool(judged)) for pmid, judged in session.execute(narrowed_votes))
        if reviewer is not None:
            continue  # an editor's resolution weighs others' votes: not the reviewer's own knowledge
        for pmid, verdict in session.execute(narrowed_resolutions):
            labels[int(pmid)] = StudyVerdict(verdict) in RELEVANT_VERDICTS  # the latest resolution wins
    return labels


def _labels_version(session: Session) -> tuple[object, ...]:
    """Changes with every audited write, decisions and resolutions included: the latest audit event.

    Its time as well as its id: SQLite may hand a rolled-back event's id to the next one.
    """
    # ORM attributes, not table columns: the session flushes a pending decision's event first.
    latest = session.execute(
        select(col(AuditEvent.id), col(AuditEvent.at)).order_by(col(AuditEvent.id).desc()).limit(1)
    ).first()
    return (None, None) if latest is None else (int(latest[0]), str(latest[1]))


@dataclass(frozen=True)
class _Learned:
    """A claim's labels and what was learnt from them, as of one audit event and corpus version."""

    labels: dict[int, bool]
    model: Model | None = None
    scores: np.ndarray | None = None  # the model's log-odds per corpus row
    standing: np.ndarray | None = None  # the same as a standing in (0, 1], for the explanation
    totals: ClassTotals | None = None  # naive Bayes' counts, brought up to date decision by decision
    mark: tuple[object, ...] = (None, None)  # _labels_version when these labels were read
    signature: tuple[object, ...] = ()  # the corpus they were learnt on


def _learn(
    session: Session,
    corpus: Corpus,
    labels: dict[int, bool],
    learn: bool,
    previous: _Learned | None = None,
    changed: set[int] | None = None,
) -> _Learned:
    """Train on `labels`; from `previous`'s totals when given (only the `changed` PMIDs' rows moved)."""
    if not learn:
        return _Learned(labels)
    if previous is not None and previous.totals is not None and changed is not None:
        features = corpus_features(session, corpus)
        moves = {pmid: (previous.labels.get(pmid), labels.get(pmid)) for pmid in changed}
        totals = update_totals(previous.totals, corpus, features, moves)
    elif can_train(corpus, labels):
        features = corpus_features(session, corpus)
        totals = class_totals(corpus, features, labels)
    else:
        return _Learned(labels)
    model = model_from_totals(totals)
    if model is None:
        return _Learned(labels, totals=totals)
    scores = score(features, model)
    return _Learned(labels, model, scores, percentile(scores), totals)


def _changed_since(session: Session, claim: Claim, mark: tuple[object, ...]) -> set[int] | None:
    """The studies whose labels for the claim may have changed since the audit event `mark`, or None
    when that cannot be told (the event is gone, or too much happened) and all labels must be read."""
    mark_id, mark_at = mark
    if mark_id is None:
        return None
    then = session.execute(select(col(AuditEvent.at)).where(col(AuditEvent.id) == mark_id)).scalar()
    if then is None or str(then) != mark_at:
        return None  # rolled back, or a restored database
    query = (
        select(col(AuditEvent.pmid))
        .where(
            col(AuditEvent.id) > mark_id,
            col(AuditEvent.claim_id) == claim.id,
            col(AuditEvent.pmid).is_not(None),
        )
        .distinct()
        .limit(MAX_INCREMENTAL_CHANGES + 1)
    )
    changed = {int(pmid) for pmid in session.execute(query).scalars()}
    return None if len(changed) > MAX_INCREMENTAL_CHANGES else changed


def _claim_learning(
    session: Session, claim: Claim, corpus: Corpus, learn: bool, reviewer: User | None = None
) -> _Learned:
    """The claim's labels and model (from `reviewer`'s own votes alone when given). Every decision
    appends an audit event with the claim and study, so after one the next request reads that study's
    labels and moves its row in the totals: retraining costs the decisions made since, not the claim's
    ~100,000 tags on a large instance."""
    key = ("learned", claim.id, learn, None if reviewer is None else reviewer.id)
    mark = _labels_version(session)
    previous = recall(session, key)
    if not isinstance(previous, _Learned) or previous.signature != corpus.signature:
        previous = None
    if previous is not None and previous.mark == mark:
        return previous
    changed = _changed_since(session, claim, previous.mark) if previous is not None else None
    if previous is None or changed is None:
        learned = _learn(session, corpus, claim_labels(session, claim, reviewer), learn)
    else:
        labels = dict(previous.labels)
        fresh = _labels_of(session, claim, sorted(changed), reviewer)
        for pmid in changed:
            if pmid in fresh:
                labels[pmid] = fresh[pmid]
            else:
                labels.pop(pmid, None)
        learned = _learn(session, corpus, labels, learn, previous, changed)
    learned = replace(learned, mark=mark, signature=corpus.signature)
    keep(session, key, learned, personal=reviewer is not None)
    return learned


def _tagged_by(session: Session, claim: Claim, reviewer: User) -> set[int]:
    query = select(col(Assessment.pmid)).where(
        col(Assessment.claim_id) == claim.id, col(Assessment.reviewer_id) == reviewer.id
    )
    return {int(pmid) for pmid in session.execute(query).scalars()}


def _design_corrections(session: Session) -> dict[int, StudyDesign]:
    latest: dict[int, StudyDesign] = {}
    for pmid, design in session.execute(
        select(col(DesignCorrection.pmid), col(DesignCorrection.design)).order_by(col(DesignCorrection.id))
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
    options = options or RankingOptions()
    corpus = current_corpus(session)
    learned = _claim_learning(session, claim, corpus, options.learn)
    return _rank(session, claim, corpus, learned, exclude=set(learned.labels), top=top, options=options)


def review_queue(
    session: Session, claim_key: str, reviewer: User | str, limit: int | None = None
) -> list[RankedStudy]:
    """The reviewer's queue for a claim: the studies they have not tagged yet, in ranked order.

    Learns from every reviewer's tags on the claim (the team's knowledge), except in blind mode: there a
    reviewer may not see others' votes on studies they have not judged, and a queue taught by those votes
    would show them (a study rises because a colleague judged its neighbours relevant), so it learns from
    the reviewer's own votes alone. A study others tagged stays in this reviewer's queue, since each study
    gets its own votes.
    """
    claim = get_claim(session, claim_key)
    user = get_user(session, reviewer) if isinstance(reviewer, str) else reviewer
    options = RankingOptions()
    corpus = current_corpus(session)
    learner = user if is_blinded(session, user, claim) else None
    learned = _claim_learning(session, claim, corpus, options.learn, learner)
    return _rank(
        session, claim, corpus, learned, exclude=_tagged_by(session, claim, user), top=limit, options=options
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
    options = options or RankingOptions()
    corpus = current_corpus(session)
    learned = _learn(session, corpus, dict(labels), options.learn)  # no cache: labels change per call
    return _rank(session, claim, corpus, learned, exclude=set(labels), top=top, options=options)


def _rank(
    session: Session,
    claim: Claim,
    corpus: Corpus,
    learned: _Learned,
    *,
    exclude: set[int],
    top: int | None,
    options: RankingOptions,
) -> list[RankedStudy]:
    if corpus.size == 0:
        return []
    terms = query_terms(session, claim, expand=options.expand)
    listed = has_term_list(session, claim)
    lexical = lexical_scores(session, corpus, terms)
    # Studies no term matched share the lowest standing rather than an arbitrary order among themselves.
    lexical_standing = np.where(lexical > 0, percentile(lexical), 0.0)
    if options.expand and not listed:
        # A claim without a term list: its first search's best studies say which words it goes by.
        decisions = learned.labels if options.learn and options.decisions else None
        feedback = feedback_standing(session, corpus, lexical_standing, ("claim", terms), decisions)
        if feedback is not None:
            lexical_standing = (lexical_standing + PRF_WEIGHT * feedback) / (1 + PRF_WEIGHT)

    model, model_standing = learned.model, learned.standing
    semantic = semantic_scores(session, claim, corpus) if options.semantic and not listed else None

    base = lexical_standing
    if semantic is not None:
        base = (1 - SEMANTIC_WEIGHT) * lexical_standing + SEMANTIC_WEIGHT * percentile(semantic)
    relevance = base
    if model is not None and learned.scores is not None:
        evidence = 2 * min(model.relevant, model.irrelevant)
        weight = min(MAX_LEARNING_WEIGHT, evidence / (evidence + LEARNING_HALF_WEIGHT))
        # The model's log-odds on the base standing's scale (its mean and spread; that of evenly spread
        # standings when every study stands equal), not its rank: how sure the model is counts too.
        spread = float(base.std()) or STANDING_SPREAD
        learnt = base.mean() + standardised(learned.scores) * spread
        relevance = (1 - weight) * base + weight * learnt

    corrections = _design_corrections(session)
    final = relevance
    if options.design_bonus:
        bonus = design_bonus(session, corpus).copy()
        rows = corpus.positions(corrections)
        bonus[rows] = [DESIGN_BONUS[DESIGN_TIER[corrections[int(pmid)]]] for pmid in corpus.pmids[rows]]
        final = relevance + bonus

    excluded = np.fromiter(exclude, dtype=np.int64, count=len(exclude))
    candidates = np.flatnonzero(~np.isin(corpus.pmids, excluded) & ~corpus.notices)
    order = candidates[np.lexsort((corpus.pmids[candidates], -final[candidates]))]
    if top is not None:
        order = order[: max(0, top)]
    shown = [int(corpus.pmids[row]) for row in order]
    # The editors' terms explain a match better than the statement's words, so they are listed first.
    display = tuple(dict.fromkeys((claim_terms(session, claim).all if options.expand else ()) + terms))
    matched = matched_terms(session, display, shown, lexical_rows=lexical[order] > 0)
    results = []
    for rank, row in enumerate(order, start=1):
        pmid = int(corpus.pmids[row])
        design = corrections.get(pmid, corpus.designs[row])
        standing = None if model_standing is None else float(model_standing[row])
        similarity = None if semantic is None else float(semantic[row])
        terms_matched = matched.get(pmid, ())
        results.append(
            RankedStudy(
                rank=rank,
                pmid=pmid,
                score=round(float(final[row]), 6),
                design=design,
                title=corpus.titles[row],
                matched_terms=terms_matched,
                lexical=float(lexical[row]),
                model=standing,
                semantic=similarity,
                why=why(terms_matched, design, standing, model, similarity),
            )
        )
    return results


def prepare_queues(session: Session) -> None:
    """Fill the caches every claim's queue reads: the corpus, its features once any claim has tags to
    learn from, and each claim's lexical scores and trained model, the team's and, in blind mode, those of
    the reviewers who voted last (as many as are kept: PERSONAL_CACHE_SIZE) (seconds at 100,000 studies,
    and on PostgreSQL ts_rank is most of it); then the first queue a reviewer opens is as fast as the next."""
    corpus = current_corpus(session)
    options = RankingOptions()
    claims = {claim.id: claim for claim in session.execute(select(Claim).order_by(col(Claim.id))).scalars()}
    for claim in claims.values():
        lexical_scores(session, corpus, query_terms(session, claim, expand=options.expand))
        _claim_learning(session, claim, corpus, options.learn)
    # The (claim, reviewer) pairs with the latest votes, oldest first, so the latest stay kept longest.
    latest = func.max(col(Assessment.id))
    recent = (
        select(col(Assessment.claim_id), col(Assessment.reviewer_id))
        .group_by(col(Assessment.claim_id), col(Assessment.reviewer_id))
        .order_by(latest.desc())
        .limit(PERSONAL_CACHE_SIZE)
    )
    for claim_id, reviewer_id in reversed(session.execute(recent).all()):
        claim, reviewer = claims.get(claim_id), session.get(User, reviewer_id)
        if claim is not None and reviewer is not None and is_blinded(session, reviewer, claim):
            _claim_learning(session, claim, corpus, options.learn, reviewer)


def warm_review_queues(session_factory: Callable[[], AbstractContextManager[Session]]) -> threading.Thread:
    """prepare_queues in a background thread (at dashboard start); errors are logged, not raised.

    `session_factory` opens a session, e.g. `functools.partial(db.engine.open_session, url)`.
    """

    def prepare() -> None:
        try:
            with session_factory() as session:
                prepare_queues(session)
        except Exception:  # a warm-up must never take the app down; the first queue then fills them
            log.exception("Preparing the review queues in the background failed")

    thread = threading.Thread(target=prepare, name="review-queue-warmup", daemon=True)
    thread.start()
    return thread


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
    "prepare_queues",
    "rank_studies",
    "rank_with_labels",
    "review_queue",
    "warm_review_queues",
]
