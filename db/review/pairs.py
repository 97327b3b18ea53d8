"""(Claim, study) pairs: votes as a viewer may see them, conflicts, resolutions, and a claim's evidence."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlmodel import Session, col

from db.corpus.study_facts import study_facts
from db.errors import InvalidInputError
from db.models import Article, Assessment, Claim, ConflictResolution, SourceDocument, User
from db.review.assessments import get_article_or_fail, parse_verdict
from db.review.audit import record_event
from db.review.pair_evidence import pair_findings, with_findings
from db.review.pair_index import claim_pairs, evidence_pairs, refresh_pairs, screened_out_tally
from db.review.pair_rule import pair_standing
from db.review.pair_rule import votes_signature as signature_of
from db.review.roles import Action, can, require
from db.review.verdicts import EXCLUDING_STATUSES, StudyEvidence
from db.vocab import AuditAction, PairState, StudyDesign, StudyVerdict

# --- votes, with blind mode ------------------------------------------------------------------------


@dataclass(frozen=True)
class Vote:
    assessment_id: int
    reviewer: str
    verdict: StudyVerdict
    quote: str
    note: str
    design: StudyDesign
    version: int


@dataclass(frozen=True)
class PairVotes:
    """What one viewer may see of one (claim, study) pair."""

    own: Vote | None
    others: list[Vote] = field(default_factory=list)
    hidden: int = 0  # others' votes withheld by blind mode until the viewer records their own


def is_blinded(session: Session, viewer: User, claim: Claim) -> bool:
    """Whether blind mode hides others' votes from `viewer` on this claim's pairs."""
    # Blind mode protects reviewers from anchoring on others' verdicts. Editors and admins
    # resolve conflicts and must see votes; viewers cannot vote, so they cannot be anchored.
    if can(viewer, Action.RESOLVE_CONFLICTS) or not can(viewer, Action.ASSESS):
        return False
    document = session.get(SourceDocument, claim.document_id)
    return bool(document and document.blind_mode)


def votes_visible_to(session: Session, viewer: User) -> Callable[[int | None, int | None], bool]:
    """Whether `viewer` may see individual votes on a (claim id, pmid) pair, for exports.

    The dashboard's rule, for a whole table at once: in blind mode a reviewer sees others' votes only
    on the studies they judged themselves; what is not about one pair (pmid None) is always visible.
    """
    require(viewer, Action.READ)
    blinded = {claim.id for claim in session.scalars(select(Claim)) if is_blinded(session, viewer, claim)}
    if not blinded:
        return lambda _claim_id, _pmid: True
    judged = {
        (claim_id, pmid)
        for claim_id, pmid in session.execute(
            select(col(Assessment.claim_id), col(Assessment.pmid)).where(
                col(Assessment.reviewer_id) == viewer.id
            )
        )
    }

    def visible(claim_id: int | None, pmid: int | None) -> bool:
        return claim_id not in blinded or pmid is None or (claim_id, pmid) in judged

    return visible


def pair_votes(session: Session, viewer: User, claim: Claim, pmid: int) -> PairVotes:
    """The votes on a pair as `viewer` may see them: in blind mode, others' only after one's own."""
    require(viewer, Action.READ)
    rows = _pair_assessments(session, claim.id, pmid)
    own_row = next((a for a in rows if a.reviewer_id == viewer.id), None)
    own = _vote(session, own_row) if own_row is not None else None
    others = [_vote(session, a) for a in rows if a is not own_row]
    if own is None and is_blinded(session, viewer, claim):
        return PairVotes(own=None, others=[], hidden=len(others))
    return PairVotes(own=own, others=others)


def visible_assessments(session: Session, viewer: User, claim: Claim) -> list[Assessment]:
    """A claim's assessments `viewer` may read: in blind mode a reviewer sees others' assessments
    only on the studies they have judged themselves."""
    require(viewer, Action.READ)
    query = select(Assessment).where(col(Assessment.claim_id) == claim.id).order_by(col(Assessment.id))
    rows = list(session.scalars(query))
    if not is_blinded(session, viewer, claim):
        return rows
    judged = {a.pmid for a in rows if a.reviewer_id == viewer.id}
    return [a for a in rows if a.pmid in judged]


def _pair_assessments(session: Session, claim_id: int | None, pmid: int) -> list[Assessment]:
    query = select(Assessment).where(col(Assessment.claim_id) == claim_id, col(Assessment.pmid) == pmid)
    return list(session.scalars(query.order_by(col(Assessment.id))))


def _vote(session: Session, assessment: Assessment) -> Vote:
    reviewer = session.get(User, assessment.reviewer_id)
    assert assessment.id is not None and reviewer is not None
    return Vote(
        assessment_id=assessment.id,
        reviewer=reviewer.name,
        verdict=StudyVerdict(assessment.verdict),
        quote=assessment.quote,
        note=assessment.note,
        design=StudyDesign(assessment.design),
        version=assessment.version,
    )


# --- agreement state and conflicts -----------------------------------------------------------------


@dataclass(frozen=True)
class PairStatus:
    claim_id: int
    pmid: int
    votes: dict[str, StudyVerdict]  # reviewer name -> verdict
    state: PairState
    verdict: StudyVerdict | None  # the pair's resolved verdict; None while in conflict
    resolution: ConflictResolution | None = None


def votes_signature(assessments: list[Assessment]) -> str:
    """db.review.pair_rule.votes_signature of these assessments."""
    return signature_of((a.id or 0, a.version) for a in assessments)


def pair_statuses(session: Session, claim_id: int) -> list[PairStatus]:
    """Every study judged for a claim, with its votes and resolved verdict, by PMID, as
    db.review.pair_rule.pair_standing decides."""
    by_pmid: dict[int, list[Assessment]] = defaultdict(list)
    for assessment in session.scalars(select(Assessment).where(col(Assessment.claim_id) == claim_id)):
        by_pmid[assessment.pmid].append(assessment)
    latest: dict[int, ConflictResolution] = {}
    query = select(ConflictResolution).where(col(ConflictResolution.claim_id) == claim_id)
    for newer in session.scalars(query.order_by(col(ConflictResolution.id))):
        latest[newer.pmid] = newer
    names = {user.id: user.name for user in session.scalars(select(User))}
    statuses = []
    for pmid in sorted(by_pmid):
        votes = by_pmid[pmid]
        resolution = latest.get(pmid)
        ballot = {names[a.reviewer_id]: StudyVerdict(a.verdict) for a in votes}
        state, verdict = pair_standing(
            (StudyVerdict(a.verdict) for a in votes),
            votes_signature(votes),
            (StudyVerdict(resolution.verdict), resolution.votes_signature)
            if resolution is not None
            else None,
        )
        statuses.append(PairStatus(claim_id, pmid, ballot, state, verdict, resolution))
    return statuses


@dataclass(frozen=True)
class Conflict:
    claim_key: str
    pmid: int
    title: str
    votes: dict[str, StudyVerdict]
    reopened: bool  # resolved once, but the votes changed since


def open_conflicts(session: Session, actor: User, claim: Claim | None = None) -> list[Conflict]:
    """Pairs whose reviewers disagree and await an editor's resolution."""
    require(actor, Action.RESOLVE_CONFLICTS)
    claims = [claim] if claim is not None else list(session.scalars(select(Claim).order_by(col(Claim.id))))
    conflicts = []
    for each in claims:
        assert each.id is not None
        for status in pair_statuses(session, each.id):
            if status.state is PairState.CONFLICT:
                article = session.get(Article, status.pmid)
                title = article.title if article is not None else ""
                conflicts.append(
                    Conflict(each.key, status.pmid, title, status.votes, status.resolution is not None)
                )
    return conflicts


