"""A claim's evidence profile: the verdict with its certainty, every included study, what was left
out and why, and a PRISMA 2020-style flow with the search it came from. What an editor hands a
writer: the claim report (db.exports.claims) and the Claims page both read it from here."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from db.errors import NotFoundError
from db.models import Article, Claim, HarvestRun, PairRecord, User
from db.review.pair_evidence import pair_statements
from db.review.pairs import is_blinded, listed_evidence
from db.review.roles import Action, require
from db.review.verdicts import (
    ClaimScope,
    ClaimVerdictResult,
    StudyEvidence,
    derive_claim_verdict,
    sensitivity,
)
from db.vocab import RunStatus, StudyDesign, StudyVerdict

PUBMED_URL = "https://pubmed.ncbi.nlm.nih.gov/{pmid}/"


@dataclass(frozen=True)
class IncludedStudy:
    """One study the verdict weighs (or lists without counting: a weaker design), as a writer cites it."""

    pmid: int
    url: str
    title: str
    year: int | None
    design: StudyDesign
    participants: int | None
    follow_up: str | None  # as the reviewer wrote it
    follow_up_days: float | None
    verdict: StudyVerdict
    quote: str
    effect: str | None
    direct: bool
    indirect_reason: str | None
    decides: bool  # among the deciding studies (else: a design that does not decide here)

    def as_dict(self) -> dict[str, Any]:
        # Field by field, not dataclasses.asdict: its deep copy was a third of a large report's time.
        row = {f.name: getattr(self, f.name) for f in fields(self)}
        row["design"], row["verdict"] = self.design.value, self.verdict.value
        return row


@dataclass(frozen=True)
class LeftOut:
    """A relevant study the verdict leaves out, and why (retracted, a notice, awaiting resolution)."""

    pmid: int
    title: str
    reason: str


@dataclass(frozen=True)
class ScreenedOut:
    """A study reviewers judged not relevant to the claim, with the reason a reviewer noted."""

    pmid: int
    title: str
    note: str


# Screened-out studies listed by name (the rest are counted): most of a large review is screened out.
SCREENED_OUT_LISTED = 200
# Words that make a claim absolute: studies can support an effect, never "undeniable" or "always".
ABSOLUTE_WORDS = (
    "undeniable",
    "undeniably",
    "always",
    "never",
    "proven",
    "guaranteed",
    "cure",
    "cures",
    "everyone",
    "completely",
    "definitely",
    "certainly",
    "all patients",
    "no side effects",
)


def absolute_wording(*texts: str) -> list[str]:
    """The absolute words of a claim's statement, in the order of ABSOLUTE_WORDS. (Not its source
    sentence: hedges such as "not a cure-all" live there.)"""
    tokens = re.findall(r"[a-z'-]+", " ".join(texts).lower())  # "cure-all" stays one word
    joined = f" {' '.join(tokens)} "
    return [w for w in ABSOLUTE_WORDS if f" {w} " in joined]


@dataclass(frozen=True)
class Flow:
    """PRISMA 2020's flow for one claim.

    identified: records in the database (what the searches and imports found);
    screened: studies reviewers judged for this claim; relevant: screened and not all "not
    relevant"; included: relevant studies the verdict lists; excluded: relevant studies it leaves
    out, by reason (`excluded_reasons`).
    """

    identified: int
    screened: int
    relevant: int
    included: int
    excluded: int
    excluded_reasons: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Provenance:
    """Where the studies came from: the searches run, and when PubMed was last asked."""

    queries: tuple[str, ...]
    last_harvest: str | None  # ISO date of the last successful harvest
    imports: int  # files imported


@dataclass(frozen=True)
class EvidenceProfile:
    claim_key: str
    result: ClaimVerdictResult
    high_certainty: ClaimVerdictResult
    all_designs: ClaimVerdictResult
    studies: tuple[IncludedStudy, ...]  # deciding studies first, then by participants
    left_out: tuple[LeftOut, ...]
    screened_out: tuple[ScreenedOut, ...]  # up to SCREENED_OUT_LISTED, by PMID
    flow: Flow
    provenance: Provenance
    absolute_words: tuple[str, ...]  # in the claim's wording: the report warns of them


def claim_profile(session: Session, viewer: User, claim_id: int) -> EvidenceProfile | None:
    """The claim's evidence profile for `viewer`, or None while blind mode hides others' votes from
    them (the profile counts every reviewer's votes)."""
    require(viewer, Action.READ)
    claim = session.get(Claim, claim_id)
    if claim is None:
        raise NotFoundError(f"No claim with id {claim_id}; reload the page.")
    if is_blinded(session, viewer, claim):
        return None
    return evidence_profile(session, claim)


def evidence_profile(session: Session, claim: Claim) -> EvidenceProfile:
    """The claim's evidence profile as everyone sees it (no blind mode: editors and exports)."""
    evidence, screened_out = listed_evidence(session, claim)
    scope = ClaimScope.of(claim)
    views = sensitivity(evidence, scope)
    result = derive_claim_verdict(evidence, screened_out=screened_out, claim=scope)
    included = list(result.considered + result.not_counted)
    pmids = [s.pmid for s in included] + [e.pmid for e in result.excluded] + list(result.unresolved)
    articles = _articles(session, pmids)
    assert claim.id is not None
    statements = pair_statements(session, claim.id, [s.pmid for s in included])
    deciding = {s.pmid for s in result.counted}
    studies = sorted(
        (_included(s, articles, statements.get(s.pmid, {}), result, s.pmid in deciding) for s in included),
        key=lambda s: (not s.decides, -(s.participants or 0), s.pmid),
    )
    left_out = [LeftOut(e.pmid, articles.get(e.pmid, ("", None))[0], e.reason) for e in result.excluded]
    left_out += [
        LeftOut(pmid, articles.get(pmid, ("", None))[0], "awaiting conflict resolution")
        for pmid in result.unresolved
    ]
    not_relevant = _screened_out(session, claim.id, evidence)
    reasons = Counter(item.reason for item in left_out)
    screened = len(evidence) + screened_out
    relevant = screened - result.not_relevant
    flow = Flow(
        identified=_records(session),
        screened=screened,
        relevant=relevant,
        included=len(studies),
        excluded=len(left_out),
        excluded_reasons=dict(sorted(reasons.items())),
    )
    return EvidenceProfile(
        claim.key,
        result,
        views.high_certainty,
        views.all_designs,
        tuple(studies),
        tuple(left_out),
        tuple(not_relevant),
        flow,
        provenance(session),
        tuple(absolute_wording(claim.statement)),
    )


def _screened_out(session: Session, claim_id: int, evidence: list[StudyEvidence]) -> list[ScreenedOut]:
    """The claim's studies judged not relevant (listed pairs resolved so, and pairs only screened
    out), by PMID, up to SCREENED_OUT_LISTED, with a reviewer's note where one was written."""
    pairs = PairRecord.__table__
    listed = [s.pmid for s in evidence if s.verdict == StudyVerdict.NOT_RELEVANT]
    rest = SCREENED_OUT_LISTED - len(listed)
    if rest > 0:
        query = (
            select(pairs.c.pmid)
            .where(pairs.c.claim_id == claim_id, pairs.c.screened_out == True)  # noqa: E712
            .order_by(pairs.c.pmid)
            .limit(rest)
        )
        listed += list(session.execute(query).scalars())
    pmids = sorted(set(listed))[:SCREENED_OUT_LISTED]
    titles = _articles(session, pmids)
    notes = pair_statements(session, claim_id, pmids)
    return [
        ScreenedOut(pmid, titles.get(pmid, ("", None))[0], notes.get(pmid, {}).get("note", ""))
        for pmid in pmids
    ]


def _included(
    study: StudyEvidence,
    articles: dict[int, tuple[str, int | None]],
    statements: dict[str, str],
    result: ClaimVerdictResult,
    decides: bool,
) -> IncludedStudy:
    title, year = articles.get(study.pmid, ("", None))
    assert study.verdict is not None
    why = result.indirect.get(study.pmid)
    return IncludedStudy(
        pmid=study.pmid,
        url=PUBMED_URL.format(pmid=study.pmid),
        title=title,
        year=year,
        design=StudyDesign(study.design),
        participants=study.participants,
        follow_up=statements.get("follow_up"),
        follow_up_days=study.follow_up_days,
        verdict=StudyVerdict(study.verdict),
        quote=statements.get("quote", ""),
        effect=statements.get("effect"),
        direct=why is None,
        indirect_reason=why,
        decides=decides,
    )


def _articles(session: Session, pmids: list[int]) -> dict[int, tuple[str, int | None]]:
    if not pmids:
        return {}
    rows = session.execute(
        select(col(Article.pmid), col(Article.title), col(Article.pub_year)).where(
            col(Article.pmid).in_(pmids)
        )
    )
    return {pmid: (title, year) for pmid, title, year in rows}


def _records(session: Session) -> int:
    query = select(func.count()).select_from(Article).where(col(Article.deleted_in_pubmed).is_(False))
    return int(session.execute(query).scalar() or 0)


def provenance(session: Session) -> Provenance:
    """The distinct harvest queries that succeeded, the date of the last one, and the files imported."""
    runs = HarvestRun.__table__
    succeeded = runs.c.status == RunStatus.SUCCEEDED.value
    queries = session.execute(
        select(runs.c.query)
        .where(succeeded, runs.c.kind == "harvest")
        .group_by(runs.c.query)
        .order_by(func.max(runs.c.finished_at).desc())
    ).scalars()
    last = session.execute(
        select(func.max(runs.c.finished_at)).where(succeeded, runs.c.kind == "harvest")
    ).scalar()
    imports = session.execute(select(func.count()).where(succeeded, runs.c.kind == "import")).scalar()
    return Provenance(
        tuple(q for q in queries if q),
        last.date().isoformat() if last is not None else None,
        int(imports or 0),
    )
