"""Shared presentation for the pages: who is signed in, the verdict palette, escaped highlighting, charts.

Not a page itself (the leading underscore; app.py lists the pages). No queries here beyond the
signed-in user: pages read through pages/_data.py, which asks db/.
"""

from __future__ import annotations

import functools
import html
import logging
import os
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import altair as alt
import pandas as pd
import streamlit as st
from pandas.io.formats.style import Styler

from db.corpus.study_facts import study_facts
from db.engine import open_session
from db.errors import InvalidInputError, ReviewError
from db.models import User
from db.ranking.queue import warm_review_queues
from db.read.drilldown import VoteRow
from db.read.standing import ClaimStanding
from db.read.summary import warm_summary
from db.review.assessments import update_assessment
from db.review.auth import active_user, auth_mode
from db.review.roles import Action, can, get_user
from db.settings import load_settings
from db.vocab import AuthMode, ClaimVerdict, PairState, Role, StudyVerdict

log = logging.getLogger(__name__)

USER_KEY = "signed_in_user"

# Okabe-Ito, the colour-blind-safe palette: blue, orange and vermillion stay distinct for every
# common colour-vision deficiency. The same colours mean the same verdicts on every page.
VERDICT_COLORS: dict[str, str] = {
    "supported": "#0072B2",
    "mixed": "#E69F00",
    "unsupported": "#D55E00",
    "not_relevant": "#999999",
    "insufficient_evidence": "#999999",
    "conflict": "#CC79A7",
}
# Badge and chart labels by value: the verdicts' own labels, and "conflict" for a pair's open conflict.
VERDICT_LABELS: dict[str, str] = {
    v.value: v.label.capitalize() for v in (*StudyVerdict, *ClaimVerdict, PairState.CONFLICT)
}
# Verdicts drawn on meters, in the order of their bars.
METER_VERDICTS = ("supported", "mixed", "unsupported")
PROGRESS_KEYS = ("supported", "mixed", "unsupported", "not_relevant", "conflict")

# Marks and badges: text colour chosen for contrast on each background.
_CSS = """
<style>
.ke-text { line-height: 1.65; font-size: 1rem; white-space: normal; }
.ke-text mark { background: #FFF3B0; color: inherit; padding: 0 .1em; border-radius: 2px; }
.ke-text mark.ke-claim { border-bottom: 3px solid var(--ke-c, #0072B2); background: color-mix(in srgb, var(--ke-c, #0072B2) 14%, transparent); }
.ke-text mark.ke-claim.ke-selected { background: color-mix(in srgb, var(--ke-c, #0072B2) 30%, transparent); }
.ke-text sup.ke-n { font-weight: 700; color: var(--ke-c, #0072B2); margin-right: .15em; }
.ke-badge { display: inline-block; padding: .05em .5em; border-radius: .6em; font-size: .85em; font-weight: 600; color: #fff; }
.ke-badge.ke-light { color: #000; }
.ke-study { margin: .2em 0 .1em 0; }
.ke-study del { color: #666; }
.ke-votes { margin: .1em 0 .6em 1.2em; font-size: .92em; }
.ke-votes li { margin-bottom: .15em; }
.ke-quote { font-style: italic; color: #444; }
.ke-provisional { display: inline-block; padding: 0 .5em; border: 1px dashed #555; border-radius: .6em; font-size: .85em; font-weight: 600; }
.ke-standing { font-size: .85em; color: #555; }
.st-key-verdict-supported button { background: #0072B2; color: #fff; border-color: #0072B2; }
.st-key-verdict-mixed button { background: #E69F00; color: #000; border-color: #E69F00; }
.st-key-verdict-unsupported button { background: #D55E00; color: #fff; border-color: #D55E00; }
.st-key-verdict-not_relevant button { background: #999999; color: #000; border-color: #999999; }
.st-key-verdict-supported button:hover, .st-key-verdict-mixed button:hover,
.st-key-verdict-unsupported button:hover, .st-key-verdict-not_relevant button:hover { filter: brightness(1.1); }
</style>
"""


def inject_css() -> None:
    st.markdown(_CSS, unsafe_allow_html=True)


def db_url() -> str:
    return load_settings().database_url


# --- escaped text with marks -----------------------------------------------------------------------


def escape(text: str | None) -> str:
    """HTML-escaped text. Everything from the database passes through here before it meets markup."""
    return html.escape(text or "", quote=True)


