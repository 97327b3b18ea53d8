"""Sign in: pick a reviewer (local), a password (shared, no OIDC), or the OIDC provider (st.login).

The first run of an empty database offers to create the first admin, who then adds the team.
"""

import streamlit as st

from db.engine import open_session
from db.errors import ReviewError, SignInThrottled
from db.review.auth import active_user, active_user_names, authenticate, create_first_admin, user_count
from db.vocab import AuthMode
from pages._data import after_users_change
from pages._ui import USER_KEY, client_address, current_mode, db_url, signed_in_name

url = db_url()
mode = current_mode()
st.title("Sign in")
MODE_MEANING = {
    AuthMode.LOCAL: (
        "**Local mode**: anyone who reaches this page can pick any name, with no password. "
        "Fine on one machine you trust; a shared server should use passwords or OIDC (README, *Signing in*)."
    ),
    AuthMode.PASSWORD: (
        "**Password mode**: each person signs in with their own password, set by an admin on the Team page. "
        "After 5 wrong passwords in a row for a name, that name waits before it may try again."
    ),
    AuthMode.OIDC: (
        "**OIDC mode**: you sign in with your organisation's account; "
        "your role still comes from this dashboard's team list."
    ),
}
st.caption(MODE_MEANING[mode])
st.caption(
    "The login is kept in a cookie: a reload or a new tab keeps you signed in."
    if mode is AuthMode.OIDC
    else "Signing in lasts for this browser tab: a reload or a new tab asks again."
)

with open_session(url) as session:
    nobody_yet = user_count(session) == 0
    names = active_user_names(session)


def _sign_in(name: str) -> None:
    st.session_state[USER_KEY] = name
    st.rerun()


def _first_admin(name: str, password: str | None) -> None:
    with open_session(url) as session:
        try:
            user = create_first_admin(session, name, password)
            session.commit()
        except ReviewError as exc:
            session.rollback()
            st.error(str(exc))
            return
        created = user.name
    after_users_change()
    if mode is not AuthMode.OIDC:
        _sign_in(created)
    st.rerun()


if mode is AuthMode.OIDC:
    if not st.user.is_logged_in:
        st.write("This dashboard signs you in with your organisation's account.")
        if st.button("Log in", type="primary", icon=":material/login:"):
            st.login()
        st.stop()
    email = signed_in_name(mode) or ""
    with open_session(url) as session:
        known = active_user(session, email) is not None
    if nobody_yet:
        st.info(f"Nobody uses this database yet. Create the first admin as **{email}**, then add your team.")
        if st.button("Create me as the first admin", type="primary"):
            _first_admin(email, None)
    elif not known:
        st.warning(
            f"You are logged in as {email}, but no active user of that name exists here. "
            "Ask an admin to add you on the Team page under exactly this e-mail address."
        )
    if st.button("Log out"):
        st.logout()
    st.stop()

if nobody_yet:
    st.info("Nobody uses this database yet. Create the first user: an admin, who can then add the team.")
    with st.form("first_admin"):
        name = st.text_input("Your name", max_chars=100)
        password = None
        if mode is AuthMode.PASSWORD:
            password = st.text_input("Password (10 characters or more)", type="password")
            again = st.text_input("Password again", type="password")
        if st.form_submit_button("Create the first admin", type="primary"):
            if mode is AuthMode.PASSWORD and password != again:
                st.error("The two passwords differ; type the same password twice.")
            else:
                _first_admin(name, password)
    st.stop()

if mode is AuthMode.LOCAL:
    st.write("Pick who you are. Your role comes from the team list; an admin changes it on the Team page.")
    with st.form("pick_reviewer"):
        name = st.selectbox("Reviewer", names, index=None, placeholder="Choose your name")
        if st.form_submit_button("Continue", type="primary"):
            if name:
                _sign_in(name)
            else:
                st.error("Choose your name first, or ask an admin to add you.")
else:
    with st.form("password_sign_in"):
        name = st.text_input("Name")
        password = st.text_input("Password", type="password")
        if st.form_submit_button("Sign in", type="primary"):
            with open_session(url) as session:
                try:
                    user = authenticate(session, name, password, client=client_address())
                except SignInThrottled as exc:
                    st.error(str(exc))
                    st.stop()
            if user is None:
                # One message for every failure: it must not tell which names exist.
                st.error("That name and password do not match an active user. Check both, or ask an admin.")
            else:
                _sign_in(user.name)
