"""Plain frozen dataclasses that every PubMed parser produces and the database layer stores."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

RETRACTED_TYPES = frozenset({"Retracted Publication"})
RETRACTION_NOTICE_TYPES = frozenset({"Retraction of Publication"})
CONCERN_TYPES = frozenset({"Expression of Concern"})
# CommentsCorrections RefTypes that change how a study may be used, and what they mean.
NOTICE_REF_TYPES = frozenset({"RetractionIn", "ExpressionOfConcernIn", "ErratumIn"})


@dataclass(frozen=True, slots=True)
class Author:
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


@dataclass(frozen=True, slots=True)
class AbstractSection:
    text: str
    label: str | None = None
    category: str | None = None  # NlmCategory: BACKGROUND, METHODS, RESULTS, ...


@dataclass(frozen=True, slots=True)
class MeshHeading:
    descriptor: str
    major: bool = False
    ui: str | None = None
    qualifiers: tuple[tuple[str, bool], ...] = ()  # (name, major topic)


@dataclass(frozen=True, slots=True)
class Notice:
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
        if types & CONCERN_TYPES or "ExpressionOfConcernIn" in kinds:
            return "expression_of_concern"
        if types & RETRACTION_NOTICE_TYPES:
            return "retraction_notice"
        if "ErratumIn" in kinds:
            return "corrected"
        return None

    def article_fields(self) -> dict[str, Any]:
        """Column values for db.models.Article, including the content hash."""
        fields = {
            "pmid": self.pmid,
            "title": self.title,
            "abstract": self.abstract,
            "abstract_sections": [_compact(asdict(s)) for s in self.abstract_sections],
            "journal": self.journal,
            "journal_iso": self.journal_iso,
            "pub_date": self.pub_date,
            "pub_year": self.pub_year,
            "authors": [_compact(asdict(a)) for a in self.authors],
            "doi": self.doi,
            "pmcid": self.pmcid,
            "languages": list(self.languages),
            "publication_types": list(self.publication_types),
            "mesh_headings": [
                {
                    "descriptor": m.descriptor,
                    "major": m.major,
                    "ui": m.ui,
                    "qualifiers": [{"name": n, "major": major} for n, major in m.qualifiers],
                }
                for m in self.mesh_headings
            ],
            "keywords": list(self.keywords),
            "retraction_status": self.retraction_status,
            "notices": [_compact(asdict(n)) for n in self.notices],
            "date_revised": self.date_revised,
        }
        fields["content_hash"] = content_hash(fields)
        return fields


def content_hash(fields: dict[str, Any]) -> str:
    """SHA-256 of the record's content, stable across parsers and runs."""
    payload = {k: v for k, v in fields.items() if k != "content_hash"}
    text = json.dumps(payload, sort_keys=True, default=str, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _compact(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None and v != ()}


@dataclass(frozen=True, slots=True)
class DeletedCitation:
    """A <DeleteCitation> entry of a PubMed update file."""

    pmid: int
