"""Every enumeration of the domain in one place: roles, verdicts, designs, statuses and audit actions.

Values are what the database stores and exports carry; never rename one without a migration.
Each member's `label` is how people read it ("not relevant", "RCT"): pages, exports and read models
put it in sentences; capitalise it at the start of one.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum, StrEnum


class Labelled(StrEnum):
    """A stored value with a label for people: the value in words, unless `_labels` says otherwise."""

    @classmethod
    def _labels(cls) -> Mapping[str, str]:
        return {}

    @property
    def label(self) -> str:
        return self._labels().get(self.value) or self.value.replace("_", " ")


# --- the literature ---------------------------------------------------------------------------------


class RetractionStatus(Labelled):
    """How PubMed marks a record's standing; `None` on the article means none of these."""

    RETRACTED = "retracted"  # publication type "Retracted Publication" or a RetractionIn link
    EXPRESSION_OF_CONCERN = "expression_of_concern"  # "Expression of Concern" / ExpressionOfConcernIn
    RETRACTION_NOTICE = "retraction_notice"  # the record *is* a notice: "Retraction of Publication"
    NOTICE = "notice"  # the record *is* another notice: expression of concern, erratum, comment
    CORRECTED = "corrected"  # an ErratumIn link: still citable, but read the erratum


class RunStatus(Labelled):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


class StudyDesign(Labelled):
    META_ANALYSIS = "meta_analysis"
    SYSTEMATIC_REVIEW = "systematic_review"
    RCT = "rct"
    CONTROLLED_TRIAL = "controlled_trial"  # clinical trial without (stated) randomisation
    OBSERVATIONAL = "observational"  # cohort, case-control, cross-sectional
    CASE_REPORT = "case_report"  # case report or case series
    REVIEW = "review"  # narrative review
    PRECLINICAL = "preclinical"  # animal or in vitro
    OTHER = "other"  # letters, editorials, or nothing PubMed tells us

    @classmethod
    def _labels(cls) -> Mapping[str, str]:
        # The singular nouns the verdict reasoning uses (db.corpus.design.DESIGN_NOUNS has the plurals).
        return {
            "meta_analysis": "meta-analysis",
            "rct": "RCT",
            "controlled_trial": "non-randomised trial",
            "observational": "observational study",
            "case_report": "case report or series",
            "review": "narrative review",
            "preclinical": "preclinical study",
            "other": "other publication",
        }


# The member of a stored value, for hot paths: a dict lookup is a tenth of the cost of StudyDesign(value).
DESIGN_BY_VALUE: dict[str, StudyDesign] = {design.value: design for design in StudyDesign}


class EvidenceTier(IntEnum):
    """How much a design weighs in a claim verdict, in the spirit of GRADE."""

    NOT_COUNTED = 0  # never outvotes anything: case reports, narrative reviews, preclinical, other
    SUPPORTING = 1  # counts less: non-randomised trials and observational studies
    DECISIVE = 2  # carries the decision: systematic reviews, meta-analyses, RCTs

    @property
    def label(self) -> str:
        return self.name.lower().replace("_", " ")


# --- the review workflow ----------------------------------------------------------------------------


class Role(Labelled):
    ADMIN = "admin"
    EDITOR = "editor"
    REVIEWER = "reviewer"
    VIEWER = "viewer"


class DocumentStatus(Labelled):
    DRAFT = "draft"
    IN_REVIEW = "in_review"
    READY_TO_PUBLISH = "ready_to_publish"


class ClaimStatus(Labelled):
    ACTIVE = "active"
    RETIRED = "retired"
    MERGED = "merged"  # retired into another claim (merged_into_id)


class ProposalStatus(Labelled):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class StudyVerdict(Labelled):
    """One reviewer's judgment of one study against one claim."""

    SUPPORTED = "supported"
    MIXED = "mixed"
    UNSUPPORTED = "unsupported"
    NOT_RELEVANT = "not_relevant"  # screened out: never counted in a claim verdict


VERDICT_BY_VALUE: dict[str, StudyVerdict] = {verdict.value: verdict for verdict in StudyVerdict}


