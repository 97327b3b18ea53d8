"""Source documents under review: adding them, splitting sentences, claim proposals, the seed article."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlmodel import Session, col

from db.clock import utcnow
from db.engine import write_lock
from db.errors import ConflictError, InvalidInputError, NotFoundError
from db.models import Claim, ClaimProposal, SourceDocument, User
from db.review.audit import record_event
from db.review.claims import find_claim, insert_claim
from db.review.roles import Action, require
from db.vocab import AuditAction, DocumentStatus, ProposalStatus

SEED_SLUG = "ketamine-therapy-blog-post"
# pg_advisory_xact_lock key for loading the seed article, apart from the other locks.
_SEED_LOCK = 0x6B65_7364
_SLUG_STRIP = re.compile(r"[^a-z0-9]+")


# --- documents -------------------------------------------------------------------------------------


def slugify(title: str) -> str:
    slug = _SLUG_STRIP.sub("-", title.lower()).strip("-")[:80].strip("-")
    return slug or "document"


def add_document(
    session: Session,
    actor: User,
    *,
    title: str,
    text: str,
    slug: str | None = None,
    author: str | None = None,
    outlet: str | None = None,
    url: str | None = None,
    status: DocumentStatus = DocumentStatus.DRAFT,
    blind_mode: bool = True,
) -> SourceDocument:
    """Register an article to check (pasted or uploaded text or Markdown)."""
    require(actor, Action.MANAGE_CLAIMS)
    return _insert_document(
        session,
        actor,
        title=title,
        text=text,
        slug=slug,
        author=author,
        outlet=outlet,
        url=url,
        status=status,
        blind_mode=blind_mode,
    )


def _insert_document(session: Session, actor: User | None, **values: Any) -> SourceDocument:
    title = str(values.pop("title")).strip()
    # One newline convention, so character spans mean the same on every platform.
    text = str(values.pop("text")).replace("\r\n", "\n").replace("\r", "\n")
    if not title or not text.strip():
        raise InvalidInputError("A source document needs a title and its full text; paste both and retry.")
    slug = values.pop("slug") or slugify(title)
    values["url"] = web_address(values.get("url"))
    if find_document(session, slug) is not None:
        raise ConflictError(f"A document with slug {slug!r} exists already; give another --slug.")
    document = SourceDocument(slug=slug, title=title, text=text, **values)
    session.add(document)
    session.flush()
    record_event(
        session,
        actor,
        AuditAction.DOCUMENT_ADDED,
        document,
        after={"slug": slug, "title": title, "status": document.status, "blind_mode": document.blind_mode},
    )
    return document


def find_document(session: Session, slug: str) -> SourceDocument | None:
    return session.scalars(select(SourceDocument).where(col(SourceDocument.slug) == slug)).first()


def get_document(session: Session, slug: str) -> SourceDocument:
    document = find_document(session, slug)
    if document is None:
        raise NotFoundError(
            f"No source document {slug!r}; `documents list` shows them, `claims propose FILE` adds one."
        )
    return document


def list_documents(session: Session) -> list[SourceDocument]:
    return list(session.scalars(select(SourceDocument).order_by(col(SourceDocument.id))))


def set_document_status(
    session: Session, actor: User, slug: str, status: DocumentStatus, reason: str | None = None
) -> SourceDocument:
    require(actor, Action.MANAGE_CLAIMS)
    return _change_document(session, actor, slug, "status", status, reason)


def set_blind_mode(
    session: Session, actor: User, slug: str, on: bool, reason: str | None = None
) -> SourceDocument:
    """Turn blind mode on or off for one document (it starts on)."""
    require(actor, Action.MANAGE_CLAIMS)
    return _change_document(session, actor, slug, "blind_mode", on, reason)


# How an article is described where it was published: what ClaimReview says of the claim's appearance.
DESCRIPTION_FIELDS = ("title", "author", "outlet", "url")


def describe_document(
    session: Session, actor: User, slug: str, *, reason: str | None = None, **changes: str | None
) -> SourceDocument:
    """Change the article's title, author, outlet or URL (each audited); an empty value clears it.

    ClaimReview publishes them: the claim's author is the article's author (or its outlet), and its
    appearance links the URL.
    """
    require(actor, Action.MANAGE_CLAIMS)
    unknown = sorted(set(changes) - set(DESCRIPTION_FIELDS))
    if unknown:
        raise InvalidInputError(
            f"Unknown document field(s) {', '.join(unknown)}; use {', '.join(DESCRIPTION_FIELDS)}."
        )
    cleaned = {name: (value or "").strip() or None for name, value in changes.items()}
    if "title" in cleaned and cleaned["title"] is None:
        raise InvalidInputError("A document's title cannot be empty; give the article's title.")
    if "url" in cleaned:
        cleaned["url"] = web_address(cleaned["url"])
    document = get_document(session, slug)
    for name, value in cleaned.items():
        document = _change_document(session, actor, slug, name, value, reason)
    return document


def web_address(url: str | None) -> str | None:
    """`url` if it is an http(s) address with a host (it is published and linked), else an error."""
    if url is None or not url.strip():
        return None
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc or any(c.isspace() for c in url):
        raise InvalidInputError(
            f"{url[:100]!r} is not a web address; give the article's full address, starting https:// or http://."
        )
    return url


def _change_document(
    session: Session, actor: User, slug: str, name: str, value: Any, reason: str | None
) -> SourceDocument:
    document = get_document(session, slug)
    before = getattr(document, name)
    if before == value:
        return document
    setattr(document, name, value)
    document.updated_at = utcnow()
    session.add(document)
    record_event(
        session,
        actor,
        AuditAction.DOCUMENT_CHANGED,
        document,
        before={name: before},
        after={name: value},
        reason=reason,
    )
    return document


# --- sentences and proposals (pure) ----------------------------------------------------------------


@dataclass(frozen=True)
class Sentence:
    text: str
    start: int
    end: int
    heading: bool = False  # a title or section heading: never proposed as a claim


# Words after which a full stop does not end a sentence.
_ABBREVIATIONS = frozenset(
    {
        "e.g",
        "i.e",
        "etc",
        "vs",
        "dr",
        "mr",
        "mrs",
        "ms",
        "prof",
        "al",
        "fig",
        "approx",
        "no",
        "st",
        "cf",
        "ca",
    }
)
_END = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s|$)")
_BLOCK_BREAK = re.compile(r"\n[ \t]*\n")
_MARKDOWN_PREFIX = re.compile(r"^(?:#{1,6}\s+|[-*+]\s+|\d+[.)]\s+|>\s+)")


def split_sentences(text: str) -> list[Sentence]:
    """Sentences with their character spans in `text`; headings come out marked as such.

    Blocks are separated by blank lines; Markdown list items and headings are units of their own.
    A full stop ends a sentence only before whitespace, so "2.5 mg" and "e.g. ketamine" survive.
    """
    sentences: list[Sentence] = []
    for block_start, block in _blocks(text):
        for unit_start, unit in _units(block_start, block):
            sentences.extend(_split_unit(unit_start, unit))
    return sentences


def _blocks(text: str) -> list[tuple[int, str]]:
    blocks, position = [], 0
    for match in _BLOCK_BREAK.finditer(text):
        blocks.append((position, text[position : match.start()]))
        position = match.end()
    blocks.append((position, text[position:]))
    return blocks


def _units(block_start: int, block: str) -> list[tuple[int, str]]:
    lines = block.split("\n")
    if not any(_MARKDOWN_PREFIX.match(line.lstrip()) for line in lines):
        return [(block_start, block)]
    units, offset = [], block_start
    for line in lines:
        units.append((offset, line))
        offset += len(line) + 1
    return units


def _split_unit(start: int, unit: str) -> list[Sentence]:
    stripped = unit.lstrip()
    offset = start + len(unit) - len(stripped)
    prefix = _MARKDOWN_PREFIX.match(stripped)
    is_markdown_heading = bool(prefix and prefix.group().startswith("#"))
    if prefix:
        offset += prefix.end()
        stripped = stripped[prefix.end() :]
    body = stripped.rstrip()
    if not body:
        return []
    if is_markdown_heading or ("\n" not in body and not _END.search(body)):
        return [Sentence(body, offset, offset + len(body), heading=True)]
    sentences, begin = [], 0
    for match in _END.finditer(body):
        word = body[: match.start()].rsplit(None, 1)[-1].lower() if body[: match.start()].strip() else ""
        if word.rstrip(".") in _ABBREVIATIONS or re.fullmatch(r"[a-z]", word):
            continue
        sentences.append(_trimmed(body, begin, match.end(), offset))
        begin = match.end()
    if body[begin:].strip():
        sentences.append(_trimmed(body, begin, len(body), offset))
    return [s for s in sentences if s.text]


def _trimmed(body: str, begin: int, end: int, offset: int) -> Sentence:
    piece = body[begin:end]
    lead = len(piece) - len(piece.lstrip())
    text = piece.strip()
    return Sentence(text, offset + begin + lead, offset + begin + lead + len(text))


# Cue families that make a sentence claim-like; a proposal names the ones it matched.
CLAIM_CUES: dict[str, re.Pattern[str]] = {
    "evidence": re.compile(
        r"\b(?:stud(?:y|ies)|research|trials?|evidence|data|scientists|researchers)\b[^.]{0,40}?"
        r"\b(?:show|shows|shown|demonstrated?|demonstrates|found|find|finds|suggests?|proven?|indicates?|supports?)\b",
        re.I,
    ),
    "has been shown": re.compile(r"\b(?:has|have) been (?:shown|proven|demonstrated|found|used)\b", re.I),
    "efficacy": re.compile(
        r"\b(?:effective\w*|efficacy|efficacious|relief|reliev\w*|alleviat\w*|reduc\w*|improv\w*|"
        r"prevent\w*|remission|cures?|benefits?|saves? lives|safer|safe)\b",
        re.I,
    ),
    "number": re.compile(
        r"\d|\b(?:millions?|thousands?|hundreds?|decades?|dozens?|half|twice|double)\b", re.I
    ),
    "comparison": re.compile(
        r"\b(?:more|less|better|worse|faster|slower|greater|fewer|higher|lower|than|unlike|versus|vs)\b|"
        r"\bcompared (?:to|with)\b|\bon the other hand\b|\bdifferently from\b",
        re.I,
    ),
    "certainty": re.compile(
        r"\b(?:undeniabl[ey]|guarantee[sd]?|always|never|highly|significant(?:ly)?|remarkabl[ey])\b", re.I
    ),
    "mechanism": re.compile(r"\b(?:acts? on|works? by|mechanism|leads? to|helps?|helping)\b", re.I),
}


def claim_cues(sentence: str) -> list[str]:
    """The cue families a sentence matches, in CLAIM_CUES order."""
    return [name for name, pattern in CLAIM_CUES.items() if pattern.search(sentence)]


@dataclass(frozen=True)
class Proposal:
    sentence: Sentence
    cues: tuple[str, ...]


def propose_claims(text: str) -> list[Proposal]:
    """Claim-like sentences of a text, in order: any sentence (not heading) with at least one cue."""
    proposals = []
    for sentence in split_sentences(text):
        cues = claim_cues(sentence.text)
        if cues and not sentence.heading:
            proposals.append(Proposal(sentence, tuple(cues)))
    return proposals


# --- proposals in the database ---------------------------------------------------------------------


def store_proposals(session: Session, actor: User, document: SourceDocument) -> list[ClaimProposal]:
    """Store the document's claim proposals for review; sentences already proposed or claimed are skipped."""
    require(actor, Action.MANAGE_CLAIMS)
    known = set(
        session.scalars(
            select(col(ClaimProposal.span_start)).where(col(ClaimProposal.document_id) == document.id)
        )
    )
    known |= set(session.scalars(select(col(Claim.span_start)).where(col(Claim.document_id) == document.id)))
    stored = []
    assert document.id is not None
    for proposal in propose_claims(document.text):
        if proposal.sentence.start in known:
            continue
        row = ClaimProposal(
            document_id=document.id,
            sentence=proposal.sentence.text,
            span_start=proposal.sentence.start,
            span_end=proposal.sentence.end,
            cues=list(proposal.cues),
            status=ProposalStatus.PENDING,
        )
        session.add(row)
        stored.append(row)
    session.flush()
    return stored


