"""Small lookups for pickers: the documents under review, their claims, and a key for a new claim."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import select
from sqlmodel import Session, col

from db.models import SourceDocument
from db.review.claims import list_claims
from db.text import KEY_STOPWORDS, words
from db.vocab import DocumentStatus


@dataclass(frozen=True)
class DocumentInfo:
    id: int
    slug: str
    title: str
    author: str | None
    outlet: str | None
    url: str | None
    status: DocumentStatus
    blind_mode: bool
    text: str


def documents(session: Session) -> list[DocumentInfo]:
    """The articles under review, oldest first, with their full text."""
    return [
        DocumentInfo(
            id=d.id or 0,
            slug=d.slug,
            title=d.title,
            author=d.author,
            outlet=d.outlet,
            url=d.url,
            status=DocumentStatus(d.status),
            blind_mode=d.blind_mode,
            text=d.text,
        )
        for d in session.scalars(select(SourceDocument).order_by(col(SourceDocument.id)))
    ]


@dataclass(frozen=True)
class ClaimChoice:
    id: int
    key: str
    statement: str
    document_id: int


def claim_choices(session: Session, document_id: int | None = None) -> list[ClaimChoice]:
    """The active claims, in document order, for pickers."""
    return [
        ClaimChoice(c.id or 0, c.key, c.statement, c.document_id) for c in list_claims(session, document_id)
    ]


def suggest_claim_key(sentence: str, taken: Collection[str] = ()) -> str:
    """A stable-key suggestion from a sentence: its first content words, hyphenated, made unique."""
    kept = [word for word in words(sentence) if word not in KEY_STOPWORDS][:4]
    parts = (re.sub(r"[^a-z0-9]+", "-", word) for word in kept)
    base = "-".join(parts)[:60].strip("-") or "claim"
    key, n = base, 2
    while key in taken:
        key, n = f"{base}-{n}", n + 1
    return key
