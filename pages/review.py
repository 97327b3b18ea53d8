"""Review: the reviewer's queue for one claim. One study at a time, key terms highlighted, a verdict
by button or key (S, M, U, N; K skips), a quote from the abstract, a note, the study's evidence fields
(prefilled from the abstract, saved with the verdict); the next study at once."""

from concurrent.futures import ThreadPoolExecutor

import streamlit as st

from db.engine import open_session
from db.errors import ReviewError
from db.models import Claim
from db.read.cards import DESIGN_ORDER
from db.read.studies import (
    QueueOrder,
    ReviewStudy,
    judged_by,
    next_in_queue,
    review_order,
    review_study,
)
from db.review.assessments import record_assessment
from db.review.evidence_fields import MAX_PARTICIPANTS
from db.review.evidence_prefill import conclusion_quote
from db.review.pairs import pair_votes
from db.review.roles import Action, get_user
from db.text import term_spans
from db.vocab import (
    Directness,
    Intervention,
    Population,
    RetractionStatus,
    RiskOfBias,
    StudyDesign,
    StudyVerdict,
)
from pages import _data as data
from pages._ui import (
    VERDICT_LABELS,
    badge,
    db_url,
    escape,
    html_block,
    marked_html,
    require_user,
    vote_editor,
)

# (verdict, label, key): C and R are reserved by Streamlit, so "mixed" is M and skip is K.
VERDICT_BUTTONS = (
    (StudyVerdict.SUPPORTED, "Supported", "S"),
    (StudyVerdict.MIXED, "Mixed", "M"),
    (StudyVerdict.UNSUPPORTED, "Unsupported", "U"),
    (StudyVerdict.NOT_RELEVANT, "Not relevant", "N"),
)
NO_QUOTE = ""
QUEUE_BATCH = 50  # studies ranked at a time; the page works through them without asking again
RERANK_EVERY = 10  # decisions after which the queue is re-ranked in the background
# The evidence fields with a vocabulary: field -> (label, vocabulary).
EVIDENCE_CHOICES = {
    "population": ("Population", Population),
    "intervention": ("Intervention", Intervention),
    "risk_of_bias": ("Risk of bias", RiskOfBias),
    "directness": ("Directness", Directness),
}
EVIDENCE_TEXTS = {
    "follow_up": ("Follow-up", "e.g. 24 hours, 6 weeks"),
    "effect": ("Effect", "as stated, e.g. MADRS -8.1 vs placebo"),
    "indirect_reason": ("Why indirect", "population, intervention, outcome or time frame"),
}

user = require_user(Action.ASSESS, "tagging studies")
url = db_url()
st.title("Review")

claims = data.claim_choices(url)
if not claims:
    st.info(
        "There are no claims to review. Editors add an article and accept its claims on the **Articles** page."
    )
    st.stop()
if "review_skipped" not in st.session_state:
    st.session_state.review_skipped = {}  # claim id -> PMIDs skipped this session, in order
if "review_queues" not in st.session_state:
    st.session_state.review_queues = {}  # claim id -> {"order", "future", "decisions"}


@st.cache_resource
def _ranker() -> ThreadPoolExecutor:
    # Re-ranking (retraining on the latest tags) runs beside the page, so no decision waits for it.
    return ThreadPoolExecutor(max_workers=2, thread_name_prefix="rerank")


def _ranked(url: str, claim_key: str, reviewer: str) -> QueueOrder:
    with open_session(url) as session:
        return review_order(session, claim_key, get_user(session, reviewer), QUEUE_BATCH)


def _queue(claim_id: int, claim_key: str, *, refresh: bool = False) -> dict:
    """This reviewer's batch of the claim's ranked queue, swapping in a background re-rank when done."""
    queues = st.session_state.review_queues
    queue = queues.get(claim_id)
    if queue is None or queue["reviewer"] != user.name:
        queue = queues[claim_id] = {"reviewer": user.name, "order": _ranked(url, claim_key, user.name)}
        queue.update(future=None, decisions=0)
    future = queue["future"]
    if future is not None and (future.done() or refresh):
        try:
            queue["order"] = future.result()
        except Exception:  # noqa: BLE001  (a failed background re-rank: rank here instead)
            queue["order"] = _ranked(url, claim_key, user.name)
        queue["future"] = None
    elif refresh:
        queue["order"] = _ranked(url, claim_key, user.name)
    if queue["decisions"] >= RERANK_EVERY and queue["future"] is None:
        queue["future"] = _ranker().submit(_ranked, url, claim_key, user.name)
        queue["decisions"] = 0
    return queue


claims_by_id = {c.id: c for c in claims}
claim = claims_by_id[
    st.selectbox(
        "Claim",
        list(claims_by_id),
        format_func=lambda i: f"{claims_by_id[i].key} — {claims_by_id[i].statement}",
        key="review_claim",
    )
]
skipped: list[int] = st.session_state.review_skipped.setdefault(claim.id, [])
queue = _queue(claim.id, claim.key)
with open_session(url) as session:
    judged = judged_by(session, claim.id, user.id)
