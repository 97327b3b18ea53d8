"""Exports: claim reports, assessments, the audit trail, ClaimReview, citations, articles."""
