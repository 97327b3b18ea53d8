"""Every enumeration of the domain in one place: roles, verdicts, designs, statuses and audit actions.

Values are what the database stores and exports carry; never rename one without a migration.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum

# --- the literature ---------------------------------------------------------------------------------


class RetractionStatus(StrEnum):
    """How PubMed marks a record's standing; `None` on the article means none of these."""

    RETRACTED = "retracted"  # publication type "Retracted Publication" or a RetractionIn link
    EXPRESSION_OF_CONCERN = "expression_of_concern"  # "Expression of Concern" / ExpressionOfConcernIn
    RETRACTION_NOTICE = "retraction_notice"  # the record *is* a notice: "Retraction of Publication"
    NOTICE = "notice"  # the record *is* another notice: expression of concern, erratum, comment
    CORRECTED = "corrected"  # an ErratumIn link: still citable, but read the erratum


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


class StudyDesign(StrEnum):
    META_ANALYSIS = "meta_analysis"
    SYSTEMATIC_REVIEW = "systematic_review"
    RCT = "rct"
    CONTROLLED_TRIAL = "controlled_trial"  # clinical trial without (stated) randomisation
    OBSERVATIONAL = "observational"  # cohort, case-control, cross-sectional
    CASE_REPORT = "case_report"  # case report or case series
    REVIEW = "review"  # narrative review
    PRECLINICAL = "preclinical"  # animal or in vitro
    OTHER = "other"  # letters, editorials, or nothing PubMed tells us


class EvidenceTier(IntEnum):
    """How much a design weighs in a claim verdict, in the spirit of GRADE."""

    NOT_COUNTED = 0  # never outvotes anything: case reports, narrative reviews, preclinical, other
    SUPPORTING = 1  # counts less: non-randomised trials and observational studies
    DECISIVE = 2  # carries the decision: systematic reviews, meta-analyses, RCTs


# --- the review workflow ----------------------------------------------------------------------------


class Role(StrEnum):
    ADMIN = "admin"
    EDITOR = "editor"
    REVIEWER = "reviewer"
    VIEWER = "viewer"


class DocumentStatus(StrEnum):
    DRAFT = "draft"
    IN_REVIEW = "in_review"
    READY_TO_PUBLISH = "ready_to_publish"


class ClaimStatus(StrEnum):
    ACTIVE = "active"
    RETIRED = "retired"
    MERGED = "merged"  # retired into another claim (merged_into_id)


class ProposalStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class StudyVerdict(StrEnum):
    """One reviewer's judgment of one study against one claim."""

    SUPPORTED = "supported"
    MIXED = "mixed"
    UNSUPPORTED = "unsupported"
    NOT_RELEVANT = "not_relevant"  # screened out: never counted in a claim verdict


class PairState(StrEnum):
    """Where the votes on one (claim, study) pair stand."""

    AGREED = "agreed"  # one vote, or all votes the same
    CONFLICT = "conflict"  # votes differ and no editor has resolved them (or they changed since)
    RESOLVED = "resolved"  # an editor's final verdict applies


class ClaimVerdict(StrEnum):
    """A claim's verdict, derived from its studies by db.review.verdicts.derive_claim_verdict."""

    SUPPORTED = "supported"
    MIXED = "mixed"
    UNSUPPORTED = "unsupported"
    INSUFFICIENT_EVIDENCE = "insufficient_evidence"


class Strength(StrEnum):
    """Certainty of a claim verdict, in GRADE's four levels."""

    HIGH = "high"
    MODERATE = "moderate"
    LOW = "low"
    VERY_LOW = "very_low"


class SignOffDecision(StrEnum):
    OK_TO_PUBLISH = "ok_to_publish"
    REVISE_WORDING = "revise_wording"
    REMOVE_CLAIM = "remove_claim"


class AuditAction(StrEnum):
    USER_ADDED = "user_added"
    ROLE_CHANGED = "role_changed"
    USER_DEACTIVATED = "user_deactivated"
    PASSWORD_SET = "password_set"  # who set whose password, never the password or its hash
    DOCUMENT_ADDED = "document_added"
    DOCUMENT_CHANGED = "document_changed"
    CLAIM_ADDED = "claim_added"
    CLAIM_EDITED = "claim_edited"
    CLAIM_RETIRED = "claim_retired"
    CLAIM_MERGED = "claim_merged"
    PROPOSAL_ACCEPTED = "proposal_accepted"
    PROPOSAL_REJECTED = "proposal_rejected"
    ASSESSMENT_RECORDED = "assessment_recorded"
    ASSESSMENT_CHANGED = "assessment_changed"
    ASSESSMENT_MOVED = "assessment_moved"
    DESIGN_CORRECTED = "design_corrected"
    CONFLICT_RESOLVED = "conflict_resolved"
    CLAIM_SIGNED_OFF = "claim_signed_off"
    EVIDENCE_CHANGED = "evidence_changed"


# --- signing in -------------------------------------------------------------------------------------


class AuthMode(StrEnum):
    LOCAL = "local"
    PASSWORD = "password"
    OIDC = "oidc"
