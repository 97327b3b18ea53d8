"""The editor's rating at sign-off, ClaimReview's reviewRating, and provisional verdicts (claim_standing)."""

from __future__ import annotations

import io
import json

import pytest
from sqlalchemy import select
from sqlmodel import Session

from db.errors import InvalidInputError
from db.exports.claimreview import claimreview_jsonld, write_claimreview
from db.models import AuditEvent, SignOff
from db.read.cards import claim_cards
from db.read.standing import ClaimStanding, claim_standing
from db.review.rating import departs_from_verdict, matching_ratings, parse_rating
from db.review.signoff import sign_off
from db.vocab import AuditAction, ClaimVerdict, Rating, SignOffDecision, StudyVerdict
from tests.review_builders import add_article, add_claim, document_of, team, vote

LONG_ENOUGH = "The trial measured hours, the claim says minutes."


def _supported(session: Session) -> tuple[dict, object]:
    """Claim 'fast-relief' supported by one RCT, two votes alike."""
    people = team(session)
    claim = add_claim(session)
    add_article(session, 1)
    vote(session, people["reviewer"], claim, 1)
    vote(session, people["reviewer2"], claim, 1)
    return people, claim


def _signoff_event(session: Session) -> AuditEvent:
    query = select(AuditEvent).where(AuditEvent.action == AuditAction.CLAIM_SIGNED_OFF)
    return session.scalars(query.order_by(AuditEvent.id.desc())).first()  # type: ignore[union-attr]


# --- the scale and the matches ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("verdict", "matching"),
    [
        (ClaimVerdict.SUPPORTED, {Rating.ACCURATE, Rating.MOSTLY_ACCURATE}),
        (ClaimVerdict.MIXED, {Rating.MIXED, Rating.MISLEADING}),
        (ClaimVerdict.UNSUPPORTED, {Rating.INACCURATE, Rating.MISLEADING}),
        (ClaimVerdict.INSUFFICIENT_EVIDENCE, {Rating.UNPROVEN, Rating.MISLEADING}),
    ],
)
def test_each_verdict_matches_its_ratings_and_departs_from_the_rest(
    verdict: ClaimVerdict, matching: set[Rating]
) -> None:
    assert set(matching_ratings(verdict)) == matching
    assert {r for r in Rating if not departs_from_verdict(r, verdict)} == matching


def test_ratings_score_six_to_one_and_parse_from_words() -> None:
    assert [r.score for r in Rating] == [6, 5, 4, 3, 2, 1]
    assert parse_rating("Mostly accurate") is parse_rating("mostly-accurate") is Rating.MOSTLY_ACCURATE
    with pytest.raises(InvalidInputError, match="needs a rating; use one of accurate, mostly-accurate, "):
        parse_rating(None)
    with pytest.raises(InvalidInputError, match=r"Unknown rating 'great'; use one of .*inaccurate\.$"):
        parse_rating("great")


# --- sign-off --------------------------------------------------------------------------------------


def test_signoff_stores_the_rating_and_audits_it_with_the_verdict(session: Session) -> None:
    people, claim = _supported(session)

    signoff = sign_off(session, people["editor"], claim, "ok-to-publish", "One good RCT.", "mostly-accurate")
    event = _signoff_event(session)

    assert session.get(SignOff, signoff.id).rating is Rating.MOSTLY_ACCURATE  # type: ignore[union-attr]
    assert event.after == {
        "decision": "ok_to_publish",
        "rating": "mostly_accurate",
        "verdict": "supported",
        "strength": signoff.strength,
        "departs_from_verdict": False,
    }


def test_a_rating_that_departs_from_the_verdict_needs_a_sentence_and_is_audited(session: Session) -> None:
    people, claim = _supported(session)

    with pytest.raises(InvalidInputError, match="Rating 'inaccurate' departs from the derived verdict"):
        sign_off(session, people["editor"], claim, "ok-to-publish", "Overstated.", Rating.INACCURATE)
    assert session.scalars(select(SignOff)).first() is None

    signoff = sign_off(session, people["editor"], claim, "ok-to-publish", LONG_ENOUGH, Rating.INACCURATE)
    event = _signoff_event(session)

    assert signoff.rating is Rating.INACCURATE
    assert event.after is not None and event.after["departs_from_verdict"] is True
    assert (event.after["verdict"], event.after["strength"]) == ("supported", signoff.strength)
    assert event.reason == LONG_ENOUGH


def test_signoff_without_a_rating_is_refused_naming_the_ratings(session: Session) -> None:
    people, claim = _supported(session)
    with pytest.raises(InvalidInputError, match="use one of accurate, mostly-accurate, mixed, unproven"):
        sign_off(session, people["editor"], claim, "ok-to-publish", "One good RCT.", None)


def test_ok_to_publish_on_insufficient_evidence_only_as_unproven_or_misleading(session: Session) -> None:
    people = team(session)
    claim = add_claim(session)  # no study judged: insufficient evidence

    with pytest.raises(
        InvalidInputError,
        match="Claim 'fast-relief' has insufficient evidence .* only rated unproven or misleading, not "
        "accurate; rate it so, or sign it off as revise-wording",
    ):
        sign_off(session, people["editor"], claim, "ok-to-publish", LONG_ENOUGH, "accurate")
    revise = sign_off(session, people["editor"], claim, "revise-wording", LONG_ENOUGH, "accurate")
    published = sign_off(session, people["editor"], claim, "ok-to-publish", "Nothing tested it.", "unproven")

    assert revise.verdict is ClaimVerdict.INSUFFICIENT_EVIDENCE
    assert published.rating is Rating.UNPROVEN


