"""Cutting PubMed XML into its records' bytes: blocks of whole records, checked around and between.

Splitting first and letting expat build each record's tree in C is faster than a pull parser's
per-element events in Python, and lets an import parse blocks in other processes. Everything a file
holds besides records (the declaration, the root, whitespace, comments) is checked here, and no
record may run past MAX_RECORD_BYTES: a damaged file or a decompression bomb is named, not read on.
"""

from __future__ import annotations

import gzip
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ingest.records import IMPORT_FORMATS, PubmedFormatError

GZIP_MAGIC = b"\x1f\x8b"

_SNIFF_BYTES = 4096

_CHUNK_BYTES = 1 << 16

# The largest record read: PubMed's biggest (thousands of authors, long reference lists) are a few MB.
# A record still open past this is damage (or a decompression bomb), named before memory runs out.
MAX_RECORD_BYTES = 32 * 1024 * 1024

_RECORD_SETS = {"PubmedArticleSet", "MedlineCitationSet"}

# A record starts at one of these tags (the root's children) and ends at the first matching
# close tag: none of them nests inside itself in the PubMed DTD.
_NEXT = re.compile(
    rb"<(PubmedArticle|PubmedBookArticle|MedlineCitation|DeleteCitation)[\s>]|</(PubmedArticleSet|MedlineCitationSet)\s*>"
)

_ROOT_START = re.compile(rb"<(PubmedArticleSet|MedlineCitationSet)(?:\s[^>]*)?>")

_ROOT_END = re.compile(rb"</(PubmedArticleSet|MedlineCitationSet)\s*>")

# The close tags of each document's records: a block may be cut right after any of them.
_RECORD_ENDS = {
    b"PubmedArticleSet": (b"</PubmedArticle>", b"</PubmedBookArticle>", b"</DeleteCitation>"),
    b"MedlineCitationSet": (b"</MedlineCitation>", b"</DeleteCitation>"),
}

_COMMENT = re.compile(rb"<!--.*?-->", re.S)

_DECLARATION = re.compile(rb"^\s*(<\?xml[^>]*\?>)")


@dataclass(frozen=True, slots=True)
class RecordChunk:
    """The bytes of one top-level record, with the XML declaration and the line it starts on."""

    data: bytes
    line: int
    declaration: bytes = b""


@dataclass(frozen=True, slots=True)
class RecordBlock:
    """Consecutive whole records of a document and what stands between them, cut after a record's end."""

    data: bytes
    line: int  # the line `data` starts on
    declaration: bytes = b""


def iter_record_chunks(source: str | Path | IO[bytes], label: str) -> Iterator[RecordChunk]:
    """Split PubMed XML into its records' bytes, checking everything between and around them.

    Splitting first and letting expat build each record's tree in C is faster than a pull
    parser's per-element events in Python, and lets an import parse records in other processes.
    """
    for block in iter_record_blocks(source, label, _CHUNK_BYTES):
        yield from split_block(block, label)


def iter_record_blocks(source: str | Path | IO[bytes], label: str, block_bytes: int) -> Iterator[RecordBlock]:
    """Cut PubMed XML into blocks of whole records, about `block_bytes` each (split_block takes them apart).

    Only the document around the records is checked here, and each cut costs a few searches from
    the block's end: an import does this in its storing process and leaves the rest to its workers.
    """
    if isinstance(source, str | Path):
        with open(source, "rb") as handle:
            yield from _blocks(handle, label, block_bytes)
    else:
        yield from _blocks(source, label, block_bytes)


