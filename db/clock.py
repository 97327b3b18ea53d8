"""The one clock of stored timestamps: aware UTC (naive values read back from SQLite are UTC too)."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
