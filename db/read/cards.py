"""Claim cards for the Claims, Overview and Editor pages: each claim's verdicts, evidence meter,
progress and sign-off, as one viewer may see them (blind mode), from the summary (db.read.summary).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session, col

from db.corpus.design import DESIGN_TIER
from db.models import SignOff, SourceDocument, User
from db.read.claim_evidence import ClaimEvidence, claim_evidence_of
from db.read.standing import ClaimStanding, PairTally
from db.read.summary import (
    SUMMARY,
    ReadMark,
    read_mark,
    summary_evidence,
)
from db.review.claims import list_claims
from db.review.pair_index import voted_pairs
from db.review.roles import Action, can, require
from db.review.signoff import describe_changes
from db.review.verdicts import (
    ClaimScope,
    ClaimVerdictResult,
    DesignScope,
    StudyEvidence,
    VerdictOutline,
    evidence_snapshot,
    outline_verdict,
    snapshot_fingerprint,
)
from db.vocab import ClaimVerdict, Rating, SignOffDecision, Strength, StudyDesign, StudyVerdict

# Designs strongest first, the order meters and queues list them in.
DESIGN_ORDER: tuple[StudyDesign, ...] = tuple(
    sorted(StudyDesign, key=lambda d: (-DESIGN_TIER[d], list(StudyDesign).index(d)))
)


VERDICT_ORDER: tuple[StudyVerdict, ...] = tuple(StudyVerdict)


@dataclass(frozen=True)
class MeterRow:
    """One segment of a claim's evidence meter: how many studies of a design carry a verdict."""

    design: StudyDesign
    design_label: str  # design.label, a column of its own for the charts
    verdict: StudyVerdict
    studies: int
    counted: bool  # False: this design does not decide the verdict in the chosen scope


@dataclass(frozen=True)
class SignoffInfo:
    decision: SignOffDecision
    rationale: str
    signed_by: str | None
    signed_at: datetime
    verdict: ClaimVerdict
    strength: Strength
    evidence_changed: bool
    changes: tuple[str, ...] = ()
    rating: Rating | None = None  # None on sign-offs made before ratings


@dataclass(frozen=True)
class ClaimCard:
    """Everything the pages show about one claim, as the viewer may see it."""

    id: int
    key: str
    statement: str
    sentence: str
    span_start: int
    span_end: int
    document_id: int
    time_frame: str | None
    scope: DesignScope
    verdict: ClaimVerdict
    strength: Strength
    reasoning: str
    graded_verdict: ClaimVerdict
    high_certainty_verdict: ClaimVerdict
    all_designs_verdict: ClaimVerdict
    rests_on_weak_studies: bool
    meter: tuple[MeterRow, ...]
    excluded: tuple[tuple[int, str], ...]  # (pmid, reason): retracted, expression of concern, notice
    progress: dict[str, int]  # verdict value or "conflict" -> pairs, over the pairs the viewer may see
    judged: int  # studies anyone judged for this claim (a count reveals no verdict)
    conflicts: int
    blinded: bool  # blind mode limits what this viewer sees to the studies they judged themselves
    hidden: int  # judged studies hidden from this viewer by blind mode
    signoff: SignoffInfo | None = None
    # Provisional unless the latest sign-off is current; the claim's open conflicts and pairs awaiting a
    # second vote, whatever blind mode hides from this viewer (db.read.standing).
    standing: ClaimStanding = ClaimStanding(True, 0, 0)

    @property
    def certainty_label(self) -> str:
        """The certainty as pages show it: none ("—") for insufficient evidence, which weighs nothing."""
        return "—" if self.verdict is ClaimVerdict.INSUFFICIENT_EVIDENCE else self.strength.label


def claim_cards(
    session: Session,
    viewer: User,
    *,
    document_id: int | None = None,
    scope: DesignScope = DesignScope.GRADED,
) -> list[ClaimCard]:
    """The active claims (of one document, or all) with their verdicts, as `viewer` may see them.

    Blind mode (db.review.pairs.is_blinded) shows a blinded reviewer the verdicts only of the studies they
    judged themselves, here as in db.review.pairs.visible_assessments: their meter and verdict are computed
    from those studies, and the rest are counted as hidden.

    Reads the pairs from db.review.pair_index (kept by every write) and keeps the cards per process until
    the next write (see `read_mark`), and after a write reads again only the claims whose pairs
    changed (see `summary_evidence`): a large review's cards take a few seconds to derive.
    """
    require(viewer, Action.READ)
    blind_documents = blinded_documents(session, viewer)
    scope = DesignScope(scope)
    # Cards differ between viewers only where blind mode applies to them.
    view = (document_id, scope, viewer.id if blind_documents else None, frozenset(blind_documents))
    key = str(session.get_bind().engine.url)
    mark = read_mark(session)
    signature = mark.cards
    if signature is not None:
        kept = SUMMARY.cards(key, signature, view)
        if kept is not None:
            return kept
    cards = _claim_cards(session, viewer, document_id, scope, blind_documents, mark)
    if signature is not None:
        SUMMARY.keep_cards(key, signature, view, cards)
    return list(cards)


