"""Claim verdicts as schema.org ClaimReview JSON-LD, for fact-check aggregators."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, TextIO

from sqlmodel import Session

from db.models import SourceDocument
from db.review.claims import list_claims
from db.review.rating import BEST_SCORE, WORST_SCORE, rating_label
from db.review.signoff import signoff_state
from db.vocab import Rating, SignOffDecision

AUTHOR_TYPES = ("Organization", "Person")


@dataclass(frozen=True)
class ClaimReviewExport:
    document: dict[str, Any]  # the JSON-LD document
    skipped: list[str]  # keys of OK-to-publish claims left out because their evidence changed since
    unrated: list[str] = field(default_factory=list)  # OK to publish, but signed off before ratings

    @property
    def empty(self) -> bool:
        return not self.document.get("@graph")

    def why_empty(self) -> str:
        """Why nothing was published, in words (for a file that holds no review)."""
        reasons = [
            "ClaimReview holds only claims whose latest sign-off is OK to publish, with a rating, "
            "on the evidence as it is today"
        ]
        if self.skipped:
            reasons.append(f"the evidence changed since sign-off of {', '.join(self.skipped)}")
        if self.unrated:
            reasons.append(f"{', '.join(self.unrated)} were signed off before ratings")
        return "No claim to publish: " + "; ".join(reasons) + "."


def claimreview_jsonld(
    session: Session,
    publisher: str,
    publisher_url: str | None = None,
    *,
    author_type: str = "Organization",
) -> ClaimReviewExport:
    """schema.org ClaimReview for every claim whose latest sign-off is current and OK to publish.

    Provisional verdicts never appear: a claim without a sign-off, with a decision other than OK to
    publish, or whose evidence changed since is left out (the last listed in `skipped`). reviewRating
    is the editor's rating (db.vocab.Rating, 6 best to 1 worst); the derived verdict and its certainty
    stay in our own exports (`export claims`). Sign-offs made before ratings are left out (`unrated`)
    rather than published on a scale the editor never chose: sign them off again to publish them.
    """
    if author_type not in AUTHOR_TYPES:
        raise ValueError(f"Unknown author type {author_type!r}; use Organization or Person.")
    reviews, skipped, unrated = [], [], []
    author: dict[str, Any] = {"@type": author_type, "name": publisher}
    if publisher_url:
        author["url"] = publisher_url
    for claim in list_claims(session, include_retired=True):
        state = signoff_state(session, claim)
        signoff = state.signoff
        if signoff is None or SignOffDecision(signoff.decision) is not SignOffDecision.OK_TO_PUBLISH:
            continue
        if state.provisional:
            skipped.append(claim.key)
            continue
        if signoff.rating is None:
            unrated.append(claim.key)
            continue
        rating = Rating(signoff.rating)
        document = session.get(SourceDocument, claim.document_id)
        assert document is not None
        appearance: dict[str, Any] = {"@type": "CreativeWork", "name": document.title}
        if document.url:
            appearance["url"] = document.url
        item: dict[str, Any] = {"@type": "Claim", "text": claim.sentence}
        if document.author or document.outlet:
            # Who made the claim: the article's author, or its outlet when it names none.
            item["author"] = appearance["author"] = {
                "@type": "Person" if document.author else "Organization",
                "name": document.author or document.outlet,
            }
        # The article under review is where the claim appears; we know of no earlier appearance.
        # (Neither the claim nor the article stores when it was published: no datePublished.)
        item["appearance"] = appearance
        item["firstAppearance"] = appearance
        review: dict[str, Any] = {
            "@type": "ClaimReview",
            "claimReviewed": claim.statement,
            "itemReviewed": item,
            "reviewRating": {
                "@type": "Rating",
                "ratingValue": rating.score,
                "bestRating": BEST_SCORE,
                "worstRating": WORST_SCORE,
                "alternateName": rating_label(rating),
            },
            "author": author,
            "datePublished": signoff.signed_at.date().isoformat(),
            "reviewBody": signoff.rationale,
            "identifier": claim.key,
        }
        if document.url:
            review["url"] = f"{document.url}#claim-{claim.key}"
        reviews.append(review)
    return ClaimReviewExport({"@context": "https://schema.org", "@graph": reviews}, skipped, unrated)


# Characters that would end or open markup when the JSON-LD sits in a page's <script> element, and the
# line separators JavaScript once rejected: written as \u escapes, which JSON reads back the same.
_SCRIPT_SAFE = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def write_claimreview(export: ClaimReviewExport, out: TextIO) -> None:
    """The JSON-LD, safe to paste into <script type="application/ld+json"> as it is."""
    out.write(json.dumps(export.document, ensure_ascii=False, indent=2).translate(_SCRIPT_SAFE))
    out.write("\n")
