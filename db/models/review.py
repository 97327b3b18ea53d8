"""Tables of the review workflow: users, documents, claims, assessments, pair state, sign-off, audit."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    event,
    text,
)
from sqlalchemy import Enum as SAEnum
from sqlmodel import Field

from db.clock import utcnow
from db.errors import AuditImmutableError
from db.models.base import TableModel
from db.vocab import (
    AuditAction,
    ClaimStatus,
    ClaimVerdict,
    Directness,
    DocumentStatus,
    Intervention,
    PairState,
    Population,
    ProposalStatus,
    Rating,
    RiskOfBias,
    Role,
    SignOffDecision,
    Strength,
    StudyDesign,
    StudyVerdict,
)


def _enum_column(enum: type[StrEnum], *, nullable: bool = False, index: bool = False) -> Column[Any]:
    # VARCHAR holding the enum's value: portable across SQLite and PostgreSQL, and adding a member
    # later needs no ALTER TYPE migration.
    return Column(
        SAEnum(enum, native_enum=False, length=32, values_callable=lambda e: [m.value for m in e]),
        nullable=nullable,
        index=index,
    )


def _pmid_column(*, nullable: bool = False) -> Column[Any]:
    # A real foreign key: db.corpus.articles.referencing_tables() finds it, so a harvest never deletes
    # an article that reviewer data relies on.
    return Column(BigInteger, ForeignKey("article.pmid"), nullable=nullable, index=True)


# --- tables ----------------------------------------------------------------------------------------


class User(TableModel, table=True):
    """Someone who reads or works on reviews; every write names its acting user."""

    __tablename__ = "app_user"  # "user" is reserved in PostgreSQL

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True)
    role: Role = Field(sa_column=_enum_column(Role))
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow)


class SourceDocument(TableModel, table=True):
    """An article under review (a blog post, a press release) whose claims get checked."""

    __tablename__ = "source_document"

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=100, unique=True)
    title: str = Field(sa_column=Column(Text, nullable=False))
    author: str | None = None
    outlet: str | None = None
    url: str | None = Field(default=None, sa_column=Column(Text))
    status: DocumentStatus = Field(sa_column=_enum_column(DocumentStatus))
    # Blind mode: reviewers see others' verdicts on a pair only after recording their own.
    blind_mode: bool = True
    text: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Claim(TableModel, table=True):
    """A checkable statement of a source document, located by its exact sentence."""

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=100, unique=True)
    document_id: int = Field(foreign_key="source_document.id", index=True)
    statement: str = Field(sa_column=Column(Text, nullable=False))
    sentence: str = Field(sa_column=Column(Text, nullable=False))
    # document.text[span_start:span_end] == sentence, checked on every write.
    span_start: int
    span_end: int
    population: str | None = Field(default=None, sa_column=Column(Text))
    intervention: str | None = Field(default=None, sa_column=Column(Text))
    comparator: str | None = Field(default=None, sa_column=Column(Text))
    outcome: str | None = Field(default=None, sa_column=Column(Text))
    time_frame: str | None = None  # "hours to days", "weeks to months"
    # The time frame as the verdict rule reads it: an outcome measured outside [min, max] days is
    # indirect evidence for the claim (None: no bound on that side).
    follow_up_min_days: float | None = None
    follow_up_max_days: float | None = None
    # The populations and interventions (db.vocab codes) the claim is about; empty: any.
    populations: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False, default=list))
    interventions: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False, default=list)
    )
    status: ClaimStatus = Field(sa_column=_enum_column(ClaimStatus, index=True))
    merged_into_id: int | None = Field(default=None, foreign_key="claim.id")
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class ClaimProposal(TableModel, table=True):
    """A claim-like sentence the splitter found, waiting for an editor to accept or reject it."""

    __tablename__ = "claim_proposal"
    __table_args__ = (UniqueConstraint("document_id", "span_start"),)

    id: int | None = Field(default=None, primary_key=True)
    document_id: int = Field(foreign_key="source_document.id", index=True)
    sentence: str = Field(sa_column=Column(Text, nullable=False))
    span_start: int
    span_end: int
    cues: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    status: ProposalStatus = Field(sa_column=_enum_column(ProposalStatus))
    claim_id: int | None = Field(default=None, foreign_key="claim.id")
    decided_by_id: int | None = Field(default=None, foreign_key="app_user.id")
    decided_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)


# The evidence fields an assessment may state (db.review.verdicts.FINDING_FIELDS), in its order: the
# partial index below and db.review.pair_evidence's read must say the same, term for term, for the
# engines to use the index (tests/test_pair_evidence_index.py checks both).
STATED_FINDINGS = (
    "participants",
    "follow_up_days",
    "population",
    "intervention",
    "directness",
    "indirect_reason",
    "risk_of_bias",
)
STATED_FINDINGS_WHERE = " OR ".join(f"{name} IS NOT NULL" for name in STATED_FINDINGS)


class Assessment(TableModel, table=True):
    """One reviewer's judgment of one (claim, study) pair; changed only with optimistic versioning."""

    __table_args__ = (
        UniqueConstraint("claim_id", "pmid", "reviewer_id"),
        # The few assessments that state evidence fields, by pair: what db.review.pair_evidence
        # reads for the verdict summary. Without it, that read scans every vote of the claims
        # (11 s for 1,000,000 on SQLite). Partial, so a review without fields keeps it empty.
        Index(
            "ix_assessment_stated_findings",
            "claim_id",
            "pmid",
            sqlite_where=text(STATED_FINDINGS_WHERE),
            postgresql_where=text(STATED_FINDINGS_WHERE),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    claim_id: int = Field(foreign_key="claim.id", index=True)
    pmid: int = Field(sa_column=_pmid_column())
    reviewer_id: int = Field(foreign_key="app_user.id", index=True)
    verdict: StudyVerdict = Field(sa_column=_enum_column(StudyVerdict))
    quote: str = Field(default="", sa_column=Column(Text, nullable=False))
    note: str = Field(default="", sa_column=Column(Text, nullable=False))
    # The design as this reviewer confirmed it, and what PubMed's publication types suggested.
    design: StudyDesign = Field(sa_column=_enum_column(StudyDesign))
    suggested_design: StudyDesign = Field(sa_column=_enum_column(StudyDesign))
    # The study's evidence for this claim (GRADE's raw material): all optional, prefilled as
    # suggestions by db.review.evidence_prefill, always the reviewer's to change.
    participants: int | None = None  # analysed for this outcome; 0: a review that pools none
    follow_up: str | None = Field(default=None, sa_column=Column(Text))  # as stated: "24 hours"
    follow_up_days: float | None = None  # the same in days: 1.0
    effect: str | None = Field(default=None, sa_column=Column(Text))  # as stated, short
    population: Population | None = Field(default=None, sa_column=_enum_column(Population, nullable=True))
    intervention: Intervention | None = Field(
        default=None, sa_column=_enum_column(Intervention, nullable=True)
    )
    directness: Directness | None = Field(default=None, sa_column=_enum_column(Directness, nullable=True))
    indirect_reason: str | None = Field(default=None, sa_column=Column(Text))
    risk_of_bias: RiskOfBias | None = Field(default=None, sa_column=_enum_column(RiskOfBias, nullable=True))
    version: int = Field(default=1, sa_column=Column(Integer, nullable=False, default=1))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class ConflictResolution(TableModel, table=True):
    """An editor's final verdict on a pair whose reviewers disagree; the votes themselves stay."""

    __tablename__ = "conflict_resolution"

    id: int | None = Field(default=None, primary_key=True)
    claim_id: int = Field(foreign_key="claim.id", index=True)
    pmid: int = Field(sa_column=_pmid_column())
    verdict: StudyVerdict = Field(sa_column=_enum_column(StudyVerdict))
    reason: str = Field(sa_column=Column(Text, nullable=False))
    # Which votes (assessment id and version) the editor saw; a later vote change reopens the pair.
    votes_signature: str = Field(sa_column=Column(Text, nullable=False))
    resolved_by_id: int = Field(foreign_key="app_user.id")
    resolved_at: datetime = Field(default_factory=utcnow)


class PairRecord(TableModel, table=True):
    """A row of table pair_state (the pair index); its `state` is a db.vocab.PairState.

    Where one judged (claim, study) pair stands, kept as data: derived from its assessments and
    resolutions by db.review.pair_index, in the same transaction as every write that changes them, so the
    verdict summary reads these rows instead of grouping every assessment on each call. Derived:
    left out of dumps and rebuilt on restore (db.ops.backup.DERIVED_TABLES)."""

    __tablename__ = "pair_state"
    __table_args__ = (
        # What keeps each claim open (db.read.standing.pair_tallies): its open conflicts and its
        # pairs with one vote, each counted from an index range instead of reading every row.
        Index("ix_pair_state_claim_state", "claim_id", "state"),
        Index("ix_pair_state_claim_votes", "claim_id", "votes"),
        # Covers the summary's reads: a claim's evidence pairs, and counts of its screened-out ones.
        Index(
            "ix_pair_state_claim_scope",
            "claim_id",
            "screened_out",
            "pmid",
            "state",
            "verdict",
            "resolved_once",
        ),
    )

    claim_id: int = Field(foreign_key="claim.id", primary_key=True)
    pmid: int = Field(sa_column=Column(BigInteger, ForeignKey("article.pmid"), primary_key=True, index=True))
    state: PairState = Field(sa_column=_enum_column(PairState))
    verdict: StudyVerdict | None = Field(default=None, sa_column=_enum_column(StudyVerdict, nullable=True))
    votes: int = Field(sa_column=Column(Integer, nullable=False))
    # An editor resolved it once (the resolution may no longer apply: the votes changed since).
    resolved_once: bool = Field(sa_column=Column(Boolean, nullable=False))
    # Every vote "not relevant" and never resolved: counted, not listed, by the summary.
    screened_out: bool = Field(sa_column=Column(Boolean, nullable=False))


class SummaryCopyRecord(TableModel, table=True):
    """A row of table summary_copy: one claim's evidence as the verdict summary keeps it, so that a new
    process starts from it instead of reading every pair (db.read.summary_copy).

    Valid at audit event `audit_id` (its time `audit_at`) for the study facts of `facts` (see
    db.corpus.study_facts.facts_signature), in layout `layout`; a reader brings it up to date with the
    pairs of the events since. `pmids` (int64) and `codes` (uint16, indexes into `legend`) are
    little-endian arrays. Derived: no foreign key, left out of dumps, emptied whenever pair_state
    is rebuilt."""

    __tablename__ = "summary_copy"
    __table_args__ = {"info": {"derived": True}}

    claim_id: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    layout: int = Field(sa_column=Column(Integer, nullable=False))
    audit_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    audit_at: str = Field(sa_column=Column(String(64), nullable=False))
    facts: str = Field(sa_column=Column(Text, nullable=False))
    screened_out: int = Field(sa_column=Column(Integer, nullable=False))
    legend: list[Any] = Field(sa_column=Column(JSON, nullable=False))
    pmids: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    codes: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    # What is worked out from the pairs and kept with them: the sealed evidence's fingerprint and
    # the open conflicts and single-vote pairs (db.read.standing.PairTally), when known.
    fingerprint: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    tally: list[int] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class DesignCorrection(TableModel, table=True):
    """A reviewer's correction of a study's design; the latest one is the study's design."""

    __tablename__ = "design_correction"

    id: int | None = Field(default=None, primary_key=True)
    pmid: int = Field(sa_column=_pmid_column())
    design: StudyDesign = Field(sa_column=_enum_column(StudyDesign))
    previous: StudyDesign = Field(sa_column=_enum_column(StudyDesign))
    corrected_by_id: int = Field(foreign_key="app_user.id")
    corrected_at: datetime = Field(default_factory=utcnow)
    reason: str = Field(default="", sa_column=Column(Text, nullable=False))


class SignOff(TableModel, table=True):
    """An editor's decision on a claim, with the evidence it rested on at that moment."""

    __tablename__ = "claim_signoff"

    id: int | None = Field(default=None, primary_key=True)
    claim_id: int = Field(foreign_key="claim.id", index=True)
    decision: SignOffDecision = Field(sa_column=_enum_column(SignOffDecision))
    rationale: str = Field(sa_column=Column(Text, nullable=False))
    signed_by_id: int = Field(foreign_key="app_user.id")
    signed_at: datetime = Field(default_factory=utcnow)
    verdict: ClaimVerdict = Field(sa_column=_enum_column(ClaimVerdict))
    strength: Strength = Field(sa_column=_enum_column(Strength))  # the derived certainty then
    # The editor's published rating (db.vocab.Rating); None only on sign-offs made before ratings.
    rating: Rating | None = Field(default=None, sa_column=_enum_column(Rating, nullable=True))
    # db.review.verdicts.evidence_fingerprint of the evidence then, and the evidence itself for the diff.
    evidence_fingerprint: str = Field(max_length=64)
    evidence: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    # When flag_changed_evidence first noticed the evidence moved on (the audit event is written once).
    change_noted_at: datetime | None = None


class AuditEvent(TableModel, table=True):
    """One change: who, when, what, before, after, why. Rows are never updated or deleted."""

    __tablename__ = "audit_event"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    actor_id: int | None = Field(default=None, foreign_key="app_user.id")
    actor_name: str = Field(max_length=100)  # kept as text: the log must read well on its own
    action: AuditAction = Field(sa_column=_enum_column(AuditAction))
    entity: str = Field(max_length=40)  # table name of what changed
    entity_id: str = Field(max_length=100)
    claim_id: int | None = Field(default=None, index=True)
    # No foreign key on purpose: the log refers to articles without keeping them from deletion.
    pmid: int | None = Field(default=None, sa_column=Column(BigInteger, index=True))
    before: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    after: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    reason: str | None = Field(default=None, sa_column=Column(Text))
    # Free-form origin, e.g. "import assessments.csv line 7" or "harvest".
    source: str | None = Field(default=None, sa_column=Column(String(200)))


class AuditChainLink(TableModel, table=True):
    """The seal of one audit event: SHA-256 of the previous link's hash and the event's digest.

    Appended at commit, in commit order (db.review.audit_chain); `audit verify` walks them. No foreign
    key on purpose: a deleted event must leave its link behind to be found.
    """

    __tablename__ = "audit_chain"

    seq: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(unique=True)
    hash: str = Field(max_length=64)


def _refuse_audit_change(_mapper: Any, _connection: Any, target: AuditEvent) -> None:
    raise AuditImmutableError(
        f"Audit event {target.id} cannot be changed or deleted: the audit trail is append-only. "
        "Record a new event that corrects it instead."
    )


event.listen(AuditEvent, "before_update", _refuse_audit_change)
event.listen(AuditEvent, "before_delete", _refuse_audit_change)
