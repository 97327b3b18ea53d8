"""Citations of the studies behind the claims, as RIS and BibTeX for reference managers."""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlmodel import Session, col

from db.corpus.authors import author_name
from db.models import Article
from db.review.claims import list_claims
from db.review.pair_index import evidence_pairs
from db.review.verdicts import EXCLUDING_STATUSES
from db.vocab import StudyVerdict

PUBMED_URL = "https://pubmed.ncbi.nlm.nih.gov/{pmid}/"


@dataclass(frozen=True)
class Citation:
    pmid: int
    title: str
    authors: tuple[str, ...]  # "Last, First" (or a collective name)
    journal: str
    journal_abbreviation: str | None
    year: int | None
    pub_date: str | None
    doi: str | None
    pmcid: str | None
    abstract: str
    keywords: tuple[str, ...]
    retraction_status: str | None
    claims: tuple[str, ...]  # keys of the claims the study was judged relevant to


def citation_from_article(article: Article, claims: Iterable[str] = ()) -> Citation:
    return Citation(
        pmid=article.pmid,
        title=article.title,
        authors=tuple(name for a in article.authors or [] if (name := author_name(a))),
        journal=article.journal,
        journal_abbreviation=article.journal_iso,
        year=article.pub_year,
        pub_date=article.pub_date,
        doi=article.doi,
        pmcid=article.pmcid,
        abstract=article.abstract,
        keywords=tuple(article.keywords or ()),
        retraction_status=article.retraction_status,
        claims=tuple(claims),
    )


def evidence_citations(session: Session, document_id: int | None = None) -> list[Citation]:
    """Every study judged relevant (any verdict but not relevant, or still in conflict) to an active
    claim of the document (or of any document), by PMID, with the claims it bears on."""
    claims = {c.id: c.key for c in list_claims(session, document_id) if c.id is not None}
    if not claims:
        return []
    bears_on: dict[int, list[str]] = defaultdict(list)
    # From pair_state (kept by every write): grouping every vote here took over a minute at 200,000.
    for claim_id, pairs in evidence_pairs(session, list(claims), excluded=()).items():
        for pair in pairs:
            if pair.verdict is not StudyVerdict.NOT_RELEVANT:
                bears_on[pair.pmid].append(claims[claim_id])
    if not bears_on:
        return []
    articles = session.scalars(
        select(Article).where(col(Article.pmid).in_(list(bears_on))).order_by(col(Article.pmid))
    )
    return [citation_from_article(a, bears_on[a.pmid]) for a in articles]


def _note(citation: Citation) -> str:
    parts = []
    standing = EXCLUDING_STATUSES.get(citation.retraction_status or "")
    if standing:
        parts.append(f"Excluded from verdicts: {standing}")
    elif citation.retraction_status == "corrected":
        parts.append("Corrected (erratum published)")
    if citation.claims:
        parts.append("Evidence for claims: " + ", ".join(citation.claims))
    return ". ".join(parts)


# --- RIS -------------------------------------------------------------------------------------------


def _ris_value(value: str) -> str:
    # One tag per line: a line break inside a value would start a bogus tag.
    return " ".join(str(value).split())


def ris(citations: Iterable[Citation]) -> str:
    """RIS records (TY JOUR ... ER), readable by Zotero, EndNote and Mendeley."""
    lines: list[str] = []

    def tag(name: str, value: object) -> None:
        if value is not None and str(value).strip():
            lines.append(f"{name}  - {_ris_value(str(value))}")

    for c in citations:
        tag("TY", "JOUR")
        for author in c.authors:
            tag("AU", author)
        tag("TI", c.title)
        tag("T2", c.journal)
        tag("J2", c.journal_abbreviation)
        tag("PY", c.year)
        tag("DA", c.pub_date)
        tag("DO", c.doi)
        tag("AN", c.pmid)
        tag("DB", "PubMed")
        tag("UR", PUBMED_URL.format(pmid=c.pmid))
        if c.pmcid:
            tag("C2", c.pmcid)
        tag("AB", c.abstract)
        for keyword in c.keywords:
            tag("KW", keyword)
        tag("N1", _note(c))
        lines.append("ER  - ")
        lines.append("")
    return "\n".join(lines) + ("\n" if lines else "")


# --- BibTeX ----------------------------------------------------------------------------------------

_BIBTEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}
_BIBTEX_ESCAPE = re.compile("|".join(re.escape(ch) for ch in _BIBTEX_SPECIAL))


def bibtex_escape(value: str) -> str:
    """Text safe inside a braced BibTeX field: LaTeX's special characters escaped, on one line.

    Non-ASCII letters stay as they are (biber and modern BibTeX read UTF-8).
    """
    flat = " ".join(str(value).split())
    return _BIBTEX_ESCAPE.sub(lambda m: _BIBTEX_SPECIAL[m.group()], flat)


def _key_word(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^A-Za-z]", "", ascii_text)


def bibtex_key(c: Citation) -> str:
    """`lastnameYEARpmidPMID`: readable, and unique because the PMID is."""
    first = _key_word(c.authors[0].split(",")[0]).lower() if c.authors else ""
    return f"{first}{c.year or ''}pmid{c.pmid}"


def bibtex(citations: Iterable[Citation]) -> str:
    """@article entries with title, authors, journal, year, DOI, PMID and a note on standing."""
    entries = []
    for c in citations:
        fields: list[tuple[str, str]] = [
            # Double braces keep the title's capitals (drug names, acronyms) as written.
            ("title", "{" + bibtex_escape(c.title) + "}"),
            ("author", " and ".join(bibtex_escape(a) for a in c.authors)),
            ("journal", bibtex_escape(c.journal)),
            ("year", str(c.year) if c.year else ""),
            ("doi", bibtex_escape(c.doi or "")),
            ("pmid", str(c.pmid)),
            ("pmcid", bibtex_escape(c.pmcid or "")),
            ("url", bibtex_escape(PUBMED_URL.format(pmid=c.pmid))),
            ("note", bibtex_escape(_note(c))),
        ]
        body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields if value)
        entries.append(f"@article{{{bibtex_key(c)},\n{body}\n}}\n")
    return "\n".join(entries)
