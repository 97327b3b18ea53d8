"""Suggestions for an assessment's evidence fields, read from the study's abstract (work in progress:
the extractor lands with issue 13's prefill; until then nothing is suggested)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from db.models import Claim


@dataclass(frozen=True)
class Suggestion:
    """A suggested value for one evidence field and the abstract's sentence it came from."""

    value: Any
    sentence: str


def suggest_evidence(title: str, abstract: str, claim: Claim | None = None) -> dict[str, Suggestion]:
    """Evidence field name (db.review.evidence_fields.EVIDENCE_FIELDS) -> a suggestion, for the
    fields the abstract states; `claim` (its time frame, populations, interventions) decides
    directness."""
    return {}
