"""Editor: the sign-off checklist of an article, conflicts to resolve, sign-off with a rationale,
the audit trail, and the exports (claim report, citations, ClaimReview JSON-LD) as downloads."""

import io
from collections.abc import Callable

import pandas as pd
import streamlit as st
from sqlmodel import Session

from db.engine import open_session
from db.errors import ReviewError
from db.exports.audit import write_audit
from db.exports.citations import bibtex, evidence_citations, ris
from db.exports.claimreview import claimreview_jsonld, write_claimreview
from db.exports.claims import claim_reports, write_claims
from db.exports.formats import ExportFormat
from db.models import Claim
from db.read.cards import ClaimCard
from db.read.editor import signoff_checklist
from db.review.claims import get_claim
from db.review.pairs import resolve_conflict
from db.review.rating import matching_ratings, rating_label
from db.review.roles import Action, get_user
from db.review.signoff import sign_off
from db.review.sources import set_blind_mode, set_document_status
from db.vocab import DocumentStatus, Rating, SignOffDecision, StudyVerdict
from pages import _data as data
from pages._ui import (
    VERDICT_LABELS,
    badge,
    db_url,
    escape,
    html_block,
    md_escape,
    require_user,
    standing_html,
    verdict_cells,
)

CONFLICTS_PER_PAGE = 10
DECISIONS = {
    SignOffDecision.OK_TO_PUBLISH.value: "OK to publish",
    SignOffDecision.REVISE_WORDING.value: "Revise the wording",
    SignOffDecision.REMOVE_CLAIM.value: "Remove the claim",
}

user = require_user(Action.SIGN_OFF, "signing claims off")
url = db_url()
st.title("Editor")

docs = data.documents(url)
if not docs:
    st.info("No article to sign off yet. Add one on the **Articles** page.")
    st.stop()
docs_by_id = {d.id: d for d in docs}
# Options are ids and keys, not the dataclasses: those change with every write and would lose the selection.
document = docs_by_id[
    st.selectbox(
        "Article",
        list(docs_by_id),
        format_func=lambda i: docs_by_id[i].title,
        key="editor_document",
        disabled=len(docs) == 1,
    )
]
cards = data.claim_cards(url, user.name, document.id, "graded")
conflict_total = sum(c.conflicts for c in cards)


def _write(action: Callable[..., object], *args: object, success: str, after: Callable[[], None]) -> None:
    """Run one editor action as one transaction; errors in words, never a traceback."""
    with open_session(url) as session:
        try:
            action(session, get_user(session, user.name), *args)
            session.commit()
        except ReviewError as exc:
            session.rollback()
            st.error(str(exc))
            return
    after()
    st.session_state.editor_flash = success
    st.rerun()


def _claim(session: Session, claim_id: int) -> Claim:
    claim = session.get(Claim, claim_id)
    assert claim is not None
    return claim


flash = st.session_state.pop("editor_flash", None)
if flash:
    st.success(flash)

# The open tab is remembered by name, not by label: "Conflicts (n)" changes with every resolution,
# and a stateless st.tabs is remounted (back on Checklist) whenever the flash above it comes or goes.
if "editor_tab" not in st.session_state:
    st.session_state.editor_tab = "Checklist"
tab_labels = {
    "Checklist": "Checklist",
    "Conflicts": f"Conflicts ({conflict_total})",
    "Sign off": "Sign off",
    "Audit trail": "Audit trail",
    "Exports": "Exports",
}
tabs = st.tabs(
    list(tab_labels.values()),
    default=tab_labels.get(st.session_state.editor_tab, "Checklist"),
    key="editor_tabs",
    on_change="rerun",
)
st.session_state.editor_tab = next(name for name, tab in zip(tab_labels, tabs, strict=True) if tab.open)
checklist_tab, conflicts_tab, signoff_tab, audit_tab, exports_tab = tabs