def marked_html(
    text: str,
    spans: Sequence[tuple[int, int]],
    *,
    mark_attrs: Sequence[str] | None = None,
    prefixes: Sequence[str] | None = None,
    inline: bool = False,
) -> str:
    """`text` as safe HTML with each (start, end) span wrapped in <mark>.

    Every piece of the text is escaped on its own, so data can never become markup, and marks are
    the only tags added. `mark_attrs[i]` (trusted attributes: class, style) and `prefixes[i]`
    (trusted HTML before the mark) belong to span i. `inline` leaves out the wrapping <div>. Newlines become <br> so the whole result is one
    HTML block: Markdown then leaves it alone (no *emphasis* or [links] from the data).
    """
    pieces, position = [], 0
    for i, (start, end) in enumerate(sorted(spans)):
        if start < position or end <= start:
            continue  # overlapping or empty: keep the first
        pieces.append(escape(text[position:start]))
        attrs = f" {mark_attrs[i]}" if mark_attrs else ""
        prefix = prefixes[i] if prefixes else ""
        pieces.append(f"{prefix}<mark{attrs}>{escape(text[start:end])}</mark>")
        position = end
    pieces.append(escape(text[position:]))
    body = "".join(pieces).replace("\r\n", "\n").replace("\n", "<br>")
    return body if inline else f'<div class="ke-text">{body}</div>'


def plain_html(text: str) -> str:
    """Escaped text as one HTML block (see marked_html)."""
    return marked_html(text, [])


_LIGHT_VERDICTS = {"mixed", "not_relevant", "insufficient_evidence"}  # black text reads better on these


def badge(verdict: str | None, label: str | None = None) -> str:
    """A coloured verdict badge as HTML (the label is escaped)."""
    key = verdict or "conflict"
    color = VERDICT_COLORS.get(key, "#999999")
    light = " ke-light" if key in _LIGHT_VERDICTS else ""
    text = escape(label or VERDICT_LABELS.get(key, key))
    return f'<span class="ke-badge{light}" style="background:{color}">{text}</span>'


def standing_html(standing: ClaimStanding) -> str:
    """Beside a verdict: "Provisional" with its open conflicts and pairs awaiting a second vote, unless
    a current sign-off confirms it."""
    if not standing.provisional:
        return '<span class="ke-standing">signed off</span>'
    return (
        f'<span class="ke-provisional">{escape(standing.label)}</span> '
        f'<span class="ke-standing">{escape(standing.details)}</span>'
    )


def standing_text(standing: ClaimStanding) -> str:
    """standing_html as plain text, for tables and select boxes."""
    return f"{standing.label} ({standing.details})" if standing.provisional else standing.label


def verdict_cells(frame: pd.DataFrame, column: str, keys: Sequence[str | None]) -> Styler:
    """`frame` for st.dataframe with `column` (verdict labels) coloured like badge(): `keys` are the
    rows' verdict keys (None: no verdict yet, left plain)."""
    styles = [
        ""
        if key is None
        else f"background-color: {VERDICT_COLORS.get(key, '#999999')}; "
        f"color: {'#000' if key in _LIGHT_VERDICTS else '#fff'}; font-weight: 600"
        for key in keys
    ]
    return frame.style.apply(lambda _: styles, subset=[column], axis=0)


def html_block(markup: str) -> None:
    """Render markup built only from escaped data and our own tags.

    Line breaks in the data become spaces (marked_html has already turned the text's own line
    breaks into <br>): a blank line would end the HTML block and let Markdown read the rest.
    """
    st.markdown(markup.replace("\r", " ").replace("\n", " "), unsafe_allow_html=True)


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$])")


_URL = re.compile(r"https?://[^\s`<>]+")


def md_escape(text: str | None) -> str:
    """Text for widgets that render Markdown (titles, captions, alerts): every Markdown and LaTeX
    character backslash-escaped, so data is shown as written and never formats or links.

    A URL goes in a code span instead: Markdown would make it a link and show the escapes in it
    (`https://eutils\\.ncbi...`), while a code span shows it as written and links nothing.
    """
    text = " ".join((text or "").split())
    urls = [f"`{url}`" for url in _URL.findall(text)] + [""]
    pieces = [_MD_SPECIAL.sub(r"\\\1", piece) for piece in _URL.split(text)]
    return "".join(piece + url for piece, url in zip(pieces, urls, strict=True))


