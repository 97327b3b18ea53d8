"""Overview, Claims and Review pages (AppTest): the main reviewing flows, blind mode, roles."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest
import streamlit as st
from sqlalchemy import select

from db.engine import open_session
from db.errors import PermissionDenied
from db.models import Assessment, DesignCorrection, HarvestRun
from db.review.assessments import record_assessment
from db.review.claims import get_claim
from db.review.roles import get_user
from db.review.sources import set_blind_mode
from db.vocab import StudyVerdict
from tests.dashboard_builders import (
    APP,
    USER_KEY,
    navigation_only_in_apptest,
    open_page,
    vote_as,
    world,
)

CLAIM = "suicidal-ideation"


@pytest.fixture(autouse=True)
def _fresh_streamlit(monkeypatch: pytest.MonkeyPatch) -> None:
    # Streamlit caches are process-wide and survive between AppTest runs.
    st.cache_data.clear()
    st.cache_resource.clear()
    navigation_only_in_apptest(monkeypatch)


@pytest.fixture
def sample(sqlite_url: str) -> str:
    return world(sqlite_url)


@pytest.fixture
def sample_both(db_url: str) -> str:
    return world(db_url)


def markdown_text(at: object) -> str:
    return "\n".join(m.value for m in at.markdown)  # type: ignore[attr-defined]


def meter_values(at: object) -> list[dict[str, object]]:
    """The data rows of the evidence meter chart on the page (Streamlit sends chart data as Arrow)."""
    for chart in at.get("vega_lite_chart"):  # type: ignore[attr-defined]
        for dataset in chart.proto.datasets:
            rows = pa.ipc.open_stream(dataset.data.data).read_all().to_pylist()
            if rows and "design_label" in rows[0] and "counted" in rows[0]:
                return rows
    return []


def current_pmid(at: object) -> int:
    study = at.session_state["review_shown"]  # type: ignore[attr-defined]
    return int(study)


# --- Overview ----------------------------------------------------------------------------------------


def test_overview_shows_corpus_size_freshness_and_what_needs_attention(sample: str) -> None:
    vote_as(sample, "rita", CLAIM, 90000002, StudyVerdict.SUPPORTED)
    vote_as(sample, "rob", CLAIM, 90000002, StudyVerdict.UNSUPPORTED)

    at = open_page("overview", "eve")

    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Studies"] == "6"
    assert metrics["Retracted or under concern"] == "2"
    assert metrics["Open conflicts"] == "1"
    assert metrics["Judged claims not signed off"] == "1"
    assert "Last import" in at.caption[0].value or "No harvest yet" in at.caption[0].value
    assert len(at.get("vega_lite_chart")) == 2  # studies by year and design; review progress


def test_overview_reports_imported_studies_and_a_failed_run_apart(sample: str) -> None:
    with open_session(sample) as session:  # the sample came by import; then a harvest failed
        session.add(HarvestRun(kind="harvest", status="failed", error="NCBI answered 429 three times"))
        session.commit()

    at = open_page("overview", "eve")

    line = at.caption[0].value
    assert line.startswith("6 studies, from 0 harvests and 1 import. Last import: ")
    assert "succeeded: 6 new" in line
    assert not any("No harvest yet" in c.value for c in at.caption)
    (warning,) = at.warning
    assert warning.value.startswith("The last harvest, started ")
    assert "failed: NCBI answered 429 three times. The studies above come from earlier runs" in warning.value


def test_overview_progress_legend_sits_below_the_chart_and_fits(sample: str) -> None:
    vote_as(sample, "rita", CLAIM, 90000002, StudyVerdict.SUPPORTED)
    at = open_page("overview", "eve")
    specs = [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]
    (progress,) = [s for s in specs if s["encoding"]["x"].get("title") == "Judged studies"]
    assert progress["encoding"]["color"]["legend"]["orient"] == "bottom"
    assert progress["encoding"]["color"]["legend"]["columns"] == 1  # several columns were clipped
    assert progress["autosize"] == {"type": "fit-x", "contains": "padding"}


def test_claims_verdict_filter_is_pills_that_wrap_instead_of_truncated_chips(sample: str) -> None:
    vote_as(sample, "rita", CLAIM, 90000002, StudyVerdict.SUPPORTED)
    at = open_page("claims", "vic")
    pills = at.pills(key="claims_verdicts")
    assert pills.value == ["supported", "mixed", "unsupported", "conflict"]
    pills.set_value(["unsupported"]).run()
    assert not at.exception
    assert any("No judged study matches" in c.value for c in at.caption)


def test_overview_on_an_empty_corpus_says_what_to_do_next(sqlite_url: str) -> None:
    from tests.dashboard_builders import add_team

    with open_session(sqlite_url) as session:
        add_team(session)
        session.commit()
    at = open_page("overview", "vic")
    assert "Harvest" in at.info[0].value
    assert any("No study has been judged yet" in i.value for i in at.info)


# --- Claims ------------------------------------------------------------------------------------------


def test_claims_page_highlights_every_claim_in_the_article_text(sample: str) -> None:
    at = open_page("claims", "vic")
    article = next(m.value for m in at.markdown if 'class="ke-claim' in m.value)
    assert article.count("<mark ") == 9  # the nine seed claims
    assert "rapid-onset: insufficient evidence" in article


def test_tagging_a_study_on_the_review_page_changes_the_claim_meter(sample_both: str) -> None:
    before = open_page("claims", "eve", claims_claim=CLAIM)
    assert meter_values(before) == []
    assert "No studies rated yet" in markdown_text(before)

    review = open_page("review", "rita")
    review.selectbox(key="review_claim").select_index(_claim_index(review, CLAIM)).run()
    pmid = current_pmid(review)
    review.button(key="verdict-supported").click().run()
    assert not review.exception
    assert f"Saved PMID {pmid} as supported" in review.success[0].value
    assert current_pmid(review) != pmid  # the next study is shown at once

    after = open_page("claims", "eve", claims_claim=CLAIM)
    rows = meter_values(after)
    assert [(r["verdict"], r["studies"]) for r in rows] == [("supported", 1)]
    with open_session(sample_both) as session:
        stored = session.scalars(select(Assessment)).one()
        assert (stored.pmid, stored.verdict) == (pmid, StudyVerdict.SUPPORTED)
    assert f"PMID {pmid}" in markdown_text(after)  # the drill-down lists the study


def _claim_index(at: object, key: str) -> int:
    box = at.selectbox(key="review_claim")  # type: ignore[attr-defined]
    return [option.split(" — ")[0] for option in box.options].index(key)


def test_sensitivity_toggle_recomputes_with_high_certainty_designs_only(sample: str) -> None:
    # A retracted case series never counts; the RCT decides in both views; the letter counts only
    # when every design is counted alike.
    vote_as(sample, "rita", CLAIM, 90000001, StudyVerdict.SUPPORTED)
    vote_as(sample, "rita", CLAIM, 90000003, StudyVerdict.UNSUPPORTED, quote="Ketamine clinics")
    at = open_page("claims", "eve", claims_claim=CLAIM)
    assert "graded rule: **supported**" in markdown_text(at) or any(
        "graded rule: **supported**" in c.value for c in at.caption
    )
    at.radio(key="claims_scope").set_value("all_designs").run()
    assert not at.exception
    rows = meter_values(at)
    assert {(r["design"], r["verdict"], r["counted"]) for r in rows} == {
        ("rct", "supported", True),
        ("other", "unsupported", True),
    }


def test_retracted_studies_are_struck_out_and_excluded(sample: str) -> None:
    vote_as(sample, "rita", CLAIM, 90000004, StudyVerdict.SUPPORTED)
    at = open_page("claims", "eve", claims_claim=CLAIM)
    text = markdown_text(at)
    assert "<del>PMID 90000004</del> (retracted)" in text
    assert "<del>Single-dose ketamine cures depression" in text


def test_claims_page_shows_the_evidence_profile_and_the_prisma_flow(sample: str) -> None:
    vote_as(sample, "rita", CLAIM, 90000001, StudyVerdict.SUPPORTED)
    vote_as(sample, "rita", CLAIM, 90000004, StudyVerdict.SUPPORTED)  # retracted: left out
    at = open_page("claims", "eve", claims_claim=CLAIM)
    assert not at.exception

    assert [tab.label for tab in at.tabs] == [
        "Summary of findings",
        "Included studies",
        "How they were found",
    ]
    text = markdown_text(at)
    assert "<th>Certainty</th>" in text and "<th>Studies included</th><td>1 (1 deciding)</td>" in text
    assert "imprecision: no deciding study states its participants" in text
    assert "PMID 90000004: retracted" in text
    table = at.dataframe[0].value
    assert list(table["PMID"]) == ["https://pubmed.ncbi.nlm.nih.gov/90000001/"]
    dot = at.get("graphviz_chart")[0].proto.spec
    assert "Screened for this claim\\nn = 2" in dot and "Included in the verdict\\nn = 1" in dot
    assert "retracted: 1" in dot


def test_a_blinded_reviewer_sees_no_evidence_profile(sample: str) -> None:
    vote_as(sample, "rob", CLAIM, 90000001, StudyVerdict.SUPPORTED)
    at = open_page("claims", "rita", claims_claim=CLAIM)
    assert not at.exception
    assert "Summary of findings" not in [tab.label for tab in at.tabs]


# --- Review ------------------------------------------------------------------------------------------


def test_review_page_offers_verdict_buttons_with_keyboard_shortcuts(sample: str) -> None:
    at = open_page("review", "rita")
    shortcuts = {b.key: b.proto.shortcut for b in at.button if b.key and b.key.startswith("verdict-")}
    assert shortcuts == {
        "verdict-supported": "s",
        "verdict-mixed": "m",
        "verdict-unsupported": "u",
        "verdict-not_relevant": "n",
        "verdict-skip": "k",
    }


def test_review_saves_quote_note_and_corrected_design(sample: str) -> None:
    at = open_page("review", "rita")
    pmid = current_pmid(at)
    suffix = f"{at.selectbox(key='review_claim').value}-{pmid}"
    quote = at.selectbox(key=f"quote-{suffix}").value
    assert quote  # the best-matching sentence is preselected
    at.text_input(key=f"note-{suffix}").input("open-label extension")
    at.selectbox(key=f"design-{suffix}").set_value("observational").run()
    at.button(key="verdict-mixed").click().run()
    assert not at.exception
    with open_session(sample) as session:
        stored = session.scalars(select(Assessment)).one()
        assert (stored.quote, stored.note, stored.design) == (quote, "open-label extension", "observational")
        corrections = list(session.scalars(select(DesignCorrection)))
        assert [(c.pmid, c.design) for c in corrections] == [(pmid, "observational")]


def test_review_without_a_quote_says_why_and_keeps_the_study(sample: str) -> None:
    at = open_page("review", "rita")
    pmid = current_pmid(at)
    suffix = f"{at.selectbox(key='review_claim').value}-{pmid}"
    at.selectbox(key=f"quote-{suffix}").set_value("").run()
    at.button(key="verdict-supported").click().run()
    assert not at.exception
    assert "needs a quote" in at.error[0].value
    assert current_pmid(at) == pmid
    # "Not relevant" needs no quote.
    at.button(key="verdict-not_relevant").click().run()
    assert "as not relevant" in at.success[0].value


def test_skip_shows_the_next_study_and_brings_the_skipped_one_back_last(sample: str) -> None:
    at = open_page("review", "rita")
    first = current_pmid(at)
    at.button(key="verdict-skip").click().run()
    assert current_pmid(at) != first
    for _ in range(5):  # judge every other study; the skipped one comes back last
        if current_pmid(at) == first:
            break
        at.button(key="verdict-not_relevant").click().run()
    assert current_pmid(at) == first


def test_review_changes_the_last_decision_with_optimistic_versioning(sample: str) -> None:
    at = open_page("review", "rita")
    pmid = current_pmid(at)
    at.button(key="verdict-supported").click().run()
    claim_id = at.selectbox(key="review_claim").value
    form_radio = next(r for r in at.radio if r.label == "Verdict")
    form_radio.set_value("mixed")
    # Meanwhile the same assessment changes elsewhere (another tab): the form's version is stale.
    with open_session(sample) as session:
        from db.review.assessments import update_assessment

        stored = session.scalars(select(Assessment).where(Assessment.pmid == pmid)).one()
        update_assessment(session, get_user(session, "rita"), stored.id, stored.version, note="other tab")
        session.commit()
    next(b for b in at.button if b.label == "Save the change").click().run()
    assert "was changed" in at.error[0].value and "reload it" in at.error[0].value
    at = open_page("review", "rita", review_last={"claim_id": claim_id, "pmid": pmid})
    next(r for r in at.radio if r.label == "Verdict").set_value("mixed")
    next(b for b in at.button if b.label == "Save the change").click().run()
    assert not at.exception
    with open_session(sample) as session:
        stored = session.scalars(select(Assessment).where(Assessment.pmid == pmid)).one()
        assert (stored.verdict, stored.version) == (StudyVerdict.MIXED, 3)


def test_a_viewer_cannot_tag(sample: str) -> None:
    # Not offered in the navigation (tests/test_app.py); the page itself refuses, and so does db/.
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP.parent / "pages" / "review.py"), default_timeout=60)
    at.session_state[USER_KEY] = "vic"
    at.run()
    assert not at.exception
    assert "vic, a viewer; tagging studies needs another role" in at.warning[0].value
    assert not [b for b in at.button if b.key and b.key.startswith("verdict-")]
    with open_session(sample) as session, pytest.raises(PermissionDenied, match="is a viewer"):
        record_assessment(
            session,
            get_user(session, "vic"),
            get_claim(session, CLAIM),
            90000001,
            "supported",
            quote="BACKGROUND",
        )


def test_blind_mode_hides_other_votes_until_the_reviewer_has_voted(sample: str) -> None:
    vote_as(sample, "rob", CLAIM, 90000002, StudyVerdict.UNSUPPORTED)
    # Leave rita only study 90000002 to judge, so the queue shows it.
    for pmid in (90000001, 90000003, 90000004, 90000005, 90000006):
        vote_as(sample, "rita", CLAIM, pmid, StudyVerdict.NOT_RELEVANT, quote="")

    claims = open_page("claims", "rita", claims_claim=CLAIM)
    assert any("1 more judged by others stay hidden" in i.value for i in claims.info)
    assert "rob" not in markdown_text(claims)

    studies = open_page("studies", "rita", studies_open=90000002)
    assert "hidden (blind mode)" in markdown_text(studies)
    assert "rob" not in markdown_text(studies)

    review = open_page("review", "rita")
    review.selectbox(key="review_claim").select_index(_claim_index(review, CLAIM)).run()
    assert current_pmid(review) == 90000002
    assert any("1 other reviewer vote on this study stay hidden" in c.value for c in review.caption)
    assert "rob" not in markdown_text(review)
    review.button(key="verdict-mixed").click().run()
    assert "Other reviewers said — rob: unsupported" in review.success[0].value

    # With blind mode off, votes are visible before one's own.
    with open_session(sample) as session:
        set_blind_mode(session, get_user(session, "eve"), "ketamine-therapy-blog-post", False)
        session.commit()
    st.cache_data.clear()
    vote_as(sample, "rob", CLAIM, 90000001, StudyVerdict.SUPPORTED)
    studies = open_page("studies", "rob", studies_open=90000004)
    assert "rita" in markdown_text(studies)