upcoming = next_in_queue(queue["order"].pmids, judged, skipped, 1)
if not upcoming:
    # The batch is used up: take the re-ranked one if it is on its way, else rank now.
    queue = _queue(claim.id, claim.key, refresh=True)
    upcoming = next_in_queue(queue["order"].pmids, judged, skipped, 1)

flash = st.session_state.pop("review_flash", None)
if flash is not None:
    kind, message = flash
    (st.success if kind == "success" else st.error)(message)

total = data.freshness(url).articles
if total == 0:
    st.info("The database holds no studies yet. Harvest PubMed or import a file on the **Harvest** page.")
    st.stop()
if not upcoming:
    st.success(f"You have judged all {total:,} studies for “{claim.key}”. Pick another claim.")
    st.stop()

pmid = upcoming[0]
st.session_state.review_shown = pmid  # which study the buttons act on (and tests read)
with open_session(url) as session:
    study: ReviewStudy = review_study(session, get_user(session, user.name), claim.id, pmid)
terms = data.claim_terms(url, claim.id)


def _quote_options(study: ReviewStudy) -> list[str]:
    options = [NO_QUOTE, *study.sentences]
    if study.title not in options:
        options.insert(1, study.title)
    return options


def _best_quote(study: ReviewStudy, terms: list[str]) -> str:
    """A results or conclusions sentence, the one with most key terms (never background or methods);
    preselected so a clear case is one key press."""
    return conclusion_quote(study.title, study.sentences, terms)


def _evidence_key(name: str, suffix: str) -> str:
    return f"evidence-{name}-{suffix}"


def _shown_evidence(suffix: str, suggested: dict[str, object]) -> dict[str, object]:
    """The evidence fields as the page shows them: the reviewer's edits, else the suggestions."""
    names = [*EVIDENCE_CHOICES, *EVIDENCE_TEXTS, "participants"]
    return {name: st.session_state.get(_evidence_key(name, suffix), suggested.get(name)) for name in names}


def _decide(
    verdict: StudyVerdict, claim_id: int, pmid: int, shown_design: str, suggested: dict[str, object]
) -> None:
    """Save the decision before the page reruns, so the rerun shows the next study."""
    suffix = f"{claim_id}-{pmid}"
    quote = st.session_state.get(f"quote-{suffix}") or ""
    note = st.session_state.get(f"note-{suffix}") or ""
    design = st.session_state.get(f"design-{suffix}") or shown_design
    # A study screened out is no evidence for the claim: its fields are not kept.
    evidence = None if verdict is StudyVerdict.NOT_RELEVANT else _shown_evidence(suffix, suggested)
    with open_session(url) as session:
        try:
            actor = get_user(session, user.name)
            claim_row = session.get(Claim, claim_id)
            assert claim_row is not None
            record_assessment(
                session,
                actor,
                claim_row,
                pmid,
                verdict,
                quote=quote,
                note=note,
                design=StudyDesign(design) if design != shown_design else None,
                evidence=evidence,
            )
            session.flush()
            others = pair_votes(session, actor, claim_row, pmid).others
            session.commit()
        except ReviewError as exc:
            session.rollback()
            st.session_state.review_flash = ("error", f"Not saved: {exc}")
            return
    revealed = ", ".join(f"{v.reviewer}: {v.verdict.label}" for v in others)
    st.session_state.review_flash = (
        "success",
        f"Saved PMID {pmid} as {verdict.label}."
        + (f" Other reviewers said — {revealed}." if revealed else ""),
    )
    st.session_state.review_last = {"claim_id": claim_id, "pmid": pmid}
    queue = st.session_state.review_queues.get(claim_id)
    if queue is not None:
        queue["decisions"] += 1
    data.after_assessment()


def _skip(claim_id: int, pmid: int) -> None:
    queue = st.session_state.review_skipped.setdefault(claim_id, [])
    if pmid in queue:
        queue.remove(pmid)
    queue.append(pmid)


reason = queue["order"].reasons.get(pmid)
st.caption(
    f"You have judged {len(judged):,} {'study' if len(judged) == 1 else 'studies'} for this claim; "
    f"{max(total - len(judged), 0):,} to go. "
    "The queue puts the most relevant studies and the strongest designs first, and re-ranks as reviewers tag."
    + (f" This study: {reason}." if reason else "")
)

with st.container(border=True):
    html_block(
        f'<h3 class="ke-text">{marked_html(study.title, term_spans(study.title, terms), inline=True)}</h3>'
    )
    facts = [escape(study.journal), str(study.year or "")]
    facts.append(f"<b>{escape(StudyDesign(study.design).label)}</b>")
    facts.append(f"PMID {study.pmid}")
    html_block(
        "<p>"
        + " · ".join(f for f in facts if f)
        + "<br><small>"
        + escape(", ".join(study.publication_types))
        + "</small></p>"
    )
    if study.retraction_status:
        st.warning(
            f"PubMed marks this record: {RetractionStatus(study.retraction_status).label}. "
            "Retracted studies and those under an expression of concern never count toward a verdict."
        )
    if study.abstract:
        html_block(marked_html(study.abstract, term_spans(study.abstract, terms)))
    else:
        st.caption("PubMed has no abstract for this record; judge from the title, or skip it.")
    if study.hidden:
        st.caption(
            f"Blind mode: {study.hidden} other reviewer vote{'s' if study.hidden != 1 else ''} on this study "
            "stay hidden until you record yours."
        )
    elif study.others:
        html_block(
            "<p>Other reviewers: "
            + "; ".join(f"{escape(v.reviewer)} {badge(v.verdict)}" for v in study.others)
            + "</p>"
        )

