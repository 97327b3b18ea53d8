"""Studies and Harvest pages (AppTest): search and filter, the study page, uploads, harvests."""

from __future__ import annotations

import json
import re

import pytest
import streamlit as st
from pytest_httpserver import HTTPServer
from sqlalchemy import func, select

from db.engine import open_session
from db.models import Article, DesignCorrection, HarvestRun, User
from db.read.studies import named_study, search_pmids
from db.vocab import StudyVerdict
from tests.conftest import TEST_DATA
from tests.dashboard_builders import navigation_only_in_apptest, open_page, vote_as, world
from tests.eutils_server import FakeEutils, make_records


@pytest.fixture(autouse=True)
def _fresh_streamlit(monkeypatch: pytest.MonkeyPatch) -> None:
    st.cache_data.clear()
    st.cache_resource.clear()
    navigation_only_in_apptest(monkeypatch)


def listed(at: object) -> list[int]:
    return [int(p) for p in at.dataframe[0].value["pmid"]]  # type: ignore[attr-defined]


def labelled(widgets: object, label: str) -> object:
    return next(w for w in widgets if w.label == label)  # type: ignore[attr-defined]


# --- Studies ---------------------------------------------------------------------------------------


def test_search_uses_the_full_text_index_and_filters_narrow_it(db_url: str) -> None:
    world(db_url)
    at = open_page("studies", "vic")
    assert sorted(listed(at)) == [90000001, 90000002, 90000003, 90000004, 90000005, 90000006]
    at.text_input(key="studies_query").input("suicidal ideation").run()
    assert listed(at) == [90000002]
    at.text_input(key="studies_query").input("AMPA").run()  # a MeSH-free word of the abstract
    assert listed(at) == [90000006]
    at.text_input(key="studies_query").input("").run()
    at.selectbox(key="studies_standing").set_value("retracted").run()
    assert listed(at) == [90000004]
    at.selectbox(key="studies_standing").set_value("any").run()
    at.multiselect(key="studies_designs").set_value(["meta_analysis", "rct"]).run()
    assert sorted(listed(at)) == [90000001, 90000002]
    at.multiselect(key="studies_types").set_value(["Randomized Controlled Trial"]).run()
    assert listed(at) == [90000001]


@pytest.mark.parametrize(
    "text",
    [
        "90000002",
        " PMID: 90000002 ",
        "pmid90000002",
        "10.1016/j.jadr.2023.0002",
        "10.1016/J.JADR.2023.0002.",
        "doi:10.1016/j.jadr.2023.0002",
        "https://doi.org/10.1016%2Fj.jadr.2023.0002",
    ],
)
def test_a_pmid_or_doi_names_its_study(sqlite_url: str, text: str) -> None:
    world(sqlite_url)
    with open_session(sqlite_url) as session:
        assert named_study(session, text) == 90000002
        assert search_pmids(session, text)[0][0] == 90000002


def test_text_that_is_no_stored_identifier_names_no_study(sqlite_url: str) -> None:
    world(sqlite_url)
    with open_session(sqlite_url) as session:
        for text in ("12345", "10.1000/not-stored", "ketamine 90000002", "suicidal ideation"):
            assert named_study(session, text) is None
        assert [p for p, _ in search_pmids(session, "suicidal ideation")] == [90000002]


def test_studies_table_keeps_year_and_design_before_long_titles(sqlite_url: str) -> None:
    world(sqlite_url)
    at = open_page("studies", "vic")
    table = at.dataframe[0]
    assert list(table.value.columns[:4]) == ["pmid", "year", "design_label", "title"]
    config = json.loads(table.proto.columns)
    assert config["year"]["width"] == "small" and config["design_label"]["width"] == "medium"


def test_studies_search_finds_a_study_by_pmid_or_doi_first(db_url: str) -> None:
    world(db_url)
    at = open_page("studies", "vic")
    at.text_input(key="studies_query").input("PMID: 90000004").run()
    assert not at.exception
    assert listed(at)[0] == 90000004
    at.text_input(key="studies_query").input("https://doi.org/10.1016/j.jadr.2023.0002").run()
    assert listed(at)[0] == 90000002


