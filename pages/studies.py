"""Studies: full-text search over title, abstract, MeSH and keywords, filters, and a page per study
with its metadata, links to PubMed and the DOI, and every assessment of it."""

from urllib.parse import quote as url_quote

import pandas as pd
import streamlit as st

from db.engine import open_session
from db.read.cards import DESIGN_ORDER
from db.read.studies import StudyDetail
from db.review.assessments import confirm_design, correct_design
from db.review.roles import Action, get_user
from db.review.sources import split_sentences
from db.vocab import RetractionStatus, StudyDesign
from pages import _data as data
from pages._ui import (
    VERDICT_LABELS,
    badge,
    db_url,
    escape,
    html_block,
    md_escape,
    plain_html,
    require_user,
    vote_editor,
)

SHOWN = 500  # rows in the table; the count says how many matched
STANDINGS = {
    "any": "Any",
    "none": "Not retracted or flagged",
    "retracted": "Retracted",
    "expression_of_concern": "Expression of concern",
    "retraction_notice": "Retraction notice",
    "corrected": "Corrected (erratum)",
}
TAGGED = {"any": "Tagged or not", "tagged": "Tagged", "untagged": "Untagged"}

user = require_user()
url = db_url()
st.title("Studies")

index = data.study_index(url)
if index.empty:
    st.info("No studies yet. Harvest PubMed or upload a PubMed file on the **Harvest** page.")
    st.stop()

query = st.text_input(
    "Search titles, abstracts, MeSH terms and keywords",
    key="studies_query",
    placeholder='e.g. esketamine "suicidal ideation" -rats   (words all match; "phrases"; or; -exclude)',
)
claims = data.claim_choices(url)
row1 = st.columns([3, 3, 3])
years = index["year"].dropna()
year_range = full_range = None
if not years.empty and int(years.min()) < int(years.max()):
    full_range = (int(years.min()), int(years.max()))
    year_range = row1[0].slider("Publication year", *full_range, full_range, key="studies_years")
design_filter = row1[1].multiselect(
    "Design",
    [d.value for d in DESIGN_ORDER],
    format_func=lambda d: StudyDesign(d).label,
    key="studies_designs",
)
type_filter = row1[2].multiselect("Publication type", data.publication_types(url), key="studies_types")
row2 = st.columns([3, 3, 3])
standing = row2[0].selectbox(
    "Retraction status", list(STANDINGS), format_func=STANDINGS.__getitem__, key="studies_standing"
)
claims_by_id = {c.id: c for c in claims}
claim_id = row2[1].selectbox(
    "Claim",
    [None, *claims_by_id],
    format_func=lambda i: "Any claim" if i is None else claims_by_id[i].key,
    key="studies_claim",
)
claim_filter = claims_by_id.get(claim_id) if claim_id is not None else None
tagged = row2[2].selectbox("Tagged", list(TAGGED), format_func=TAGGED.__getitem__, key="studies_tagged")

frame = index
if query.strip():
    hits = data.search(url, query.strip())
    scores = pd.Series(dict(hits), dtype="float64")
    frame = frame[frame["pmid"].isin(scores.index)].assign(
        score=lambda f: scores.reindex(f["pmid"]).to_numpy()
    )
    frame = frame.sort_values(["score", "pmid"], ascending=[False, True])
else:
    frame = frame.sort_values(["year", "pmid"], ascending=[False, False], na_position="last")
if year_range is not None and year_range != full_range:
    # A narrowed range leaves out the studies without a year; the full range keeps them.
    frame = frame[frame["year"].between(*year_range)]
if design_filter:
    frame = frame[frame["design"].isin(design_filter)]
if type_filter:
    wanted = set(type_filter)
    frame = frame[frame["publication_types"].map(lambda kinds: bool(wanted.intersection(kinds)))]
if standing == "none":
    frame = frame[frame["retraction_status"] == ""]
elif standing != "any":
    frame = frame[frame["retraction_status"] == standing]
