"""Importing JSON records and JSON Lines: our own article export round trip, the shared records, bad input."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

import ingest.json_records as json_records
from db.engine import open_session
from db.exports.articles import write_articles
from db.models import Article, ArticleRevision, HarvestRun
from ingest.cli import main
from ingest.importer import file_format, import_file, iter_file_records
from ingest.json_records import iter_json_records
from ingest.records import PubmedFormatError, PubmedRecord
from tests.conftest import TEST_DATA, shared_file

SAMPLE = TEST_DATA / "pubmed_ketamine_sample.xml"
UPDATE = TEST_DATA / "pubmed_ketamine_update.xml"
NBIB = TEST_DATA / "ketamine_sample.nbib"
RECORDS = TEST_DATA / "ketamine_records.json"
# `export articles --format jsonl` of SAMPLE and NBIB, as this release wrote it.
EXPORT = TEST_DATA / "ketamine_export.jsonl"
# Bookkeeping of the database the row is in, not of the record.
_BOOKKEEPING = {"first_seen_at", "updated_at"}


def article_rows(url: str) -> list[dict[str, Any]]:
    """Every column of every article but the bookkeeping, in PMID order."""
    columns = [c for c in Article.__table__.columns if c.name not in _BOOKKEEPING]
    with open_session(url) as session:
        return [dict(row) for row in session.execute(select(*columns).order_by(Article.pmid)).mappings()]


def export_jsonl(url: str, path: Path) -> Path:
    with open_session(url) as session, path.open("w", encoding="utf-8") as out:
        write_articles(session, out, "jsonl")
    return path


def counts(url: str) -> tuple[int, int, str | None]:
    """Articles, revisions, and the last run's status."""
    with open_session(url) as session:
        articles = session.scalar(select(func.count()).select_from(Article))
        revisions = session.scalar(select(func.count()).select_from(ArticleRevision))
        status = session.scalar(select(HarvestRun.status).order_by(HarvestRun.id.desc()).limit(1))
    return articles or 0, revisions or 0, status


def write_lines(path: Path, *rows: object) -> Path:
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows))
    return path


# --- our own export ----------------------------------------------------------------------------------


def test_export_imported_into_a_new_database_gives_the_same_articles(db_url: str, tmp_path: Path) -> None:
    for path in (SAMPLE, NBIB, UPDATE):  # the update revises, retracts and deletes: every kind of row
        import_file(db_url, path)
    exported = export_jsonl(db_url, tmp_path / "articles.jsonl")
    copy_url = f"sqlite:///{tmp_path / 'copy.sqlite3'}"

    run = import_file(copy_url, exported)

    original = article_rows(db_url)
    assert run.records_new == len(original) > 0
    assert article_rows(copy_url) == original  # row by row, every column: content hash, design prefill, ...
    assert export_jsonl(copy_url, tmp_path / "again.jsonl").read_text() == exported.read_text()


def test_an_export_imported_into_its_own_database_changes_nothing(db_url: str, tmp_path: Path) -> None:
    import_file(db_url, SAMPLE)
    before = article_rows(db_url)
    run = import_file(db_url, export_jsonl(db_url, tmp_path / "articles.jsonl"))
    assert (run.records_new, run.records_updated, run.records_unchanged) == (0, 0, 6)
    assert article_rows(db_url) == before
    assert counts(db_url)[1] == 0  # no revision


def test_a_recorded_export_imports_and_again_changes_nothing(sqlite_url: str) -> None:
    first = import_file(sqlite_url, EXPORT)
    again = import_file(sqlite_url, EXPORT)
    assert (first.records_new, again.records_unchanged, again.records_updated) == (8, 8, 0)
    with open_session(sqlite_url) as session:
        article = session.get(Article, 90000001)
        assert article is not None
        assert article.abstract_sections[1]["label"] == "METHODS"
        assert article.authors[0]["orcid"] == "0000-0002-1825-0097"
        retracted = session.get(Article, 90000004)
        assert retracted is not None and retracted.retraction_status == "retracted"


def test_a_changed_record_makes_a_revision_as_xml_does(sqlite_url: str, tmp_path: Path) -> None:
    import_file(sqlite_url, EXPORT)
    lines = EXPORT.read_text().splitlines()
    row = json.loads(lines[0])
    row["title"] = "Intranasal esketamine for treatment-resistant depression: a corrected title."
    changed = write_lines(tmp_path / "changed.jsonl", row, *lines[1:])

    run = import_file(sqlite_url, changed)

    assert (run.records_updated, run.records_unchanged) == (1, 7)
    with open_session(sqlite_url) as session:
        [revision] = session.scalars(select(ArticleRevision)).all()
    assert revision.pmid == row["pmid"] and "title" in revision.changed_fields
    assert revision.after["title"] == row["title"]


