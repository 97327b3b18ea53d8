"""Roles enforced in the data layer: the matrix, user management, and refusals with clear messages."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlmodel import Session

from db.errors import ConflictError, InvalidInputError, PermissionDenied
from db.models import User
from db.review.assessments import record_assessment
from db.review.claims import retire_claim
from db.review.roles import ROLE_ACTIONS, Action, add_user, can, deactivate_user, require, set_role
from db.review.signoff import sign_off
from db.review.sources import ensure_seed_content, set_blind_mode
from db.vocab import Role, SignOffDecision, StudyVerdict
from tests.review_builders import add_article, add_claim, team, vote


def test_role_matrix() -> None:
    assert ROLE_ACTIONS[Role.VIEWER] == {Action.READ}
    assert ROLE_ACTIONS[Role.REVIEWER] == {Action.READ, Action.ASSESS}
    assert Action.SIGN_OFF in ROLE_ACTIONS[Role.EDITOR]
    assert Action.RESOLVE_CONFLICTS in ROLE_ACTIONS[Role.EDITOR]
    assert Action.MANAGE_USERS not in ROLE_ACTIONS[Role.EDITOR]
    assert ROLE_ACTIONS[Role.ADMIN] == set(Action)


def test_viewers_read_but_do_not_assess(session: Session) -> None:
    people = team(session)
    claim = add_claim(session)
    add_article(session, 1)

    with pytest.raises(
        PermissionDenied, match="'vic' is a viewer; recording assessments needs the role reviewer"
    ):
        vote(session, people["viewer"], claim, 1)
    require(people["viewer"], Action.READ)


def test_reviewers_cannot_manage_claims_sign_off_or_change_documents(session: Session) -> None:
    people = team(session)
    ensure_seed_content(session)
    claim = add_claim(session)

    with pytest.raises(PermissionDenied, match="managing documents and claims"):
        retire_claim(session, people["reviewer"], "rapid-onset", "I disagree")
    with pytest.raises(PermissionDenied, match="signing claims off"):
        sign_off(session, people["reviewer"], claim, SignOffDecision.OK_TO_PUBLISH, "Fine", "accurate")
    with pytest.raises(PermissionDenied, match="managing documents and claims"):
        set_blind_mode(session, people["reviewer"], "test-post", False)


def test_reviewers_may_not_record_for_someone_else(session: Session) -> None:
    people = team(session)
    claim = add_claim(session)
    add_article(session, 1)
    with pytest.raises(PermissionDenied, match="recording assessments for other reviewers"):
        record_assessment(
            session,
            people["reviewer"],
            claim,
            1,
            StudyVerdict.SUPPORTED,
            quote="RESULTS",
            reviewer=people["reviewer2"],
        )
    made = record_assessment(
        session,
        people["editor"],
        claim,
        1,
        StudyVerdict.SUPPORTED,
        quote="RESULTS",
        reviewer=people["reviewer2"],
    )
    assert made.reviewer_id == people["reviewer2"].id


def test_the_first_user_must_be_an_admin_then_admins_add_users(session: Session) -> None:
    with pytest.raises(PermissionDenied, match="The first user must be an admin"):
        add_user(session, None, "eve", Role.EDITOR)
    admin = add_user(session, None, "ada", Role.ADMIN)
    editor = add_user(session, admin, "eve", Role.EDITOR)

    with pytest.raises(PermissionDenied, match="needs an acting admin"):
        add_user(session, None, "mallory", Role.ADMIN)
    with pytest.raises(PermissionDenied, match="managing users needs the role admin"):
        add_user(session, editor, "rita", Role.REVIEWER)
    with pytest.raises(ConflictError, match="'eve' exists already"):
        add_user(session, admin, "eve", Role.VIEWER)


def test_role_changes_and_deactivation_take_effect(session: Session) -> None:
    people = team(session)

    set_role(session, people["admin"], "vic", Role.REVIEWER, "Joined the review team")
    deactivate_user(session, people["admin"], "rob", "Left the project")

    assert can(people["viewer"], Action.ASSESS)
    with pytest.raises(PermissionDenied, match="'rob' is deactivated"):
        require(people["reviewer2"], Action.READ)


def test_the_last_admin_cannot_be_demoted_or_deactivated(session: Session) -> None:
    people = team(session)

    with pytest.raises(PermissionDenied, match="'ada' is the last active admin"):
        set_role(session, people["admin"], "ada", Role.EDITOR)
    with pytest.raises(PermissionDenied, match="last active admin"):
        deactivate_user(session, people["admin"], "ada")


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("eve\nadmin", "holds a line break"),
        ("tab\there", "holds a line break or another control character"),
        ("x" * 5000, "at most 100 characters, not 5,000"),
        ("   ", "A user needs a name"),
    ],
)
def test_user_names_that_would_not_read_in_one_line_or_restore_are_refused(
    session: Session, name: str, problem: str
) -> None:
    with pytest.raises(InvalidInputError, match=problem):
        add_user(session, None, name, Role.ADMIN)
    assert session.scalars(select(User)).all() == []  # the same answer on both engines: nothing stored
