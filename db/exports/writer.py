"""The one way exports reach a file: written whole to a temporary file beside it, then renamed over it.

A failed or interrupted export (a full disk, Ctrl-C, a database error halfway) leaves the previous
file as it was and no half-written one; readers never see a partial file, since os.replace is atomic
on POSIX and Windows when both paths are on one filesystem (hence the temporary file's folder).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, TextIO, cast

from db.errors import InvalidInputError


def write_atomically(path: str | os.PathLike[str], content: str | bytes) -> Path:
    """Write `content` (text as UTF-8, newlines as given) to `path` whole, replacing any file there;
    returns the path. Raises InvalidInputError naming the path when it cannot be written."""
    target = Path(path)
    with _replacing(target, binary=True) as handle:
        handle.write(content.encode("utf-8") if isinstance(content, str) else content)
    return target


@contextmanager
def atomic_text_file(path: str | os.PathLike[str]) -> Iterator[TextIO]:
    """A UTF-8 text handle (newlines as written) whose content replaces `path` only when the block
    ends without an exception: for exports written row by row."""
    with _replacing(Path(path), binary=False) as handle:
        # A text-mode NamedTemporaryFile passes every call on to its TextIOWrapper; typeshed says IO[str].
        yield cast(TextIO, handle)


@contextmanager
def _replacing(target: Path, *, binary: bool) -> Iterator[IO[Any]]:
    partial: Path | None = None
    try:
        if binary:
            handle: IO[Any] = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed below, before the rename
                dir=target.parent, prefix=f".{target.name}.", suffix=".partial", delete=False
            )
        else:
            handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed below, before the rename
                "w",
                encoding="utf-8",
                newline="",
                dir=target.parent,
                prefix=f".{target.name}.",
                suffix=".partial",
                delete=False,
            )
        partial = Path(handle.name)
        # A temporary file is private (0600); the export gets the mode the file had, or 0644.
        os.chmod(partial, target.stat().st_mode & 0o777 if target.exists() else 0o644)
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, target)
        partial = None
    except OSError as exc:
        raise InvalidInputError(
            f"Cannot write {target} ({exc.strerror}); choose a writable path with -o."
        ) from exc
    finally:
        if partial is not None:
            partial.unlink(missing_ok=True)
