"""Design prefill again: the classifier's features changed (db.corpus.classifier.CLASSIFIER_VERSION 2).

Revision ID: 0008_design_prefill_v2
Revises: 0007_grade_evidence
Create Date: 2026-12-05 08:10:00.000000

No schema change. Redoes the prefill of every article an older classifier made, with
db.corpus.design.reclassify (the package's classifier; well under a millisecond per article).
Reviewers' designs, corrections and confirmations alike, live in design_correction and are not
touched: they still win over the prefill. `ketamine-evidence designs reclassify` does the same by hand.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op
from sqlmodel import Session

revision: str = "0008_design_prefill_v2"
down_revision: str | None = "0007_grade_evidence"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    from db.corpus.design import reclassify  # the package's classifier, as of this release

    with Session(bind=op.get_bind()) as session:
        reclassify(session)
        session.flush()


def downgrade() -> None:
    pass  # the older prefill is not kept; the newer one serves the older schema as well
