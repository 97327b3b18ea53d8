"""The verdict summary's per-process copy: every claim's evidence and the cards of each view,
kept until a write, then brought up to date with only the pairs the write changed.

One object, `SUMMARY`, holds what is kept (per database URL) and clears it (`clear`, `forget`). The
claims' evidence is read from db.review.pair_index (kept by every write) as compact arrays
(db.read.claim_evidence), counted for the verdict rule (db.review.verdicts.outline_verdict) rather
than listed, and kept in the database too (db.read.summary_copy), so that a new process starts from
it. tests/test_pair_state.py checks the cards against a plain recomputation from the votes.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from sqlalchemy import ScalarSelect, TextClause, func, select, text
from sqlmodel import Session

from db.corpus.study_facts import facts_signature, study_facts
from db.models import Article, AuditEvent, Claim, PairRecord, SignOff, User
from db.read.claim_evidence import ClaimEvidence, claim_evidence_of
from db.read.standing import PairTally, pair_tallies
from db.read.summary_copy import has_copies, load_copies, store_copies
from db.review.claims import list_claims
from db.review.pair_evidence import Findings, pair_findings
from db.review.pair_index import claim_pair_rows, evidence_pairs_of, screened_out_tally
from db.review.verdicts import EXCLUDING_STATUSES
from db.vocab import AuditAction


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

    The copy is this process's, or else the one kept in the database (db.read.summary_copy). Every
    write that changes a claim's pairs appends an audit event naming the claim and, but for a merge,
    the study (votes, resolutions): the pairs of those events are read again and put in place of
    the copy's; a claim with many changed pairs, or a merge, is read whole; a change of any study's
    design or standing (harvests, corrections) reads every claim. The copy is kept, here and in the
    database, only at a settled mark (`ReadMark.audit`); otherwise the result is served once.
    """
    key = str(session.get_bind().engine.url)
    claim_ids = [c.id for c in list_claims(session) if c.id is not None]
    cached = SUMMARY.evidence(key)
    base: dict[int, ClaimEvidence] = {}
    since: tuple[int, str] | None = None
    excluded: list[int] | None = None
    if cached is not None and cached.facts == mark.facts and cached.audit is not None:
        base, since, excluded = cached.claims, cached.audit, cached.excluded
    else:
        loaded = load_copies(session, claim_ids, mark.facts)
        if loaded:
            base = {claim_id: claim for claim_id, (claim, _) in loaded.items()}
            since = min((at for _, at in loaded.values()), key=itemgetter(0))
    changes: dict[int, set[int] | None] | None = None  # None: every claim read whole
    if since is not None:
        changes = pairs_changed_since(session, since, mark.audit[0] if mark.audit is not None else None)
    if excluded is None:
        excluded = excluded_studies(session)
    if changes is None:
        claims = read_claims(session, claim_ids, excluded)
    else:
        whole = [c for c in claim_ids if c not in base or (c in changes and changes[c] is None)]
        patched = [c for c in claim_ids if c not in whole and changes.get(c)]
        claims = {c: base[c] for c in claim_ids if c not in whole and c not in patched}
        claims |= read_claims(session, whole, excluded)
        claims |= patch_claims(session, {c: base[c] for c in patched}, changes, excluded)
    work_out_standing(session, claims)
    summary = SummaryEvidence(claims, excluded, mark.facts, mark.audit)
    if mark.audit is not None and mark.cards is not None:
        SUMMARY.keep_evidence(key, summary)
        store_copies(session, claims.values(), mark.audit, mark.facts)
    return summary


def kept_claim_evidence(session: Session, claim_id: int) -> ClaimEvidence | None:
    """One claim's evidence from the kept copy (this process's, else the database's), brought up to
    date with the writes since; None when there is no copy, or the studies' designs or standings
    moved since it was read (the caller then reads the claim itself, rather than every claim again)."""
    cached = SUMMARY.evidence(str(session.get_bind().engine.url))
    mark = read_mark(session)
    if cached is None or cached.audit is None:
        # A new process: the copy kept in the database serves, if there is one for these facts.
        if not has_copies(session, mark.facts):
            return None
    elif cached.facts != mark.facts:
        return None
    return summary_evidence(session, mark).claims.get(claim_id)


def warm_summary(session: Session) -> None:
    """Read every claim's evidence into the per-process copy the summary starts from (a few seconds
    at 100,000 studies without a copy in the database), so that the first Overview or Claims page
    after a start does not wait."""
    summary_evidence(session, read_mark(session))


def keep_summary_current(session: Session) -> bool:
    """After studies were stored (a harvest, an import): when any pair is judged, read the summary
    again and keep it, here and in the database; returns whether it did.

    Any change of the studies moves their facts' signature, and with it every claim's kept copy
    (db.read.summary_copy) goes: without this the next process to show the summary (a dashboard
    started after the nightly harvest) would read every claim, seconds at 100,000 studies.
    """
    if session.execute(select(PairRecord.__table__.c.claim_id).limit(1)).first() is None:
        return False
    warm_summary(session)
    return True


