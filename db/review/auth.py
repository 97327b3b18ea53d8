"""Who is using the dashboard: the sign-in mode, and passwords stored as salted scrypt hashes.

Three modes (README, "Signing in"):
- `local`: pick a name from the users table; for one person or a trusted machine.
- `password`: each user signs in with a password; only an scrypt hash with a per-user salt is kept.
- `oidc`: Streamlit's st.login against the provider in .streamlit/secrets.toml; the identity's
  e-mail address is the user name, and the role still comes from the users table.
Roles are always read from the database: the mode says only *who* someone is.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import func, select
from sqlmodel import Session, col

from db.clock import utcnow
from db.errors import InvalidInputError, PermissionDenied, SignInThrottled
from db.models import User, UserCredential
from db.review.audit import record_event
from db.review.roles import Action, add_user, find_user, get_user, require
from db.review.throttle import SIGN_IN_THROTTLE, SignInThrottle
from db.vocab import AuditAction, AuthMode, Role

_log = logging.getLogger(__name__)

MIN_PASSWORD_LENGTH = 10
# scrypt cost: n=2**15, r=8 needs 32 MiB and about 50-100 ms per check, which makes guessing
# expensive and signing in unnoticeable. Stored with each hash, so raising it later keeps old
# hashes valid.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P, _KEY_BYTES, _SALT_BYTES = 2**15, 8, 1, 32, 16
_MAXMEM = 64 * 1024 * 1024


def auth_mode(configured: str | None, oidc_configured: bool) -> AuthMode:
    """The sign-in mode: DASHBOARD_AUTH when set, else OIDC when secrets.toml has an [auth]
    section, else local."""
    if configured and configured.strip():
        try:
            mode = AuthMode(configured.strip().lower())
        except ValueError:
            known = ", ".join(m.value for m in AuthMode)
            raise InvalidInputError(
                f"DASHBOARD_AUTH={configured!r} is not a sign-in mode; use one of {known}."
            ) from None
        if mode is AuthMode.OIDC and not oidc_configured:
            raise InvalidInputError(
                "DASHBOARD_AUTH=oidc needs an [auth] section in .streamlit/secrets.toml "
                "(redirect_uri, cookie_secret, client_id, client_secret, server_metadata_url); see the README."
            )
        return mode
    return AuthMode.OIDC if oidc_configured else AuthMode.LOCAL


# --- hashing (pure) --------------------------------------------------------------------------------


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """`scrypt$n$r$p$salt$key` with base64 salt and key; never the password itself."""
    salt = salt if salt is not None else secrets.token_bytes(_SALT_BYTES)
    key = _scrypt(password, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P, _KEY_BYTES)
    return "$".join(("scrypt", str(_SCRYPT_N), str(_SCRYPT_R), str(_SCRYPT_P), _b64(salt), _b64(key)))


def verify_password(password: str, encoded: str) -> bool:
    """True when `password` matches the stored hash; compares in constant time."""
    try:
        scheme, n, r, p, salt, key = encoded.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(key)
        actual = _scrypt(password, base64.b64decode(salt), int(n), int(r), int(p), len(expected))
    except (ValueError, TypeError):
        return False  # a damaged hash never lets anyone in
    return hmac.compare_digest(actual, expected)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=length, maxmem=_MAXMEM)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@functools.cache
def _dummy_hash() -> str:
    """A hash to check against when the user does not exist, so that a wrong name takes as long as a
    wrong password and the answer time does not tell which names exist. Made on first use: scrypt
    costs a tenth of a second, which every CLI command paid at import."""
    return hash_password("not a password", salt=b"0" * _SALT_BYTES)


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInputError(
            f"A password needs at least {MIN_PASSWORD_LENGTH} characters; a short phrase is easiest to remember."
        )


# --- the database side -----------------------------------------------------------------------------


def set_password(session: Session, actor: User, name: str, password: str) -> None:
    """Set a user's password: an admin for anyone, everyone else only for themselves."""
    user = get_user(session, name)
    if user.id != actor.id:
        require(actor, Action.MANAGE_USERS)
    elif not actor.active:
        raise PermissionDenied(f"User {actor.name!r} is deactivated; ask an admin to reactivate them.")
    check_password_rules(password)
    assert user.id is not None
    credential = session.get(UserCredential, user.id)
    if credential is None:
        credential = UserCredential(user_id=user.id, password_hash=hash_password(password))
    else:
        credential.password_hash = hash_password(password)
        credential.updated_at = utcnow()
    session.add(credential)
    session.flush()
    record_event(session, actor, AuditAction.PASSWORD_SET, user, after={"name": user.name})


def has_password(session: Session, user_id: int) -> bool:
    return session.get(UserCredential, user_id) is not None


def users_with_password(session: Session) -> set[int]:
    return set(session.scalars(select(col(UserCredential.user_id))))


def authenticate(
    session: Session,
    name: str,
    password: str,
    *,
    client: str | None = None,
    clock: Callable[[], datetime] = utcnow,
    throttle: SignInThrottle = SIGN_IN_THROTTLE,
) -> User | None:
    """The active user with this name and password, else None (whatever was wrong).

    After too many wrong passwords in a row for the name, or from `client` (the browser's address),
    raises SignInThrottled without checking the password (db/review/throttle.py). Unknown names count
    like known ones, so the refusal does not tell which names exist.
    """
    now = clock()
    waiting = throttle.wait(name, client, now)
    if waiting is not None:
        kind, seconds = waiting
        _log.warning("Sign-in refused for user %r from %s: throttled for %d s", name.strip(), client, seconds)
        raise SignInThrottled(name.strip(), seconds, per_client=kind == "client")
    user = find_user(session, name.strip())
    credential = session.get(UserCredential, user.id) if user is not None and user.id is not None else None
    encoded = credential.password_hash if credential is not None else _dummy_hash()
    matches = verify_password(password, encoded)
    if user is None or credential is None or not user.active or not matches:
        failures = throttle.failed(name, client, now)
        _log.warning("Wrong password for user %r from %s (%d in a row)", name.strip(), client, failures)
        return None
    earlier = throttle.succeeded(name, client)
    if earlier:
        _log.warning("User %r signed in from %s after %d wrong password(s)", user.name, client, earlier)
    return user


def user_count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(User)) or 0)


def create_first_admin(session: Session, name: str, password: str | None = None) -> User:
    """The very first user of an empty database, who must be an admin (db.review.roles.add_user's rule).

    With a password (password mode) it is checked before anything is written.
    """
    if password is not None:
        check_password_rules(password)
    user = add_user(session, None, name, Role.ADMIN)
    if password is not None:
        set_password(session, user, user.name, password)
    return user


def active_user(session: Session, name: str) -> User | None:
    """The active user with this name, or None (deactivated users cannot act)."""
    user = find_user(session, name)
    return user if user is not None and user.active else None


def active_user_names(session: Session) -> list[str]:
    query = select(col(User.name)).where(col(User.active).is_(True)).order_by(col(User.name))
    return list(session.scalars(query))
