"""Claim verdicts as schema.org ClaimReview JSON-LD, for fact-check aggregators."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, TextIO

from sqlmodel import Session

from db.models import SourceDocument
from db.review.claims import list_claims
from db.review.signoff import signoff_state
from db.vocab import ClaimVerdict

# Our verdicts on a 1..4 scale, best first; alternateName carries the words, as fact-check readers
# show them. "Insufficient evidence" sits above "unsupported": no study contradicts the claim.
RATINGS: dict[ClaimVerdict, tuple[int, str]] = {
    ClaimVerdict.SUPPORTED: (4, "Supported by the evidence"),
    ClaimVerdict.MIXED: (3, "Mixed evidence"),
    ClaimVerdict.INSUFFICIENT_EVIDENCE: (2, "Insufficient evidence"),
    ClaimVerdict.UNSUPPORTED: (1, "Not supported by the evidence"),
}


@dataclass(frozen=True)
class ClaimReviewExport:
    document: dict[str, Any]  # the JSON-LD document
    skipped: list[str]  # keys of signed-off claims left out because their evidence changed since


def claimreview_jsonld(
    session: Session, publisher: str, publisher_url: str | None = None
) -> ClaimReviewExport:
    """schema.org ClaimReview for every signed-off claim whose sign-off still matches the evidence.

    The rating is the verdict the editor signed off (kept with the sign-off), not today's.
    """
    reviews, skipped = [], []
    author: dict[str, Any] = {"@type": "Organization", "name": publisher}
    if publisher_url:
        author["url"] = publisher_url
    for claim in list_claims(session, include_retired=True):
        state = signoff_state(session, claim)
        if state.signoff is None:
            continue
        if state.evidence_changed:
            skipped.append(claim.key)
            continue
        document = session.get(SourceDocument, claim.document_id)
        assert document is not None
        value, name = RATINGS[ClaimVerdict(state.signoff.verdict)]
        appearance: dict[str, Any] = {"@type": "CreativeWork", "name": document.title}
        if document.url:
            appearance["url"] = document.url
        if document.author or document.outlet:
            appearance["author"] = {
                "@type": "Person" if document.author else "Organization",
                "name": document.author or document.outlet,
            }
        review: dict[str, Any] = {
            "@type": "ClaimReview",
            "claimReviewed": claim.statement,
            "itemReviewed": {"@type": "Claim", "appearance": appearance, "text": claim.sentence},
            "reviewRating": {
                "@type": "Rating",
                "ratingValue": value,
                "bestRating": 4,
                "worstRating": 1,
                "alternateName": name,
            },
            "author": author,
            "datePublished": state.signoff.signed_at.date().isoformat(),
            "reviewBody": state.signoff.rationale,
            "identifier": claim.key,
        }
        if document.url:
            review["url"] = f"{document.url}#claim-{claim.key}"
        reviews.append(review)
    return ClaimReviewExport({"@context": "https://schema.org", "@graph": reviews}, skipped)


# Characters that would end or open markup when the JSON-LD sits in a page's <script> element, and the
# line separators JavaScript once rejected: written as \u escapes, which JSON reads back the same.
_SCRIPT_SAFE = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def write_claimreview(export: ClaimReviewExport, out: TextIO) -> None:
    """The JSON-LD, safe to paste into <script type="application/ld+json"> as it is."""
    out.write(json.dumps(export.document, ensure_ascii=False, indent=2).translate(_SCRIPT_SAFE))
    out.write("\n")
