"""Per-claim search terms (synonyms and outcome terms) that expand a claim's query; editors edit them."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources

from sqlmodel import Session

from db.clock import utcnow
from db.errors import InvalidInputError
from db.models import Claim, ClaimSearchTerms, User
from db.ranking.query import automatic_terms
from db.review.audit import record_event
from db.review.claims import get_claim
from db.review.roles import Action, require
from db.text import content_words
from db.vocab import AuditAction

MAX_TERMS = 200
MAX_TERM_LENGTH = 100


@dataclass(frozen=True)
class ClaimTerms:
    """A claim's expansion terms and where they come from ("editor", "default" or "none")."""

    synonyms: tuple[str, ...]
    outcomes: tuple[str, ...]
    source: str

    @property
    def all(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.synonyms + self.outcomes))


@functools.cache
def default_terms() -> dict[str, ClaimTerms]:
    """The shipped defaults of db/seed/expansions.json, by claim key."""
    raw = json.loads(resources.files("db").joinpath("seed/expansions.json").read_text(encoding="utf-8"))
    return {
        key: ClaimTerms(tuple(value.get("synonyms", ())), tuple(value.get("outcomes", ())), "default")
        for key, value in raw.items()
        if not key.startswith("_")
    }


def claim_terms(session: Session, claim: Claim) -> ClaimTerms:
    """The editor's terms for the claim, else the shipped defaults for its key, else none."""
    stored = session.get(ClaimSearchTerms, claim.id)
    if stored is not None:
        return ClaimTerms(tuple(stored.synonyms), tuple(stored.outcomes), "editor")
    return default_terms().get(claim.key, ClaimTerms((), (), "none"))


def statement_words(claim: Claim) -> tuple[str, ...]:
    """The content words of the claim's statement: the plain (unexpanded) query."""
    return tuple(dict.fromkeys(w for w in content_words(claim.statement) if len(w) > 1))


def has_term_list(session: Session, claim: Claim) -> bool:
    """True when the claim has terms written for it (the editor's, or shipped for its key)."""
    return claim_terms(session, claim).source != "none"


def query_terms(session: Session, claim: Claim, *, expand: bool = True) -> tuple[str, ...]:
    """Every phrase the claim's lexical query asks for: its statement's words, plus, if `expand`, its
    term list, or for a claim without one the search built from the claim (db.ranking.query)."""
    words = statement_words(claim)
    if not expand:
        return words
    terms = claim_terms(session, claim)
    if terms.source == "none":
        return automatic_terms(claim)
    return tuple(dict.fromkeys(words + terms.all))


def clean_terms(terms: list[str] | tuple[str, ...], label: str) -> list[str]:
    """Terms trimmed and de-duplicated (case-insensitively, first spelling kept); raises on bad input."""
    cleaned: dict[str, str] = {}
    for term in terms:
        if not isinstance(term, str):
            raise InvalidInputError(
                f"{label} must be text, got {term!r}; give each term as a word or phrase."
            )
        text = " ".join(term.split())
        if not text:
            continue
        if len(text) > MAX_TERM_LENGTH:
            raise InvalidInputError(
                f"The term {text[:40]!r}... is {len(text)} characters long; keep each term under "
                f"{MAX_TERM_LENGTH} (a word or a short phrase)."
            )
        cleaned.setdefault(text.lower(), text)
    if len(cleaned) > MAX_TERMS:
        raise InvalidInputError(
            f"{len(cleaned)} {label} is too many; keep at most {MAX_TERMS} per claim, the ones that find studies."
        )
    return list(cleaned.values())


def set_claim_terms(
    session: Session,
    actor: User,
    claim_key: str,
    *,
    synonyms: list[str] | tuple[str, ...],
    outcomes: list[str] | tuple[str, ...],
    reason: str | None = None,
) -> ClaimTerms:
    """Replace a claim's synonyms and outcome terms (an editor's action, kept in the audit trail).

    Does not commit: the caller commits the change as one unit of work.
    """
    require(actor, Action.MANAGE_CLAIMS)
    claim = get_claim(session, claim_key)
    new_synonyms = clean_terms(synonyms, "synonyms")
    new_outcomes = clean_terms(outcomes, "outcome terms")
    before = claim_terms(session, claim)
    if (
        list(before.synonyms) == new_synonyms
        and list(before.outcomes) == new_outcomes
        and before.source == "editor"
    ):
        return before
    stored = session.get(ClaimSearchTerms, claim.id)
    if stored is None:
        assert claim.id is not None
        stored = ClaimSearchTerms(claim_id=claim.id)
    stored.synonyms = new_synonyms
    stored.outcomes = new_outcomes
    stored.updated_by_id = actor.id
    stored.updated_at = utcnow()
    session.add(stored)
    session.flush()
    record_event(
        session,
        actor,
        AuditAction.CLAIM_EDITED,
        claim,
        before={
            "search_terms": {
                "synonyms": list(before.synonyms),
                "outcomes": list(before.outcomes),
                "source": before.source,
            }
        },
        after={"search_terms": {"synonyms": new_synonyms, "outcomes": new_outcomes, "source": "editor"}},
        reason=reason,
    )
    return ClaimTerms(tuple(new_synonyms), tuple(new_outcomes), "editor")


def reset_claim_terms(session: Session, actor: User, claim_key: str, reason: str | None = None) -> ClaimTerms:
    """Drop the editor's terms for a claim so the shipped defaults apply again (audited)."""
    require(actor, Action.MANAGE_CLAIMS)
    claim = get_claim(session, claim_key)
    stored = session.get(ClaimSearchTerms, claim.id)
    if stored is None:
        return claim_terms(session, claim)
    before = {"synonyms": list(stored.synonyms), "outcomes": list(stored.outcomes), "source": "editor"}
    session.delete(stored)
    session.flush()
    after = claim_terms(session, claim)
    record_event(
        session,
        actor,
        AuditAction.CLAIM_EDITED,
        claim,
        before={"search_terms": before},
        after={
            "search_terms": {
                "synonyms": list(after.synonyms),
                "outcomes": list(after.outcomes),
                "source": after.source,
            }
        },
        reason=reason,
    )
    return after