def _blocks(handle: IO[bytes], label: str, block_bytes: int) -> Iterator[RecordBlock]:
    head = handle.read(_SNIFF_BYTES)
    if head.startswith(GZIP_MAGIC):
        handle = gzip.GzipFile(fileobj=_Prefixed(head, handle), mode="rb")  # type: ignore[assignment]
        head = _read(handle, label)
    _check_root(head, label)
    declaration = _DECLARATION.match(head)
    prefix = declaration.group(1) if declaration else b""
    buffer, eof = head, False
    root = _ROOT_START.search(buffer)
    while root is None and not eof and len(buffer) <= MAX_RECORD_BYTES:
        more = _read(handle, label)
        eof = not more
        buffer += more
        root = _ROOT_START.search(buffer)
    if root is None:
        raise PubmedFormatError(f"{label}: no <PubmedArticleSet> start tag; expected PubMed XML records.")
    line = 1 + buffer.count(b"\n", 0, root.end())  # the line the first block starts on
    record_ends = _RECORD_ENDS[root.group(1)]
    buffer, wanted = buffer[root.end() :], block_bytes
    while True:
        if not eof and len(buffer) < wanted:
            more = _read(handle, label, wanted - len(buffer))
            eof = not more
            buffer += more
        cut = _cut(buffer, record_ends, block_bytes)
        if cut and (len(buffer) >= wanted or eof):
            yield RecordBlock(buffer[:cut], line, prefix)
            line += buffer.count(b"\n", 0, cut)
            buffer, wanted = buffer[cut:], block_bytes
            continue
        if cut:
            continue  # a short read: read on to a whole block
        root_end = _ROOT_END.search(buffer)
        if root_end is not None:  # no record left: the document is complete
            if buffer[: root_end.start()].strip():
                yield RecordBlock(buffer[: root_end.start()], line, prefix)  # for split_block to check
            line += buffer.count(b"\n", 0, root_end.start())
            _check_gap(buffer[root_end.end() :] + _read_rest(handle, label), label, line)
            return
        if eof:
            last_line = line + buffer.count(b"\n")
            raise PubmedFormatError(
                f"{label}: line {last_line}: the XML ends before the document does (truncated); "
                "fetch or download it again."
            )
        if len(buffer) > MAX_RECORD_BYTES:  # no record ends in all of it: one record, too large
            raise PubmedFormatError(
                f"{label}: line {line}: a record runs past {MAX_RECORD_BYTES // (1024 * 1024)} MB without "
                "ending, more than any PubMed record; the file is damaged or not PubMed XML."
            )
        wanted = max(wanted, len(buffer)) * 2  # no record ends in what is read so far: read on


def _cut(buffer: bytes, record_ends: tuple[bytes, ...], block_bytes: int) -> int:
    """Where to end a block: after the last record ending within `block_bytes`, or else the first.

    A close tag inside a comment between records is no record's end: the cut goes before the comment.
    """
    limit = block_bytes
    while last := _last_end(buffer, record_ends, limit):
        opened = _open_comment(buffer, last)
        if opened < 0:
            return last
        limit = opened
    start = 0
    while first := min(
        (end for tag in record_ends if (end := _end_of(buffer.find(tag, start), tag))), default=0
    ):
        if _open_comment(buffer, first) < 0:
            return first
        start = first
    return 0


def _last_end(buffer: bytes, record_ends: tuple[bytes, ...], limit: int) -> int:
    """The end of the last record close tag before `limit`, or 0. The commonest tag is looked for first,
    and the others only after it: each absent one cost a scan of the whole block in the storing process."""
    last = 0
    for tag in record_ends:
        last = max(last, _end_of(buffer.rfind(tag, last, limit), tag))
    return last


def _open_comment(buffer: bytes, position: int) -> int:
    """Where a comment still open at `position` starts, or -1. Looks back 64 KiB: PubMed files carry
    no comments at all, and a longer one holding a close tag fails loudly at the gap check."""
    opened = buffer.rfind(b"<!--", max(0, position - (1 << 16)), position)
    return opened if opened >= 0 and buffer.find(b"-->", opened + 4, position) < 0 else -1


def _end_of(found: int, tag: bytes) -> int:
    return found + len(tag) if found >= 0 else 0