# --- ClaimReview -----------------------------------------------------------------------------------


def _claimreview(session: Session, **options: object) -> tuple[dict, object]:
    export = claimreview_jsonld(session, "Health Desk", "https://desk.example.org", **options)  # type: ignore[arg-type]
    out = io.StringIO()
    write_claimreview(export, out)
    return json.loads(out.getvalue()), export


def test_claimreview_rates_with_the_editors_rating_and_names_the_article(session: Session) -> None:
    people, claim = _supported(session)
    document = document_of(session, claim)
    document.url, document.author = "https://example.org/post", "A. Writer"
    sign_off(session, people["editor"], claim, "ok-to-publish", "One good RCT.", "mostly-accurate")

    document_ld, _ = _claimreview(session, author_type="Person")
    [review] = document_ld["@graph"]

    assert review["reviewRating"] == {
        "@type": "Rating",
        "ratingValue": 5,
        "bestRating": 6,
        "worstRating": 1,
        "alternateName": "Mostly accurate",
    }
    work = {
        "@type": "CreativeWork",
        "name": "Test post",
        "url": "https://example.org/post",
        "author": {"@type": "Person", "name": "A. Writer"},
    }
    assert review["itemReviewed"]["appearance"] == review["itemReviewed"]["firstAppearance"] == work
    assert review["itemReviewed"]["author"] == {"@type": "Person", "name": "A. Writer"}
    assert review["author"] == {"@type": "Person", "name": "Health Desk", "url": "https://desk.example.org"}
    assert "supported" not in json.dumps(review["reviewRating"]).lower()  # the derived verdict stays ours


def test_claimreview_holds_only_current_rated_ok_to_publish_signoffs(session: Session) -> None:
    people, claim = _supported(session)
    reworded = add_claim(
        session, document_of(session, claim), key="reworded", sentence="Ketamine works fast."
    )
    unrated = add_claim(
        session, document_of(session, claim), key="unrated", sentence="Some patients stay well for months."
    )
    changed = add_claim(
        session, document_of(session, claim), key="changed", sentence="Ketamine is sold in 3 forms."
    )
    for other in (reworded, unrated, changed):
        vote(session, people["reviewer"], other, 1)
    sign_off(session, people["editor"], reworded, "revise-wording", "Too strong.", "accurate")
    old = sign_off(session, people["editor"], unrated, "ok-to-publish", "Made before ratings.", "accurate")
    old.rating = None  # as migration 0007 left the sign-offs made before it
    session.add(old)
    sign_off(session, people["editor"], changed, "ok-to-publish", "One good RCT.", "accurate")
    add_article(session, 2)
    vote(session, people["reviewer"], changed, 2, StudyVerdict.UNSUPPORTED)  # provisional again

    document_ld, export = _claimreview(session)

    assert document_ld["@graph"] == []
    assert export.empty and export.skipped == ["changed"] and export.unrated == ["unrated"]
    assert export.why_empty().startswith("No claim to publish: ClaimReview holds only claims")
    assert "the evidence changed since sign-off of changed" in export.why_empty()

    sign_off(session, people["editor"], claim, "ok-to-publish", "One good RCT.", "accurate")
    document_ld, export = _claimreview(session)
    assert [r["identifier"] for r in document_ld["@graph"]] == ["fast-relief"]


def test_claimreview_stays_safe_to_embed_in_a_script_element(session: Session) -> None:
    people, claim = _supported(session)
    sign_off(
        session, people["editor"], claim, "ok-to-publish", "</script><script>alert(1)</script>", "accurate"
    )
    out = io.StringIO()
    write_claimreview(claimreview_jsonld(session, "Desk"), out)
    assert "</" not in out.getvalue() and "<script" not in out.getvalue()
    assert json.loads(out.getvalue())["@graph"][0]["reviewBody"].startswith("</script>")


# --- provisional -----------------------------------------------------------------------------------


def test_standing_is_provisional_until_a_current_signoff_with_the_open_pairs(session: Session) -> None:
    people = team(session)
    claim = add_claim(session)
    for pmid in (1, 2, 3, 4):
        add_article(session, pmid)
    vote(session, people["reviewer"], claim, 1, StudyVerdict.SUPPORTED)
    vote(session, people["reviewer2"], claim, 1, StudyVerdict.UNSUPPORTED)  # an open conflict
    vote(session, people["reviewer"], claim, 2)  # one vote only
    vote(session, people["reviewer"], claim, 3)
    vote(session, people["reviewer2"], claim, 3)  # agreed by two

    assert claim_standing(session, claim) == (True, 1, 1)
    [card] = claim_cards(session, people["editor"])
    assert card.standing == ClaimStanding(True, 1, 1)
    assert (card.standing.label, card.standing.details) == (
        "Provisional",
        "1 open conflict, 1 awaiting a second vote",
    )

    sign_off(session, people["editor"], claim, SignOffDecision.REVISE_WORDING, LONG_ENOUGH, "misleading")
    assert claim_standing(session, claim) == (False, 1, 1)
    assert claim_cards(session, people["editor"])[0].standing.provisional is False

    vote(session, people["reviewer2"], claim, 2)  # a second vote alike: the evidence is the same
    assert claim_standing(session, claim) == (False, 1, 0)
    vote(session, people["reviewer"], claim, 4)  # a newly judged study: provisional again
    assert claim_standing(session, claim) == (True, 1, 1)
    assert claim_cards(session, people["editor"])[0].standing == ClaimStanding(True, 1, 1)
