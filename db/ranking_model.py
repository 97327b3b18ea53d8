"""The learning stage of the review queue: TF-IDF features of every study and a naive Bayes model per claim.

Features are built once per corpus version and kept in memory per database (about 2 s per 20,000
studies; warm_corpus_cache does it in the background); training on a claim's tagged studies and scoring
every study then takes milliseconds, so the queue is simply retrained on each request and the reviewer
never waits for it (docs/performance.md).
"""

from __future__ import annotations

import math
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass

import numpy as np
from sqlalchemy import func, select
from sqlmodel import Session

from db.design import StudyDesign, mesh_descriptors, suggest_design
from db.models import Article

# ASReview's tuned smoothing for naive Bayes on TF-IDF features (Van de Schoot et al. 2021): large
# enough that a handful of tagged studies cannot push a rare word to an extreme weight.
NB_ALPHA = 3.822
_TOKEN = re.compile(r"[a-z][a-z0-9]+|[0-9]+[a-z][a-z0-9]*")
_STOPWORDS = frozenset(
    [
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "also",
        "among",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "does",
        "doing",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "here",
        "how",
        "however",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "may",
        "might",
        "more",
        "most",
        "must",
        "no",
        "nor",
        "not",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "out",
        "over",
        "own",
        "same",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "within",
        "would",
    ]
)


@dataclass(frozen=True)
class Corpus:
    """Every study's features, in PMID order: CSR TF-IDF rows (L2-normalised), titles and designs."""

    signature: tuple[object, ...]
    pmids: np.ndarray  # int64, ascending
    titles: tuple[str, ...]
    designs: tuple[StudyDesign, ...]  # as PubMed's publication types suggest (corrections come later)
    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    rows: np.ndarray  # the row of each stored value, for bincount-based products
    vocabulary: Mapping[str, int]

    @property
    def vocabulary_size(self) -> int:
        return len(self.vocabulary)

    @property
    def size(self) -> int:
        return len(self.pmids)

    def positions(self, pmids: Iterable[int]) -> np.ndarray:
        """Row numbers of the given PMIDs that are in the corpus, in the order given."""
        wanted = np.fromiter(pmids, dtype=np.int64)
        if self.size == 0 or wanted.size == 0:
            return np.zeros(0, dtype=np.int64)
        found = np.minimum(np.searchsorted(self.pmids, wanted), self.size - 1)
        return found[self.pmids[found] == wanted]


def _fold(word: str) -> str | None:
    """A word as a feature: None for stopwords; a plural 's' dropped so 'relapses' counts as 'relapse'."""
    if word in _STOPWORDS:
        return None
    if len(word) > 4 and word[-1] == "s" and word[-2] not in "su":
        return word[:-1]
    return word


def tokens(text: str) -> list[str]:
    """Lower-case word features of a text, in order (see _fold)."""
    return [folded for word in _TOKEN.findall(text.lower()) if (folded := _fold(word)) is not None]


def _words(title: str, abstract: str, extra: str) -> list[str]:
    words = _TOKEN.findall(title.lower()) * 2  # title words count twice
    words += _TOKEN.findall(abstract.lower())
    if extra:
        words += _TOKEN.findall(extra.lower())
    return words


class _Features:
    """Feature ids of one corpus build; each distinct word is folded and looked up once per build."""

    def __init__(self) -> None:
        self.vocabulary: dict[str, int] = {}
        self._word_ids: dict[str, int] = {}  # raw word -> feature id, -1 for a stopword

    def _id(self, term: str) -> int:
        return self.vocabulary.setdefault(term, len(self.vocabulary))

    def of(self, title: str, abstract: str, mesh: list[str], keywords: Iterable[str]) -> dict[int, int]:
        """Feature id -> count for one study; each MeSH descriptor is a feature of its own too."""
        extra = " ".join(mesh + [keyword for keyword in keywords if isinstance(keyword, str)])
        counts: dict[int, int] = {}
        word_ids = self._word_ids
        # Count in C first, then map each distinct word: this loop is most of a 20,000-study build.
        for word, n in Counter(_words(title, abstract, extra)).items():
            feature = word_ids.get(word)
            if feature is None:
                folded = _fold(word)
                feature = word_ids[word] = -1 if folded is None else self._id(folded)
            if feature >= 0:
                counts[feature] = counts.get(feature, 0) + n
        for descriptor in mesh:
            feature = self._id("mesh:" + descriptor.lower())
            counts[feature] = counts.get(feature, 0) + 1
        return counts


def corpus_signature(session: Session) -> tuple[object, ...]:
    """Changes whenever an article is added, revised or removed (count, newest update, PMID sum)."""
    table = Article.__table__
    row = session.execute(
        select(func.count(), func.max(table.c.updated_at), func.coalesce(func.sum(table.c.pmid), 0))
    ).one()
    return (int(row[0]), str(row[1]), int(row[2]))