def warm_caches(url: str) -> None:
    """Build the per-process caches of every study (designs for the meters; every claim's evidence for
    the verdict summary; the ranking's corpus, features, and each claim's lexical scores and model for
    the review queues) in background
    threads, so that the first page a user opens after a start or an import does not wait for them
    (about 3 s for 20,000 studies)."""
    if st.get_option("global.appTest"):
        return  # tests run many short-lived databases; a thread outliving one would only fail
    warm_review_queues(functools.partial(open_session, url))

    def facts_and_summary() -> None:
        try:
            with open_session(url) as session:
                study_facts(session)
                warm_summary(session)
        except Exception:  # a warm-up must never take the app down; the first page then fills them
            log.exception("Warming the study facts and the verdict summary in the background failed")

    threading.Thread(target=facts_and_summary, name="study-facts-warmup", daemon=True).start()


# --- who is signed in ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CurrentUser:
    id: int
    name: str
    role: Role

    def can(self, action: Action) -> bool:
        return can(User(id=self.id, name=self.name, role=self.role, active=True), action)


def oidc_configured() -> bool:
    try:
        return "auth" in st.secrets
    except (FileNotFoundError, st.errors.StreamlitSecretNotFoundError):
        return False


def current_mode() -> AuthMode:
    return auth_mode(os.environ.get("DASHBOARD_AUTH"), oidc_configured())


def signed_in_name(mode: AuthMode) -> str | None:
    """The identity the session claims: the OIDC e-mail, or the name signed in on this session."""
    if mode is AuthMode.OIDC:
        if not st.user.is_logged_in:
            return None
        email = st.user.get("email") or st.user.get("name")
        return str(email) if email else None
    return st.session_state.get(USER_KEY)


def client_address() -> str | None:
    """The browser's address, for counting wrong passwords per client. Streamlit gives None for a
    loopback peer: behind a local reverse proxy (docs/deploy.md) the proxy's X-Forwarded-For names the
    client, its last entry being the one the proxy itself saw (earlier entries come from the client)."""
    address = st.context.ip_address
    if address:
        return address
    forwarded = st.context.headers.get("X-Forwarded-For", "")
    return forwarded.rsplit(",", 1)[-1].strip() or None


def current_user() -> CurrentUser | None:
    """The signed-in, active user with their role as the database has it now (roles can change)."""
    try:
        mode = current_mode()
    except InvalidInputError:
        return None
    name = signed_in_name(mode)
    if not name:
        return None
    with open_session(db_url()) as session:
        user = active_user(session, name)
        if user is None or user.id is None:
            return None
        return CurrentUser(user.id, user.name, Role(user.role))


def require_user(action: Action | None = None, doing: str = "") -> CurrentUser:
    """The signed-in user, or stop the page with what to do. With `action`, users whose role does
    not allow it are told so and the page stops (the data layer would refuse them anyway)."""
    user = current_user()
    if user is None:
        st.info("Sign in first: choose **Sign in** in the sidebar.")
        st.stop()
    assert user is not None
    if action is not None and not user.can(action):
        st.warning(
            f"You are signed in as {user.name}, a {user.role.value}; {doing or 'this page'} needs another role. "
            "Ask an admin to change your role on the Team page."
        )
        st.stop()
    return user


# --- charts ----------------------------------------------------------------------------------------


def verdict_scale(domain: Sequence[str] = METER_VERDICTS) -> alt.Scale:
    return alt.Scale(domain=[VERDICT_LABELS[v] for v in domain], range=[VERDICT_COLORS[v] for v in domain])


def meter_chart(rows: Sequence[dict[str, object]], design_order: Sequence[str]) -> alt.Chart:
    """Stacked bars per design: how many studies support, are mixed, or do not support the claim.

    Designs that do not decide the verdict in the chosen scope are drawn faint. Rows are already
    one per (design, verdict, counted), so x is the plain count: an aggregate would drop the
    `counted` field the opacity reads.
    """
    frame = pd.DataFrame(rows)
    frame["Verdict"] = frame["verdict"].map(VERDICT_LABELS)
    frame["Counts toward the verdict"] = frame["counted"].map({True: "yes", False: "no"})
    frame["order"] = frame["verdict"].map({v: i for i, v in enumerate(METER_VERDICTS)})
    designs = [d for d in design_order if d in set(frame["design_label"])]
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            y=alt.Y("design_label:N", title=None, sort=designs, axis=alt.Axis(labelLimit=200)),
            x=alt.X("studies:Q", title="Studies", stack="zero", axis=alt.Axis(tickMinStep=1)),
            color=alt.Color(
                "Verdict:N",
                scale=verdict_scale(),
                legend=alt.Legend(orient="top", title=None, labelLimit=200),
            ),
            order=alt.Order("order:Q"),
            opacity=alt.condition("datum.counted", alt.value(1.0), alt.value(0.35)),
            tooltip=["design_label:N", "Verdict:N", "studies:Q", "Counts toward the verdict:N"],
        )
        # A fixed step per design: Streamlit fits a fixed height to axes and legend too, which
        # leaves a few designs no room.
        .properties(height=alt.Step(30))
    )


