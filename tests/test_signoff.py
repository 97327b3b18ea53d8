"""Sign-off, "evidence changed since sign-off" (with and without the harvester's call), the editor queue."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from db.corpus.articles import upsert_articles
from db.errors import InvalidInputError, PermissionDenied
from db.models import Article
from db.read.cards import claim_cards
from db.review.audit import claim_history
from db.review.signoff import (
    QueueKind,
    claim_verdict,
    editor_queue,
    flag_changed_evidence,
    sign_off,
    signoff_state,
)
from db.vocab import AuditAction, ClaimVerdict, Rating, SignOffDecision, Strength, StudyVerdict
from tests.review_builders import add_article, add_claim, document_of, team, vote


def _revised(article: Article, **changes: object) -> dict[str, object]:
    # The row a harvest would upsert for a revised record: same PMID, new content and hash.
    skip = {"first_seen_at", "updated_at", "deleted_in_pubmed"}
    row = {name: getattr(article, name) for name in Article.model_fields if name not in skip}
    return row | changes | {"content_hash": f"{article.content_hash}-revised"}


def test_claim_verdict_from_the_database(session: Session) -> None:
    people = team(session)
    claim = add_claim(session)
    add_article(session, 1, publication_types=["Meta-Analysis"])
    add_article(session, 2)
    meta_analysis = vote(session, people["reviewer"], claim, 1)
    trial = vote(session, people["reviewer"], claim, 2)

    result = claim_verdict(session, claim)

    assert result.verdict is ClaimVerdict.SUPPORTED
    # No participants stated: precision cannot be judged, rated down once.
    assert result.strength is Strength.MODERATE
    assert result.reasoning.startswith("1 meta-analysis and 1 RCT support")

    # The stated participants reach the rule from the assessments (900 + 60 >= 400: precise).
    meta_analysis.participants, trial.participants = 900, 60
    session.add_all([meta_analysis, trial])
    session.flush()
    result = claim_verdict(session, claim)
    assert result.strength is Strength.HIGH
    assert result.participants == 960


def test_signoff_keeps_the_evidence_and_is_current_until_it_changes(session: Session) -> None:
    people = team(session)
    claim = add_claim(session)
    add_article(session, 1)
    vote(session, people["reviewer"], claim, 1)

    signoff = sign_off(session, people["editor"], claim, "ok-to-publish", "One good RCT.", "accurate")
    state = signoff_state(session, claim)

    assert signoff.decision is SignOffDecision.OK_TO_PUBLISH
    assert signoff.verdict is ClaimVerdict.SUPPORTED
    assert signoff.evidence == [
        {"pmid": 1, "verdict": "supported", "design": "rct", "retraction_status": None}
    ]
    assert not state.evidence_changed and state.signed_by == "eve"


def test_a_signoff_on_stated_evidence_is_current_on_the_pages_and_a_new_figure_is_named(
    session: Session,
) -> None:
    people = team(session)
    claim = add_claim(session)
    add_article(session, 1)
    trial = vote(session, people["reviewer"], claim, 1)
    trial.participants, trial.follow_up_days = 80, 7.0
    session.add(trial)
    session.flush()
    sign_off(session, people["editor"], claim, "ok-to-publish", "One RCT of 80.", "accurate")

    # The pages' read model seals the evidence with its stated fields, as sign-off did.
    card = next(c for c in claim_cards(session, people["editor"]) if c.key == claim.key)
    assert card.signoff is not None and not card.signoff.evidence_changed
    assert not card.standing.provisional

    trial.participants = 120
    session.add(trial)
    session.flush()
    state = signoff_state(session, claim)
    assert state.evidence_changed and state.changes == ["PMID 1: participants 80 -> 120"]


def test_a_newly_tagged_study_marks_the_claim_changed(session: Session) -> None:
    people = team(session)
    claim = add_claim(session)
    add_article(session, 1)
    add_article(session, 2)
    vote(session, people["reviewer"], claim, 1)
    sign_off(
        session, people["editor"], claim, SignOffDecision.OK_TO_PUBLISH, "One good RCT.", Rating.ACCURATE
    )

    vote(session, people["reviewer"], claim, 2, StudyVerdict.UNSUPPORTED)
    state = signoff_state(session, claim)
    queue = editor_queue(session, people["editor"])

    assert state.evidence_changed
    assert state.changes == ["PMID 2 newly tagged: unsupported"]
    assert [(item.kind, item.claim_key) for item in queue] == [(QueueKind.EVIDENCE_CHANGED, "fast-relief")]


def test_a_retraction_after_signoff_is_noticed_even_without_the_harvest_hook(session: Session) -> None:
    people = team(session)
    claim = add_claim(session)
    article = add_article(session, 1)
    vote(session, people["reviewer"], claim, 1)
    sign_off(
        session, people["editor"], claim, SignOffDecision.OK_TO_PUBLISH, "One good RCT.", Rating.ACCURATE
    )

    upsert_articles(session, [_revised(article, retraction_status="retracted")])
    state = signoff_state(session, claim)

    assert state.evidence_changed
    assert state.changes == ["PMID 1: retraction_status none -> retracted"]
    assert claim_verdict(session, claim).verdict is ClaimVerdict.INSUFFICIENT_EVIDENCE


def test_flag_changed_evidence_names_the_claims_and_audits_once(session: Session) -> None:
    people = team(session)
    claim = add_claim(session)
    article = add_article(session, 1)
    add_article(session, 2)
    vote(session, people["reviewer"], claim, 1)
    vote(session, people["reviewer"], claim, 2)
    sign_off(session, people["editor"], claim, SignOffDecision.OK_TO_PUBLISH, "Two RCTs.", Rating.ACCURATE)
    upsert_articles(session, [_revised(article, retraction_status="corrected")])

    first = flag_changed_evidence(session, [1, 99])
    again = flag_changed_evidence(session, [1])
    unrelated = flag_changed_evidence(session, [2, 3])  # PMID 2 unchanged, but the claim still differs
    assert claim.id is not None
    events = [e for e in claim_history(session, claim.id) if e.action is AuditAction.EVIDENCE_CHANGED]

    assert first == again == unrelated == ["fast-relief"]
    assert len(events) == 1 and events[0].actor_name == "system"
    assert flag_changed_evidence(session, []) == []


def test_ok_to_publish_is_refused_while_conflicts_are_open(session: Session) -> None:
    people = team(session)
    claim = add_claim(session)
    add_article(session, 1)
    vote(session, people["reviewer"], claim, 1, StudyVerdict.SUPPORTED)
    vote(session, people["reviewer2"], claim, 1, StudyVerdict.UNSUPPORTED)

    with pytest.raises(InvalidInputError, match="unresolved conflicts on PMID 1; resolve them"):
        sign_off(
            session, people["editor"], claim, SignOffDecision.OK_TO_PUBLISH, "Looks fine.", Rating.ACCURATE
        )
    revise = sign_off(
        session, people["editor"], claim, SignOffDecision.REVISE_WORDING, "Too strong.", Rating.MISLEADING
    )

    assert revise.decision is SignOffDecision.REVISE_WORDING


def test_signoff_needs_an_editor_and_a_rationale(session: Session) -> None:
    people = team(session)
    claim = add_claim(session)

    with pytest.raises(PermissionDenied, match="signing claims off needs the role editor or admin"):
        sign_off(
            session, people["reviewer"], claim, SignOffDecision.OK_TO_PUBLISH, "Fine by me.", Rating.ACCURATE
        )
    with pytest.raises(InvalidInputError, match="needs a rationale"):
        sign_off(session, people["editor"], claim, SignOffDecision.OK_TO_PUBLISH, "", Rating.ACCURATE)
    with pytest.raises(InvalidInputError, match="Unknown sign-off decision 'publish'"):
        sign_off(session, people["editor"], claim, "publish", "Fine.", Rating.ACCURATE)


def test_editor_queue_lists_conflicts_first_then_claims_to_sign_off(session: Session) -> None:
    people = team(session)
    claim = add_claim(session)
    other = add_claim(
        session,
        document_of(session, claim),
        key="stays-well",
        sentence="Some patients stay well for months.",
        statement="Patients stay well for months.",
    )
    add_article(session, 1)
    vote(session, people["reviewer"], claim, 1, StudyVerdict.SUPPORTED)
    vote(session, people["reviewer2"], claim, 1, StudyVerdict.MIXED)
    vote(session, people["reviewer"], other, 1, StudyVerdict.MIXED)

    queue = editor_queue(session, people["editor"])

    assert [(item.kind, item.claim_key) for item in queue] == [
        (QueueKind.CONFLICT, "fast-relief"),
        (QueueKind.AWAITING_SIGNOFF, "stays-well"),
    ]
    assert "rita supported, rob mixed" in queue[0].summary
    with pytest.raises(PermissionDenied):
        editor_queue(session, people["reviewer"])
