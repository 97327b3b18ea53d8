"""A study's evidence for one claim, as a reviewer records it on an assessment: GRADE's raw material.

One place checks every field (the review page, the CLI import and the API all call `checked_evidence`)
and turns a follow-up as written ("24 hours", "7 days", "12 weeks") into days.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from db.errors import InvalidInputError
from db.vocab import Directness, Intervention, Population, RiskOfBias

# Field name -> its vocabulary, for the fields that take one.
VOCABULARIES: dict[str, type[StrEnum]] = {
    "population": Population,
    "intervention": Intervention,
    "directness": Directness,
    "risk_of_bias": RiskOfBias,
}
EVIDENCE_FIELDS = (
    "participants",
    "follow_up",
    "effect",
    "population",
    "intervention",
    "directness",
    "indirect_reason",
    "risk_of_bias",
)
MAX_PARTICIPANTS = 10_000_000  # more than any pooled analysis; a typo beyond it is caught
MAX_TEXT = 500  # effect, follow-up and reason are short, as stated

_DAYS_PER_UNIT = {
    "minute": 1 / 1440,
    "min": 1 / 1440,
    "hour": 1 / 24,
    "hr": 1 / 24,
    "h": 1 / 24,
    "day": 1.0,
    "d": 1.0,
    "week": 7.0,
    "wk": 7.0,
    "month": 30.44,
    "mo": 30.44,
    "year": 365.25,
    "yr": 365.25,
}
_WORD_NUMBERS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "twelve": 12,
    "a": 1,
    "an": 1,
}
_DURATION = re.compile(
    r"(?P<n>\d+(?:\.\d+)?|" + "|".join(sorted(_WORD_NUMBERS, key=len, reverse=True)) + r")"
    r"(?:\s*(?:-|to|–)\s*\d+(?:\.\d+)?)?"  # "4-6 weeks": the lower figure is the one read
    r"[\s-]*(?P<unit>minutes?|mins?|hours?|hrs?|h|days?|d|weeks?|wks?|months?|mo|years?|yrs?)\b",
    re.IGNORECASE,
)


_TIME_POINT = re.compile(r"\b(?P<unit>day|week|month|year)\s+(?P<n>\d+(?:\.\d+)?)\b", re.IGNORECASE)


def follow_up_days(text: str) -> float | None:
    """The first duration in `text`, in days: "24 hours" -> 1.0, "12 weeks" -> 84.0, "day 7" -> 7.0;
    None if it names none."""
    found = [m for m in (_DURATION.search(text or ""), _TIME_POINT.search(text or "")) if m is not None]
    if not found:
        return None
    match = min(found, key=lambda m: m.start())
    number = match.group("n").lower()
    amount = float(_WORD_NUMBERS.get(number, 0) or number)
    unit = match.group("unit").lower().rstrip("s")  # "hours" -> "hour", "hrs" -> "hr"
    return round(amount * _DAYS_PER_UNIT[unit], 4)


@dataclass(frozen=True)
class Evidence:
    """The evidence fields of one assessment (all optional: None is "not stated")."""

    participants: int | None = None
    follow_up: str | None = None
    follow_up_days: float | None = None
    effect: str | None = None
    population: Population | None = None
    intervention: Intervention | None = None
    directness: Directness | None = None
    indirect_reason: str | None = None
    risk_of_bias: RiskOfBias | None = None

    def as_values(self) -> dict[str, Any]:
        """Column name -> value, enums as their stored values: for the table and the audit trail."""
        return {
            name: value.value if isinstance(value, StrEnum) else value for name, value in asdict(self).items()
        }

    @property
    def is_blank(self) -> bool:
        return all(value is None for value in asdict(self).values())


def checked_evidence(values: Mapping[str, Any], *, where: str = "") -> Evidence:
    """The evidence fields of `values` (any of EVIDENCE_FIELDS; blank is "not stated"), checked.

    Raises InvalidInputError naming the field, the value and what is allowed (`where`, e.g.
    "line 7: ", leads the message). `follow_up_days` is computed from `follow_up` unless given.
    """
    unknown = set(values) - set(EVIDENCE_FIELDS) - {"follow_up_days"}
    if unknown:
        raise InvalidInputError(
            f"{where}unknown evidence fields {sorted(unknown)}; use {', '.join(EVIDENCE_FIELDS)}."
        )
    fields: dict[str, Any] = {}
    for name in EVIDENCE_FIELDS:
        value = values.get(name)
        if isinstance(value, str):
            value = value.strip()
        if value is None or value == "":
            continue
        if name in VOCABULARIES:
            fields[name] = _vocabulary_value(name, value, where)
        elif name == "participants":
            fields[name] = _participants(value, where)
        else:
            text = str(value)
            if len(text) > MAX_TEXT:
                raise InvalidInputError(
                    f"{where}{name} is {len(text)} characters; keep it under {MAX_TEXT} (as the abstract states it)."
                )
            fields[name] = text
    if "follow_up" in fields:
        days = values.get("follow_up_days")
        fields["follow_up_days"] = (
            float(days) if days not in (None, "") else follow_up_days(fields["follow_up"])
        )
        if fields["follow_up_days"] is None:
            raise InvalidInputError(
                f"{where}follow_up {fields['follow_up']!r} names no duration; write it as e.g. "
                "'24 hours', '7 days' or '12 weeks'."
            )
    if fields.get("indirect_reason") and fields.get("directness") is not Directness.INDIRECT:
        fields.setdefault("directness", Directness.INDIRECT)
    if fields.get("directness") is Directness.INDIRECT and not fields.get("indirect_reason"):
        raise InvalidInputError(
            f"{where}an indirect study needs indirect_reason: say how it differs from the claim "
            "(population, intervention, outcome or time frame)."
        )
    return Evidence(**fields)


def _vocabulary_value(name: str, value: Any, where: str) -> StrEnum:
    vocabulary = VOCABULARIES[name]
    text = str(value).strip().lower().replace(" ", "_").replace("-", "_")
    try:
        return vocabulary(text)
    except ValueError:
        allowed = ", ".join(member.value for member in vocabulary)
        raise InvalidInputError(f"{where}{name} {value!r} is not one of {allowed}.") from None


def _participants(value: Any, where: str) -> int:
    text = str(value).replace(",", "").strip()
    if not text.isdigit() or int(text) > MAX_PARTICIPANTS:
        raise InvalidInputError(
            f"{where}participants {value!r} is not a whole number of people analysed (0 to {MAX_PARTICIPANTS:,}); "
            "use 0 for a review that pools none."
        )
    return int(text)
