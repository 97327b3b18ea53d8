"""Corpus: what the harvest has gathered, with a search over titles and abstracts."""

from typing import Any

import streamlit as st

from db.articles import corpus_summary, search_articles
from db.engine import open_session
from db.runs import recent_runs
from db.settings import load_settings

PAGE_SIZE = 200


@st.cache_data(ttl=60)
def load_summary(db_url: str) -> dict[str, Any]:
    with open_session(db_url) as session:
        summary = corpus_summary(session)
        runs = recent_runs(session, limit=1)
    return {"summary": summary.__dict__, "last_run": runs[0] if runs else None}


@st.cache_data(ttl=60)
def load_articles(db_url: str, text: str) -> list[dict[str, Any]]:
    with open_session(db_url) as session:
        rows = search_articles(session, text, limit=PAGE_SIZE)
    for row in rows:
        row["publication_types"] = ", ".join(row["publication_types"] or [])
        row["retraction_status"] = row["retraction_status"] or ""
    return rows


db_url = load_settings().database_url
st.title("Corpus")
overview = load_summary(db_url)
summary = overview["summary"]

if summary["articles"] == 0:
    st.info(
        "The database holds no articles yet. Harvest PubMed with `ketamine-evidence harvest` "
        "(set NCBI_EMAIL first) or import a PubMed file with `ketamine-evidence import FILE`."
    )
    st.stop()

columns = st.columns(4)
columns[0].metric("Articles", f"{summary['articles']:,}")
columns[1].metric("With abstract", f"{summary['with_abstract']:,}")
columns[2].metric("Retracted or under concern", f"{summary['retracted']:,}")
columns[3].metric(
    "Years", f"{summary['oldest_year']}–{summary['newest_year']}" if summary["newest_year"] else "–"
)
last_run = overview["last_run"]
if last_run:
    st.caption(
        f"Last {last_run['kind']}: {last_run['started_at']:%Y-%m-%d %H:%M} UTC, {last_run['status']}, "
        f"{last_run['records_new']:,} new, {last_run['records_updated']:,} updated."
    )

query = st.text_input("Search titles and abstracts", placeholder="e.g. esketamine suicidal")
rows = load_articles(db_url, query.strip())
st.caption(f"{len(rows):,} shown" + (" (first 200)" if len(rows) == PAGE_SIZE else ""))
st.dataframe(
    rows,
    hide_index=True,
    use_container_width=True,
    column_config={
        "pmid": st.column_config.NumberColumn("PMID", format="%d"),
        "title": st.column_config.TextColumn("Title", width="large"),
        "journal": "Journal",
        "pub_year": st.column_config.NumberColumn("Year", format="%d"),
        "publication_types": "Publication types",
        "retraction_status": "Status",
        "doi": "DOI",
    },
)
