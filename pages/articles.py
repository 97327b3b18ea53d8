"""Articles: add an article to check (paste or upload text or Markdown) and accept, edit or reject the
claims the system proposes from its sentences."""

import streamlit as st

from db.engine import open_session
from db.errors import ReviewError
from db.read.choices import suggest_claim_key
from db.review.roles import Action, get_user
from db.review.sources import accept_proposal, add_document, get_document, reject_proposal, store_proposals
from pages import _data as data
from pages._ui import db_url, escape, html_block, require_user

user = require_user(Action.MANAGE_CLAIMS, "adding articles and their claims")
url = db_url()
st.title("Articles")

flash = st.session_state.pop("articles_flash", None)
if flash:
    st.success(flash)

with st.expander("Add an article to check", expanded=not data.documents(url)), st.form("add_article"):
    title = st.text_input("Title")
    cols = st.columns(3)
    author = cols[0].text_input("Author (optional)")
    outlet = cols[1].text_input("Outlet (optional)")
    link = cols[2].text_input("URL (optional)")
    pasted = st.text_area("Full text (paste plain text or Markdown)", height=220)
    uploaded = st.file_uploader("…or upload a .txt or .md file", type=["txt", "md", "markdown"])
    blind = st.checkbox("Blind mode (reviewers see others' verdicts only after their own)", value=True)
    if st.form_submit_button("Add the article and propose its claims", type="primary"):
        text = uploaded.getvalue().decode("utf-8", errors="replace") if uploaded is not None else pasted
        with open_session(url) as session:
            try:
                actor = get_user(session, user.name)
                document = add_document(
                    session,
                    actor,
                    title=title,
                    text=text,
                    author=author or None,
                    outlet=outlet or None,
                    url=link or None,
                    blind_mode=blind,
                )
                found = store_proposals(session, actor, document)
                session.commit()
            except ReviewError as exc:
                session.rollback()
                st.error(str(exc))
            else:
                data.after_claims_change()
                st.session_state.articles_flash = (
                    f"Added “{document.title}” with {len(found)} proposed claims to review below."
                )
                st.session_state.articles_document = document.id
                st.rerun()

docs = data.documents(url)
if not docs:
    st.info(
        "No article yet: add one above. Its claim-like sentences are proposed for you to accept or reject."
    )
    st.stop()
ids = [d.id for d in docs]
if st.session_state.get("articles_document") not in ids:
    st.session_state.articles_document = ids[-1]
by_id = {d.id: d for d in docs}
doc_id = st.selectbox("Article", ids, format_func=lambda i: by_id[i].title, key="articles_document")
document = by_id[doc_id]

claims = data.claim_choices(url, doc_id)
st.caption(f"{len(claims)} accepted claims · status {document.status.replace('_', ' ')}")
pending = data.proposals(url, doc_id)
st.subheader(f"Proposed claims ({len(pending)})")
if not pending:
    st.caption("Nothing waits: every proposed sentence was accepted or rejected.")
    if st.button("Look for claim-like sentences again"):
        with open_session(url) as session:
            try:
                found = store_proposals(
                    session, get_user(session, user.name), get_document(session, document.slug)
                )
                session.commit()
            except ReviewError as exc:
                session.rollback()
                st.error(str(exc))
            else:
                data.after_claims_change()
                st.session_state.articles_flash = f"{len(found)} new proposals."
                st.rerun()

taken = {c.key for c in claims} | {c.key for c in data.claim_choices(url)}
for proposal in pending:
    with st.container(border=True):
        html_block(
            f"<p>{escape(proposal['sentence'])}</p><p><small>cues: {escape(', '.join(proposal['cues']))}</small></p>"
        )
        with st.form(f"proposal-{proposal['id']}"):
            cols = st.columns([2, 5])
            key = cols[0].text_input("Key", value=suggest_claim_key(proposal["sentence"], taken))
            statement = cols[1].text_input("Claim as the editor checks it", value=proposal["sentence"])
            buttons = st.columns([1, 1, 4])
            accept = buttons[0].form_submit_button("Accept", type="primary")
            reject = buttons[1].form_submit_button("Reject")
            if accept or reject:
                with open_session(url) as session:
                    try:
                        actor = get_user(session, user.name)
                        if accept:
                            accept_proposal(
                                session, actor, proposal["id"], key=key.strip(), statement=statement
                            )
                        else:
                            reject_proposal(session, actor, proposal["id"], "rejected on the Articles page")
                        session.commit()
                    except ReviewError as exc:
                        session.rollback()
                        st.error(str(exc))
                    else:
                        data.after_claims_change()
                        st.session_state.articles_flash = (
                            f"Accepted claim {key.strip()}." if accept else "Rejected the proposal."
                        )
                        st.rerun()
