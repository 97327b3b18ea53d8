"""Editor sign-off of claims, "evidence changed since sign-off", and the editor's work queue."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlmodel import Session, col

from db.clock import utcnow
from db.corpus.study_facts import study_facts
from db.errors import InvalidInputError
from db.models import Assessment, Claim, ClaimProposal, SignOff, User
from db.review.audit import record_event
from db.review.claims import list_claims
from db.review.pairs import claim_evidence, listed_evidence, open_conflicts, pair_statuses
from db.review.rating import (
    DEPARTURE_RATIONALE_MIN,
    departs_from_verdict,
    matching_ratings,
    parse_rating,
    publishable_ratings,
)
from db.review.roles import Action, require
from db.review.verdicts import (
    FINDING_FIELDS,
    ClaimScope,
    ClaimVerdictResult,
    DesignScope,
    Sensitivity,
    derive_claim_verdict,
    evidence_fingerprint,
    evidence_snapshot,
)
from db.vocab import (
    AuditAction,
    ClaimStatus,
    ClaimVerdict,
    PairState,
    ProposalStatus,
    Rating,
    SignOffDecision,
    Strength,
    StudyDesign,
)


def claim_verdict(
    session: Session, claim: Claim, scope: DesignScope = DesignScope.GRADED
) -> ClaimVerdictResult:
    """The claim's derived verdict from its current evidence (see db.review.verdicts.derive_claim_verdict).

    Served from the verdict summary's per-process copy of the claim's evidence when there is one
    (db.read.summary: brought up to date with the writes since, and the verdict worked out once per
    copy); otherwise derived from the claim's pairs read here.
    """
    # Imported here: the summary (db.read) reads through this module's neighbours.
    from db.read.summary import kept_claim_evidence

    assert claim.id is not None
    claim_scope = ClaimScope.of(claim)
    kept = kept_claim_evidence(session, claim.id)
    if kept is None:
        evidence, screened_out = listed_evidence(session, claim)
        return derive_claim_verdict(evidence, scope, screened_out=screened_out, claim=claim_scope)
    return kept.worked_out(
        (DesignScope(scope), claim_scope), lambda: kept.verdict(DesignScope(scope), claim_scope)
    )


def claim_sensitivity(session: Session, claim: Claim) -> Sensitivity:
    evidence, screened_out = listed_evidence(session, claim)
    return Sensitivity(
        *(
            derive_claim_verdict(evidence, scope, screened_out=screened_out, claim=ClaimScope.of(claim))
            for scope in (DesignScope.GRADED, DesignScope.HIGH_CERTAINTY, DesignScope.ALL_DESIGNS)
        )
    )


def sign_off(
    session: Session,
    actor: User,
    claim: Claim,
    decision: SignOffDecision | str,
    rationale: str,
    rating: Rating | str | None,
) -> SignOff:
    """An editor's decision on a claim and the rating to publish, with a snapshot of the evidence.

    "OK to publish" is refused while reviewers' disagreements on the claim are unresolved (the verdict
    would rest on pairs that have none), and on insufficient evidence unless the rating says so. A
    rating that departs from the derived verdict (db.review.rating) needs a rationale of a sentence.
    """
    require(actor, Action.SIGN_OFF)
    decision = _parse_decision(decision)
    rating = parse_rating(rating)
    rationale = rationale.strip()
    if not rationale:
        raise InvalidInputError(
            f"A sign-off of claim {claim.key!r} needs a rationale; say why in a sentence."
        )
    if ClaimStatus(claim.status) is not ClaimStatus.ACTIVE:
        raise InvalidInputError(
            f"Claim {claim.key!r} is {ClaimStatus(claim.status).value}; only active claims are signed off."
        )
    evidence = claim_evidence(session, claim)
    if decision is SignOffDecision.OK_TO_PUBLISH:
        pending = [e.pmid for e in evidence if e.verdict is None]
        if pending:
            raise InvalidInputError(
                f"Claim {claim.key!r} has unresolved conflicts on PMID {', '.join(map(str, pending))}; "
                "resolve them before signing it off as ok to publish."
            )
        unsure = unconfirmed_designs(session, [e.pmid for e in evidence])
        if unsure:
            listed = ", ".join(
                f"PMID {pmid} ({design.value}, confidence {c:.2f})" for pmid, design, c in unsure
            )
            raise InvalidInputError(
                f"Claim {claim.key!r} rests on studies whose design was prefilled with low confidence: "
                f"{listed}; confirm or correct each design before signing it off as ok to publish."
            )
    result = derive_claim_verdict(evidence, claim=ClaimScope.of(claim))
    verdict, strength = ClaimVerdict(result.verdict), Strength(result.strength)
    if decision is SignOffDecision.OK_TO_PUBLISH and rating not in publishable_ratings(verdict):
        allowed = " or ".join(r.value.replace("_", "-") for r in publishable_ratings(verdict))
        raise InvalidInputError(
            f"Claim {claim.key!r} has {verdict.label} (certainty {strength.label}): it can be published "
            f"only rated {allowed}, not {rating.value.replace('_', '-')}; rate it so, or sign it off as revise-wording or "
            "remove-claim."
        )
    departs = departs_from_verdict(rating, verdict)
    if departs and len(rationale) < DEPARTURE_RATIONALE_MIN:
        matching = " or ".join(r.value.replace("_", "-") for r in matching_ratings(verdict))
        raise InvalidInputError(
            f"Rating {rating.value.replace('_', '-')!r} departs from the derived verdict of claim {claim.key!r} "
            f"({verdict.label}, certainty {strength.label}; it matches {matching}); say why in a sentence "
            f"(at least {DEPARTURE_RATIONALE_MIN} characters)."
        )
    assert claim.id is not None and actor.id is not None
    signoff = SignOff(
        claim_id=claim.id,
        decision=decision,
        rationale=rationale,
        signed_by_id=actor.id,
        verdict=verdict,
        strength=strength,
        rating=rating,
        evidence_fingerprint=evidence_fingerprint(evidence),
        evidence=evidence_snapshot(evidence),
    )
    session.add(signoff)
    session.flush()
    record_event(
        session,
        actor,
        AuditAction.CLAIM_SIGNED_OFF,
        signoff,
        after={
            "decision": decision,
            "rating": rating,
            "verdict": verdict,
            "strength": strength,
            "departs_from_verdict": departs,
        },
        reason=rationale,
        claim_id=claim.id,
    )
    return signoff


def unconfirmed_designs(session: Session, pmids: Iterable[int]) -> list[tuple[int, StudyDesign, float]]:
    """Studies whose design is a low-confidence prefill no person has confirmed: (PMID, design, confidence)."""
    facts = study_facts(session, sorted(set(pmids)))
    return [
        (pmid, fact.design, fact.design_confidence)
        for pmid, fact in sorted(facts.items())
        if fact.needs_design_confirmation and not fact.is_notice
    ]


def _parse_decision(value: SignOffDecision | str) -> SignOffDecision:
    if isinstance(value, SignOffDecision):
        return value
    try:
        return SignOffDecision(value.strip().lower().replace("-", "_").replace(" ", "_"))
    except ValueError:
        known = ", ".join(d.value.replace("_", "-") for d in SignOffDecision)
        raise InvalidInputError(f"Unknown sign-off decision {value!r}; use one of {known}.") from None


def latest_signoff(session: Session, claim_id: int) -> SignOff | None:
    query = select(SignOff).where(col(SignOff.claim_id) == claim_id).order_by(col(SignOff.id).desc()).limit(1)
    return session.scalars(query).first()


@dataclass(frozen=True)
class SignOffState:
    signoff: SignOff | None
    signed_by: str | None
    evidence_changed: bool
    changes: list[str] = field(default_factory=list)  # in words: "PMID 123 newly tagged: supported"

    @property
    def provisional(self) -> bool:
        return is_provisional(None if self.signoff is None else self.evidence_changed)


def is_provisional(evidence_changed: bool | None) -> bool:
    """Whether a claim's verdict is provisional, from its latest sign-off's `evidence_changed`
    (None: never signed off). Only a sign-off whose evidence fingerprint is today's makes it final."""
    return evidence_changed is None or evidence_changed


