"""Review page (AppTest): the evidence fields, prefilled from the abstract, saved with the verdict."""

from __future__ import annotations

from typing import Any

import pytest
import streamlit as st
from sqlalchemy import select

from db.engine import open_session
from db.models import Assessment
from db.read import evidence
from db.review.evidence_prefill import Suggestion
from db.vocab import Population, RiskOfBias
from tests.dashboard_builders import navigation_only_in_apptest, open_page, world

SENTENCE = "Twenty-four patients with treatment-resistant depression were followed for 24 hours."


def _suggest(title: str, abstract: str, claim: Any = None) -> dict[str, Suggestion]:
    return {
        "participants": Suggestion(24, SENTENCE),
        "follow_up": Suggestion("24 hours", SENTENCE),
        "population": Suggestion("trd", SENTENCE),
        "risk_of_bias": Suggestion("some concerns", "Open-label, no control group."),
        "directness": Suggestion("indirect", SENTENCE),  # no reason given: refused, so not offered
    }


@pytest.fixture(autouse=True)
def _fresh_streamlit(monkeypatch: pytest.MonkeyPatch) -> None:
    st.cache_data.clear()
    st.cache_resource.clear()
    navigation_only_in_apptest(monkeypatch)
    monkeypatch.setattr(evidence, "suggest_evidence", _suggest)


def _suffix(at: Any) -> str:
    return f"{at.selectbox(key='review_claim').value}-{int(at.session_state['review_shown'])}"


def _stored(url: str, pmid: int) -> Assessment:
    with open_session(url) as session:
        return session.scalars(select(Assessment).where(Assessment.pmid == pmid)).one()


def test_one_key_press_saves_the_suggested_evidence_with_the_verdict(db_url: str) -> None:
    world(db_url)
    at = open_page("review", "rita")
    suffix, pmid = _suffix(at), int(at.session_state["review_shown"])

    participants = at.number_input(key=f"evidence-participants-{suffix}")
    assert participants.value == 24
    assert SENTENCE in participants.proto.help  # where the suggestion came from
    assert at.selectbox(key=f"evidence-directness-{suffix}").value is None
    assert "Evidence (suggested: participants 24" in at.expander[0].label
    at.button(key="verdict-supported").click().run()

    assert not at.exception and f"Saved PMID {pmid} as supported" in at.success[0].value
    assert int(at.session_state["review_shown"]) != pmid  # the next study at once
    stored = _stored(db_url, pmid)
    assert (stored.participants, stored.follow_up, stored.follow_up_days) == (24, "24 hours", 1.0)
    assert stored.population is Population.TRD and stored.risk_of_bias is RiskOfBias.SOME_CONCERNS
    assert stored.directness is None


def test_edited_evidence_is_saved_and_not_relevant_saves_none(sqlite_url: str) -> None:
    world(sqlite_url)
    at = open_page("review", "rita")
    suffix, first = _suffix(at), int(at.session_state["review_shown"])
    at.number_input(key=f"evidence-participants-{suffix}").set_value(30)
    at.selectbox(key=f"evidence-population-{suffix}").set_value("mdd")
    at.text_input(key=f"evidence-effect-{suffix}").input("MADRS -8.1 vs saline")
    at.button(key="verdict-mixed").click().run()
    assert not at.exception
    second = int(at.session_state["review_shown"])
    at.button(key="verdict-not_relevant").click().run()
    assert not at.exception

    edited = _stored(sqlite_url, first)
    assert (edited.participants, edited.population, edited.effect) == (
        30,
        Population.MDD,
        "MADRS -8.1 vs saline",
    )
    screened = _stored(sqlite_url, second)
    assert (screened.participants, screened.follow_up, screened.population, screened.risk_of_bias) == (
        None,
        None,
        None,
        None,
    )


def test_a_bad_evidence_value_is_not_saved_and_keeps_the_study(sqlite_url: str) -> None:
    world(sqlite_url)
    at = open_page("review", "rita")
    suffix, pmid = _suffix(at), int(at.session_state["review_shown"])
    at.text_input(key=f"evidence-follow_up-{suffix}").input("until discharge")
    at.button(key="verdict-supported").click().run()

    assert not at.exception
    assert "Not saved: follow_up 'until discharge' names no duration" in at.error[0].value
    assert int(at.session_state["review_shown"]) == pmid
    with open_session(sqlite_url) as session:
        assert session.scalars(select(Assessment)).first() is None
