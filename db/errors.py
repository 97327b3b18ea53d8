"""The errors db/ raises for people to read: each message says what was wrong and what to do next."""

from __future__ import annotations


class DatabaseError(RuntimeError):
    """The database cannot be opened or written; the message says what to do."""


class ReviewError(Exception):
    """Base of the review workflow's errors; the message says what was wrong and what to do."""


class PermissionDenied(ReviewError):
    """The acting user's role does not allow the action."""


class NotFoundError(ReviewError, LookupError):
    """A claim, user, document, article or assessment that does not exist."""


class InvalidInputError(ReviewError, ValueError):
    """A value breaks a domain rule (span, quote, verdict, key format, ...)."""


class ConflictError(ReviewError):
    """Someone else changed the record since it was read, or it already exists."""


class ImportRejected(ReviewError):
    """An import found bad rows and wrote nothing; `problems` lists (line, reason)."""

    def __init__(self, source: str, problems: list[tuple[int, str]]) -> None:
        self.source = source
        self.problems = problems
        rows = len({line for line, _ in problems})
        counted = f"{rows} bad row(s)" + (f" ({len(problems)} problems)" if len(problems) != rows else "")
        lines = [f"{source}: {counted}, nothing was imported; fix them and import again:"]
        lines += [f"  line {line}: {reason}" for line, reason in problems]
        super().__init__("\n".join(lines))


class AuditImmutableError(ReviewError):
    """Something tried to change or delete an audit event."""


class SignInThrottled(ReviewError):
    """Too many wrong passwords in a row for a name (or from a client): attempts wait `retry_after` s."""

    def __init__(self, name: str, retry_after: int, *, per_client: bool = False) -> None:
        self.name = name
        self.retry_after = retry_after
        who = "from this address" if per_client else f"for {name}"
        super().__init__(f"Too many wrong passwords {who}; try again in {retry_after} s.")
