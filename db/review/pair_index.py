"""The pair index: table pair_state, one row per judged (claim, study) pair saying where it stands.

Names, since they are close: `db.vocab.PairState` is the enum of where a pair stands (agreed,
conflict, resolved); `db.models.PairRecord` is a row of table pair_state; this module keeps those
rows up to date and reads them; db.review.pair_rule holds the rule itself.

The verdict summary of a large review cannot group a million assessments on every call, so each
write that changes a pair's votes or resolutions (record, change, import, resolve, merge) calls
`refresh_pairs` in its own transaction, and a restore or a bulk load calls `rebuild_pair_state`.
The rule is db.review.pair_rule.pair_standing: a resolution applies while the votes keep the
signature it was made on; otherwise one verdict among the votes is agreed, several are a conflict.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from operator import attrgetter, itemgetter
from typing import Any

from sqlalchemy import Integer, String, Table, and_, delete, func, select, tuple_, type_coerce, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlmodel import Session

from db.chunks import chunked
from db.models import Assessment, ConflictResolution, PairRecord, SummaryCopyRecord
from db.review.pair_rule import pair_standing, votes_signature
from db.vocab import PairState, StudyVerdict

_NOT_RELEVANT = StudyVerdict.NOT_RELEVANT.value
_BATCH = 5_000  # rows per insert when rebuilding


@dataclass(frozen=True, slots=True)
class PairValues:
    """One pair_state row as plain values."""

    claim_id: int
    pmid: int
    state: str
    verdict: str | None
    votes: int
    resolved_once: bool
    screened_out: bool

    def as_row(self) -> dict[str, Any]:
        return {
            "claim_id": self.claim_id,
            "pmid": self.pmid,
            "state": self.state,
            "verdict": self.verdict,
            "votes": self.votes,
            "resolved_once": self.resolved_once,
            "screened_out": self.screened_out,
        }


def pair_values(
    claim_id: int,
    pmid: int,
    votes: Sequence[tuple[int, int, str]],
    resolution: tuple[str, str] | None,
) -> PairValues:
    """A pair's state from its votes (assessment id, version, verdict value) and its latest
    resolution (verdict value, votes signature), as db.review.pair_rule.pair_standing decides it."""
    signature = votes_signature((i, version) for i, version, _ in votes)
    verdicts = {verdict for _, _, verdict in votes}
    state, verdict = pair_standing(verdicts, signature, resolution)
    screened = resolution is None and verdicts == {_NOT_RELEVANT}
    return PairValues(claim_id, pmid, state.value, verdict, len(votes), resolution is not None, screened)


# --- after each write ------------------------------------------------------------------------------


def refresh_pairs(session: Session, pairs: Iterable[tuple[int, int]]) -> None:
    """Recompute the pair_state rows of these (claim id, PMID) pairs from what the session sees.

    Call it in the transaction that changed the pairs, after the change is flushed. On PostgreSQL
    each pair's row is locked first, so two reviewers voting on one pair at once are serialized:
    the second to lock reads after the first commits and counts both votes (SQLite has one writer
    at a time anyway). Pairs are locked in order, so two refreshes never wait on each other in a cycle.
    """
    wanted = sorted(set(pairs))
    if not wanted:
        return
    session.flush()
    lock_pairs(session, wanted)
    connection = session.connection()
    found = _read_pairs(connection, wanted)
    table = PairRecord.__table__
    for claim_id, pmid in wanted:
        votes, resolution = found.get((claim_id, pmid), ([], None))
        where = and_(table.c.claim_id == claim_id, table.c.pmid == pmid)
        if not votes:  # every vote moved away (a claim merge): no longer a judged pair
            connection.execute(delete(table).where(where))
            continue
        row = pair_values(claim_id, pmid, votes, resolution).as_row()
        connection.execute(update(table).where(where).values(row))


def lock_pairs(session: Session, pairs: Iterable[tuple[int, int]]) -> None:
    """Lock these pairs' rows (creating empty ones) until the transaction ends, in order.

    A write that changes many pairs (an import) locks them all first: two such writes then wait
    for each other instead of each holding a pair the other needs (a deadlock on PostgreSQL).
    """
    connection = session.connection()
    for claim_id, pmid in sorted(set(pairs)):
        _lock(connection, claim_id, pmid)


def _lock(connection: Connection, claim_id: int, pmid: int) -> None:
    table = PairRecord.__table__
    placeholder = {
        "claim_id": claim_id,
        "pmid": pmid,
        "state": PairState.AGREED.value,
        "verdict": None,
        "votes": 0,
        "resolved_once": False,
        "screened_out": False,
    }
    # A row to lock even for a pair's first vote; a concurrent first vote waits on the key, then
    # inserts nothing and takes the lock after this transaction ends.
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    connection.execute(dialect.insert(table).values(placeholder).on_conflict_do_nothing())
    if connection.dialect.name == "postgresql":
        connection.execute(
            select(table.c.claim_id)
            .where(table.c.claim_id == claim_id, table.c.pmid == pmid)
            .with_for_update()
        )


def _read_pairs(
    connection: Connection, pairs: list[tuple[int, int]]
) -> dict[tuple[int, int], tuple[list[tuple[int, int, str]], tuple[str, str] | None]]:
    assessments = Assessment.__table__
    resolutions = ConflictResolution.__table__
    votes: dict[tuple[int, int], list[tuple[int, int, str]]] = {}
    latest: dict[tuple[int, int], tuple[str, str]] = {}
    for chunk in chunked(pairs, params_each=2):
        query = select(
            assessments.c.claim_id,
            assessments.c.pmid,
            assessments.c.id,
            assessments.c.version,
            type_coerce(assessments.c.verdict, String),
        ).where(tuple_(assessments.c.claim_id, assessments.c.pmid).in_(chunk))
        for claim_id, pmid, assessment_id, version, verdict in connection.execute(query):
            votes.setdefault((claim_id, pmid), []).append((assessment_id, version, verdict))
        query = (
            select(
                resolutions.c.claim_id,
                resolutions.c.pmid,
                type_coerce(resolutions.c.verdict, String),
                resolutions.c.votes_signature,
            )
            .where(tuple_(resolutions.c.claim_id, resolutions.c.pmid).in_(chunk))
            .order_by(resolutions.c.id)
        )
        for claim_id, pmid, verdict, signature in connection.execute(query):
            latest[(claim_id, pmid)] = (verdict, signature)
    return {key: (rows, latest.get(key)) for key, rows in votes.items()}


# --- in bulk ---------------------------------------------------------------------------------------


def rebuild_pair_state(connection: Connection, table: Table | None = None) -> int:
    """Empty pair_state and fill it from every assessment and resolution; returns the pairs written.

    For a restore, a migration (`table`: its frozen copy of pair_state) or a bulk load that wrote
    assessments without the data layer. Reads the assessments one claim at a time.
    """
    if table is None:
        table = PairRecord.__table__
        # The summary's kept copies (db.read.summary_copy) follow pair_state through audit events,
        # which a rebuild does not write: they go with it.
        connection.execute(delete(SummaryCopyRecord.__table__))
    connection.execute(delete(table))
    written = 0
    batch: list[dict[str, Any]] = []
    for values in computed_pairs(connection):
        batch.append(values.as_row())
        if len(batch) >= _BATCH:
            connection.execute(table.insert(), batch)
            written += len(batch)
            batch = []
    if batch:
        connection.execute(table.insert(), batch)
        written += len(batch)
    return written


def computed_pairs(connection: Connection) -> Iterator[PairValues]:
    """Every judged pair's state computed from the assessments and resolutions, in (claim, PMID) order."""
    assessments = Assessment.__table__
    resolutions = ConflictResolution.__table__
    latest: dict[tuple[int, int], tuple[str, str]] = {}
    query = select(
        resolutions.c.claim_id,
        resolutions.c.pmid,
        type_coerce(resolutions.c.verdict, String),
        resolutions.c.votes_signature,
    ).order_by(resolutions.c.id)
    for claim_id, pmid, verdict, signature in connection.execute(query):
        latest[(claim_id, pmid)] = (verdict, signature)
    claim_ids = list(
        connection.scalars(select(assessments.c.claim_id).distinct().order_by(assessments.c.claim_id))
    )
    for claim_id in claim_ids:
        # One claim at a time, read in full before the caller writes: bounded memory, and no cursor
        # left open on a connection that is inserting.
        query = (
            select(
                assessments.c.pmid,
                assessments.c.id,
                assessments.c.version,
                type_coerce(assessments.c.verdict, String),
            )
            .where(assessments.c.claim_id == claim_id)
            .order_by(assessments.c.pmid, assessments.c.id)
        )
        by_pmid: dict[int, list[tuple[int, int, str]]] = {}
        for pmid, assessment_id, version, verdict in connection.execute(query).all():
            by_pmid.setdefault(pmid, []).append((assessment_id, version, verdict))
        for pmid, votes in by_pmid.items():
            yield pair_values(claim_id, pmid, votes, latest.get((claim_id, pmid)))


