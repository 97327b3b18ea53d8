"""The learning stage of the review queue: a naive Bayes model per claim on the corpus's TF-IDF features.

Training on a claim's tagged studies and scoring every study take milliseconds once the features exist
(db.ranking.corpus builds them incrementally); db.ranking.queue caches the trained model per claim until
the next decision, so the reviewer never waits for it (docs/performance.md).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from db.ranking.corpus import (
    Corpus,
    Features,
    clear_corpus_cache,
    corpus_features,
    corpus_signature,
    current_corpus,
    warm_corpus_cache,
)
from db.text import tokens

# ASReview's tuned smoothing for naive Bayes on TF-IDF features (Van de Schoot et al. 2021): large
# enough that a handful of tagged studies cannot push a rare word to an extreme weight.
NB_ALPHA = 3.822


# --- naive Bayes on the claim's tagged studies ---------------------------------------------------------


@dataclass(frozen=True)
class Model:
    """Per-feature log-likelihood ratios learnt from a claim's tagged studies."""

    weights: np.ndarray
    relevant: int
    irrelevant: int


@dataclass(frozen=True)
class ClassTotals:
    """Naive Bayes' counts: the summed TF-IDF rows of a claim's relevant and not-relevant studies.

    Kept between requests and brought up to date one decision at a time (update_totals), so that
    retraining after a decision costs that decision's rows, not every tagged study's.
    """

    positive: np.ndarray
    negative: np.ndarray
    relevant: int
    irrelevant: int


def class_totals(corpus: Corpus, features: Features, labels: Mapping[int, bool]) -> ClassTotals:
    """The totals of every labelled study of the corpus (labels of other PMIDs are ignored)."""
    pos_rows = corpus.positions(pmid for pmid, relevant in labels.items() if relevant)
    neg_rows = corpus.positions(pmid for pmid, relevant in labels.items() if not relevant)
    return ClassTotals(
        positive=_summed_rows(features, pos_rows),
        negative=_summed_rows(features, neg_rows),
        relevant=len(pos_rows),
        irrelevant=len(neg_rows),
    )


def update_totals(
    totals: ClassTotals,
    corpus: Corpus,
    features: Features,
    changes: Mapping[int, tuple[bool | None, bool | None]],
) -> ClassTotals:
    """`totals` after each PMID's label went from the first value to the second (None: no label)."""
    positive, negative = totals.positive.copy(), totals.negative.copy()
    relevant, irrelevant = totals.relevant, totals.irrelevant
    for pmid, (before, after) in changes.items():
        rows = corpus.positions([pmid])
        if before == after or len(rows) == 0:
            continue
        start, end = features.indptr[rows[0]], features.indptr[rows[0] + 1]
        columns, values = features.indices[start:end], features.data[start:end]
        if before is not None:
            np.subtract.at(positive if before else negative, columns, values)
            relevant, irrelevant = (relevant - 1, irrelevant) if before else (relevant, irrelevant - 1)
        if after is not None:
            np.add.at(positive if after else negative, columns, values)
            relevant, irrelevant = (relevant + 1, irrelevant) if after else (relevant, irrelevant + 1)
    # Subtracting what was added leaves rounding dust, never a negative count.
    np.maximum(positive, 0.0, out=positive)
    np.maximum(negative, 0.0, out=negative)
    return ClassTotals(positive, negative, relevant, irrelevant)


def model_from_totals(totals: ClassTotals, alpha: float = NB_ALPHA) -> Model | None:
    """Multinomial naive Bayes from the totals; None until there is at least one study of each kind."""
    if totals.relevant == 0 or totals.irrelevant == 0:
        return None
    weights = _log_likelihood(totals.positive, alpha) - _log_likelihood(totals.negative, alpha)
    return Model(weights=weights, relevant=totals.relevant, irrelevant=totals.irrelevant)


def train(
    corpus: Corpus, features: Features, labels: Mapping[int, bool], alpha: float = NB_ALPHA
) -> Model | None:
    """Multinomial naive Bayes on TF-IDF rows; None until there is at least one study of each kind."""
    return model_from_totals(class_totals(corpus, features, labels), alpha)


def can_train(corpus: Corpus, labels: Mapping[int, bool]) -> bool:
    """True when `labels` hold at least one relevant and one not-relevant study of the corpus."""
    return all(
        len(corpus.positions(pmid for pmid, relevant in labels.items() if bool(relevant) is kind)) > 0
        for kind in (True, False)
    )


def _summed_rows(features: Features, rows: np.ndarray) -> np.ndarray:
    # A mask over the rows rather than one slice per study: thousands of tagged studies cost one pass.
    chosen = np.zeros(len(features.indptr) - 1, dtype=bool)
    chosen[rows] = True
    picks = chosen[features.rows]
    return np.bincount(
        features.indices[picks], weights=features.data[picks], minlength=features.vocabulary_size
    ).astype(np.float64)


def _log_likelihood(totals: np.ndarray, alpha: float) -> np.ndarray:
    smoothed = totals + alpha
    return np.log(smoothed) - math.log(float(smoothed.sum()))


def score(features: Features, model: Model) -> np.ndarray:
    """The model's log-odds score of every study (row order), higher meaning more likely relevant."""
    contributions = features.data * model.weights[features.indices]
    return np.bincount(features.rows, weights=contributions, minlength=len(features.indptr) - 1)


def standardised(values: np.ndarray) -> np.ndarray:
    """Values as distances from their mean in standard deviations (all zero when they are all equal)."""
    spread = float(values.std()) if len(values) else 0.0
    if spread == 0.0:
        return np.zeros(len(values))
    return (values - values.mean()) / spread


def percentile(values: np.ndarray) -> np.ndarray:
    """Each value's standing in (0, 1]: 1 minus the share of values strictly above it, so equal values
    stand equal (their order is then left to the other signals and, last, to the PMID)."""
    n = len(values)
    if n == 0:
        return np.zeros(0)
    ascending = np.sort(values)
    above = n - np.searchsorted(ascending, values, side="right")
    return 1.0 - above / n


__all__ = [
    "NB_ALPHA",
    "ClassTotals",
    "Corpus",
    "Features",
    "Model",
    "can_train",
    "class_totals",
    "clear_corpus_cache",
    "corpus_features",
    "corpus_signature",
    "current_corpus",
    "model_from_totals",
    "percentile",
    "score",
    "standardised",
    "tokens",
    "train",
    "update_totals",
    "warm_corpus_cache",
]