def _claim_cards(
    session: Session,
    viewer: User,
    document_id: int | None,
    scope: DesignScope,
    blind_documents: set[int],
    mark: ReadMark,
) -> list[ClaimCard]:
    claims = list_claims(session, document_id)
    if not claims:
        return []
    claim_ids = [c.id for c in claims if c.id is not None]
    summary = summary_evidence(session, mark)
    blind_ids = [c.id for c in claims if c.id is not None and c.document_id in blind_documents]
    own: dict[int, set[int]] = defaultdict(set)  # claim id -> the studies the viewer voted on
    if blind_ids and viewer.id is not None:
        for claim_id, pmid in voted_pairs(session, viewer.id, blind_ids):
            own[claim_id].add(pmid)
    signoffs = latest_signoffs(session, claim_ids)
    names = user_names(session)
    nothing = claim_evidence_of(0, [], {}, 0, {})
    cards = []
    for claim in claims:
        assert claim.id is not None
        full = summary.claims.get(claim.id, nothing)
        blinded = claim.document_id in blind_documents
        if blinded:
            listed_visible, out_visible, counts, progress, conflicts = full.visible_to(
                own.get(claim.id, set())
            )
        else:
            listed_visible, out_visible = full.listed, full.screened_out
            counts, progress, conflicts = full.counts, full.progress, full.conflicts
        out_total = full.screened_out
        claim_scope = ClaimScope.of(claim)
        if blinded:
            graded, high, every = (
                outline_verdict(counts, view, claim_scope)
                for view in (DesignScope.GRADED, DesignScope.HIGH_CERTAINTY, DesignScope.ALL_DESIGNS)
            )
        else:  # everyone's view of the claim: worked out once per copy of its evidence
            graded, high, every = (
                _outline(full, view, claim_scope)
                for view in (DesignScope.GRADED, DesignScope.HIGH_CERTAINTY, DesignScope.ALL_DESIGNS)
            )
        chosen = {
            DesignScope.GRADED: graded,
            DesignScope.HIGH_CERTAINTY: high,
            DesignScope.ALL_DESIGNS: every,
        }[scope]
        signoff = signoffs.get(claim.id)
        # The sign-off is compared with the full evidence, whoever looks at it (screened-out
        # studies are no part of a sign-off's evidence snapshot).
        info = _signoff_details(signoff, *full.sealed(), names) if signoff else None
        cards.append(
            ClaimCard(
                id=claim.id,
                key=claim.key,
                statement=claim.statement,
                sentence=claim.sentence,
                span_start=claim.span_start,
                span_end=claim.span_end,
                document_id=claim.document_id,
                time_frame=claim.time_frame,
                scope=scope,
                verdict=chosen.verdict,
                strength=chosen.strength,
                reasoning=chosen.reasoning,
                graded_verdict=graded.verdict,
                high_certainty_verdict=high.verdict,
                all_designs_verdict=every.verdict,
                rests_on_weak_studies=graded.verdict is not high.verdict,
                meter=outline_meter_rows(chosen),
                excluded=_excluded(full)
                if not blinded
                else tuple((e.pmid, e.reason) for e in counts.excluded),
                progress=dict(progress),
                judged=full.listed + out_total,
                conflicts=conflicts,
                blinded=blinded,
                hidden=full.listed + out_total - listed_visible - out_visible,
                signoff=info,
                standing=ClaimStanding.of(
                    info.evidence_changed if info else None, PairTally(*full.tally) if full.tally else None
                ),
            )
        )
    return cards


def _outline(full: ClaimEvidence, scope: DesignScope, claim: ClaimScope) -> VerdictOutline:
    return full.worked_out(("outline", scope, claim), lambda: outline_verdict(full.counts, scope, claim))