# --- reads ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EvidencePair:
    """One pair the verdict rule lists (not merely counts): its state and resolved verdict."""

    claim_id: int
    pmid: int
    state: PairState
    verdict: StudyVerdict | None  # None while in conflict
    reopened: bool  # in conflict although an editor resolved it once


def evidence_pairs(
    session: Session, claim_ids: Collection[int], excluded: Collection[int]
) -> dict[int, list[EvidencePair]]:
    """claim id -> its pairs that are not only screened out, by PMID (see `screened_out_tally`).

    `excluded`: the studies the verdict rule excludes (retracted, ...): their pairs are listed
    even when screened out, as the rule lists every excluded study.
    """
    table = PairRecord.__table__
    columns = (
        table.c.claim_id,
        table.c.pmid,
        type_coerce(table.c.state, String),
        type_coerce(table.c.verdict, String),
        table.c.resolved_once,
    )
    wanted = table.c.claim_id.in_(list(claim_ids))
    judged = select(*columns).where(wanted, table.c.screened_out == False)  # noqa: E712
    # The index's order; fetched at once (row by row costs SQLAlchemy twice the reading).
    rows = session.execute(judged.order_by(table.c.claim_id, table.c.pmid)).all()
    screened = select(*columns).where(wanted, table.c.screened_out == True)  # noqa: E712
    more = [
        row
        for chunk in chunked(sorted(excluded))
        for row in session.execute(screened.where(table.c.pmid.in_(chunk)))
    ]
    if more:
        rows = sorted([*rows, *more], key=itemgetter(0, 1))
    by_claim: dict[int, list[EvidencePair]] = {}
    for claim_id, pmid, state, verdict, resolved_once in rows:
        pair_state, pair_verdict, reopened = PAIR_KINDS[(state, verdict, bool(resolved_once))]
        by_claim.setdefault(claim_id, []).append(
            EvidencePair(claim_id, pmid, pair_state, pair_verdict, reopened)
        )
    return by_claim


