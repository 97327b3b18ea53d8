"""What places a study in a claim's queue besides the model (db.ranking.queue mixes them): full-text
match, design and similarity, and the reasons for a place in words."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sqlmodel import Session

from db.corpus.design import DESIGN_TIER
from db.corpus.fulltext import any_of, claim_match_scores, matching_pmids
from db.models import Claim
from db.ranking import embeddings
from db.ranking.corpus import remember
from db.ranking.model import Corpus, Model
from db.vocab import EvidenceTier, StudyDesign

DESIGN_BONUS: dict[EvidenceTier, float] = {
    EvidenceTier.DECISIVE: 0.04,
    EvidenceTier.SUPPORTING: 0.02,
    EvidenceTier.NOT_COUNTED: 0.0,
}


MAX_MATCHED_TERMS_SHOWN = 5


def lexical_scores(session: Session, corpus: Corpus, terms: tuple[str, ...]) -> np.ndarray:
    """The full-text score of every corpus row for `terms` (0 where none matched), kept until the
    articles change: on PostgreSQL ranking every match of a claim's query takes seconds at 100,000."""

    def compute() -> np.ndarray:
        lexical = np.zeros(corpus.size)
        found = claim_match_scores(session, terms)
        if found:
            rows = corpus.positions(found)
            lexical[rows] = [found[int(pmid)] for pmid in corpus.pmids[rows]]
        lexical.setflags(write=False)
        return lexical

    return remember(session, ("lexical", terms, corpus.signature), compute)


def design_bonus(session: Session, corpus: Corpus) -> np.ndarray:
    """Each row's bonus for the design its publication types suggest (corrections are applied on top)."""

    def compute() -> np.ndarray:
        bonus = np.array([DESIGN_BONUS[DESIGN_TIER[design]] for design in corpus.designs], dtype=np.float64)
        bonus.setflags(write=False)
        return bonus

    return remember(session, ("design bonus", corpus.signature), compute)


def matched_terms(
    session: Session, terms: Sequence[str], pmids: list[int], lexical_rows: np.ndarray
) -> dict[int, tuple[str, ...]]:
    """Which of the query's terms each shown study matched (only studies with a lexical score can)."""
    within = [pmid for pmid, has_score in zip(pmids, lexical_rows, strict=True) if has_score]
    if not within:
        return {}
    found: dict[int, list[str]] = {}
    for term in terms:
        for pmid in matching_pmids(session, any_of([term]), within=within):
            found.setdefault(pmid, []).append(term)
    return {pmid: tuple(names) for pmid, names in found.items()}


def why(
    matched: tuple[str, ...],
    design: StudyDesign,
    standing: float | None,
    model: Model | None,
    similarity: float | None,
) -> str:
    """The reasons for a study's place, in words: matched terms, design, model and similarity."""
    parts = []
    if matched:
        shown = ", ".join(matched[:MAX_MATCHED_TERMS_SHOWN])
        more = len(matched) - MAX_MATCHED_TERMS_SHOWN
        parts.append(f"matched {shown}" + (f" (+{more} more)" if more > 0 else ""))
    else:
        parts.append("no claim term matched")
    parts.append(f"design: {design.label}")
    if standing is not None and model is not None:
        parts.append(
            f"model: top {max(1, round((1 - standing) * 100))}% "
            f"(learnt from {model.relevant} relevant, {model.irrelevant} not)"
        )
    if similarity is not None:
        parts.append(f"similarity {similarity:.2f}")
    return "; ".join(parts)


def semantic_scores(session: Session, claim: Claim, corpus: Corpus) -> np.ndarray | None:
    """Cosine similarity of each study to the claim, or None when the extra or the embeddings are missing."""
    similarities = embeddings.claim_similarities(session, claim)
    if not similarities:
        return None
    values = np.zeros(corpus.size)
    rows = corpus.positions(similarities)
    values[rows] = [similarities[int(pmid)] for pmid in corpus.pmids[rows]]
    return values