def progress_chart(rows: Sequence[dict[str, object]], claim_order: Sequence[str]) -> alt.Chart:
    """Judged studies per claim, stacked by (resolved) verdict, with conflicts in their own colour."""
    frame = pd.DataFrame(rows)
    frame["Verdict"] = frame["verdict"].map(VERDICT_LABELS)
    frame["order"] = frame["verdict"].map({v: i for i, v in enumerate(PROGRESS_KEYS)})
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            y=alt.Y("claim:N", title=None, sort=list(claim_order), axis=alt.Axis(labelLimit=200)),
            x=alt.X("sum(studies):Q", title="Judged studies", axis=alt.Axis(tickMinStep=1, format="d")),
            color=alt.Color(
                "Verdict:N",
                scale=verdict_scale(PROGRESS_KEYS),
                legend=alt.Legend(orient="bottom", title=None, columns=1, labelLimit=180),
            ),
            order=alt.Order("order:Q"),
            tooltip=["claim:N", "Verdict:N", "studies:Q"],
        )
        # A legend of several columns starts at the plot's left edge (after the claim labels) and was
        # clipped on the right in the page's column ("Not relev…"): one column below always fits. fit-x: Streamlit's default "fit" cannot fit a step height, so the legend's
        # rows were cut off at the bottom; the height grows with the legend instead.
        .properties(height=alt.Step(26), autosize=alt.AutoSizeParams(type="fit-x", contains="padding"))
    )


def year_design_chart(rows: Sequence[dict[str, object]], design_order: Sequence[str]) -> alt.Chart:
    """Studies per year, stacked by design. Designs use viridis (colour-blind safe, ordered dark =
    strongest), so they never borrow the verdict colours."""
    frame = pd.DataFrame(rows)
    present = [d for d in design_order if d in set(frame["design_label"])]
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("year:O", title="Publication year"),
            y=alt.Y("sum(studies):Q", title="Studies", axis=alt.Axis(tickMinStep=1, format="d")),
            color=alt.Color(
                "design_label:N",
                title="Design",
                sort=present,
                scale=alt.Scale(domain=present, scheme="viridis"),
            ),
            order=alt.Order("tier:Q", sort="descending"),
            tooltip=["year:O", "design_label:N", "studies:Q"],
        )
        .properties(height=280)
    )


# --- changing one's own vote ------------------------------------------------------------------------


def vote_editor(
    url: str,
    actor: str,
    *,
    title: str,
    sentences: Sequence[str],
    vote: VoteRow,
    key: str,
    on_saved: Callable[[], None],
) -> None:
    """A form to change one's own assessment. It saves with the version the user first saw, so a
    change made meanwhile elsewhere (another tab, an import) is reported instead of overwritten."""
    # The page re-reads the vote on every rerun; the version the user is editing is the one shown
    # when the form first appeared, kept in the session until a save goes through.
    seen_key = f"{key}-seen-version-{vote.assessment_id}"
    if seen_key not in st.session_state:
        st.session_state[seen_key] = vote.version
    verdicts = [v.value for v in StudyVerdict]
    options = ["", *([title] if title not in sentences else []), *sentences]
    if vote.quote and vote.quote not in options:
        options.insert(1, vote.quote)
    with st.form(key):
        verdict = st.radio(
            "Verdict",
            verdicts,
            index=verdicts.index(vote.verdict),
            format_func=VERDICT_LABELS.__getitem__,
            horizontal=True,
        )
        quote = st.selectbox(
            "Quote",
            options,
            index=options.index(vote.quote) if vote.quote in options else 0,
            format_func=lambda s: "— no quote —" if not s else (s if len(s) < 180 else s[:177] + "…"),
        )
        note = st.text_input("Note", value=vote.note)
        if not st.form_submit_button("Save the change"):
            return
    with open_session(url) as session:
        try:
            update_assessment(
                session,
                get_user(session, actor),
                vote.assessment_id,
                st.session_state[seen_key],
                verdict=verdict,
                quote=quote,
                note=note,
                reason="changed on the dashboard",
            )
            session.commit()
        except ReviewError as exc:
            session.rollback()
            st.error(str(exc))
            # The form now shows the current version: saving again applies the change to it.
            st.session_state[seen_key] = vote.version
            return
    del st.session_state[seen_key]
    on_saved()
    st.success("Saved.")
    st.rerun()
