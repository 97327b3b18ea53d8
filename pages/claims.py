"""Claims: the article with its claims highlighted, each claim's evidence meter, verdict and reasoning,
the sensitivity view, and a drill-down to every judged study with its votes."""

import streamlit as st

from db.read.cards import DESIGN_ORDER, ClaimCard
from db.read.drilldown import StudyRow
from db.review.verdicts import DesignScope
from db.vocab import RetractionStatus, StudyDesign
from pages import _data as data
from pages._profile import show_profile
from pages._ui import (
    METER_VERDICTS,
    VERDICT_COLORS,
    VERDICT_LABELS,
    badge,
    db_url,
    escape,
    html_block,
    marked_html,
    md_escape,
    meter_chart,
    require_user,
    standing_html,
)

PAGE_SIZE = 20
SCOPES = {
    DesignScope.GRADED.value: "Graded rule (strongest designs decide)",
    DesignScope.HIGH_CERTAINTY.value: "High-certainty designs only",
    DesignScope.ALL_DESIGNS.value: "All designs alike",
}

user = require_user()
url = db_url()
st.title("Claims")

docs = data.documents(url)
if not docs:
    st.info("No article to check yet. Editors add one on the **Articles** page.")
    st.stop()
if "claims_page" not in st.session_state:
    st.session_state.claims_page = 1

top = st.columns([3, 2])
docs_by_id = {d.id: d for d in docs}
# Options are ids, not the dataclasses: those change with every write and would lose the selection.
document = docs_by_id[
    top[0].selectbox(
        "Article under review",
        list(docs_by_id),
        format_func=lambda i: docs_by_id[i].title,
        key="claims_document",
        disabled=len(docs) == 1,
    )
]
scope = top[1].radio(
    "Evidence counted",
    list(SCOPES),
    format_func=SCOPES.__getitem__,
    key="claims_scope",
    help="The sensitivity view: the verdict recomputed with only systematic reviews, meta-analyses and RCTs, "
    "or with every design counted alike. When they differ, the verdict rests on weaker studies.",
)
cards = data.claim_cards(url, user.name, document.id, scope)
if not cards:
    st.info("This article has no active claims. Editors accept the proposed claims on the **Articles** page.")
    st.stop()
by_key = {card.key: card for card in cards}
numbers = {card.key: i for i, card in enumerate(cards, start=1)}
selected_key = st.session_state.get("claims_claim")
if selected_key not in by_key:
    # Open on the first claim with evidence: an empty meter says little on arrival.
    selected_key = next((c.key for c in cards if c.meter), cards[0].key)


def _article_html(cards: list[ClaimCard], selected: str) -> str:
    spans, attrs, prefixes = [], [], []
    for card in cards:
        color = VERDICT_COLORS.get(card.verdict, "#999999")
        spans.append((card.span_start, card.span_end))
        chosen = " ke-selected" if card.key == selected else ""
        provisional = " (provisional)" if card.standing.provisional else ""
        title = escape(f"{card.key}: {card.verdict.label}{provisional}")
        attrs.append(f'class="ke-claim{chosen}" style="--ke-c:{color}" title="{title}"')
        prefixes.append(f'<sup class="ke-n" style="--ke-c:{color}">{numbers[card.key]}</sup>')
    return marked_html(document.text, spans, mark_attrs=attrs, prefixes=prefixes)


