"""The dashboard's read helpers (db/read/) and the pages' escaping."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlmodel import col

from db.corpus.study_facts import study_facts
from db.engine import open_session
from db.errors import PermissionDenied
from db.models import Assessment
from db.read.cards import claim_cards, meter_rows
from db.read.choices import suggest_claim_key
from db.read.drilldown import claim_studies
from db.read.editor import ChecklistItem, conflict_page, signoff_checklist
from db.read.overview import corpus_freshness, studies_by_year_and_design
from db.read.pairs import evidence_by_claim, pair_summaries
from db.read.studies import claim_terms, next_in_queue, study_index
from db.read.summary import SUMMARY
from db.review.assessments import correct_design, update_assessment
from db.review.claims import get_claim, list_claims
from db.review.pairs import claim_evidence, pair_statuses, resolve_conflict
from db.review.roles import get_user
from db.review.verdicts import ClaimScope, DesignScope, derive_claim_verdict
from db.text import term_spans
from db.vocab import RiskOfBias, StudyDesign, StudyVerdict
from pages._ui import marked_html, md_escape
from tests.dashboard_builders import vote_as, world


@pytest.fixture
def judged(db_url: str) -> str:
    """Votes of every kind: agreement, a conflict, a resolution, a reopened resolution, a design
    correction, a retracted study, a study screened out."""
    world(db_url)
    v = StudyVerdict
    vote_as(db_url, "rita", "suicidal-ideation", 90000002, v.SUPPORTED)
    vote_as(db_url, "rob", "suicidal-ideation", 90000002, v.SUPPORTED)
    vote_as(db_url, "rita", "suicidal-ideation", 90000001, v.SUPPORTED)
    vote_as(db_url, "rob", "suicidal-ideation", 90000001, v.UNSUPPORTED)  # open conflict
    vote_as(db_url, "rita", "suicidal-ideation", 90000004, v.SUPPORTED)  # retracted
    vote_as(db_url, "rita", "rapid-onset", 90000001, v.SUPPORTED)
    vote_as(db_url, "rob", "rapid-onset", 90000001, v.MIXED)
    vote_as(db_url, "rita", "rapid-onset", 90000006, v.NOT_RELEVANT, quote="")
    vote_as(db_url, "rita", "rapid-onset", 90000002, v.MIXED)
    vote_as(db_url, "rob", "rapid-onset", 90000002, v.SUPPORTED)
    with open_session(db_url) as session:
        eve, rob = get_user(session, "eve"), get_user(session, "rob")
        rapid = get_claim(session, "rapid-onset")
        resolve_conflict(session, eve, rapid, 90000001, v.SUPPORTED, "24-hour outcome is the claim")
        resolve_conflict(session, eve, rapid, 90000002, v.MIXED, "waned by week 1")
        # rob changes his vote after the resolution: the pair is in conflict again
        vote = session.scalars(
            select(Assessment).where(
                Assessment.claim_id == rapid.id, Assessment.pmid == 90000002, Assessment.reviewer_id == rob.id
            )
        ).one()
        update_assessment(session, rob, vote.id, vote.version, verdict=v.UNSUPPORTED)
        correct_design(session, rob, 90000001, StudyDesign.CONTROLLED_TRIAL, "not randomised after all")
        session.commit()
    return db_url


def test_bulk_evidence_equals_claim_evidence_for_every_claim(judged: str) -> None:
    with open_session(judged) as session:
        bulk = evidence_by_claim(session)
        for claim in list_claims(session):
            assert claim.id is not None
            assert bulk.get(claim.id, []) == claim_evidence(session, claim), claim.key
            statuses = {(s.pmid, s.state, s.verdict) for s in pair_statuses(session, claim.id)}
            assert {
                (p.pmid, p.state, p.verdict) for p in pair_summaries(session, [claim.id]).get(claim.id, [])
            } == statuses


def test_claim_cards_give_verdict_meter_progress_and_conflicts(judged: str) -> None:
    with open_session(judged) as session:
        cards = {c.key: c for c in claim_cards(session, get_user(session, "eve"))}
    suicidal = cards["suicidal-ideation"]
    assert suicidal.verdict == "supported"
    assert suicidal.excluded == ((90000004, "retracted"),)
    assert suicidal.conflicts == 1 and suicidal.judged == 3
    assert suicidal.progress == {"supported": 2, "conflict": 1}
    assert [(r.design, r.verdict, r.studies, r.counted) for r in suicidal.meter] == [
        ("meta_analysis", "supported", 1, True)
    ]
    rapid = cards["rapid-onset"]
    assert rapid.conflicts == 1  # reopened
    assert [(r.design, r.verdict) for r in rapid.meter] == [("controlled_trial", "supported")]
    assert cards["anesthetic-history"].verdict == "insufficient_evidence"


def test_meter_rows_mark_designs_that_do_not_decide() -> None:
    from db.review.verdicts import StudyEvidence

    evidence = [
        StudyEvidence(1, StudyVerdict.SUPPORTED, StudyDesign.RCT),
        StudyEvidence(2, StudyVerdict.UNSUPPORTED, StudyDesign.OBSERVATIONAL),
        StudyEvidence(3, StudyVerdict.MIXED, StudyDesign.CASE_REPORT),
    ]
    rows = meter_rows(derive_claim_verdict(evidence, DesignScope.GRADED))
    assert [(r.design_label, r.verdict, r.counted) for r in rows] == [
        ("RCT", "supported", True),
        ("observational study", "unsupported", False),
        ("case report or series", "mixed", False),
    ]


def test_blinded_reviewers_see_verdicts_only_of_studies_they_judged(judged: str) -> None:
    with open_session(judged) as session:
        rita = get_user(session, "rita")
        vote_as(judged, "rob", "long-lasting", 90000002, StudyVerdict.SUPPORTED)
        cards = {c.key: c for c in claim_cards(session, rita)}
        assert cards["long-lasting"].blinded and cards["long-lasting"].hidden == 1
        assert cards["long-lasting"].meter == () and cards["long-lasting"].progress == {}
        page = claim_studies(session, rita, cards["long-lasting"].id)
        assert (page.total, page.hidden) == (0, 1)
        viewer = {c.key: c for c in claim_cards(session, get_user(session, "vic"))}
        assert not viewer["long-lasting"].blinded and viewer["long-lasting"].judged == 1


def test_claim_studies_filter_sort_and_show_votes(judged: str) -> None:
    with open_session(judged) as session:
        eve = get_user(session, "eve")
        claim = get_claim(session, "suicidal-ideation")
        assert claim.id is not None
        page = claim_studies(session, eve, claim.id)
        assert [r.pmid for r in page.rows] == [90000002, 90000001, 90000004]  # strongest designs first
        assert page.rows[2].excluded == "retracted"
        assert {v.reviewer for v in page.rows[1].votes} == {"rita", "rob"}
        only = claim_studies(session, eve, claim.id, verdicts=["conflict"])
        assert [r.pmid for r in only.rows] == [90000001]
        trials = claim_studies(session, eve, claim.id, designs=["controlled_trial"], limit=1)
        assert (trials.total, [r.pmid for r in trials.rows]) == (1, [90000001])  # as corrected


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"verdicts": ["supported", "mixed"]},
        {"verdicts": ["not_relevant"]},
        {"verdicts": ["conflict"]},
        {"states": ["resolved"]},
        {"states": ["conflict", "agreed"]},
        {"designs": ["controlled_trial", "meta_analysis"]},
    ],
)
def test_claim_studies_read_from_pair_state_match_the_votes(
    judged: str, filters: dict[str, list[str]]
) -> None:
    # The page reads where each pair stands from pair_state; grouping the votes says the same.
    with open_session(judged) as session:
        eve = get_user(session, "eve")
        facts = study_facts(session)
        for claim in list_claims(session):
            assert claim.id is not None
            expected = [
                (p.pmid, p.state.value, p.verdict, p.reopened)
                for p in pair_summaries(session, [claim.id]).get(claim.id, [])
                if (p.verdict.value if p.verdict else "conflict") in filters.get("verdicts", [])
                or "verdicts" not in filters
            ]
            expected = [
                row
                for row in expected
                if ("states" not in filters or row[1] in filters["states"])
                and ("designs" not in filters or facts[row[0]].design.value in filters["designs"])
            ]
            page = claim_studies(session, eve, claim.id, limit=100, **filters)
            shown = [
                (r.pmid, r.state, StudyVerdict(r.verdict) if r.verdict else None, r.reopened)
                for r in page.rows
            ]
            assert sorted(shown) == sorted(expected), claim.key
            assert page.total == len(expected)


def test_conflict_page_is_for_editors(judged: str) -> None:
    with open_session(judged) as session:
        page = conflict_page(session, get_user(session, "eve"))
        assert [(r.claim_key, r.study.pmid, r.study.reopened) for r in page.rows] == [
            ("rapid-onset", 90000002, True),
            ("suicidal-ideation", 90000001, False),
        ] or [(r.claim_key, r.study.pmid) for r in page.rows] == [
            ("suicidal-ideation", 90000001),
            ("rapid-onset", 90000002),
        ]
        with pytest.raises(PermissionDenied):
            conflict_page(session, get_user(session, "rita"))


def test_checklist_says_what_is_missing(judged: str) -> None:
    with open_session(judged) as session:
        cards = claim_cards(session, get_user(session, "eve"))
    items = {item.label: item for item in signoff_checklist(cards)}
    assert not items["No open conflicts between reviewers"].done
    assert "suicidal-ideation (1)" in items["No open conflicts between reviewers"].detail
    assert not items["Every claim signed off"].done
    assert items["No evidence changed since sign-off"] == ChecklistItem(
        "No evidence changed since sign-off", True, ""
    )


def test_overview_reads(judged: str) -> None:
    with open_session(judged) as session:
        fresh = corpus_freshness(session)
        assert (fresh.articles, fresh.retracted, fresh.last_run is not None) == (6, 2, True)
        assert fresh.last_harvest is None and fresh.added_last_7_days == 6
        counts = {(c.year, c.design): c.studies for c in studies_by_year_and_design(session)}
        assert counts[(2024, "controlled_trial")] == 1  # the corrected design counts
        index = {row["pmid"]: row for row in study_index(session)}
        assert index[90000001]["design"] == "controlled_trial" and index[90000003]["has_abstract"] is False


def test_suggested_claim_keys_are_valid_and_unique() -> None:
    assert (
        suggest_claim_key("Studies show that ketamine works within 24 hours.")
        == "studies-show-ketamine-works"
    )
    assert suggest_claim_key("It works!", {"works"}) == "works-2"
    assert suggest_claim_key("!!!") == "claim"


def test_key_terms_match_word_starts_of_any_form() -> None:
    class FakeClaim:
        statement = "Ketamine rapidly reduces suicidal thoughts."
        population = "people with depression"
        outcome = None
        comparator = None

    terms = claim_terms(FakeClaim(), extra=["C-SSRS"])
    assert {"rapid", "reduc", "suicidal", "thought", "depress", "c-ssrs"} <= set(terms)
    assert "ketamine" not in terms and "with" not in terms
    text = "Depressive symptoms and suicidality were reduced (C-SSRS)."
    assert [text[a:b] for a, b in term_spans(text, terms)] == [
        "Depressive",
        "suicidality",
        "reduced",
        "C-SSRS",
    ]


def test_the_queue_skips_judged_studies_and_brings_skipped_ones_last() -> None:
    assert next_in_queue([1, 2, 3, 4], judged={2}, skipped=[1], n=2) == [3, 4]
    assert next_in_queue([1, 2, 3, 4], judged={2, 3, 4}, skipped=[1], n=2) == [1]
    assert next_in_queue([1, 2], judged={1, 2}, skipped=[], n=1) == []


def test_marked_text_escapes_everything_but_our_marks() -> None:
    text = "<script>alert(1)</script> & *bold* [x](javascript:y)\n\nsecond"
    html = marked_html(text, [(0, 8), (1, 3)])  # the overlapping span is dropped
    assert html == (
        '<div class="ke-text"><mark>&lt;script&gt;</mark>alert(1)&lt;/script&gt; &amp; *bold* '
        "[x](javascript:y)<br><br>second</div>"
    )
    assert "<br><br>" in html and "\n" not in html  # one HTML block: Markdown leaves it alone


def test_md_escape_neutralises_markdown_and_latex() -> None:
    assert md_escape("*a* [b](c) $x$ <i>") == r"\*a\* \[b\]\(c\) \$x\$ \<i\>"


def test_claim_cards_verdicts_equal_the_rule_over_every_study(judged: str) -> None:
    # Cards read screened-out studies as counts (PairScope): the result must be the rule's own.
    vote_as(judged, "rita", "long-lasting", 90000005, StudyVerdict.NOT_RELEVANT, quote="")  # a notice
    vote_as(judged, "rob", "long-lasting", 90000003, StudyVerdict.NOT_RELEVANT, quote="")
    vote_as(judged, "rob", "long-lasting", 90000006, StudyVerdict.NOT_RELEVANT, quote="")
    # Stated evidence on some votes: participants, a follow-up outside rapid-onset's week, a high
    # risk of bias. The cards list these studies (the rest are counted); the result must not differ.
    with open_session(judged) as session:
        stated = session.scalars(select(Assessment).order_by(col(Assessment.id))).all()
        for assessment, days in zip(stated[::2], (1.0, 84.0, None, 3.0), strict=False):
            assessment.participants, assessment.follow_up_days = 250, days
            assessment.risk_of_bias = RiskOfBias.HIGH if days == 3.0 else None
            session.add(assessment)
        session.commit()
    SUMMARY.clear()
    with open_session(judged) as session:
        eve = get_user(session, "eve")
        for scope in DesignScope:
            cards = {c.key: c for c in claim_cards(session, eve, scope=scope)}
            for claim in list_claims(session):
                expected = derive_claim_verdict(
                    claim_evidence(session, claim), scope, claim=ClaimScope.of(claim)
                )
                card = cards[claim.key]
                assert (card.verdict, card.strength, card.reasoning) == (
                    expected.verdict.value,
                    expected.strength.value,
                    expected.reasoning,
                ), claim.key
                assert card.excluded == tuple((e.pmid, e.reason) for e in expected.excluded)
        assert cards["long-lasting"].judged == 3 and cards["long-lasting"].progress == {"not_relevant": 3}
