"""The evidence fields the Review page offers for a study: the prefill's suggestions, each checked as a
save would check it, with the abstract's sentence it came from."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from db.errors import InvalidInputError
from db.models import Claim
from db.review.evidence_fields import EVIDENCE_FIELDS, checked_evidence
from db.review.evidence_prefill import Suggestion, suggest_evidence


def evidence_suggestions(title: str, abstract: str, claim: Claim | None) -> dict[str, Suggestion]:
    """Evidence field -> its suggestion, the value as the field stores it (a vocabulary's value, a
    whole number of participants, text), for the fields the abstract states."""
    return usable_suggestions(suggest_evidence(title, abstract, claim))


def usable_suggestions(suggestions: Mapping[str, Suggestion]) -> dict[str, Suggestion]:
    """The suggestions a save accepts. A reviewer who leaves them as they are saves them with the
    verdict, so one the checks refuse (an indirect study without its reason, a misread number) is
    dropped here rather than blocking the decision."""
    offered = {name: s for name, s in suggestions.items() if name in EVIDENCE_FIELDS}
    try:
        return _as_stored(offered, checked_evidence({n: s.value for n, s in offered.items()}).as_values())
    except InvalidInputError:
        kept: dict[str, Suggestion] = {}
        for name, suggestion in offered.items():
            try:
                kept |= _as_stored({name: suggestion}, checked_evidence({name: suggestion.value}).as_values())
            except InvalidInputError:
                continue
        return kept


def _as_stored(offered: Mapping[str, Suggestion], values: Mapping[str, Any]) -> dict[str, Suggestion]:
    return {
        name: Suggestion(values[name], suggestion.sentence)
        for name, suggestion in offered.items()
        if values.get(name) is not None
    }