suffix = f"{claim.id}-{pmid}"
options = _quote_options(study)
if f"quote-{suffix}" not in st.session_state:
    st.session_state[f"quote-{suffix}"] = _best_quote(study, terms)
inputs = st.columns([6, 2])
inputs[0].selectbox(
    "Quote that justifies the verdict (the best-matching sentence is preselected)",
    options,
    format_func=lambda s: (
        "— no quote (only for Not relevant) —" if s == NO_QUOTE else (s if len(s) < 180 else s[:177] + "…")
    ),
    key=f"quote-{suffix}",
)
designs = [d.value for d in DESIGN_ORDER]
inputs[1].selectbox(
    "Design",
    designs,
    index=designs.index(study.design),
    format_func=lambda d: StudyDesign(d).label,
    key=f"design-{suffix}",
    help="Prefilled from PubMed's publication types; correct it if the abstract says otherwise.",
)
st.text_input(
    "Note (optional)", key=f"note-{suffix}", placeholder="e.g. open-label, n=12, 24-hour outcome only"
)

suggested = {name: suggestion.value for name, suggestion in study.suggestions.items()}
buttons = st.columns(len(VERDICT_BUTTONS) + 1)
for column, (verdict, label, key) in zip(buttons, VERDICT_BUTTONS, strict=False):
    column.button(
        label,
        key=f"verdict-{verdict.value}",
        shortcut=key,
        on_click=_decide,
        args=(verdict, claim.id, pmid, study.design, suggested),
        width="stretch",
        help=f"{VERDICT_LABELS[verdict.value]}: press {key}",
    )
buttons[-1].button(
    "Skip",
    key="verdict-skip",
    shortcut="K",
    on_click=_skip,
    args=(claim.id, pmid),
    width="stretch",
    help="Come back to this study later in this session: press K",
)


def _from_abstract(name: str) -> str | None:
    suggestion = study.suggestions.get(name)
    return f"Suggested from the abstract: “{suggestion.sentence}”" if suggestion else None


def _evidence_summary() -> str:
    if not study.suggestions:
        return "Evidence (optional; nothing suggested from the abstract)"
    shown = [
        EVIDENCE_CHOICES[name][1](value).label
        if name in EVIDENCE_CHOICES
        else f"{name.replace('_', ' ')} {value}"
        for name, value in suggested.items()
    ]
    return "Evidence (suggested: " + " · ".join(shown) + "; saved with the verdict unless you change it)"


# Under the buttons and folded: the suggestions are saved with a verdict as they are, so the keyboard
# flow stays one key press; open it to check or correct them. Not relevant saves none.
with st.expander(_evidence_summary()):
    rows = [st.columns(3), st.columns(3), st.columns(3)]
    rows[0][0].number_input(
        "Participants",
        min_value=0,
        max_value=MAX_PARTICIPANTS,
        step=1,
        value=suggested.get("participants"),
        placeholder="analysed for this outcome",
        key=_evidence_key("participants", suffix),
        help=_from_abstract("participants"),
    )
    for column, name in zip([rows[0][1], rows[0][2], rows[2][1]], EVIDENCE_TEXTS, strict=True):
        label, placeholder = EVIDENCE_TEXTS[name]
        column.text_input(
            label,
            value=str(suggested.get(name) or ""),
            placeholder=placeholder,
            key=_evidence_key(name, suffix),
            help=_from_abstract(name),
        )
    for column, name in zip([*rows[1], rows[2][0]], EVIDENCE_CHOICES, strict=True):
        label, vocabulary = EVIDENCE_CHOICES[name]
        choices: list[str | None] = [None, *(member.value for member in vocabulary)]
        column.selectbox(
            label,
            choices,
            index=choices.index(suggested[name]) if name in suggested else 0,
            format_func=lambda value, vocabulary=vocabulary: (
                "not stated" if value is None else vocabulary(value).label
            ),
            key=_evidence_key(name, suffix),
            help=_from_abstract(name),
        )

last = st.session_state.get("review_last")
if last and last["claim_id"] == claim.id:
    with open_session(url) as session:
        previous = review_study(session, get_user(session, user.name), claim.id, last["pmid"], suggest=False)
    if previous.own is not None:
        with st.expander(f"Change your last decision (PMID {previous.pmid}: {previous.own.verdict.label})"):
            vote_editor(
                url,
                user.name,
                title=previous.title,
                sentences=previous.sentences,
                vote=previous.own,
                key=f"last-{claim.id}",
                on_saved=data.after_assessment,
            )
