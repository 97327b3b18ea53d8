"""Storing harvested articles: batch upsert with revision history, deletions, and corpus reads."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import ForeignKey, delete, func, or_, select, update
from sqlalchemy.engine import Dialect
from sqlmodel import Session, SQLModel, col

from db.clock import utcnow
from db.corpus.encoding import (
    BATCH_COLUMNS,
    ENCODED_COLUMNS,
    HASH,
    PMID,
    REVISED,
    EncodedArticle,
    as_date,
    decode_article,
    encode_article,
)
from db.models import Article, ArticleRevision

# Fields compared to tell what a revision changed (everything but bookkeeping).
_CONTENT_FIELDS = tuple(
    name
    for name in Article.model_fields
    if name not in {"pmid", "content_hash", "first_seen_at", "updated_at", "deleted_in_pubmed"}
)


@dataclass
class BatchOutcome:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    flagged: int = 0
    older: int = 0  # older revisions than the stored ones (by DateRevised): skipped
    # PMIDs revised, deleted or flagged: signed-off claims relying on them may need another look.
    changed_pmids: list[int] = field(default_factory=list)

    def add(self, other: BatchOutcome) -> None:
        self.new += other.new
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.deleted += other.deleted
        self.flagged += other.flagged
        self.older += other.older
        self.changed_pmids.extend(other.changed_pmids)


def upsert_articles(
    session: Session, rows: Sequence[dict[str, Any]], run_id: int | None = None
) -> BatchOutcome:
    """Insert new articles, update revised ones in place (keeping what changed), skip the rest.

    `rows` are Article column values with `content_hash` set (see PubmedRecord.article_fields).
    Does not commit: the caller commits the batch as one transaction.
    """
    return upsert_encoded_articles(session, [encode_article(row) for row in rows], run_id)


def upsert_encoded_articles(
    session: Session, rows: Sequence[EncodedArticle], run_id: int | None = None, *, keep_newer: bool = True
) -> BatchOutcome:
    """upsert_articles for rows already encoded (see encode_article): the import's hot path.

    A record whose DateRevised is older than the stored one's is skipped and counted (`older`): an
    old baseline file imported after a newer update must not turn the clock back. `keep_newer=False`
    stores it anyway, when that is what the user asks for.
    """
    latest: dict[int, EncodedArticle] = {}
    for row in rows:  # the same PMID twice in one batch: the later one wins
        latest[int(row[PMID])] = row
    outcome = BatchOutcome()
    if not latest:
        return outcome
    table = Article.__table__
    stored: dict[int, str] = {}
    stored_revised: dict[int, date | None] = {}
    for pmid, content_hash, revised_on in session.execute(
        select(table.c.pmid, table.c.content_hash, table.c.date_revised).where(table.c.pmid.in_(list(latest)))
    ):
        stored[pmid], stored_revised[pmid] = content_hash, revised_on
    now = utcnow()
    fresh = [row for pmid, row in latest.items() if pmid not in stored]
    if fresh:
        _insert_encoded(session, fresh, now)
        outcome.new = len(fresh)
    revised = [row for pmid, row in latest.items() if pmid in stored and stored[pmid] != row[HASH]]
    if keep_newer:
        older = [row for row in revised if _is_older(row[REVISED], stored_revised[int(row[PMID])])]
        if older:
            revised = [row for row in revised if not _is_older(row[REVISED], stored_revised[int(row[PMID])])]
            outcome.older = len(older)
    outcome.unchanged = len(latest) - len(fresh) - len(revised) - outcome.older
    for row in revised:
        _apply_revision(session, decode_article(row), run_id, now)
    outcome.updated = len(revised)
    outcome.changed_pmids = [int(row[PMID]) for row in revised]
    return outcome


def _is_older(incoming: Any, stored: date | None) -> bool:
    if incoming is None or stored is None:
        return False  # nothing to compare: a record without DateRevised is taken as it comes
    return bool(as_date(incoming) < stored)


# New articles go to PostgreSQL by COPY rather than INSERT (the tests compare both paths).
COPY_ON_POSTGRES = True


def _insert_encoded(session: Session, rows: list[EncodedArticle], now: datetime) -> None:
    # Straight to the driver's executemany: SQLAlchemy's per-row bind processing cost more than
    # the insert itself. The rows arrive as the driver takes them (see EncodedArticle): booleans and
    # floats bind as SQLAlchemy's SQLite processors would make them, dates are ISO text already.
    connection = session.connection()
    dialect = connection.dialect
    names = ENCODED_COLUMNS + BATCH_COLUMNS
    if dialect.name == "postgresql" and COPY_ON_POSTGRES:
        _copy_encoded(connection.connection.driver_connection, names, rows, now)
        return
    columns = Article.__table__.columns
    batch_values = tuple(
        processor(value) if (processor := _bind_processor(columns[name], dialect)) else value
        for name, value in zip(BATCH_COLUMNS, (now, now, False), strict=True)
    )
    marker = "?" if dialect.paramstyle == "qmark" else "%s"
    sql = f"INSERT INTO article ({', '.join(names)}) VALUES ({', '.join([marker] * len(names))})"
    connection.exec_driver_sql(sql, [row + batch_values for row in rows])


def _copy_encoded(driver: Any, names: tuple[str, ...], rows: list[EncodedArticle], now: datetime) -> None:
    # PostgreSQL: COPY, on the session's own connection, so inside the batch's transaction: a kill
    # mid-batch leaves nothing of it, as with INSERT. The rows are new (the caller looked them up
    # under the import's lock), so there is nothing to upsert. COPY streams the rows in one round
    # trip and the server parses them without a statement per row: see docs/performance.md.
    batch_values = (now, now, False)
    with driver.cursor() as cursor, cursor.copy(f"COPY article ({', '.join(names)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row + batch_values)


def _bind_processor(column: Any, dialect: Dialect) -> Callable[[Any], Any] | None:
    return column.type.dialect_impl(dialect).bind_processor(dialect)


def _apply_revision(session: Session, row: dict[str, Any], run_id: int | None, now: datetime) -> None:
    table = Article.__table__
    old = session.execute(select(table).where(table.c.pmid == row["pmid"])).mappings().one()
    changed = [name for name in _CONTENT_FIELDS if _jsonable(old[name]) != _jsonable(row.get(name))]
    session.execute(
        update(table)
        .where(table.c.pmid == row["pmid"])
        .values(**{k: v for k, v in row.items() if k != "pmid"}, updated_at=now, deleted_in_pubmed=False)
    )
    session.add(
        ArticleRevision(
            pmid=row["pmid"],
            changed_at=now,
            change="revised",
            changed_fields=changed,
            before={name: _jsonable(old[name]) for name in changed},
            after={name: _jsonable(row.get(name)) for name in changed},
            old_hash=old["content_hash"],
            new_hash=row["content_hash"],
            run_id=run_id,
        )
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value


def referencing_tables() -> list[Any]:
    """Columns in other tables that point at article.pmid: reviewer data that must survive."""
    columns = []
    for table in SQLModel.metadata.sorted_tables:
        for column in table.columns:
            if any(_points_at_article(fk) for fk in column.foreign_keys):
                columns.append(column)
    return columns


def _points_at_article(fk: ForeignKey) -> bool:
    return fk.target_fullname == "article.pmid"


def article_in_use(session: Session, pmid: int) -> bool:
    """True when any reviewer data refers to the article."""
    return any(
        session.execute(select(column).where(column == pmid).limit(1)).first() is not None
        for column in referencing_tables()
    )


def apply_deletions(session: Session, pmids: Iterable[int], run_id: int | None = None) -> BatchOutcome:
    """PubMed deleted these records: remove the unused ones, flag those reviewers have used."""
    outcome = BatchOutcome()
    table = Article.__table__
    now = utcnow()
    for pmid in dict.fromkeys(int(p) for p in pmids):
        exists = session.execute(select(table.c.content_hash).where(table.c.pmid == pmid)).first()
        if exists is None:
            continue
        if article_in_use(session, pmid):
            session.execute(update(table).where(table.c.pmid == pmid).values(deleted_in_pubmed=True))
            change, outcome.flagged = "flagged_deleted", outcome.flagged + 1
        else:
            session.execute(delete(table).where(table.c.pmid == pmid))
            change, outcome.deleted = "deleted", outcome.deleted + 1
        session.add(
            ArticleRevision(pmid=pmid, changed_at=now, change=change, old_hash=exists[0], run_id=run_id)
        )
        outcome.changed_pmids.append(pmid)
    return outcome


# --- reads for the dashboard and CLI -------------------------------------------------------------


@dataclass(frozen=True)
class CorpusSummary:
    articles: int
    with_abstract: int
    retracted: int
    newest_year: int | None
    oldest_year: int | None


def corpus_summary(session: Session) -> CorpusSummary:
    table = Article.__table__
    row = session.execute(
        select(
            func.count(),
            func.count().filter(table.c.abstract != ""),
            func.count().filter(table.c.retraction_status.in_(["retracted", "expression_of_concern"])),
            func.max(table.c.pub_year),
            func.min(table.c.pub_year),
        )
    ).one()
    return CorpusSummary(*row)


def search_articles(
    session: Session, text: str = "", limit: int = 100, offset: int = 0
) -> list[dict[str, Any]]:
    """Articles whose title or abstract contains every word of `text`, newest first, as plain dicts."""
    table = Article.__table__
    query = select(
        table.c.pmid,
        table.c.title,
        table.c.journal,
        table.c.pub_year,
        table.c.publication_types,
        table.c.retraction_status,
        table.c.doi,
    )
    for word in text.split():
        pattern = f"%{_escape_like(word.lower())}%"
        query = query.where(
            or_(
                func.lower(table.c.title).like(pattern, escape="\\"),
                func.lower(table.c.abstract).like(pattern, escape="\\"),
            )
        )
    query = query.order_by(table.c.pub_year.desc().nulls_last(), table.c.pmid.desc())
    return [dict(row) for row in session.execute(query.limit(limit).offset(offset)).mappings()]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def get_article(session: Session, pmid: int) -> Article | None:
    return session.get(Article, pmid)


def article_revisions(session: Session, pmid: int) -> list[ArticleRevision]:
    query = select(ArticleRevision).where(col(ArticleRevision.pmid) == pmid).order_by(col(ArticleRevision.id))
    return list(session.scalars(query))


def iter_articles(session: Session, chunk: int = 1000) -> Iterator[Article]:
    """Every article in PMID order, read in chunks so memory stays flat on large corpora."""
    last = -1
    while True:
        page = list(
            session.scalars(
                select(Article).where(col(Article.pmid) > last).order_by(col(Article.pmid)).limit(chunk)
            )
        )
        if not page:
            return
        yield from page
        last = page[-1].pmid
        session.expunge_all()
