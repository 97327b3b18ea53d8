"""Parsed records as the store takes them: encoded article rows (with their design prefill) and deletions.

Needs no database modules: the import's worker processes run it, started before those load.
"""

from __future__ import annotations

from collections.abc import Sequence

from db.corpus.encoding import EncodedArticle, encode_article
from db.corpus.prefill import prefill_many
from ingest.records import DeletedCitation, PubmedRecord

# A parsed item ready to store: an article's encoded column values, or a PMID that PubMed deleted.
StoredItem = EncodedArticle | DeletedCitation


def to_stored_items(records: Sequence[PubmedRecord | DeletedCitation]) -> list[StoredItem]:
    rows = [r.article_fields() for r in records if not isinstance(r, DeletedCitation)]
    # The design prefill of the whole batch in one pass of the classifier (in the import's workers).
    prefilled = iter([row | prefill for row, prefill in zip(rows, prefill_many(rows), strict=True)])
    return [r if isinstance(r, DeletedCitation) else encode_article(next(prefilled)) for r in records]
