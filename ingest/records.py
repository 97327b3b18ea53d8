"""Plain frozen dataclasses that every PubMed parser produces and the database layer stores."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from typing import Any, NamedTuple

import orjson

RETRACTED_TYPES = frozenset({"Retracted Publication"})
RETRACTION_NOTICE_TYPES = frozenset({"Retraction of Publication"})
CONCERN_TYPES = frozenset({"Expression of Concern"})
# CommentsCorrections RefTypes that change how a study may be used, and what they mean.
NOTICE_REF_TYPES = frozenset({"RetractionIn", "ExpressionOfConcernIn", "ErratumIn"})
# ... and the reverse links a notice carries to the study it concerns (see db.corpus.notices).
NOTICE_OF_REF_TYPES = frozenset({"RetractionOf", "ExpressionOfConcernFor", "ErratumFor", "CommentOn"})
KEPT_REF_TYPES = NOTICE_REF_TYPES | NOTICE_OF_REF_TYPES

# PMIDs are PubMed's 1-8 digit accession numbers; three more digits leave room to grow and keep every
# PMID far inside the 64-bit integer both databases store.
MAX_PMID = 99_999_999_999


# What `import` reads, for the messages that tell people so (the importer decides by content, not name).
IMPORT_FORMATS = (
    "PubMed XML (.xml, .xml.gz), MEDLINE text (.nbib, .txt, starting with 'PMID- '), JSON records "
    "(an object or an array) or JSON Lines (as `export articles --format jsonl` writes them)"
)


class PubmedFormatError(ValueError):
    """The input is not (whole, well-formed) PubMed data; the message names where and why."""


def checked_pmid(text: str, where: str) -> int:
    """`text` as a PMID, or PubmedFormatError naming `where` (PMID 0, a sign or 70 digits are damage)."""
    if not text.isascii() or not text.isdigit():
        raise PubmedFormatError(f"{where}: PMID {text[:40]!r} is not a number; the record is damaged.")
    pmid = int(text)
    if not 1 <= pmid <= MAX_PMID:
        raise PubmedFormatError(
            f"{where}: PMID {text[:40]} is out of range (PMIDs run from 1 to {MAX_PMID:,}); the record is damaged."
        )
    return pmid


# The parts of a record are NamedTuples: immutable like the frozen record itself, but several
# times cheaper to build, and json.dumps writes them as arrays at C speed (see content_hash).
class Author(NamedTuple):
    last_name: str | None = None
    fore_name: str | None = None
    initials: str | None = None
    collective_name: str | None = None
    orcid: str | None = None

    @property
    def display_name(self) -> str:
        if self.collective_name:
            return self.collective_name
        return " ".join(part for part in (self.last_name, self.initials or self.fore_name) if part)


class AbstractSection(NamedTuple):
    text: str
    label: str | None = None
    category: str | None = None  # NlmCategory: BACKGROUND, METHODS, RESULTS, ...


class MeshHeading(NamedTuple):
    descriptor: str
    major: bool = False
    ui: str | None = None
    qualifiers: tuple[tuple[str, bool], ...] = ()  # (name, major topic)


class Notice(NamedTuple):
    """A CommentsCorrections link that matters for evidence: RetractionIn, ErratumIn, ..."""

    ref_type: str
    pmid: int | None
    source: str | None = None


@dataclass(frozen=True, slots=True)
class PubmedRecord:
    pmid: int
    title: str
    abstract_sections: tuple[AbstractSection, ...] = ()
    journal: str = ""
    journal_iso: str | None = None
    pub_date: str | None = None
    pub_year: int | None = None
    authors: tuple[Author, ...] = ()
    doi: str | None = None
    pmcid: str | None = None
    languages: tuple[str, ...] = ()
    publication_types: tuple[str, ...] = ()
    mesh_headings: tuple[MeshHeading, ...] = ()
    keywords: tuple[str, ...] = ()
    notices: tuple[Notice, ...] = ()
    date_revised: date | None = None

    @property
    def abstract(self) -> str:
        """All sections, whole, as "LABEL: text" paragraphs (unlabelled ones as plain text)."""
        return "\n\n".join(
            f"{section.label}: {section.text}" if section.label else section.text
            for section in self.abstract_sections
        )

    @property
    def retraction_status(self) -> str | None:
        """The strongest standing PubMed gives the record (see db.models.RetractionStatus)."""
        kinds = {notice.ref_type for notice in self.notices}
        types = set(self.publication_types)
        if types & RETRACTED_TYPES or "RetractionIn" in kinds:
            return "retracted"
        # The "Expression of Concern" type marks the notice itself, not the study it concerns.
        if "ExpressionOfConcernIn" in kinds or (types & CONCERN_TYPES and not kinds & NOTICE_OF_REF_TYPES):
            return "expression_of_concern"
        if types & RETRACTION_NOTICE_TYPES:
            return "retraction_notice"
        if "ErratumIn" in kinds:
            return "corrected"
        return None

    def content_hash(self) -> str:
        """SHA-256 of everything the record says, stable across runs and processes."""
        content = (
            self.pmid, self.title, self.abstract_sections, self.journal, self.journal_iso,
            self.pub_date, self.pub_year, self.authors, self.doi, self.pmcid, self.languages,
            self.publication_types, self.mesh_headings, self.keywords, self.notices, self.date_revised,
        )  # fmt: skip
        return hashlib.sha256(orjson.dumps(content, default=_plain)).hexdigest()

    def article_fields(self) -> dict[str, Any]:
        """Column values for db.models.Article, including the content hash."""
        return {
            "pmid": self.pmid,
            "title": self.title,
            "abstract": self.abstract,
            "abstract_sections": [section._asdict() for section in self.abstract_sections],
            "journal": self.journal,
            "journal_iso": self.journal_iso,
            "pub_date": self.pub_date,
            "pub_year": self.pub_year,
            "authors": [author._asdict() for author in self.authors],
            "doi": self.doi,
            "pmcid": self.pmcid,
            "languages": list(self.languages),
            "publication_types": list(self.publication_types),
            "mesh_headings": [
                {
                    "descriptor": m.descriptor,
                    "major": m.major,
                    "ui": m.ui,
                    "qualifiers": [{"name": name, "major": major} for name, major in m.qualifiers],
                }
                for m in self.mesh_headings
            ],
            "keywords": list(self.keywords),
            "retraction_status": self.retraction_status,
            "notices": [notice._asdict() for notice in self.notices],
            "date_revised": self.date_revised,
            "content_hash": self.content_hash(),
        }


def _plain(value: object) -> object:
    # orjson writes tuples but not their NamedTuple subclasses; dates it handles itself.
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"cannot hash a {type(value).__name__}")


@dataclass(frozen=True, slots=True)
class DeletedCitation:
    """A <DeleteCitation> entry of a PubMed update file."""

    pmid: int
