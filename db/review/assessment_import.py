"""Importing a team's spreadsheet of assessments: every row checked first, then all written or none."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import select
from sqlmodel import Session, col

from db.corpus.design import parse_design
from db.errors import ImportRejected, InvalidInputError
from db.models import Article, Claim, User
from db.review.assessments import (
    apply_update,
    check_quote,
    evidence_of,
    find_assessment,
    parse_verdict,
    record_assessment,
)
from db.review.evidence_fields import Evidence, checked_evidence
from db.review.pair_index import lock_pairs
from db.review.roles import Action, add_user, can, require
from db.vocab import ClaimStatus, Role, StudyDesign, StudyVerdict

T = TypeVar("T")


@dataclass(frozen=True)
class AssessmentRow:
    """One spreadsheet row as text, with the line it starts on (for error messages)."""

    line: int
    reviewer: str
    claim_key: str
    pmid: str
    verdict: str
    quote: str = ""
    note: str = ""
    design: str = ""
    # The evidence cells of the row (db.review.evidence_fields.EVIDENCE_FIELDS) its file has columns
    # for; None: the file has none, and an existing assessment's evidence stays as it is.
    evidence: Mapping[str, str] | None = None


@dataclass
class ImportOutcome:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    reviewers_created: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _CheckedRow:
    row: AssessmentRow
    reviewer: User | None  # None: a reviewer the import creates
    claim: Claim
    pmid: int
    verdict: StudyVerdict
    design: StudyDesign | None
    evidence: Evidence | None  # None: keep what an existing assessment has


def import_assessments(
    session: Session,
    actor: User,
    rows: list[AssessmentRow],
    *,
    source: str = "import",
    create_reviewers: bool = False,
) -> ImportOutcome:
    """Import assessments all-or-nothing: every row is checked first, and any bad row raises
    ImportRejected listing each bad line with its reason, before anything is written.

    A row for a (reviewer, claim, study) already judged updates that assessment (audited with
    before and after); an identical row changes nothing. Unknown reviewers are bad rows unless
    `create_reviewers` is set and the actor is an admin; then they are added as reviewers.
    """
    require(actor, Action.ASSESS)
    problems: list[tuple[int, str]] = []
    checked: list[_CheckedRow] = []
    seen: dict[tuple[str, str, str], int] = {}
    for row in rows:
        reasons: list[str] = []
        reviewer = _check_reviewer(session, actor, row.reviewer, create_reviewers, reasons)
        claim = _check_claim(session, row.claim_key, reasons)
        article = _check_article(session, row.pmid, reasons)
        verdict = _check(reasons, "bad verdict", parse_verdict, row.verdict)
        design = _check(reasons, "bad design", parse_design_cell, row.design) if row.design.strip() else None
        if article is not None and verdict is not None:
            _check(reasons, "quote not in the abstract", check_quote, article, verdict, row.quote)
        evidence = _check_evidence(session, row, reviewer, claim, article, reasons)
        key = (row.reviewer.strip(), row.claim_key.strip(), row.pmid.strip())
        if key in seen:
            reasons.append(f"same reviewer, claim and PMID as line {seen[key]}")
        seen.setdefault(key, row.line)
        if reasons:
            problems.extend((row.line, reason) for reason in reasons)
        elif claim is not None and article is not None and verdict is not None:
            checked.append(_CheckedRow(row, reviewer, claim, article.pmid, verdict, design, evidence))
    if problems:
        raise ImportRejected(source, problems)

    outcome = ImportOutcome()
    lock_pairs(session, [(item.claim.id, item.pmid) for item in checked if item.claim.id is not None])
    for item in checked:
        reviewer = item.reviewer or find_user_by_name(session, item.row.reviewer.strip())
        if reviewer is None:
            reviewer = add_user(session, actor, item.row.reviewer.strip(), Role.REVIEWER)
            outcome.reviewers_created.append(reviewer.name)
        where = f"{source} line {item.row.line}"
        existing = find_assessment(session, item.claim.id, item.pmid, reviewer.id)
        if existing is None:
            record_assessment(
                session,
                actor,
                item.claim,
                item.pmid,
                item.verdict,
                quote=item.row.quote,
                note=item.row.note,
                design=item.design,
                reviewer=reviewer,
                source=where,
                evidence=item.evidence,
            )
            outcome.created += 1
            continue
        version = existing.version
        apply_update(
            session,
            actor,
            existing,
            version,
            item.verdict,
            item.row.quote,
            item.row.note,
            item.design,
            None,
            where,
            evidence=item.evidence,
        )
        if existing.version == version:
            outcome.unchanged += 1
        else:
            outcome.updated += 1
    return outcome


def parse_design_cell(text: str) -> StudyDesign:
    try:
        return parse_design(text)
    except ValueError as exc:
        raise InvalidInputError(str(exc)) from None


def find_user_by_name(session: Session, name: str) -> User | None:
    return session.scalars(select(User).where(col(User.name) == name)).first()


def _check(reasons: list[str], label: str, attempt: Callable[..., T], *args: Any) -> T | None:
    try:
        return attempt(*args)
    except InvalidInputError as exc:
        reasons.append(f"{label}: {exc}")
        return None


def _check_reviewer(
    session: Session, actor: User, name: str, create: bool, reasons: list[str]
) -> User | None:
    name = name.strip()
    if not name:
        reasons.append("no reviewer named; fill the reviewer column")
        return None
    if name != actor.name and not can(actor, Action.ASSESS_FOR_OTHERS):
        reasons.append(
            f"row is for reviewer {name!r} but {actor.name!r} is a {actor.role}: reviewers import only "
            "their own rows; ask an editor to import the team's file"
        )
    reviewer = find_user_by_name(session, name)
    if reviewer is None:
        if not create:
            reasons.append(
                f"unknown reviewer {name!r}; add them (users add {name} --role reviewer --as ADMIN) or import "
                "with --create-reviewers"
            )
        elif not can(actor, Action.MANAGE_USERS):
            reasons.append(f"unknown reviewer {name!r}; only an admin may create reviewers while importing")
        return None
    if not can(reviewer, Action.ASSESS):
        reasons.append(f"user {name!r} is a {reviewer.role} (or deactivated) and cannot hold assessments")
    return reviewer


def _check_evidence(
    session: Session,
    row: AssessmentRow,
    reviewer: User | None,
    claim: Claim | None,
    article: Article | None,
    reasons: list[str],
) -> Evidence | None:
    """The row's evidence fields, checked: the file's columns over what an existing assessment holds."""
    if row.evidence is None:
        return None
    values: dict[str, object] = dict(row.evidence)
    existing = (
        find_assessment(session, claim.id, article.pmid, reviewer.id)
        if reviewer is not None and claim is not None and article is not None
        else None
    )
    if existing is not None:
        kept = {
            name: value for name, value in evidence_of(existing).as_values().items() if name not in values
        }
        if "follow_up" in values:
            kept.pop("follow_up_days", None)  # worked out again from the file's follow-up
        values = kept | values
    return _check(reasons, "bad evidence", checked_evidence, values)


def _check_claim(session: Session, key: str, reasons: list[str]) -> Claim | None:
    claim = session.scalars(select(Claim).where(col(Claim.key) == key.strip())).first()
    if claim is None:
        reasons.append(f"unknown claim {key.strip()!r}; use a key from `claims list`")
        return None
    if ClaimStatus(claim.status) is not ClaimStatus.ACTIVE:
        target = session.get(Claim, claim.merged_into_id) if claim.merged_into_id else None
        into = f" into {target.key!r}; use that key" if target else ""
        reasons.append(f"claim {claim.key!r} is {ClaimStatus(claim.status).value}{into}")
        return None
    return claim


def _check_article(session: Session, pmid: str, reasons: list[str]) -> Article | None:
    text = pmid.strip()
    if not text.isdigit():
        reasons.append(f"PMID {text!r} is not a number")
        return None
    article = session.get(Article, int(text))
    if article is None:
        reasons.append(f"unknown PMID {text}: not in the database; harvest or import it first")
    return article
