"""Each judged pair's evidence fields (participants, follow-up, directness, ...), merged over its votes.

Reviewers record the fields on their own assessments (db.review.evidence_fields); the verdict rule
reads one set per pair. The merge: among the pair's votes that state anything, those that share
the pair's resolved verdict come first (they are what the verdict rests on), and each field is
taken from the most recently saved of them that states it. Only assessments that state a field
are read, so a large review without fields costs nothing here.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from typing import Any

from sqlalchemy import String, and_, or_, select, type_coerce
from sqlmodel import Session

from db.chunks import chunked
from db.models import Assessment, PairRecord
from db.review.verdicts import FINDING_FIELDS, StudyEvidence

Findings = dict[str, Any]


def pair_findings(
    session: Session, claim_ids: Collection[int], pmids: Collection[int] | None = None
) -> dict[tuple[int, int], Findings]:
    """(claim id, PMID) -> the stated fields of that pair (only pairs that state any)."""
    assessments, pairs = Assessment.__table__, PairRecord.__table__
    stated = or_(*(assessments.c[name].is_not(None) for name in FINDING_FIELDS))
    query = (
        select(
            assessments.c.claim_id,
            assessments.c.pmid,
            type_coerce(assessments.c.verdict, String) == type_coerce(pairs.c.verdict, String),
            assessments.c.updated_at,
            assessments.c.id,
            *(
                type_coerce(assessments.c[name], String) if name in _ENUMS else assessments.c[name]
                for name in FINDING_FIELDS
            ),
        )
        .join(pairs, and_(pairs.c.claim_id == assessments.c.claim_id, pairs.c.pmid == assessments.c.pmid))
        .where(assessments.c.claim_id.in_(list(claim_ids)), stated)
    )
    rows: list[Any] = []
    if pmids is None:
        rows = list(session.execute(query))
    else:
        for chunk in chunked(sorted(pmids)):
            rows += session.execute(query.where(assessments.c.pmid.in_(chunk)))
    # The pair's own verdict first, then the latest saved: the first to state a field wins.
    rows.sort(key=lambda r: (r[3], r[4]), reverse=True)
    rows.sort(key=lambda r: (r[0], r[1], not r[2]))  # stable: the newest stays first within
    found: dict[tuple[int, int], Findings] = {}
    for row in rows:
        findings = found.setdefault((row[0], row[1]), {})
        for name, value in zip(FINDING_FIELDS, row[5:], strict=True):
            if value is not None and name not in findings:
                findings[name] = value
    return found


_ENUMS = frozenset({"population", "intervention", "directness", "risk_of_bias"})


# What a report quotes of a pair, beside the rule's fields: merged the same way.
STATEMENT_FIELDS = ("quote", "effect", "follow_up", "note")


def pair_statements(session: Session, claim_id: int, pmids: Collection[int]) -> dict[int, dict[str, str]]:
    """PMID -> the quote, effect, follow-up (as written) and note of each of these pairs of one claim, each
    taken from the pair's votes as `pair_findings` takes its fields (non-empty ones only)."""
    assessments, pairs = Assessment.__table__, PairRecord.__table__
    query = (
        select(
            assessments.c.pmid,
            type_coerce(assessments.c.verdict, String) == type_coerce(pairs.c.verdict, String),
            assessments.c.updated_at,
            assessments.c.id,
            *(assessments.c[name] for name in STATEMENT_FIELDS),
        )
        .join(pairs, and_(pairs.c.claim_id == assessments.c.claim_id, pairs.c.pmid == assessments.c.pmid))
        .where(assessments.c.claim_id == claim_id)
    )
    rows: list[Any] = []
    for chunk in chunked(sorted(pmids)):
        rows += session.execute(query.where(assessments.c.pmid.in_(chunk)))
    rows.sort(key=lambda r: (r[2], r[3]), reverse=True)
    rows.sort(key=lambda r: (r[0], not r[1]))
    found: dict[int, dict[str, str]] = {}
    for row in rows:
        statements = found.setdefault(row[0], {})
        for name, value in zip(STATEMENT_FIELDS, row[4:], strict=True):
            if value and name not in statements:
                statements[name] = value
    return found


def with_findings(study: StudyEvidence, findings: Findings | None) -> StudyEvidence:
    """`study` carrying its pair's stated evidence fields."""
    return replace(study, **findings) if findings else study