class PairState(Labelled):
    """Where the votes on one (claim, study) pair stand."""

    AGREED = "agreed"  # one vote, or all votes the same
    CONFLICT = "conflict"  # votes differ and no editor has resolved them (or they changed since)
    RESOLVED = "resolved"  # an editor's final verdict applies

    @classmethod
    def _labels(cls) -> Mapping[str, str]:
        return {"conflict": "reviewers disagree"}


class ClaimVerdict(Labelled):
    """A claim's verdict, derived from its studies by db.review.verdicts.derive_claim_verdict."""

    SUPPORTED = "supported"
    MIXED = "mixed"
    UNSUPPORTED = "unsupported"
    INSUFFICIENT_EVIDENCE = "insufficient_evidence"


class Strength(Labelled):
    """Certainty of a claim verdict, in GRADE's four levels."""

    HIGH = "high"
    MODERATE = "moderate"
    LOW = "low"
    VERY_LOW = "very_low"


class Population(Labelled):
    """Whom a study's outcome was measured in (an assessment's `population`)."""

    MDD = "mdd"  # major depressive disorder, not stated to be treatment-resistant
    TRD = "trd"  # treatment-resistant depression
    BIPOLAR = "bipolar"  # bipolar depression
    PTSD = "ptsd"
    SUICIDAL = "suicidal"  # people with suicidal ideation or behaviour
    MIXED = "mixed"  # several of these together
    OTHER = "other"  # healthy volunteers, surgical or pain patients, animals, ...

    @classmethod
    def _labels(cls) -> Mapping[str, str]:
        return {
            "mdd": "major depression",
            "trd": "treatment-resistant depression",
            "bipolar": "bipolar depression",
            "ptsd": "PTSD",
            "suicidal": "suicidal ideation or behaviour",
        }


class Intervention(Labelled):
    """Which ketamine a study gave (an assessment's `intervention`)."""

    IV_RACEMIC = "iv_racemic"  # intravenous racemic ketamine
    INTRANASAL_ESKETAMINE = "intranasal_esketamine"
    ORAL = "oral"
    IM = "im"  # intramuscular
    OTHER = "other"  # another route or drug
    MIXED = "mixed"  # several of these (typical of reviews)
    UNCLEAR = "unclear"  # the abstract does not say

    @classmethod
    def _labels(cls) -> Mapping[str, str]:
        return {
            "iv_racemic": "intravenous racemic ketamine",
            "intranasal_esketamine": "intranasal esketamine",
            "im": "intramuscular ketamine",
            "oral": "oral ketamine",
        }


class Directness(Labelled):
    """Whether a study answers the claim's own question (GRADE's directness)."""

    DIRECT = "direct"
    INDIRECT = "indirect"  # another population, intervention, outcome or time frame: say which


class RiskOfBias(Labelled):
    """A study's risk of bias for this outcome, in the three levels of Cochrane's RoB 2."""

    LOW = "low"
    SOME_CONCERNS = "some_concerns"
    HIGH = "high"


class DowngradeDomain(Labelled):
    """GRADE's reasons to rate the certainty of a body of evidence down."""

    RISK_OF_BIAS = "risk_of_bias"
    INCONSISTENCY = "inconsistency"
    INDIRECTNESS = "indirectness"
    IMPRECISION = "imprecision"
    PUBLICATION_BIAS = "publication_bias"


class Rating(Labelled):
    """The editor's published rating of a claim: what ClaimReview's reviewRating says (6 best, 1 worst)."""

    ACCURATE = "accurate"  # the studies support it as worded
    MOSTLY_ACCURATE = "mostly_accurate"  # supported, with a caveat the wording leaves out
    MIXED = "mixed"  # the studies disagree, or support part of it
    UNPROVEN = "unproven"  # not tested directly, or too little to say either way
    MISLEADING = "misleading"  # a grain of evidence, stretched beyond it
    INACCURATE = "inaccurate"  # tested, and contradicted

    @property
    def score(self) -> int:
        """ClaimReview's ratingValue: 6 (accurate) down to 1 (inaccurate)."""
        return len(Rating) - list(Rating).index(self)


class SignOffDecision(Labelled):
    OK_TO_PUBLISH = "ok_to_publish"
    REVISE_WORDING = "revise_wording"
    REMOVE_CLAIM = "remove_claim"


class AuditAction(Labelled):
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


class AuthMode(Labelled):
    LOCAL = "local"
    PASSWORD = "password"
    OIDC = "oidc"
