"""A terminal progress bar for harvests and imports: records done/total, rate, ETA."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    """Redraws one line on a terminal; prints a line per update at most every few seconds otherwise."""

    def __init__(self, label: str, stream: TextIO | None = None, width: int = 28) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.started = time.monotonic()
        self._interactive = self.stream.isatty()
        self._last_draw = 0.0
        self._done = 0

    def __call__(self, done: int, total: int | None) -> None:
        self._done = done
        now = time.monotonic()
        finished = total is not None and done >= total
        if not finished and now - self._last_draw < (0.1 if self._interactive else 5.0):
            return
        self._last_draw = now
        line = self.render(done, total, now - self.started)
        if self._interactive:
            self.stream.write("\r" + line.ljust(100)[:100])
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def render(self, done: int, total: int | None, elapsed: float) -> str:
        rate = done / elapsed if elapsed > 0 else 0.0
        if total:
            fraction = min(done / total, 1.0)
            filled = int(fraction * self.width)
            bar = "#" * filled + "-" * (self.width - filled)
            eta = (total - done) / rate if rate > 0 else None
            eta_text = _duration(eta) if eta is not None else "?"
            return f"{self.label} [{bar}] {done:,}/{total:,} {rate:,.0f} rec/s ETA {eta_text}"
        return f"{self.label} {done:,} records {rate:,.0f} rec/s"

    def close(self) -> None:
        if self._interactive:
            self.stream.write("\n")
            self.stream.flush()


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"
