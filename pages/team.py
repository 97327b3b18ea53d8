"""Team (admins): who may use the dashboard, their roles, and their passwords in password mode."""

import pandas as pd
import streamlit as st

from db.engine import open_session
from db.errors import ReviewError
from db.review.auth import set_password
from db.review.roles import Action, add_user, deactivate_user, get_user, set_role
from db.vocab import AuthMode, Role
from pages import _data as data
from pages._ui import current_mode, db_url, require_user

ROLE_HELP = {
    Role.ADMIN.value: "everything, including the team",
    Role.EDITOR.value: "claims, conflicts, sign-off, harvests; can also review",
    Role.REVIEWER.value: "tags studies (their own assessments only)",
    Role.VIEWER.value: "reads",
}

user = require_user(Action.MANAGE_USERS, "managing the team")
url = db_url()
mode = current_mode()
st.title("Team")
st.caption(f"Sign-in mode: {mode.value} (see the README, “Signing in”).")

flash = st.session_state.pop("team_flash", None)
if flash:
    st.success(flash)


def _act(action, success: str) -> None:  # noqa: ANN001
    with open_session(url) as session:
        try:
            action(session, get_user(session, user.name))
            session.commit()
        except ReviewError as exc:
            session.rollback()
            st.error(str(exc))
            return
    data.after_users_change()
    st.session_state.team_flash = success
    st.rerun()


people = data.users(url)
st.dataframe(
    pd.DataFrame(people).rename(columns={"password": "has password"}),
    hide_index=True,
    width="stretch",
    column_config={"since": st.column_config.DatetimeColumn("since", format="YYYY-MM-DD")},
)
roles = [r.value for r in Role]
names = [p["name"] for p in people]

add, change = st.columns(2, gap="large")
with add, st.form("add_user", clear_on_submit=True):
    st.subheader("Add someone")
    name = st.text_input(
        "Name" if mode is not AuthMode.OIDC else "E-mail address (as the OIDC provider gives it)"
    )
    role = st.selectbox(
        "Role", roles, index=roles.index("reviewer"), format_func=lambda r: f"{r} — {ROLE_HELP[r]}"
    )
    password = (
        st.text_input("Password (password mode)", type="password") if mode is AuthMode.PASSWORD else None
    )
    if st.form_submit_button("Add", type="primary"):

        def _add(session, actor):  # noqa: ANN001, ANN202
            added = add_user(session, actor, name, Role(role))
            if password:
                set_password(session, actor, added.name, password)

        _act(_add, f"Added {name} as {role}.")

with change, st.form("change_user"):
    st.subheader("Change someone")
    who = st.selectbox("Person", names)
    new_role = st.selectbox("New role", roles, format_func=lambda r: f"{r} — {ROLE_HELP[r]}")
    new_password = (
        st.text_input("New password (password mode)", type="password") if mode is AuthMode.PASSWORD else None
    )
    cols = st.columns(3)
    if cols[0].form_submit_button("Set role"):
        _act(
            lambda s, a: set_role(s, a, who, Role(new_role), "changed on the Team page"),
            f"{who} is now {new_role}.",
        )
    if mode is AuthMode.PASSWORD and cols[1].form_submit_button("Set password"):
        _act(lambda s, a: set_password(s, a, who, new_password or ""), f"Password of {who} set.")
    if cols[2].form_submit_button("Deactivate"):
        _act(
            lambda s, a: deactivate_user(s, a, who, "deactivated on the Team page"), f"{who} is deactivated."
        )
