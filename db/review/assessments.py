"""Assessments: one reviewer's verdict on one (claim, study) pair, with quote, design and versioning."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import CursorResult, String, select, type_coerce, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from db.chunks import chunked
from db.clock import utcnow
from db.corpus.classifier import LOW_CONFIDENCE
from db.errors import ConflictError, InvalidInputError, NotFoundError, PermissionDenied
from db.models import Article, Assessment, AuditEvent, Claim, DesignCorrection, User
from db.review.audit import record_event
from db.review.evidence_fields import Evidence, checked_evidence
from db.review.pair_index import refresh_pairs
from db.review.roles import Action, can, require
from db.vocab import AuditAction, ClaimStatus, StudyDesign, StudyVerdict

T = TypeVar("T")
_TYPOGRAPHY = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"', "–": "-", "—": "-", "\u00a0": " "})


# --- small rules -----------------------------------------------------------------------------------


def parse_verdict(text: str | StudyVerdict) -> StudyVerdict:
    """A study verdict from text: 'supported', 'Mixed', 'not relevant', 'not-relevant', ..."""
    if isinstance(text, StudyVerdict):
        return text
    cleaned = re.sub(r"[\s-]+", "_", text.strip().lower())
    try:
        return StudyVerdict(cleaned)
    except ValueError:
        known = ", ".join(v.value for v in StudyVerdict)
        raise InvalidInputError(f"Unknown verdict {text!r}; use one of {known}.") from None


def normalise_text(text: str) -> str:
    """Whitespace collapsed and typographic quotes and dashes made plain, for comparing quotes.

    Spreadsheets and word processors "smarten" quotes and wrap lines; neither should make a
    faithful quote fail.
    """
    return " ".join(text.translate(_TYPOGRAPHY).split())


def quote_in_article(article: Article, quote: str) -> bool:
    """True when the quote is a substring of the stored title or abstract (whitespace normalised)."""
    needle = normalise_text(quote)
    return bool(needle) and any(needle in normalise_text(text) for text in (article.title, article.abstract))


def check_quote(article: Article, verdict: StudyVerdict, quote: str) -> None:
    if not quote.strip():
        if verdict is StudyVerdict.NOT_RELEVANT:
            return  # screening a study out needs no justification from its text
        raise InvalidInputError(
            f"A {verdict.value!r} verdict on PMID {article.pmid} needs a quote from its title or abstract "
            "that justifies it."
        )
    if not quote_in_article(article, quote):
        raise InvalidInputError(
            f"The quote {_short(quote)!r} is not in the title or abstract of PMID {article.pmid}; "
            "copy the words exactly from the stored abstract."
        )


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def get_article_or_fail(session: Session, pmid: int) -> Article:
    article = session.get(Article, pmid)
    if article is None:
        raise NotFoundError(f"No article with PMID {pmid} in the database; harvest or import it first.")
    return article


def _active_claim(claim: Claim) -> Claim:
    if ClaimStatus(claim.status) is not ClaimStatus.ACTIVE:
        raise InvalidInputError(
            f"Claim {claim.key!r} is {ClaimStatus(claim.status).value}; assess the active claim instead."
        )
    return claim


# --- study designs ---------------------------------------------------------------------------------


def suggested_design(article: Article) -> StudyDesign:
    """The prefilled design of the article (before any reviewer's correction), see db.corpus.design."""
    return StudyDesign(article.design)


def effective_design(session: Session, article: Article) -> StudyDesign:
    """The study's design: the latest reviewer correction, else the PubMed suggestion."""
    latest = session.scalars(
        select(DesignCorrection)
        .where(col(DesignCorrection.pmid) == article.pmid)
        .order_by(col(DesignCorrection.id).desc())
        .limit(1)
    ).first()
    return StudyDesign(latest.design) if latest is not None else suggested_design(article)


def latest_design_corrections(session: Session, pmids: Sequence[int] | None = None) -> dict[int, StudyDesign]:
    """The latest reviewer correction per corrected study (all studies when `pmids` is None), in bulk."""
    table = DesignCorrection.__table__
    query = select(table.c.pmid, type_coerce(table.c.design, String)).order_by(table.c.id)
    if pmids is None:
        return {pmid: StudyDesign(design) for pmid, design in session.execute(query)}
    latest: dict[int, StudyDesign] = {}
    for chunk in chunked(list(pmids)):
        rows = session.execute(query.where(table.c.pmid.in_(chunk)))
        latest.update((pmid, StudyDesign(design)) for pmid, design in rows)
    return latest


def correct_design(
    session: Session, actor: User, pmid: int, design: StudyDesign, reason: str = ""
) -> DesignCorrection | None:
    """Record a reviewer's design for a study; None when it is the study's design already."""
    require(actor, Action.ASSESS)
    article = get_article_or_fail(session, pmid)
    return _correct_design(session, actor, article, design, reason)


def _correct_design(
    session: Session,
    actor: User,
    article: Article,
    design: StudyDesign,
    reason: str,
    source: str | None = None,
) -> DesignCorrection | None:
    current = effective_design(session, article)
    if current is design and not _unconfirmed_prefill(session, article):
        return None
    assert actor.id is not None
    correction = DesignCorrection(
        pmid=article.pmid, design=design, previous=current, corrected_by_id=actor.id, reason=reason
    )
    session.add(correction)
    session.flush()
    record_event(
        session,
        actor,
        AuditAction.DESIGN_CORRECTED,
        correction,
        before={"design": current},
        after={"design": design},
        reason=reason or None,
        pmid=article.pmid,
        source=source,
    )
    return correction


def _unconfirmed_prefill(session: Session, article: Article) -> bool:
    # Recording the prefilled design itself is how a reviewer confirms a low-confidence one.
    if article.design_confidence >= LOW_CONFIDENCE:
        return False
    query = select(col(DesignCorrection.id)).where(col(DesignCorrection.pmid) == article.pmid).limit(1)
    return session.scalars(query).first() is None


def confirm_design(session: Session, actor: User, pmid: int, reason: str = "") -> DesignCorrection | None:
    """A reviewer confirms the study's current design; kept with its author like a correction.

    None when there is nothing to confirm (a reviewer's design already, or a confident prefill).
    """
    require(actor, Action.ASSESS)
    article = get_article_or_fail(session, pmid)
    design = effective_design(session, article)
    return _correct_design(session, actor, article, design, reason or "confirmed")


def design_corrections(session: Session, pmid: int) -> list[DesignCorrection]:
    query = (
        select(DesignCorrection).where(col(DesignCorrection.pmid) == pmid).order_by(col(DesignCorrection.id))
    )
    return list(session.scalars(query))


# --- recording and changing ------------------------------------------------------------------------


def assessment_fields(assessment: Assessment) -> dict[str, Any]:
    """What the audit trail keeps of an assessment: its judgment and its non-empty evidence fields."""
    evidence = {
        name: value for name, value in evidence_of(assessment).as_values().items() if value is not None
    }
    return {
        "verdict": StudyVerdict(assessment.verdict).value,
        "quote": assessment.quote,
        "note": assessment.note,
        "design": StudyDesign(assessment.design).value,
        **evidence,
        "version": assessment.version,
    }


def evidence_of(assessment: Assessment) -> Evidence:
    """The evidence fields an assessment holds, as stored (not checked again)."""
    return Evidence(**{field.name: getattr(assessment, field.name) for field in dataclasses.fields(Evidence)})


def as_evidence(evidence: Evidence | Mapping[str, Any], where: str = "") -> Evidence:
    """`evidence` as checked fields: an Evidence is taken as it is, a mapping goes through
    db.review.evidence_fields.checked_evidence."""
    return evidence if isinstance(evidence, Evidence) else checked_evidence(evidence, where=where)


def record_assessment(
    session: Session,
    actor: User,
    claim: Claim,
    pmid: int,
    verdict: StudyVerdict | str,
    *,
    quote: str = "",
    note: str = "",
    design: StudyDesign | None = None,
    reviewer: User | None = None,
    source: str | None = None,
    evidence: Evidence | Mapping[str, Any] | None = None,
) -> Assessment:
    """Record a new judgment of (claim, study) by `reviewer` (default: the actor).

    Recording for someone else needs an editor (a team's spreadsheet import). A design that
    differs from the study's current one is kept as a correction by the reviewer. `evidence`:
    the study's evidence fields for the claim (a mapping is checked; None: none stated).
    """
    reviewer = reviewer or actor
    _require_can_assess(actor, reviewer)
    _active_claim(claim)
    article = get_article_or_fail(session, pmid)
    verdict = parse_verdict(verdict)
    check_quote(article, verdict, quote)
    fields = as_evidence(evidence) if evidence is not None else Evidence()
    existing = find_assessment(session, claim.id, pmid, reviewer.id)
    if existing is not None:
        raise ConflictError(
            f"{reviewer.name} has already judged PMID {pmid} for claim {claim.key!r} "
            f"(assessment {existing.id}, version {existing.version}); change that assessment instead."
        )
    if design is not None:
        _correct_design(session, reviewer, article, design, "confirmed while assessing", source)
    assert claim.id is not None and reviewer.id is not None
    assessment = Assessment(
        claim_id=claim.id,
        pmid=pmid,
        reviewer_id=reviewer.id,
        verdict=verdict,
        quote=quote.strip(),
        note=note.strip(),
        design=design or effective_design(session, article),
        suggested_design=suggested_design(article),
        **dataclasses.asdict(fields),  # enums, as the row holds them once loaded
    )
    # Read now: a failed flush rolls the session back and expires every loaded object, and
    # touching one then raises PendingRollbackError instead of the conflict message below.
    who, claim_key = reviewer.name, claim.key
    session.add(assessment)
    try:
        session.flush()
    except IntegrityError as exc:
        # Lost a race with the same reviewer's other window: the unique (claim, study, reviewer)
        # constraint caught it. The caller rolls back; nothing is half-written.
        raise ConflictError(
            f"{who} has just recorded a judgment of PMID {pmid} for claim {claim_key!r} "
            "elsewhere; roll back, reload and change that one instead."
        ) from exc
    record_event(
        session,
        actor,
        AuditAction.ASSESSMENT_RECORDED,
        assessment,
        after={"reviewer": reviewer.name, **assessment_fields(assessment)},
        source=source,
    )
    refresh_pairs(session, [(claim.id, pmid)])
    return assessment


def _require_can_assess(actor: User, reviewer: User) -> None:
    require(actor, Action.ASSESS)
    if reviewer.id != actor.id:
        require(actor, Action.ASSESS_FOR_OTHERS)
        if not can(reviewer, Action.ASSESS):
            raise PermissionDenied(
                f"{reviewer.name!r} is a {reviewer.role} and cannot hold assessments; "
                "make them a reviewer first."
            )


def find_assessment(
    session: Session, claim_id: int | None, pmid: int, reviewer_id: int | None
) -> Assessment | None:
    query = select(Assessment).where(
        col(Assessment.claim_id) == claim_id,
        col(Assessment.pmid) == pmid,
        col(Assessment.reviewer_id) == reviewer_id,
    )
    return session.scalars(query).first()


def get_assessment(session: Session, assessment_id: int) -> Assessment:
    assessment = session.get(Assessment, assessment_id)
    if assessment is None:
        raise NotFoundError(f"No assessment {assessment_id}; it may belong to another database.")
    return assessment


def update_assessment(
    session: Session,
    actor: User,
    assessment_id: int,
    expected_version: int,
    *,
    verdict: StudyVerdict | str | None = None,
    quote: str | None = None,
    note: str | None = None,
    design: StudyDesign | None = None,
    reason: str | None = None,
    source: str | None = None,
    evidence: Evidence | Mapping[str, Any] | None = None,
) -> Assessment:
    """Change one's own assessment, read at `expected_version`; a stale version raises ConflictError.

    `evidence`, when given, replaces the assessment's evidence fields as a whole (blank ones are
    cleared); None keeps them. The check and the write are one `UPDATE ... WHERE version = :expected`, so two people
    saving at once cannot both win: the second gets the conflict, not a silent overwrite.
    """
    require(actor, Action.ASSESS)
    assessment = get_assessment(session, assessment_id)
    if assessment.reviewer_id != actor.id:
        owner = session.get(User, assessment.reviewer_id)
        raise PermissionDenied(
            f"Assessment {assessment_id} is {owner.name if owner else 'another reviewer'}'s; reviewers change "
            "only their own. Record your own assessment, or (as an editor) resolve the pair's conflict."
        )
    return apply_update(
        session,
        actor,
        assessment,
        expected_version,
        verdict,
        quote,
        note,
        design,
        reason,
        source,
        evidence=evidence,
    )


def apply_update(
    session: Session,
    actor: User,
    assessment: Assessment,
    expected_version: int,
    verdict: StudyVerdict | str | None,
    quote: str | None,
    note: str | None,
    design: StudyDesign | None,
    reason: str | None,
    source: str | None,
    *,
    evidence: Evidence | Mapping[str, Any] | None = None,
) -> Assessment:
    """update_assessment's change without its check of who may change whose assessment (the
    caller has made it: an editor's import may change any reviewer's row)."""
    claim = session.get(Claim, assessment.claim_id)
    assert claim is not None
    _active_claim(claim)
    article = get_article_or_fail(session, assessment.pmid)
    before = assessment_fields(assessment)
    new_verdict = parse_verdict(verdict) if verdict is not None else StudyVerdict(assessment.verdict)
    new_quote = quote.strip() if quote is not None else assessment.quote
    check_quote(article, new_verdict, new_quote)
    values: dict[str, Any] = {
        "verdict": new_verdict,
        "quote": new_quote,
        "note": note.strip() if note is not None else assessment.note,
        "design": design or StudyDesign(assessment.design),
        **(as_evidence(evidence) if evidence is not None else evidence_of(assessment)).as_values(),
    }
    if (
        all(values[name] == getattr(assessment, name) for name in values)
        and assessment.version == expected_version
    ):
        return assessment  # nothing to change: no new version, no audit noise
    result = session.execute(
        update(Assessment)
        .where(col(Assessment.id) == assessment.id, col(Assessment.version) == expected_version)
        .values(**values, version=expected_version + 1, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    assert isinstance(result, CursorResult)  # an UPDATE's result; Session.execute is typed for SELECTs
    if result.rowcount != 1:
        session.refresh(assessment)
        raise ConflictError(_stale_message(session, assessment, expected_version))
    session.refresh(assessment)
    if design is not None:
        reviewer = session.get(User, assessment.reviewer_id)
        assert reviewer is not None
        _correct_design(session, reviewer, article, design, "confirmed while assessing", source)
    after = assessment_fields(assessment)
    # Either side may lack a field: assessment_fields leaves out the evidence fields not stated.
    names = [*before, *(name for name in after if name not in before)]
    changed = [name for name in names if after.get(name) != before.get(name) and name != "version"]
    record_event(
        session,
        actor,
        AuditAction.ASSESSMENT_CHANGED,
        assessment,
        before={name: before.get(name) for name in changed} | {"version": before["version"]},
        after={name: after.get(name) for name in changed} | {"version": after["version"]},
        reason=reason,
        source=source,
    )
    refresh_pairs(session, [(assessment.claim_id, assessment.pmid)])
    return assessment


def _stale_message(session: Session, assessment: Assessment, expected_version: int) -> str:
    last = session.scalars(
        select(AuditEvent)
        .where(col(AuditEvent.entity) == "assessment", col(AuditEvent.entity_id) == str(assessment.id))
        .order_by(col(AuditEvent.id).desc())
        .limit(1)
    ).first()
    who = f" by {last.actor_name} at {last.at:%Y-%m-%d %H:%M:%S} UTC" if last is not None else ""
    return (
        f"Assessment {assessment.id} (PMID {assessment.pmid}) was changed{who} since you read it "
        f"(you had version {expected_version}, it is now version {assessment.version}); "
        "reload it and apply your change again."
    )