text_column, claim_column = st.columns([5, 6], gap="large")
with claim_column:
    selected_key = st.selectbox(
        "Claim",
        list(by_key),
        index=list(by_key).index(selected_key),
        format_func=lambda key: (
            f"{numbers[key]} · {key} — {VERDICT_LABELS.get(by_key[key].verdict, '')}"
            + (" (provisional)" if by_key[key].standing.provisional else "")
        ),
        key="claims_claim",
    )
    card = by_key[selected_key]
    html_block(
        f"<p><b>{escape(card.statement)}</b></p>"
        f"<p>{badge(card.verdict)} {standing_html(card.standing)} &nbsp;certainty: "
        f"<b>{escape(card.certainty_label)}</b>"
        + (f" &nbsp;· time frame: {escape(card.time_frame)}" if card.time_frame else "")
        + "</p>"
    )
    st.write(card.reasoning)
    sensitivity = (
        f"Sensitivity — graded rule: **{card.graded_verdict.label}** · high-certainty designs only: "
        f"**{card.high_certainty_verdict.label}** · all designs alike: **{card.all_designs_verdict.label}**"
    )
    if card.rests_on_weak_studies:
        st.warning(sensitivity + ". The verdict rests on weaker studies.", icon=":material/balance:")
    else:
        st.caption(sensitivity)
    if card.blinded and card.hidden:
        st.info(
            f"Blind mode: this shows the studies you judged yourself. {card.hidden:,} more judged by others "
            "stay hidden until you judge them on the Review page."
        )
    if card.meter:
        labels = [d.label for d in DESIGN_ORDER]
        st.altair_chart(meter_chart([row.__dict__ for row in card.meter], labels), width="stretch")
        st.caption("Faint bars: designs that do not decide the verdict in this view (see the reasoning).")
    else:
        st.info("No study has been judged for this claim yet. Reviewers tag studies on the **Review** page.")
    if card.excluded:
        html_block(
            "<p>Excluded from the verdict: "
            + "; ".join(f"<del>PMID {pmid}</del> ({escape(reason)})" for pmid, reason in card.excluded)
            + "</p>"
        )
    profile = data.claim_profile(url, user.name, card.id)
    if profile is not None:
        show_profile(profile)
    if card.signoff is not None:
        s = card.signoff
        rated = f", rated **{s.rating.label}**" if s.rating else ""
        line = (
            f"Signed off as **{s.decision.label}**{rated} by {s.signed_by or '?'} on {s.signed_at:%Y-%m-%d}"
        )
        if s.evidence_changed:
            st.warning(
                line + "; the evidence changed since: " + "; ".join(s.changes), icon=":material/update:"
            )
        else:
            st.caption(line + ".")

with text_column:
    byline = " · ".join(x for x in (document.author, document.outlet, document.status.label) if x)
    st.caption(
        md_escape(f"The article under review ({byline}); each claim is marked in the verdict's colour.")
    )
    with st.container(height=760, border=False):
        html_block(_article_html(cards, selected_key))


def _study_html(row: StudyRow) -> str:
    title = escape(row.title)
    if row.excluded:
        title = f"<del>{title}</del> <i>({escape(row.excluded)})</i>"
    elif row.retraction_status:
        title += f" <i>({escape(RetractionStatus(row.retraction_status).label)})</i>"
    verdict = badge(row.verdict) if row.verdict else badge("conflict")
    state = {"resolved": " · resolved by an editor", "conflict": " · awaiting an editor"}.get(row.state, "")
    head = (
        f'<div class="ke-study">{verdict} <b>PMID {row.pmid}</b> · {escape(row.design.label)}'
        f" · {escape(row.journal)} {row.year or ''}{state}<br>{title}</div>"
    )
    votes = "".join(
        f"<li>{escape(v.reviewer)}: {badge(v.verdict)}"
        + (f' <span class="ke-quote">“{escape(v.quote)}”</span>' if v.quote else "")
        + (f" — {escape(v.note)}" if v.note else "")
        + "</li>"
        for v in row.votes
    )
    reason = f"<li>Editor's reason: {escape(row.resolution_reason)}</li>" if row.resolution_reason else ""
    return head + f'<ul class="ke-votes">{votes}{reason}</ul>'


st.divider()
st.subheader(f"Studies judged for “{card.key}”")
if "claims_verdicts" not in st.session_state:
    # Studies screened out as not relevant are most of a large review: listed on request.
    st.session_state.claims_verdicts = [*METER_VERDICTS, "conflict"]
# Pills, not a multiselect: a narrow multiselect truncated its chips ("Unsupp…"); pills wrap.
verdict_filter = (
    st.pills(
        "Verdict",
        [*METER_VERDICTS, "not_relevant", "conflict"],
        selection_mode="multi",
        format_func=lambda v: VERDICT_LABELS[v],
        key="claims_verdicts",
    )
    or []
)
filters = st.columns([6, 1])
design_filter = filters[0].multiselect(
    "Design",
    [d.value for d in DESIGN_ORDER],
    format_func=lambda d: StudyDesign(d).label,
    key="claims_designs",
)
page = filters[1].number_input("Page", min_value=1, step=1, key="claims_page")
found = data.claim_studies(
    url,
    user.name,
    card.id,
    tuple(verdict_filter),
    tuple(design_filter),
    PAGE_SIZE,
    (int(page) - 1) * PAGE_SIZE,
)
if found.total == 0:
    st.caption("No judged study matches." if (verdict_filter or design_filter) else "No judged study yet.")
else:
    last = min(found.total, int(page) * PAGE_SIZE)
    st.caption(
        f"{found.total:,} studies, strongest designs first; showing {(int(page) - 1) * PAGE_SIZE + 1}–{last}."
        " Retracted studies are struck out and never counted."
    )
    html_block("".join(_study_html(row) for row in found.rows))
