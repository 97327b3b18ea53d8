"""The dashboard starts on an empty and on a full database, and shows the corpus (AppTest)."""

from __future__ import annotations

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from ingest.importer import import_file
from tests.conftest import TEST_DATA

APP = "../app.py"


@pytest.fixture(autouse=True)
def _clear_streamlit_caches() -> None:
    # Streamlit caches are process-wide and survive between AppTest runs.
    st.cache_data.clear()
    st.cache_resource.clear()


def test_app_starts_on_an_empty_database_and_says_what_to_do(sqlite_url: str) -> None:
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert not at.exception
    assert at.title[0].value == "Corpus"
    assert "ketamine-evidence harvest" in at.info[0].value


def test_app_shows_counts_and_table_on_a_full_database(db_url: str) -> None:
    import_file(db_url, TEST_DATA / "pubmed_ketamine_sample.xml")
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Articles"] == "6"
    assert metrics["Retracted or under concern"] == "2"
    table = at.dataframe[0].value
    assert len(table) == 6


def test_search_box_filters_titles_and_abstracts(sqlite_url: str) -> None:
    import_file(sqlite_url, TEST_DATA / "pubmed_ketamine_sample.xml")
    at = AppTest.from_file(APP, default_timeout=30).run()
    at.text_input[0].input("suicidal ideation").run()
    assert not at.exception
    assert list(at.dataframe[0].value["pmid"]) == [90000002]


def test_app_reports_an_unusable_database_in_words(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert not at.exception
    assert "Cannot reach the database" in at.error[0].value
