"""Planning Entrez-date windows for searches past PubMed's paging limit, against synthetic date spreads."""

from __future__ import annotations

import bisect
import math
import random
from datetime import date, timedelta

import pytest

from ingest.date_windows import EARLIEST_EDAT, plan_windows
from ingest.eutils_answers import EutilsError, SearchResult

LAST_DAY = date(2026, 11, 27)


class FakeSearch:
    """esearch over a list of Entrez dates: counts what falls in [start, end], records each call."""

    def __init__(self, days: list[date]) -> None:
        self.days = sorted(day.toordinal() for day in days)
        self.calls: list[tuple[date, date]] = []

    def __call__(self, start: date, end: date) -> SearchResult:
        self.calls.append((start, end))
        count = bisect.bisect_right(self.days, end.toordinal()) - bisect.bisect_left(
            self.days, start.toordinal()
        )
        return SearchResult(count=count, query_key="1", webenv=f"{start}..{end}", query_translation=None)


def growing_literature(count: int, doubling_years: float, first_year: int, seed: int) -> list[date]:
    """Entrez dates of a literature that doubles every `doubling_years` since `first_year`."""
    rng = random.Random(seed)
    first, last = date(first_year, 1, 1).toordinal(), LAST_DAY.toordinal()
    scale = doubling_years * 365.25 / math.log(2)
    spread = math.exp((last - first) / scale) - 1
    return [date.fromordinal(first + int(scale * math.log(1 + rng.random() * spread))) for _ in range(count)]


@pytest.mark.parametrize(
    ("count", "limit", "doubling_years", "first_year"),
    [(30_000, 9_999, 6, 1960), (100_000, 9_999, 15, 1900), (5_000, 2_000, 4, 1990), (12_000, 9_999, 8, 1950)],
)
def test_windows_cover_every_record_in_order_with_few_searches(
    count: int, limit: int, doubling_years: float, first_year: int
) -> None:
    search = FakeSearch(growing_literature(count, doubling_years, first_year, seed=count))
    plan = plan_windows(search, count, limit, LAST_DAY)
    assert sum(window.count for window in plan.windows) == count
    assert all(0 < window.count <= limit for window in plan.windows)
    bounds = [(window.mindate, window.maxdate) for window in plan.windows]
    assert all(start <= end for start, end in bounds)
    assert all(earlier[1] < later[0] for earlier, later in zip(bounds, bounds[1:], strict=False))
    # Each window's own search is the one efetch pages through: it came from the planning calls.
    assert {window.search.webenv for window in plan.windows} <= {f"{s}..{e}" for s, e in search.calls}
    assert plan.searches == len(search.calls)
    # Near the fewest windows possible, and about one search per window (bisecting the dates from
    # 1700, as the harvest once did, made about five).
    assert len(plan.windows) <= 1.3 * math.ceil(count / limit) + 2
    assert plan.searches <= 1.5 * len(plan.windows) + 3


def test_an_even_spread_is_split_into_nearly_full_windows() -> None:
    days = [date(2018, 1, 1) + timedelta(days=i // 4) for i in range(10_000)]  # 4 a day to 2024-11
    search = FakeSearch(days)
    plan = plan_windows(search, len(days), 2_000, LAST_DAY)
    assert sum(window.count for window in plan.windows) == 10_000
    assert len(plan.windows) <= 7 and plan.searches <= 1.5 * len(plan.windows) + 3


def test_a_single_day_over_the_limit_cannot_be_split() -> None:
    search = FakeSearch([date(2024, 5, 1)] * 30)
    with pytest.raises(EutilsError, match="30 records entered on 2024/05/01 alone, more than the 20"):
        plan_windows(search, 30, 20, LAST_DAY)


def test_records_added_while_planning_are_still_covered() -> None:
    days = [date(2021, 1, 1) + timedelta(days=i) for i in range(300)]
    search = FakeSearch(days)
    # The whole search counted 250 a moment ago; PubMed now has 300: the sweep follows the searches.
    plan = plan_windows(search, 250, 100, LAST_DAY)
    assert sum(window.count for window in plan.windows) == 300
    assert all(window.count <= 100 for window in plan.windows)


def test_nothing_before_the_first_record_is_searched_twice() -> None:
    search = FakeSearch(growing_literature(20_000, 6, 1970, seed=7))
    plan_windows(search, 20_000, 9_999, LAST_DAY)
    assert search.calls[0][0] == EARLIEST_EDAT
    starts = [start for start, _ in search.calls]
    assert starts == sorted(starts)
