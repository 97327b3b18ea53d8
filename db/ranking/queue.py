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
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace

import numpy as np
from sqlalchemy import case, func, select
from sqlmodel import Session

from db.corpus.design import DESIGN_NOUNS, DESIGN_TIER
from db.corpus.fulltext import any_of, claim_match_scores, matching_pmids
from db.models import Assessment, AuditEvent, Claim, ConflictResolution, DesignCorrection, User
from db.ranking import embeddings
from db.ranking.corpus import keep, recall, remember
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
from db.ranking.terms import claim_terms, query_terms
from db.review.claims import get_claim
from db.review.roles import get_user
from db.vocab import EvidenceTier, StudyDesign, StudyVerdict

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
SEMANTIC_WEIGHT = 0.25  # share of the non-learned part given to embeddings when they are available
DESIGN_BONUS: dict[EvidenceTier, float] = {
    EvidenceTier.DECISIVE: 0.04,
    EvidenceTier.SUPPORTING: 0.02,
    EvidenceTier.NOT_COUNTED: 0.0,
}
RELEVANT_VERDICTS = frozenset({StudyVerdict.SUPPORTED, StudyVerdict.MIXED, StudyVerdict.UNSUPPORTED})
MAX_MATCHED_TERMS_SHOWN = 5
# After this many changed studies since the last request, labels are read again whole, not one by one.
MAX_INCREMENTAL_CHANGES = 5000
_CHUNK = 500


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
    # One row per study, decided in SQL: a claim of a large instance has ~100,000 votes.
    return _labels_of(session, claim, None)


def _labels_of(session: Session, claim: Claim, pmids: list[int] | None) -> dict[int, bool]:
    """claim_labels, of every tagged study or only of `pmids`."""
    relevant = [verdict.value for verdict in RELEVANT_VERDICTS]
    judged = func.max(case((Assessment.verdict.in_(relevant), 1), else_=0))  # type: ignore[attr-defined]
    votes = select(Assessment.pmid, judged).where(Assessment.claim_id == claim.id).group_by(Assessment.pmid)
    resolutions = (
        select(ConflictResolution.pmid, ConflictResolution.verdict)
        .where(ConflictResolution.claim_id == claim.id)
        .order_by(ConflictResolution.id)
    )
    chunks = [None] if pmids is None else [pmids[i : i + _CHUNK] for i in range(0, len(pmids), _CHUNK)]
    labels: dict[int, bool] = {}
    for chunk in chunks:
        narrowed_votes, narrowed_resolutions = votes, resolutions
        if chunk is not None:
            narrowed_votes = votes.where(Assessment.pmid.in_(chunk))  # type: ignore[attr-defined]
            narrowed_resolutions = resolutions.where(ConflictResolution.pmid.in_(chunk))  # type: ignore[attr-defined]
        labels.update((int(pmid), bool(judged)) for pmid, judged in session.execute(narrowed_votes))
        for pmid, verdict in session.execute(narrowed_resolutions):
            labels[int(pmid)] = StudyVerdict(verdict) in RELEVANT_VERDICTS  # the latest resolution wins
    return labels


