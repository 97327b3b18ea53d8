"""The review workflow: claims, assessments, the pair rule, verdicts, sign-off, roles, audit, agreement."""
