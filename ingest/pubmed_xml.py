"""Streaming parser for PubMed XML: efetch answers, baseline/update files (.xml, .xml.gz), legacy MEDLINE sets."""

from __future__ import annotations

import gzip
import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import IO

from ingest.records import (
    KEPT_REF_TYPES,
    AbstractSection,
    Author,
    DeletedCitation,
    MeshHeading,
    Notice,
    PubmedFormatError,
    PubmedRecord,
    checked_pmid,
)

_GZIP_MAGIC = b"\x1f\x8b"
_SNIFF_BYTES = 4096
_CHUNK_BYTES = 1 << 16
# The largest record read: PubMed's biggest (thousands of authors, long reference lists) are a few MB.
# A record still open past this is damage (or a decompression bomb), named before memory runs out.
MAX_RECORD_BYTES = 32 * 1024 * 1024
_RECORD_SETS = {"PubmedArticleSet", "MedlineCitationSet"}
_MONTHS = {
    m: i
    for i, m in enumerate(
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], start=1
    )
}
_YEAR = re.compile(r"\b(1[89]\d\d|2\d\d\d)\b")
_PMC_IN_OTHER_ID = re.compile(r"\b(PMC\d+)\b")
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


def iter_pubmed_xml(
    source: str | Path | IO[bytes], name: str | None = None
) -> Iterator[PubmedRecord | DeletedCitation]:
    """Yield records (and DeleteCitation entries) one at a time, in document order.

    Memory stays flat: only the record being parsed is held. Gzipped input is recognised by
    its magic bytes, whatever the file is called.
    """
    label = name or (
        str(source) if isinstance(source, str | Path) else str(getattr(source, "name", "<stream>"))
    )
    for chunk in iter_record_chunks(source, label):
        yield from parse_record_chunk(chunk, label)


def parse_efetch_response(data: bytes, name: str = "efetch answer") -> list[PubmedRecord | DeletedCitation]:
    """Parse a whole efetch body. Anything but complete PubMed XML raises PubmedFormatError."""
    return list(iter_pubmed_xml(io.BytesIO(data), name))


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
    if head.startswith(_GZIP_MAGIC):
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
    while last := max(_end_of(buffer.rfind(tag, 0, limit), tag) for tag in record_ends):
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


def parse_record_chunk(chunk: RecordChunk, label: str) -> list[PubmedRecord | DeletedCitation]:
    """Parse one record's bytes (see iter_record_chunks); errors name the line in the whole file."""
    parser = ET.XMLParser()
    try:
        parser.feed(chunk.declaration)
        parser.feed(chunk.data)
        elem = parser.close()
    except ET.ParseError as exc:
        where, column = exc.position
        reason = str(exc).split(":")[0]
        raise PubmedFormatError(
            f"{label}: line {chunk.line + where - 1}, column {column}: malformed XML ({reason}); "
            "fetch or download it again, or check that it is PubMed XML."
        ) from exc
    tag = elem.tag
    if tag == "PubmedArticle":
        citation = elem.find("MedlineCitation")
        if citation is None:
            raise PubmedFormatError(f"{label}: line {chunk.line}: <PubmedArticle> has no <MedlineCitation>.")
        return [_parse_citation(citation, elem.find("PubmedData"), label)]
    if tag == "MedlineCitation":
        return [_parse_citation(elem, None, label)]  # legacy MedlineCitationSet file
    if tag == "PubmedBookArticle":
        return [_parse_book(elem, label)]
    return [DeletedCitation(pmid=_pmid(p, label)) for p in elem.iterfind("PMID")]


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
            f"{label}: line 1: neither PubMed XML nor MEDLINE text; import takes PubMed XML (.xml, .xml.gz) "
            "or MEDLINE text (.nbib, .txt, starting with 'PMID- ') as PubMed exports them."
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


# --- field extraction --------------------------------------------------------------------------


def _text(elem: ET.Element | None) -> str:
    """All text inside an element (inline <i>, <sup>, MathML included), whitespace collapsed."""
    if elem is None:
        return ""
    raw = elem.text or "" if len(elem) == 0 else "".join(elem.itertext())
    return " ".join(raw.split())


def _child(elem: ET.Element, tag: str, label: str) -> ET.Element:
    found = elem.find(tag)
    if found is None:
        raise PubmedFormatError(f"{label}: <{elem.tag}> has no <{tag}>; the record is incomplete.")
    return found


