"""The database's own full-text index of articles (SQLite FTS5, PostgreSQL tsvector) and safe searches on it."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import UnboundExecutionError
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session

# Bump when the index definition changes: install_fulltext then drops and rebuilds it.
FULLTEXT_VERSION = 1

# --- SQLite: an FTS5 table of its own, kept in sync by triggers on `article` ------------------------------
#
# The index keeps its own copy of the text rather than reading `article` (external content): FTS5
# refuses content views that flatten JSON with json_each, and an external-content 'delete' must be
# handed exactly the tokens once indexed or the index is corrupted. With its own copy a delete is by
# rowid and cannot go wrong, and snippet()/highlight() work for the Studies page.
#
# Indexing row by row inside a trigger doubled the time of a bulk import; indexing the same rows with one
# INSERT ... SELECT per transaction costs half as much (docs/performance.md). So the insert trigger only
# notes the PMID in article_fts_pending, and the pending rows are indexed in one statement just before
# every session commit (the hook at the end of this module) and before any search, inside the same
# transaction: a committed article is always searchable. Deletes and text changes take the old row out
# of the index at once.

_SQLITE_TABLE = "article_fts"
_SQLITE_PENDING = f"{_SQLITE_TABLE}_pending"
_SQLITE_TRIGGERS = tuple(f"{_SQLITE_TABLE}_v{FULLTEXT_VERSION}_{kind}" for kind in ("ai", "ad", "au"))


def _sqlite_terms(row: str) -> str:
    """SQL for one text of an article's MeSH descriptors and keywords (`row` is NEW, OLD or a table).

    One column for all of them, so a quoted phrase can span the end of one descriptor and the start of
    the next (on both databases); rare, and harmless for ranking.
    """
    return (
        "(SELECT group_concat(term, ' ') FROM ("
        "SELECT CASE m.type WHEN 'object' THEN json_extract(m.value, '$.descriptor') ELSE m.value END AS term "
        f"FROM json_each({row}.mesh_headings) AS m "
        f"UNION ALL SELECT k.value FROM json_each({row}.keywords) AS k))"
    )


_SQLITE_INSERT = f"INSERT INTO {_SQLITE_TABLE}(rowid, title, abstract, terms) "
_SQLITE_NOTE = f"INSERT OR IGNORE INTO {_SQLITE_PENDING}(pmid) VALUES (NEW.pmid);"
_SQLITE_DDL = (
    # porter: "relapses" finds "relapse"; remove_diacritics: "Åsberg" is found as "asberg".
    f"CREATE VIRTUAL TABLE {_SQLITE_TABLE} USING fts5(title, abstract, terms, "
    "tokenize='porter unicode61 remove_diacritics 2')",
    f"CREATE TABLE {_SQLITE_PENDING} (pmid INTEGER PRIMARY KEY)",
    f"CREATE TRIGGER {_SQLITE_TRIGGERS[0]} AFTER INSERT ON article BEGIN {_SQLITE_NOTE} END",
    f"CREATE TRIGGER {_SQLITE_TRIGGERS[1]} AFTER DELETE ON article BEGIN "
    f"DELETE FROM {_SQLITE_TABLE} WHERE rowid = OLD.pmid; "
    f"DELETE FROM {_SQLITE_PENDING} WHERE pmid = OLD.pmid; END",
    # Only a change of indexed text re-indexes: flagging deleted_in_pubmed costs nothing here.
    f"CREATE TRIGGER {_SQLITE_TRIGGERS[2]} AFTER UPDATE OF pmid, title, abstract, mesh_headings, keywords "
    "ON article WHEN OLD.pmid IS NOT NEW.pmid OR OLD.title IS NOT NEW.title "
    "OR OLD.abstract IS NOT NEW.abstract OR OLD.mesh_headings IS NOT NEW.mesh_headings "
    "OR OLD.keywords IS NOT NEW.keywords BEGIN "
    f"DELETE FROM {_SQLITE_TABLE} WHERE rowid = OLD.pmid; "
    f"DELETE FROM {_SQLITE_PENDING} WHERE pmid = OLD.pmid; {_SQLITE_NOTE} END",
)
_SQLITE_REBUILD = (
    f"{_SQLITE_INSERT}SELECT a.pmid, a.title, a.abstract, {_sqlite_terms('a')} FROM article AS a"
)
# A noted PMID is never in the index: the triggers take an article's old entry out as they note it.
_SQLITE_FLUSH = (
    f"{_SQLITE_INSERT}SELECT a.pmid, a.title, a.abstract, {_sqlite_terms('a')} "
    # CROSS JOIN makes SQLite walk the few pending rows, not scan every article for each batch.
    f"FROM {_SQLITE_PENDING} AS p CROSS JOIN article AS a ON a.pmid = p.pmid",
    f"DELETE FROM {_SQLITE_PENDING}",
)

# bm25() column weights: a word in the title or the indexers' MeSH terms says more than one in the abstract.
_SQLITE_WEIGHTS = "10.0, 1.0, 4.0"
_SQLITE_SCORE = f"-bm25({_SQLITE_TABLE}, {_SQLITE_WEIGHTS})"  # bm25() is lower-is-better

# --- PostgreSQL: a generated tsvector column on `article` with a GIN index -----------------------------
#
# A STORED generated column is recomputed by PostgreSQL itself on every INSERT and UPDATE, so every
# write path (executemany inserts, core updates, psql by hand) keeps it right with no trigger code.

_PG_COLUMN = "search_vector"
_PG_INDEX = "ix_article_search_vector"
_PG_CONFIG = "english"
_PG_MARK = f"ketamine-evidence fulltext v{FULLTEXT_VERSION}"
_PG_EXPRESSION = (
    f"setweight(to_tsvector('{_PG_CONFIG}'::regconfig, coalesce(title, '')), 'A') || "
    f"setweight(to_tsvector('{_PG_CONFIG}'::regconfig, "
    "coalesce(jsonb_path_query_array(mesh_headings::jsonb, '$[*].descriptor')::text, '') || ' ' || "
    "coalesce(keywords::text, '')), 'B') || "
    f"setweight(to_tsvector('{_PG_CONFIG}'::regconfig, coalesce(abstract, '')), 'C')"
)
# Normalisation 1 divides by 1 + log(length): long abstracts do not win on length alone.
_PG_SCORE = f"ts_rank_cd({_PG_COLUMN}, q, 1)"


class FulltextError(RuntimeError):
    """The full-text index cannot be installed on this database; the message says what to do."""


def install_fulltext(bind: Connection | Engine) -> None:
    """Create the full-text index and what keeps it in sync, if missing or outdated. Idempotent and cheap."""
    if isinstance(bind, Engine):
        with bind.begin() as connection:
            _install(connection)
    else:
        _install(bind)


def _install(connection: Connection) -> None:
    dialect = connection.dialect.name
    if dialect == "sqlite":
        _install_sqlite(connection)
    elif dialect == "postgresql":
        _install_postgres(connection)
    else:
        raise FulltextError(
            f"Full-text search supports SQLite and PostgreSQL, not {dialect!r}; point DATABASE_URL at one of them."
        )


def _install_sqlite(connection: Connection) -> None:
    wanted = {_SQLITE_TABLE, _SQLITE_PENDING, *_SQLITE_TRIGGERS}
    names = set(
        connection.execute(
            text("SELECT name FROM sqlite_master WHERE name IN (:table, :pending) OR name LIKE :triggers"),
            {"table": _SQLITE_TABLE, "pending": _SQLITE_PENDING, "triggers": f"{_SQLITE_TABLE}_v%"},
        ).scalars()
    )
    if names == wanted:
        return
    # Missing, half there, or of another version: rebuild the whole index from the articles.
    for name in sorted(names - {_SQLITE_TABLE, _SQLITE_PENDING}):
        connection.exec_driver_sql(f'DROP TRIGGER IF EXISTS "{name}"')
    connection.exec_driver_sql(f"DROP TABLE IF EXISTS {_SQLITE_TABLE}")
    connection.exec_driver_sql(f"DROP TABLE IF EXISTS {_SQLITE_PENDING}")
    connection.exec_driver_sql(f"DROP VIEW IF EXISTS {_SQLITE_TABLE}_source")  # a pre-release draft's
    for statement in _SQLITE_DDL:
        connection.exec_driver_sql(statement)
    connection.exec_driver_sql(_SQLITE_REBUILD)


def index_pending(connection: Connection) -> int:
    """Index the articles written since the last commit (SQLite); returns how many. A no-op elsewhere.

    Runs by itself before every session commit and before every search; call it directly only after
    writing articles through a bare Connection and searching on that same connection.
    """
    if connection.dialect.name != "sqlite":
        return 0
    present = connection.execute(
        text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :name"), {"name": _SQLITE_PENDING}
    ).first()
    if present is None:
        return 0  # a database made without init_db has no index to keep
    count = connection.exec_driver_sql(f"SELECT count(*) FROM {_SQLITE_PENDING}").scalar_one()
    if count:
        for statement in _SQLITE_FLUSH:
            connection.exec_driver_sql(statement)
    return int(count)


def _install_postgres(connection: Connection) -> None:
    mark = connection.execute(
        text(
            "SELECT col_description('article'::regclass, a.attnum) FROM pg_attribute AS a "
            "WHERE a.attrelid = 'article'::regclass AND a.attname = :column AND NOT a.attisdropped"
        ),
        {"column": _PG_COLUMN},
    ).first()
    if mark is None or mark[0] != _PG_MARK:
        connection.exec_driver_sql(f"DROP INDEX IF EXISTS {_PG_INDEX}")
        connection.exec_driver_sql(f"ALTER TABLE article DROP COLUMN IF EXISTS {_PG_COLUMN}")
        connection.exec_driver_sql(
            f"ALTER TABLE article ADD COLUMN {_PG_COLUMN} tsvector GENERATED ALWAYS AS ({_PG_EXPRESSION}) STORED"
        )
        connection.exec_driver_sql(f"COMMENT ON COLUMN article.{_PG_COLUMN} IS '{_PG_MARK}'")
    # Look before creating: CREATE INDEX IF NOT EXISTS still waits for a lock that a running harvest holds.
    indexed = connection.execute(
        text(
            "SELECT 1 FROM pg_indexes WHERE schemaname = current_schema() "
            "AND tablename = 'article' AND indexname = :index"
        ),
        {"index": _PG_INDEX},
    ).first()
    if indexed is None:
        connection.exec_driver_sql(
            f"CREATE INDEX IF NOT EXISTS {_PG_INDEX} ON article USING gin ({_PG_COLUMN})"
        )


# --- queries ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Group:
    """Phrases that must all match, and phrases that must not; a query matches any of its groups."""

    include: tuple[str, ...]
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True)
class FulltextQuery:
    """A search as plain phrases, rendered safely for each database (never raw user syntax)."""

    groups: tuple[Group, ...] = field(default_factory=tuple)

    @property
    def empty(self) -> bool:
        return not self.groups


_TOKEN = re.compile(r'(?P<neg>-?)"(?P<phrase>[^"]*)"?|(?P<word>\S+)')
# Characters that carry meaning in FTS5 or tsquery syntax; inside our phrases they only separate words.
_SEPARATORS = re.compile(r"[^\w\s]+|_")


def _clean_phrase(phrase: str) -> str:
    # Hyphens become spaces on both databases: "treatment-resistant" then finds "treatment resistant" too.
    phrase = unicodedata.normalize("NFKC", phrase)
    phrase = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in phrase)
    return " ".join(_SEPARATORS.sub(" ", phrase).split()).lower()


def parse_query(user_text: str) -> FulltextQuery:
    """Ordinary search-box text as a query: words must all match, "quoted phrases" match as phrases,
    `or` between words offers alternatives, and a leading `-` excludes a word or phrase.

    Every other character is treated as a word separator, so no input can raise a syntax error.
    """
    groups: list[Group] = []
    include: list[str] = []
    exclude: list[str] = []
    for match in _TOKEN.finditer(user_text):
        quoted, bare = match.group("phrase"), match.group("word")
        negated = bool(match.group("neg"))
        if bare is not None:
            if bare.lower() == "or":
                if include:
                    groups.append(Group(tuple(include), tuple(exclude)))
                include, exclude = [], []
                continue
            if bare.startswith("-") and len(bare) > 1:
                negated, bare = True, bare[1:]
        phrase = _clean_phrase(quoted if quoted is not None else bare or "")
        if not phrase:
            continue
        (exclude if negated else include).append(phrase)
    if include:
        groups.append(Group(tuple(include), tuple(exclude)))
    return FulltextQuery(tuple(groups))


def any_of(phrases: Iterable[str]) -> FulltextQuery:
    """A query matching any of `phrases` (a claim's terms), each as a phrase."""
    cleaned = dict.fromkeys(p for p in (_clean_phrase(phrase) for phrase in phrases) if p)
    return FulltextQuery(tuple(Group((phrase,)) for phrase in cleaned))


def _fts5_string(phrase: str) -> str:
    return '"' + phrase.replace('"', '""') + '"'


def render_fts5(query: FulltextQuery) -> str:
    """The FTS5 MATCH expression of a query: every phrase a quoted string, so nothing is syntax."""
    parts = []
    for group in query.groups:
        expression = " AND ".join(_fts5_string(p) for p in group.include)
        if group.exclude:
            expression = f"({expression}) NOT ({' OR '.join(_fts5_string(p) for p in group.exclude)})"
        parts.append(f"({expression})")
    return " OR ".join(parts)


def render_websearch(query: FulltextQuery) -> str:
    """The same query as websearch_to_tsquery() text, which never raises on any input."""
    parts = []
    for group in query.groups:
        words = [f'"{p}"' for p in group.include] + [f'-"{p}"' for p in group.exclude]
        parts.append(" ".join(words))
    return " or ".join(parts)


def _as_query(query: str | FulltextQuery) -> FulltextQuery:
    return parse_query(query) if isinstance(query, str) else query


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _index_pending(session: Session) -> None:
    if _dialect(session) == "sqlite":
        index_pending(session.connection())


@event.listens_for(OrmSession, "before_commit")
def _index_before_commit(session: OrmSession) -> None:
    # Every session commit (harvest batch, import batch, reviewer action) indexes what it wrote, in its
    # own transaction. The ORM's final flush comes after this hook, so flush first.
    try:
        bind = session.get_bind()
    except UnboundExecutionError:
        return
    if bind.dialect.name != "sqlite":
        return
    session.flush()
    index_pending(session.connection())


def search_articles_fulltext(
    session: Session, query: str | FulltextQuery, *, limit: int | None = 100, offset: int = 0
) -> list[tuple[int, float]]:
    """(pmid, score) of the articles matching `query`, best first (ties by PMID); higher score is better.

    `query` is search-box text (see parse_query) or a FulltextQuery. Scores are bm25 on SQLite and
    ts_rank_cd on PostgreSQL: they order results, but are not comparable across databases.
    """
    parsed = _as_query(query)
    if parsed.empty:
        return []
    _index_pending(session)
    page = " LIMIT :limit OFFSET :offset" if limit is not None else " LIMIT -1 OFFSET :offset"
    params: dict[str, object] = {"offset": max(0, offset)}
    if limit is not None:
        params["limit"] = max(0, limit)
    if _dialect(session) == "postgresql":
        if limit is None:
            page = " OFFSET :offset"
        sql = (
            f"SELECT pmid, {_PG_SCORE} AS score FROM article, websearch_to_tsquery('{_PG_CONFIG}', :q) AS q "
            f"WHERE {_PG_COLUMN} @@ q ORDER BY score DESC, pmid{page}"
        )
        params["q"] = render_websearch(parsed)
    else:
        sql = (
            f"SELECT rowid, {_SQLITE_SCORE} AS score FROM {_SQLITE_TABLE} WHERE {_SQLITE_TABLE} MATCH :q "
            f"ORDER BY score DESC, rowid{page}"
        )
        params["q"] = render_fts5(parsed)
    return [(int(pmid), float(score)) for pmid, score in session.execute(text(sql), params)]


def match_count(session: Session, query: str | FulltextQuery) -> int:
    """How many articles match `query` (the total behind a page of search results)."""
    parsed = _as_query(query)
    if parsed.empty:
        return 0
    _index_pending(session)
    if _dialect(session) == "postgresql":
        sql = (
            f"SELECT count(*) FROM article, websearch_to_tsquery('{_PG_CONFIG}', :q) AS q "
            f"WHERE {_PG_COLUMN} @@ q"
        )
        q = render_websearch(parsed)
    else:
        sql = f"SELECT count(*) FROM {_SQLITE_TABLE} WHERE {_SQLITE_TABLE} MATCH :q"
        q = render_fts5(parsed)
    return int(session.execute(text(sql), {"q": q}).scalar_one())


# Up to this many PMIDs are passed to the database to narrow a match; more are filtered here.
_WITHIN_IN_SQL = 2000


def matching_pmids(
    session: Session, query: str | FulltextQuery, within: Sequence[int] | None = None
) -> set[int]:
    """PMIDs matching `query`, optionally only among `within` (for explaining why a study ranked)."""
    parsed = _as_query(query)
    if parsed.empty or (within is not None and not within):
        return set()
    _index_pending(session)
    narrow = within is not None and len(within) <= _WITHIN_IN_SQL
    if _dialect(session) == "postgresql":
        sql = f"SELECT pmid FROM article WHERE {_PG_COLUMN} @@ websearch_to_tsquery('{_PG_CONFIG}', :q)"
        params: dict[str, object] = {"q": render_websearch(parsed)}
        if narrow:
            sql += " AND pmid = ANY(:within)"
            params["within"] = [int(pmid) for pmid in within or ()]
    else:
        sql = f"SELECT rowid FROM {_SQLITE_TABLE} WHERE {_SQLITE_TABLE} MATCH :q"
        params = {"q": render_fts5(parsed)}
        if narrow:
            sql += " AND rowid IN (SELECT value FROM json_each(:within))"
            params["within"] = json.dumps([int(pmid) for pmid in within or ()])
    found = {int(pmid) for pmid in session.execute(text(sql), params).scalars()}
    return found if within is None else found & set(within)


def claim_match_scores(session: Session, phrases: Iterable[str]) -> dict[int, float]:
    """Every article matching any of `phrases`, with its lexical score (higher is better): the ranking's
    first stage. bm25 on SQLite; on PostgreSQL ts_rank rather than ts_rank_cd, which took four times as
    long on a claim's 30-40 alternatives over 20,000 articles (cover density gains little on OR queries)."""
    parsed = any_of(phrases)
    if parsed.empty:
        return {}
    if _dialect(session) != "postgresql":
        return dict(search_articles_fulltext(session, parsed, limit=None))
    _index_pending(session)
    sql = (
        f"SELECT pmid, ts_rank({_PG_COLUMN}, q, 1) FROM article, websearch_to_tsquery('{_PG_CONFIG}', :q) AS q "
        f"WHERE {_PG_COLUMN} @@ q"
    )
    rows = session.execute(text(sql), {"q": render_websearch(parsed)})
    return {int(pmid): float(score) for pmid, score in rows}


def fulltext_integrity_check(session: Session) -> None:
    """Raise if the SQLite index disagrees with the articles (FTS5's own check); a no-op on PostgreSQL."""
    if _dialect(session) == "sqlite":
        session.execute(
            text(f"INSERT INTO {_SQLITE_TABLE}({_SQLITE_TABLE}, rank) VALUES ('integrity-check', 1)")
        )
