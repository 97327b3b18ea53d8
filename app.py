"""Streamlit entry point: settings from secrets, database check, who is signed in, navigation by role."""

import os

import streamlit as st
from sqlalchemy.exc import OperationalError

from db.engine import describe_operational_error, init_db, open_session
from db.errors import DatabaseError, InvalidInputError
from db.review.roles import Action
from db.review.sources import ensure_seed_content
from db.settings import load_settings
from db.vocab import AuthMode
from pages._ui import USER_KEY, current_mode, current_user, inject_css, md_escape, warm_caches

SECRET_KEYS = ("DATABASE_URL", "NCBI_EMAIL", "NCBI_API_KEY", "EUTILS_BASE_URL", "DASHBOARD_AUTH")


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
    warm_caches(url)


st.set_page_config(page_title="Ketamine Evidence", page_icon="🔬", layout="wide")
_export_secrets()
try:
    _prepare_database(load_settings().database_url)
except DatabaseError as exc:
    st.error(str(exc))
    st.stop()
try:
    mode = current_mode()
except InvalidInputError as exc:
    st.error(str(exc))
    st.stop()
inject_css()


def _pages() -> list[st.Page]:
    user = current_user()
    if user is None:
        return [st.Page("pages/sign_in.py", title="Sign in", icon=":material/login:", default=True)]
    # Only the pages this role can use are offered; each page checks again, and db/ refuses anyway.
    pages = [
        st.Page("pages/overview.py", title="Overview", icon=":material/dashboard:", default=True),
        st.Page("pages/claims.py", title="Claims", icon=":material/fact_check:"),
    ]
    if user.can(Action.ASSESS):
        pages.append(st.Page("pages/review.py", title="Review", icon=":material/rate_review:"))
    pages.append(st.Page("pages/studies.py", title="Studies", icon=":material/menu_book:"))
    if user.can(Action.SIGN_OFF):
        pages.append(st.Page("pages/editor.py", title="Editor", icon=":material/approval:"))
    pages.append(st.Page("pages/harvest.py", title="Harvest", icon=":material/cloud_download:"))
    if user.can(Action.MANAGE_CLAIMS):
        pages.append(st.Page("pages/articles.py", title="Articles", icon=":material/article:"))
    if user.can(Action.MANAGE_USERS):
        pages.append(st.Page("pages/team.py", title="Team", icon=":material/group:"))

    with st.sidebar:
        st.markdown(f"Signed in as **{md_escape(user.name)}** · {user.role.value}")
        if st.button("Sign out", icon=":material/logout:", key="sign_out"):
            st.session_state.pop(USER_KEY, None)
            if mode is AuthMode.OIDC:
                st.logout()
            st.rerun()
    return pages


try:
    st.navigation(_pages()).run()
except (DatabaseError, OperationalError) as exc:
    # The database went away after start (server stopped, disk full, file locked): say so in
    # words; the next run after it is back works again, as nothing is cached in a broken state.
    url = load_settings().database_url
    st.error(describe_operational_error(url, exc) if isinstance(exc, OperationalError) else str(exc))
