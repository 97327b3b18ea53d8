"""Page-oriented reads for the dashboard: claims, evidence meters, conflicts, overview, audit.

Everything here returns plain dataclasses (strings, numbers, tuples) so Streamlit's cache_data can
pickle it, and reads in bulk: one query per table, never one per study. `evidence_by_claim`
computes what db.review.pairs.claim_evidence does for many claims at once (tests/test_pages_data.py
checks that the two agree). The claim cards read each pair's state from db.review.pair_index and count
the evidence for the verdict rule (db.review.verdicts.outline_verdict) rather than list it; tests/
test_pair_state.py checks them against a plain recomputation from the votes.
"""

from __future__ import annotations

import re
import threading
from bisect import insort
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from operator import attrgetter
from typing import Any

from sqlalchemy import (
    String,
    and_,
    case,
    exists,
    func,
    literal,
    or_,
    select,
    text,
    tuple_,
    type_coerce,
    union,
)
from sqlmodel import Session

from db.chunks import chunked
from db.clock import utcnow
from db.corpus.articles import corpus_summary
from db.corpus.design import DESIGN_NOUNS, DESIGN_TIER
from db.corpus.study_facts import StudyFacts, facts_signature, study_facts
from db.errors import NotFoundError
from db.models import (
    Article,
    Assessment,
    AuditEvent,
    Claim,
    ConflictResolution,
    HarvestRun,
    SignOff,
    SourceDocument,
    User,
)
from db.review.claims import list_claims
from db.review.pair_index import (
    EvidencePair,
    PairRow,
    as_evidence_pair,
    claim_pair_rows,
    evidence_pairs,
    evidence_pairs_of,
    screened_out_tally,
    voted_pairs,
)
from db.review.pairs import votes_signature
from db.review.roles import Action, can, require
from db.review.signoff import describe_changes
from db.review.verdicts import (
    EXCLUDING_STATUSES,
    ClaimVerdictResult,
    DesignScope,
    EvidenceCounts,
    ExcludedStudy,
    StudyEvidence,
    Tally,
    VerdictOutline,
    evidence_snapshot,
    outline_verdict,
    snapshot_fingerprint,
)
from db.text import content_words
from db.vocab import AuditAction, PairState, RunStatus, StudyDesign, StudyVerdict

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


# --- pairs and evidence in bulk --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PairSummary:
    """One judged (claim, study) pair: its state and resolved verdict, as db.review.pairs.pair_statuses says."""

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
        for chunk in chunked(pmids):
            query = select(Assessment).where(Assessment.claim_id == claim_id, Assessment.pmid.in_(chunk))
            for assessment in session.scalars(query):
                found[(claim_id, assessment.pmid)].append(assessment)
    return {key: votes_signature(rows) for key, rows in found.items()}


def evidence_by_claim(
    session: Session, claim_ids: Collection[int] | None = None
) -> dict[int, list[StudyEvidence]]:
    """claim id -> what db.review.pairs.claim_evidence returns for it, for many claims at once."""
    pairs = pair_summaries(session, claim_ids)
    facts = study_facts(session, {p.pmid for rows in pairs.values() for p in rows})
    return {claim_id: _evidence(rows, facts) for claim_id, rows in pairs.items()}


