"""The verdict summary's copy of each claim's evidence, kept in the database (table summary_copy).

Without it a new process reads every listed pair and every study's facts before its first verdict
summary (2.6 to 2.8 s at 100,000 studies and 1,000,000 votes). With it, the process reads each
claim's arrays (db.read.claim_evidence) and then only the pairs written since, as a running
process does after a write (db.read.summary).

A row is valid at its audit event (every pair write appends one naming its claim and study) for
the study facts it was read with, in this release's layout. Rows are written only at a settled
mark (db.read.summary.read_mark), never over a row of a newer mark, and a row whose content this
process did not write is never moved to a newer mark. Writing is best effort: a database that
refuses the write (read-only, locked past the busy timeout) leaves the rows as they were.
"""

from __future__ import annotations

import logging
import sys
from array import array
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import and_, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from db.engine import SQLITE_BUSY_TIMEOUT_MS
from db.models import AuditEvent, SummaryCopyRecord
from db.read.claim_evidence import ClaimEvidence, Entry
from db.review.pair_evidence import Findings, pair_findings
from db.vocab import DESIGN_BY_VALUE, VERDICT_BY_VALUE, PairState

log = logging.getLogger(__name__)

# The arrays' and legend's layout: rows of another layout are ignored (and rewritten).
LAYOUT = 1
_BIG_ENDIAN = sys.byteorder == "big"


def facts_text(facts: tuple[Any, ...]) -> str:
    """The study facts' signature (db.corpus.study_facts.facts_signature) as stored."""
    return "|".join(str(value) for value in facts)


def load_copies(
    session: Session, claim_ids: Collection[int], facts: tuple[Any, ...]
) -> dict[int, tuple[ClaimEvidence, tuple[int, str]]]:
    """claim id -> (its kept copy, the audit event (id, time) it is valid at), for the claims whose
    row is of this layout, read with these study facts, and whose audit event is still the one it
    was written at (a restored database reuses ids). A damaged row is skipped."""
    table = SummaryCopyRecord.__table__
    query = select(table).where(
        table.c.claim_id.in_(list(claim_ids)),
        table.c.layout == LAYOUT,
        table.c.facts == facts_text(facts),
    )
    rows = session.execute(query).mappings().all()
    if not rows:
        return {}
    audit = AuditEvent.__table__
    marks = {row["audit_id"] for row in rows}
    events = {
        int(event_id): str(at)
        for event_id, at in session.execute(select(audit.c.id, audit.c.at).where(audit.c.id.in_(list(marks))))
    }
    valid = [row for row in rows if events.get(row["audit_id"]) == row["audit_at"]]
    findings: dict[int, dict[int, Findings]] = {}
    for (claim_id, pmid), stated in pair_findings(session, [row["claim_id"] for row in valid]).items():
        findings.setdefault(claim_id, {})[pmid] = stated
    found = {}
    for row in valid:
        claim = _decode(row, findings.get(row["claim_id"], {}))
        if claim is not None:
            found[claim.claim_id] = (claim, (int(row["audit_id"]), str(row["audit_at"])))
    return found


def has_copies(session: Session, facts: tuple[Any, ...]) -> bool:
    """Whether any claim's copy of this layout was read with these study facts."""
    table = SummaryCopyRecord.__table__
    query = (
        select(table.c.claim_id).where(table.c.layout == LAYOUT, table.c.facts == facts_text(facts)).limit(1)
    )
    return session.execute(query).first() is not None


def store_copies(
    session: Session, claims: Iterable[ClaimEvidence], audit: tuple[int, str], facts: tuple[Any, ...]
) -> None:
    """Keep these copies, valid at `audit` (settled) for `facts`: rows of new copies are written,
    and rows this process wrote or read before are moved to `audit` (no pair of theirs changed
    since, or the copy would be new)."""
    claims = list(claims)
    new = [c for c in claims if c.stored_at is None or c.stored_extras != _extras(c)]
    moved = [c for c in claims if c.stored_at is not None and c.stored_at != audit[0] and c not in new]
    # (ClaimEvidence compares by identity: `in` is cheap.)
    if not new and not moved:
        return
    written, kept = [], []
    engine = session.get_bind().engine
    try:
        with engine.begin() as connection, _short_waits(connection):
            for claim in new:
                if _upsert(connection, claim, audit, facts):
                    written.append(claim)
            for claim in moved:
                if _move(connection, claim, audit):
                    kept.append(claim)
    except DBAPIError as exc:  # best effort: the next summary writes again
        if str(engine.url) not in _WARNED:  # once per database: a read-only replica refuses every time
            _WARNED.add(str(engine.url))
            log.warning(
                "verdict summary: its copy was not kept in the database (%s); it is written again with "
                "the next summary",
                str(exc).splitlines()[0],
            )
        return
    for claim in written:
        claim.stored_at, claim.stored_extras = audit[0], _extras(claim)
    for claim in moved:
        # A row another process rewrote since is left to it; this copy is written afresh next time.
        claim.stored_at = audit[0] if claim in kept else None