def test_the_short_form_of_other_tools_imports_too(sqlite_url: str, tmp_path: Path) -> None:
    # Only the issue 14 columns: names, MeSH terms, notices as "RetractionIn:PMID".
    row = {
        "pmid": 90000301,
        "title": "Ketamine: a study later retracted.",
        "abstract": "Unstructured abstract.",
        "year": 2023,
        "authors": ["Doe J"],
        "mesh_terms": ["Ketamine", "Humans"],
        "major_mesh_terms": ["Ketamine"],
        "notices": ["RetractionIn:90000302"],
        "design": "rct",
    }
    import_file(sqlite_url, write_lines(tmp_path / "short.jsonl", row))
    with open_session(sqlite_url) as session:
        article = session.get(Article, 90000301)
        assert article is not None
    assert article.retraction_status == "retracted"
    assert article.notices == [{"ref_type": "RetractionIn", "pmid": 90000302, "source": None}]
    assert [(m["descriptor"], m["major"]) for m in article.mesh_headings] == [
        ("Ketamine", True),
        ("Humans", False),
    ]
    assert article.authors[0]["last_name"] == "Doe J"
    assert article.abstract_sections == [{"text": "Unstructured abstract.", "label": None, "category": None}]


# --- JSON documents: an array, one object, the shared searches ----------------------------------------


def test_a_json_array_of_records_imports(sqlite_url: str) -> None:
    run = import_file(sqlite_url, RECORDS)
    assert (run.status, run.records_new) == ("succeeded", 2)
    with open_session(sqlite_url) as session:
        trial = session.get(Article, 90000201)
        mice = session.get(Article, 90000202)
    assert trial is not None and mice is not None
    assert (trial.pub_date, trial.pub_year) == ("2025-Feb-14", 2025)
    assert [a["last_name"] for a in trial.authors] == ["Amara Nwosu", "Lukas van Dijk"]
    assert trial.design == "rct"
    assert (mice.pub_year, mice.doi, mice.abstract) == (2024, "10.1016/j.neuropharm.2024.0202", "")
    assert [m["descriptor"] for m in mice.mesh_headings] == ["Animals", "Mice", "Ketamine"]


@pytest.mark.parametrize(
    "wrap",
    [
        lambda records: json.dumps(records[0], indent=2),  # one record, pretty-printed
        lambda records: json.dumps({"query": "ketamine", "articles": records}, indent=2),  # a saved search
        lambda records: json.dumps(records),  # an array on one line
    ],
    ids=["object", "wrapped", "one-line-array"],
)
def test_json_documents_of_every_shape_import(tmp_path: Path, wrap: Any) -> None:
    path = tmp_path / "records.data"  # the name says nothing: the content decides
    path.write_text(wrap(json.loads(RECORDS.read_text())))
    assert file_format(path) == "json"
    pmids = [r.pmid for r in iter_file_records(path) if isinstance(r, PubmedRecord)]
    assert pmids[0] == 90000201 and set(pmids) <= {90000201, 90000202}


def test_gzipped_json_lines_import(tmp_path: Path) -> None:
    path = tmp_path / "articles.jsonl.gz"
    path.write_bytes(gzip.compress(EXPORT.read_bytes()))
    assert len(list(iter_file_records(path))) == 8


def test_the_shared_json_records_import(sqlite_url: str) -> None:
    search = shared_file("pubmed", "ketamine", "elambeth-supplements_ketamine.json")
    normalised = shared_file("pubmed", "ketamine", "records.jsonl")
    assert import_file(sqlite_url, search).records_new == 100
    run = import_file(sqlite_url, normalised)
    assert run.count == 46 and run.records_new == 0
    with open_session(sqlite_url) as session:
        with_abstract = session.scalar(
            select(func.count()).select_from(Article).where(Article.abstract != "")
        )
    assert with_abstract == 89


# --- bad input: one line naming the place, nothing of the failing batch stored --------------------------


def failed_import(url: str, path: Path, match: str) -> None:
    with pytest.raises(PubmedFormatError, match=match) as raised:
        import_file(url, path)
    assert len(str(raised.value).splitlines()) == 1
    assert counts(url) == (0, 0, "failed")


def test_a_malformed_line_is_named_and_nothing_is_stored(db_url: str, tmp_path: Path) -> None:
    lines = EXPORT.read_text().splitlines()
    path = write_lines(tmp_path / "broken.jsonl", lines[0], lines[1], lines[2][:-40], *lines[3:])
    failed_import(db_url, path, r"broken\.jsonl: line 3, column \d+: malformed JSON")


