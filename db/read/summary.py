"""The verdict summary's per-process copy: every claim's evidence and the cards of each view,
kept until a write, then brought up to date with only the pairs the write changed.

One object, `SUMMARY`, holds what is kept (per database URL) and clears it (`clear`, `forget`). The
claims' evidence is read from db.review.pair_index (kept by every write) and counted for the
verdict rule (db.review.verdicts.outline_verdict) rather than listed; tests/test_pair_state.py checks
the cards against a plain recomputation from the votes.
"""

from __future__ import annotations

import threading
from bisect import insort
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, TypeVar

from sqlalchemy import ScalarSelect, TextClause, func, select, text
from sqlmodel import Session

from db.corpus.study_facts import StudyFacts, facts_signature, study_facts
from db.models import AuditEvent, Claim, SignOff, User
from db.read.pairs import NOT_RELEVANT
from db.review.claims import list_claims
from db.review.pair_evidence import Findings, pair_findings, with_findings
from db.review.pair_index import EvidencePair, evidence_pairs, evidence_pairs_of, screened_out_tally
from db.review.verdicts import EXCLUDING_STATUSES, EvidenceCounts, ExcludedStudy, StudyEvidence, Tally
from db.vocab import AuditAction, PairState, StudyVerdict


class SummaryCache:
    """Cards per database, with the signature they were read at and per view (document, scope, blind
    viewer); and each claim's evidence everyone sees, which every view after a write starts from.

    Reading and counting 170,000 evidence pairs takes a second; a claim's share of them, a tenth of
    that; the signature, milliseconds.
    """

    VIEWS = 64  # views kept per database; more, and they are dropped together

    def __init__(self) -> None:
        self._cards: dict[str, tuple[tuple[Any, ...], dict[Any, list[Any]]]] = {}
        self._evidence: dict[str, SummaryEvidence] = {}
        self._lock = threading.Lock()

    def cards(self, url: str, signature: tuple[Any, ...], view: Any) -> list[Any] | None:
        """The cards of `view` kept at `signature`, or None."""
        cached = self._cards.get(url)
        if cached is not None and cached[0] == signature and view in cached[1]:
            return list(cached[1][view])
        return None

    def keep_cards(self, url: str, signature: tuple[Any, ...], view: Any, cards: list[Any]) -> None:
        with self._lock:
            cached = self._cards.get(url)
            views = cached[1] if cached is not None and cached[0] == signature else {}
            if len(views) >= self.VIEWS:
                views = {}
            views[view] = cards
            self._cards[url] = (signature, views)

    def evidence(self, url: str) -> SummaryEvidence | None:
        return self._evidence.get(url)

    def keep_evidence(self, url: str, summary: SummaryEvidence) -> None:
        with self._lock:
            self._evidence[url] = summary

    def forget(self, url: str) -> None:
        """Drop what is kept of one database."""
        with self._lock:
            self._cards.pop(url, None)
            self._evidence.pop(url, None)

    def clear(self) -> None:
        """Drop everything kept: the next summary of each database reads every claim."""
        with self._lock:
            self._cards.clear()
            self._evidence.clear()


SUMMARY = SummaryCache()


# Audit actions that change a claim's pairs (db.review.pair_index): each such event names its claim.
_PAIR_ACTIONS = (
    AuditAction.ASSESSMENT_RECORDED,
    AuditAction.ASSESSMENT_CHANGED,
    AuditAction.ASSESSMENT_MOVED,
    AuditAction.CONFLICT_RESOLVED,
    AuditAction.CLAIM_MERGED,
)


_T = TypeVar("_T")


@dataclass
class ClaimEvidence:
    """One claim's evidence pairs as everyone sees them (no blind mode), counted for the rule."""

    pairs: list[EvidencePair]  # by PMID
    screened_out: int
    counts: EvidenceCounts
    progress: dict[str, int]
    conflicts: int
    findings: dict[int, Findings] = field(default_factory=dict)  # PMID -> the pair's stated evidence
    # (fingerprint, snapshot) of the evidence a sign-off is compared with, worked out once.
    sealed: tuple[str, list[dict[str, object]]] | None = field(default=None, compare=False)
    # What is worked out from this copy once: the derived verdict per (design scope, claim scope),
    # the outline per ("outline", design scope, claim scope), the pair tally and the excluded studies
    # as the cards list them (db.read.cards).
    verdicts: dict[Any, Any] = field(default_factory=dict, compare=False)

    def worked_out(self, key: Any, compute: Callable[[], _T]) -> _T:
        """`compute()` once per copy, kept under `key` among `verdicts`."""
        if key not in self.verdicts:
            self.verdicts[key] = compute()
        return self.verdicts[key]