def _evidence(
    pairs: Iterable[PairSummary | EvidencePair], facts: dict[int, StudyFacts]
) -> list[StudyEvidence]:
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

    Blind mode (db.review.pairs.is_blinded) shows a blinded reviewer the verdicts only of the studies they
    judged themselves, here as in db.review.pairs.visible_assessments: their meter and verdict are computed
    from those studies, and the rest are counted as hidden.

    Reads the pairs from db.review.pair_index (kept by every write) and keeps the cards per process until
    the next write (see `_read_mark`), and after a write reads again only the claims whose pairs
    changed (see `_summary_evidence`): a large review's cards take a few seconds to derive.
    """
    require(viewer, Action.READ)
    blind_documents = _blind_documents(session, viewer)
    scope = DesignScope(scope)
    # Cards differ between viewers only where blind mode applies to them.
    view = (document_id, scope, viewer.id if blind_documents else None, frozenset(blind_documents))
    key = str(session.get_bind().url)
    mark = _read_mark(session)
    signature = mark.cards
    if signature is not None:
        cached = _CARDS.get(key)
        if cached is not None and cached[0] == signature and view in cached[1]:
            return list(cached[1][view])
    cards = _claim_cards(session, viewer, document_id, scope, blind_documents, mark)
    if signature is not None:
        with _CARDS_LOCK:
            cached = _CARDS.get(key)
            views = cached[1] if cached is not None and cached[0] == signature else {}
            if len(views) >= _CARDS_VIEWS:
                views = {}
            views[view] = cards
            _CARDS[key] = (signature, views)
    return list(cards)


# Cards per database, with the signature they were read at and per view (document, scope, blind
# viewer); and each claim's evidence everyone sees, which every view after a write starts from.
# Reading and counting 170,000 evidence pairs takes a second; a claim's share of them, a tenth of
# that; the signature, milliseconds.
_CARDS: dict[str, tuple[tuple[Any, ...], dict[Any, list[ClaimCard]]]] = {}
_CARDS_LOCK = threading.Lock()
_CARDS_VIEWS = 64
_EVIDENCE: dict[str, _SummaryEvidence] = {}

# Audit actions that change a claim's pairs (db.review.pair_index): each such event names its claim.
_PAIR_ACTIONS = (
    AuditAction.ASSESSMENT_RECORDED,
    AuditAction.ASSESSMENT_CHANGED,
    AuditAction.ASSESSMENT_MOVED,
    AuditAction.CONFLICT_RESOLVED,
    AuditAction.CLAIM_MERGED,
)


@dataclass
class _ClaimEvidence:
    """One claim's evidence pairs as everyone sees them (no blind mode), counted for the rule."""

    pairs: list[EvidencePair]  # by PMID
    screened_out: int
    counts: EvidenceCounts
    progress: dict[str, int]
    conflicts: int
    # (fingerprint, snapshot) of the evidence a sign-off is compared with, worked out once.
    sealed: tuple[str, list[dict[str, object]]] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class _SummaryEvidence:
    """Every active claim's evidence, and what it was read at (see `_read_mark`)."""

    claims: dict[int, _ClaimEvidence]
    excluded: list[int]  # studies the rule excludes (retracted, ...)
    facts: tuple[Any, ...]  # db.corpus.study_facts.facts_signature: designs and standings
    audit: tuple[int, str] | None  # the newest audit event (id, time) every claim reflects


@dataclass(frozen=True)
class _ReadMark:
    """Where a read of the summary stands.

    `cards`: the signature whole views are cached under, or None (not to be cached).
    `audit`: the newest audit event (id, time) when every event up to it is settled (committed,
    none still in flight below it), so the claims' evidence may be kept under it; else None.
    `facts`: the study facts' signature: when it moves, every claim is read again.
    """

    cards: tuple[Any, ...] | None
    audit: tuple[int, str] | None
    facts: tuple[Any, ...]