def test_a_record_without_pmid_is_named_by_its_line(db_url: str, tmp_path: Path) -> None:
    path = write_lines(tmp_path / "nopmid.jsonl", {"pmid": 1, "title": "A"}, {"title": "No PMID"})
    failed_import(db_url, path, r"nopmid\.jsonl: line 2: the record has no 'pmid'")


def test_a_record_without_pmid_in_a_document_is_named_by_its_place(sqlite_url: str, tmp_path: Path) -> None:
    path = tmp_path / "nopmid.json"
    path.write_text(json.dumps([{"pmid": "1", "title": "A"}, {"title": "B"}], indent=1))
    failed_import(sqlite_url, path, r"nopmid\.json: record 2: the record has no 'pmid'")


def test_an_oversized_line_is_refused_before_it_is_read_whole(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(json_records, "MAX_RECORD_BYTES", 1024 * 1024)
    huge = json.dumps({"pmid": 2, "title": "x" * (3 * 1024 * 1024)})
    data = (json.dumps({"pmid": 1, "title": "A"}) + "\n" + huge + "\n").encode()
    stream = io.BufferedReader(io.BytesIO(data))  # type: ignore[arg-type]

    with pytest.raises(PubmedFormatError, match=r"big\.jsonl: line 2: longer than 1 MB"):
        list(iter_json_records(stream, "big.jsonl"))
    assert stream.tell() < 2 * 1024 * 1024 + 100  # stopped at the bound, not at the line's end

    failed_import(sqlite_url, write_lines(tmp_path / "big.jsonl", {"pmid": 1, "title": "A"}, huge), "line 2")


def test_an_oversized_document_asks_for_json_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(json_records, "MAX_RECORD_BYTES", 1024 * 1024)
    path = tmp_path / "big.json"
    path.write_text(json.dumps([{"pmid": n, "title": "x" * 1000} for n in range(1, 2000)], indent=1))
    with pytest.raises(
        PubmedFormatError, match=r"big\.json: line 1: a JSON document longer than 1 MB.*JSON Lines"
    ):
        list(iter_file_records(path))


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"pmid": 1, "title": 5}, r"line 1 \(PMID 1\): 'title' is the number 5; expected text"),
        ({"pmid": True}, r"line 1: 'pmid' is true or false"),
        ({"pmid": "0"}, r"line 1: PMID 0 is out of range"),
        ({"pmid": 1, "authors": "Doe J"}, r"'authors' is the text 'Doe J'; expected a list of texts"),
        ({"pmid": 1, "date_revised": "May 2024"}, r"'date_revised' is the text 'May 2024'; expected a date"),
        ({"pmid": 1, "mesh_headings": [{"major": True}]}, r"'mesh_headings.descriptor' is null"),
        ([1, 2], r"line 1, record 1: the number 1 where a record \(a JSON object\) was expected"),
        ("[[" * 5000 + "]]" * 5000, r"line 1: unreadable JSON \(nested too deeply\)"),
    ],
)
def test_wrong_values_are_named_with_their_line(tmp_path: Path, row: object, message: str) -> None:
    path = write_lines(tmp_path / "odd.jsonl", row)
    with pytest.raises(PubmedFormatError, match=message):
        list(iter_file_records(path))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"pmid,title\n1,x\n", r"line 1: 'pmid,title' opens no format import reads; import takes PubMed XML"),
        (b'"just text"\n', r"opens no format import reads; .*JSON Lines"),
        (b" \n\n", r"empty input; import takes PubMed XML .* JSON records"),
        (
            b'\xef\xbb\xbf{"pmid": 1, "title": "caf\xc3\xa9"}\n{"pmid": 2, "title": "\xe9"}\n',
            "line 2 is not UTF-8",
        ),
    ],
)
def test_other_content_is_refused_with_the_accepted_formats(
    sqlite_url: str, tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "input.json"
    path.write_bytes(content)
    failed_import(sqlite_url, path, message)


# --- the command line ----------------------------------------------------------------------------------


def test_import_help_names_every_accepted_format(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["import", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for accepted in (
        "PubMed XML",
        "MEDLINE text",
        "JSON records",
        "JSON Lines",
        "export articles --format jsonl",
    ):
        assert accepted in text


def test_cli_round_trip_through_the_article_export(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["import", str(SAMPLE), str(RECORDS)]) == 0
    exported = tmp_path / "articles.jsonl"
    assert main(["export", "articles", "--format", "jsonl", "-o", str(exported)]) == 0
    copy_url = f"sqlite:///{tmp_path / 'copy.sqlite3'}"
    monkeypatch.setenv("DATABASE_URL", copy_url)
    capsys.readouterr()

    assert main(["import", str(exported)]) == 0

    assert "8 records, 8 new, 0 updated" in capsys.readouterr().out
    assert article_rows(copy_url) == article_rows(sqlite_url)
