"""Wrong passwords in a row, per user name and per client, and how long further attempts wait.

Kept in process memory, not in the database: the dashboard is one Streamlit process, a check costs no
write (a burst of guesses must not become a burst of transactions, nor take a lock that real writes
wait on), and a schema change is not needed. The price: a restart forgets the counts, and several
dashboard processes behind one proxy each count on their own; the proxy's rate limit (docs/deploy.md,
section 5) bounds those cases.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

FAILURES_PER_USER = 5  # wrong passwords in a row for one name before attempts wait
FAILURES_PER_CLIENT = 20  # from one client across names: higher, as a team may share an address
FIRST_DELAY = timedelta(seconds=30)
LONGEST_DELAY = timedelta(minutes=15)


@dataclass
class _Run:
    failures: int = 0
    blocked_until: datetime | None = None


class SignInThrottle:
    """Counts wrong passwords in a row; after `limit` of them each further one doubles the wait
    (30 s, 1 min, 2 min ... at most 15 min). A success clears the count for the name and the client."""

    def __init__(self, per_user: int = FAILURES_PER_USER, per_client: int = FAILURES_PER_CLIENT) -> None:
        self._limits = {"user": per_user, "client": per_client}
        self._runs: dict[tuple[str, str], _Run] = {}
        self._lock = threading.Lock()  # Streamlit runs each browser session in its own thread

    def wait(self, name: str, client: str | None, now: datetime) -> tuple[str, int] | None:
        """("user" or "client", whole seconds to wait) when attempts are refused now, else None."""
        with self._lock:
            for kind, key in self._keys(name, client):
                run = self._runs.get((kind, key))
                if run is not None and run.blocked_until is not None and run.blocked_until > now:
                    return kind, math.ceil((run.blocked_until - now).total_seconds())
        return None

    def failed(self, name: str, client: str | None, now: datetime) -> int:
        """Count a wrong password; returns the failures in a row for the name."""
        with self._lock:
            for kind, key in self._keys(name, client):
                run = self._runs.setdefault((kind, key), _Run())
                run.failures += 1
                over = run.failures - self._limits[kind]
                if over >= 0:
                    run.blocked_until = now + min(FIRST_DELAY * 2**over, LONGEST_DELAY)
            return self._runs[("user", _normal(name))].failures

    def succeeded(self, name: str, client: str | None) -> int:
        """Clear the counts; returns how many wrong passwords for the name came before."""
        with self._lock:
            runs = [self._runs.pop((kind, key), None) for kind, key in self._keys(name, client)]
        return runs[0].failures if runs[0] is not None else 0

    def clear(self) -> None:
        with self._lock:
            self._runs.clear()

    @staticmethod
    def _keys(name: str, client: str | None) -> list[tuple[str, str]]:
        keys = [("user", _normal(name))]
        if client:
            keys.append(("client", client))
        return keys


def _normal(name: str) -> str:
    return name.strip().casefold()


SIGN_IN_THROTTLE = SignInThrottle()
