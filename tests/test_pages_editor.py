"""Editor, Articles and Team pages (AppTest): conflicts, sign-off, exports, new articles, the team."""

from __future__ import annotations

import pytest
import streamlit as st
from sqlalchemy import select
from streamlit.proto.Block_pb2 import Block as BlockProto

from db.engine import open_session
from db.models import ClaimProposal, ConflictResolution, SignOff
from db.review.claims import find_claim
from db.review.pairs import pair_statuses
from db.review.roles import find_user
from db.vocab import PairState, ProposalStatus, StudyVerdict
from pages._ui import VERDICT_COLORS
from tests.dashboard_builders import navigation_only_in_apptest, open_page, vote_as, world

CLAIM = "suicidal-ideation"


@pytest.fixture(autouse=True)
def _fresh_streamlit(monkeypatch: pytest.MonkeyPatch) -> None:
    st.cache_data.clear()
    st.cache_resource.clear()
    navigation_only_in_apptest(monkeypatch)


@pytest.fixture
def conflicted(db_url: str) -> str:
    world(db_url)
    vote_as(db_url, "rita", CLAIM, 90000002, StudyVerdict.SUPPORTED)
    vote_as(db_url, "rob", CLAIM, 90000002, StudyVerdict.UNSUPPORTED)
    return db_url


def labelled(widgets: object, label: str) -> object:
    return next(w for w in widgets if w.label == label)  # type: ignore[attr-defined]


def test_editor_resolves_a_conflict_and_keeps_the_votes(conflicted: str) -> None:
    at = open_page("editor", "eve")
    assert at.tabs[1].label == "Conflicts (1)"
    text = "\n".join(m.value for m in at.markdown)
    assert "PMID 90000002" in text and "rita" in text and "rob" in text
    labelled(at.selectbox, "Final verdict").set_value("mixed")
    labelled(at.text_input, "Reason").input("the pooled effect waned by week 1")
    labelled(at.button, "Resolve").click().run()
    assert not at.exception
    assert "Resolved PMID 90000002 for suicidal-ideation as mixed" in at.success[0].value
    assert at.tabs[1].label == "Conflicts (0)"
    with open_session(conflicted) as session:
        claim = find_claim(session, CLAIM)
        assert claim is not None and claim.id is not None
        (status,) = pair_statuses(session, claim.id)
        assert (status.state, status.verdict) == (PairState.RESOLVED, StudyVerdict.MIXED)
        assert set(status.votes) == {"rita", "rob"}  # the original votes stay


def open_tab(at: object) -> str:
    """The label of the tab the browser shows: the tab container's selected index."""
    nodes = [at._tree]  # type: ignore[attr-defined]
    while nodes:
        node = nodes.pop()
        proto = getattr(node, "proto", None)
        if isinstance(proto, BlockProto) and proto.HasField("tab_container"):
            return [t.label for t in node.tabs][proto.tab_container.default_tab_index]
        nodes.extend(getattr(node, "children", {}).values())
    raise AssertionError("no tabs on the page")


def test_editor_stays_on_the_tab_in_use_across_resolve_and_sign_off(conflicted: str) -> None:
    at = open_page("editor", "eve")
    assert open_tab(at) == "Checklist"
    at.session_state["editor_tabs"] = "Conflicts (1)"  # what a click on the tab sends
    at.run()
    assert open_tab(at) == "Conflicts (1)"
    labelled(at.selectbox, "Final verdict").set_value("supported")
    labelled(at.text_input, "Reason").input("large effect at day 1 is the claim's time frame")
    labelled(at.button, "Resolve").click().run()
    assert not at.exception and at.success
    assert open_tab(at) == "Conflicts (0)"  # the label changed; the tab stays

    at.session_state["editor_tabs"] = "Sign off"
    at.run()
    labelled(at.text_area, "Rationale").input("One meta-analysis, large effect at day 1.")
    labelled(at.button, "Sign off").click().run()
    assert not at.exception and "Signed off" in at.success[0].value
    assert open_tab(at) == "Sign off"
    box = at.selectbox(key="editor_signoff_claim")
    box.select_index(1 - box.index).run()  # another claim, and the flash goes away
    assert not at.exception and not any("Signed off" in m.value for m in at.success)
    assert open_tab(at) == "Sign off"


def test_resolving_offers_no_verdict_and_refuses_until_one_is_chosen(conflicted: str) -> None:
    at = open_page("editor", "eve")
    final = labelled(at.selectbox, "Final verdict")
    assert final.value is None and final.index is None  # nothing preselected
    labelled(at.text_input, "Reason").input("the pooled effect waned by week 1")
    labelled(at.button, "Resolve").click().run()
    assert not at.exception
    assert "Choose a final verdict for PMID 90000002 before resolving" in at.error[0].value
    with open_session(conflicted) as session:
        assert session.scalars(select(ConflictResolution)).first() is None

    labelled(at.selectbox, "Final verdict").set_value("unsupported")
    labelled(at.button, "Resolve").click().run()
    assert not at.exception and not at.error
    with open_session(conflicted) as session:
        assert session.scalars(select(ConflictResolution)).one().verdict is StudyVerdict.UNSUPPORTED


