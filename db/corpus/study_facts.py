"""Study facts in bulk: each study's current design and PubMed standing, what the verdict rule needs.

Cached per process for every study at once (rebuilt when articles or design corrections change),
so the dashboard and sign-off read a large review's studies without parsing their MeSH each time.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session

from db.chunks import chunked
from db.corpus.classifier import LOW_CONFIDENCE
from db.models import Article, DesignCorrection
from db.review.assessments import latest_design_corrections
from db.vocab import DESIGN_BY_VALUE, StudyDesign

# Above this many PMIDs, reading every article is cheaper than a long IN (...) list.
_ALL_ARTICLES_FROM = 2_000


@dataclass(frozen=True, slots=True)
class StudyFacts:
    """What the verdict rule needs of a study: its current design and its PubMed standing."""

    design: StudyDesign
    retraction_status: str | None
    pub_year: int | None
    # 1.0 once a reviewer set or confirmed the design (a DesignCorrection), else the prefill's.
    design_confidence: float = 1.0
    is_notice: bool = False

    @property
    def needs_design_confirmation(self) -> bool:
        """A prefilled design too unsure to sign a claim off on until a person confirms it."""
        return self.design_confidence < LOW_CONFIDENCE


def study_facts(session: Session, pmids: Collection[int] | None = None) -> dict[int, StudyFacts]:
    """Design (latest reviewer correction, else the stored prefill) and standing per PMID.

    `None` means every article. Same rule as db.review.assessments.effective_design, without a query
    per study. Large requests are served from a per-process copy of every study's facts that is
    rebuilt only when articles or design corrections change (see `facts_signature`).
    """
    if pmids is None or len(pmids) > _ALL_ARTICLES_FROM:
        every = _all_study_facts(session)
        return every if pmids is None else {p: every[p] for p in pmids if p in every}
    return _read_study_facts(session, sorted(pmids))


def _read_study_facts(session: Session, pmids: list[int] | None) -> dict[int, StudyFacts]:
    table = Article.__table__
    columns = (
        table.c.pmid,
        table.c.design,
        table.c.design_confidence,
        table.c.is_notice,
        table.c.retraction_status,
        table.c.pub_year,
    )
    rows: list[Any] = []
    if pmids is None:
        # Fetched at once: row by row costs SQLAlchemy twice the reading.
        rows = list(session.execute(select(*columns)).all())
    else:
        for chunk in chunked(pmids):
            rows.extend(session.execute(select(*columns).where(table.c.pmid.in_(chunk))))
    corrected = latest_design_corrections(session, pmids)
    facts = {}
    for pmid, design, confidence, is_notice, status, year in rows:
        reviewer = corrected.get(pmid)
        if reviewer is not None:
            facts[pmid] = StudyFacts(reviewer, status, year, 1.0, bool(is_notice))
        else:
            # 100,000 times at each start: the member from a dict, not StudyDesign(design).
            facts[pmid] = StudyFacts(
                DESIGN_BY_VALUE[design], status, year, float(confidence), bool(is_notice)
            )
    return facts


class FactsCache:
    """Every study's facts per database, with the signature they were read at. Parsing 20,000 rows
    of MeSH JSON takes about half a second; the signature query takes a few milliseconds."""

    def __init__(self) -> None:
        self.kept: dict[str, tuple[tuple[Any, ...], dict[int, StudyFacts]]] = {}
        self.lock = threading.Lock()

    def forget(self, url: str) -> None:
        """Drop what is kept of one database."""
        with self.lock:
            self.kept.pop(url, None)

    def clear(self) -> None:
        with self.lock:
            self.kept.clear()


FACTS = FactsCache()


def facts_signature(session: Session) -> tuple[Any, ...]:
    """Moves whenever an article or a design correction is added, changed or deleted."""
    # Any insert, update or delete of an article moves its count or max(updated_at) (updates set
    # updated_at); corrections are only ever added.
    articles = Article.__table__
    corrections = DesignCorrection.__table__
    row = session.execute(
        select(
            select(func.count()).select_from(articles).scalar_subquery(),
            select(func.max(articles.c.updated_at)).scalar_subquery(),
            select(func.count()).select_from(corrections).scalar_subquery(),
            select(func.max(corrections.c.id)).scalar_subquery(),
        )
    ).one()
    return tuple(row)


def _all_study_facts(session: Session) -> dict[int, StudyFacts]:
    key = str(session.get_bind().engine.url)
    signature = facts_signature(session)
    cached = FACTS.kept.get(key)
    if cached is not None and cached[0] == signature:
        return cached[1]
    with FACTS.lock:
        cached = FACTS.kept.get(key)
        if cached is not None and cached[0] == signature:
            return cached[1]
        facts = _read_study_facts(session, None)
        FACTS.kept[key] = (signature, facts)
        return facts
