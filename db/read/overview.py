"""The Overview page's reads: how big and fresh the corpus is, and its studies by year and design."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session

from db.clock import utcnow
from db.corpus.articles import corpus_summary
from db.corpus.design import DESIGN_TIER
from db.corpus.study_facts import study_facts
from db.models import Article, HarvestRun
from db.read.cards import DESIGN_ORDER
from db.vocab import RunStatus, StudyDesign


@dataclass(frozen=True)
class Freshness:
    articles: int
    with_abstract: int
    retracted: int
    newest_year: int | None
    oldest_year: int | None
    last_run: dict[str, Any] | None  # the latest harvest or import, any outcome
    last_harvest: dict[str, Any] | None  # the latest successful harvest
    added_since_last_harvest: int
    added_last_7_days: int
    last_success: dict[str, Any] | None = None  # the latest successful harvest or import
    succeeded_runs: dict[str, int] = field(default_factory=dict)  # successful runs per kind
    last_failure: dict[str, Any] | None = None  # the latest run, when it failed or was interrupted


def corpus_freshness(session: Session, now: datetime | None = None) -> Freshness:
    """Corpus size and how fresh it is: the last runs, and what arrived since."""
    summary = corpus_summary(session)
    runs = HarvestRun.__table__
    last_run = session.execute(select(runs).order_by(runs.c.id.desc()).limit(1)).mappings().first()
    last_harvest = (
        session.execute(
            select(runs)
            .where(runs.c.kind == "harvest", runs.c.status == RunStatus.SUCCEEDED.value)
            .order_by(runs.c.id.desc())
            .limit(1)
        )
        .mappings()
        .first()
    )
    succeeded = runs.c.status == RunStatus.SUCCEEDED.value
    last_success = (
        session.execute(select(runs).where(succeeded).order_by(runs.c.id.desc()).limit(1)).mappings().first()
    )
    per_kind = session.execute(select(runs.c.kind, func.count()).where(succeeded).group_by(runs.c.kind))
    failed = last_run is not None and last_run["status"] in (
        RunStatus.FAILED.value,
        RunStatus.INTERRUPTED.value,
    )
    table = Article.__table__
    now = now or utcnow()

    def added_since(moment: datetime) -> int:
        return int(session.scalar(select(func.count()).where(table.c.first_seen_at >= moment)) or 0)

    since_harvest = 0
    if last_harvest is not None:
        # Records the harvest itself added count as new too: "new since" the previous picture.
        since_harvest = added_since(last_harvest["started_at"])
    return Freshness(
        articles=summary.articles,
        with_abstract=summary.with_abstract,
        retracted=summary.retracted,
        newest_year=summary.newest_year,
        oldest_year=summary.oldest_year,
        last_run=dict(last_run) if last_run is not None else None,
        last_harvest=dict(last_harvest) if last_harvest is not None else None,
        added_since_last_harvest=since_harvest,
        added_last_7_days=added_since(now - timedelta(days=7)),
        last_success=dict(last_success) if last_success is not None else None,
        succeeded_runs={kind: int(n) for kind, n in per_kind},
        last_failure=dict(last_run) if failed and last_run is not None else None,
    )


@dataclass(frozen=True)
class YearDesignCount:
    year: int
    design: StudyDesign
    design_label: str  # design.label, a column of its own for the charts
    tier: int
    studies: int


def studies_by_year_and_design(session: Session) -> list[YearDesignCount]:
    """How many studies per publication year and design (studies without a year are left out)."""
    tally: Counter[tuple[int, StudyDesign]] = Counter(
        (fact.pub_year, fact.design) for fact in study_facts(session).values() if fact.pub_year is not None
    )
    return [
        YearDesignCount(year, design, design.label, int(DESIGN_TIER[design]), n)
        for (year, design), n in sorted(
            tally.items(), key=lambda kv: (kv[0][0], DESIGN_ORDER.index(kv[0][1]))
        )
    ]