def build_corpus(session: Session, signature: tuple[object, ...] | None = None) -> Corpus:
    """Read every article once and compute its TF-IDF row (sublinear tf, smoothed idf, unit length)."""
    signature = signature if signature is not None else corpus_signature(session)
    table = Article.__table__
    query = select(
        table.c.pmid,
        table.c.title,
        table.c.abstract,
        table.c.publication_types,
        table.c.mesh_headings,
        table.c.keywords,
    ).order_by(table.c.pmid)
    pmids: list[int] = []
    titles: list[str] = []
    designs: list[StudyDesign] = []
    features = _Features()
    term_ids: list[int] = []
    term_counts: list[int] = []
    lengths: list[int] = []
    for pmid, title, abstract, types, mesh_headings, keywords in session.execute(
        query.execution_options(yield_per=2000)
    ):
        mesh = [descriptor for descriptor in mesh_descriptors(mesh_headings or []) if descriptor]
        counts = features.of(title or "", abstract or "", mesh, keywords or [])
        term_ids.extend(counts)
        term_counts.extend(counts.values())
        lengths.append(len(counts))
        pmids.append(int(pmid))
        titles.append(title or "")
        designs.append(suggest_design(types or [], mesh))
    vocabulary = features.vocabulary
    n_docs = len(lengths)
    indptr = np.zeros(n_docs + 1, dtype=np.int64)
    np.cumsum(np.asarray(lengths, dtype=np.int64), out=indptr[1:])
    indices = np.asarray(term_ids, dtype=np.int32)
    data = 1.0 + np.log(np.asarray(term_counts, dtype=np.float64))  # sublinear term frequency
    rows = np.repeat(np.arange(n_docs, dtype=np.int32), lengths)
    df = np.bincount(indices, minlength=len(vocabulary)).astype(np.float64)
    idf = np.log((1.0 + n_docs) / (1.0 + df)) + 1.0
    data *= idf[indices]
    norms = np.sqrt(np.bincount(rows, weights=data * data, minlength=n_docs))
    norms[norms == 0] = 1.0
    data /= norms[rows]
    return Corpus(
        signature=signature,
        pmids=np.asarray(pmids, dtype=np.int64),
        titles=tuple(titles),
        designs=tuple(designs),
        indptr=indptr,
        indices=indices,
        data=data,
        rows=rows,
        vocabulary=vocabulary,
    )


# --- one corpus per database, rebuilt when the articles change ------------------------------------------

_corpora: dict[str, Corpus] = {}
_lock = threading.Lock()


def _database_key(session: Session) -> str:
    return session.get_bind().engine.url.render_as_string(hide_password=False)


def current_corpus(session: Session) -> Corpus:
    """The features of the articles as they are now, from the in-memory cache when still current."""
    key = _database_key(session)
    signature = corpus_signature(session)
    cached = _corpora.get(key)
    if cached is not None and cached.signature == signature:
        return cached
    with _lock:  # one build at a time per process; a second caller waits and then reuses it
        cached = _corpora.get(key)
        if cached is not None and cached.signature == signature:
            return cached
        corpus = build_corpus(session, signature)
        _corpora[key] = corpus
        return corpus


def clear_corpus_cache() -> None:
    """Forget every cached corpus (tests, or after restoring a database file under a running app)."""
    with _lock:
        _corpora.clear()


def warm_corpus_cache(session_factory: Callable[[], AbstractContextManager[Session]]) -> threading.Thread:
    """Build the cache in a background thread (e.g. at dashboard start) so the first queue is instant.

    `session_factory` opens a session, e.g. `functools.partial(db.engine.open_session, url)`.
    """

    def build() -> None:
        with session_factory() as session:
            current_corpus(session)

    thread = threading.Thread(target=build, name="ranking-corpus-warmup", daemon=True)
    thread.start()
    return thread


# --- naive Bayes on the claim's tagged studies ---------------------------------------------------------


@dataclass(frozen=True)
class Model:
    """Per-feature log-likelihood ratios learnt from a claim's tagged studies."""

    weights: np.ndarray
    relevant: int
    irrelevant: int


def train(corpus: Corpus, labels: Mapping[int, bool], alpha: float = NB_ALPHA) -> Model | None:
    """Multinomial naive Bayes on TF-IDF rows; None until there is at least one study of each kind."""
    positive = [pmid for pmid, relevant in labels.items() if relevant]
    negative = [pmid for pmid, relevant in labels.items() if not relevant]
    pos_rows, neg_rows = corpus.positions(sorted(positive)), corpus.positions(sorted(negative))
    if len(pos_rows) == 0 or len(neg_rows) == 0:
        return None
    log_pos = _class_log_likelihood(corpus, pos_rows, alpha)
    log_neg = _class_log_likelihood(corpus, neg_rows, alpha)
    return Model(weights=log_pos - log_neg, relevant=len(pos_rows), irrelevant=len(neg_rows))


def _class_log_likelihood(corpus: Corpus, rows: np.ndarray, alpha: float) -> np.ndarray:
    picks = np.concatenate([np.arange(corpus.indptr[r], corpus.indptr[r + 1]) for r in rows])
    totals = np.bincount(corpus.indices[picks], weights=corpus.data[picks], minlength=corpus.vocabulary_size)
    smoothed = totals + alpha
    return np.log(smoothed) - math.log(float(smoothed.sum()))


def score(corpus: Corpus, model: Model) -> np.ndarray:
    """The model's log-odds score of every study (row order), higher meaning more likely relevant."""
    contributions = corpus.data * model.weights[corpus.indices]
    return np.bincount(corpus.rows, weights=contributions, minlength=corpus.size)


def percentile(values: np.ndarray) -> np.ndarray:
    """Each value's standing in (0, 1]: 1 minus the share of values strictly above it, so equal values
    stand equal (their order is then left to the other signals and, last, to the PMID)."""
    n = len(values)
    if n == 0:
        return np.zeros(0)
    ascending = np.sort(values)
    above = n - np.searchsorted(ascending, values, side="right")
    return 1.0 - above / n