def _pmid(elem: ET.Element | None, label: str) -> int:
    return checked_pmid((elem.text or "").strip() if elem is not None else "", label)


def _parse_citation(citation: ET.Element, pubmed_data: ET.Element | None, label: str) -> PubmedRecord:
    # One pass over the children instead of many find() calls: this loop is the ingest hot path.
    pmid_elem = article = date_revised = mesh = corrections = None
    keywords: list[str] = []
    other_ids: list[ET.Element] = []
    for child in citation:
        tag = child.tag
        if tag == "PMID":
            pmid_elem = child
        elif tag == "Article":
            article = child
        elif tag == "DateRevised":
            date_revised = child
        elif tag == "MeshHeadingList":
            mesh = child
        elif tag == "KeywordList":
            keywords.extend(text for text in map(_text, child) if text)
        elif tag == "CommentsCorrectionsList":
            corrections = child
        elif tag == "OtherID":
            other_ids.append(child)
    pmid = _pmid(pmid_elem, label)
    if article is None:
        raise PubmedFormatError(f"{label}: PMID {pmid} has no <Article>; the record is incomplete.")
    title = vernacular = journal_title = ""
    journal_iso = pub_date = doi = None
    pub_year = article_year = None
    abstract: tuple[AbstractSection, ...] = ()
    authors: tuple[Author, ...] = ()
    languages: list[str] = []
    publication_types: list[str] = []
    for child in article:
        tag = child.tag
        if tag == "Journal":
            journal_title = _text(child.find("Title"))
            journal_iso = child.findtext("ISOAbbreviation") or None
            issue = child.find("JournalIssue")
            pub_date, pub_year = _pub_date(issue.find("PubDate") if issue is not None else None)
        elif tag == "ArticleTitle":
            title = _text(child)
        elif tag == "VernacularTitle":
            vernacular = _text(child)
        elif tag == "ELocationID":
            if doi is None and child.get("EIdType") == "doi" and child.get("ValidYN", "Y") == "Y":
                doi = (child.text or "").strip() or None
        elif tag == "Abstract":
            abstract = _abstract(child)
        elif tag == "AuthorList":
            authors = _authors(child)
        elif tag == "Language":
            languages.append(_text(child))
        elif tag == "PublicationTypeList":
            publication_types.extend(_text(t) for t in child)
        elif tag == "ArticleDate":
            article_year = _int(child.findtext("Year"))
    ids = _article_ids(pubmed_data)
    return PubmedRecord(
        pmid=pmid,
        title=title or vernacular,
        abstract_sections=abstract,
        journal=journal_title,
        journal_iso=journal_iso,
        pub_date=pub_date,
        pub_year=pub_year if pub_year is not None else article_year,
        authors=authors,
        doi=ids.get("doi") or doi,
        pmcid=ids.get("pmc") or _pmc_from_other_ids(other_ids),
        languages=tuple(languages),
        publication_types=tuple(publication_types),
        mesh_headings=_mesh(mesh),
        keywords=tuple(keywords),
        notices=_notices(corrections),
        date_revised=_date(date_revised),
    )


def _parse_book(book: ET.Element, label: str) -> PubmedRecord:
    document = _child(book, "BookDocument", label)
    pub_date, pub_year = _pub_date(document.find("Book/PubDate"))
    ids = _article_ids(book.find("PubmedBookData"))
    return PubmedRecord(
        pmid=_pmid(document.find("PMID"), label),
        title=_text(document.find("ArticleTitle")) or _text(document.find("Book/BookTitle")),
        abstract_sections=_abstract(document.find("Abstract")),
        journal=_text(document.find("Book/BookTitle")),
        pub_date=pub_date,
        pub_year=pub_year,
        authors=_authors(document.find("AuthorList")),
        doi=ids.get("doi"),
        pmcid=ids.get("pmc"),
        languages=tuple(_text(lang) for lang in document.iterfind("Language")),
        publication_types=tuple(_text(t) for t in document.iterfind("PublicationType")),
        keywords=tuple(_text(k) for k in document.iterfind("KeywordList/Keyword") if _text(k)),
        date_revised=_date(document.find("DateRevised")),
    )


