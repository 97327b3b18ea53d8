"""Users and roles: who may do what, enforced by every write function of the review workflow."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import func, select
from sqlmodel import Session, col

from db.errors import ConflictError, InvalidInputError, NotFoundError, PermissionDenied
from db.models import User
from db.review.audit import record_event
from db.vocab import AuditAction, Role


class Action(StrEnum):
    READ = "read"
    ASSESS = "assess"  # record and change one's own assessments, correct a study's design
    ASSESS_FOR_OTHERS = "assess_for_others"  # import a team's spreadsheet under their names
    RESOLVE_CONFLICTS = "resolve_conflicts"
    MANAGE_CLAIMS = "manage_claims"  # documents, claims, proposals
    SIGN_OFF = "sign_off"
    MANAGE_USERS = "manage_users"


_DESCRIPTIONS: dict[Action, str] = {
    Action.READ: "reading reviews",
    Action.ASSESS: "recording assessments",
    Action.ASSESS_FOR_OTHERS: "recording assessments for other reviewers",
    Action.RESOLVE_CONFLICTS: "resolving conflicts",
    Action.MANAGE_CLAIMS: "managing documents and claims",
    Action.SIGN_OFF: "signing claims off",
    Action.MANAGE_USERS: "managing users",
}

ROLE_ACTIONS: dict[Role, frozenset[Action]] = {
    Role.VIEWER: frozenset({Action.READ}),
    Role.REVIEWER: frozenset({Action.READ, Action.ASSESS}),
    Role.EDITOR: frozenset(
        {
            Action.READ,
            Action.ASSESS,
            Action.ASSESS_FOR_OTHERS,
            Action.RESOLVE_CONFLICTS,
            Action.MANAGE_CLAIMS,
            Action.SIGN_OFF,
        }
    ),
    Role.ADMIN: frozenset(Action),
}


def can(user: User, action: Action) -> bool:
    return user.active and action in ROLE_ACTIONS[Role(user.role)]


def require(user: User, action: Action) -> None:
    """Raise PermissionDenied unless `user` may do `action`."""
    if not user.active:
        raise PermissionDenied(
            f"User {user.name!r} is deactivated and cannot do anything; ask an admin to reactivate them."
        )
    if action in ROLE_ACTIONS[Role(user.role)]:
        return
    allowed = [role.value for role in reversed(Role) if action in ROLE_ACTIONS[role]]  # least first
    raise PermissionDenied(
        f"{user.name!r} is a {Role(user.role).value}; {_DESCRIPTIONS[action]} needs the role "
        f"{' or '.join(allowed)}. If they should, an admin runs: users set-role {user.name} --role {allowed[0]}"
    )


def get_user(session: Session, name: str) -> User:
    user = session.scalars(select(User).where(col(User.name) == name)).first()
    if user is None:
        raise NotFoundError(
            f"No user named {name!r}; an admin adds one with `users add {name} --role reviewer --as ADMIN`."
        )
    return user


def find_user(session: Session, name: str) -> User | None:
    return session.scalars(select(User).where(col(User.name) == name)).first()


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.name)))


# The users table's column width: both engines must accept the same names, so a dump always restores.
MAX_USER_NAME = 100


def checked_user_name(name: str) -> str:
    """`name` trimmed, or InvalidInputError: a name shows in one line of the audit trail and the CLI."""
    name = name.strip()
    if not name:
        raise InvalidInputError("A user needs a name; give one, e.g. `users add alice --role reviewer`.")
    if len(name) > MAX_USER_NAME:
        raise InvalidInputError(
            f"A user name has at most {MAX_USER_NAME} characters, not {len(name):,}; pick a shorter one."
        )
    if not name.isprintable():
        raise InvalidInputError(
            f"The user name {name[:40]!r} holds a line break or another control character; "
            "use letters, digits, spaces, dots, @ or dashes."
        )
    return name


def add_user(session: Session, actor: User | None, name: str, role: Role) -> User:
    """Add a user. Only an admin may, except the very first user, who must be an admin."""
    name = checked_user_name(name)
    if actor is None:
        if session.scalar(select(func.count()).select_from(User)):
            raise PermissionDenied(
                "Users exist already, so adding one needs an acting admin; pass --as ADMIN_NAME."
            )
        if role is not Role.ADMIN:
            raise PermissionDenied(
                f"The first user must be an admin (got {role.value!r}); run `users add {name} --role admin`."
            )
    else:
        require(actor, Action.MANAGE_USERS)
    if find_user(session, name) is not None:
        raise ConflictError(f"A user named {name!r} exists already; pick another name or change their role.")
    user = User(name=name, role=role)
    session.add(user)
    session.flush()
    record_event(
        session,
        actor or user,
        AuditAction.USER_ADDED,
        user,
        after={"name": name, "role": role.value},
    )
    return user


def set_role(session: Session, actor: User, name: str, role: Role, reason: str | None = None) -> User:
    require(actor, Action.MANAGE_USERS)
    user = get_user(session, name)
    before = Role(user.role)
    if before is Role.ADMIN and role is not Role.ADMIN:
        _refuse_losing_last_admin(session, user)
    user.role = role
    session.add(user)
    record_event(
        session,
        actor,
        AuditAction.ROLE_CHANGED,
        user,
        before={"role": before.value},
        after={"role": role.value},
        reason=reason,
    )
    return user


def deactivate_user(session: Session, actor: User, name: str, reason: str | None = None) -> User:
    """Deactivate rather than delete: their assessments and audit entries keep naming them."""
    require(actor, Action.MANAGE_USERS)
    user = get_user(session, name)
    if Role(user.role) is Role.ADMIN:
        _refuse_losing_last_admin(session, user)
    user.active = False
    session.add(user)
    record_event(
        session,
        actor,
        AuditAction.USER_DEACTIVATED,
        user,
        before={"active": True},
        after={"active": False},
        reason=reason,
    )
    return user


def _refuse_losing_last_admin(session: Session, user: User) -> None:
    admins = session.scalar(
        select(func.count()).select_from(User).where(col(User.role) == Role.ADMIN, col(User.active).is_(True))
    )
    if (admins or 0) <= 1:
        raise PermissionDenied(
            f"{user.name!r} is the last active admin; make someone else admin first, "
            "or nobody could manage users."
        )