def signoff_state(session: Session, claim: Claim) -> SignOffState:
    """The claim's latest sign-off and whether its evidence moved on since.

    Computed from the current evidence every time, so it is right whether or not the harvester
    called flag_changed_evidence.
    """
    assert claim.id is not None
    signoff = latest_signoff(session, claim.id)
    if signoff is None:
        return SignOffState(None, None, False)
    signer = session.get(User, signoff.signed_by_id)
    evidence = claim_evidence(session, claim)
    if evidence_fingerprint(evidence) == signoff.evidence_fingerprint:
        return SignOffState(signoff, signer.name if signer else None, False)
    changes = describe_changes(signoff.evidence, evidence_snapshot(evidence))
    return SignOffState(signoff, signer.name if signer else None, True, changes)


def describe_changes(before: list[dict[str, object]], after: list[dict[str, object]]) -> list[str]:
    """What differs between two evidence snapshots, one line per study."""
    old = {int(str(row["pmid"])): row for row in before}
    new = {int(str(row["pmid"])): row for row in after}
    lines = []
    for pmid in sorted(old.keys() | new.keys()):
        was, now = old.get(pmid), new.get(pmid)
        if was is None and now is not None:
            lines.append(f"PMID {pmid} newly tagged: {now['verdict']}")
        elif now is None:
            lines.append(f"PMID {pmid} no longer counted")
        elif was != now:
            assert was is not None  # the first branch took a study only in `after`
            # Snapshots leave out the evidence fields nobody stated.
            fields = [
                f"{name} {was.get(name) or 'none'} -> {now.get(name) or 'none'}"
                for name in ("verdict", "design", "retraction_status", *FINDING_FIELDS)
                if was.get(name) != now.get(name)
            ]
            lines.append(f"PMID {pmid}: {', '.join(fields)}")
    return lines


