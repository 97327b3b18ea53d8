"""The full-text index on SQLite (FTS5) and PostgreSQL (tsvector): sync on every write, safe user queries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlmodel import Session

from db.corpus.articles import apply_deletions, upsert_articles
from db.corpus.fulltext import (
    FulltextQuery,
    Group,
    any_of,
    install_fulltext,
    match_count,
    matching_pmids,
    parse_query,
    render_fts5,
    render_websearch,
    search_articles_fulltext,
)
from db.engine import engine_for, open_session
from ingest.records import AbstractSection, MeshHeading, PubmedRecord


def article_row(
    pmid: int,
    title: str,
    abstract: str = "",
    *,
    mesh: tuple[str, ...] = (),
    keywords: tuple[str, ...] = (),
    version: str = "",
) -> dict[str, Any]:
    """Article column values exactly as the harvester and importer store them."""
    record = PubmedRecord(
        pmid=pmid,
        title=title,
        abstract_sections=(AbstractSection(text=abstract),) if abstract else (),
        mesh_headings=tuple(MeshHeading(descriptor=term, ui=f"D{pmid}") for term in mesh),
        keywords=keywords,
        date_revised=None,
        journal=version,  # a different journal makes a different content hash: a revision
    )
    return record.article_fields()


def store(url: str, *rows: dict[str, Any]) -> None:
    with open_session(url) as session:
        upsert_articles(session, list(rows))
        session.commit()


def found(url: str, query: str | FulltextQuery) -> list[int]:
    with open_session(url) as session:
        return [pmid for pmid, _ in search_articles_fulltext(session, query, limit=None)]


CORPUS = (
    article_row(
        1,
        "Ketamine for treatment-resistant depression: a randomized trial",
        "RESULTS: Remission at 24 hours was higher with ketamine than with midazolam.",
        mesh=("Depressive Disorder, Treatment-Resistant", "Ketamine"),
    ),
    article_row(
        2,
        "Esketamine nasal spray and suicidal ideation",
        "Suicidal thoughts decreased within hours of the first dose.",
        mesh=("Suicidal Ideation",),
        keywords=("SSI", "esketamine"),
    ),
    article_row(3, "Electroconvulsive therapy versus ketamine", "Resistant depression responded to both."),
    article_row(
        4, "Synaptogenesis after NMDA receptor blockade in rats", "BDNF rose in the prefrontal cortex."
    ),
)


def test_search_covers_title_abstract_mesh_and_keywords(db_url: str) -> None:
    store(db_url, *CORPUS)
    assert found(db_url, "randomized") == [1]  # title
    assert found(db_url, "midazolam") == [1]  # abstract
    assert found(db_url, "treatment-resistant") == [
        1
    ]  # title and MeSH, not article 3's "resistant depression"
    assert found(db_url, "ideation") == [2]  # title and MeSH
    assert found(db_url, "SSI") == [2]  # keywords only
    assert found(db_url, "D2") == []  # MeSH unique IDs are not indexed text


def test_results_are_best_first_with_scores(db_url: str) -> None:
    store(db_url, *CORPUS)
    with open_session(db_url) as session:
        results = search_articles_fulltext(session, "ketamine or esketamine")
    assert {pmid for pmid, _ in results} == {1, 2, 3}
    scores = [score for _, score in results]
    assert scores == sorted(scores, reverse=True)
    assert all(score > 0 for score in scores)


def test_quoted_phrase_matches_only_the_phrase(db_url: str) -> None:
    store(db_url, *CORPUS)
    assert found(db_url, '"depression ketamine"') == []
    assert sorted(found(db_url, "depression ketamine")) == [1, 3]
    assert found(db_url, '"responded to both"') == [3]


def test_or_offers_alternatives_and_minus_excludes(db_url: str) -> None:
    store(db_url, *CORPUS)
    assert sorted(found(db_url, "midazolam or BDNF")) == [1, 4]
    assert sorted(found(db_url, "ketamine -midazolam")) == [3]
    assert found(db_url, '-"nasal spray" ideation') == []


def test_stemming_finds_other_word_forms(db_url: str) -> None:
    store(db_url, *CORPUS)
    assert found(db_url, "responds") == [3]
    assert sorted(found(db_url, "hour")) == [1, 2]


@pytest.mark.parametrize(
    "user_text",
    [
        'ketamine" AND (',
        "NEAR(ketamine depression)",
        "ketamine*",
        "title:ketamine",
        "^ketamine",
        "ketamine & depression | !x",
        "a:b:c",
        '"',
        '""',
        "(",
        ")",
        "-",
        "--",
        "OR",
        "or or or",
        "AND NOT",
        "'; DROP TABLE article; --",
        "ketamine\x00depression",
        "\\",
        "{ketamine}",
        "<script>alert(1)</script>",
        "ketamine:*",
        "émotion ünd ëxtra",
        "🙂",
        "",
        "   ",
    ],
)
def test_user_text_with_search_syntax_never_raises(db_url: str, user_text: str) -> None:
    store(db_url, *CORPUS)
    with open_session(db_url) as session:
        results = search_articles_fulltext(session, user_text)
        count = match_count(session, user_text)
    assert count == len(results)
    if user_text in ("ketamine*", "^ketamine", "{ketamine}", "ketamine:*"):
        assert {pmid for pmid, _ in results} == {1, 3}  # the syntax is just a separator


def test_match_count_and_paging(db_url: str) -> None:
    store(db_url, *CORPUS)
    with open_session(db_url) as session:
        everything = search_articles_fulltext(session, "ketamine or esketamine or rats", limit=None)
        first = search_articles_fulltext(session, "ketamine or esketamine or rats", limit=2)
        second = search_articles_fulltext(session, "ketamine or esketamine or rats", limit=2, offset=2)
        total = match_count(session, "ketamine or esketamine or rats")
    assert total == 4 == len(everything)
    assert first + second == everything


def test_index_follows_inserts_revisions_and_deletions(db_url: str) -> None:
    store(db_url, *CORPUS)
    assert found(db_url, "electroconvulsive") == [3]
    # A revision through the same bulk path: the old words leave the index, the new ones enter it.
    store(db_url, article_row(3, "Magnetic seizure therapy versus ketamine", "Both helped.", version="v2"))
    assert found(db_url, "electroconvulsive") == []
    assert found(db_url, "seizure") == [3]
    # A new MeSH term alone is indexed too.
    store(
        db_url,
        article_row(
            4, CORPUS[3]["title"], CORPUS[3]["abstract"], mesh=("Neuronal Plasticity",), version="v2"
        ),
    )
    assert found(db_url, "plasticity") == [4]
    # PubMed deletes article 3 (unused by reviewers): it leaves the index with the table row.
    with open_session(db_url) as session:
        apply_deletions(session, [3])
        session.commit()
    assert found(db_url, "seizure") == []
    assert sorted(found(db_url, "ketamine")) == [1]


def test_flagging_an_article_keeps_it_searchable(db_url: str) -> None:
    store(db_url, *CORPUS)
    with open_session(db_url) as session:
        session.execute(text("UPDATE article SET deleted_in_pubmed = :flag WHERE pmid = 2"), {"flag": True})
        session.commit()
    assert found(db_url, "ideation") == [2]


def test_install_is_idempotent_and_rebuilds_a_missing_index(db_url: str) -> None:
    store(db_url, *CORPUS)
    engine = engine_for(db_url)
    install_fulltext(engine)
    install_fulltext(engine)  # a second call changes nothing
    assert found(db_url, "synaptogenesis") == [4]
    with engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("DROP TABLE article_fts")
        else:
            connection.exec_driver_sql("ALTER TABLE article DROP COLUMN search_vector")
    install_fulltext(engine)
    assert found(db_url, "synaptogenesis") == [4]
    store(db_url, article_row(5, "Ketamine and synaptogenesis in mice"))
    assert sorted(found(db_url, "synaptogenesis")) == [4, 5]


def test_sqlite_index_stays_consistent_after_revisions(sqlite_url: str) -> None:
    store(sqlite_url, *CORPUS)
    store(
        sqlite_url,
        *(
            dict(row, content_hash=row["content_hash"][::-1], title=row["title"] + " revised")
            for row in CORPUS
        ),
    )
    with Session(engine_for(sqlite_url)) as session:
        session.execute(text("INSERT INTO article_fts(article_fts, rank) VALUES ('integrity-check', 1)"))
        indexed = session.execute(text("SELECT count(*) FROM article_fts")).scalar_one()
    assert indexed == len(CORPUS)
    assert sorted(found(sqlite_url, "revised")) == [1, 2, 3, 4]


def test_matching_pmids_can_be_limited_to_some_studies(db_url: str) -> None:
    store(db_url, *CORPUS)
    with open_session(db_url) as session:
        assert matching_pmids(session, "ketamine") == {1, 3}
        assert matching_pmids(session, "ketamine", within=[3, 4]) == {3}
        assert matching_pmids(session, "ketamine", within=[]) == set()


# --- the query model (pure) ------------------------------------------------------------------------------


def test_parse_query_groups_words_phrases_alternatives_and_exclusions() -> None:
    query = parse_query('ketamine "suicidal ideation" -placebo or esketamine')
    assert query == FulltextQuery(
        (Group(("ketamine", "suicidal ideation"), ("placebo",)), Group(("esketamine",)))
    )
    assert render_fts5(query) == '(("ketamine" AND "suicidal ideation") NOT ("placebo")) OR ("esketamine")'
    assert render_websearch(query) == '"ketamine" "suicidal ideation" -"placebo" or "esketamine"'


def test_parse_query_makes_syntax_characters_separators() -> None:
    assert parse_query('NEAR("a*" b) treatment-resistant').groups == (
        Group(("near a", "b", "treatment resistant")),  # a bare word's parts stay together, as a phrase
    )
    assert parse_query("-only -negations").empty
    assert parse_query("or").empty


def test_any_of_drops_empty_and_repeated_terms() -> None:
    assert any_of(["TRD", "trd", "  ", "C-SSRS", "***"]) == FulltextQuery(
        (Group(("trd",)), Group(("c ssrs",)))
    )


def test_articles_are_searchable_in_their_own_transaction_and_after_commit(db_url: str) -> None:
    with open_session(db_url) as session:
        upsert_articles(session, [CORPUS[0]])
        assert [pmid for pmid, _ in search_articles_fulltext(session, "midazolam")] == [
            1
        ]  # not yet committed
        session.rollback()
    assert found(db_url, "midazolam") == []  # rolled back: neither the article nor its index entry
    store(db_url, CORPUS[0])
    assert found(db_url, "midazolam") == [1]


def test_orm_writes_and_bare_connection_writes_are_indexed(db_url: str) -> None:
    from db.models import Article

    with open_session(db_url) as session:
        session.add(Article(pmid=7, title="Nitrous oxide for depression", content_hash="h7"))
        session.commit()  # no explicit flush: the commit hook flushes before indexing
    with engine_for(db_url).begin() as connection:
        connection.execute(
            Article.__table__.insert(),
            [{"pmid": 8, "title": "Psilocybin and depression", "abstract": "", "content_hash": "h8"}],
        )
    assert found(db_url, "nitrous") == [7]
    assert found(db_url, "psilocybin") == [8]  # indexed by the next search's own transaction


def test_a_pmid_deleted_and_added_again_in_one_transaction_is_indexed_once(sqlite_url: str) -> None:
    from db.models import Article

    store(sqlite_url, *CORPUS)
    with open_session(sqlite_url) as session:
        session.execute(text("DELETE FROM article WHERE pmid = 4"))
        session.add(Article(pmid=4, title="Ketamine and neuroplasticity", content_hash="new"))
        session.commit()
    with open_session(sqlite_url) as session:
        assert session.execute(text("SELECT count(*) FROM article_fts WHERE rowid = 4")).scalar_one() == 1
        assert session.execute(text("SELECT count(*) FROM article_fts_pending")).scalar_one() == 0
    assert found(sqlite_url, "neuroplasticity") == [4]
    assert found(sqlite_url, "synaptogenesis") == []


def test_claim_match_scores_rank_every_article_matching_any_phrase(db_url: str) -> None:
    from db.corpus.fulltext import claim_match_scores

    store(db_url, *CORPUS)
    with open_session(db_url) as session:
        scores = claim_match_scores(session, ["suicidal ideation", "BDNF", "nothing like this"])
        assert claim_match_scores(session, ["", "***"]) == {}
    assert set(scores) == {2, 4}
    assert all(value > 0 for value in scores.values())


def test_a_database_without_the_index_still_commits(tmp_path: Path) -> None:
    from sqlmodel import SQLModel

    from db.models import Article

    url = f"sqlite:///{tmp_path / 'bare.sqlite3'}"
    SQLModel.metadata.create_all(engine_for(url))  # tables only, as a tool outside init_db would make them
    with open_session(url) as session:
        session.add(Article(pmid=1, title="Ketamine", content_hash="h"))
        session.commit()  # the commit hook finds no index to keep and stays out of the way
        assert session.get(Article, 1) is not None
    engine_for(url).dispose()