def _excluded(full: ClaimEvidence) -> tuple[tuple[int, str], ...]:
    return full.worked_out("excluded", lambda: tuple((e.pmid, e.reason) for e in full.counts.excluded))


def with_screened_out(result: ClaimVerdictResult, screened: int) -> ClaimVerdictResult:
    """`result` as if `screened` more studies screened out as not relevant had been in its evidence.

    They change nothing but the count and its phrase in the reasoning, so the verdict is derived
    from the other studies and the phrase written here as db.review.verdicts writes it; a test checks
    that this equals derive_claim_verdict over every study.
    """
    if not screened:
        return result
    total = result.not_relevant + screened
    phrase = f"{total} {'study' if total == 1 else 'studies'} screened out as not relevant"
    summary, conclusion = result.reasoning.split(". ", 1)
    parts = [] if summary == "No studies rated yet" else summary.split("; ")
    parts = [part for part in parts if not part.endswith("screened out as not relevant")] + [phrase]
    return replace(result, not_relevant=total, reasoning=f"{'; '.join(parts)}. {conclusion}")


def outline_meter_rows(outline: VerdictOutline) -> tuple[MeterRow, ...]:
    """meter_rows from a verdict computed on counts (db.review.verdicts.outline_verdict)."""
    rows = [
        MeterRow(design, design.label, verdict, n, design in outline.counted_designs)
        for (design, verdict), n in outline.considered.items()
    ]
    rows += [
        MeterRow(design, design.label, verdict, n, False)
        for (design, verdict), n in outline.not_counted.items()
    ]
    rows.sort(key=lambda r: (DESIGN_ORDER.index(r.design), VERDICT_ORDER.index(r.verdict)))
    return tuple(rows)


def meter_rows(result: ClaimVerdictResult) -> tuple[MeterRow, ...]:
    """The evidence meter of a verdict: studies per (design, verdict), strongest designs first."""
    counted = {(s.pmid) for s in result.counted}
    tally: Counter[tuple[StudyDesign, StudyVerdict, bool]] = Counter()
    for study in result.considered + result.not_counted:
        if study.verdict is None:
            continue
        tally[(study.design, StudyVerdict(study.verdict), study.pmid in counted)] += 1
    rows = [
        MeterRow(design, design.label, verdict, n, is_counted)
        for (design, verdict, is_counted), n in tally.items()
    ]
    rows.sort(key=lambda r: (DESIGN_ORDER.index(r.design), VERDICT_ORDER.index(r.verdict)))
    return tuple(rows)


def blinded_documents(session: Session, viewer: User) -> set[int]:
    # Mirrors db.review.pairs.is_blinded: editors and admins resolve conflicts and see every vote;
    # viewers cannot vote, so cannot be anchored.
    if can(viewer, Action.RESOLVE_CONFLICTS) or not can(viewer, Action.ASSESS):
        return set()
    query = select(col(SourceDocument.id)).where(col(SourceDocument.blind_mode).is_(True))
    return {doc_id for doc_id in session.scalars(query) if doc_id is not None}


def latest_signoffs(session: Session, claim_ids: Collection[int]) -> dict[int, SignOff]:
    query = select(SignOff).where(col(SignOff.claim_id).in_(list(claim_ids))).order_by(col(SignOff.id))
    return {s.claim_id: s for s in session.scalars(query)}


def user_names(session: Session) -> dict[int, str]:
    return {
        user_id: name for user_id, name in session.execute(select(col(User.id), col(User.name))) if user_id
    }


def signoff_info(signoff: SignOff, evidence: list[StudyEvidence], names: dict[int, str]) -> SignoffInfo:
    snapshot = evidence_snapshot(evidence)
    return _signoff_details(signoff, snapshot_fingerprint(snapshot), lambda: snapshot, names)


def _signoff_details(
    signoff: SignOff,
    fingerprint: str,
    snapshot: Callable[[], list[dict[str, object]]],
    names: dict[int, str],
) -> SignoffInfo:
    changed = fingerprint != signoff.evidence_fingerprint
    changes = describe_changes(signoff.evidence, snapshot()) if changed else []
    return SignoffInfo(
        decision=SignOffDecision(signoff.decision),
        rationale=signoff.rationale,
        signed_by=names.get(signoff.signed_by_id),
        signed_at=signoff.signed_at,
        verdict=ClaimVerdict(signoff.verdict),
        strength=Strength(signoff.strength),
        evidence_changed=changed,
        changes=tuple(changes),
        rating=Rating(signoff.rating) if signoff.rating else None,
    )
