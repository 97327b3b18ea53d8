"""Tables of the harvested literature and the harvest log."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Column, Float, Index, Integer, String, Text, event, text
from sqlmodel import Field

from db.clock import utcnow
from db.models.base import TableModel
from db.vocab import RunStatus, StudyDesign


class Article(TableModel, table=True):
    """One PubMed record, keyed by PMID, updated in place when PubMed revises it."""

    # The studies the verdict rule excludes, from the index alone (db.read.summary.excluded_studies);
    # only those with a standing, so the import of the rest costs nothing.
    __table_args__ = (
        Index(
            "ix_article_retraction_pmid",
            "retraction_status",
            "pmid",
            sqlite_where=text("retraction_status IS NOT NULL"),
            postgresql_where=text("retraction_status IS NOT NULL"),
        ),
    )

    pmid: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    title: str = Field(sa_column=Column(Text, nullable=False))
    # Every AbstractText joined as "LABEL: text" paragraphs; the sections are kept too.
    abstract: str = Field(default="", sa_column=Column(Text, nullable=False))
    abstract_sections: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    journal: str = ""
    journal_iso: str | None = None
    pub_date: str | None = None  # as PubMed prints it: "2024 Mar 5", "2019 Winter"
    pub_year: int | None = Field(default=None, index=True)
    authors: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    doi: str | None = Field(default=None, index=True)
    pmcid: str | None = None
    languages: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    publication_types: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    mesh_headings: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    keywords: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    retraction_status: str | None = Field(default=None, index=True)
    # [{"type": "RetractionIn", "pmid": 123, "source": "..."}] from CommentsCorrections
    notices: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    date_revised: date | None = None
    # The design prefill (db.corpus.prefill.prefill_columns): the classifier's suggestion, how sure it
    # is (0-1), and which classifier made it; db.corpus.design.explain_design says what decided it.
    # A reviewer's DesignCorrection overrides it; a low-confidence one waits for a person to confirm.
    design: str = Field(
        default=StudyDesign.OTHER.value,
        sa_column=Column(String(32), nullable=False, server_default=StudyDesign.OTHER.value),
    )
    design_confidence: float = Field(default=0.0, sa_column=Column(Float, nullable=False, server_default="0"))
    design_version: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    # A retraction notice, expression of concern, erratum or comment: never counted as a study. None of
    # these columns is indexed: an index costs the import's storing process, which sets its pace.
    is_notice: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, server_default="0"))
    notice_of: int | None = Field(default=None, sa_column=Column(BigInteger))  # the study it concerns
    content_hash: str = Field(max_length=64)
    # Set when a PubMed update file deletes the record but reviewers have used it.
    deleted_in_pubmed: bool = False
    first_seen_at: datetime = Field(default_factory=utcnow)
    # Indexed: max(updated_at) tells per-process caches (db.corpus.study_facts) that an article changed.
    updated_at: datetime = Field(default_factory=utcnow, index=True)


class ArticleRevision(TableModel, table=True):
    """What changed in an article when PubMed revised it (or deleted it), and when."""

    __tablename__ = "article_revision"

    id: int | None = Field(default=None, primary_key=True)
    pmid: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    changed_at: datetime = Field(default_factory=utcnow)
    change: str = "revised"  # revised | deleted | flagged_deleted
    changed_fields: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    # Values of the changed fields before and after the change.
    before: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    after: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    old_hash: str | None = None
    new_hash: str | None = None
    run_id: int | None = Field(default=None, foreign_key="harvest_run.id", index=True)


class HarvestRun(TableModel, table=True):
    """One harvest or file import: what was asked, what came back, how it ended."""

    __tablename__ = "harvest_run"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = "harvest"  # harvest | import
    query: str = Field(default="", sa_column=Column(Text, nullable=False))
    query_translation: str | None = Field(default=None, sa_column=Column(Text))
    since: date | None = None  # incremental lower bound (EDAT/MDAT), None for a full harvest
    count: int | None = None  # records PubMed reported (or the file held)
    windows: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    records_new: int = 0
    records_updated: int = 0
    records_unchanged: int = 0
    records_older: int = 0  # older revisions than the stored ones, skipped
    records_failed: int = 0
    records_deleted: int = 0
    requests_made: int = 0
    status: str = Field(default=RunStatus.RUNNING.value, index=True)
    error: str | None = Field(default=None, sa_column=Column(Text))
    pid: int | None = None
    host: str | None = None


@event.listens_for(Article, "before_insert")
def _prefill_design(_mapper: Any, _connection: Any, article: Article) -> None:
    # Articles added through the ORM (seed data, tests, pages) get the same design prefill as the
    # import's bulk rows (db.corpus.articles.encode_article) unless the caller set one.
    if article.design_version:
        return
    from db.corpus.prefill import prefill_columns  # it imports the classifier: import late

    for name, value in prefill_columns(article.model_dump()).items():
        setattr(article, name, value)