def test_tagged_and_claim_filters(sqlite_url: str) -> None:
    world(sqlite_url)
    vote_as(sqlite_url, "rita", "suicidal-ideation", 90000002, StudyVerdict.SUPPORTED)
    at = open_page("studies", "vic")
    at.selectbox(key="studies_tagged").set_value("tagged").run()
    assert listed(at) == [90000002]
    at.selectbox(key="studies_tagged").set_value("untagged").run()
    assert 90000002 not in listed(at) and len(listed(at)) == 5
    claims = at.selectbox(key="studies_claim")
    rapid = list(claims.options).index("rapid-onset")
    claims.select_index(rapid).run()
    assert len(listed(at)) == 6  # nobody judged anything for rapid-onset


def test_a_search_that_matches_nothing_says_what_to_do(sqlite_url: str) -> None:
    world(sqlite_url)
    at = open_page("studies", "vic")
    at.text_input(key="studies_query").input('"no such phrase anywhere" OR"').run()
    assert not at.exception
    assert "Nothing matches" in at.info[0].value


def test_study_page_shows_metadata_links_and_every_assessment(sqlite_url: str) -> None:
    world(sqlite_url)
    vote_as(sqlite_url, "rita", "suicidal-ideation", 90000002, StudyVerdict.SUPPORTED)
    at = open_page("studies", "eve", studies_open=90000002)
    links = {b.label: b.proto.url for b in at.get("link_button")}
    assert links["PubMed"] == "https://pubmed.ncbi.nlm.nih.gov/90000002/"
    assert links["DOI"].startswith("https://doi.org/")
    text = "\n".join(m.value for m in at.markdown)
    assert "Ketamine and suicidal ideation" in text
    assert "**Design:** meta-analysis" in text
    assert "suicidal-ideation</b>" in text and "rita" in text
    assert "corrected" in at.warning[0].value


def test_text_from_the_data_is_escaped_never_markup(sqlite_url: str) -> None:
    world(sqlite_url)
    with open_session(sqlite_url) as session:
        article = session.get(Article, 90000003)
        assert article is not None
        article.title = "<script>alert('x')</script> *not bold* [link](javascript:alert(1))"
        session.commit()
    at = open_page("studies", "vic", studies_open=90000003)
    heading = next(m.value for m in at.markdown if "alert" in m.value)
    assert "<script>" not in heading
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in heading


# --- Harvest ---------------------------------------------------------------------------------------


def test_uploading_a_pubmed_file_imports_it(db_url: str) -> None:
    world(db_url)
    at = open_page("harvest", "eve")
    nbib = (TEST_DATA / "ketamine_sample.nbib").read_bytes()
    at.file_uploader(key="harvest_upload").upload("ketamine_sample.nbib", nbib, "text/plain").run()
    labelled(at.button, "Import the file").click().run()
    assert not at.exception
    assert "Imported ketamine\\_sample\\.nbib:" in at.success[0].value
    with open_session(db_url) as session:
        imports = session.scalar(select(func.count()).where(HarvestRun.kind == "import"))
        assert imports == 2  # the world's sample, then the upload
    assert len(at.dataframe[0].value) == 2


def test_uploading_our_json_lines_export_imports_it(sqlite_url: str) -> None:
    world(sqlite_url)
    at = open_page("harvest", "eve")
    exported = (TEST_DATA / "ketamine_export.jsonl").read_bytes()
    at.file_uploader(key="harvest_upload").upload("articles.jsonl", exported, "application/jsonl").run()
    labelled(at.button, "Import the file").click().run()
    assert not at.exception
    assert "Imported articles\\.jsonl:" in at.success[0].value
    with open_session(sqlite_url) as session:
        assert session.get(Article, 90000101) is not None  # a record of the export's .nbib half