with checklist_tab:
    items = signoff_checklist(cards)
    for item in items:
        mark = ":material/check_circle:" if item.done else ":material/radio_button_unchecked:"
        st.markdown(f"{mark} {item.label}" + (f" — {md_escape(item.detail)}" if item.detail else ""))
    st.caption(
        f"Article status: {document.status.label}. Blind mode is {'on' if document.blind_mode else 'off'}."
    )
    ready = all(item.done for item in items) and bool(cards)
    manage = user.can(Action.MANAGE_CLAIMS)
    offer_ready = manage and ready and document.status != DocumentStatus.READY_TO_PUBLISH.value
    if offer_ready and st.button("Mark the article ready to publish", type="primary"):
        _write(
            lambda s, a: set_document_status(
                s, a, document.slug, DocumentStatus.READY_TO_PUBLISH, "checklist complete"
            ),
            success="The article is marked ready to publish.",
            after=data.after_claims_change,
        )
    if manage:
        blind = st.toggle(
            "Blind mode for this article",
            value=document.blind_mode,
            key=f"blind-{document.id}",
            help="Reviewers see others' verdicts on a study only after recording their own.",
        )
        if blind != document.blind_mode:
            _write(
                lambda s, a: set_blind_mode(s, a, document.slug, blind, "changed on the Editor page"),
                success=f"Blind mode is now {'on' if blind else 'off'}.",
                after=data.after_claims_change,
            )
    if cards:
        st.dataframe(
            verdict_cells(
                pd.DataFrame(
                    {
                        "claim": c.key,
                        "verdict": VERDICT_LABELS.get(c.verdict, c.verdict) if c.verdict else "",
                        "certainty": c.certainty_label,
                        "standing": c.standing.label,
                        "awaiting a second vote": c.standing.awaiting_second_vote,
                        "judged": c.judged,
                        "conflicts": c.conflicts,
                        "sign-off": c.signoff.decision.label if c.signoff else "",
                        "rating": c.signoff.rating.label if c.signoff and c.signoff.rating else "",
                        "signed by": (c.signoff.signed_by or "") if c.signoff else "",
                        "evidence changed since": bool(c.signoff and c.signoff.evidence_changed),
                    }
                    for c in cards
                ),
                "verdict",
                [c.verdict for c in cards],
            ),
            hide_index=True,
            width="stretch",
        )

with conflicts_tab:
    if conflict_total == 0:
        st.success("No open conflicts: reviewers agree on every study they judged, or an editor resolved it.")
    else:
        by_id = {c.id: c for c in cards}
        scope = st.selectbox(
            "Claim",
            [None, *[c.id for c in cards if c.conflicts]],
            format_func=lambda i: "All claims" if i is None else f"{by_id[i].key} ({by_id[i].conflicts})",
            key="editor_conflict_claim",
        )
        page = st.number_input("Page", min_value=1, step=1, key="editor_conflict_page")
        found = data.conflicts(
            url, user.name, scope, CONFLICTS_PER_PAGE, (int(page) - 1) * CONFLICTS_PER_PAGE
        )
        st.caption(f"{found.total:,} open conflicts; resolving one keeps the reviewers' votes as they are.")
        verdicts = [v.value for v in StudyVerdict]
        for row in found.rows:
            study = row.study
            with st.container(border=True):
                votes = "".join(
                    f"<li>{escape(v.reviewer)}: {badge(v.verdict)}"
                    + (f' <span class="ke-quote">“{escape(v.quote)}”</span>' if v.quote else "")
                    + (f" — {escape(v.note)}" if v.note else "")
                    + "</li>"
                    for v in study.votes
                )
                reopened = (
                    " <i>(reopened: the votes changed after an earlier resolution)</i>"
                    if study.reopened
                    else ""
                )
                html_block(
                    f"<p><b>{escape(row.claim_key)}</b> · PMID {study.pmid} · {escape(study.title)}{reopened}</p>"
                    f'<ul class="ke-votes">{votes}</ul>'
                )
                with st.form(f"resolve-{row.claim_id}-{study.pmid}"):
                    cols = st.columns([2, 5, 1])
                    # No verdict preselected: a default would let one click settle a disagreement
                    # the editor never weighed. (A form's button cannot follow the selection until it is
                    # pressed, so a press without a choice is refused in words instead of disabled.)
                    final = cols[0].selectbox(
                        "Final verdict",
                        verdicts,
                        index=None,
                        placeholder="Choose the final verdict",
                        format_func=VERDICT_LABELS.__getitem__,
                    )
                    reason = cols[1].text_input(
                        "Reason", placeholder="Why this verdict (kept with the votes)"
                    )
                    pressed = cols[2].form_submit_button("Resolve", type="primary")
                    if pressed and final is None:
                        st.error(
                            f"Choose a final verdict for PMID {study.pmid} before resolving: "
                            "none is chosen for you."
                        )
                    elif pressed:
                        _write(
                            lambda s, a, claim_id=row.claim_id, pmid=study.pmid, final=final, reason=reason: (
                                resolve_conflict(s, a, _claim(s, claim_id), pmid, final, reason)
                            ),
                            success=f"Resolved PMID {study.pmid} for {row.claim_key} as {StudyVerdict(final).label}.",
                            after=data.after_resolution,
                        )


