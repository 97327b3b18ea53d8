"""Writing parsed records to the database, one transaction per batch (shared by harvest and import)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session

from db.corpus.articles import BatchOutcome, EncodedArticle, apply_deletions, upsert_encoded_articles
from db.corpus.runs import record_batch
from db.models import HarvestRun
from ingest.items import StoredItem
from ingest.records import DeletedCitation


def store_batch(
    session: Session,
    run: HarvestRun,
    items: Sequence[StoredItem],
    requests_made: int | None = None,
    *,
    keep_newer: bool = True,
) -> BatchOutcome:
    """Upsert one batch and add its counts to the run, then commit both together.

    Deletions are applied in document order relative to the records around them, so an
    update file that deletes and re-adds a PMID ends as PubMed has it.
    """
    outcome = BatchOutcome()
    pending: list[EncodedArticle] = []
    for item in items:
        if isinstance(item, DeletedCitation):
            outcome.add(upsert_encoded_articles(session, pending, run.id, keep_newer=keep_newer))
            pending = []
            outcome.add(apply_deletions(session, [item.pmid], run.id))
        else:
            pending.append(item)
    outcome.add(upsert_encoded_articles(session, pending, run.id, keep_newer=keep_newer))
    # Same transaction: a claim signed off on evidence this batch changed is flagged with it.
    if outcome.changed_pmids:
        # Imported here: the review rules' modules are a tenth of an import command's start-up, and
        # a batch of only new records (a first import, most harvests) needs none of them.
        from db.review.signoff import flag_changed_evidence

        flag_changed_evidence(session, outcome.changed_pmids)
    record_batch(run, outcome, requests_made)
    session.add(run)
    session.commit()
    return outcome