def split_block(block: RecordBlock, label: str) -> Iterator[RecordChunk]:
    """The records of a block, checking that only whitespace and comments stand between them."""
    data, line, position = block.data, block.line, 0
    while True:
        found = _NEXT.search(data, position)
        if found is None:
            _check_gap(data[position:], label, line)
            return
        _check_gap(data[position : found.start()], label, line)
        line += data.count(b"\n", position, found.start())
        if found.group(2):  # a second root end tag inside the document
            raise PubmedFormatError(
                f"{label}: line {line}: unexpected </{found.group(2).decode()}> between records; "
                "the file is damaged or not PubMed XML."
            )
        close = b"</" + found.group(1) + b">"
        end = data.find(close, found.end())
        if end < 0:
            raise PubmedFormatError(
                f"{label}: line {line}: <{found.group(1).decode()}> is never closed; "
                "the file is damaged; fetch or download it again."
            )
        end += len(close)
        yield RecordChunk(data[found.start() : end], line, block.declaration)
        line += data.count(b"\n", found.start(), end)
        position = end


def _check_gap(gap: bytes, label: str, line: int) -> None:
    """Between records only whitespace and comments may stand; `line` is the line the gap starts on."""
    if gap.strip() and _COMMENT.sub(b"", gap).strip():
        text = _COMMENT.sub(b"", gap).strip()[:40].decode("utf-8", "replace")
        where = line + gap.count(b"\n", 0, len(gap) - len(gap.lstrip()))
        raise PubmedFormatError(
            f"{label}: line {where}: unexpected content {text!r} between records; "
            "the file is damaged or not PubMed XML."
        )


def _read_rest(handle: IO[bytes], label: str) -> bytes:
    rest = b""
    while chunk := _read(handle, label):
        rest += chunk
        if len(rest) > _SNIFF_BYTES:
            break  # anything substantial after the root is already an error
    return rest


def _read(handle: IO[bytes], label: str, size: int = _CHUNK_BYTES) -> bytes:
    try:
        return handle.read(size)
    except (OSError, EOFError) as exc:
        raise PubmedFormatError(
            f"{label}: damaged or truncated gzip data ({exc}); download it again."
        ) from exc


class _Prefixed(io.RawIOBase):
    """A read-only stream that first gives back bytes already read while sniffing."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._head:
            data, self._head = self._head[: len(buffer)], self._head[len(buffer) :]
        else:
            data = self._rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


_ROOT = re.compile(rb"<([A-Za-z_][\w.:-]*)")


def _check_root(head: bytes, label: str) -> str:
    """Fail early, in words, on empty input, HTML pages, NCBI <ERROR> bodies and other documents."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not text:
        raise PubmedFormatError(
            f"{label}: empty input; expected PubMed XML (efetch output or a baseline file)."
        )
    if not text.startswith(b"<"):
        raise PubmedFormatError(
            f"{label}: line 1: neither PubMed XML nor MEDLINE text; import takes {IMPORT_FORMATS}."
        )
    root = _first_element(text)
    if root is None:
        raise PubmedFormatError(f"{label}: line 1: no XML element found; expected PubMed XML.")
    if root.lower() == "html":
        raise PubmedFormatError(f"{label}: an HTML page, not PubMed XML; the server sent an error page.")
    if root == "ERROR" or b"<ERROR>" in text:
        detail = re.search(rb"<ERROR>(.*?)</ERROR>", text, re.S)
        reason = detail.group(1).decode("utf-8", "replace").strip() if detail else "no reason given"
        raise PubmedFormatError(f"{label}: NCBI answered with an error instead of records: {reason}")
    if root not in _RECORD_SETS:
        raise PubmedFormatError(
            f"{label}: the document is <{root}>, not <PubmedArticleSet>; expected PubMed XML records."
        )
    return root


def _first_element(text: bytes) -> str | None:
    position = 0
    while True:
        match = _ROOT.search(text, position)
        if match is None:
            return None
        start = match.start()
        if text.startswith(b"<!", start) or text.startswith(b"<?", start):
            position = match.end()
            continue
        return match.group(1).decode("ascii", "replace")
