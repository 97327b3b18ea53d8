"""The claim registry: add, edit, merge and retire the claims of source documents, keeping history."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from db.clock import utcnow
from db.errors import ConflictError, InvalidInputError, NotFoundError
from db.models import Assessment, Claim, SourceDocument, User
from db.review.audit import record_event
from db.review.pair_index import refresh_pairs
from db.review.roles import Action, require
from db.vocab import AuditAction, ClaimStatus, Intervention, Population

KEY_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_PICO_FIELDS = ("population", "intervention", "comparator", "outcome", "time_frame")
# What the verdict rule reads of a claim's scope (db.review.certainty): the time frame in days and
# the populations and interventions (db.vocab codes) it is about.
SCOPE_FIELDS = ("follow_up_min_days", "follow_up_max_days", "populations", "interventions")
EDITABLE_FIELDS = frozenset({"statement", "sentence", "span", *_PICO_FIELDS, *SCOPE_FIELDS})
_SCOPE_VOCAB: dict[str, type[StrEnum]] = {"populations": Population, "interventions": Intervention}


def checked_scope(name: str, value: Any) -> Any:
    """A claim scope field's value, checked; raises InvalidInputError naming the field and the fix."""
    if name in _SCOPE_VOCAB:
        vocab = _SCOPE_VOCAB[name]
        codes = [value] if isinstance(value, str) else list(value or [])
        allowed = [member.value for member in vocab]
        unknown = [code for code in codes if code not in allowed]
        if unknown:
            raise InvalidInputError(
                f"Unknown {name} {unknown}; use any of {', '.join(allowed)} (none: the claim is about any)."
            )
        return [code for code in allowed if code in codes]  # vocabulary order, no repeats
    if value is None or value == "":
        return None
    try:
        days = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be a number of days, not {value!r}; e.g. 7 or 0.5.") from None
    if not 0 <= days <= 36_500:
        raise InvalidInputError(f"{name} must be between 0 and 36500 days, not {value!r}.")
    return days


def _check_time_frame(key: str, low: float | None, high: float | None) -> None:
    if low is not None and high is not None and low > high:
        raise InvalidInputError(
            f"Claim {key!r}: follow_up_min_days ({low:g}) is after follow_up_max_days ({high:g}); swap them."
        )


def locate_sentence(
    document: SourceDocument, sentence: str, span: tuple[int, int] | None = None
) -> tuple[int, int]:
    """The (start, end) of `sentence` in the document's text, checked; raises InvalidInputError.

    With `span` given it must cut exactly `sentence` out of the text. Without it the sentence must
    occur exactly once, so that the claim can always be found again.
    """
    text = document.text
    if not sentence.strip():
        raise InvalidInputError(
            "A claim needs the sentence it comes from; copy it exactly from the document."
        )
    if span is not None:
        start, end = span
        if not (0 <= start < end <= len(text)):
            raise InvalidInputError(
                f"Span {start}..{end} lies outside document {document.slug!r} ({len(text)} characters); "
                "give character offsets within the text."
            )
        if text[start:end] != sentence:
            found = text.find(sentence)
            hint = f"; the sentence occurs at {found}..{found + len(sentence)}" if found >= 0 else ""
            raise InvalidInputError(
                f"Span {start}..{end} of document {document.slug!r} reads {text[start:end]!r}, "
                f"not the claim's sentence{hint}."
            )
        return start, end
    starts = [m.start() for m in re.finditer(re.escape(sentence), text)]
    if not starts:
        raise InvalidInputError(
            f"The sentence {_short(sentence)!r} does not occur in document {document.slug!r}; "
            "copy it exactly from the text (same punctuation and apostrophes)."
        )
    if len(starts) > 1:
        raise InvalidInputError(
            f"The sentence {_short(sentence)!r} occurs {len(starts)} times in document {document.slug!r} "
            f"(at {', '.join(map(str, starts))}); give the span of the one the claim comes from."
        )
    return starts[0], starts[0] + len(sentence)


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_key(key: str) -> str:
    if not KEY_PATTERN.match(key) or len(key) > 100:
        raise InvalidInputError(
            f"Claim key {key!r} is not a stable key; use lowercase words joined by hyphens, "
            "e.g. 'rapid-onset'."
        )
    return key