if tagged != "any":
    judged = data.judged_by_claim(url)
    pool = judged.get(claim_filter.id, set()) if claim_filter is not None else set().union(*judged.values())
    frame = frame[frame["pmid"].isin(pool) == (tagged == "tagged")]
elif claim_filter is not None:
    frame = frame[frame["pmid"].isin(data.judged_by_claim(url).get(claim_filter.id, set()))]

total = len(frame)
st.caption(
    f"{total:,} of {len(index):,} studies match"
    + (f"; the first {SHOWN} are listed" if total > SHOWN else "")
    + "."
)
if total == 0:
    st.info("Nothing matches. Loosen a filter, or search for fewer words.")
    st.stop()

shown = frame.head(SHOWN).assign(
    types=lambda f: f["publication_types"].map(", ".join),
    standing=lambda f: f["retraction_status"].map(lambda s: RetractionStatus(s).label if s else ""),
)
# Year and Design before the title, in narrow columns: a long title pushed them off the table.
columns = ["pmid", "year", "design_label", "title", "journal", "types", "standing"]
if "score" in shown:
    columns.append("score")
table = st.dataframe(
    shown[columns],
    hide_index=True,
    width="stretch",
    on_select="rerun",
    selection_mode="single-row",
    key="studies_table",
    column_config={
        "pmid": st.column_config.NumberColumn("PMID", format="%d", width="small"),
        "title": st.column_config.TextColumn("Title", width="large"),
        "journal": st.column_config.TextColumn("Journal", width="medium"),
        "year": st.column_config.NumberColumn("Year", format="%d", width="small"),
        "design_label": st.column_config.TextColumn("Design", width="medium"),
        "types": "Publication types",
        "standing": "Status",
        "score": st.column_config.NumberColumn("Relevance", format="%.2f"),
    },
)
picked_rows = table.selection.rows if table is not None and hasattr(table, "selection") else []
options = list(shown["pmid"].head(200))
titles = dict(zip(shown["pmid"], shown["title"], strict=True))
opened = st.selectbox(
    "Open a study",
    [None, *options],
    format_func=lambda p: (
        "Choose a study, or click a row above" if p is None else f"PMID {p} · {titles[p][:100]}"
    ),
    key="studies_open",
)
pmid = int(shown["pmid"].iloc[picked_rows[0]]) if picked_rows else opened
if pmid is None:
    st.stop()

detail: StudyDetail = data.study_detail(url, user.name, int(pmid))
st.divider()
html_block(f"<h3>{escape(detail.title)}</h3>")
authors = ", ".join(detail.authors[:8]) + (" et al." if len(detail.authors) > 8 else "")
st.caption(
    md_escape(
        " · ".join(x for x in (authors, detail.journal, detail.pub_date or str(detail.year or "")) if x)
    )
)
links = st.columns([1, 1, 6])
links[0].link_button("PubMed", detail.pubmed_url, icon=":material/open_in_new:")
if detail.doi:
    links[1].link_button(
        "DOI", "https://doi.org/" + url_quote(detail.doi, safe="/:;()"), icon=":material/open_in_new:"
    )
if detail.retraction_status:
    message = f"PubMed marks this record: {RetractionStatus(detail.retraction_status).label}."
    if detail.notices:
        message += " " + "; ".join(detail.notices) + "."
    st.warning(md_escape(message))
if detail.deleted_in_pubmed:
    st.warning("PubMed deleted this record; it stays here because reviewers used it.")


def _design_confirmation(detail: StudyDetail) -> None:
    """Confirm the suggested design as it is, or correct it: kept with the reviewer's name."""
    options = [d.value for d in DESIGN_ORDER]
    chosen = st.selectbox(
        "Design",
        options,
        index=options.index(StudyDesign(detail.design).value),
        format_func=lambda d: StudyDesign(d).label,
        key=f"design-confirm-{detail.pmid}",
    )
    if st.button("Confirm this design", key=f"design-confirm-button-{detail.pmid}", icon=":material/check:"):
        with open_session(url) as session:
            actor = get_user(session, user.name)
            if chosen == StudyDesign(detail.design).value:
                confirm_design(session, actor, detail.pmid)
            else:
                correct_design(
                    session, actor, detail.pmid, StudyDesign(chosen), "corrected on the Studies page"
                )
            session.commit()
        data.after_design_change()
        st.rerun()


