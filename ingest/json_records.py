"""JSON records and JSON Lines (as `export articles --format jsonl` writes them), parsed into PubmedRecord.

A file is JSON Lines, one record per line, or one JSON document: a record, an array of records, or an
object holding them under "articles" (the shape of ../shared's recorded searches). JSON Lines are read a
line at a time and no line may be longer than a PubMed record can be (MAX_RECORD_BYTES, the XML path's
bound); a whole document is held by that bound too, so larger collections belong in JSON Lines.

Keys are those of our article export. `abstract_sections`, `author_details`, `mesh_headings` and
`notice_details` carry the record as the database stores it, so an export imports back unchanged; other
JSON gives what it has (`abstract`, `authors` as names, `mesh_terms`, `year` or `pub_date`). Derived keys
(`design`, `retracted`, ...) are ignored: the store works them out again, as for XML.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import date
from typing import IO, Any

from ingest.pubmed_blocks import MAX_RECORD_BYTES
from ingest.records import (
    AbstractSection,
    Author,
    MeshHeading,
    Notice,
    PubmedFormatError,
    PubmedRecord,
    checked_pmid,
)

_BLANK = b"\xef\xbb\xbf \t\r\n"
_YEAR = re.compile(r"\b(1[89]\d\d|2\d\d\d)\b")
# An object that holds records rather than being one: {"query": ..., "articles": [...]}.
_RECORD_LISTS = ("articles",)
_AUTHOR_KEYS = Author._fields


def looks_like_json(head: bytes) -> bool:
    """True when the first non-blank byte opens a JSON object or array."""
    return head.lstrip(_BLANK)[:1] in (b"{", b"[")


def iter_json_records(stream: IO[bytes], label: str) -> Iterator[PubmedRecord]:
    """Yield the records of a JSON document or of JSON Lines; damage raises PubmedFormatError naming its line."""
    lines = _numbered_lines(stream, label)
    for number, text in lines:
        if not text.strip():
            continue
        first = text.strip()
        if first.startswith("{") and first.endswith("}") or _parses(first):
            # JSON Lines: this line is a whole value, and so is every other line.
            yield from _records_of(_loads(text, label, number), label, f"line {number}")
            for number, text in lines:
                if text.strip():
                    yield from _records_of(_loads(text, label, number), label, f"line {number}")
            return
        yield from _records_of(_document(number, text, lines, label), label, None)
        return
    raise PubmedFormatError(f"{label}: empty input; expected JSON records or JSON Lines.")


def _numbered_lines(stream: IO[bytes], label: str) -> Iterator[tuple[int, str]]:
    number = 0
    while raw := stream.readline(MAX_RECORD_BYTES + 2):
        number += 1
        if len(raw.rstrip(b"\r\n")) > MAX_RECORD_BYTES:
            # Refused before the rest of the line is read: a damaged file or a decompression bomb.
            raise PubmedFormatError(
                f"{label}: line {number}: longer than {MAX_RECORD_BYTES // (1024 * 1024)} MB, more than any "
                "PubMed record; the file is damaged or not JSON Lines."
            )
        try:
            yield number, raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            raise PubmedFormatError(
                f"{label}: line {number} is not UTF-8 text (byte 0x{raw[exc.start]:02x}); JSON is UTF-8: "
                "convert the file with `iconv -f latin1 -t utf-8`."
            ) from None


def _parses(text: str) -> bool:
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return False
    return True


def _loads(text: str, label: str, first_line: int) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise PubmedFormatError(
            f"{label}: line {first_line + exc.lineno - 1}, column {exc.colno}: malformed JSON ({exc.msg}); "
            "the file is damaged or not JSON records."
        ) from None
    except (ValueError, RecursionError) as exc:  # a 5,000-digit number, arrays nested a thousand deep
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc).split(";")[0]
        raise PubmedFormatError(
            f"{label}: line {first_line}: unreadable JSON ({reason}); the file is damaged or not JSON records."
        ) from None


def _document(number: int, text: str, lines: Iterator[tuple[int, str]], label: str) -> Any:
    """One JSON document spread over lines, read whole up to MAX_RECORD_BYTES."""
    parts, size = [text], len(text)
    for _, more in lines:
        size += len(more)
        if size > MAX_RECORD_BYTES:
            raise PubmedFormatError(
                f"{label}: line {number}: a JSON document longer than {MAX_RECORD_BYTES // (1024 * 1024)} MB; "
                "write it as JSON Lines, one record per line (`jq -c '.[]'`), which is read a line at a time."
            )
        parts.append(more)
    return _loads("".join(parts), label, number)


def _records_of(value: Any, label: str, line: str | None) -> Iterator[PubmedRecord]:
    """The records a JSON value holds: itself, the items of an array, or of an object's "articles"."""
    if isinstance(value, dict) and "pmid" not in value:
        held = next((value[key] for key in _RECORD_LISTS if isinstance(value.get(key), list)), None)
        if held is not None:
            value = held
    items = value if isinstance(value, list) else [value]
    for index, item in enumerate(items, start=1):
        if line is None:
            where = f"{label}: record {index}"
        else:
            where = f"{label}: {line}" + (f", record {index}" if isinstance(value, list) else "")
        yield _to_record(item, where)