def flag_changed_evidence(session: Session, pmids: Iterable[int]) -> list[str]:
    """After a harvest: keys of signed-off claims relying on these PMIDs whose evidence changed.

    Writes one audit event per sign-off the first time its change is noticed. The editor queue
    does not depend on this call (it recomputes), so a missed call loses only the audit line.
    """
    wanted = {int(p) for p in pmids}
    if not wanted:
        return []
    claim_ids = set(session.scalars(select(col(Assessment.claim_id)).where(col(Assessment.pmid).in_(wanted))))
    flagged = []
    for claim_id in sorted(claim_ids):
        claim = session.get(Claim, claim_id)
        assert claim is not None
        state = signoff_state(session, claim)
        if not state.evidence_changed or state.signoff is None:
            continue
        flagged.append(claim.key)
        if state.signoff.change_noted_at is None:
            state.signoff.change_noted_at = utcnow()
            session.add(state.signoff)
            record_event(
                session,
                None,
                AuditAction.EVIDENCE_CHANGED,
                state.signoff,
                after={"changes": state.changes},
                claim_id=claim.id,
                source="harvest",
            )
    return flagged


# --- the editor's queue ----------------------------------------------------------------------------


class QueueKind(StrEnum):
    CONFLICT = "conflict"  # reviewers disagree on a study
    EVIDENCE_CHANGED = "evidence_changed"  # signed off, but the evidence moved on since
    AWAITING_SIGNOFF = "awaiting_signoff"  # judged studies, no sign-off yet
    PROPOSALS = "proposals"  # claim proposals of a document wait for accept / reject


_PRIORITY = {
    QueueKind.CONFLICT: 0,
    QueueKind.EVIDENCE_CHANGED: 1,
    QueueKind.AWAITING_SIGNOFF: 2,
    QueueKind.PROPOSALS: 3,
}


@dataclass(frozen=True)
class QueueItem:
    kind: QueueKind
    claim_key: str | None
    pmid: int | None
    summary: str
    since: datetime | None = None


def editor_queue(session: Session, actor: User) -> list[QueueItem]:
    """What needs an editor, most urgent first: conflicts, changed evidence, claims to sign off, proposals."""
    require(actor, Action.SIGN_OFF)
    items = [
        QueueItem(
            QueueKind.CONFLICT,
            c.claim_key,
            c.pmid,
            f"{'Reopened: ' if c.reopened else ''}reviewers disagree on PMID {c.pmid} for {c.claim_key!r}: "
            + ", ".join(f"{name} {verdict.value}" for name, verdict in sorted(c.votes.items())),
        )
        for c in open_conflicts(session, actor)
    ]
    for claim in list_claims(session):
        assert claim.id is not None
        state = signoff_state(session, claim)
        if state.evidence_changed and state.signoff is not None:
            items.append(
                QueueItem(
                    QueueKind.EVIDENCE_CHANGED,
                    claim.key,
                    None,
                    f"Evidence changed since sign-off of {claim.key!r}: " + "; ".join(state.changes),
                    state.signoff.signed_at,
                )
            )
        elif state.signoff is None:
            judged = [s for s in pair_statuses(session, claim.id) if s.state is not PairState.CONFLICT]
            if judged:
                items.append(
                    QueueItem(
                        QueueKind.AWAITING_SIGNOFF,
                        claim.key,
                        None,
                        f"{claim.key!r} has {len(judged)} judged stud{'y' if len(judged) == 1 else 'ies'} "
                        "and no sign-off",
                    )
                )
    pending = session.scalars(
        select(ClaimProposal).where(col(ClaimProposal.status) == ProposalStatus.PENDING)
    )
    per_document: dict[int, int] = {}
    for proposal in pending:
        per_document[proposal.document_id] = per_document.get(proposal.document_id, 0) + 1
    for document_id, n in sorted(per_document.items()):
        items.append(
            QueueItem(
                QueueKind.PROPOSALS, None, None, f"{n} claim proposals of document {document_id} to review"
            )
        )
    return sorted(items, key=lambda item: _PRIORITY[item.kind])