def resolve_conflict(
    session: Session, actor: User, claim: Claim, pmid: int, verdict: StudyVerdict | str, reason: str
) -> ConflictResolution:
    """An editor's final verdict for a pair; the reviewers' votes are kept as they are."""
    require(actor, Action.RESOLVE_CONFLICTS)
    verdict = parse_verdict(verdict)
    if not reason.strip():
        raise InvalidInputError(
            f"Say why PMID {pmid} is {verdict.value!r} for claim {claim.key!r}; the reason is kept with the votes."
        )
    get_article_or_fail(session, pmid)
    votes = _pair_assessments(session, claim.id, pmid)
    if not votes:
        raise InvalidInputError(
            f"No reviewer has judged PMID {pmid} for claim {claim.key!r}; there is nothing to resolve."
        )
    assert claim.id is not None and actor.id is not None
    resolution = ConflictResolution(
        claim_id=claim.id,
        pmid=pmid,
        verdict=verdict,
        reason=reason.strip(),
        votes_signature=votes_signature(votes),
        resolved_by_id=actor.id,
    )
    session.add(resolution)
    session.flush()
    names = {user.id: user.name for user in session.scalars(select(User))}
    record_event(
        session,
        actor,
        AuditAction.CONFLICT_RESOLVED,
        resolution,
        before={"votes": {names[a.reviewer_id]: StudyVerdict(a.verdict).value for a in votes}},
        after={"verdict": verdict},
        reason=reason.strip(),
        claim_id=claim.id,
        pmid=pmid,
    )
    refresh_pairs(session, [(claim.id, pmid)])
    return resolution


# --- the evidence a claim verdict is derived from --------------------------------------------------


def claim_evidence(session: Session, claim: Claim) -> list[StudyEvidence]:
    """Each judged study's resolved verdict, current design and retraction status, by PMID.

    The pairs come from db.review.pair_index (kept by every write, by the rule of db.review.pair_rule), the
    designs and standings from db.corpus.study_facts, which reads the stored values, never ORM objects a
    harvest's core updates may have left stale in this session.
    """
    assert claim.id is not None
    pairs = claim_pairs(session, claim.id)
    facts = study_facts(session, [pmid for pmid, _ in pairs])
    findings = pair_findings(session, [claim.id])
    return [
        with_findings(
            StudyEvidence(pmid, verdict, facts[pmid].design, facts[pmid].retraction_status),
            findings.get((claim.id, pmid)),
        )
        for pmid, verdict in pairs
    ]


def listed_evidence(session: Session, claim: Claim) -> tuple[list[StudyEvidence], int]:
    """claim_evidence without the studies that are only screened out, and how many those are.

    What the verdict rule lists, read from db.review.pair_index: derive_claim_verdict(evidence,
    screened_out=n) equals derive_claim_verdict(claim_evidence(...)), at a fraction of the work
    on a large review, where most judged studies are screened out.
    """
    assert claim.id is not None
    facts = study_facts(session)
    excluded = [pmid for pmid, fact in facts.items() if fact.retraction_status in EXCLUDING_STATUSES]
    pairs = evidence_pairs(session, [claim.id], excluded).get(claim.id, [])
    screened = screened_out_tally(session, [claim.id], excluded).get(claim.id, 0)
    findings = pair_findings(session, [claim.id])
    evidence = [
        with_findings(
            StudyEvidence(p.pmid, p.verdict, facts[p.pmid].design, facts[p.pmid].retraction_status),
            findings.get((claim.id, p.pmid)),
        )
        for p in pairs
    ]
    return evidence, screened