def _summary_evidence(session: Session, mark: _ReadMark) -> _SummaryEvidence:
    """Every active claim's evidence, from the kept copy brought up to date with the writes since.

    Every write that changes a claim's pairs appends an audit event naming the claim and, but for
    a merge, the study (votes, resolutions): the pairs of those events are read again and put in
    place of the copy's; a claim with many changed pairs, or a merge, is read whole; a change of
    any study's design or standing (harvests, corrections) reads every claim. The copy is kept
    only at a settled mark (`_ReadMark.audit`); otherwise the result is served once.
    """
    key = str(session.get_bind().url)
    claim_ids = [c.id for c in list_claims(session) if c.id is not None]
    # Every study's facts (cached per process) give the excluded studies without a query.
    facts = study_facts(session)
    cached = _EVIDENCE.get(key)
    changes: dict[int, set[int] | None] | None = None  # None: every claim read whole
    if cached is not None and cached.facts == mark.facts and cached.audit is not None:
        upto = mark.audit[0] if mark.audit is not None else None
        changes = _pairs_changed_since(session, cached.audit, upto)
    if cached is None or changes is None:
        excluded = [pmid for pmid, fact in facts.items() if fact.retraction_status in EXCLUDING_STATUSES]
        claims = _read_claims(session, claim_ids, facts, excluded)
    else:
        excluded = cached.excluded
        whole = [c for c in claim_ids if c not in cached.claims or (c in changes and changes[c] is None)]
        patched = [c for c in claim_ids if c not in whole and changes.get(c)]
        claims = {c: cached.claims[c] for c in claim_ids if c not in whole and c not in patched}
        claims |= _read_claims(session, whole, facts, excluded)
        claims |= _patch_claims(session, {c: cached.claims[c] for c in patched}, changes, facts, excluded)
    summary = _SummaryEvidence(claims, excluded, mark.facts, mark.audit)
    if mark.audit is not None and mark.cards is not None:
        with _CARDS_LOCK:
            _EVIDENCE[key] = summary
    return summary


def warm_summary(session: Session) -> None:
    """Read every claim's evidence into the per-process copy the summary starts from (a few seconds
    at 100,000 studies), so that the first Overview or Claims page after a start does not wait."""
    _summary_evidence(session, _read_mark(session))


def _read_claims(
    session: Session, claim_ids: list[int], facts: dict[int, StudyFacts], excluded: list[int]
) -> dict[int, _ClaimEvidence]:
    if not claim_ids:
        return {}
    pairs = evidence_pairs(session, claim_ids, excluded)
    screened = screened_out_tally(session, claim_ids, excluded)
    return {
        claim_id: _claim_evidence(pairs.get(claim_id, []), screened.get(claim_id, 0), facts)
        for claim_id in claim_ids
    }


def _patch_claims(
    session: Session,
    kept: dict[int, _ClaimEvidence],
    changes: dict[int, set[int] | None],
    facts: dict[int, StudyFacts],
    excluded: list[int],
) -> dict[int, _ClaimEvidence]:
    """The kept claims' evidence with the pairs of the changed studies read again."""
    if not kept:
        return {}
    # The screened-out pairs are counted, not listed: counted again, from an index.
    screened = screened_out_tally(session, list(kept), excluded)
    claims = {}
    for claim_id, old in kept.items():
        pmids = changes[claim_id]
        assert pmids is not None
        rows = [p for p in old.pairs if p.pmid not in pmids]
        for pair in evidence_pairs_of(session, claim_id, pmids, excluded):
            insort(rows, pair, key=_BY_PMID)
        claims[claim_id] = _claim_evidence(rows, screened.get(claim_id, 0), facts)
    return claims


_BY_PMID = attrgetter("pmid")


def _claim_evidence(
    rows: list[EvidencePair], screened_out: int, facts: dict[int, StudyFacts]
) -> _ClaimEvidence:
    counts = _evidence_counts(rows, facts, screened_out)
    return _ClaimEvidence(rows, screened_out, counts, _progress(rows, screened_out), _conflicts(rows))


# A claim with more changed studies than this since the kept copy is read whole.
_PATCH_LIMIT = 2_000


