"""The daily scheduler behind `harvest --schedule daily`: run a job every day at a set local time."""

from __future__ import annotations

import logging
import signal
import sys
import time as time_module
from collections.abc import Callable
from datetime import datetime, time, timedelta
from types import FrameType
from typing import Any

Clock = Callable[[], datetime]
Sleep = Callable[[float], None]

DEFAULT_AT = time(3, 0)
# Sleep in short steps and look at the clock again: a suspended laptop or a clock change then
# shifts the next run by at most this much instead of by the time spent asleep.
MAX_NAP_SECONDS = 60.0

schedule_log = logging.getLogger("ketamine_evidence.schedule")


def local_now() -> datetime:
    """The wall clock the scheduler reads by default (a test replaces it, with `pause`)."""
    return datetime.now().astimezone()


def pause(seconds: float) -> None:
    """How the scheduler sleeps by default."""
    time_module.sleep(seconds)


def log_to_stderr() -> None:
    """Timestamped lines on stderr: what journald, cron mail or a terminal shows for a long-running loop."""
    for old in list(schedule_log.handlers):
        schedule_log.removeHandler(old)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    schedule_log.addHandler(handler)
    schedule_log.setLevel(logging.INFO)
    schedule_log.propagate = False


def next_daily_run(now: datetime, at: time) -> datetime:
    """The first moment at or after `now` whose wall-clock time is `at` (same timezone as `now`)."""
    candidate = now.replace(hour=at.hour, minute=at.minute, second=0, microsecond=0)
    if candidate < now:
        candidate = (candidate.replace(tzinfo=None) + timedelta(days=1)).replace(tzinfo=now.tzinfo)
    return candidate


def run_daily(
    job: Callable[[], None],
    at: time,
    *,
    clock: Clock | None = None,
    sleep: Sleep | None = None,
    max_runs: int | None = None,
) -> int:
    """Run `job` every day at `at` until stopped (Ctrl-C or SIGTERM), surviving failed runs.

    Returns 0 when stopped between runs; a stop during a run propagates (the harvest marks its
    run interrupted and keeps its committed batches). `max_runs` bounds the loop for tests.
    """
    clock = clock or local_now
    sleep = sleep or pause
    previous = _stop_on_sigterm()
    runs = 0
    try:
        last_due: datetime | None = None
        while max_runs is None or runs < max_runs:
            now = clock()
            if last_due is not None:  # a quick run must not be followed by a second one the same day
                now = max(now, last_due + timedelta(seconds=1))
            due = last_due = next_daily_run(now, at)
            try:
                schedule_log.info("Next harvest at %s.", f"{due:%Y-%m-%d %H:%M %Z}".strip())
                _sleep_until(due, clock, sleep)
            except KeyboardInterrupt:
                schedule_log.info("Stopped; no harvest was running.")
                return 0
            runs += 1
            schedule_log.info("Harvest %d starting.", runs)
            try:
                job()
            except Exception as exc:  # noqa: BLE001  (a failed run must not end the schedule)
                text = str(exc).strip().splitlines()
                schedule_log.error(
                    "Harvest %d failed: %s; the next one goes ahead as planned.",
                    runs,
                    text[0] if text else type(exc).__name__,
                )
            else:
                schedule_log.info("Harvest %d finished.", runs)
        return 0
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _sleep_until(due: datetime, clock: Clock, sleep: Sleep) -> None:
    while (remaining := (due - clock()).total_seconds()) > 0:
        sleep(min(remaining, MAX_NAP_SECONDS))


def _stop_on_sigterm() -> Any:
    # systemd and `kill` send SIGTERM: treat it like Ctrl-C, so a running harvest logs itself interrupted.
    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    try:
        return signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread (an embedding program): leave signals alone
        return None
