"""The editor's rating scale, and which ratings match which derived verdict: the one place for both.

The derived verdict (db.review.verdicts) says what the studies show; the rating is what the editor
publishes about the claim as worded (ClaimReview's reviewRating). A rating outside its verdict's
matches is allowed, as a departure the editor explains (db.review.signoff.sign_off).
"""

from __future__ import annotations

from db.errors import InvalidInputError
from db.vocab import ClaimVerdict, Rating

# ClaimReview's scale: Rating.score, 6 (accurate) down to 1 (inaccurate).
BEST_SCORE = max(rating.score for rating in Rating)
WORST_SCORE = min(rating.score for rating in Rating)

# "Misleading" matches every verdict but "supported": a grain of evidence, stretched beyond it.
MATCHING_RATINGS: dict[ClaimVerdict, tuple[Rating, ...]] = {
    ClaimVerdict.SUPPORTED: (Rating.ACCURATE, Rating.MOSTLY_ACCURATE),
    ClaimVerdict.MIXED: (Rating.MIXED, Rating.MISLEADING),
    ClaimVerdict.UNSUPPORTED: (Rating.INACCURATE, Rating.MISLEADING),
    ClaimVerdict.INSUFFICIENT_EVIDENCE: (Rating.UNPROVEN, Rating.MISLEADING),
}

# A departure's rationale must be at least a short sentence, not "ok" or "see above".
DEPARTURE_RATIONALE_MIN = 20


def matching_ratings(verdict: ClaimVerdict | str) -> tuple[Rating, ...]:
    """The ratings that agree with a derived verdict, the first the plainest."""
    return MATCHING_RATINGS[ClaimVerdict(verdict)]


def departs_from_verdict(rating: Rating | str, verdict: ClaimVerdict | str) -> bool:
    """True when the editor's rating is not one its derived verdict matches."""
    return Rating(rating) not in matching_ratings(verdict)


def publishable_ratings(verdict: ClaimVerdict | str) -> tuple[Rating, ...]:
    """The ratings an "OK to publish" sign-off may carry: any, except on insufficient evidence,
    where only the ratings that say so (unproven, misleading) may go out."""
    if ClaimVerdict(verdict) is ClaimVerdict.INSUFFICIENT_EVIDENCE:
        return matching_ratings(verdict)
    return tuple(Rating)


def rating_names() -> str:
    """The ratings as a command line or a message writes them: "accurate, mostly-accurate, ..."."""
    return ", ".join(rating.value.replace("_", "-") for rating in Rating)


def parse_rating(value: Rating | str | None) -> Rating:
    """A rating from its value or label ("mostly-accurate", "Mostly accurate"); a missing or unknown
    one raises InvalidInputError naming the allowed values."""
    if isinstance(value, Rating):
        return value
    if value is None or not value.strip():
        raise InvalidInputError(f"A sign-off needs a rating; use one of {rating_names()}.")
    try:
        return Rating(value.strip().lower().replace("-", "_").replace(" ", "_"))
    except ValueError:
        raise InvalidInputError(f"Unknown rating {value!r}; use one of {rating_names()}.") from None


def rating_label(rating: Rating | str) -> str:
    """The rating as a reader sees it: "Mostly accurate"."""
    return Rating(rating).label.capitalize()