def _pairs_changed_since(
    session: Session, since: tuple[int, str], upto: int | None
) -> dict[int, set[int] | None] | None:
    """claim id -> the studies whose pairs may have changed after audit event `since` (up to event
    `upto`), None for a claim to read whole; or None when that cannot be told (the event is gone:
    a restored database) and every claim is read whole."""
    audit = AuditEvent.__table__
    then = session.execute(select(audit.c.at).where(audit.c.id == since[0])).scalar()
    if then is None or str(then) != since[1]:
        return None
    query = (
        select(audit.c.claim_id, audit.c.pmid)
        .where(audit.c.id > since[0], audit.c.action.in_([a.value for a in _PAIR_ACTIONS]))
        .distinct()
        .limit(_PATCH_LIMIT * 4 + 1)
    )
    if upto is not None:
        query = query.where(audit.c.id <= upto)
    rows = session.execute(query).all()
    if len(rows) > _PATCH_LIMIT * 4:
        return None
    changes: dict[int, set[int] | None] = {}
    for claim_id, pmid in rows:
        if claim_id is None:
            return None
        known = changes.setdefault(claim_id, set())
        if known is None:
            continue
        if pmid is None:  # a merge: its events name the claims only
            changes[claim_id] = None
        else:
            known.add(pmid)
    return {c: None if p is not None and len(p) > _PATCH_LIMIT else p for c, p in changes.items()}


def _progress(pairs: Iterable[EvidencePair], screened_out: int) -> dict[str, int]:
    """Pairs per resolved verdict ("conflict" while unresolved), screened-out ones included."""
    # Counted by enum member, named once per verdict: .value on 200,000 members costs more.
    by_verdict = Counter(p.verdict for p in pairs)
    progress = Counter({"conflict" if v is None else v.value: n for v, n in by_verdict.items()})
    if screened_out:
        progress[_NOT_RELEVANT] += screened_out
    return dict(progress)


def _conflicts(pairs: Iterable[EvidencePair]) -> int:
    return sum(p.state is PairState.CONFLICT for p in pairs)


def _read_mark(session: Session) -> _ReadMark:
    """What the cards and the claims' evidence are read at (see `_ReadMark`).

    With one writer at a time (SQLite), ids grow in commit order, so the newest audit event
    (every write the cards show appends one: votes, resolutions, corrections, claims, sign-offs),
    the articles' signature (harvests) and the small tables' counts (writes made without the data
    layer) say what a read sees. On PostgreSQL ids are taken at insert and committed in any order:
    the same holds only while no write transaction is in progress on the server
    (`_nothing_in_flight`); otherwise the snapshot itself (xmin:xmax:in-progress ids) is the cards'
    signature, which any commit changes, and no audit event is settled. A session that has written
    and not committed is not cached on either engine: it sees rows that may yet roll back (and on
    SQLite a rollback hands their ids to the next write).
    """
    facts = facts_signature(session)
    postgres = session.get_bind().dialect.name == "postgresql"
    if not postgres:
        dbapi_connection = session.connection().connection.dbapi_connection
        if dbapi_connection is None or getattr(dbapi_connection, "in_transaction", True):
            return _ReadMark(None, None, facts)
    audit, claims, signoffs, users = (
        AuditEvent.__table__,
        Claim.__table__,
        SignOff.__table__,
        User.__table__,
    )
    latest = select(audit.c.id, audit.c.at).order_by(audit.c.id.desc()).limit(1).subquery()
    columns = [
        select(latest.c.id).scalar_subquery(),
        select(latest.c.at).scalar_subquery(),
        select(func.count()).select_from(claims).scalar_subquery(),
        select(func.max(claims.c.updated_at)).scalar_subquery(),
        select(func.max(signoffs.c.id)).scalar_subquery(),
        select(func.count()).select_from(users).scalar_subquery(),
        select(func.max(users.c.id)).scalar_subquery(),
    ]
    if postgres:
        # In the same statement, so the snapshot is the one the newest ids were read in.
        columns += [
            text("pg_current_snapshot()::text"),
            text("pg_current_xact_id_if_assigned() IS NOT NULL"),
        ]
    row = list(session.execute(select(*columns)).one())
    if postgres:
        snapshot, wrote = row[-2:]
        del row[-2:]
        if wrote:
            return _ReadMark(None, None, facts)
        if not _nothing_in_flight(session, str(snapshot)):
            return _ReadMark(("snapshot", str(snapshot)), None, facts)
    audit_id, audit_at, *rest = row
    settled = (int(audit_id), str(audit_at)) if audit_id is not None else None
    return _ReadMark(("ids", audit_id, str(audit_at), *rest, *facts), settled, facts)