with signoff_tab:
    if not cards:
        st.info("This article has no active claims to sign off.")
    else:
        cards_by_key = {c.key: c for c in cards}
        chosen_key = st.selectbox(
            "Claim",
            list(cards_by_key),
            format_func=lambda k: (
                f"{k} — {VERDICT_LABELS.get(cards_by_key[k].verdict, '')}"
                + (" (provisional)" if cards_by_key[k].standing.provisional else "")
            ),
            key="editor_signoff_claim",
        )
        chosen: ClaimCard = cards_by_key[chosen_key]
        html_block(
            f"<p><b>{escape(chosen.statement)}</b></p><p>{badge(chosen.verdict)} "
            f"{standing_html(chosen.standing)} certainty: <b>{escape(chosen.certainty_label)}</b></p>"
        )
        st.write(chosen.reasoning)
        if chosen.rests_on_weak_studies:
            st.warning(
                f"High-certainty designs alone say {chosen.high_certainty_verdict.label}: the verdict rests on weaker studies."
            )
        if chosen.signoff is not None:
            s = chosen.signoff
            st.caption(
                md_escape(
                    f"Last sign-off: {s.decision.label}"
                    + (f", rated {s.rating.label}" if s.rating else "")
                    + f" by {s.signed_by} on {s.signed_at:%Y-%m-%d %H:%M} UTC "
                    f"(verdict then: {s.verdict.label}, certainty {s.strength.label}). Rationale: {s.rationale}"
                )
            )
            if s.evidence_changed:
                st.warning("Evidence changed since: " + md_escape("; ".join(s.changes)))
        if chosen.conflicts:
            st.info(f"{chosen.conflicts} open conflict(s): resolve them before signing off as OK to publish.")
        matching = matching_ratings(chosen.verdict)
        with st.form(f"signoff-{chosen.key}"):
            decision = st.radio(
                "Decision", list(DECISIONS), format_func=DECISIONS.__getitem__, horizontal=True
            )
            rating = st.selectbox(
                "Rating to publish",
                [r.value for r in Rating],
                index=[r.value for r in Rating].index(matching[0].value),
                format_func=lambda r: (
                    rating_label(r) + (" (matches the verdict)" if Rating(r) in matching else "")
                ),
                help="What the ClaimReview says about the claim as worded (6 accurate … 1 inaccurate). "
                "A rating the derived verdict does not match needs a rationale saying why.",
            )
            rationale = st.text_area(
                "Rationale", placeholder="Why, in a sentence or two; it is kept with the decision."
            )
            if st.form_submit_button("Sign off", type="primary"):
                _write(
                    lambda s, a: sign_off(s, a, get_claim(s, chosen.key), decision, rationale, rating),
                    success=f"Signed off {chosen.key}: {DECISIONS[decision]}, rated {Rating(rating).label}.",
                    after=data.after_signoff,
                )