def test_a_bad_upload_is_reported_in_words(sqlite_url: str) -> None:
    world(sqlite_url)
    at = open_page("harvest", "eve")
    at.file_uploader(key="harvest_upload").upload("notes.xml", b"<html><body>not PubMed</body></html>").run()
    labelled(at.button, "Import the file").click().run()
    assert not at.exception
    assert "notes.xml" in at.error[0].value.replace("\\", "")
    assert "/tmp" not in at.error[0].value  # the temporary path is not the user's business


def test_incremental_harvest_runs_with_progress(
    sqlite_url: str, server: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    world(sqlite_url)
    fake = FakeEutils(server, make_records(3))
    monkeypatch.setenv("EUTILS_BASE_URL", fake.base_url)
    at = open_page("harvest", "eve")
    labelled(at.button, "Start incremental harvest").click().run()
    assert not at.exception
    assert at.get("status")[0].label.startswith("Harvest finished: 3 new")
    with open_session(sqlite_url) as session:
        harvest = session.scalars(select(HarvestRun).where(HarvestRun.kind == "harvest")).one()
        assert (harvest.status, harvest.records_new) == ("succeeded", 3)


def test_a_failing_harvest_is_reported_in_words(
    sqlite_url: str, server: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    world(sqlite_url)
    # A 4xx answer (a wrong API key, say) is not retried, so the failure comes at once.
    server.expect_request(re.compile(r"/esearch\.fcgi$")).respond_with_data("API key invalid", status=400)
    monkeypatch.setenv("EUTILS_BASE_URL", server.url_for("/"))
    at = open_page("harvest", "eve")
    labelled(at.button, "Start incremental harvest").click().run()
    assert not at.exception
    assert at.get("status")[0].label == "The harvest failed"
    assert "400" in at.error[0].value
    assert "Traceback" not in at.error[0].value


def test_harvest_needs_a_contact_address(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    world(sqlite_url)
    monkeypatch.delenv("NCBI_EMAIL")
    at = open_page("harvest", "eve")
    assert "NCBI_EMAIL is not set" in at.warning[0].value
    assert labelled(at.button, "Start incremental harvest").disabled


def test_viewers_follow_runs_but_start_nothing(sqlite_url: str) -> None:
    world(sqlite_url)
    at = open_page("harvest", "vic")
    assert not [b for b in at.button if b.label in {"Start incremental harvest", "Import the file"}]
    assert not at.file_uploader
    assert len(at.dataframe[0].value) == 1  # the world's import


def test_a_low_confidence_design_is_confirmed_or_corrected_on_the_study_page(sqlite_url: str) -> None:
    world(sqlite_url)
    with open_session(sqlite_url) as session:
        for pmid in (90000001, 90000002):
            article = session.get(Article, pmid)
            assert article is not None
            article.design_confidence = 0.3  # a prefill the classifier was unsure of
        session.commit()

    viewer = open_page("studies", "vic", studies_open=90000001)
    assert "Low-confidence design" in viewer.warning[0].value
    assert not [b for b in viewer.button if b.label == "Confirm this design"]  # viewers do not assess

    at = open_page("studies", "rita", studies_open=90000001)
    labelled(at.button, "Confirm this design").click().run()
    assert not at.exception
    assert not [w for w in at.warning if "Low-confidence" in w.value]
    at = open_page("studies", "rita", studies_open=90000002)
    labelled(at.selectbox, "Design").set_value("observational").run()
    labelled(at.button, "Confirm this design").click().run()
    with open_session(sqlite_url) as session:
        corrections = session.execute(
            select(DesignCorrection.pmid, DesignCorrection.design, User.name).join(
                User, User.id == DesignCorrection.corrected_by_id
            )
        ).all()
    assert sorted((pmid, str(design), name) for pmid, design, name in corrections) == [
        (90000001, "rct", "rita"),
        (90000002, "observational", "rita"),
    ]
