"""Source documents and claims: the seed, sentence spans, edit / merge / retire with history, proposals."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from db.engine import open_session
from db.errors import ConflictError, InvalidInputError, PermissionDenied
from db.models import Assessment, Claim, SourceDocument
from db.review.audit import claim_history
from db.review.claims import add_claim, edit_claim, get_claim, list_claims, merge_claims, retire_claim
from db.review.sources import (
    accept_proposal,
    add_document,
    ensure_seed_content,
    propose_claims,
    reject_proposal,
    seed_content,
    split_sentences,
    store_proposals,
)
from db.vocab import AuditAction, ClaimStatus, ProposalStatus, StudyVerdict
from tests.conftest import PROJECT_ROOT
from tests.review_builders import DOCUMENT_TEXT, add_article, team, vote
from tests.review_builders import add_document as build_document

SEED_KEYS = [
    "anesthetic-history",
    "glutamate-mechanism",
    "rapid-onset",
    "treatment-resistant",
    "suicidal-ideation",
    "suicide-prevention",
    "long-lasting",
    "personalized-dosing",
    "undeniable-benefits",
]


def test_seed_article_and_its_nine_claims_load_once(session: Session) -> None:
    document = ensure_seed_content(session)
    ensure_seed_content(session)
    claims = list_claims(session)

    assert session.scalar(select(func.count()).select_from(SourceDocument)) == 1
    assert document.title == "The Benefits of Ketamine Therapy for Depression"
    assert document.blind_mode
    assert [c.key for c in claims] == SEED_KEYS
    for claim in claims:
        assert document.text[claim.span_start : claim.span_end] == claim.sentence
    assert get_claim(session, "rapid-onset").time_frame == "hours to days"


def test_seed_keeps_editors_changes_on_restart(session: Session) -> None:
    people = team(session)
    ensure_seed_content(session)
    retire_claim(session, people["editor"], "undeniable-benefits", "Opinion, not checkable.")

    ensure_seed_content(session)

    assert get_claim(session, "undeniable-benefits").status is ClaimStatus.RETIRED


def test_shipped_seed_matches_the_shared_seed() -> None:
    shared = PROJECT_ROOT.parent / "shared" / "seed" / "ketamine-therapy-blog-post.txt"
    if not shared.exists():
        pytest.skip(f"shared seed not present: {shared}")
    assert seed_content()["document"]["text"] == shared.read_text(encoding="utf-8")


def test_claim_sentence_must_be_in_the_document(session: Session) -> None:
    people = team(session)
    document = build_document(session)
    start = DOCUMENT_TEXT.index("Some patients")

    with pytest.raises(InvalidInputError, match="does not occur in document 'test-post'"):
        add_claim(
            session, people["editor"], document, key="x", statement="X.", sentence="Ketamine cures all."
        )
    with pytest.raises(
        InvalidInputError,
        match=r"reads 'Some",
    ):
        add_claim(
            session,
            people["editor"],
            document,
            key="x",
            statement="X.",
            sentence="Ketamine works fast.",
            span=(start, start + 20),
        )
    with pytest.raises(InvalidInputError, match="lies outside document"):
        add_claim(
            session, people["editor"], document, key="x", statement="X.", sentence="a", span=(0, 10_000)
        )
    claim = add_claim(
        session,
        people["editor"],
        document,
        key="stays-well",
        statement="Patients stay well for months.",
        sentence="Some patients stay well for months.",
        time_frame="weeks to months",
    )
    assert (claim.span_start, claim.span_end) == (start, start + len("Some patients stay well for months."))


def test_a_repeated_sentence_needs_its_span(session: Session) -> None:
    people = team(session)
    document = build_document(session, text="Ketamine helps. Really. Ketamine helps.")

    with pytest.raises(InvalidInputError, match="occurs 2 times .* give the span"):
        add_claim(
            session,
            people["editor"],
            document,
            key="helps",
            statement="It helps.",
            sentence="Ketamine helps.",
        )
    claim = add_claim(
        session,
        people["editor"],
        document,
        key="helps",
        statement="It helps.",
        sentence="Ketamine helps.",
        span=(24, 39),
    )
    assert claim.span_start == 24


def test_claim_keys_are_stable_slugs_and_unique(session: Session) -> None:
    people = team(session)
    document = build_document(session)
    sentence = "Ketamine works fast."

    with pytest.raises(InvalidInputError, match="not a stable key"):
        add_claim(session, people["editor"], document, key="Works Fast", statement="S.", sentence=sentence)
    add_claim(session, people["editor"], document, key="works-fast", statement="S.", sentence=sentence)
    with pytest.raises(ConflictError, match="'works-fast' exists already"):
        add_claim(session, people["editor"], document, key="works-fast", statement="S.", sentence=sentence)


def test_edit_keeps_before_and_after_in_the_claims_history(session: Session) -> None:
    people = team(session)
    ensure_seed_content(session)

    claim = edit_claim(
        session,
        people["editor"],
        "rapid-onset",
        statement="Ketamine relieves depressive symptoms within a day.",
        comparator="placebo",
        reason="Sharper wording",
    )
    assert claim.id is not None
    [event] = [e for e in claim_history(session, claim.id) if e.action is AuditAction.CLAIM_EDITED]

    assert event.actor_name == "eve" and event.reason == "Sharper wording"
    assert event.before == {
        "statement": "Ketamine relieves depressive symptoms within hours or days, unlike conventional "
        "antidepressants that take weeks.",
        "comparator": "conventional antidepressants",
    }
    assert event.after == {
        "statement": "Ketamine relieves depressive symptoms within a day.",
        "comparator": "placebo",
    }
    with pytest.raises(InvalidInputError, match="the key is stable"):
        edit_claim(session, people["editor"], "rapid-onset", key="fast")


def test_retired_claims_stay_with_their_history_and_cannot_be_edited(session: Session) -> None:
    people = team(session)
    ensure_seed_content(session)

    retire_claim(session, people["editor"], "undeniable-benefits", "An opinion, not a checkable claim.")
    claim = get_claim(session, "undeniable-benefits")
    assert claim.id is not None

    assert claim.status is ClaimStatus.RETIRED
    assert "undeniable-benefits" not in [c.key for c in list_claims(session)]
    assert "undeniable-benefits" in [c.key for c in list_claims(session, include_retired=True)]
    assert [e.action for e in claim_history(session, claim.id)] == [
        AuditAction.CLAIM_ADDED,
        AuditAction.CLAIM_RETIRED,
    ]
    with pytest.raises(InvalidInputError, match="is retired; cannot edit"):
        edit_claim(session, people["editor"], "undeniable-benefits", statement="Benefits exist.")
    with pytest.raises(InvalidInputError, match="Say why"):
        retire_claim(session, people["editor"], "rapid-onset", " ")


def test_merge_moves_assessments_and_keeps_clashing_ones(session: Session) -> None:
    people = team(session)
    ensure_seed_content(session)
    suicidal, prevention = get_claim(session, "suicidal-ideation"), get_claim(session, "suicide-prevention")
    add_article(session, 1)
    add_article(session, 2)
    vote(session, people["reviewer"], suicidal, 1)
    vote(session, people["reviewer"], prevention, 1, StudyVerdict.MIXED)  # clashes with the vote above
    vote(session, people["reviewer"], prevention, 2)

    outcome = merge_claims(
        session, people["editor"], "suicide-prevention", "suicidal-ideation", "Same claim."
    )

    assert outcome.moved == 1 and outcome.kept == [(1, people["reviewer"].id)]
    assert prevention.status is ClaimStatus.MERGED and prevention.merged_into_id == suicidal.id
    moved = session.scalars(select(Assessment).where(Assessment.claim_id == suicidal.id)).all()
    assert sorted(a.pmid for a in moved) == [1, 2]
    assert prevention.id is not None
    assert AuditAction.CLAIM_MERGED in [e.action for e in claim_history(session, prevention.id)]


def test_only_editors_manage_claims(session: Session) -> None:
    people = team(session)
    document = build_document(session)

    with pytest.raises(
        PermissionDenied, match="managing documents and claims needs the role editor or admin"
    ):
        add_claim(
            session, people["reviewer"], document, key="k", statement="S.", sentence="Ketamine works fast."
        )


# --- sentences and proposals -----------------------------------------------------------------------


def test_split_sentences_keeps_spans_and_marks_headings() -> None:
    text = "Title Here\n\nDr. Smith gave 2.5 mg, e.g. orally. It worked! Did it last?\n\n## Part two\n\n- A list item."

    sentences = split_sentences(text)

    assert [(s.text, s.heading) for s in sentences] == [
        ("Title Here", True),
        ("Dr. Smith gave 2.5 mg, e.g. orally.", False),
        ("It worked!", False),
        ("Did it last?", False),
        ("Part two", True),
        ("A list item.", False),
    ]
    assert all(text[s.start : s.end] == s.text for s in sentences)


def test_proposals_find_every_seed_claim_and_skip_headings() -> None:
    data = seed_content()
    text = data["document"]["text"]

    proposed = {p.sentence.text: p.cues for p in propose_claims(text)}

    for claim in data["claims"]:
        assert claim["sentence"] in proposed, claim["key"]
    assert "Understanding Ketamine" not in proposed
    assert "evidence" in proposed[data["claims"][3]["sentence"]]  # "Studies have demonstrated ..."
    assert "comparison" in proposed[data["claims"][2]["sentence"]]  # "... on the other hand ..."


def test_editor_accepts_edits_or_rejects_proposals(session: Session) -> None:
    people = team(session)
    document = add_document(session, people["editor"], title="Another post", text=DOCUMENT_TEXT)

    proposals = store_proposals(session, people["editor"], document)
    by_sentence = {p.sentence: p for p in proposals}
    assert set(by_sentence) == {
        "Studies show that ketamine relieves depression within hours.",
        "Ketamine is sold in 3 forms.",
    }
    first = by_sentence["Studies show that ketamine relieves depression within hours."]
    second = by_sentence["Ketamine is sold in 3 forms."]
    assert first.id is not None and second.id is not None

    claim = accept_proposal(
        session, people["editor"], first.id, key="hours", statement="Ketamine works within hours."
    )
    rejected = reject_proposal(session, people["editor"], second.id, "Not a health claim.")

    assert isinstance(claim, Claim) and claim.statement == "Ketamine works within hours."
    assert document.text[claim.span_start : claim.span_end] == first.sentence
    assert first.status is ProposalStatus.ACCEPTED and rejected.status is ProposalStatus.REJECTED
    assert store_proposals(session, people["editor"], document) == []  # nothing proposed twice
    with pytest.raises(ConflictError, match="was accepted already"):
        reject_proposal(session, people["editor"], first.id)


def test_processes_starting_together_load_the_seed_once(db_url: str) -> None:
    # Eight commands started at once on a new database: each loads the seed article if it is missing.
    start = threading.Barrier(8)
    failures: list[BaseException] = []

    def first_start() -> None:
        try:
            with open_session(db_url) as session:
                start.wait(timeout=30)
                ensure_seed_content(session)
                session.commit()
        except BaseException as exc:  # noqa: BLE001  (collected for the assertion below)
            failures.append(exc)

    threads = [threading.Thread(target=first_start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    with open_session(db_url) as session:
        assert len(session.scalars(select(SourceDocument)).all()) == 1
        assert len(session.scalars(select(Claim)).all()) == 9
