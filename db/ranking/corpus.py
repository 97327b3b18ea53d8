"""The review queue's corpus: every study's title and design, and its TF-IDF features when a model needs them.

Kept in memory per database and brought up to date incrementally: when articles are added, revised or
removed, only those are read again (by content hash), so the first ranking after a harvest costs what
the new articles cost, not what the whole corpus does. Features are only built once a claim has tags
to learn from (a queue without tags needs titles and designs alone), from each study's word counts,
which are computed once per content version and stored (ArticleTerms): tokenising 20,000 studies takes
about 2.5 s, reading their stored counts a tenth of that.
"""

from __future__ import annotations

import logging
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import (
    ColumnClause,
    ColumnElement,
    Row,
    cast,
    delete,
    func,
    insert,
    literal,
    literal_column,
    null,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col

from db.chunks import chunked
from db.corpus.prefill import mesh_descriptors
from db.engine import SQLITE_BUSY_TIMEOUT_MS
from db.models import Article, ArticleRevision, ArticleTerms
from db.text import feature_word_counts, fold
from db.vocab import StudyDesign

log = logging.getLogger(__name__)


# How many values derived from one database's corpus (lexical scores, trained models) are kept.
DERIVED_CACHE_SIZE = 64
# Values of one reviewer alone (a blinded reviewer's model: db.ranking.queue) are kept apart, so that a
# large team's many personal models never push out the claims' lexical scores and team models.
PERSONAL_CACHE_SIZE = 64
_T = TypeVar("_T")

# Bump when what _Tokeniser.of produces changes: stored word counts of other versions are ignored.
TERMS_VERSION = 1
_SLOT_MASK = (1 << 22) - 1
# A feature as stored: its hash and its count in the study, little-endian, 6 bytes.
_TERM = np.dtype([("hash", "<u4"), ("count", "<u2")])
_SAVE_WAIT_MS = 200

# Up to this many stale studies are read by PMID; more, and one pass over the table is cheaper.
_READ_BY_PMID = 5000


class _Tokeniser:
    """Words of a study as feature hashes and counts; each distinct word is folded and hashed once.

    Hashes (CRC-32 of the folded word) rather than ids from a vocabulary: a study's counts then mean
    the same in every process and can be stored once (ArticleTerms) as the bytes returned here.
    """

    def __init__(self) -> None:
        self._word_hashes: dict[str, int] = {}  # raw word -> hash, -1 for a stopword

    def of(self, title: str, abstract: str, mesh: list[str], keywords: Iterable[str]) -> bytes:
        """One study's features as _TERM records (hash, count); each MeSH descriptor is a feature too."""
        extra = " ".join(mesh + [keyword for keyword in keywords if isinstance(keyword, str)])
        counts: dict[int, int] = {}
        word_hashes = self._word_hashes
        # Count in C first, then map each distinct word: this loop is most of the tokenising.
        for word, n in feature_word_counts(title, abstract, extra).items():
            feature = word_hashes.get(word)
            if feature is None:
                folded = fold(word)
                feature = word_hashes[word] = -1 if folded is None else zlib.crc32(folded.encode())
            if feature >= 0:
                counts[feature] = counts.get(feature, 0) + n
        for descriptor in mesh:
            feature = zlib.crc32(("mesh:" + descriptor.lower()).encode())
            counts[feature] = counts.get(feature, 0) + 1
        records = np.empty(len(counts), dtype=_TERM)
        records["hash"] = list(counts)
        records["count"] = np.minimum(list(counts.values()), 65535)
        return records.tobytes()


@dataclass(eq=False)
class _Study:
    """What the corpus keeps of one article version (its content hash)."""

    content_hash: str
    title: str
    design: StudyDesign
    terms: bytes | None = None  # _Tokeniser.of; None until features are first needed
    is_notice: bool = False  # a retraction notice, erratum, ...: never queued as a study


@dataclass(frozen=True)
class Features:
    """TF-IDF rows of a corpus's studies (sublinear tf, smoothed idf, unit length) in CSR form."""

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    rows: np.ndarray  # the row of each stored value, for bincount-based products
    vocabulary_size: int


@dataclass(frozen=True, eq=False)
class Corpus:
    """Every study as the articles are now, in PMID order: titles and designs; features on demand."""

    signature: tuple[object, ...]
    pmids: np.ndarray  # int64, ascending
    titles: tuple[str, ...]
    designs: tuple[StudyDesign, ...]  # the stored prefill (db.corpus.design; corrections come later)
    studies: tuple[_Study, ...] = field(repr=False)
    _features: list[Features] = field(default_factory=list, repr=False)  # filled once by corpus_features

    @property
    def size(self) -> int:
        return len(self.pmids)

    @property
    def notices(self) -> np.ndarray:
        """True for the rows that are publication notices, not studies (db.corpus.notices)."""
        return np.fromiter((study.is_notice for study in self.studies), dtype=bool, count=len(self.studies))

    def positions(self, pmids: Iterable[int]) -> np.ndarray:
        """Row numbers of the given PMIDs that are in the corpus, in the order given."""
        wanted = np.fromiter(pmids, dtype=np.int64)
        if self.size == 0 or wanted.size == 0:
            return np.zeros(0, dtype=np.int64)
        found = np.minimum(np.searchsorted(self.pmids, wanted), self.size - 1)
        return found[self.pmids[found] == wanted]


def corpus_signature(session: Session) -> tuple[object, ...]:
    """Changes whenever an article is added, revised or removed: the articles' count and PMID sum, and
    the newest revision (db.corpus.articles records one for every change of an article's content).

    Read from indexes only: max(article.updated_at) meant reading every row, 0.3 s at 100,000 studies.
    """
    # ORM attributes, not table columns: the session flushes pending articles and revisions first.
    row = session.execute(
        select(
            func.count(col(Article.pmid)),
            func.max(col(Article.pmid)),
            func.coalesce(func.sum(col(Article.pmid)), 0),
        )
    ).one()
    latest = session.execute(select(func.max(ArticleRevision.id))).scalar()
    return (int(row[0]), row[1], int(row[2]), latest)


# --- one store per database, brought up to date when the articles change --------------------------------


class _Store:
    def __init__(self) -> None:
        self.studies: dict[int, _Study] = {}
        self.tokeniser = _Tokeniser()
        self.corpus: Corpus | None = None
        self.features_wanted = False  # once a model needed features, new studies are tokenised on arrival
        self.lock = threading.Lock()
        self.derived: OrderedDict[tuple[object, ...], object] = OrderedDict()
        self.personal: OrderedDict[tuple[object, ...], object] = OrderedDict()
        self.derived_lock = threading.Lock()


_stores: dict[str, _Store] = {}
_stores_lock = threading.Lock()


def _database_key(session: Session) -> str:
    return session.get_bind().engine.url.render_as_string(hide_password=False)


def _store(session: Session) -> _Store:
    key = _database_key(session)
    with _stores_lock:
        return _stores.setdefault(key, _Store())


def current_corpus(session: Session) -> Corpus:
    """The corpus of the articles as they are now; only articles changed since the last call are read."""
    store = _store(session)
    signature = corpus_signature(session)
    cached = store.corpus
    if cached is not None and cached.signature == signature:
        return cached
    with store.lock:  # one refresh at a time per database; a second caller waits and then reuses it
        cached = store.corpus
        if cached is not None and cached.signature == signature:
            return cached
        store.corpus = _refresh(session, store, signature)
        with store.derived_lock:  # keyed on the old signature: never asked for again
            store.derived.clear()
            store.personal.clear()
        return store.corpus


def _article_rows(
    session: Session, pmids: Sequence[int], everything: bool, text: bool = True
) -> Iterable[Row[*tuple[Any, ...]]]:
    """(pmid, content_hash, title, abstract, design, mesh_headings, keywords, is_notice) of the articles;
    without `text`, abstract and keywords come back empty (the bulk of an article, and not needed for
    titles and designs)."""
    table = Article.__table__
    mesh: ColumnElement[object] = table.c.mesh_headings
    if session.get_bind().dialect.name == "postgresql":
        # Only the descriptor names (objects' "descriptor", or plain strings), extracted by the server:
        # qualifiers and major-topic flags are most of the JSON a full read decodes (0.3 s per 20,000).
        headings = cast(table.c.mesh_headings, JSONB)
        names: ColumnClause[str] = literal_column("""'$[*] ? (@.type() == "object").descriptor'::jsonpath""")
        plain: ColumnClause[str] = literal_column("""'$[*] ? (@.type() == "string")'::jsonpath""")
        mesh = func.jsonb_path_query_array(headings, names).op("||")(
            func.jsonb_path_query_array(headings, plain)
        )
    query = select(
        table.c.pmid,
        table.c.content_hash,
        table.c.title,
        table.c.abstract if text else literal(""),
        table.c.design,
        mesh,
        table.c.keywords if text else null(),
        table.c.is_notice,
    )
    if everything:
        yield from session.execute(query.execution_options(yield_per=2000))
        return
    for chunk in chunked(pmids):
        yield from session.execute(query.where(table.c.pmid.in_(chunk)))


def _refresh(session: Session, store: _Store, signature: tuple[object, ...]) -> Corpus:
    old = store.studies
    studies: dict[int, _Study] = {}
    if old:  # which articles are new or changed since: (PMID, content hash) of every article first
        table = Article.__table__
        stale: list[int] = []
        for pmid, content_hash in session.execute(select(table.c.pmid, table.c.content_hash)):
            known = old.get(pmid)
            if known is not None and known.content_hash == content_hash:
                studies[pmid] = known
            else:
                stale.append(pmid)
        rows = _article_rows(session, stale, len(stale) > _READ_BY_PMID, text=store.features_wanted)
        wanted = set(stale)
    else:  # a first build reads every article in one pass
        rows = _article_rows(session, (), True, text=store.features_wanted)
        wanted = None
    tokenised: dict[int, _Study] = {}
    for pmid, content_hash, title, abstract, design, mesh_headings, keywords, is_notice in rows:
        if wanted is not None and pmid not in wanted:
            continue
        mesh = [descriptor for descriptor in mesh_descriptors(mesh_headings or []) if descriptor]
        study = _Study(content_hash, title or "", StudyDesign(design), is_notice=bool(is_notice))
        if store.features_wanted:
            study.terms = store.tokeniser.of(title or "", abstract or "", mesh, keywords or [])
            tokenised[pmid] = study
        studies[pmid] = study
    store.studies = studies
    _save_terms(session, tokenised)
    pmids = sorted(studies)
    ordered = [studies[pmid] for pmid in pmids]
    return Corpus(
        signature=signature,
        pmids=np.asarray(pmids, dtype=np.int64),
        titles=tuple(study.title for study in ordered),
        designs=tuple(study.design for study in ordered),
        studies=tuple(ordered),
    )


def corpus_features(session: Session, corpus: Corpus) -> Features:
    """The corpus's TF-IDF rows. Each study's word counts come from memory, else from ArticleTerms when
    stored for its current content, else from tokenising its text (stored then for the next start)."""
    if corpus._features:
        return corpus._features[0]
    store = _store(session)
    with store.lock:
        if corpus._features:
            return corpus._features[0]
        store.features_wanted = True
        missing = {
            int(pmid): study
            for pmid, study in zip(corpus.pmids, corpus.studies, strict=True)
            if study.terms is None
        }
        for pmid, terms in _stored_terms(session, missing).items():
            missing.pop(pmid).terms = terms
        if missing:
            tokenised: dict[int, _Study] = {}
            for pmid, _hash, title, abstract, _design, mesh_headings, keywords, _notice in _article_rows(
                session, sorted(missing), len(missing) > _READ_BY_PMID
            ):
                study = missing.get(pmid)
                if study is None:
                    continue
                mesh = [descriptor for descriptor in mesh_descriptors(mesh_headings or []) if descriptor]
                study.terms = store.tokeniser.of(title or "", abstract or "", mesh, keywords or [])
                tokenised[pmid] = study
            for study in missing.values():  # removed while we read: no words (gone at the next refresh)
                if study.terms is None:
                    study.terms = b""
            _save_terms(session, tokenised)
        features = _tf_idf([study.terms for study in corpus.studies])  # type: ignore[misc]
        corpus._features.append(features)
        return features


def _stored_terms(session: Session, wanted: Mapping[int, _Study]) -> dict[int, bytes]:
    """The stored word counts of the `wanted` studies whose content has not changed since."""
    if not wanted:
        return {}
    table = ArticleTerms.__table__
    query = select(table.c.pmid, table.c.content_hash, table.c.terms).where(table.c.version == TERMS_VERSION)
    if len(wanted) > _READ_BY_PMID:
        batches = [session.execute(query.execution_options(yield_per=5000))]
    else:
        pmids = sorted(wanted)
        batches = [session.execute(query.where(table.c.pmid.in_(chunk))) for chunk in chunked(pmids)]
    found: dict[int, bytes] = {}
    for batch in batches:
        for pmid, content_hash, blob in batch:
            study = wanted.get(pmid)
            if study is not None and study.content_hash == content_hash:
                found[pmid] = bytes(blob)
    return found


def _save_terms(session: Session, studies: Mapping[int, _Study]) -> None:
    """Store freshly tokenised studies in their own short transaction, so the caller's (a page's read)
    is left alone; best effort: if the database is busy or read-only they are tokenised again later."""
    if not studies:
        return
    table = ArticleTerms.__table__
    rows = [
        {
            "pmid": pmid,
            "content_hash": study.content_hash,
            "version": TERMS_VERSION,
            "terms": study.terms,
        }
        for pmid, study in sorted(studies.items())
        if study.terms is not None
    ]
    engine = session.get_bind().engine
    try:
        with engine.connect() as connection:
            sqlite = connection.dialect.name == "sqlite"
            try:
                if sqlite:  # never wait long for the write lock: the caller may hold it, uncommitted
                    connection.exec_driver_sql(f"PRAGMA busy_timeout = {_SAVE_WAIT_MS}")
                    connection.commit()
                with connection.begin():
                    if not sqlite:
                        connection.exec_driver_sql(f"SET LOCAL lock_timeout = {_SAVE_WAIT_MS}")
                    for chunk in chunked(rows):
                        connection.execute(delete(table).where(table.c.pmid.in_([r["pmid"] for r in chunk])))
                        connection.execute(insert(table), chunk)
            finally:
                if sqlite:
                    _restore_busy_timeout(connection)
    except SQLAlchemyError as exc:
        log.info(
            "Word counts of %d studies not stored (%s); they are tokenised again when needed.", len(rows), exc
        )


def _restore_busy_timeout(connection: Connection) -> None:
    # The connection goes back to the pool: with a short timeout, a later writer on it could see
    # "database is locked". If the setting cannot be restored, the connection is not reused.
    try:
        connection.rollback()
        connection.exec_driver_sql(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        connection.commit()
    except SQLAlchemyError:
        connection.invalidate()


def _tf_idf(terms: list[bytes]) -> Features:
    n_docs = len(terms)
    lengths = np.fromiter((len(blob) // _TERM.itemsize for blob in terms), dtype=np.int64, count=n_docs)
    indptr = np.zeros(n_docs + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    records = np.frombuffer(b"".join(terms), dtype=_TERM)  # one join, no per-study arrays
    # Feature hashes to dense column numbers, for this build only, without sorting ~2 million values:
    # their low 22 bits mark a table of 4 million slots, numbered in order. A 20,000-study corpus has
    # ~12,000 features, of which a few dozen share a slot with another (feature hashing, as in
    # scikit-learn's HashingVectorizer with 2**22 features); naive Bayes shrugs that off.
    slots = (records["hash"] & _SLOT_MASK).astype(np.int64)
    marked = np.zeros(_SLOT_MASK + 1, dtype=bool)
    marked[slots] = True
    numbers = np.cumsum(marked, dtype=np.int32)
    vocabulary_size = int(numbers[-1])
    indices = numbers[slots] - 1
    del numbers, marked
    data = 1.0 + np.log(records["count"].astype(np.float64))  # sublinear term frequency
    rows = np.repeat(np.arange(n_docs, dtype=np.int32), lengths)
    df = np.bincount(indices, minlength=vocabulary_size).astype(np.float64)
    idf = np.log((1.0 + n_docs) / (1.0 + df)) + 1.0
    data *= idf[indices]
    norms = np.sqrt(np.bincount(rows, weights=data * data, minlength=n_docs))
    norms[norms == 0] = 1.0
    data /= norms[rows]
    return Features(indptr=indptr, indices=indices, data=data, rows=rows, vocabulary_size=vocabulary_size)


def recall(session: Session, key: tuple[object, ...]) -> object | None:
    """The value kept under `key` for this database (see remember), or None."""
    store = _store(session)
    with store.derived_lock:
        for kept in (store.derived, store.personal):
            if key in kept:
                kept.move_to_end(key)
                return kept[key]
        return None


def keep(session: Session, key: tuple[object, ...], value: object, *, personal: bool = False) -> None:
    """Keep `value` under `key` for this database; the least recently used of DERIVED_CACHE_SIZE go first
    (of PERSONAL_CACHE_SIZE, for a value of one reviewer alone)."""
    store = _store(session)
    kept, size = (store.personal, PERSONAL_CACHE_SIZE) if personal else (store.derived, DERIVED_CACHE_SIZE)
    with store.derived_lock:
        kept[key] = value
        kept.move_to_end(key)
        while len(kept) > size:
            kept.popitem(last=False)


def remember(session: Session, key: tuple[object, ...], compute: Callable[[], _T]) -> _T:
    """A value derived from this database (a claim's lexical scores), computed once per `key` and kept
    with the corpus; `key` must hold everything the value depends on (e.g. the corpus signature)."""
    found = recall(session, key)
    if found is not None:
        return found  # type: ignore[return-value]
    value = compute()  # outside the lock: two callers may both compute, and both get a right answer
    keep(session, key, value)
    return value


def clear_corpus_cache() -> None:
    """Forget every cached corpus (tests, or after restoring a database file under a running app)."""
    with _stores_lock:
        _stores.clear()


def warm_corpus_cache(session_factory: Callable[[], AbstractContextManager[Session]]) -> threading.Thread:
    """Build the corpus and its features in a background thread (e.g. at dashboard start), so that the
    first queue, and the first one with tags to learn from, are instant.

    `session_factory` opens a session, e.g. `functools.partial(db.engine.open_session, url)`.
    """

    def build() -> None:
        with session_factory() as session:
            corpus_features(session, current_corpus(session))

    thread = threading.Thread(target=build, name="ranking-corpus-warmup", daemon=True)
    thread.start()
    return thread
