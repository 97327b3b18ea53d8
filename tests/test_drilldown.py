"""The Claims page's study list (db.read.drilldown.claim_studies) equals a plain recomputation from
the votes: which studies, in which order, page by page, and how many blind mode hides."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import select
from sqlmodel import Session

from db.engine import open_session
from db.models import Article, DesignCorrection, User
from db.read.cards import DESIGN_ORDER
from db.read.drilldown import claim_studies
from db.read.pairs import pair_summaries
from db.review.assessments import effective_design
from db.review.claims import list_claims
from db.review.pairs import visible_assessments
from tests.test_pair_state import build_review, random_round

FILTERS = [
    {},
    {"verdicts": ["supported", "mixed"]},
    {"verdicts": ["not_relevant"]},
    {"verdicts": ["conflict", "unsupported"]},
    {"states": ["resolved"]},
    {"states": ["conflict", "agreed"]},
    {"designs": ["controlled_trial", "meta_analysis", "case_report"]},
    {"designs": ["observational"], "verdicts": ["supported", "not_relevant"]},
]


def expected_pages(
    session: Session, viewer: User, claim_id: int, filters: dict[str, list[str]]
) -> tuple[list[tuple[object, ...]], int]:
    """Every study the viewer may see, filtered and sorted as the page promises (strongest design,
    then newest, then highest PMID), from the votes grouped per pair; and how many are hidden."""
    claim = next(c for c in list_claims(session) if c.id == claim_id)
    seen = {a.pmid for a in visible_assessments(session, viewer, claim)}
    summaries = pair_summaries(session, [claim_id]).get(claim_id, [])
    rows = []
    for p in summaries:
        if p.pmid not in seen:
            continue
        article = session.get(Article, p.pmid)
        assert article is not None
        design = effective_design(session, article)
        verdict = p.verdict.value if p.verdict is not None else "conflict"
        if (
            ("verdicts" in filters and verdict not in filters["verdicts"])
            or ("states" in filters and p.state.value not in filters["states"])
            or ("designs" in filters and design.value not in filters["designs"])
        ):
            continue
        key = (DESIGN_ORDER.index(design), -(article.pub_year or 0), -p.pmid)
        rows.append((key, (p.pmid, p.state.value, p.verdict, p.reopened, design)))
    rows.sort(key=lambda row: row[0])
    return [row for _, row in rows], len(summaries) - len({p.pmid for p in summaries} & seen)


@pytest.mark.slow  # random writes, then every claim, viewer, filter and page
def test_claim_studies_pages_equal_the_votes_in_order(db_url: str) -> None:
    with open_session(db_url) as session:
        users = build_review(session)
        for n in range(2):
            random_round(session, {k: session.merge(u) for k, u in users.items()}, random.Random(11 + n), 60)
        # The writes reached what the order and the filters tell apart.
        assert session.scalars(select(DesignCorrection)).first() is not None
    hid, listed = 0, 0
    for name in ("editor", "r1"):  # r1 is blinded on one document
        with open_session(db_url) as session:
            viewer = session.get(User, users[name].id)
            assert viewer is not None
            for claim in list_claims(session):
                assert claim.id is not None
                for filters in FILTERS:
                    expected, hidden = expected_pages(session, viewer, claim.id, filters)
                    shown = []
                    for offset in range(0, len(expected) + 3, 3):
                        page = claim_studies(session, viewer, claim.id, limit=3, offset=offset, **filters)
                        assert (page.total, page.hidden) == (len(expected), hidden), (
                            name,
                            claim.key,
                            filters,
                        )
                        shown += [(r.pmid, r.state.value, r.verdict, r.reopened, r.design) for r in page.rows]
                    assert shown == expected, (name, claim.key, filters)
                    hid, listed = hid + hidden, listed + len(expected)
    assert hid and listed > 3  # blind mode hid some, and pages held more than one page