def insert_claim(
    session: Session,
    actor: User | None,
    document: SourceDocument,
    *,
    key: str,
    statement: str,
    sentence: str,
    span: tuple[int, int] | None = None,
    reason: str | None = None,
    source: str | None = None,
    **pico: Any,
) -> Claim:
    """Create a claim without a permission check: for seed loading and already-checked callers.

    `pico`: the PICO fields as text, and the scope the verdict rule reads (SCOPE_FIELDS)."""
    check_key(key)
    if not statement.strip():
        raise InvalidInputError(f"Claim {key!r} needs a statement: the words an editor checks.")
    unknown = set(pico) - set(_PICO_FIELDS) - set(SCOPE_FIELDS)
    if unknown:
        raise InvalidInputError(
            f"Unknown claim fields {sorted(unknown)}; use {', '.join(_PICO_FIELDS + SCOPE_FIELDS)}."
        )
    scope = {name: checked_scope(name, pico.get(name)) for name in SCOPE_FIELDS}
    _check_time_frame(key, scope["follow_up_min_days"], scope["follow_up_max_days"])
    if session.scalars(select(Claim).where(col(Claim.key) == key)).first() is not None:
        raise ConflictError(
            f"A claim with key {key!r} exists already; choose another key or edit that claim."
        )
    start, end = locate_sentence(document, sentence, span)
    assert document.id is not None
    claim = Claim(
        key=key,
        document_id=document.id,
        statement=statement.strip(),
        sentence=sentence,
        span_start=start,
        span_end=end,
        status=ClaimStatus.ACTIVE,
        population=pico.get("population") or None,
        intervention=pico.get("intervention") or None,
        comparator=pico.get("comparator") or None,
        outcome=pico.get("outcome") or None,
        time_frame=pico.get("time_frame") or None,
        **scope,
    )
    session.add(claim)
    session.flush()
    record_event(
        session,
        actor,
        AuditAction.CLAIM_ADDED,
        claim,
        after=claim_fields(claim),
        reason=reason,
        source=source,
    )
    return claim


def add_claim(
    session: Session,
    actor: User,
    document: SourceDocument,
    *,
    key: str,
    statement: str,
    sentence: str,
    span: tuple[int, int] | None = None,
    reason: str | None = None,
    **pico: Any,
) -> Claim:
    """An editor registers a claim of `document`; the sentence is located and validated."""
    require(actor, Action.MANAGE_CLAIMS)
    return insert_claim(
        session,
        actor,
        document,
        key=key,
        statement=statement,
        sentence=sentence,
        span=span,
        reason=reason,
        **pico,
    )


def claim_fields(claim: Claim) -> dict[str, Any]:
    """The editable content of a claim, as the audit trail records it."""
    return {
        "key": claim.key,
        "statement": claim.statement,
        "sentence": claim.sentence,
        "span": [claim.span_start, claim.span_end],
        **{name: getattr(claim, name) for name in _PICO_FIELDS},
        **{name: getattr(claim, name) for name in SCOPE_FIELDS},
        "status": ClaimStatus(claim.status).value,
    }


def get_claim(session: Session, key: str) -> Claim:
    claim = session.scalars(select(Claim).where(col(Claim.key) == key)).first()
    if claim is None:
        raise NotFoundError(f"No claim with key {key!r}; list the claims with `claims list`.")
    return claim


def find_claim(session: Session, key: str) -> Claim | None:
    return session.scalars(select(Claim).where(col(Claim.key) == key)).first()


def list_claims(
    session: Session, document_id: int | None = None, include_retired: bool = False
) -> list[Claim]:
    query = select(Claim).order_by(col(Claim.document_id), col(Claim.span_start), col(Claim.id))
    if document_id is not None:
        query = query.where(col(Claim.document_id) == document_id)
    if not include_retired:
        query = query.where(col(Claim.status) == ClaimStatus.ACTIVE)
    return list(session.scalars(query))


def _require_active(claim: Claim, doing: str) -> None:
    if ClaimStatus(claim.status) is not ClaimStatus.ACTIVE:
        where = f" into claim id {claim.merged_into_id}" if claim.merged_into_id else ""
        raise InvalidInputError(
            f"Claim {claim.key!r} is {ClaimStatus(claim.status).value}{where}; cannot {doing} it. "
            "Work on the active claim instead."
        )


