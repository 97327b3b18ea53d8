"""The dashboard's entry point: sign-in in each mode, pages offered by role, database errors (AppTest)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import streamlit as st
from sqlalchemy.engine import make_url
from streamlit.testing.v1 import AppTest

from db.engine import engine_for, open_session
from db.review.auth import set_password
from db.review.roles import get_user
from tests.dashboard_builders import add_team, navigation_only_in_apptest

APP = "../app.py"
USER_KEY = "signed_in_user"


@pytest.fixture(autouse=True)
def _clear_streamlit_caches(monkeypatch: pytest.MonkeyPatch) -> None:
    # Streamlit caches are process-wide and survive between AppTest runs.
    st.cache_data.clear()
    st.cache_resource.clear()
    navigation_only_in_apptest(monkeypatch)


@pytest.fixture
def team(sqlite_url: str) -> str:
    with open_session(sqlite_url) as session:
        add_team(session)
        session.commit()
    return sqlite_url


def signed_in(name: str | None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    if name is not None:
        at.session_state[USER_KEY] = name
    return at.run()


def test_first_run_offers_to_create_the_first_admin(sqlite_url: str) -> None:
    at = signed_in(None)
    assert not at.exception
    assert at.title[0].value == "Sign in"
    assert "Create the first user" in at.info[0].value
    at.text_input[0].input("ada")
    at.button[0].click().run()
    assert not at.exception
    assert at.title[0].value == "Overview"
    assert "Signed in as **ada** · admin" in at.sidebar.markdown[0].value
    with open_session(sqlite_url) as session:
        assert get_user(session, "ada").role == "admin"


def test_local_mode_picks_a_reviewer_and_reads_the_role_from_the_database(team: str) -> None:
    at = signed_in(None)
    at.selectbox[0].select("rita")
    at.button[0].click().run()
    assert not at.exception
    assert at.session_state[USER_KEY] == "rita"
    assert "rita** · reviewer" in at.sidebar.markdown[0].value


@pytest.mark.parametrize(
    ("name", "offered", "not_offered"),
    [
        ("vic", ["overview", "claims", "studies", "harvest"], ["review", "editor", "articles", "team"]),
        ("rita", ["review"], ["editor", "articles", "team"]),
        ("eve", ["review", "editor", "articles"], ["team"]),
        ("ada", ["review", "editor", "articles", "team"], []),
    ],
)
def test_pages_are_offered_by_role(team: str, name: str, offered: list[str], not_offered: list[str]) -> None:
    at = signed_in(name)
    for page in offered:
        at.switch_page(f"pages/{page}.py").run()
        assert not at.exception, page
    for page in not_offered:
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            at.switch_page(f"pages/{page}.py")


def test_sign_out_returns_to_the_sign_in_page(team: str) -> None:
    at = signed_in("eve")
    at.sidebar.button(key="sign_out").click().run()
    assert not at.exception
    assert at.title[0].value == "Sign in"
    assert USER_KEY not in at.session_state


def test_a_deactivated_or_unknown_name_in_the_session_is_not_signed_in(team: str) -> None:
    at = signed_in("mallory")
    assert at.title[0].value == "Sign in"


def test_password_mode_signs_in_only_with_the_right_password(
    team: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DASHBOARD_AUTH", "password")
    with open_session(team) as session:
        set_password(session, get_user(session, "ada"), "rita", "correct horse battery")
        session.commit()
    at = signed_in(None)
    at.text_input[0].input("rita")
    at.text_input[1].input("wrong password!")
    at.button[0].click().run()
    assert "do not match" in at.error[0].value
    assert USER_KEY not in at.session_state
    at.text_input[1].input("correct horse battery")
    at.button[0].click().run()
    assert not at.exception
    assert at.session_state[USER_KEY] == "rita"
    assert at.title[0].value == "Overview"


def test_password_mode_says_what_it_means_and_throttles_wrong_passwords(
    team: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DASHBOARD_AUTH", "password")
    with open_session(team) as session:
        set_password(session, get_user(session, "ada"), "rita", "correct horse battery")
        session.commit()
    at = signed_in(None)
    captions = " ".join(c.value for c in at.caption)
    assert "Password mode" in captions and "a reload or a new tab asks again" in captions
    at.text_input[0].input("rita")
    for _ in range(5):
        at.text_input[1].input("wrong password!")
        at.button[0].click().run()
        assert "do not match" in at.error[0].value
    at.text_input[1].input("correct horse battery")
    at.button[0].click().run()
    assert not at.exception
    assert re.fullmatch(r"Too many wrong passwords for rita; try again in \d+ s\.", at.error[0].value)
    assert USER_KEY not in at.session_state


def test_local_mode_says_anyone_can_pick_any_name(team: str) -> None:
    at = signed_in(None)
    assert "anyone who reaches this page can pick any name" in " ".join(c.value for c in at.caption)


def test_password_mode_first_admin_sets_a_password(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DASHBOARD_AUTH", "password")
    at = signed_in(None)
    at.text_input[0].input("ada")
    at.text_input[1].input("short")
    at.text_input[2].input("short")
    at.button[0].click().run()
    assert "at least 10 characters" in at.error[0].value
    at.text_input[1].input("a long enough phrase")
    at.text_input[2].input("a long enough phrase")
    at.button[0].click().run()
    assert not at.exception
    assert at.session_state[USER_KEY] == "ada"


def test_oidc_mode_uses_the_login_identity_and_the_database_role(team: str) -> None:
    with open_session(team) as session:
        from db.review.roles import add_user
        from db.vocab import Role

        add_user(session, get_user(session, "ada"), "eve@example.org", Role.EDITOR)
        session.commit()
    secrets = {"auth": {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x"}}
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets = secrets
    at.user = {"is_logged_in": False}
    at.run()
    assert at.title[0].value == "Sign in"
    assert at.button[0].label == "Log in"

    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets = secrets
    at.user = {"is_logged_in": True, "email": "eve@example.org"}
    at.run()
    assert not at.exception
    assert "eve@example\\.org** · editor" in at.sidebar.markdown[0].value
    at.switch_page("pages/editor.py").run()
    assert not at.exception

    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets = secrets
    at.user = {"is_logged_in": True, "email": "stranger@example.org"}
    at.run()
    assert "Ask an admin to add you" in at.warning[0].value


def test_a_mistyped_sign_in_mode_is_reported_in_words(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DASHBOARD_AUTH", "passwd")
    at = signed_in(None)
    assert not at.exception
    assert "DASHBOARD_AUTH='passwd' is not a sign-in mode" in at.error[0].value


def test_app_reports_an_unusable_database_in_words(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert not at.exception
    assert "Cannot reach the database" in at.error[0].value


def test_a_database_lost_after_start_is_reported_in_words(team: str, tmp_path: Path) -> None:
    at = signed_in("eve")
    assert at.title[0].value == "Overview"
    database = Path(make_url(team).database or "")
    engine_for(team).dispose()
    database.rename(tmp_path / "moved.sqlite3")  # SQLite then opens a new, empty file: no tables
    st.cache_data.clear()
    at.run()
    assert not at.exception
    assert "Database error" in at.error[0].value and "no such table" in at.error[0].value