facts, text = st.columns([2, 3], gap="large")
with facts:
    design_line = f"**Design:** {StudyDesign(detail.design).label}"
    if detail.design != detail.suggested_design:
        design_line += f" (PubMed suggested {StudyDesign(detail.suggested_design).label})"
    st.markdown(design_line)
    if detail.is_notice:
        concerns = f" about PMID {detail.notice_of}" if detail.notice_of else ""
        st.info(f"A publication notice{concerns}, not a study: never counted in a verdict.")
    elif not detail.design_history:
        st.caption(
            md_escape(
                f"Suggested with confidence {detail.design_confidence:.2f} from: "
                + ("; ".join(detail.design_cues) or "no telling features")
            )
        )
    if detail.needs_design_confirmation:
        st.warning(
            "Low-confidence design: a reviewer confirms or corrects it before its claims can be signed off."
        )
        if user.can(Action.ASSESS):
            _design_confirmation(detail)
    for change in detail.design_history:
        st.caption(
            md_escape(
                f"{change.at:%Y-%m-%d} {change.by}: {StudyDesign(change.previous).label} → {StudyDesign(change.design).label}"
                + (f" ({change.reason})" if change.reason else "")
            )
        )
    st.markdown("**Publication types:** " + md_escape(", ".join(detail.publication_types) or "none"))
    if detail.mesh_terms:
        st.markdown("**MeSH:** " + md_escape("; ".join(detail.mesh_terms)))
    if detail.keywords:
        st.markdown("**Keywords:** " + md_escape("; ".join(detail.keywords)))
    ids = (
        [f"PMID {detail.pmid}"]
        + ([f"DOI {detail.doi}"] if detail.doi else [])
        + ([detail.pmcid] if detail.pmcid else [])
    )
    st.caption(md_escape(" · ".join(ids)))
    for revision in detail.revisions:
        st.caption(
            md_escape(f"{revision.at:%Y-%m-%d}: {revision.change} ({', '.join(revision.fields) or 'record'})")
        )
with text:
    html_block(plain_html(detail.abstract) if detail.abstract else "<p><i>No abstract in PubMed.</i></p>")

st.subheader("Assessments")
if not detail.claims:
    st.caption("No reviewer has judged this study for any claim yet.")
sentences = [s.text for s in split_sentences(detail.abstract)]
for claim_votes in detail.claims:
    verdict = badge(claim_votes.verdict) if claim_votes.verdict else badge(None, "awaiting an editor")
    if claim_votes.state == "hidden":
        verdict = badge("not_relevant", "hidden (blind mode)")
    items = "".join(
        f"<li>{escape(v.reviewer)}: {badge(v.verdict)}"
        + (f' <span class="ke-quote">“{escape(v.quote)}”</span>' if v.quote else "")
        + (f" — {escape(v.note)}" if v.note else "")
        + f" <small>(design: {escape(v.design.label)}, version {v.version})</small></li>"
        for v in claim_votes.votes
    )
    html_block(
        f"<p><b>{escape(claim_votes.claim_key)}</b> — {escape(claim_votes.statement)} {verdict}</p>"
        f'<ul class="ke-votes">{items}</ul>'
    )
    if claim_votes.hidden:
        st.caption(
            f"Blind mode: {claim_votes.hidden} vote(s) by others stay hidden until you judge this study for this claim."
        )
    own = next((v for v in claim_votes.votes if v.reviewer == user.name), None)
    if own is not None and user.can(Action.ASSESS):
        with st.expander(
            f"Change your verdict for {claim_votes.claim_key} (now {VERDICT_LABELS[own.verdict]})"
        ):
            vote_editor(
                url,
                user.name,
                title=detail.title,
                sentences=sentences,
                vote=own,
                key=f"edit-{claim_votes.claim_key}-{detail.pmid}",
                on_saved=data.after_assessment,
            )