_WARNED: set[str] = set()
# How long keeping the copy waits for another writer (an import's batch) before giving up this time:
# it runs on a page's read, which must not wait the busy timeout's 30 s.
_WAIT_MS = 200


@contextmanager
def _short_waits(connection: Connection) -> Iterator[None]:
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{_WAIT_MS}ms'")
        yield
        return
    connection.exec_driver_sql(f"PRAGMA busy_timeout = {_WAIT_MS}")
    try:
        yield
    finally:  # the connection goes back to the pool: as db.engine set it
        connection.exec_driver_sql(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")


def _extras(claim: ClaimEvidence) -> tuple[bool, bool]:
    return claim.fingerprint is not None, claim.tally is not None


def _upsert(
    connection: Connection, claim: ClaimEvidence, audit: tuple[int, str], facts: tuple[Any, ...]
) -> bool:
    table = SummaryCopyRecord.__table__
    row = {
        "claim_id": claim.claim_id,
        "layout": LAYOUT,
        "audit_id": audit[0],
        "audit_at": audit[1],
        "facts": facts_text(facts),
        "screened_out": claim.screened_out,
        "legend": [_entry_json(entry) for entry in claim.legend],
        "pmids": _bytes(claim.pmids),
        "codes": _bytes(claim.codes),
        "fingerprint": claim.fingerprint,
        "tally": list(claim.tally) if claim.tally is not None else None,
    }
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).values(row)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.claim_id],
        set_={name: statement.excluded[name] for name in row if name != "claim_id"},
        # Never over a copy of a newer mark (a slower process finishing late).
        where=table.c.audit_id <= statement.excluded.audit_id,
    )
    return bool(connection.execute(statement).rowcount)


def _move(connection: Connection, claim: ClaimEvidence, audit: tuple[int, str]) -> bool:
    table = SummaryCopyRecord.__table__
    statement = (
        update(table)
        .where(and_(table.c.claim_id == bindparam("claim"), table.c.audit_id == bindparam("was")))
        .values(audit_id=audit[0], audit_at=audit[1])
    )
    return bool(connection.execute(statement, {"claim": claim.claim_id, "was": claim.stored_at}).rowcount)


def _entry_json(entry: Entry) -> list[Any]:
    return [
        entry.state.value,
        entry.verdict.value if entry.verdict is not None else None,
        entry.reopened,
        entry.design.value if entry.design is not None else None,
        entry.retraction_status,
    ]


def _bytes(values: array) -> bytes:
    if _BIG_ENDIAN:
        values = array(values.typecode, values)
        values.byteswap()
    return values.tobytes()


def _array(typecode: str, data: bytes) -> array | None:
    values = array(typecode)
    if len(data) % values.itemsize:
        return None
    values.frombytes(data)
    if _BIG_ENDIAN:
        values.byteswap()
    return values


def _decode(row: Any, findings: dict[int, Findings]) -> ClaimEvidence | None:
    """A row as a copy, or None when it does not read back whole."""
    try:
        legend = [
            Entry(
                PairState(state),
                VERDICT_BY_VALUE[verdict] if verdict is not None else None,
                bool(reopened),
                DESIGN_BY_VALUE[design] if design is not None else None,
                status,
            )
            for state, verdict, reopened, design, status in row["legend"]
        ]
    except (KeyError, ValueError, TypeError):
        return None
    pmids, codes = _array("q", bytes(row["pmids"])), _array("H", bytes(row["codes"]))
    if pmids is None or codes is None or len(pmids) != len(codes) or (codes and max(codes) >= len(legend)):
        return None
    tally = row["tally"]
    return ClaimEvidence(
        int(row["claim_id"]),
        pmids,
        codes,
        legend,
        int(row["screened_out"]),
        findings,
        fingerprint=row["fingerprint"],
        tally=(int(tally[0]), int(tally[1])) if tally is not None else None,
        stored_at=int(row["audit_id"]),
        stored_extras=(row["fingerprint"] is not None, tally is not None),
    )