# (state, verdict, resolved once) as read -> as the pair says it: a few distinct ones.
PAIR_KINDS = {
    (state.value, verdict.value if verdict else None, resolved): (
        state,
        verdict,
        resolved and state is PairState.CONFLICT,
    )
    for state in PairState
    for verdict in (None, *StudyVerdict)
    for resolved in (False, True)
}


# One judged pair of a claim as a plain row: PMID, state, verdict (None in conflict), resolved once (0/1).
PairRow = tuple[int, str, str | None, int]


def claim_pair_rows(
    session: Session, claim_id: int, *, evidence_only: bool, excluded: Collection[int]
) -> list[PairRow]:
    """One claim's judged pairs by PMID: every one, or (evidence_only) those evidence_pairs lists.

    Plain rows, not EvidencePair objects: a claim of a large review has 100,000 pairs and a page
    shows 25 of them (see as_evidence_pair).
    """
    table = PairRecord.__table__
    query = select(
        table.c.pmid,
        type_coerce(table.c.state, String),
        type_coerce(table.c.verdict, String),
        type_coerce(table.c.resolved_once, Integer),  # no per-row conversion to bool
    ).where(table.c.claim_id == claim_id)
    if not evidence_only:
        return [tuple(row) for row in session.execute(query.order_by(table.c.pmid)).all()]
    rows = [
        tuple(row)
        for row in session.execute(query.where(table.c.screened_out == False).order_by(table.c.pmid)).all()  # noqa: E712
    ]
    screened = query.where(table.c.screened_out == True)  # noqa: E712
    more = [
        tuple(row)
        for chunk in chunked(sorted(excluded))
        for row in session.execute(screened.where(table.c.pmid.in_(chunk)))
    ]
    return sorted([*rows, *more]) if more else rows


def claim_pmids(session: Session, claim_id: int) -> list[int]:
    """The PMIDs of one claim's judged pairs (every one), from the index."""
    table = PairRecord.__table__
    # As scalars: half the time of plain rows fetched at once (90,000 rows a claim).
    return list(session.scalars(select(table.c.pmid).where(table.c.claim_id == claim_id)))