def _nothing_in_flight(session: Session, snapshot: str) -> bool:
    """Whether no write transaction was in progress on the PostgreSQL server at `snapshot`.

    The snapshot lists the transactions in progress below its xmax (one past the newest that
    ended), not the newer ones: those show as locks on their own ids. If none holds one now, any
    that did at the snapshot has ended since, which moves xmax: a snapshot taken after the locks
    are read tells.
    """
    xmin, xmax, in_progress = snapshot.split(":")
    if xmin != xmax or in_progress:
        return False
    query = text("SELECT EXISTS (SELECT FROM pg_locks WHERE locktype = 'transactionid')")
    if session.execute(query).scalar():
        return False
    after = str(session.execute(text("SELECT pg_current_snapshot()::text")).scalar())
    return after.split(":")[1] == xmax


def _claim_cards(
    session: Session,
    viewer: User,
    document_id: int | None,
    scope: DesignScope,
    blind_documents: set[int],
    mark: _ReadMark,
) -> list[ClaimCard]:
    claims = list_claims(session, document_id)
    if not claims:
        return []
    claim_ids = [c.id for c in claims if c.id is not None]
    summary = _summary_evidence(session, mark)
    facts = study_facts(session)
    blind_ids = [c.id for c in claims if c.id is not None and c.document_id in blind_documents]
    own: dict[int, set[int]] = defaultdict(set)  # claim id -> the studies the viewer voted on
    if blind_ids and viewer.id is not None:
        for claim_id, pmid in voted_pairs(session, viewer.id, blind_ids):
            own[claim_id].add(pmid)
    signoffs = _latest_signoffs(session, claim_ids)
    names = _user_names(session)
    nothing = _ClaimEvidence([], 0, EvidenceCounts(Counter(), (), 0, 0), {}, 0)
    cards = []
    for claim in claims:
        assert claim.id is not None
        full = summary.claims.get(claim.id, nothing)
        rows = full.pairs
        blinded = claim.document_id in blind_documents
        if blinded:
            mine = own.get(claim.id, set())
            visible = [p for p in rows if p.pmid in mine]
            # Each of the viewer's pairs is either listed or screened out (db.review.pair_index).
            out_visible = len(mine) - len(visible)
            counts = _evidence_counts(visible, facts, out_visible)
            progress, conflicts = _progress(visible, out_visible), _conflicts(visible)
        else:
            visible, out_visible = rows, full.screened_out
            counts, progress, conflicts = full.counts, full.progress, full.conflicts
        out_total = full.screened_out
        graded, high, every = (
            outline_verdict(counts, view)
            for view in (DesignScope.GRADED, DesignScope.HIGH_CERTAINTY, DesignScope.ALL_DESIGNS)
        )
        chosen = {
            DesignScope.GRADED: graded,
            DesignScope.HIGH_CERTAINTY: high,
            DesignScope.ALL_DESIGNS: every,
        }[scope]
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
                meter=outline_meter_rows(chosen),
                excluded=tuple((e.pmid, e.reason) for e in counts.excluded),
                progress=dict(progress),
                judged=len(rows) + out_total,
                conflicts=conflicts,
                blinded=blinded,
                hidden=len(rows) + out_total - len(visible) - out_visible,
                # The sign-off is compared with the full evidence, whoever looks at it (screened-out
                # studies are no part of a sign-off's evidence snapshot).
                signoff=_signoff_details(signoff, *_sealed(full, facts), names) if signoff else None,
            )
        )
    return cards


