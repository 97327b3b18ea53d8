"""Small builders for review-workflow tests: users, articles, documents, claims, votes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlmodel import Session

from db.corpus.articles import upsert_articles
from db.models import Article, Assessment, Claim, SourceDocument, User
from db.review.assessments import record_assessment
from db.review.claims import insert_claim
from db.vocab import DocumentStatus, Role, StudyDesign, StudyVerdict
from ingest.records import AbstractSection, MeshHeading, PubmedRecord

DOCUMENT_TEXT = (
    "Ketamine works fast.\n\n"
    "Studies show that ketamine relieves depression within hours. "
    "Some patients stay well for months. "
    "Ketamine is sold in 3 forms.\n"
)


def add_user(session: Session, name: str = "rita", role: Role = Role.REVIEWER) -> User:
    user = User(name=name, role=role)
    session.add(user)
    session.flush()
    return user


def add_article(
    session: Session,
    pmid: int = 1001,
    *,
    title: str = "Ketamine for depression: a trial",
    abstract: str = "RESULTS: Ketamine reduced depressive symptoms within 24 hours compared with placebo.",
    publication_types: list[str] | None = None,
    mesh: list[str] | None = None,
    retraction_status: str | None = None,
) -> Article:
    article = Article(
        pmid=pmid,
        title=title,
        abstract=abstract,
        publication_types=publication_types
        if publication_types is not None
        else ["Randomized Controlled Trial"],
        mesh_headings=[{"descriptor": term} for term in (mesh or [])],
        retraction_status=retraction_status,
        content_hash=f"hash-{pmid}",
    )
    session.add(article)
    session.flush()
    return article


def add_document(
    session: Session, slug: str = "test-post", text: str = DOCUMENT_TEXT, blind_mode: bool = True
) -> SourceDocument:
    document = SourceDocument(
        slug=slug, title="Test post", text=text, status=DocumentStatus.IN_REVIEW, blind_mode=blind_mode
    )
    session.add(document)
    session.flush()
    return document


def add_claim(
    session: Session,
    document: SourceDocument | None = None,
    key: str = "fast-relief",
    sentence: str = "Studies show that ketamine relieves depression within hours.",
    statement: str = "Ketamine relieves depression within hours.",
) -> Claim:
    document = document or add_document(session)
    return insert_claim(session, None, document, key=key, statement=statement, sentence=sentence)


def document_of(session: Session, claim: Claim) -> SourceDocument:
    document = session.get(SourceDocument, claim.document_id)
    assert document is not None
    return document


def vote(
    session: Session,
    reviewer: User,
    claim: Claim,
    pmid: int,
    verdict: StudyVerdict | str = StudyVerdict.SUPPORTED,
    *,
    quote: str | None = None,
    design: StudyDesign | None = None,
) -> Assessment:
    """Record `reviewer`'s vote, quoting the start of the abstract unless told otherwise."""
    if quote is None:
        article = session.get(Article, pmid)
        assert article is not None
        quote = (article.abstract or article.title)[:40]
    return record_assessment(session, reviewer, claim, pmid, verdict, quote=quote, design=design)


def team(session: Session) -> dict[str, User]:
    """An admin, an editor, two reviewers and a viewer."""
    return {
        "admin": add_user(session, "ada", Role.ADMIN),
        "editor": add_user(session, "eve", Role.EDITOR),
        "reviewer": add_user(session, "rita", Role.REVIEWER),
        "reviewer2": add_user(session, "rob", Role.REVIEWER),
        "viewer": add_user(session, "vic", Role.VIEWER),
    }


def load_recorded_articles(session: Session, path: Path) -> dict[int, dict[str, Any]]:
    """Insert the recorded PubMed records of a records.jsonl as articles; returns them by PMID."""
    records = {}
    rows = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            raw = json.loads(line)
            pmid = int(raw["pmid"])
            records[pmid] = raw
            record = PubmedRecord(
                pmid=pmid,
                title=raw["title"],
                abstract_sections=(AbstractSection(text=raw["abstract"]),) if raw.get("abstract") else (),
                journal=raw.get("journal") or "",
                pub_year=raw.get("year"),
                doi=raw.get("doi"),
                publication_types=tuple(raw.get("publication_types") or ()),
                mesh_headings=tuple(MeshHeading(descriptor=term) for term in raw.get("mesh_terms") or ()),
            )
            rows.append(record.article_fields())
    upsert_articles(session, rows)
    session.flush()
    return records
