"""Exporting articles as JSON Lines or CSV: one row per article, for other tools, acceptance checks and `import`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, TextIO

from sqlmodel import Session

from db.corpus.articles import iter_articles
from db.corpus.authors import author_name
from db.exports.formats import SafeCsvWriter
from db.models import Article
from db.review.assessments import latest_design_corrections
from db.vocab import RetractionStatus, StudyDesign

ARTICLE_COLUMNS = (
    "pmid",
    "title",
    "abstract",
    "journal",
    "year",
    "pub_date",
    "doi",
    "pmcid",
    "authors",
    "languages",
    "publication_types",
    "mesh_terms",
    "major_mesh_terms",
    "keywords",
    "retracted",
    "retraction_status",
    "notices",
    "date_revised",
    "deleted_in_pubmed",
    "design",
    "design_confidence",
    "is_notice",
    "notice_of",
)
# JSON Lines carry these too: the record as the database stores it (abstract sections with their labels,
# authors with fore names and ORCIDs, MeSH with qualifiers, notices with their sources), so that `import`
# of the export rebuilds the same articles. The CSV stays flat for spreadsheets and is not importable.
RECORD_DETAIL_COLUMNS = (
    "journal_iso",
    "abstract_sections",
    "author_details",
    "mesh_headings",
    "notice_details",
)
EXPORT_FORMATS = ("jsonl", "csv")


def article_row(article: Article, corrected: StudyDesign | None = None) -> dict[str, Any]:
    """The export shape of one article: lists stay lists (CSV joins them with '; ').

    `design` is the study's design: a reviewer's (`corrected`, confidence 1) or else the prefill.
    """
    return {
        "pmid": article.pmid,
        "title": article.title,
        "abstract": article.abstract,
        "journal": article.journal,
        "year": article.pub_year,
        "pub_date": article.pub_date,
        "doi": article.doi,
        "pmcid": article.pmcid,
        "authors": [author_name(a, "medline") for a in article.authors],
        "languages": list(article.languages),
        "publication_types": list(article.publication_types),
        "mesh_terms": [m["descriptor"] for m in article.mesh_headings],
        "major_mesh_terms": [m["descriptor"] for m in article.mesh_headings if m.get("major")],
        "keywords": list(article.keywords),
        "retracted": article.retraction_status == RetractionStatus.RETRACTED.value,
        "retraction_status": article.retraction_status,
        "notices": [
            f"{n['ref_type']}:{n['pmid']}" if n.get("pmid") else n["ref_type"] for n in article.notices
        ],
        "date_revised": article.date_revised.isoformat() if article.date_revised else None,
        "deleted_in_pubmed": article.deleted_in_pubmed,
        "design": corrected.value if corrected else article.design,
        "design_confidence": 1.0 if corrected else article.design_confidence,
        "is_notice": article.is_notice,
        "notice_of": article.notice_of,
    }


def record_detail(article: Article) -> dict[str, Any]:
    """The RECORD_DETAIL_COLUMNS of one article, as stored (see PubmedRecord.article_fields)."""
    return {
        "journal_iso": article.journal_iso,
        "abstract_sections": article.abstract_sections,
        "author_details": article.authors,
        "mesh_headings": article.mesh_headings,
        "notice_details": article.notices,
    }


def article_rows(session: Session, *, detail: bool = False) -> Iterator[dict[str, Any]]:
    corrected = latest_design_corrections(session)
    for article in iter_articles(session):
        row = article_row(article, corrected.get(article.pmid))
        yield row | record_detail(article) if detail else row


def write_articles(session: Session, out: TextIO, fmt: str) -> int:
    """Write every article to `out` in `fmt` (jsonl or csv); returns how many were written."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"Unknown export format {fmt!r}; use one of: {', '.join(EXPORT_FORMATS)}.")
    count = 0
    if fmt == "jsonl":
        for row in article_rows(session, detail=True):
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
        return count
    # The line ends csv writes by default (CRLF), as this export always had.
    writer = SafeCsvWriter(out, ARTICLE_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for row in article_rows(session):
        writer.writerow({k: "; ".join(v) if isinstance(v, list) else v for k, v in row.items()})
        count += 1
    return count
