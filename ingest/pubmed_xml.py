"""Streaming parser for PubMed XML: efetch answers, baseline/update files (.xml, .xml.gz), legacy MEDLINE sets."""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import IO

from ingest.pubmed_blocks import RecordChunk, iter_record_chunks
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

_MONTHS = {
    m: i
    for i, m in enumerate(
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], start=1
    )
}
_YEAR = re.compile(r"\b(1[89]\d\d|2\d\d\d)\b")
_PMC_IN_OTHER_ID = re.compile(r"\b(PMC\d+)\b")


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
    return _records_of(elem, chunk.line, label)


# Expat builds a group of records' trees in one parser faster than one parser per record (a tenth of
# the parse); groups stay small, as a record's tree is a hundred times its bytes.
GROUP_RECORDS = 16
_GROUP_START, _GROUP_END = b"<group>", b"</group>"


def parse_record_group(
    chunks: Sequence[RecordChunk], label: str
) -> list[PubmedRecord | DeletedCitation] | None:
    """Parse consecutive records of one document (split_block's chunks) with one parser.

    None when any of them is damaged: parse_record_chunk, one at a time, then says which and why,
    and gives the records before it, exactly as if the group had never been tried.
    """
    if not chunks or any(chunk.declaration != chunks[0].declaration for chunk in chunks):
        return None
    parser = ET.XMLParser()
    try:
        parser.feed(chunks[0].declaration)
        parser.feed(_GROUP_START)
        for chunk in chunks:
            parser.feed(chunk.data)
        parser.feed(_GROUP_END)
        group = parser.close()
    except ET.ParseError:
        return None
    if len(group) != len(chunks):
        return None  # a chunk held more than one element: damage that parse_record_chunk names
    records: list[PubmedRecord | DeletedCitation] = []
    try:
        for chunk, elem in zip(chunks, group, strict=True):
            records.extend(_records_of(elem, chunk.line, label))
    except PubmedFormatError:
        return None
    return records


def _records_of(elem: ET.Element, line: int, label: str) -> list[PubmedRecord | DeletedCitation]:
    tag = elem.tag
    if tag == "PubmedArticle":
        citation = elem.find("MedlineCitation")
        if citation is None:
            raise PubmedFormatError(f"{label}: line {line}: <PubmedArticle> has no <MedlineCitation>.")
        return [_parse_citation(citation, elem.find("PubmedData"), label)]
    if tag == "MedlineCitation":
        return [_parse_citation(elem, None, label)]  # legacy MedlineCitationSet file
    if tag == "PubmedBookArticle":
        return [_parse_book(elem, label)]
    return [DeletedCitation(pmid=_pmid(p, label)) for p in elem.iterfind("PMID")]


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