@dataclass(frozen=True)
class SummaryEvidence:
    """Every active claim's evidence, and what it was read at (see `read_mark`)."""

    claims: dict[int, ClaimEvidence]
    excluded: list[int]  # studies the rule excludes (retracted, ...)
    facts: tuple[Any, ...]  # db.corpus.study_facts.facts_signature: designs and standings
    audit: tuple[int, str] | None  # the newest audit event (id, time) every claim reflects


@dataclass(frozen=True)
class ReadMark:
    """Where a read of the summary stands.

    `cards`: the signature whole views are cached under, or None (not to be cached).
    `audit`: the newest audit event (id, time) when every event up to it is settled (committed,
    none still in flight below it), so the claims' evidence may be kept under it; else None.
    `facts`: the study facts' signature: when it moves, every claim is read again.
    """

    cards: tuple[Any, ...] | None
    audit: tuple[int, str] | None
    facts: tuple[Any, ...]


def summary_evidence(session: Session, mark: ReadMark) -> SummaryEvidence:
    """Every active claim's evidence, from the kept copy brought up to date with the writes since.

    Every write that changes a claim's pairs appends an audit event naming the claim and, but for
    a merge, the study (votes, resolutions): the pairs of those events are read again and put in
    place of the copy's; a claim with many changed pairs, or a merge, is read whole; a change of
    any study's design or standing (harvests, corrections) reads every claim. The copy is kept
    only at a settled mark (`ReadMark.audit`); otherwise the result is served once.
    """
    key = str(session.get_bind().engine.url)
    claim_ids = [c.id for c in list_claims(session) if c.id is not None]
    # Every study's facts (cached per process) give the excluded studies without a query.
    facts = study_facts(session)
    cached = SUMMARY.evidence(key)
    changes: dict[int, set[int] | None] | None = None  # None: every claim read whole
    if cached is not None and cached.facts == mark.facts and cached.audit is not None:
        upto = mark.audit[0] if mark.audit is not None else None
        changes = pairs_changed_since(session, cached.audit, upto)
    if cached is None or changes is None:
        excluded = [pmid for pmid, fact in facts.items() if fact.retraction_status in EXCLUDING_STATUSES]
        claims = read_claims(session, claim_ids, facts, excluded)
    else:
        excluded = cached.excluded
        whole = [c for c in claim_ids if c not in cached.claims or (c in changes and changes[c] is None)]
        patched = [c for c in claim_ids if c not in whole and changes.get(c)]
        claims = {c: cached.claims[c] for c in claim_ids if c not in whole and c not in patched}
        claims |= read_claims(session, whole, facts, excluded)
        claims |= patch_claims(session, {c: cached.claims[c] for c in patched}, changes, facts, excluded)
    summary = SummaryEvidence(claims, excluded, mark.facts, mark.audit)
    if mark.audit is not None and mark.cards is not None:
        SUMMARY.keep_evidence(key, summary)
    return summary


def kept_claim_evidence(session: Session, claim_id: int) -> ClaimEvidence | None:
    """One claim's evidence from the kept copy, brought up to date with the writes since; None when
    there is no copy, or the studies' designs or standings moved since it was read (the caller then
    reads the claim itself, rather than every claim again)."""
    cached = SUMMARY.evidence(str(session.get_bind().engine.url))
    if cached is None or cached.audit is None:
        return None
    mark = read_mark(session)
    if cached.facts != mark.facts:
        return None
    return summary_evidence(session, mark).claims.get(claim_id)


def warm_summary(session: Session) -> None:
    """Read every claim's evidence into the per-process copy the summary starts from (a few seconds
    at 100,000 studies), so that the first Overview or Claims page after a start does not wait."""
    summary_evidence(session, read_mark(session))


