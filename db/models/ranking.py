"""Tables of the ranked review queue: editors' search terms per claim, stored study embeddings and word counts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Column, Index, LargeBinary, String
from sqlmodel import Field

from db.clock import utcnow
from db.models.base import TableModel
from db.models.review import Assessment


class ClaimSearchTerms(TableModel, table=True):
    """An editor's synonyms and outcome terms for one claim; without a row the shipped defaults apply."""

    __tablename__ = "claim_search_terms"

    claim_id: int = Field(foreign_key="claim.id", primary_key=True)
    synonyms: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    outcomes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    updated_by_id: int | None = Field(default=None, foreign_key="app_user.id")
    updated_at: datetime = Field(default_factory=utcnow)


class ArticleEmbedding(TableModel, table=True):
    """A study's sentence embedding (float32 bytes), computed once per content version and model.

    No foreign key to article on purpose: an embedding is derived data and must never keep a
    record that PubMed deleted from being removed (db.corpus.articles.referencing_tables counts FKs).
    """

    __tablename__ = "article_embedding"

    pmid: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    model: str = Field(sa_column=Column(String(100), primary_key=True))
    content_hash: str = Field(max_length=64)  # the article's hash when embedded: a revision re-embeds
    dimensions: int
    vector: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class ArticleTerms(TableModel, table=True):
    """A study's word counts for the review queue's model, computed once per content version.

    `terms` holds n feature hashes (uint32) then their n counts (uint16), little-endian; see
    db.ranking.corpus. Derived data: no foreign key (like ArticleEmbedding), left out of dumps, and
    recomputed whenever missing, stale (content hash) or of another tokeniser version.
    """

    __tablename__ = "article_terms"
    __table_args__ = {"info": {"derived": True}}

    pmid: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    content_hash: str = Field(max_length=64)
    version: int
    terms: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


# The review queue's two reads of a claim's votes, from this index alone: its labels, one row per study
# (db.ranking.queue.claim_labels: 0.15 s instead of 0.6 s for a claim's ~110,000 votes on the 1,000,000-
# assessment instance), and what one reviewer already tagged (ms). Reviewer before PMID: an index on
# (claim, PMID, verdict) alone lured SQLite into scanning a whole claim for the second read (0.35 s).
# Declared here, next to the ranking's tables, and attached to `assessment` by its columns.
ASSESSMENT_REVIEW_INDEX = Index(
    "ix_assessment_claim_reviewer_pmid_verdict",
    Assessment.__table__.c.claim_id,
    Assessment.__table__.c.reviewer_id,
    Assessment.__table__.c.pmid,
    Assessment.__table__.c.verdict,
)