def pending_proposals(session: Session, document_id: int | None = None) -> list[ClaimProposal]:
    query = select(ClaimProposal).where(col(ClaimProposal.status) == ProposalStatus.PENDING)
    if document_id is not None:
        query = query.where(col(ClaimProposal.document_id) == document_id)
    return list(
        session.scalars(query.order_by(col(ClaimProposal.document_id), col(ClaimProposal.span_start)))
    )


def _pending_proposal(session: Session, proposal_id: int) -> ClaimProposal:
    proposal = session.get(ClaimProposal, proposal_id)
    if proposal is None:
        raise NotFoundError(f"No claim proposal {proposal_id}; list the pending ones for the document.")
    if ProposalStatus(proposal.status) is not ProposalStatus.PENDING:
        raise ConflictError(
            f"Proposal {proposal_id} was {ProposalStatus(proposal.status).value} already; reload the list."
        )
    return proposal


def accept_proposal(
    session: Session,
    actor: User,
    proposal_id: int,
    *,
    key: str,
    statement: str | None = None,
    **pico: str | None,
) -> Claim:
    """Turn a proposal into a claim; `statement` is the editor's wording (edit), else the sentence."""
    require(actor, Action.MANAGE_CLAIMS)
    proposal = _pending_proposal(session, proposal_id)
    document = session.get(SourceDocument, proposal.document_id)
    assert document is not None
    claim = insert_claim(
        session,
        actor,
        document,
        key=key,
        statement=statement or proposal.sentence,
        sentence=proposal.sentence,
        span=(proposal.span_start, proposal.span_end),
        source=f"proposal {proposal_id}",
        **pico,
    )
    proposal.status = ProposalStatus.ACCEPTED
    proposal.claim_id = claim.id
    proposal.decided_by_id = actor.id
    proposal.decided_at = utcnow()
    session.add(proposal)
    record_event(
        session,
        actor,
        AuditAction.PROPOSAL_ACCEPTED,
        proposal,
        after={"claim": key, "edited": statement is not None and statement != proposal.sentence},
        claim_id=claim.id,
    )
    return claim


