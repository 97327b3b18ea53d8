"""The database as commands open it, and the acting user; db/ is imported on first use, not at start."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from ingest.cli.options import ACTOR_ENV

if TYPE_CHECKING:
    from sqlmodel import Session

    from db.models import User


def database_url() -> str:
    """DATABASE_URL, or the default SQLite file."""
    from db.settings import load_settings

    return load_settings().database_url


def display_url(url: str) -> str:
    """The URL with its password hidden, for messages."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@contextmanager
def database_session(*, seed: bool = False) -> Iterator[Session]:
    """A session on DATABASE_URL with the tables in place; the command commits.

    With `seed`, the article under review and its claims are loaded first, as their own unit of work
    (a failing command keeps them): the review commands name those claims on a fresh database.
    """
    from db.engine import init_db, open_session
    from db.review.sources import ensure_seed_content

    url = database_url()
    init_db(url)
    with open_session(url) as session:
        if seed:
            ensure_seed_content(session)
            session.commit()
        yield session


def acting_user(session: Session, name: str | None) -> User:
    """The user `--as NAME` (or $KETAMINE_EVIDENCE_USER) names.

    On a shared shell this is trust, not authentication: whoever can run the command can give any name.
    """
    from db.review.roles import get_user

    name = (name or "").strip()
    if not name:
        raise click.ClickException(f"Say who is acting: pass --as NAME or set {ACTOR_ENV}=NAME.")
    return get_user(session, name)
