"""PubMed/MEDLINE text format (.nbib, .txt as exported from the PubMed website), via Bio.Medline."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import date
from pathlib import Path
from typing import IO

from Bio import Medline

from ingest.pubmed_xml import PubmedFormatError
from ingest.records import AbstractSection, Author, MeshHeading, Notice, PubmedRecord, checked_pmid

# "TAG - value", padded to four characters; an empty field ("AB  -", as PMC writes them) has no value.
_TAG_LINE = re.compile(r"^[A-Z][A-Z0-9]{1,3} {0,3}-( |$)")
_AID = re.compile(r"^(\S+) \[(\w+)\]$")
_YEAR = re.compile(r"\b(1[89]\d\d|2\d\d\d)\b")
_NOTICE_PMID = re.compile(r"PMID:\s*(\d+)")
# MEDLINE tags for the CommentsCorrections links that matter to evidence.
_NOTICE_TAGS = {
    "RIN": "RetractionIn",
    "EIN": "ErratumIn",
    "ECI": "ExpressionOfConcernIn",
    "ROF": "RetractionOf",
    "EFR": "ErratumFor",
    "ECF": "ExpressionOfConcernFor",
    "CON": "CommentOn",
}


def looks_like_medline(head: bytes) -> bool:
    """True when the text starts (after blank lines) with a MEDLINE tag line: "PMID- " from PubMed,
    "PMC - " from PubMed Central, whose records put the PMC line first."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    first = text.split(b"\n", 1)[0].decode("ascii", "replace").rstrip("\r")
    return bool(_TAG_LINE.match(first))


def iter_medline_text(
    source: str | Path | IO[bytes] | IO[str], name: str | None = None
) -> Iterator[PubmedRecord]:
    """Yield one record per MEDLINE entry; a damaged entry raises PubmedFormatError naming its line.

    Bytes are read as UTF-8, strictly: a Latin-1 file is named with its line, never stored mangled.
    """
    if isinstance(source, str | Path):
        with open(source, "rb") as handle:
            yield from _iter_records(_utf8_lines(handle, str(source)), name or str(source))
        return
    label = name or getattr(source, "name", "<stream>")
    first = source.read(0)
    lines = _utf8_lines(source, label) if isinstance(first, bytes) else source  # type: ignore[arg-type]
    yield from _iter_records(lines, label)  # type: ignore[arg-type]


def _utf8_lines(handle: IO[bytes], label: str) -> Iterator[str]:
    for number, raw in enumerate(handle, start=1):
        try:
            line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            raise PubmedFormatError(
                f"{label}: line {number} is not UTF-8 text (byte 0x{raw[exc.start]:02x}); PubMed exports "
                "UTF-8: export the file again, or convert it with `iconv -f latin1 -t utf-8`."
            ) from None
        yield line


def _iter_records(handle: Iterable[str], label: str) -> Iterator[PubmedRecord]:
    starts: list[int] = []  # line number of each record's first line, in order
    seen_content = False

    def numbered_lines() -> Iterator[str]:
        nonlocal seen_content
        in_record = False
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                in_record = False
            else:
                if not seen_content and not _TAG_LINE.match(line):
                    raise PubmedFormatError(
                        f"{label}: line {number}: expected a 'PMID- ' line; this is not MEDLINE/.nbib text "
                        "(export from PubMed with 'Save' -> format 'PubMed')."
                    )
                if not line.startswith("      ") and not _TAG_LINE.match(line):
                    raise PubmedFormatError(
                        f"{label}: line {number}: {line.strip()[:40]!r} is neither a 'TAG - value' line nor a "
                        "continuation; the file is damaged or not MEDLINE text (export from PubMed with "
                        "'Save' -> format 'PubMed')."
                    )
                if not in_record:
                    starts.append(number)
                    in_record = True
                seen_content = True
            yield line

    for index, entry in enumerate(Medline.parse(numbered_lines())):
        yield _to_record(entry, label, starts[index] if index < len(starts) else "?")
    if not seen_content:
        raise PubmedFormatError(f"{label}: empty input; expected MEDLINE/.nbib text or PubMed XML.")


