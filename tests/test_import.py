"""Importing files into the database on SQLite and PostgreSQL: upserts, revisions, deletions, failures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import JSON, Date, func, select, text

from db.corpus import articles, encoding
from db.corpus.articles import article_revisions, decode_article, encode_article
from db.corpus.prefill import prefill_columns
from db.engine import open_session
from db.models import Article, ArticleRevision, HarvestRun
from ingest import importer
from ingest.importer import import_file
from ingest.pubmed_xml import PubmedFormatError, iter_pubmed_xml
from ingest.records import PubmedRecord
from tests.conftest import TEST_DATA, shared_file

SAMPLE = TEST_DATA / "pubmed_ketamine_sample.xml"
UPDATE = TEST_DATA / "pubmed_ketamine_update.xml"
NBIB = TEST_DATA / "ketamine_sample.nbib"


def article_snapshot(url: str) -> list[tuple[object, ...]]:
    with open_session(url) as session:
        rows = session.execute(
            select(
                Article.pmid, Article.title, Article.abstract, Article.content_hash, Article.retraction_status
            ).order_by(Article.pmid)
        ).all()
    return [tuple(row) for row in rows]


def test_import_stores_every_record_whole(db_url: str) -> None:
    run = import_file(db_url, SAMPLE)
    assert (run.status, run.records_new, run.count) == ("succeeded", 6, 6)
    with open_session(db_url) as session:
        article = session.get(Article, 90000001)
        assert article is not None
        assert article.abstract.startswith("BACKGROUND: About one third")
        assert article.abstract_sections[1]["label"] == "METHODS"
        assert article.authors[0]["orcid"] == "0000-0002-1825-0097"
        assert {m["descriptor"]: m["major"] for m in article.mesh_headings}["Ketamine"] is True
        assert article.publication_types == ["Journal Article", "Randomized Controlled Trial"]
        retracted = session.get(Article, 90000004)
        assert retracted is not None and retracted.retraction_status == "retracted"
        assert retracted.notices == [
            {"ref_type": "RetractionIn", "pmid": 90000005, "source": "Ex J Psychopharmacol. 2025;4:1"}
        ]


def test_reimport_is_idempotent(db_url: str) -> None:
    import_file(db_url, SAMPLE)
    before = article_snapshot(db_url)
    run = import_file(db_url, SAMPLE)
    assert (run.records_new, run.records_updated, run.records_unchanged) == (0, 0, 6)
    assert article_snapshot(db_url) == before


def test_revised_record_updates_in_place_and_keeps_what_changed(db_url: str) -> None:
    import_file(db_url, SAMPLE)
    run = import_file(db_url, UPDATE)
    assert (run.records_new, run.records_updated, run.records_deleted) == (1, 1, 2)
    with open_session(db_url) as session:
        article = session.get(Article, 90000001)
        assert article is not None
        assert article.abstract.endswith("the difference at day 28 was modest.")
        assert article.date_revised.isoformat() == "2025-01-10"
        (revision,) = [r for r in article_revisions(session, 90000001) if r.change == "revised"]
        assert {"abstract", "abstract_sections", "date_revised", "publication_types"} <= set(
            revision.changed_fields
        )
        assert "title" not in revision.changed_fields
        assert revision.before["date_revised"] == "2024-05-14"
        assert revision.after["date_revised"] == "2025-01-10"
        assert revision.before["publication_types"] == ["Journal Article", "Randomized Controlled Trial"]
        assert revision.run_id == run.id


def test_delete_citation_removes_unused_records_and_logs_it(db_url: str) -> None:
    import_file(db_url, SAMPLE)
    import_file(db_url, UPDATE)
    with open_session(db_url) as session:
        assert session.get(Article, 90000003) is None
        assert session.get(Article, 90000006) is None
        changes = session.scalars(
            select(ArticleRevision.change).where(ArticleRevision.pmid == 90000003)
        ).all()
        assert changes == ["deleted"]


def test_medline_text_import_uses_the_same_path(db_url: str) -> None:
    run = import_file(db_url, NBIB)
    assert (run.status, run.records_new) == ("succeeded", 2)
    with open_session(db_url) as session:
        article = session.get(Article, 90000103)
        assert article is not None and article.retraction_status == "retracted"


def test_bad_record_leaves_earlier_batches_and_logs_the_failure(db_url: str, tmp_path: Path) -> None:
    # Batches of 2: the first batch commits, the batch holding the broken record is not written.
    broken = tmp_path / "broken.xml"
    broken.write_text(
        SAMPLE.read_text().replace('<PMID Version="1">90000004</PMID>', '<PMID Version="1">x</PMID>', 1)
    )
    with pytest.raises(PubmedFormatError, match="PMID 'x' is not a number"):
        import_file(db_url, broken, batch_size=2)
    with open_session(db_url) as session:
        assert session.scalars(select(Article.pmid).order_by(Article.pmid)).all() == [90000001, 90000002]
        run = session.scalars(select(HarvestRun).order_by(HarvestRun.id.desc())).first()
        assert run is not None and run.status == "failed"
        assert "PMID 'x' is not a number" in (run.error or "")
        assert run.records_new == 2


def test_truncated_file_writes_nothing_from_the_failing_batch(db_url: str, tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.xml"
    truncated.write_bytes(SAMPLE.read_bytes()[:-300])
    with pytest.raises(PubmedFormatError, match="truncated"):
        import_file(db_url, truncated)
    with open_session(db_url) as session:
        assert session.scalar(select(func.count()).select_from(Article)) == 0


def test_real_legacy_update_file_imports(sqlite_url: str) -> None:
    path = shared_file("pubmed", "bench", "medline16n0902_sample.xml.gz")
    run = import_file(sqlite_url, path)
    assert (run.records_new, run.count) == (604, 605)


def _many_records(path: Path, copies: int) -> Path:
    """The sample repeated with fresh PMIDs per copy: 6 records a copy."""
    text = SAMPLE.read_text()
    head, rest = text.split("<PubmedArticleSet>")
    body = rest.split("</PubmedArticleSet>")[0]
    parts = [body.replace(">900000", f">{910 + i:03d}00") for i in range(copies)]
    path.write_text(head + "<PubmedArticleSet>" + "".join(parts) + "</PubmedArticleSet>\n")
    return path


def test_worker_processes_give_the_same_database_as_one_process(tmp_path: Path) -> None:
    big = _many_records(tmp_path / "many.xml", 50)
    serial_url, parallel_url = (f"sqlite:///{tmp_path / name}" for name in ("serial.db", "parallel.db"))
    serial = import_file(serial_url, big, batch_size=40, workers=0)
    parallel = import_file(parallel_url, big, batch_size=40, workers=2)
    assert serial.records_new == parallel.records_new == 300
    assert article_snapshot(serial_url) == article_snapshot(parallel_url)


def test_worker_processes_keep_batches_before_damage(tmp_path: Path) -> None:
    big = _many_records(tmp_path / "many.xml", 50)
    truncated = tmp_path / "truncated.xml"
    truncated.write_bytes(big.read_bytes()[: big.stat().st_size // 2])
    url = f"sqlite:///{tmp_path / 'parallel.db'}"
    with pytest.raises(PubmedFormatError, match="truncated"):
        import_file(url, truncated, batch_size=40, workers=2)
    stored = [row[0] for row in article_snapshot(url)]
    assert len(stored) % 40 == 0 and 80 <= len(stored) < 150  # whole batches only, in file order
    with open_session(url) as session:
        run = session.scalars(select(HarvestRun)).one()
        assert run.status == "failed" and run.records_new == len(stored)


# A bad PMID, and malformed XML inside a record (the workers parse records in groups: the damaged
# group's records before the damage still count, and the message is the same).
_DAMAGE = {
    "pmid": ('<PMID Version="1">9300003</PMID>', '<PMID Version="1">x</PMID>', "PMID 'x' is not a number"),
    "malformed": ('<PMID Version="1">9300003</PMID>', '<PMID Version="1">9300003</PMD>', "mismatched tag"),
}


@pytest.mark.parametrize("damage", sorted(_DAMAGE))
@pytest.mark.parametrize("block_bytes", [4096, 1 << 20])
def test_worker_processes_stop_at_a_bad_record_as_one_process_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block_bytes: int, damage: str
) -> None:
    # Small blocks: the damage lies in a later block than the batches before it, with blocks after it
    # already parsed; none of those may be written.
    monkeypatch.setattr(importer, "BLOCK_BYTES", block_bytes)
    big = _many_records(tmp_path / "many.xml", 50)
    broken = tmp_path / "broken.xml"
    good, bad, reason = _DAMAGE[damage]
    broken.write_text(big.read_text().replace(good, bad, 1))
    stored, messages = {}, {}
    for workers in (0, 2):
        url = f"sqlite:///{tmp_path / f'workers{workers}.db'}"
        with pytest.raises(PubmedFormatError, match=reason) as raised:
            import_file(url, broken, batch_size=40, workers=workers)
        stored[workers], messages[workers] = article_snapshot(url), str(raised.value)
    assert messages[2] == messages[0]
    first_three_batches = sorted(record.pmid for record in list(iter_pubmed_xml(big))[:120])
    assert [row[0] for row in stored[0]] == first_three_batches  # the bad record is the 123rd
    assert stored[2] == stored[0]


def test_deleted_citation_used_by_a_reviewer_is_flagged_not_deleted(db_url: str) -> None:
    from tests.review_builders import add_claim, team, vote

    import_file(db_url, SAMPLE)
    with open_session(db_url) as session:
        people = team(session)
        claim = add_claim(session)
        vote(session, people["reviewer"], claim, 90000006, "unsupported")
        session.commit()
    run = import_file(db_url, UPDATE)
    assert (run.records_deleted, run.status) == (1, "succeeded")  # 90000003 only
    with open_session(db_url) as session:
        kept = session.get(Article, 90000006)
        assert kept is not None and kept.deleted_in_pubmed is True
        assert session.get(Article, 90000003) is None
        changes = session.scalars(
            select(ArticleRevision.change).where(ArticleRevision.pmid == 90000006)
        ).all()
        assert changes == ["flagged_deleted"]


def test_revision_that_retracts_a_study_flags_the_signed_off_claim(db_url: str, tmp_path: Path) -> None:
    from db.models import AuditEvent, Claim
    from db.review.signoff import sign_off, signoff_state
    from db.vocab import AuditAction
    from tests.review_builders import add_claim, team, vote

    import_file(db_url, SAMPLE)
    with open_session(db_url) as session:
        people = team(session)
        claim = add_claim(session)
        vote(session, people["reviewer"], claim, 90000001, "supported")
        sign_off(session, people["editor"], claim, "ok_to_publish", "One RCT supports it.", "accurate")
        session.commit()
        claim_id = claim.id
    retracted = tmp_path / "retracted.xml"
    retracted.write_text(
        UPDATE.read_text().replace(
            '<PublicationType UI="D017428">Clinical Trial, Phase III</PublicationType>',
            '<PublicationType UI="D016441">Retracted Publication</PublicationType>',
        )
    )
    import_file(db_url, retracted)
    with open_session(db_url) as session:
        claim = session.get(Claim, claim_id)
        assert claim is not None
        state = signoff_state(session, claim)
        assert state.evidence_changed
        events = session.scalars(select(AuditEvent.action).where(AuditEvent.claim_id == claim_id)).all()
        assert AuditAction.EVIDENCE_CHANGED in events


def test_rows_written_straight_to_the_driver_read_back_as_the_parser_made_them(db_url: str) -> None:
    # The import bypasses SQLAlchemy's type processing (db.corpus.articles._insert_encoded): every column,
    # dates and JSON included, must come back through the ORM exactly as article_fields made it.
    import_file(db_url, SAMPLE)
    expected = {record.pmid: record.article_fields() for record in iter_pubmed_xml(SAMPLE)}
    with open_session(db_url) as session:
        stored = {article.pmid: article for article in session.scalars(select(Article))}
        assert set(stored) == set(expected)
        for pmid, fields in expected.items():
            article = stored[pmid]
            assert {name: getattr(article, name) for name in fields} == fields
            assert article.deleted_in_pubmed is False and article.first_seen_at == article.updated_at
        assert any(fields["date_revised"] is not None for fields in expected.values())


def test_encoded_rows_round_trip_and_fill_defaults() -> None:
    record = next(r for r in iter_pubmed_xml(SAMPLE) if isinstance(r, PubmedRecord))
    fields = record.article_fields()
    # Encoding adds the design prefill (db.corpus.design) the parser knows nothing of.
    assert decode_article(encode_article(fields)) == fields | prefill_columns(fields)
    partial = decode_article(encode_article({"pmid": 1, "title": "T", "content_hash": "h"}))
    assert (partial["journal"], partial["authors"], partial["doi"]) == ("", [], None)
    with pytest.raises(ValueError, match="needs a value for 'title'"):
        encode_article({"pmid": 1, "content_hash": "h"})


def test_encoded_columns_are_the_article_tables_with_its_defaults() -> None:
    # db.corpus.encoding spells the columns out (the import's workers load no models): they must agree.
    columns = Article.__table__.columns
    assert tuple(c.name for c in columns if c.name not in encoding.BATCH_COLUMNS) == encoding.ENCODED_COLUMNS
    assert set(encoding.BATCH_COLUMNS) < {c.name for c in columns}
    assert {c.name for c in columns if isinstance(c.type, JSON)} == encoding.JSON_COLUMNS
    assert {c.name for c in columns if type(c.type) is Date} == encoding.DATE_COLUMNS
    for name in encoding.ENCODED_COLUMNS:
        field = Article.model_fields[name]
        if field.is_required():
            with pytest.raises(ValueError, match=f"needs a value for {name!r}"):
                encoding._default(name, dict(encoding._DEFAULTS)[name])
        else:
            default = dict(encoding._DEFAULTS)[name]
            expected = field.get_default(call_default_factory=True)
            assert (list(default) if name in encoding.JSON_COLUMNS else default) == expected, name


def test_the_import_forks_its_workers_before_the_database_modules_load() -> None:
    # ingest.importer starts the parse workers, then imports ingest.import_run: the workers must not
    # need SQLAlchemy, SQLModel or the models (most of the command's start-up) to be loaded first.
    code = (
        "import sys, ingest.importer, ingest.items; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'sqlalchemy', 'sqlmodel', 'alembic', 'pydantic'}), "
        "sorted(m for m in sys.modules if m.startswith('db.models')))"
    )
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert found.stdout.split() == ["[]", "[]"]


@pytest.mark.postgres
def test_copy_and_insert_store_the_same_rows_revisions_and_search_vector(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    copies = []
    real_copy = articles._copy_encoded
    monkeypatch.setattr(articles, "_copy_encoded", lambda *args: copies.append(1) or real_copy(*args))

    def stored(copy: bool) -> tuple[list[dict[str, object]], list[tuple[object, ...]]]:
        monkeypatch.setattr(articles, "COPY_ON_POSTGRES", copy)
        with open_session(postgres_url) as session:
            session.execute(text("DELETE FROM article_revision"))
            session.execute(text("DELETE FROM article"))
            session.commit()
        import_file(postgres_url, SAMPLE)
        import_file(postgres_url, UPDATE)  # revisions, deletions and one new record
        with open_session(postgres_url) as session:
            rows = [
                {k: v for k, v in row.items() if k not in {"first_seen_at", "updated_at"}}
                | {"search_vector": row["search_vector"]}
                for row in session.execute(
                    text("SELECT *, search_vector::text AS search_vector FROM article ORDER BY pmid")
                ).mappings()
            ]
            revisions = [
                tuple(row)
                for row in session.execute(
                    select(
                        ArticleRevision.pmid,
                        ArticleRevision.change,
                        ArticleRevision.changed_fields,
                        ArticleRevision.before,
                        ArticleRevision.after,
                        ArticleRevision.old_hash,
                        ArticleRevision.new_hash,
                    ).order_by(ArticleRevision.pmid, ArticleRevision.id)
                )
            ]
        return rows, revisions

    by_insert = stored(copy=False)
    assert copies == []
    by_copy = stored(copy=True)
    assert len(copies) == 2  # each file's new articles went by COPY
    assert by_copy == by_insert
    rows, revisions = by_copy
    assert len(rows) == 5 and all(row["search_vector"] for row in rows)
    assert {change for _, change, *_ in revisions} == {"revised", "deleted"}


@pytest.mark.parametrize(
    "content",
    ["<html><body><p>Not PubMed.</p></body></html>\n" * 50_000, "%PDF-1.4\n" + "x" * 200_000],
    ids=["other XML", "not XML"],
)
def test_a_file_that_is_not_pubmed_is_logged_as_failed_with_workers(
    db_url: str, tmp_path: Path, content: str
) -> None:
    other = tmp_path / "other.xml"
    other.write_text(content)
    with pytest.raises(PubmedFormatError):
        import_file(db_url, other, workers=2)
    with open_session(db_url) as session:
        assert session.scalar(select(func.count()).select_from(Article)) == 0
        run = session.scalars(select(HarvestRun)).one()
        assert run.status == "failed" and run.error and run.records_new == 0