def _labels_version(session: Session) -> tuple[object, ...]:
    """Changes with every audited write, decisions and resolutions included: the latest audit event.

    Its time as well as its id: SQLite may hand a rolled-back event's id to the next one.
    """
    # ORM attributes, not table columns: the session flushes a pending decision's event first.
    latest = session.execute(
        select(AuditEvent.id, AuditEvent.at).order_by(AuditEvent.id.desc()).limit(1)
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
    then = session.execute(select(AuditEvent.at).where(AuditEvent.id == mark_id)).scalar()
    if then is None or str(then) != mark_at:
        return None  # rolled back, or a restored database
    query = (
        select(AuditEvent.pmid)
        .where(AuditEvent.id > mark_id, AuditEvent.claim_id == claim.id, AuditEvent.pmid.is_not(None))  # type: ignore[union-attr,operator]
        .distinct()
        .limit(MAX_INCREMENTAL_CHANGES + 1)
    )
    changed = {int(pmid) for pmid in session.execute(query).scalars()}
    return None if len(changed) > MAX_INCREMENTAL_CHANGES else changed


def _claim_learning(session: Session, claim: Claim, corpus: Corpus, learn: bool) -> _Learned:
    """The claim's labels and model. Every decision appends an audit event with the claim and study, so
    after one the next request reads that study's labels and moves its row in the totals: retraining
    costs the decisions made since, not the claim's ~100,000 tags on a large instance."""
    key = ("learned", claim.id, learn)
    mark = _labels_version(session)
    previous = recall(session, key)
    if not isinstance(previous, _Learned) or previous.signature != corpus.signature:
        previous = None
    if previous is not None and previous.mark == mark:
        return previous
    changed = _changed_since(session, claim, previous.mark) if previous is not None else None
    if previous is None or changed is None:
        learned = _learn(session, corpus, claim_labels(session, claim), learn)
    else:
        labels = dict(previous.labels)
        fresh = _labels_of(session, claim, sorted(changed))
        for pmid in changed:
            if pmid in fresh:
                labels[pmid] = fresh[pmid]
            else:
                labels.pop(pmid, None)
        learned = _learn(session, corpus, labels, learn, previous, changed)
    learned = replace(learned, mark=mark, signature=corpus.signature)
    keep(session, key, learned)
    return learned


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
    options = options or RankingOptions()
    corpus = current_corpus(session)
    learned = _claim_learning(session, claim, corpus, options.learn)
    return _rank(session, claim, corpus, learned, exclude=set(learned.labels), top=top, options=options)


def review_queue(
    session: Session, claim_key: str, reviewer: User | str, limit: int | None = None
) -> list[RankedStudy]:
    """The reviewer's queue for a claim: the studies they have not tagged yet, in ranked order.

    Learns from every reviewer's tags on the claim (the team's knowledge); a study others tagged stays in
    this reviewer's queue, since each study gets its own votes.
    """
    claim = get_claim(session, claim_key)
    user = get_user(session, reviewer) if isinstance(reviewer, str) else reviewer
    options = RankingOptions()
    corpus = current_corpus(session)
    learned = _claim_learning(session, claim, corpus, options.learn)
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


def _lexical_scores(session: Session, corpus: Corpus, terms: tuple[str, ...]) -> np.ndarray:
    """The full-text score of every corpus row for `terms` (0 where none matched), kept until the
    articles change: on PostgreSQL ranking every match of a claim's query takes seconds at 100,000."""

    def compute() -> np.ndarray:
        lexical = np.zeros(corpus.size)
        found = claim_match_scores(session, terms)
        if found:
            rows = corpus.positions(found)
            lexical[rows] = [found[int(pmid)] for pmid in corpus.pmids[rows]]
        lexical.setflags(write=False)
        return lexical

    return remember(session, ("lexical", terms, corpus.signature), compute)


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
    lexical = _lexical_scores(session, corpus, terms)
    # Studies no term matched share the lowest standing rather than an arbitrary order among themselves.
    lexical_standing = np.where(lexical > 0, percentile(lexical), 0.0)

    model, model_standing = learned.model, learned.standing
    semantic = _semantic_scores(session, claim, corpus) if options.semantic else None

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
        bonus = _design_bonus(session, corpus).copy()
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
    matched = _matched_terms(session, display, shown, lexical_rows=lexical[order] > 0)
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
                why=_why(terms_matched, design, standing, model, similarity),
            )
        )
    return results


def _design_bonus(session: Session, corpus: Corpus) -> np.ndarray:
    """Each row's bonus for the design its publication types suggest (corrections are applied on top)."""

    def compute() -> np.ndarray:
        bonus = np.array([DESIGN_BONUS[DESIGN_TIER[design]] for design in corpus.designs], dtype=np.float64)
        bonus.setflags(write=False)
        return bonus

    return remember(session, ("design bonus", corpus.signature), compute)


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


def prepare_queues(session: Session) -> None:
    """Fill the caches every claim's queue reads: the corpus, its features once any claim has tags to
    learn from, and each claim's lexical scores and trained model (seconds at 100,000 studies, and
    on PostgreSQL ts_rank is most of it); then the first queue a reviewer opens is as fast as the next."""
    corpus = current_corpus(session)
    options = RankingOptions()
    for claim in session.execute(select(Claim).order_by(Claim.id)).scalars():
        _lexical_scores(session, corpus, query_terms(session, claim, expand=options.expand))
        _claim_learning(session, claim, corpus, options.learn)


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