def edit_claim(
    session: Session, actor: User, key: str, /, *, reason: str | None = None, **changes: Any
) -> Claim:
    """Change a claim's wording, sentence (with `span`) or PICO fields; the audit keeps before/after.

    The key never changes: it is how exports, imports and other teams refer to the claim.
    """
    require(actor, Action.MANAGE_CLAIMS)
    unknown = set(changes) - EDITABLE_FIELDS
    if unknown:
        raise InvalidInputError(
            f"Cannot edit {sorted(unknown)} of a claim; editable fields are {sorted(EDITABLE_FIELDS)} "
            "(the key is stable: add a new claim and merge instead)."
        )
    claim = get_claim(session, key)
    _require_active(claim, "edit")
    before = claim_fields(claim)
    if "sentence" in changes or "span" in changes:
        document = session.get(SourceDocument, claim.document_id)
        assert document is not None
        sentence = changes.get("sentence", claim.sentence)
        claim.span_start, claim.span_end = locate_sentence(document, sentence, changes.get("span"))
        claim.sentence = sentence
    if "statement" in changes:
        if not str(changes["statement"]).strip():
            raise InvalidInputError(f"Claim {key!r} needs a statement; an empty one is not allowed.")
        claim.statement = str(changes["statement"]).strip()
    for name in _PICO_FIELDS:
        if name in changes:
            setattr(claim, name, changes[name] or None)
    for name in SCOPE_FIELDS:
        if name in changes:
            setattr(claim, name, checked_scope(name, changes[name]))
    _check_time_frame(key, claim.follow_up_min_days, claim.follow_up_max_days)
    after = claim_fields(claim)
    changed = {name for name in after if after[name] != before[name]}
    if not changed:
        return claim
    claim.updated_at = utcnow()
    session.add(claim)
    record_event(
        session,
        actor,
        AuditAction.CLAIM_EDITED,
        claim,
        before={name: before[name] for name in changed},
        after={name: after[name] for name in changed},
        reason=reason,
    )
    return claim


def retire_claim(session: Session, actor: User, key: str, reason: str) -> Claim:
    """Take a claim out of review; it, its assessments and its history stay readable."""
    require(actor, Action.MANAGE_CLAIMS)
    if not reason.strip():
        raise InvalidInputError(f"Say why claim {key!r} is retired; the reason is kept in its history.")
    claim = get_claim(session, key)
    _require_active(claim, "retire")
    claim.status = ClaimStatus.RETIRED
    claim.updated_at = utcnow()
    session.add(claim)
    record_event(
        session,
        actor,
        AuditAction.CLAIM_RETIRED,
        claim,
        before={"status": ClaimStatus.ACTIVE.value},
        after={"status": ClaimStatus.RETIRED.value},
        reason=reason,
    )
    return claim


@dataclass
class MergeOutcome:
    moved: int = 0
    # (pmid, reviewer id) whose reviewer had already judged that study for the target claim.
    kept: list[tuple[int, int]] = field(default_factory=list)


def merge_claims(session: Session, actor: User, source_key: str, into_key: str, reason: str) -> MergeOutcome:
    """Merge a duplicate claim into another: its assessments move, the duplicate is retired as merged.

    An assessment whose reviewer already judged the same study for the target stays with the
    merged claim (nothing is overwritten); the outcome lists those.
    """
    require(actor, Action.MANAGE_CLAIMS)
    if source_key == into_key:
        raise InvalidInputError(f"Cannot merge claim {source_key!r} into itself; name two different claims.")
    if not reason.strip():
        raise InvalidInputError(f"Say why {source_key!r} merges into {into_key!r}; the reason is kept.")
    source, target = get_claim(session, source_key), get_claim(session, into_key)
    _require_active(source, "merge")
    _require_active(target, "merge into")
    taken = {
        (pmid, reviewer_id)
        for pmid, reviewer_id in session.execute(
            select(col(Assessment.pmid), col(Assessment.reviewer_id)).where(
                col(Assessment.claim_id) == target.id
            )
        )
    }
    outcome = MergeOutcome()
    now = utcnow()
    moved: list[tuple[int, int]] = []
    for assessment in session.scalars(select(Assessment).where(col(Assessment.claim_id) == source.id)):
        if (assessment.pmid, assessment.reviewer_id) in taken:
            outcome.kept.append((assessment.pmid, assessment.reviewer_id))
            continue
        assert target.id is not None
        assessment.claim_id = target.id
        assessment.version += 1
        assessment.updated_at = now
        session.add(assessment)
        outcome.moved += 1
        assert source.id is not None
        moved += [(source.id, assessment.pmid), (target.id, assessment.pmid)]
        # Recorded under both claims: the source claim's history shows where its votes went, too.
        for claim_id in (target.id, source.id):
            record_event(
                session,
                actor,
                AuditAction.ASSESSMENT_MOVED,
                assessment,
                before={"claim": source.key},
                after={"claim": target.key},
                reason=reason,
                claim_id=claim_id,
            )
    refresh_pairs(session, moved)
    source.status = ClaimStatus.MERGED
    source.merged_into_id = target.id
    source.updated_at = now
    session.add(source)
    record_event(
        session,
        actor,
        AuditAction.CLAIM_MERGED,
        source,
        before={"status": ClaimStatus.ACTIVE.value},
        after={"status": ClaimStatus.MERGED.value, "merged_into": target.key, "moved": outcome.moved},
        reason=reason,
    )
    return outcome
