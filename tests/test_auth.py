"""Sign-in modes and password hashing (db/review/auth.py)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from db.engine import open_session
from db.errors import InvalidInputError, NotFoundError, PermissionDenied, SignInThrottled
from db.models import UserCredential
from db.review.audit import audit_events
from db.review.auth import (
    auth_mode,
    authenticate,
    create_first_admin,
    hash_password,
    set_password,
    verify_password,
)
from db.review.roles import deactivate_user, get_user
from db.review.throttle import SignInThrottle
from db.vocab import AuditAction, AuthMode
from tests.dashboard_builders import add_team

PASSWORD = "correct horse battery"


def test_a_hash_is_salted_scrypt_and_never_holds_the_password() -> None:
    first, second = hash_password(PASSWORD), hash_password(PASSWORD)
    assert first != second  # a new salt each time
    assert first.startswith("scrypt$32768$8$1$")
    assert PASSWORD not in first


def test_verify_accepts_the_password_and_refuses_anything_else() -> None:
    encoded = hash_password(PASSWORD)
    assert verify_password(PASSWORD, encoded)
    assert not verify_password(PASSWORD + " ", encoded)
    assert not verify_password("", encoded)


@pytest.mark.parametrize(
    "damaged",
    ["", "scrypt$1$2", "bcrypt$1$1$1$AAAA$AAAA", "scrypt$x$8$1$AAAA$AAAA", "scrypt$16384$8$1$!!$??"],
)
def test_a_damaged_hash_lets_nobody_in(damaged: str) -> None:
    assert not verify_password(PASSWORD, damaged)


def test_a_hash_keeps_its_own_cost_so_old_hashes_stay_valid() -> None:
    import base64
    import hashlib

    salt = b"s" * 16
    key = hashlib.scrypt(PASSWORD.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    old = f"scrypt$16384$8$1${base64.b64encode(salt).decode()}${base64.b64encode(key).decode()}"
    assert verify_password(PASSWORD, old)


@pytest.mark.parametrize(
    ("configured", "oidc", "expected"),
    [
        (None, False, AuthMode.LOCAL),
        (None, True, AuthMode.OIDC),
        ("", True, AuthMode.OIDC),
        ("password", True, AuthMode.PASSWORD),
        (" Local ", False, AuthMode.LOCAL),
        ("oidc", True, AuthMode.OIDC),
    ],
)
def test_the_mode_comes_from_dashboard_auth_else_from_the_secrets(
    configured: str | None, oidc: bool, expected: AuthMode
) -> None:
    assert auth_mode(configured, oidc) is expected


def test_a_mode_that_cannot_work_is_refused_with_what_to_do() -> None:
    with pytest.raises(InvalidInputError, match="is not a sign-in mode; use one of local, password, oidc"):
        auth_mode("ldap", False)
    with pytest.raises(InvalidInputError, match=r"needs an \[auth\] section"):
        auth_mode("oidc", False)


def test_authenticate_needs_name_password_and_an_active_user(sqlite_url: str) -> None:
    with open_session(sqlite_url) as session:
        team = add_team(session)
        set_password(session, team["ada"], "rita", PASSWORD)
        session.flush()
        assert authenticate(session, "rita", PASSWORD) is team["rita"]
        assert authenticate(session, " rita ", PASSWORD) is team["rita"]
        assert authenticate(session, "rita", "wrong password") is None
        assert authenticate(session, "nobody", PASSWORD) is None
        assert authenticate(session, "rob", PASSWORD) is None  # no password set
        deactivate_user(session, team["ada"], "rita")
        assert authenticate(session, "rita", PASSWORD) is None


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def test_wrong_passwords_in_a_row_make_the_name_wait_longer_each_time(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    clock, throttle = FakeClock(), SignInThrottle()
    with open_session(sqlite_url) as session:
        team = add_team(session)
        set_password(session, team["ada"], "rita", PASSWORD)
        session.flush()
        caplog.set_level(logging.WARNING, logger="db.review.auth")
        for _ in range(5):
            assert authenticate(session, "rita", "a wrong guess", clock=clock, throttle=throttle) is None
        # Refused even with the right password, without checking it.
        with pytest.raises(SignInThrottled, match=r"Too many wrong passwords for rita; try again in 30 s"):
            authenticate(session, "rita", PASSWORD, clock=clock, throttle=throttle)
        assert (
            authenticate(session, "rob", "a wrong guess", clock=clock, throttle=throttle) is None
        )  # others not
        clock.advance(30)
        assert authenticate(session, "rita", "another guess", clock=clock, throttle=throttle) is None
        with pytest.raises(SignInThrottled, match="try again in 60 s"):  # the delay doubles
            authenticate(session, "rita", PASSWORD, clock=clock, throttle=throttle)
        clock.advance(60)
        assert authenticate(session, "rita", PASSWORD, clock=clock, throttle=throttle) is team["rita"]
        assert authenticate(session, "rita", "one slip", clock=clock, throttle=throttle) is None
        assert (
            authenticate(session, "rita", PASSWORD, clock=clock, throttle=throttle) is team["rita"]
        )  # reset

    messages = [r.getMessage() for r in caplog.records]
    assert sum("Wrong password for user 'rita'" in m for m in messages) == 7
    assert any("'rita' signed in from None after 6 wrong password(s)" in m for m in messages)
    assert not any("guess" in m or PASSWORD in m for m in messages)


def test_unknown_names_and_one_client_are_throttled_too(sqlite_url: str) -> None:
    clock, throttle = FakeClock(), SignInThrottle(per_user=5, per_client=3)
    with open_session(sqlite_url) as session:
        team = add_team(session)
        set_password(session, team["ada"], "rita", PASSWORD)
        session.flush()
        for name in ("zed", "yan", "xia"):
            assert (
                authenticate(session, name, "guess", client="203.0.113.9", clock=clock, throttle=throttle)
                is None
            )
        with pytest.raises(
            SignInThrottled, match="Too many wrong passwords from this address; try again in 30 s"
        ):
            authenticate(session, "rita", PASSWORD, client="203.0.113.9", clock=clock, throttle=throttle)
        assert authenticate(session, "rita", PASSWORD, client="198.51.100.7", clock=clock, throttle=throttle)
        for _ in range(5):
            authenticate(session, "nobody", "guess", clock=clock, throttle=throttle)
        with pytest.raises(SignInThrottled, match="for nobody"):  # the same answer as for a real name
            authenticate(session, "nobody", "guess", clock=clock, throttle=throttle)


def test_only_admins_set_other_peoples_passwords(sqlite_url: str) -> None:
    with open_session(sqlite_url) as session:
        team = add_team(session)
        set_password(session, team["rita"], "rita", PASSWORD)  # one's own: fine
        with pytest.raises(PermissionDenied, match="managing users needs the role admin"):
            set_password(session, team["eve"], "rita", "another long one")
        with pytest.raises(InvalidInputError, match="at least 10 characters"):
            set_password(session, team["ada"], "rita", "short")
        with pytest.raises(NotFoundError, match="No user named 'zed'"):
            set_password(session, team["ada"], "zed", PASSWORD)
        set_password(session, team["ada"], "rita", "a new long password")
        session.flush()
        (stored,) = session.scalars(select(UserCredential)).all()
        assert verify_password("a new long password", stored.password_hash)


def test_the_first_admin_is_created_with_a_password_only_on_an_empty_database(sqlite_url: str) -> None:
    with open_session(sqlite_url) as session:
        with pytest.raises(InvalidInputError, match="at least 10"):
            create_first_admin(session, "ada", "short")
        admin = create_first_admin(session, "ada", PASSWORD)
        assert admin.role == "admin"
        assert authenticate(session, "ada", PASSWORD) is admin
        with pytest.raises(PermissionDenied, match="Users exist already"):
            create_first_admin(session, "eve", PASSWORD)
        assert get_user(session, "ada") is admin


def test_setting_a_password_is_audited_without_the_password(sqlite_url: str) -> None:
    with open_session(sqlite_url) as session:
        team = add_team(session)
        set_password(session, team["ada"], "rita", PASSWORD)
        set_password(session, team["rita"], "rita", "a new long password")
        session.flush()
        events = [e for e in audit_events(session) if e.action == AuditAction.PASSWORD_SET]
        assert [(e.actor_name, e.after) for e in events] == [
            ("ada", {"name": "rita"}),
            ("rita", {"name": "rita"}),
        ]
        stored = session.scalars(select(UserCredential)).one().password_hash
        assert all(PASSWORD not in str(e.after) and stored not in str(e.after) for e in events)
