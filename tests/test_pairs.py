"""(Claim, study) pairs: blind mode, conflicts and their resolution, the evidence of a claim."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from db.errors import InvalidInputError, PermissionDenied
from db.review.assessments import update_assessment
from db.review.pairs import (
    claim_evidence,
    open_conflicts,
    pair_statuses,
    pair_votes,
    resolve_conflict,
    visible_assessments,
)
from db.vocab import PairState, StudyDesign, StudyVerdict
from tests.review_builders import add_article, add_claim, add_document, team, vote


def test_blind_mode_hides_others_votes_until_the_reviewer_votes(session: Session) -> None:
    people = team(session)
    claim = add_claim(session)
    add_article(session, 1)
    vote(session, people["reviewer"], claim, 1, StudyVerdict.SUPPORTED)

    before = pair_votes(session, people["reviewer2"], claim, 1)
    vote(session, people["reviewer2"], claim, 1, StudyVerdict.MIXED)
    after = pair_votes(session, people["reviewer2"], claim, 1)

    assert before.own is None and before.others == [] and before.hidden == 1
    assert after.own is not None and after.own.verdict is StudyVerdict.MIXED
    assert [(v.reviewer, v.verdict) for v in after.others] == [("rita", StudyVerdict.SUPPORTED)]


def test_blind_mode_filters_a_claims_assessment_list(session: Session) -> None:
    people = team(session)
    claim = add_claim(session)
    add_article(session, 1)
    add_article(session, 2)
    vote(session, people["reviewer"], claim, 1)
    vote(session, people["reviewer"], claim, 2)
    vote(session, people["reviewer2"], claim, 2)

    seen = visible_assessments(session, people["reviewer2"], claim)

    assert {(a.pmid, a.reviewer_id) for a in seen} == {
        (2, people["reviewer"].id),
        (2, people["reviewer2"].id),
    }


def test_editors_and_viewers_see_votes_and_blind_mode_can_be_off(session: Session) -> None:
    people = team(session)
    blind = add_claim(session)
    open_claim = add_claim(session, add_document(session, "open-post", blind_mode=False), key="open")
    add_article(session, 1)
    vote(session, people["reviewer"], blind, 1)
    vote(session, people["reviewer"], open_claim, 1)

    assert pair_votes(session, people["editor"], blind, 1).hidden == 0
    assert len(pair_votes(session, people["viewer"], blind, 1).others) == 1
    assert len(pair_votes(session, people["reviewer2"], open_claim, 1).others) == 1


def test_disagreement_is_a_conflict_until_an_editor_resolves_it(session: Session) -> None:
    people = team(session)
    claim = add_claim(session)
    add_article(session, 1)
    vote(session, people["reviewer"], claim, 1, StudyVerdict.SUPPORTED)
    vote(session, people["reviewer2"], claim, 1, StudyVerdict.UNSUPPORTED)

    conflicts = open_conflicts(session, people["editor"])
    resolve_conflict(session, people["editor"], claim, 1, "mixed", "Both readings are defensible.")
    assert claim.id is not None
    [status] = pair_statuses(session, claim.id)

    assert [(c.claim_key, c.pmid) for c in conflicts] == [("fast-relief", 1)]
    assert status.state is PairState.RESOLVED and status.verdict is StudyVerdict.MIXED
    # The original votes are kept beside the resolution.
    assert status.votes == {"rita": StudyVerdict.SUPPORTED, "rob": StudyVerdict.UNSUPPORTED}
    assert open_conflicts(session, people["editor"]) == []


def test_a_changed_vote_reopens_a_resolved_conflict(session: Session) -> None:
    people = team(session)
    claim = add_claim(session)
    add_article(session, 1)
    vote(session, people["reviewer"], claim, 1, StudyVerdict.SUPPORTED)
    mine = vote(session, people["reviewer2"], claim, 1, StudyVerdict.UNSUPPORTED)
    resolve_conflict(session, people["editor"], claim, 1, "supported", "The primary outcome improved.")

    assert mine.id is not None
    update_assessment(session, people["reviewer2"], mine.id, mine.version, verdict="mixed")
    [conflict] = open_conflicts(session, people["editor"])

    assert conflict.reopened


def test_screening_disagreement_is_a_conflict_too(session: Session) -> None:
    people = team(session)
    claim = add_claim(session)
    add_article(session, 1)
    vote(session, people["reviewer"], claim, 1, StudyVerdict.SUPPORTED)
    vote(session, people["reviewer2"], claim, 1, StudyVerdict.NOT_RELEVANT, quote="")
    assert claim.id is not None

    assert pair_statuses(session, claim.id)[0].state is PairState.CONFLICT


def test_only_editors_resolve_and_only_with_a_reason(session: Session) -> None:
    people = team(session)
    claim = add_claim(session)
    add_article(session, 1)
    vote(session, people["reviewer"], claim, 1)

    with pytest.raises(PermissionDenied, match="resolving conflicts needs the role editor or admin"):
        resolve_conflict(session, people["reviewer"], claim, 1, "mixed", "I changed my mind")
    with pytest.raises(InvalidInputError, match="Say why PMID 1"):
        resolve_conflict(session, people["editor"], claim, 1, "mixed", "  ")
    add_article(session, 2)
    with pytest.raises(InvalidInputError, match="nothing to resolve"):
        resolve_conflict(session, people["editor"], claim, 2, "mixed", "No votes yet")


def test_claim_evidence_carries_resolved_verdict_design_and_retraction(session: Session) -> None:
    people = team(session)
    claim = add_claim(session)
    add_article(session, 1, publication_types=["Journal Article"], retraction_status="corrected")
    add_article(session, 2)
    vote(session, people["reviewer"], claim, 1, design=StudyDesign.OBSERVATIONAL)
    vote(session, people["reviewer"], claim, 2, StudyVerdict.SUPPORTED)
    vote(session, people["reviewer2"], claim, 2, StudyVerdict.MIXED)

    evidence = {e.pmid: e for e in claim_evidence(session, claim)}

    assert evidence[1].design is StudyDesign.OBSERVATIONAL  # the reviewer's correction
    assert evidence[1].retraction_status == "corrected"
    assert evidence[2].design is StudyDesign.RCT  # from PubMed's publication types
    assert evidence[2].verdict is None  # in conflict