def claim_pair_count(session: Session, claim_id: int) -> int:
    """How many judged pairs one claim has, counted from the index."""
    table = PairRecord.__table__
    return int(session.scalar(select(func.count()).where(table.c.claim_id == claim_id)) or 0)


def claim_pair_rows_of(session: Session, claim_id: int, pmids: Collection[int]) -> list[PairRow]:
    """claim_pair_rows of one claim's `pmids` only (a page of them), every one of them, by PMID."""
    table = PairRecord.__table__
    query = select(
        table.c.pmid,
        type_coerce(table.c.state, String),
        type_coerce(table.c.verdict, String),
        type_coerce(table.c.resolved_once, Integer),
    ).where(table.c.claim_id == claim_id)
    rows = [
        tuple(row)
        for chunk in chunked(sorted(pmids))
        for row in session.execute(query.where(table.c.pmid.in_(chunk)))
    ]
    return sorted(rows)


def as_evidence_pair(claim_id: int, row: PairRow) -> EvidencePair:
    pmid, state, verdict, resolved_once = row
    return EvidencePair(claim_id, pmid, *PAIR_KINDS[(state, verdict, bool(resolved_once))])


def evidence_pairs_of(
    session: Session, claim_id: int, pmids: Collection[int], excluded: Collection[int]
) -> list[EvidencePair]:
    """evidence_pairs of one claim's `pmids` only (a few studies whose votes just changed), by PMID."""
    table = PairRecord.__table__
    query = select(
        table.c.pmid,
        type_coerce(table.c.state, String),
        type_coerce(table.c.verdict, String),
        table.c.resolved_once,
        table.c.screened_out,
    ).where(table.c.claim_id == claim_id)
    listed = []
    skip = set(excluded)
    for chunk in chunked(sorted(pmids)):
        for pmid, state, verdict, resolved_once, screened_out in session.execute(
            query.where(table.c.pmid.in_(chunk))
        ):
            if screened_out and pmid not in skip:
                continue
            pair_state, pair_verdict, reopened = PAIR_KINDS[(state, verdict, bool(resolved_once))]
            listed.append(EvidencePair(claim_id, pmid, pair_state, pair_verdict, reopened))
    return sorted(listed, key=attrgetter("pmid"))


def screened_out_tally(
    session: Session, claim_ids: Collection[int], excluded: Collection[int]
) -> dict[int, int]:
    """claim id -> its pairs only screened out: every vote "not relevant", never resolved, and the
    study not in `excluded`. Counted in the database from an index; the excluded studies (few) are
    subtracted. (A blinded reviewer's share needs no count: each of their pairs is either listed by
    `evidence_pairs` or screened out.)
    """
    table = PairRecord.__table__
    wanted = (table.c.claim_id.in_(list(claim_ids)), table.c.screened_out == True)  # noqa: E712
    totals: dict[int, int] = {}
    query = select(table.c.claim_id, func.count()).where(*wanted).group_by(table.c.claim_id)
    for claim_id, n in session.execute(query):
        totals[claim_id] = int(n)
    for chunk in chunked(sorted(excluded)):
        for claim_id, n in session.execute(query.where(table.c.pmid.in_(chunk))):
            totals[claim_id] -= int(n)
    return totals


def voted_pairs(session: Session, reviewer_id: int, claim_ids: Collection[int]) -> set[tuple[int, int]]:
    """The (claim id, PMID) pairs a reviewer voted on: what blind mode lets them see."""
    table = Assessment.__table__
    query = select(table.c.claim_id, table.c.pmid).where(
        table.c.reviewer_id == reviewer_id, table.c.claim_id.in_(list(claim_ids))
    )
    return {(claim_id, pmid) for claim_id, pmid in session.execute(query)}


def claim_pairs(session: Session, claim_id: int) -> list[tuple[int, StudyVerdict | None]]:
    """(PMID, resolved verdict) of every judged pair of a claim, by PMID; None while in conflict."""
    table = PairRecord.__table__
    query = (
        select(table.c.pmid, type_coerce(table.c.verdict, String))
        .where(table.c.claim_id == claim_id)
        .order_by(table.c.pmid)
    )
    verdicts = {verdict.value: verdict for verdict in StudyVerdict}
    return [(pmid, verdicts.get(verdict or "")) for pmid, verdict in session.execute(query)]
