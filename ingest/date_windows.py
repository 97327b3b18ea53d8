"""Splitting a search too large to page through into Entrez-date windows, with as few searches as we can.

PubMed's esearch pages through only the first 9,999 results of a search. Past that, the harvest
searches consecutive date ranges ("windows") of at most that many records each, and pages through
every window's own history-server result set.

Every search of a range is an HTTP request to NCBI, so the windows are found by sweeping the dates
from the oldest and guessing, for each window, the end day that holds about as many records as one
window may. The guess interpolates the cumulative count F(day) (records entered up to that day)
between the points already known: F is 0 before the earliest date and the whole count after
tomorrow, and each search of [start, end] tells F(end) exactly because the windows before `start`
add up to F(start - 1). Until the first records are found the literature is assumed to grow
exponentially, doubling every decade as PubMed roughly has, which puts the first guesses in recent
decades rather than in 1850; after that, each window is assumed as dense as the one before. A guess
that holds too many records is searched again, narrower; one that holds at most the limit is the
window, and its search is the one efetch pages through, so it is not wasted.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from ingest.eutils_answers import EutilsError, SearchResult

# The sweep starts here; the harvest's sum check catches anything outside [EARLIEST_EDAT, tomorrow].
EARLIEST_EDAT = date(1700, 1, 1)
GROWTH_DAYS = 10 * 365.25 / math.log(2)  # e-folding time of "doubles every decade", in days
# Aim each window at this share of the limit: a guess a little high costs one more search.
WINDOW_FILL = 0.9

Search = Callable[[date, date], SearchResult]


@dataclass(frozen=True, slots=True)
class DateWindow:
    """A slice of the search by Entrez date (inclusive days), small enough to page through."""

    mindate: date | None
    maxdate: date | None
    search: SearchResult

    @property
    def count(self) -> int:
        return self.search.count

    def as_dict(self) -> dict[str, Any]:
        return {
            "mindate": ncbi_day(self.mindate) if self.mindate else None,
            "maxdate": ncbi_day(self.maxdate) if self.maxdate else None,
            "count": self.count,
        }


def ncbi_day(value: date) -> str:
    return value.strftime("%Y/%m/%d")


@dataclass(frozen=True, slots=True)
class WindowPlan:
    windows: list[DateWindow]
    searches: int  # esearch requests made to find them


def plan_windows(search: Search, total: int, limit: int, last_day: date) -> WindowPlan:
    """Windows of at most `limit` records covering [EARLIEST_EDAT, last_day], in date order.

    `total` is the whole search's count; `search(start, end)` runs it for Entrez dates start..end
    (inclusive) on the history server. Windows holding no records are left out.
    """
    known = _CumulativeCounts(EARLIEST_EDAT - timedelta(days=1), last_day, total)
    windows: list[DateWindow] = []
    start, before, searches = EARLIEST_EDAT, 0, 0
    rate: float | None = None  # records a day in the last window that had any
    while start <= last_day and before < known.at_last_day:
        end = known.guess_end(start, before, limit, rate)
        result = search(start, end)
        searches += 1
        if result.count > limit:
            if start == end:
                raise EutilsError(
                    f"PubMed has {result.count:,} records entered on {ncbi_day(start)} alone, more than "
                    f"the {limit:,} one search can page through; narrow the query."
                )
            known.add(end, before + result.count)
            continue
        if result.count:
            if windows:  # the first window reaches back to 1700: its records a day say nothing
                rate = result.count / ((end - start).days + 1)
            windows.append(DateWindow(start, end, result))
        before += result.count
        known.add(end, before)
        start = end + timedelta(days=1)
    return WindowPlan(windows, searches)


class _CumulativeCounts:
    """Known points of F(day), and guesses of where F reaches a target between them."""

    def __init__(self, before_first: date, last_day: date, total: int) -> None:
        self._origin = last_day.toordinal()
        self._days = [before_first.toordinal(), self._origin]
        self._counts = [0, total]

    @property
    def at_last_day(self) -> int:
        return self._counts[-1]

    def add(self, day: date, count: int) -> None:
        ordinal = day.toordinal()
        index = bisect.bisect_left(self._days, ordinal)
        if index < len(self._days) and self._days[index] == ordinal:
            self._counts[index] = count
        else:
            self._days.insert(index, ordinal)
            self._counts.insert(index, count)
        if ordinal == self._origin:
            return
        # PubMed may have changed since an earlier search: keep F non-decreasing.
        for later in range(index + 1, len(self._counts)):
            self._counts[later] = max(self._counts[later], count)

    def guess_end(self, start: date, before: int, limit: int, rate: float | None) -> date:
        """The day a window from `start` should end at to hold about WINDOW_FILL * limit records.

        Between two searched days, F is interpolated linearly (they are close). Towards the last day,
        the literature is assumed to grow exponentially: from the previous window's density (`rate`,
        records a day) once there is one, else spreading what is left between here and the last day.
        """
        first = start.toordinal()
        if self._counts[-1] - before <= limit:
            return date.fromordinal(self._origin)  # the rest fits in one window
        target = before + max(1, int(WINDOW_FILL * limit))
        # The first known point past `start - 1` whose count reaches the target bounds the guess.
        index = next(
            i
            for i, (day, count) in enumerate(zip(self._days, self._counts, strict=True))
            if day >= first and count >= target
        )
        high_day, high_count = self._days[index], self._counts[index]
        low_day, low_count = first - 1, before  # F(start - 1): the windows before add up to it
        if self._days[index - 1] >= first:  # a nearer point, searched but holding too few
            low_day, low_count = self._days[index - 1], self._counts[index - 1]
        if high_day != self._origin:
            guess = low_day + math.floor(
                (high_day - low_day) * (target - low_count) / (high_count - low_count)
            )
        elif rate:  # as dense as the last window at first, growing as the literature does
            guess = low_day + math.floor(
                GROWTH_DAYS * math.log1p((target - low_count) / (rate * GROWTH_DAYS))
            )
        else:
            guess = self._interpolate(low_day, low_count, high_day, high_count, target)
        if high_count > before + limit:
            guess = min(guess, high_day - 1)  # that end is known to hold too many
        return date.fromordinal(max(first, min(guess, high_day)))

    def _interpolate(self, low_day: int, low_count: int, high_day: int, high_count: int, target: int) -> int:
        if high_count <= low_count or high_day <= low_day:
            return high_day
        share = (target - low_count) / (high_count - low_count)
        low, high = self._growth(low_day), self._growth(high_day)
        return math.floor(self._origin + GROWTH_DAYS * math.log(low + share * (high - low)))

    def _growth(self, day: int) -> float:
        return math.exp((day - self._origin) / GROWTH_DAYS)
