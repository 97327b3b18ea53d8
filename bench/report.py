"""Writing a benchmark's report into docs/performance.md: its own marked section, the rest left alone."""

from __future__ import annotations

from pathlib import Path


def write_section(path: Path, section: str, start: str, end: str) -> None:
    """Replace the part of `path` from `start` to `end` with `section` (which carries both markers),
    or append `section` when the file has no such part yet."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Performance\n"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        text = before + section + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text, encoding="utf-8")