def excluded_studies(session: Session) -> list[int]:
    """The studies the verdict rule excludes (retracted, ...), by PMID, from their partial index."""
    table = Article.__table__
    query = select(table.c.pmid).where(table.c.retraction_status.in_(list(EXCLUDING_STATUSES)))
    return sorted(session.scalars(query))


def read_claims(session: Session, claim_ids: list[int], excluded: list[int]) -> dict[int, ClaimEvidence]:
    if not claim_ids:
        return {}
    # Every study's facts, kept per process: a claim of a large review lists 20,000 of them.
    facts = study_facts(session)
    screened = screened_out_tally(session, claim_ids, excluded)
    findings: dict[int, dict[int, Findings]] = {}
    for (claim_id, pmid), stated in pair_findings(session, claim_ids).items():
        findings.setdefault(claim_id, {})[pmid] = stated
    return {
        claim_id: claim_evidence_of(
            claim_id,
            claim_pair_rows(session, claim_id, evidence_only=True, excluded=excluded),
            facts,
            screened.get(claim_id, 0),
            findings.get(claim_id, {}),
        )
        for claim_id in claim_ids
    }


def patch_claims(
    session: Session,
    kept: dict[int, ClaimEvidence],
    changes: dict[int, set[int] | None],
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
        pairs = evidence_pairs_of(session, claim_id, pmids, excluded)
        findings = {pmid: f for (_, pmid), f in pair_findings(session, [claim_id], pmids).items()}
        facts = study_facts(session, {pair.pmid for pair in pairs})
        claims[claim_id] = old.patched(pairs, pmids, facts, screened.get(claim_id, 0), findings)
    return claims


def work_out_standing(session: Session, claims: dict[int, ClaimEvidence]) -> None:
    """Count the open conflicts and single-vote pairs of the copies without them (db.read.standing),
    which a copy keeps, here and in the database."""
    missing = [claim_id for claim_id, claim in claims.items() if claim.tally is None]
    if missing:
        tallies = pair_tallies(session, missing)
        for claim_id in missing:
            claims[claim_id].tally = tallies.get(claim_id, PairTally(0, 0))


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


def read_mark(session: Session) -> ReadMark:
    """What the cards and the claims' evidence are read at (see `ReadMark`).

    With one writer at a time (SQLite), ids grow in commit order, so the newest audit event
    (every write the cards show appends one: votes, resolutions, corrections, claims, sign-offs),
    the articles' signature (harvests) and the small tables' counts (writes made without the data
    layer) say what a read sees. On PostgreSQL ids are taken at insert and committed in any order:
    the same holds only while no write transaction of this database is in progress
    (`_IN_FLIGHT_HERE`); otherwise the snapshot itself (xmin:xmax:in-progress ids) is the cards'
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
        # In the same statement, so the snapshot is the one the newest ids were read in, and the
        # transactions in flight are read an instant after it (`_IN_FLIGHT_HERE`).
        session.execute(text("SELECT pg_stat_clear_snapshot()"))  # pg_stat_activity as it is now
        columns += [
            text("pg_current_snapshot()::text"),
            text("pg_current_xact_id_if_assigned() IS NOT NULL"),
            text(_IN_FLIGHT_HERE),
        ]
    row = list(session.execute(select(*columns)).one())
    if postgres:
        snapshot, wrote, in_flight = row[-3:]
        del row[-3:]
        if wrote:
            return ReadMark(None, None, facts)
        if in_flight:
            return ReadMark(("snapshot", str(snapshot)), None, facts)
    audit_id, audit_at, *rest = row
    settled = (int(audit_id), str(audit_at)) if audit_id is not None else None
    return ReadMark(("ids", audit_id, str(audit_at), *rest, *facts), settled, facts)


# Whether a write transaction of this database may have been in progress at the statement's snapshot
# (PostgreSQL), so that an audit event up to the newest one read may still commit unseen.
#
# Writes to this database's tables come only from its own backends, and each of those holds a lock
# on its transaction id until it ends: read right after the snapshot, in the same statement, a
# lock held by another backend of this database means one is in flight. The snapshot also lists
# the transactions then in progress, of every database: one of them that has ended by the time it
# is looked up here may have been this database's, and is counted as in flight too. What is left
# is a transaction of this database that ended in the instant between the statement's snapshot and
# its reading of the locks, as small a window as the one between an insert's id and its
# transaction's. Other databases' work on the same server (another team, a test run, an import
# elsewhere) no longer keeps this one's summary from being kept, as it did while any transaction
# on the server was enough.
_IN_FLIGHT_HERE = (
    "EXISTS (SELECT FROM pg_locks AS l JOIN pg_stat_activity AS a ON a.pid = l.pid"
    " WHERE l.locktype = 'transactionid' AND l.granted AND a.datname = current_database()"
    " AND l.pid <> pg_backend_pid())"
    " OR EXISTS (SELECT FROM pg_prepared_xacts WHERE database = current_database())"
    " OR EXISTS (SELECT FROM unnest(string_to_array(split_part(pg_current_snapshot()::text, ':', 3), ','))"
    " AS x WHERE pg_xact_status(CAST(x AS xid8)) IS DISTINCT FROM 'in progress')"
)
