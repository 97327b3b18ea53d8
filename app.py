"""Streamlit entry point: settings from secrets, database check, navigation. Pages do the rest."""

import os

import streamlit as st

from db.engine import DatabaseError, init_db, open_session
from db.settings import load_settings
from db.sources import ensure_seed_content

SECRET_KEYS = ("DATABASE_URL", "NCBI_EMAIL", "NCBI_API_KEY", "EUTILS_BASE_URL")


def _export_secrets() -> None:
    # Shared deployments keep credentials in .streamlit/secrets.toml; the environment wins.
    try:
        secrets = {key: str(st.secrets[key]) for key in SECRET_KEYS if key in st.secrets}
    except (FileNotFoundError, st.errors.StreamlitSecretNotFoundError):
        secrets = {}
    for key, value in secrets.items():
        os.environ.setdefault(key, value)


@st.cache_resource
def _prepare_database(url: str) -> None:
    init_db(url)
    with open_session(url) as session:
        ensure_seed_content(session)  # the article under review, on first start
        session.commit()


st.set_page_config(page_title="Ketamine Evidence", page_icon="🔬", layout="wide")
_export_secrets()
try:
    _prepare_database(load_settings().database_url)
except DatabaseError as exc:
    st.error(str(exc))
    st.stop()

page = st.navigation([st.Page("pages/corpus.py", title="Corpus", icon="📚", default=True)])
page.run()
