"""An older PubMed file imported after a newer one never turns a record back to an older revision."""

from __future__ import annotations

from pathlib import Path

from db.corpus.articles import get_article
from db.engine import open_session
from ingest.importer import import_file

ARTICLE = """<PubmedArticle><MedlineCitation Status="MEDLINE" Owner="NLM"><PMID Version="1">27797938</PMID>
<DateRevised><Year>{year}</Year><Month>{month}</Month><Day>{day}</Day></DateRevised>
<Article><Journal><Title>Journal of Tests</Title></Journal><ArticleTitle>{title}</ArticleTitle></Article>
</MedlineCitation></PubmedArticle>"""


def write_revision(folder: Path, name: str, revised: str, title: str) -> Path:
    year, month, day = revised.split("-")
    path = folder / name
    path.write_text(
        '<?xml version="1.0"?>\n<PubmedArticleSet>'
        + ARTICLE.format(year=year, month=month, day=day, title=title)
        + "</PubmedArticleSet>\n"
    )
    return path


def test_an_older_revision_is_skipped_and_counted(db_url: str, tmp_path: Path) -> None:
    newer = write_revision(tmp_path, "pubmed4.xml", "2018-04-17", "Ketamine: the revised title.")
    older = write_revision(tmp_path, "title_with_html_tags.xml", "2018-02-22", "Ketamine: the first title.")
    import_file(db_url, newer)

    run = import_file(db_url, older)

    assert (run.records_new, run.records_updated, run.records_older) == (0, 0, 1)
    with open_session(db_url) as session:
        article = get_article(session, 27797938)
        assert article is not None and article.title == "Ketamine: the revised title."


def test_an_older_revision_is_stored_when_the_user_asks(db_url: str, tmp_path: Path) -> None:
    import_file(db_url, write_revision(tmp_path, "new.xml", "2018-04-17", "Ketamine: the revised title."))

    run = import_file(
        db_url,
        write_revision(tmp_path, "old.xml", "2018-02-22", "Ketamine: the first title."),
        allow_older=True,
    )

    assert (run.records_updated, run.records_older) == (1, 0)
    with open_session(db_url) as session:
        article = get_article(session, 27797938)
        assert article is not None and article.title == "Ketamine: the first title."


def test_a_newer_revision_still_updates(db_url: str, tmp_path: Path) -> None:
    import_file(db_url, write_revision(tmp_path, "old.xml", "2018-02-22", "Ketamine: the first title."))

    run = import_file(
        db_url, write_revision(tmp_path, "new.xml", "2018-04-17", "Ketamine: the revised title.")
    )

    assert (run.records_updated, run.records_older) == (1, 0)