def test_resolving_without_a_reason_is_refused_in_words(conflicted: str) -> None:
    at = open_page("editor", "eve")
    labelled(at.selectbox, "Final verdict").set_value("mixed")
    labelled(at.button, "Resolve").click().run()
    assert not at.exception
    assert "Say why PMID 90000002" in at.error[0].value
    with open_session(conflicted) as session:
        assert session.scalars(select(ConflictResolution)).first() is None


def test_sign_off_is_refused_while_conflicts_are_open_then_succeeds(conflicted: str) -> None:
    at = open_page("editor", "eve")
    box = at.selectbox(key="editor_signoff_claim")
    box.select_index([o.split(" — ")[0] for o in box.options].index(CLAIM)).run()
    labelled(at.text_area, "Rationale").input("One meta-analysis, large effect at day 1.")
    labelled(at.button, "Sign off").click().run()
    assert "unresolved conflicts on PMID 90000002" in at.error[0].value

    labelled(at.selectbox, "Final verdict").set_value("supported")
    labelled(at.text_input, "Reason").input("large effect at day 1 is the claim's time frame")
    labelled(at.button, "Resolve").click().run()
    labelled(at.text_area, "Rationale").input("One meta-analysis, large effect at day 1.")
    labelled(at.button, "Sign off").click().run()
    assert not at.exception
    assert "Signed off suicidal-ideation: OK to publish" in at.success[0].value
    with open_session(conflicted) as session:
        signoff = session.scalars(select(SignOff)).one()
        assert (signoff.decision, signoff.verdict) == ("ok_to_publish", "supported")

    # New evidence after the sign-off shows up on the Overview and in the checklist.
    vote_as(conflicted, "rita", CLAIM, 90000001, StudyVerdict.MIXED)
    st.cache_data.clear()  # a vote from outside the dashboard shows once the cache's ttl has passed
    overview = open_page("overview", "eve")
    assert {m.label: m.value for m in overview.metric}["Evidence changed since sign-off"] == "1"
    assert "PMID 90000001 newly tagged: mixed" in overview.warning[0].value
    editor = open_page("editor", "eve")
    line = next(m.value for m in editor.markdown if "No evidence changed since sign-off" in m.value)
    assert ":material/radio_button_unchecked:" in line and "suicidal\\-ideation" in line


def test_editor_offers_every_export_as_a_download(conflicted: str) -> None:
    at = open_page("editor", "eve")
    labels = [b.label for b in at.get("download_button")]
    assert labels == [
        "Claim report (Markdown)",
        "Claim report (CSV)",
        "Citations (RIS)",
        "Citations (BibTeX)",
        "ClaimReview (JSON-LD)",
        "Audit trail (CSV)",
    ]


def test_editor_table_shows_verdicts_in_the_badge_colours(conflicted: str) -> None:
    at = open_page("editor", "eve")
    table = at.dataframe[0]
    assert set(table.value["verdict"]) == {"Insufficient evidence"}
    assert (
        f"background-color: {VERDICT_COLORS['insufficient_evidence']}" in table.proto.arrow_data.styler.styles
    )


def test_insufficient_evidence_shows_no_certainty_on_the_editor_page(conflicted: str) -> None:
    at = open_page("editor", "eve")
    assert set(at.dataframe[0].value["certainty"]) == {"—"}  # every claim is insufficient here
    box = at.selectbox(key="editor_signoff_claim")
    box.select_index([o.split(" — ")[0] for o in box.options].index(CLAIM)).run()
    shown = "\n".join(m.value for m in at.markdown)
    assert "certainty: <b>—</b>" in shown and "very low" not in shown


def test_claimreview_download_waits_for_a_sign_off_and_says_so(conflicted: str) -> None:
    at = open_page("editor", "eve")
    button = next(b for b in at.get("download_button") if b.label == "ClaimReview (JSON-LD)")
    assert button.proto.disabled
    assert any(
        "Nothing to publish yet: ClaimReview holds only claims signed off as OK to publish" in c.value
        for c in at.caption
    )

    labelled(at.selectbox, "Final verdict").set_value("supported")
    labelled(at.text_input, "Reason").input("large effect at day 1 is the claim's time frame")
    labelled(at.button, "Resolve").click().run()
    labelled(at.text_area, "Rationale").input("One meta-analysis, large effect at day 1.")
    labelled(at.button, "Sign off").click().run()
    assert not at.exception
    button = next(b for b in at.get("download_button") if b.label == "ClaimReview (JSON-LD)")
    assert not button.proto.disabled
    assert not any("Nothing to publish yet" in c.value for c in at.caption)