def with_screened_out(result: ClaimVerdictResult, screened: int) -> ClaimVerdictResult:
    """`result` as if `screened` more studies screened out as not relevant had been in its evidence.

    They change nothing but the count and its phrase in the reasoning, so the verdict is derived
    from the other studies and the phrase written here as db.review.verdicts writes it; a test checks
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


def _evidence_counts(
    pairs: Iterable[EvidencePair], facts: dict[int, StudyFacts], screened_out: int
) -> EvidenceCounts:
    """What db.review.verdicts.derive_claim_verdict reads of these pairs' studies (by PMID) and of
    `screened_out` more studies screened out as not relevant, counted in one pass."""
    rated: Tally = Counter()
    excluded, unresolved, not_relevant = [], 0, screened_out
    for pair in pairs:
        fact = facts.get(pair.pmid)
        if fact is None:
            continue
        reason = EXCLUDING_STATUSES.get(fact.retraction_status or "")
        if reason is not None:
            excluded.append(ExcludedStudy(pair.pmid, reason))
        elif pair.verdict is None:
            unresolved += 1
        elif pair.verdict is StudyVerdict.NOT_RELEVANT:
            not_relevant += 1
        else:
            rated[(fact.design, pair.verdict)] += 1
    return EvidenceCounts(rated, tuple(excluded), unresolved, not_relevant)


def outline_meter_rows(outline: VerdictOutline) -> tuple[MeterRow, ...]:
    """meter_rows from a verdict computed on counts (db.review.verdicts.outline_verdict)."""
    rows = [
        MeterRow(design.value, design_label(design), verdict.value, n, design in outline.counted_designs)
        for (design, verdict), n in outline.considered.items()
    ]
    rows += [
        MeterRow(design.value, design_label(design), verdict.value, n, False)
        for (design, verdict), n in outline.not_counted.items()
    ]
    rows.sort(key=lambda r: (DESIGN_ORDER.index(StudyDesign(r.design)), VERDICT_ORDER.index(r.verdict)))
    return tuple(rows)


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
    # Mirrors db.review.pairs.is_blinded: editors and admins resolve conflicts and see every vote;
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
    snapshot = evidence_snapshot(evidence)
    return _signoff_details(signoff, snapshot_fingerprint(snapshot), snapshot, names)


def _sealed(claim: _ClaimEvidence, facts: dict[int, StudyFacts]) -> tuple[str, list[dict[str, object]]]:
    """The claim's evidence as a sign-off seals it (fingerprint, snapshot), worked out once per copy."""
    if claim.sealed is None:
        snapshot = evidence_snapshot(_evidence(claim.pairs, facts))
        claim.sealed = (snapshot_fingerprint(snapshot), snapshot)
    return claim.sealed


def _signoff_details(
    signoff: SignOff, fingerprint: str, snapshot: list[dict[str, object]], names: dict[int, str]
) -> SignoffInfo:
    changed = fingerprint != signoff.evidence_fingerprint
    changes = describe_changes(signoff.evidence, snapshot) if changed else []
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
    they judged (db.review.pairs.visible_assessments), and their number of hidden ones.
    """
    require(viewer, Action.READ)
    claim = session.get(Claim, claim_id)
    if claim is None:
        raise NotFoundError(f"No claim with id {claim_id}; reload the page.")
    # Where each pair stands comes from pair_state (one row a pair), not from grouping the claim's
    # votes: 1 s at 100,000 studies. Screened-out pairs are most of a big review: they are read
    # only when the filter asks for them. Votes are read for the page shown only.
    evidence_only = bool(verdicts) and _NOT_RELEVANT not in verdicts
    facts = study_facts(session)
    excluded = [pmid for pmid, fact in facts.items() if fact.retraction_status in EXCLUDING_STATUSES]
    rows = claim_pair_rows(session, claim_id, evidence_only=evidence_only, excluded=excluded)
    blinded = claim.document_id in _blind_documents(session, viewer)
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


def suggest_claim_key(sentence: str, taken: Collection[str] = ()) -> str:
    """A stable-key suggestion from a sentence: its first content words, hyphenated, made unique."""
    parts = (re.sub(r"[^a-z0-9]+", "-", word) for word in content_words(sentence)[:4])
    base = "-".join(parts)[:60].strip("-") or "claim"
    key, n = base, 2
    while key in taken:
        key, n = f"{base}-{n}", n + 1
    return key