def _to_record(item: Any, where: str) -> PubmedRecord:
    if not isinstance(item, dict):
        raise PubmedFormatError(f"{where}: {_kind(item)} where a record (a JSON object) was expected.")
    if "pmid" not in item:
        raise PubmedFormatError(f"{where}: the record has no 'pmid'; every record needs its PubMed ID.")
    pmid_value = item["pmid"]
    if isinstance(pmid_value, bool) or not isinstance(pmid_value, int | str):
        raise PubmedFormatError(
            f"{where}: 'pmid' is {_kind(pmid_value)}; expected a PubMed ID like 31000001."
        )
    pmid = checked_pmid(str(pmid_value).strip(), where)
    fields = _Fields(item, f"{where} (PMID {pmid})")
    pub_date = fields.text("pub_date") if "pub_date" in item else fields.text("publication_date")
    if "year" in item or "pub_year" in item:
        pub_year = fields.year("year" if "year" in item else "pub_year")
    else:
        found = _YEAR.search(pub_date or "")
        pub_year = int(found.group(1)) if found else None
    return PubmedRecord(
        pmid=pmid,
        title=fields.text("title") or "",
        abstract_sections=fields.abstract(),
        journal=fields.text("journal") or "",
        journal_iso=fields.text("journal_iso"),
        pub_date=pub_date,
        pub_year=pub_year,
        authors=fields.authors(),
        doi=fields.text("doi"),
        pmcid=fields.text("pmcid"),
        languages=fields.texts("languages"),
        publication_types=fields.texts("publication_types"),
        mesh_headings=fields.mesh(),
        keywords=fields.texts("keywords"),
        notices=fields.notices(),
        date_revised=fields.day("date_revised"),
    )


class _Fields:
    """Typed reads of one record's keys; a value of the wrong type is named with its key and place."""

    def __init__(self, item: dict[str, Any], where: str) -> None:
        self._item = item
        self._where = where

    def _wrong(self, key: str, value: Any, expected: str) -> PubmedFormatError:
        return PubmedFormatError(f"{self._where}: '{key}' is {_kind(value)}; expected {expected}.")

    def text(self, key: str, *, of: dict[str, Any] | None = None) -> str | None:
        value = (of if of is not None else self._item).get(key)
        if value is None or isinstance(value, str):
            return value
        raise self._wrong(key, value, "text")

    def texts(self, key: str) -> tuple[str, ...]:
        return tuple(self._list(key, str, "a list of texts"))

    def year(self, key: str) -> int | None:
        value = self._item.get(key)
        if value is None:
            return None
        if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 10_000:
            return value
        raise self._wrong(key, value, "a year like 2024")

    def day(self, key: str) -> date | None:
        value = self.text(key)
        if value is None:
            return None
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise self._wrong(key, value, "a date like 2024-03-05") from None

    def flag(self, key: str, of: dict[str, Any]) -> bool:
        value = of.get(key, False)
        if isinstance(value, bool):
            return value
        raise self._wrong(key, value, "true or false")

    def _list(self, key: str, kind: type, expected: str) -> list[Any]:
        value = self._item.get(key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(entry, kind) for entry in value):
            raise self._wrong(key, value, expected)
        return value

    def _objects(self, key: str) -> list[dict[str, Any]]:
        return self._list(key, dict, "a list of objects")

    def abstract(self) -> tuple[AbstractSection, ...]:
        if "abstract_sections" in self._item:
            return tuple(
                AbstractSection(
                    text=self._required(section, "text", "abstract_sections"),
                    label=self.text("label", of=section),
                    category=self.text("category", of=section),
                )
                for section in self._objects("abstract_sections")
            )
        abstract = self.text("abstract")
        return (AbstractSection(text=abstract),) if abstract else ()

    def authors(self) -> tuple[Author, ...]:
        if "author_details" in self._item:
            return tuple(
                Author(*(self.text(key, of=author) for key in _AUTHOR_KEYS))
                for author in self._objects("author_details")
            )
        # Names in one string ("Jane Doe", "Doe J"): which part is which cannot be told, so the whole
        # name is kept as the last name, which every page and export writes as it is.
        return tuple(Author(last_name=name) for name in self.texts("authors") if name.strip())

    def mesh(self) -> tuple[MeshHeading, ...]:
        if "mesh_headings" in self._item:
            return tuple(
                MeshHeading(
                    descriptor=self._required(heading, "descriptor", "mesh_headings"),
                    major=self.flag("major", heading),
                    ui=self.text("ui", of=heading),
                    qualifiers=tuple(
                        (self._required(q, "name", "qualifiers"), self.flag("major", q))
                        for q in self._nested(heading, "qualifiers")
                    ),
                )
                for heading in self._objects("mesh_headings")
            )
        major = set(self.texts("major_mesh_terms"))
        return tuple(MeshHeading(descriptor=term, major=term in major) for term in self.texts("mesh_terms"))

    def notices(self) -> tuple[Notice, ...]:
        if "notice_details" in self._item:
            return tuple(
                Notice(
                    ref_type=self._required(link, "ref_type", "notice_details"),
                    pmid=self._pmid(link.get("pmid")),
                    source=self.text("source", of=link),
                )
                for link in self._objects("notice_details")
            )
        # Our export's short form: "RetractionIn:31000002", or the type alone when PubMed gave no PMID.
        notices = []
        for text in self.texts("notices"):
            ref_type, _, pmid = text.partition(":")
            notices.append(Notice(ref_type=ref_type, pmid=self._pmid(pmid or None)))
        return tuple(notices)

    def _pmid(self, value: Any) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise self._wrong("pmid", value, "a PubMed ID")
        return checked_pmid(str(value).strip(), self._where)

    def _nested(self, entry: dict[str, Any], key: str) -> list[dict[str, Any]]:
        value = entry.get(key) or []
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise self._wrong(key, value, "a list of objects")
        return value

    def _required(self, entry: dict[str, Any], key: str, within: str) -> str:
        value = entry.get(key)
        if not isinstance(value, str):
            raise self._wrong(f"{within}.{key}", value, "text")
        return value


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float):
        return f"the number {str(value)[:40]}"
    if isinstance(value, str):
        return f"the text {value[:40]!r}"
    return "a list" if isinstance(value, list) else "an object"