def _abstract(abstract: ET.Element | None) -> tuple[AbstractSection, ...]:
    if abstract is None:
        return ()
    sections = []
    for part in abstract.findall("AbstractText"):
        text = _text(part)
        if text:
            sections.append(
                AbstractSection(text=text, label=part.get("Label") or None, category=part.get("NlmCategory"))
            )
    return tuple(sections)


def _authors(author_list: ET.Element | None) -> tuple[Author, ...]:
    if author_list is None:
        return ()
    authors = []
    # findall/findtext with a plain tag name run in C; records can carry hundreds of authors.
    for author in author_list.findall("Author"):
        if author.get("ValidYN") == "N":
            continue
        orcid = None
        for identifier in author.findall("Identifier"):
            if identifier.get("Source") == "ORCID" and identifier.text:
                orcid = identifier.text.strip()
        collective = author.find("CollectiveName")
        authors.append(
            Author(
                _plain_text(author.findtext("LastName")),
                _plain_text(author.findtext("ForeName")),
                _plain_text(author.findtext("Initials")),
                (_text(collective) or None) if collective is not None else None,
                orcid or None,
            )
        )
    return tuple(authors)


def _plain_text(text: str | None) -> str | None:
    """A text-only element's text (names, initials) with whitespace collapsed; None when empty."""
    return " ".join(text.split()) or None if text else None


def _mesh(mesh_list: ET.Element | None) -> tuple[MeshHeading, ...]:
    if mesh_list is None:
        return ()
    headings = []
    for heading in mesh_list.findall("MeshHeading"):
        descriptor = heading.find("DescriptorName")
        if descriptor is None:
            continue
        qualifiers = tuple((_text(q), q.get("MajorTopicYN") == "Y") for q in heading.findall("QualifierName"))
        headings.append(
            MeshHeading(
                descriptor=_text(descriptor),
                # A heading is a major topic when the descriptor or any of its qualifiers is starred.
                major=descriptor.get("MajorTopicYN") == "Y" or any(major for _, major in qualifiers),
                ui=descriptor.get("UI"),
                qualifiers=qualifiers,
            )
        )
    return tuple(headings)


def _notices(corrections: ET.Element | None) -> tuple[Notice, ...]:
    if corrections is None:
        return ()
    notices = []
    for link in corrections.findall("CommentsCorrections"):
        ref_type = link.get("RefType", "")
        if ref_type in KEPT_REF_TYPES:
            notices.append(
                Notice(
                    ref_type=ref_type,
                    pmid=_int(link.findtext("PMID")),
                    source=_text(link.find("RefSource")) or None,
                )
            )
    return tuple(notices)


def _article_ids(pubmed_data: ET.Element | None) -> dict[str, str]:
    if pubmed_data is None:
        return {}
    ids: dict[str, str] = {}
    id_list = pubmed_data.find("ArticleIdList")
    for article_id in id_list.findall("ArticleId") if id_list is not None else ():
        kind = article_id.get("IdType", "")
        value = (article_id.text or "").strip()
        if value and kind not in ids:
            ids[kind] = value
    return ids


def _pmc_from_other_ids(other_ids: list[ET.Element]) -> str | None:
    # Legacy MEDLINE files carry the PMCID only as OtherID "PMC4688250 [Available on ...]".
    for other in other_ids:
        match = _PMC_IN_OTHER_ID.search(other.text or "")
        if match:
            return match.group(1)
    return None


def _pub_date(pub_date: ET.Element | None) -> tuple[str | None, int | None]:
    if pub_date is None:
        return None, None
    medline_date = pub_date.findtext("MedlineDate")
    if medline_date:
        match = _YEAR.search(medline_date)
        return medline_date.strip(), int(match.group(1)) if match else None
    parts = [pub_date.findtext(tag) for tag in ("Year", "Month", "Day", "Season")]
    printed = " ".join(p.strip() for p in parts if p and p.strip()) or None
    return printed, _int(parts[0])


def _date(elem: ET.Element | None) -> date | None:
    if elem is None:
        return None
    year, month, day = (elem.findtext(tag) for tag in ("Year", "Month", "Day"))
    try:
        month_number = _MONTHS.get(month or "") or int(month or 1)
        return date(int(year or ""), month_number, int(day or 1))
    except ValueError:
        return None


def _int(text: str | None) -> int | None:
    text = (text or "").strip()
    return int(text) if text.isdigit() else None