def read_claims(
    session: Session, claim_ids: list[int], facts: dict[int, StudyFacts], excluded: list[int]
) -> dict[int, ClaimEvidence]:
    if not claim_ids:
        return {}
    pairs = evidence_pairs(session, claim_ids, excluded)
    screened = screened_out_tally(session, claim_ids, excluded)
    findings: dict[int, dict[int, Findings]] = {}
    for (claim_id, pmid), stated in pair_findings(session, claim_ids).items():
        findings.setdefault(claim_id, {})[pmid] = stated
    return {
        claim_id: _claim_evidence(
            pairs.get(claim_id, []), screened.get(claim_id, 0), facts, findings.get(claim_id, {})
        )
        for claim_id in claim_ids
    }


def patch_claims(
    session: Session,
    kept: dict[int, ClaimEvidence],
    changes: dict[int, set[int] | None],
    facts: dict[int, StudyFacts],
    excluded: list[int],
) -> dict[int, ClaimEvidence]:
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
        findings = {pmid: f for pmid, f in old.findings.items() if pmid not in pmids}
        findings |= {pmid: f for (_, pmid), f in pair_findings(session, [claim_id], pmids).items()}
        claims[claim_id] = _claim_evidence(rows, screened.get(claim_id, 0), facts, findings)
    return claims


_BY_PMID = attrgetter("pmid")


def _claim_evidence(
    rows: list[EvidencePair], screened_out: int, facts: dict[int, StudyFacts], findings: dict[int, Findings]
) -> ClaimEvidence:
    counts = evidence_counts(rows, facts, screened_out, findings)
    return ClaimEvidence(
        rows, screened_out, counts, progress_of(rows, screened_out), conflicts_of(rows), findings
    )


# A claim with more changed studies than this since the kept copy is read whole.
_PATCH_LIMIT = 2_000


def pairs_changed_since(
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


def progress_of(pairs: Iterable[EvidencePair], screened_out: int) -> dict[str, int]:
    """Pairs per resolved verdict ("conflict" while unresolved), screened-out ones included."""
    # Counted by enum member, named once per verdict: .value on 200,000 members costs more.
    by_verdict = Counter(p.verdict for p in pairs)
    progress = Counter({"conflict" if v is None else v.value: n for v, n in by_verdict.items()})
    if screened_out:
        progress[NOT_RELEVANT] += screened_out
    return dict(progress)


def conflicts_of(pairs: Iterable[EvidencePair]) -> int:
    return sum(p.state is PairState.CONFLICT for p in pairs)


def read_mark(session: Session) -> ReadMark:
    """What the cards and the claims' evidence are read at (see `ReadMark`).

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
            return ReadMark(None, None, facts)
    audit, claims, signoffs, users = (
        AuditEvent.__table__,
        Claim.__table__,
        SignOff.__table__,
        User.__table__,
    )
    latest = select(audit.c.id, audit.c.at).order_by(audit.c.id.desc()).limit(1).subquery()
    columns: list[ScalarSelect[Any] | TextClause] = [
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
            return ReadMark(None, None, facts)
        if not _nothing_in_flight(session, str(snapshot)):
            return ReadMark(("snapshot", str(snapshot)), None, facts)
    audit_id, audit_at, *rest = row
    settled = (int(audit_id), str(audit_at)) if audit_id is not None else None
    return ReadMark(("ids", audit_id, str(audit_at), *rest, *facts), settled, facts)


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


def evidence_counts(
    pairs: Iterable[EvidencePair],
    facts: dict[int, StudyFacts],
    screened_out: int,
    findings: Mapping[int, Findings] | None = None,
) -> EvidenceCounts:
    """What db.review.verdicts.derive_claim_verdict reads of these pairs' studies (by PMID) and of
    `screened_out` more studies screened out as not relevant, counted in one pass; the rated
    studies with stated evidence fields (`findings`, PMID -> fields) are listed as well."""
    findings = findings or {}
    detailed: list[StudyEvidence] = []
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
            stated = findings.get(pair.pmid)
            if stated:
                study = StudyEvidence(pair.pmid, pair.verdict, fact.design, fact.retraction_status)
                detailed.append(with_findings(study, stated))
    return EvidenceCounts(rated, tuple(excluded), unresolved, not_relevant, tuple(detailed))
