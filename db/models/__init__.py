"""Every table of the database. Importing this package registers them all on SQLModel.metadata."""

from __future__ import annotations

from db.models.auth import UserCredential
from db.models.corpus import Article, ArticleRevision, HarvestRun
from db.models.ranking import ASSESSMENT_REVIEW_INDEX, ArticleEmbedding, ArticleTerms, ClaimSearchTerms
from db.models.review import (
    Assessment,
    AuditChainLink,
    AuditEvent,
    Claim,
    ClaimProposal,
    ConflictResolution,
    DesignCorrection,
    PairRecord,
    SignOff,
    SourceDocument,
    SummaryCopyRecord,
    User,
)

__all__ = [
    "ASSESSMENT_REVIEW_INDEX",
    "Article",
    "ArticleEmbedding",
    "ArticleRevision",
    "ArticleTerms",
    "Assessment",
    "AuditChainLink",
    "AuditEvent",
    "Claim",
    "ClaimProposal",
    "ClaimSearchTerms",
    "ConflictResolution",
    "DesignCorrection",
    "HarvestRun",
    "PairRecord",
    "SignOff",
    "SourceDocument",
    "SummaryCopyRecord",
    "User",
    "UserCredential",
]