def reject_proposal(
    session: Session, actor: User, proposal_id: int, reason: str | None = None
) -> ClaimProposal:
    require(actor, Action.MANAGE_CLAIMS)
    proposal = _pending_proposal(session, proposal_id)
    proposal.status = ProposalStatus.REJECTED
    proposal.decided_by_id = actor.id
    proposal.decided_at = utcnow()
    session.add(proposal)
    record_event(
        session,
        actor,
        AuditAction.PROPOSAL_REJECTED,
        proposal,
        after={"sentence": proposal.sentence},
        reason=reason,
    )
    return proposal


# --- the seed article ------------------------------------------------------------------------------


def seed_content() -> dict[str, Any]:
    """The shipped seed: the blog post's metadata, full text and its nine claims."""
    folder = resources.files("db") / "seed"
    data: dict[str, Any] = json.loads((folder / "claims.json").read_text(encoding="utf-8"))
    data["document"]["text"] = (folder / data["document"].pop("text_file")).read_text(encoding="utf-8")
    return data


def ensure_seed_content(session: Session) -> SourceDocument:
    """Load the seed article and its claims unless they are there already. Safe at every start.

    Only what is missing is created; an existing document or claim is never touched, so an
    editor's edits and retirements survive restarts.
    """
    data = seed_content()
    slug = data["document"]["slug"]
    document = find_document(session, slug)
    if document is not None and all(find_claim(session, claim["key"]) for claim in data["claims"]):
        return document
    # Processes starting together on a new database: one loads it, the others wait, then find it.
    write_lock(session, _SEED_LOCK)
    return _load_seed(session, data)


def _load_seed(session: Session, data: dict[str, Any]) -> SourceDocument:
    meta = dict(data["document"])
    document = find_document(session, meta["slug"])
    if document is None:
        meta["status"] = DocumentStatus(meta["status"])
        document = _insert_document(session, None, **meta)
    for claim in data["claims"]:
        if find_claim(session, claim["key"]) is None:
            insert_claim(
                session, None, document, reason="seed content", source="db/seed/claims.json", **claim
            )
    session.flush()
    return document