def _to_record(entry: dict[str, object], label: str, line: object) -> PubmedRecord:
    pmid_text = str(entry.get("PMID", "")).strip()
    if not pmid_text:
        raise PubmedFormatError(
            f"{label}: line {line}: the record has no 'PMID- ' line; the entry is damaged."
        )
    pmid = checked_pmid(pmid_text, f"{label}: line {line}")
    abstract = _joined(entry.get("AB"))
    dp = _joined(entry.get("DP"))
    year = _YEAR.search(dp)
    ids = _article_ids(entry)
    return PubmedRecord(
        pmid=pmid,
        title=_joined(entry.get("TI")) or _joined(entry.get("TT")),
        abstract_sections=(AbstractSection(text=abstract),) if abstract else (),
        journal=_joined(entry.get("JT")),
        journal_iso=_joined(entry.get("TA")) or None,
        pub_date=dp or None,
        pub_year=int(year.group(1)) if year else None,
        authors=_authors(entry),
        doi=ids.get("doi"),
        pmcid=_joined(entry.get("PMC")) or ids.get("pmc"),
        languages=tuple(_list(entry.get("LA"))),
        publication_types=tuple(_list(entry.get("PT"))),
        mesh_headings=tuple(_mesh(term) for term in _list(entry.get("MH"))),
        keywords=tuple(_list(entry.get("OT"))),
        notices=_notices(entry),
        date_revised=_yyyymmdd(_joined(entry.get("LR"))),
    )


def _joined(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        value = " ".join(value)
    return " ".join(str(value).split())


def _list(value: object) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [" ".join(str(item).split()) for item in items if str(item).strip()]


def _authors(entry: dict[str, object]) -> tuple[Author, ...]:
    full = _list(entry.get("FAU"))
    short = _list(entry.get("AU"))
    authors = []
    for index, name in enumerate(full or short):
        # FAU is "de Hoon, Michiel J L"; AU is "de Hoon MJ", whose last word holds the initials.
        if full:
            last, _, fore = name.partition(", ")
            initials = short[index].rpartition(" ")[2] if index < len(short) else ""
        else:
            last, _, initials = name.rpartition(" ")
            fore = ""
        authors.append(Author(last_name=last or None, fore_name=fore or None, initials=initials or None))
    authors.extend(Author(collective_name=name) for name in _list(entry.get("CN")))
    return tuple(authors)


def _mesh(term: str) -> MeshHeading:
    # "Ketamine/*therapeutic use/adverse effects" or "*Depression": a star marks a major topic.
    descriptor, *qualifiers = term.split("/")
    parsed = tuple((q.lstrip("*"), q.startswith("*")) for q in qualifiers)
    return MeshHeading(
        descriptor=descriptor.lstrip("*"),
        major=descriptor.startswith("*") or any(major for _, major in parsed),
        qualifiers=parsed,
    )


def _article_ids(entry: dict[str, object]) -> dict[str, str]:
    ids: dict[str, str] = {}
    for value in _list(entry.get("AID")) + _list(entry.get("LID")):
        match = _AID.match(value)
        if match and match.group(2) not in ids:
            ids[match.group(2)] = match.group(1)
    return ids


def _notices(entry: dict[str, object]) -> tuple[Notice, ...]:
    notices = []
    for tag, ref_type in _NOTICE_TAGS.items():
        for value in _list(entry.get(tag)):
            match = _NOTICE_PMID.search(value)
            notices.append(
                Notice(ref_type=ref_type, pmid=int(match.group(1)) if match else None, source=value)
            )
    return tuple(notices)


def _yyyymmdd(text: str) -> date | None:
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:8])) if len(text) >= 8 else None
    except ValueError:
        return None