with audit_tab:
    keyed = {c.id: c.key for c in cards}
    claim_id = st.selectbox(
        "Claim",
        [None, *keyed],
        format_func=lambda i: "Every change" if i is None else keyed[i],
        key="editor_audit_claim",
    )
    events = data.audit(url, claim_id, 300)
    if not events:
        st.caption("No changes recorded yet.")
    else:
        st.dataframe(
            pd.DataFrame([e.__dict__ for e in events]).drop(columns=["entity_id"]),
            hide_index=True,
            width="stretch",
            column_config={"at": st.column_config.DatetimeColumn("When (UTC)", format="YYYY-MM-DD HH:mm:ss")},
        )
        st.caption("The newest 300 events. The whole trail is an append-only log: download it under Exports.")


def _claims_export(fmt: ExportFormat) -> Callable[[], str]:
    def build() -> str:
        with open_session(url) as session:
            reports = [r for r in claim_reports(session, viewer=user) if r.document == document.slug]
        out = io.StringIO()
        write_claims(reports, fmt, out)
        return out.getvalue()

    return build


def _citations(writer: Callable[..., str]) -> Callable[[], str]:
    def build() -> str:
        with open_session(url) as session:
            return writer(evidence_citations(session, document.id))

    return build


def _claimreview(publisher: str, publisher_url: str) -> Callable[[], str]:
    def build() -> str:
        with open_session(url) as session:
            export = claimreview_jsonld(session, publisher or "Ketamine Evidence", publisher_url or None)
        out = io.StringIO()
        write_claimreview(export, out)
        return out.getvalue()

    return build


def _audit_csv() -> str:
    with open_session(url) as session:
        out = io.StringIO()
        write_audit(session, ExportFormat.CSV, out, viewer=user)
        return out.getvalue()


with exports_tab:
    st.caption("Each file is built when you click, from the database as it is then.")
    slug = document.slug
    cols = st.columns(3)
    cols[0].download_button(
        "Claim report (Markdown)",
        _claims_export(ExportFormat.MARKDOWN),
        f"{slug}-claims.md",
        "text/markdown",
        on_click="ignore",
        icon=":material/description:",
    )
    cols[0].download_button(
        "Claim report (CSV)",
        _claims_export(ExportFormat.CSV),
        f"{slug}-claims.csv",
        "text/csv",
        on_click="ignore",
        icon=":material/table:",
    )
    cols[1].download_button(
        "Citations (RIS)",
        _citations(ris),
        f"{slug}-citations.ris",
        "application/x-research-info-systems",
        on_click="ignore",
        icon=":material/menu_book:",
    )
    cols[1].download_button(
        "Citations (BibTeX)",
        _citations(bibtex),
        f"{slug}-citations.bib",
        "application/x-bibtex",
        on_click="ignore",
        icon=":material/menu_book:",
    )
    publisher = cols[2].text_input(
        "Publisher for ClaimReview", value="Ketamine Evidence", key="editor_publisher"
    )
    publisher_url = cols[2].text_input("Publisher URL (optional)", key="editor_publisher_url")
    # The same rule as db.exports.claimreview: a current, rated "OK to publish" sign-off.
    every_card = data.claim_cards(url, user.name, None, "graded")
    publishable = any(
        not c.standing.provisional
        and c.signoff is not None
        and c.signoff.decision is SignOffDecision.OK_TO_PUBLISH
        and c.signoff.rating is not None
        for c in every_card
    )
    cols[2].download_button(
        "ClaimReview (JSON-LD)",
        _claimreview(publisher, publisher_url),
        f"{slug}-claimreview.json",
        "application/ld+json",
        on_click="ignore",
        icon=":material/data_object:",
        disabled=not publishable,
    )
    if not publishable:
        cols[2].caption(
            "Nothing to publish yet: ClaimReview holds only claims signed off as OK to publish, with a "
            "rating, on the evidence as it is today. Provisional verdicts (never signed off, or the "
            "evidence changed since) stay out; sign a claim off on the **Sign off** tab."
        )
    cols[2].download_button(
        "Audit trail (CSV)", _audit_csv, "audit.csv", "text/csv", on_click="ignore", icon=":material/history:"
    )
