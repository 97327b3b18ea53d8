"""Cached reads for the pages, and what to clear after each kind of write.

Every loader is keyed on the database URL and its filters (hashable values, never a session or
an engine, which would hide changes), has a ttl, and returns plain data: cache_data pickles what
it returns, and ORM objects would detach. Per-user views (blind mode) are keyed on the user's name.
All loaders live in this one module so that a write on one page can clear what another page shows.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from db.corpus.runs import recent_runs
from db.engine import open_session
from db.models import Claim
from db.read import cards, choices, drilldown, editor, evidence_profile, overview
from db.read import studies as dashboard_studies
from db.review.auth import users_with_password
from db.review.roles import get_user, list_users
from db.review.sources import pending_proposals
from db.review.verdicts import DesignScope

SHORT, MEDIUM, LONG = 30, 120, 600  # seconds


@st.cache_data(ttl=LONG, show_spinner=False)
def documents(db_url: str) -> list[choices.DocumentInfo]:
    with open_session(db_url) as session:
        return choices.documents(session)


@st.cache_data(ttl=LONG, show_spinner=False)
def claim_choices(db_url: str, document_id: int | None = None) -> list[choices.ClaimChoice]:
    with open_session(db_url) as session:
        return choices.claim_choices(session, document_id)


@st.cache_data(ttl=MEDIUM, show_spinner="Weighing the evidence…")
def claim_cards(db_url: str, viewer: str, document_id: int | None, scope: str) -> list[cards.ClaimCard]:
    with open_session(db_url) as session:
        user = get_user(session, viewer)
        return cards.claim_cards(session, user, document_id=document_id, scope=DesignScope(scope))


@st.cache_data(ttl=MEDIUM, show_spinner="Weighing the evidence…")
def claim_profile(db_url: str, viewer: str, claim_id: int) -> evidence_profile.EvidenceProfile | None:
    with open_session(db_url) as session:
        return evidence_profile.claim_profile(session, get_user(session, viewer), claim_id)


@st.cache_data(ttl=MEDIUM, show_spinner=False)
def claim_studies(
    db_url: str,
    viewer: str,
    claim_id: int,
    verdicts: tuple[str, ...],
    designs: tuple[str, ...],
    limit: int,
    offset: int,
) -> drilldown.StudyPage:
    with open_session(db_url) as session:
        user = get_user(session, viewer)
        return drilldown.claim_studies(
            session, user, claim_id, verdicts=verdicts, designs=designs, limit=limit, offset=offset
        )


@st.cache_data(ttl=MEDIUM, show_spinner=False)
def conflicts(db_url: str, actor: str, claim_id: int | None, limit: int, offset: int) -> editor.ConflictPage:
    with open_session(db_url) as session:
        user = get_user(session, actor)
        return editor.conflict_page(session, user, claim_id=claim_id, limit=limit, offset=offset)


@st.cache_data(ttl=SHORT, show_spinner=False)
def audit(db_url: str, claim_id: int | None, limit: int) -> list[editor.AuditRow]:
    with open_session(db_url) as session:
        return editor.audit_rows(session, claim_id=claim_id, limit=limit)


@st.cache_data(ttl=MEDIUM, show_spinner=False)
def freshness(db_url: str) -> overview.Freshness:
    with open_session(db_url) as session:
        return overview.corpus_freshness(session)


@st.cache_data(ttl=LONG, show_spinner=False)
def year_design(db_url: str) -> list[overview.YearDesignCount]:
    with open_session(db_url) as session:
        return overview.studies_by_year_and_design(session)


@st.cache_data(ttl=LONG, show_spinner="Loading the studies…")
def study_index(db_url: str) -> pd.DataFrame:
    with open_session(db_url) as session:
        rows = dashboard_studies.study_index(session)
    columns = ["pmid", "title", "journal", "year", "design", "design_label", "publication_types"]
    columns += ["retraction_status", "doi", "has_abstract"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["year"] = frame["year"].astype("Int64")
    return frame


@st.cache_data(ttl=LONG, show_spinner=False)
def publication_types(db_url: str) -> list[str]:
    frame = study_index(db_url)
    return [name for name, _ in dashboard_studies.publication_type_counts(frame.to_dict("records"))]


@st.cache_data(ttl=MEDIUM, show_spinner=False)
def judged_by_claim(db_url: str) -> dict[int, set[int]]:
    with open_session(db_url) as session:
        return dashboard_studies.judged_pmids_by_claim(session)


@st.cache_data(ttl=LONG, show_spinner=False)
def search(db_url: str, text: str) -> list[tuple[int, float]]:
    with open_session(db_url) as session:
        return dashboard_studies.search_pmids(session, text)


@st.cache_data(ttl=MEDIUM, show_spinner=False)
def study_detail(db_url: str, viewer: str, pmid: int) -> dashboard_studies.StudyDetail:
    with open_session(db_url) as session:
        return dashboard_studies.study_detail(session, get_user(session, viewer), pmid)


@st.cache_data(ttl=LONG, show_spinner="Ordering the review queue…")
def review_order(db_url: str, claim_id: int) -> dashboard_studies.QueueOrder:
    with open_session(db_url) as session:
        claim = session.get(Claim, claim_id)
        assert claim is not None
        return dashboard_studies.review_order(session, claim)


@st.cache_data(ttl=LONG, show_spinner=False)
def claim_terms(db_url: str, claim_id: int) -> list[str]:
    with open_session(db_url) as session:
        return dashboard_studies.claim_terms_for(session, claim_id)


@st.cache_data(ttl=SHORT, show_spinner=False)
def runs(db_url: str, limit: int = 30) -> list[dict[str, Any]]:
    with open_session(db_url) as session:
        return recent_runs(session, limit=limit)


@st.cache_data(ttl=SHORT, show_spinner=False)
def users(db_url: str) -> list[dict[str, Any]]:
    with open_session(db_url) as session:
        with_password = users_with_password(session)
        return [
            {
                "name": u.name,
                "role": str(u.role),
                "active": u.active,
                "password": u.id in with_password,
                "since": u.created_at,
            }
            for u in list_users(session)
        ]


@st.cache_data(ttl=SHORT, show_spinner=False)
def proposals(db_url: str, document_id: int) -> list[dict[str, Any]]:
    with open_session(db_url) as session:
        return [
            {"id": p.id, "sentence": p.sentence, "cues": list(p.cues or []), "start": p.span_start}
            for p in pending_proposals(session, document_id)
        ]


# --- what to clear after a write ------------------------------------------------------------------


def after_assessment() -> None:
    """A vote was recorded or changed: meters, drill-downs, conflicts, study pages, the audit."""
    for loader in (
        claim_cards,
        claim_profile,
        claim_studies,
        conflicts,
        audit,
        judged_by_claim,
        study_detail,
    ):
        loader.clear()


def after_resolution() -> None:
    after_assessment()


def after_signoff() -> None:
    for loader in (claim_cards, claim_profile, audit):
        loader.clear()


def after_claims_change() -> None:
    """Documents, claims or proposals changed."""
    for loader in (
        documents,
        claim_choices,
        claim_cards,
        claim_profile,
        claim_terms,
        proposals,
        audit,
        review_order,
    ):
        loader.clear()


def after_design_change() -> None:
    """A study's design was confirmed or corrected: every verdict and list that shows designs."""
    for loader in (claim_cards, claim_profile, claim_studies, study_detail, study_index, review_order):
        loader.clear()


def after_users_change() -> None:
    users.clear()
    audit.clear()


def after_corpus_change() -> None:
    """A harvest or an import: every study-derived view may have moved."""
    st.cache_data.clear()
