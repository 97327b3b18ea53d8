"""A new claim's search, built from the claim itself: no term list written for it by hand.

A claim whose key has no shipped terms (db/seed/expansions.json) and no editor's terms is searched with:
1. the content words of everything the editor wrote about it: statement, source sentence, PICO fields
   (population, intervention, comparator, outcome) and time frame;
2. time-scale words: a claim about hours or days also asks for onset words, one about months or lasting
   benefit for durability words (TIME_SCALES). This table is general, the same for every claim, and is
   only read when the claim's own words name a time scale;
3. pseudo-relevance feedback: the centroid of the first PRF_DEPTH studies of that search (their TF-IDF
   rows) scores every study again, and the two standings are added (PRF_WEIGHT), so words the best
   matches share (an abbreviation, a rating scale) lift studies the claim's words missed.
The seed claims keep their hand-written terms (db.ranking.terms); bench/ranking.py measures both paths.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np
from sqlmodel import Session

from db.models import Claim
from db.ranking.corpus import remember
from db.ranking.model import Corpus, corpus_features, percentile
from db.text import content_words

# How many of the first search's studies feed back, and the feedback's weight against that search.
# Chosen on bench/judged_claims.json only (k 3, 5, 10 and weight 0.5, 1, 2 tried); the held-out set
# (bench/judged_claims_heldout.json) was not looked at to choose them.
PRF_DEPTH = 10
PRF_WEIGHT = 1.0
# Below this many studies feedback is skipped: a handful of matches cannot tell what the claim is about.
PRF_MIN_STUDIES = 20

_SHORT = re.compile(
    r"\b(?:hours?|days?|rapid(?:ly)?|quick(?:ly)?|fast|immediate(?:ly)?|acute(?:ly)?)\b", re.I
)
_LONG = re.compile(
    r"\b(?:months?|years?|last(?:s|ing)?|long[- ]term|prolonged|sustained|durable|beyond|persist\w*|"
    r"maintenance|relapse)\b",
    re.I,
)
TIME_SCALES: dict[str, tuple[str, ...]] = {
    "short": ("rapid", "onset", "hours", "24 hours", "day 1", "within 24 hours", "acute", "early"),
    "long": (
        "sustained",
        "durable",
        "durability",
        "maintenance",
        "relapse",
        "long-term",
        "follow-up",
        "months",
        "persistent",
    ),
}


def claim_text(claim: Claim) -> str:
    """Everything an editor wrote about the claim that says what it is about, as one text."""
    parts = (
        claim.statement,
        claim.sentence,
        claim.population,
        claim.intervention,
        claim.comparator,
        claim.outcome,
        claim.time_frame,
    )
    return "\n".join(part for part in parts if part)


def time_scale_terms(text: str) -> tuple[str, ...]:
    """The TIME_SCALES words for the time scales `text` names (none when it names none)."""
    found: list[str] = []
    if _SHORT.search(text):
        found += TIME_SCALES["short"]
    if _LONG.search(text):
        found += TIME_SCALES["long"]
    return tuple(dict.fromkeys(found))


def automatic_terms(claim: Claim) -> tuple[str, ...]:
    """The phrases a claim with no term list searches for: its words, then its time scale's words."""
    text = claim_text(claim)
    words = tuple(dict.fromkeys(w for w in content_words(text) if len(w) > 1))
    return tuple(dict.fromkeys(words + time_scale_terms(text)))


def feedback_standing(
    session: Session,
    corpus: Corpus,
    first: np.ndarray,
    key: tuple[object, ...],
    labels: Mapping[int, bool] | None = None,
) -> np.ndarray | None:
    """Each study's standing in (0, 1] by similarity to the centroid of the first search's best
    PRF_DEPTH studies (TF-IDF rows), or None on a corpus too small to learn from. Kept with the corpus.

    With reviewers' decisions (`labels`), the studies judged relevant take the first places of the
    feedback set and those judged not relevant are left out of it: feedback from what is known, then
    from what is guessed."""
    if corpus.size < PRF_MIN_STUDIES or not np.any(first > 0):
        return None
    decided = dict(labels or {})
    relevant = corpus.positions(sorted(p for p, judged in decided.items() if judged))
    rejected = corpus.positions(sorted(p for p, judged in decided.items() if not judged))

    def compute() -> np.ndarray:
        features = corpus_features(session, corpus)
        # The best first, ties by PMID (corpus rows are in PMID order): the same studies every time.
        ranked = np.lexsort((np.arange(corpus.size), -first))
        ranked = ranked[(first[ranked] > 0) & ~np.isin(ranked, rejected) & ~np.isin(ranked, relevant)]
        top = np.concatenate([relevant, ranked])[: max(PRF_DEPTH, len(relevant))]
        chosen = np.zeros(corpus.size, dtype=bool)
        chosen[top] = True
        picks = chosen[features.rows]
        centroid = np.bincount(
            features.indices[picks], weights=features.data[picks], minlength=features.vocabulary_size
        ) / max(1, len(top))
        similarity = np.bincount(
            features.rows, weights=features.data * centroid[features.indices], minlength=corpus.size
        )
        standing = percentile(similarity)
        standing.setflags(write=False)
        return standing

    decisions = (tuple(corpus.pmids[relevant]), tuple(corpus.pmids[rejected]))
    return remember(session, ("feedback", key, decisions, corpus.signature), compute)


__all__ = ["PRF_DEPTH", "PRF_WEIGHT", "TIME_SCALES", "automatic_terms", "claim_text", "feedback_standing"]
