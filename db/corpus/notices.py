"""Publication notices: retractions, expressions of concern, errata and comments are not studies.

A notice is recognised by its PubMed publication type, else by its title ("Retraction notice to: ...",
"Erratum", "Correction to: ..."), and linked to the study it concerns where PubMed's
CommentsCorrections say so (RetractionOf, ExpressionOfConcernFor, ErratumFor, CommentOn).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

NOTICE_TYPES: dict[str, str] = {
    "retraction of publication": "retraction notice",
    "expression of concern": "expression of concern",
    "published erratum": "erratum",
    "comment": "comment",
}
# The links a notice carries to the study it concerns, strongest first.
NOTICE_OF_REF_TYPES = ("RetractionOf", "ExpressionOfConcernFor", "ErratumFor", "CommentOn")
_NOTICE_TITLE = re.compile(
    r"^\W*(?:"
    r"(?P<retraction>(?:notice of )?retraction(?: note| notice| statement)?(?:\s+(?:to|of|for)\b|\s*[:.]|\s*$))"
    r"|(?P<concern>(?:editorial )?expression of concern\b)"
    r"|(?P<erratum>(?:erratum|errata|corrigendum|corrigenda)\b|correction(?:\s+(?:to|notice)\b|\s*[:.]|\s*$))"
    r"|(?P<comment>comment(?:ary)? on\b)"
    r")",
    re.IGNORECASE,
)
_TITLE_KINDS = {
    "retraction": "retraction notice",
    "concern": "expression of concern",
    "erratum": "erratum",
    "comment": "comment",
}


def notice_kind(publication_types: Iterable[str], title: str = "") -> str | None:
    """What kind of notice the record is ("retraction notice", "erratum", ...), None for a study."""
    for publication_type in publication_types:
        kind = NOTICE_TYPES.get(publication_type.lower())
        if kind is not None:
            return kind
    match = _NOTICE_TITLE.match(title)
    if match is not None and match.lastgroup is not None:
        return _TITLE_KINDS[match.lastgroup]
    return None


def notice_target(notices: Iterable[Mapping[str, Any] | Any]) -> int | None:
    """The PMID of the study a notice concerns, from its CommentsCorrections links (None when unsaid)."""
    targets: dict[str, int] = {}
    for link in notices:
        ref_type, pmid = (link.get("ref_type"), link.get("pmid")) if isinstance(link, Mapping) else link[:2]
        if ref_type in NOTICE_OF_REF_TYPES and pmid and ref_type not in targets:
            targets[ref_type] = int(pmid)
    return next((targets[t] for t in NOTICE_OF_REF_TYPES if t in targets), None)
