"""Tables of the ranked review queue: editors' search terms per claim, and stored study embeddings."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Column, LargeBinary, String
from sqlmodel import Field, SQLModel

from db.models import utcnow


class ClaimSearchTerms(SQLModel, table=True):
    """An editor's synonyms and outcome terms for one claim; without a row the shipped defaults apply."""

    __tablename__ = "claim_search_terms"

    claim_id: int = Field(foreign_key="claim.id", primary_key=True)
    synonyms: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    outcomes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    updated_by_id: int | None = Field(default=None, foreign_key="app_user.id")
    updated_at: datetime = Field(default_factory=utcnow)


class ArticleEmbedding(SQLModel, table=True):
    """A study's sentence embedding (float32 bytes), computed once per content version and model.

    No foreign key to article on purpose: an embedding is derived data and must never keep a
    record that PubMed deleted from being removed (db.articles.referencing_tables counts FKs).
    """

    __tablename__ = "article_embedding"

    pmid: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    model: str = Field(sa_column=Column(String(100), primary_key=True))
    content_hash: str = Field(max_length=64)  # the article's hash when embedded: a revision re-embeds
    dimensions: int
    vector: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
