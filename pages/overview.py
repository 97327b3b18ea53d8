"""Overview: corpus size and freshness, studies by year and design, review progress, what needs attention."""

import pandas as pd
import streamlit as st

from db.read.cards import DESIGN_ORDER
from db.read.overview import Freshness
from db.review.roles import Action
from db.review.verdicts import DesignScope
from pages import _data as data
from pages._ui import (
    PROGRESS_KEYS,
    VERDICT_LABELS,
    db_url,
    md_escape,
    progress_chart,
    require_user,
    verdict_cells,
    year_design_chart,
)

user = require_user()
url = db_url()
st.title("Overview")

fresh = data.freshness(url)
if fresh.articles == 0:
    st.info(
        "The database holds no studies yet. Start a harvest or upload a PubMed file on the **Harvest** page "
        "(or run `ketamine-evidence harvest` with NCBI_EMAIL set)."
    )

columns = st.columns([1, 1, 1.5, 1.3, 1.4])  # wide enough for "Retracted or under concern" and "2019–2025"
columns[0].metric("Studies", f"{fresh.articles:,}")
columns[1].metric("With abstract", f"{fresh.with_abstract:,}")
columns[2].metric("Retracted or under concern", f"{fresh.retracted:,}")
columns[3].metric("Years", f"{fresh.oldest_year}–{fresh.newest_year}" if fresh.newest_year else "–")
columns[4].metric(
    "New since last harvest",
    f"{fresh.added_since_last_harvest:,}" if fresh.last_harvest else "–",
    help=f"{fresh.added_last_7_days:,} added in the last 7 days",
)


def corpus_line(fresh: Freshness) -> str:
    """The corpus as it is, whatever filled it: imports count as much as harvests."""
    if fresh.articles == 0:
        return "No harvest or import yet." if fresh.last_success is None else "The corpus is empty."
    harvests, imports = fresh.succeeded_runs.get("harvest", 0), fresh.succeeded_runs.get("import", 0)
    line = (
        f"{fresh.articles:,} studies, from {harvests:,} harvest{'s' * (harvests != 1)} "
        f"and {imports:,} import{'s' * (imports != 1)}."
    )
    run = fresh.last_success
    if run is not None:
        line += (
            f" Last {run['kind']}: {run['started_at']:%Y-%m-%d %H:%M} UTC, succeeded: "
            f"{run['records_new']:,} new, {run['records_updated']:,} updated."
        )
    return line


st.caption(corpus_line(fresh))
if fresh.last_failure:
    run = fresh.last_failure
    st.warning(
        f"The last {run['kind']}, started {run['started_at']:%Y-%m-%d %H:%M} UTC, {run['status']}"
        + (f": {md_escape(run['error'])}" if run["error"] else "")
        + (". The studies above come from earlier runs" if fresh.articles else "")
        + ". See the **Harvest** page.",
        icon=":material/warning:",
    )

left, right = st.columns([1, 1], gap="large")
with left:
    st.subheader("Studies by year and design")
    by_year = data.year_design(url)
    if by_year:
        labels = [d.label for d in DESIGN_ORDER]
        st.altair_chart(year_design_chart([r.__dict__ for r in by_year], labels), width="stretch")
    else:
        st.caption("Nothing to chart until studies with a publication year arrive.")

cards = data.claim_cards(url, user.name, None, DesignScope.GRADED.value)
with right:
    st.subheader("Review progress per claim")
    rows = [
        {"claim": card.key, "verdict": key, "studies": card.progress.get(key, 0)}
        for card in cards
        for key in PROGRESS_KEYS
        # One zero row per claim keeps claims nobody judged yet on the chart.
        if card.progress.get(key) or key == "supported"
    ]
    if any(card.progress for card in cards):
        st.altair_chart(progress_chart(rows, [c.key for c in cards]), width="stretch")
        hidden = sum(c.hidden for c in cards)
        if hidden:
            st.caption(
                f"Blind mode: {hidden:,} judgments by others on studies you have not judged are not shown."
            )
    elif cards:
        st.info(
            "No study has been judged yet. Reviewers tag studies on the **Review** page, one claim at a time."
        )
    else:
        st.info(
            "No claims to check yet. Editors add an article and accept its claims on the **Articles** page."
        )
if cards:
    st.dataframe(
        verdict_cells(
            pd.DataFrame(
                {
                    "claim": c.key,
                    "verdict": VERDICT_LABELS.get(c.verdict, c.verdict),
                    "certainty": c.certainty_label,
                    "standing": c.standing.label,
                    "open conflicts": c.standing.open_conflicts,
                    "awaiting a second vote": c.standing.awaiting_second_vote,
                }
                for c in cards
            ),
            "verdict",
            [c.verdict for c in cards],
        ),
        hide_index=True,
        width="stretch",
    )
    st.caption(
        "A verdict is provisional until an editor signs the claim off, and again once its evidence "
        "changes after that."
    )

st.subheader("Needs attention")
conflicts = sum(c.conflicts for c in cards)
changed = [c for c in cards if c.signoff is not None and c.signoff.evidence_changed]
unsigned = [c for c in cards if c.signoff is None and c.judged]
attention = st.columns(4)
attention[0].metric("Open conflicts", f"{conflicts:,}")
attention[1].metric("Evidence changed since sign-off", len(changed))
attention[2].metric("Judged claims not signed off", len(unsigned))
attention[3].metric(
    "Provisional verdicts",
    sum(c.standing.provisional for c in cards),
    help="Claims without a sign-off whose evidence is still today's.",
)
if changed:
    for card in changed:
        assert card.signoff is not None
        details = "; ".join(card.signoff.changes[:5]) + (" …" if len(card.signoff.changes) > 5 else "")
        st.warning(f"**{card.key}**: evidence changed since sign-off — {details}", icon=":material/update:")
if (conflicts or changed or unsigned) and user.can(Action.SIGN_OFF):
    st.page_link(
        "pages/editor.py", label="Resolve and sign off on the Editor page", icon=":material/approval:"
    )
elif not (conflicts or changed or unsigned):
    st.caption("Nothing waits for an editor.")