def test_sign_off_takes_a_rating_and_a_departure_needs_a_sentence(conflicted: str) -> None:
    at = open_page("editor", "eve")
    box = at.selectbox(key="editor_signoff_claim")
    box.select_index([o.split(" — ")[0] for o in box.options].index(CLAIM)).run()
    labelled(at.selectbox, "Final verdict").set_value("supported")
    labelled(at.text_input, "Reason").input("large effect at day 1 is the claim's time frame")
    labelled(at.button, "Resolve").click().run()
    rating = labelled(at.selectbox, "Rating to publish")
    assert rating.value == "accurate"  # the derived verdict's first match
    assert "Mostly accurate (matches the verdict)" in rating.options
    assert "Inaccurate" in rating.options

    rating.set_value("inaccurate")
    labelled(at.text_area, "Rationale").input("Overstated.")
    labelled(at.button, "Sign off").click().run()
    assert not at.exception
    assert "Rating 'inaccurate' departs from the derived verdict" in at.error[0].value

    labelled(at.selectbox, "Rating to publish").set_value("inaccurate")
    labelled(at.text_area, "Rationale").input("The trial measured a day; the article says for good.")
    labelled(at.button, "Sign off").click().run()
    assert not at.exception
    assert "Signed off suicidal-ideation: OK to publish, rated inaccurate." in at.success[0].value
    with open_session(conflicted) as session:
        signoff = session.scalars(select(SignOff)).one()
        assert (signoff.rating, signoff.verdict) == ("inaccurate", "supported")
    table = at.dataframe[0].value
    row = table[table["claim"] == CLAIM].iloc[0]
    assert (row["standing"], row["rating"]) == ("Signed off", "inaccurate")


def test_provisional_verdicts_are_labelled_with_what_keeps_them_open(conflicted: str) -> None:
    vote_as(conflicted, "rita", CLAIM, 90000001, StudyVerdict.SUPPORTED)  # one vote only
    editor = open_page("editor", "eve")
    table = editor.dataframe[0].value
    row = table[table["claim"] == CLAIM].iloc[0]
    assert (row["standing"], row["awaiting a second vote"], row["conflicts"]) == ("Provisional", 1, 1)

    claims = open_page("claims", "eve")
    claims.selectbox(key="claims_claim").set_value(CLAIM).run()
    text = "\n".join(m.value for m in claims.markdown)
    assert '<span class="ke-provisional">Provisional</span>' in text
    assert "1 open conflict, 1 awaiting a second vote" in text

    overview = open_page("overview", "eve")
    assert {m.label: m.value for m in overview.metric}["Provisional verdicts"] != "0"
    verdicts = overview.dataframe[0].value
    row = verdicts[verdicts["claim"] == CLAIM].iloc[0]
    assert (row["standing"], row["open conflicts"], row["awaiting a second vote"]) == ("Provisional", 1, 1)


def test_audit_trail_lists_the_changes(conflicted: str) -> None:
    at = open_page("editor", "eve")
    events = at.dataframe[-1].value
    assert {"assessment recorded"} <= set(events["action"])
    assert {"rita", "rob"} <= set(events["actor"])


def test_blind_mode_can_be_turned_off_by_an_editor(conflicted: str) -> None:
    at = open_page("editor", "eve")
    at.toggle[0].set_value(False).run()
    assert not at.exception
    assert "Blind mode is now off" in at.success[0].value


def test_adding_an_article_proposes_claims_to_accept_or_reject(db_url: str) -> None:
    world(db_url)
    at = open_page("articles", "eve")
    labelled(at.text_input, "Title").input("Esketamine in the news")
    labelled(at.text_area, "Full text (paste plain text or Markdown)").input(
        "# Esketamine in the news\n\nStudies show that esketamine works within 24 hours. "
        "The weather was fine. It is more effective than placebo."
    )
    labelled(at.button, "Add the article and propose its claims").click().run()
    assert not at.exception
    assert "with 2 proposed claims" in at.success[0].value
    keys = [w.value for w in at.text_input if w.label == "Key"]
    assert keys == ["studies-show-esketamine-works", "more-effective-than-placebo"]
    labelled(at.button, "Accept").click().run()
    assert "Accepted claim studies-show-esketamine-works" in at.success[0].value
    labelled(at.button, "Reject").click().run()
    assert "Rejected the proposal" in at.success[0].value
    with open_session(db_url) as session:
        assert find_claim(session, "studies-show-esketamine-works") is not None
        statuses = [p.status for p in session.scalars(select(ClaimProposal).order_by(ClaimProposal.id))]
        assert statuses == [ProposalStatus.ACCEPTED, ProposalStatus.REJECTED]


def test_an_article_without_text_is_refused_in_words(sqlite_url: str) -> None:
    world(sqlite_url)
    at = open_page("articles", "eve")
    labelled(at.text_input, "Title").input("Empty")
    labelled(at.button, "Add the article and propose its claims").click().run()
    assert not at.exception
    assert "needs a title and its full text" in at.error[0].value


def test_admin_adds_someone_and_changes_their_role(sqlite_url: str) -> None:
    world(sqlite_url)
    at = open_page("team", "ada")
    labelled(at.text_input, "Name").input("tom")
    labelled(at.button, "Add").click().run()
    assert "Added tom as reviewer" in at.success[0].value
    labelled(at.selectbox, "Person").set_value("tom")
    labelled(at.selectbox, "New role").set_value("editor")
    labelled(at.button, "Set role").click().run()
    assert "tom is now editor" in at.success[0].value
    with open_session(sqlite_url) as session:
        tom = find_user(session, "tom")
        assert tom is not None and tom.role == "editor"
