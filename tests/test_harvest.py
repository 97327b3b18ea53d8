"""The harvester end to end: fake E-utilities on loopback, a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import func, select

from db.engine import init_db, open_session
from db.models import Article, ArticleRevision, HarvestRun
from db.settings import Settings
from ingest.eutils import ConfigurationError, EutilsClient, RateLimiter
from ingest.eutils_answers import EutilsError, HistoryExpiredError, InvalidQueryError
from ingest.harvest import DEFAULT_QUERY, MAX_RESEARCHES, harvest, term_since
from tests.eutils_server import FakeEutils, FakeRecord, Fault, make_records

PROJECT_ROOT = Path(__file__).resolve().parent.parent
EMAIL = "tests@example.org"
QUERY = "ketamine AND depression"
# The harvester's clock in these tests: the date windows end the day after it, so they never follow the calendar.
HARVEST_DAY = date(2026, 11, 15)


def harvest_clock() -> datetime:
    return datetime(HARVEST_DAY.year, HARVEST_DAY.month, HARVEST_DAY.day, 12, tzinfo=UTC)


def _no_sleep(_seconds: float) -> None:
    pass


def settings_for(db_url: str, base_url: str, email: str | None = EMAIL) -> Settings:
    return Settings(database_url=db_url, ncbi_email=email, ncbi_api_key=None, eutils_base_url=base_url)


def fast_client(base_url: str, **options: Any) -> EutilsClient:
    """Unpaced, quick to retry: pacing has its own tests in test_eutils.py."""
    options.setdefault("max_retries", 2)
    return EutilsClient(
        base_url, EMAIL, rate_limiter=RateLimiter(sleep=_no_sleep), backoff_base=0.001, timeout=5, **options
    )


def run_harvest(db_url: str, fake: FakeEutils, **options: Any) -> HarvestRun:
    options.setdefault("query", QUERY)
    options.setdefault("client", fast_client(fake.base_url))
    options.setdefault("clock", harvest_clock)
    return harvest(settings_for(db_url, fake.base_url), **options)


def article_table(db_url: str) -> list[dict[str, Any]]:
    """Every article row as plain values, without the bookkeeping timestamps."""
    with open_session(db_url) as session:
        rows = session.execute(select(Article.__table__).order_by(Article.__table__.c.pmid)).mappings()
        return [{k: v for k, v in row.items() if k not in {"first_seen_at", "updated_at"}} for row in rows]


def runs(db_url: str) -> list[HarvestRun]:
    with open_session(db_url) as session:
        return list(session.scalars(select(HarvestRun).order_by(HarvestRun.id)))


def revisions(db_url: str) -> list[ArticleRevision]:
    with open_session(db_url) as session:
        return list(session.scalars(select(ArticleRevision).order_by(ArticleRevision.id)))


def efetch_slices(fake: FakeEutils) -> list[tuple[int, int]]:
    """(retstart, retmax) of each efetch from the history server (not those naming PMIDs)."""
    return [
        (int(r.params["retstart"]), int(r.params["retmax"]))
        for r in fake.requests_to("efetch")
        if "id" not in r.params
    ]


def efetch_pmids(fake: FakeEutils) -> list[list[int]]:
    """The PMIDs of each efetch that names them outright."""
    return [
        [int(p) for p in r.params["id"].split(",")] for r in fake.requests_to("efetch") if "id" in r.params
    ]


# --- a plain harvest ----------------------------------------------------------------------------


def test_harvest_stores_every_record_and_logs_the_run(db_url: str, server: HTTPServer) -> None:
    fake = FakeEutils(server, make_records(23))

    run = run_harvest(db_url, fake, batch_size=10)

    rows = article_table(db_url)
    assert [row["pmid"] for row in rows] == [record.pmid for record in fake.records]
    assert rows[0]["title"] == "Ketamine for depression: synthetic trial 1."
    assert rows[0]["abstract"].startswith("BACKGROUND: Ketamine was compared")
    [logged] = runs(db_url)
    assert logged.id == run.id
    assert (logged.status, logged.error, logged.query, logged.query_translation) == (
        "succeeded",
        None,
        QUERY,
        QUERY,
    )
    assert (logged.count, logged.records_new, logged.records_updated, logged.since) == (23, 23, 0, None)
    assert logged.finished_at is not None


def test_harvest_makes_one_esearch_and_ceil_n_over_batch_efetches(db_url: str, server: HTTPServer) -> None:
    fake = FakeEutils(server, make_records(23))

    run = run_harvest(db_url, fake, batch_size=10)

    assert len(fake.requests_to("esearch")) == 1
    assert efetch_slices(fake) == [(0, 10), (10, 10), (20, 3)]
    assert run.requests_made == 1 + math.ceil(23 / 10) == len(fake.seen)
    assert runs(db_url)[0].requests_made == 4


def test_harvest_fetches_from_the_history_server(db_url: str, server: HTTPServer) -> None:
    fake = FakeEutils(server, make_records(5))

    run_harvest(db_url, fake)

    [search] = fake.requests_to("esearch")
    [fetch] = fake.requests_to("efetch")
    assert (search.params["usehistory"], search.params["term"]) == ("y", QUERY)
    assert fetch.params["WebEnv"].startswith("MCID_fake")
    assert (fetch.params["query_key"], fetch.params["retmode"], fetch.params["db"]) == ("1", "xml", "pubmed")


def test_max_records_caps_the_fetch_and_progress_reports_each_batch(
    sqlite_url: str, server: HTTPServer
) -> None:
    fake = FakeEutils(server, make_records(23))
    reports: list[tuple[int, int]] = []

    run_harvest(sqlite_url, fake, batch_size=10, max_records=15, progress=lambda d, t: reports.append((d, t)))

    assert efetch_slices(fake) == [(0, 10), (10, 5)]
    assert len(article_table(sqlite_url)) == 15
    assert reports == [(10, 15), (15, 15)]


def test_an_expired_history_search_is_searched_again_and_the_harvest_goes_on(
    db_url: str, server: HTTPServer
) -> None:
    fake = FakeEutils(server, make_records(23))
    fetched: list[int] = []

    def expire_after_first_batch(done: int, _total: int) -> None:
        fetched.append(done)
        if done == 10:
            fake.expire_history()

    run = run_harvest(db_url, fake, batch_size=10, progress=expire_after_first_batch)

    assert (run.status, run.records_new) == ("succeeded", 23)
    assert len(fake.requests_to("esearch")) == 2  # the search, then one fresh search
    # The failed slice is asked again from the fresh search; nothing is fetched twice.
    assert efetch_slices(fake) == [(0, 10), (10, 10), (10, 10), (20, 3)]
    assert fetched == [10, 20, 23]
    assert len(article_table(db_url)) == 23


def test_a_history_search_that_changed_meanwhile_is_fetched_again_from_its_start(
    sqlite_url: str, server: HTTPServer
) -> None:
    fake = FakeEutils(server, make_records(23))
    added = make_records(1, first_pmid=39_000_001, first_day=date(2020, 1, 1))

    def expire_and_grow(done: int, _total: int) -> None:
        if done == 10 and len(fake.records) == 23:
            fake.records.extend(added)  # PubMed changed while the history expired
            fake.expire_history()

    run = run_harvest(sqlite_url, fake, batch_size=10, progress=expire_and_grow)

    assert run.status == "succeeded"
    assert efetch_slices(fake)[2:] == [(0, 10), (10, 10), (20, 4)]
    assert len(article_table(sqlite_url)) == 24  # the newcomer too, and nothing twice


def test_a_history_server_that_keeps_forgetting_fails_the_run(sqlite_url: str, server: HTTPServer) -> None:
    fake = FakeEutils(server, make_records(23))
    fake.expire_history_on_every_fetch = True

    with pytest.raises(HistoryExpiredError, match="no longer holds the search"):
        run_harvest(sqlite_url, fake, batch_size=10)
    assert runs(sqlite_url)[0].status == "failed"
    assert len(fake.requests_to("esearch")) == 1 + MAX_RESEARCHES


def test_a_query_with_no_results_makes_no_efetch(sqlite_url: str, server: HTTPServer) -> None:
    fake = FakeEutils(server, [])

    run = run_harvest(sqlite_url, fake)

    assert fake.requests_to("efetch") == []
    assert (run.status, run.count, run.requests_made) == ("succeeded", 0, 1)


@pytest.mark.parametrize("batch_size", [0, -5, 10_001])
def test_batch_size_outside_1_to_10000_is_refused(sqlite_url: str, batch_size: int) -> None:
    settings = settings_for(sqlite_url, "http://127.0.0.1:9/")

    with pytest.raises(
        ValueError, match=rf"Batch size {batch_size} is out of range; efetch takes 1 to 10,000"
    ):
        harvest(settings, batch_size=batch_size)

    assert runs(sqlite_url) == []


def test_max_records_below_one_is_refused(sqlite_url: str) -> None:
    with pytest.raises(ValueError, match="maximum number of records must be 1 or more, not 0"):
        harvest(settings_for(sqlite_url, "http://127.0.0.1:9/"), max_records=0)


def test_missing_email_stops_the_harvest_before_it_starts(sqlite_url: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        harvest(settings_for(sqlite_url, "http://127.0.0.1:9/", email=None))

    assert str(caught.value) == (
        "NCBI_EMAIL is not set. NCBI asks every E-utilities client for a contact address; "
        "export NCBI_EMAIL=you@example.org and retry."
    )
    assert runs(sqlite_url) == []


def test_harvest_without_a_client_uses_the_settings_identity(sqlite_url: str, server: HTTPServer) -> None:
    fake = FakeEutils(server, make_records(3))
    settings = Settings(
        database_url=sqlite_url,
        ncbi_email="editor@example.org",
        ncbi_api_key="k-1",
        eutils_base_url=fake.base_url,
    )

    run = harvest(settings, query=QUERY)

    assert run.records_new == 3
    assert {(r.params["email"], r.params["tool"], r.params["api_key"]) for r in fake.seen} == {
        ("editor@example.org", "ketamine-evidence", "k-1")
    }


def test_default_query_covers_the_drugs_and_conditions_in_mesh_and_tiab(
    sqlite_url: str, server: HTTPServer
) -> None:
    fake = FakeEutils(server, make_records(2))

    run_harvest(sqlite_url, fake, query=DEFAULT_QUERY)

    sent = fake.requests_to("esearch")[0].params["term"]
    assert sent == DEFAULT_QUERY
    drugs, conditions = DEFAULT_QUERY.split(") AND (")
    for term in ('"Ketamine"[MeSH Terms]', "ketamine[tiab]", "esketamine[tiab]", "arketamine[tiab]"):
        assert term in drugs
    for term in (
        '"Depression"[MeSH Terms]',
        '"Depressive Disorder"[MeSH Terms]',
        '"Depressive Disorder, Treatment-Resistant"[MeSH Terms]',
        '"Bipolar Disorder"[MeSH Terms]',
        '"Suicidal Ideation"[MeSH Terms]',
        "depression[tiab]",
        '"treatment-resistant depression"[tiab]',
        '"bipolar depression"[tiab]',
        '"suicidal ideation"[tiab]',
    ):
        assert term in conditions
    assert DEFAULT_QUERY.count("(") == DEFAULT_QUERY.count(")")


def test_records_missing_from_a_batch_are_counted_as_failed(sqlite_url: str, server: HTTPServer) -> None:
    fake = FakeEutils(server, make_records(10))
    # PubMed drops a record from the history set after the search, before its batch is fetched.
    gone = fake.records[7].pmid

    run = run_harvest(sqlite_url, fake, batch_size=5, progress=lambda _done, _total: fake.delete(gone))

    assert (run.status, run.records_new, run.records_failed) == ("succeeded", 9, 1)
    assert gone not in {row["pmid"] for row in article_table(sqlite_url)}


# --- the 9,999 limit ----------------------------------------------------------------------------


def test_more_results_than_one_search_can_page_are_split_into_date_windows(
    sqlite_url: str, server: HTTPServer
) -> None:
    # 180 records, 3 a day; the fake pages through only 50 per search, as PubMed does 9,999.
    fake = FakeEutils(server, make_records(180, per_day=3), page_limit=50)

    run = run_harvest(sqlite_url, fake, batch_size=20, max_per_window=50)

    assert len(article_table(sqlite_url)) == 180
    windows = run.windows
    assert len(windows) >= 4
    assert all(0 < window["count"] <= 50 for window in windows)
    assert sum(window["count"] for window in windows) == run.count == 180
    spans = [(date.fromisoformat(w["mindate"].replace("/", "-")), w["maxdate"]) for w in windows]
    for (_, earlier_end), (later_start, _) in zip(spans, spans[1:], strict=False):
        assert date.fromisoformat(earlier_end.replace("/", "-")) < later_start  # no overlap, in order
    searches = fake.requests_to("esearch")
    assert "mindate" not in searches[0].params
    assert all(s.params["datetype"] == "edat" for s in searches[1:])
    assert all(retstart < 50 for retstart, _ in efetch_slices(fake))
    # Every window's whole batches come from its history set; the short last batches go out together
    # by PMID, so the harvest makes as many efetch calls as one window of 180 would.
    assert [size for _, size in efetch_slices(fake)] == [20] * sum(w["count"] // 20 for w in windows)
    seams = efetch_pmids(fake)
    assert [len(batch) for batch in seams] == [20] * (len(seams) - 1) + [len(seams[-1])] and 0 < len(
        seams[-1]
    ) <= 20
    assert len(fake.requests_to("efetch")) == math.ceil(180 / 20)
    assert run.requests_made == len(searches) + len(fake.requests_to("efetch"))
    assert (run.records_new, run.records_failed) == (180, 0)
    assert runs(sqlite_url)[0].windows == windows


def test_window_seams_fetch_every_record_once_whatever_order_a_search_lists_them(
    sqlite_url: str, server: HTTPServer
) -> None:
    fake = FakeEutils(server, make_records(180, per_day=3), page_limit=50)
    fake.list_ids_reversed = True

    run = run_harvest(sqlite_url, fake, batch_size=20, max_per_window=50)

    assert sorted(fake.served) == sorted(record.pmid for record in fake.records)  # each exactly once
    assert len(fake.requests_to("efetch")) == math.ceil(180 / 20)
    assert (run.records_new, run.records_failed) == (180, 0)


def test_records_deleted_during_a_windowed_harvest_are_counted_failed_once(
    sqlite_url: str, server: HTTPServer
) -> None:
    fake = FakeEutils(server, make_records(180, per_day=3), page_limit=50)
    # The windows hold 27, 45, 45, 45 and 18 records. After the first batch, two records go: one of the
    # first window's short last batch (fetched by PMID) and one of the second window's second batch.
    gone = {fake.records[22].pmid, fake.records[50].pmid}

    def delete_after_first_batch(done: int, _total: int) -> None:
        if done == 20:
            for pmid in gone:
                fake.delete(pmid)

    run = run_harvest(sqlite_url, fake, batch_size=20, max_per_window=50, progress=delete_after_first_batch)

    assert [window["count"] for window in run.windows] == [27, 45, 45, 45, 18]
    assert (run.status, run.records_new, run.records_failed) == ("succeeded", 178, 2)
    assert not gone & {row["pmid"] for row in article_table(sqlite_url)}


def test_a_record_deleted_from_a_window_with_no_short_batch_is_counted_failed(
    sqlite_url: str, server: HTTPServer
) -> None:
    # Batches of 9 divide every window (27, 45, 45, 45 and 18 records): nothing goes by PMID, and the
    # record missing from its batch is never asked again.
    fake = FakeEutils(server, make_records(180, per_day=3), page_limit=50)
    gone = fake.records[50].pmid

    def delete_after_first_batch(done: int, _total: int) -> None:
        if done == 9:
            fake.delete(gone)

    run = run_harvest(sqlite_url, fake, batch_size=9, max_per_window=50, progress=delete_after_first_batch)

    assert efetch_pmids(fake) == []
    assert (run.status, run.records_new, run.records_failed) == ("succeeded", 179, 1)


def test_windows_that_do_not_add_up_to_the_total_fail_the_run(sqlite_url: str, server: HTTPServer) -> None:
    records = make_records(120, per_day=3)
    # An Entrez date past tomorrow falls outside every window.
    records.append(FakeRecord(40_000_000, "From the future.", HARVEST_DAY + timedelta(days=30), HARVEST_DAY))
    fake = FakeEutils(server, records, page_limit=50)

    with pytest.raises(EutilsError, match=r"windows add up to 120 records but PubMed reported 121") as caught:
        run_harvest(sqlite_url, fake, max_per_window=50)

    assert fake.requests_to("efetch") == []
    [run] = runs(sqlite_url)
    assert (run.status, run.error) == ("failed", str(caught.value))


def test_more_than_the_limit_on_a_single_day_cannot_be_split(sqlite_url: str, server: HTTPServer) -> None:
    fake = FakeEutils(server, make_records(60, per_day=60), page_limit=50)

    with pytest.raises(EutilsError, match=r"60 records entered on 2020/01/01 alone, more than the 50"):
        run_harvest(sqlite_url, fake, max_per_window=50)

    assert runs(sqlite_url)[0].status == "failed"


# --- incremental ---------------------------------------------------------------------------------


def test_term_since_adds_the_edat_or_mdat_clause() -> None:
    assert term_since("a OR b", date(2024, 3, 5)) == (
        '(a OR b) AND (("2024/03/05"[EDAT] : "3000"[EDAT]) OR ("2024/03/05"[MDAT] : "3000"[MDAT]))'
    )
    assert term_since("a OR b", None) == "a OR b"


def test_a_second_harvest_asks_only_for_changes_and_fetches_nothing_when_none(
    db_url: str, server: HTTPServer
) -> None:
    fake = FakeEutils(server, make_records(12))
    first = run_harvest(db_url, fake)
    fake.seen.clear()

    second = run_harvest(db_url, fake)

    since = first.started_at.date() - timedelta(days=1)
    day = since.strftime("%Y/%m/%d")
    [search] = fake.requests_to("esearch")
    assert (
        search.params["term"]
        == f'({QUERY}) AND (("{day}"[EDAT] : "3000"[EDAT]) OR ("{day}"[MDAT] : "3000"[MDAT]))'
    )
    assert fake.requests_to("efetch") == []
    logged = runs(db_url)[-1]
    assert (logged.id, logged.status, logged.since, logged.count, logged.requests_made) == (
        second.id,
        "succeeded",
        since,
        0,
        1,
    )


def test_an_explicit_since_overrides_the_last_run(sqlite_url: str, server: HTTPServer) -> None:
    # Entered daily from 2020/01/01, each revised 30 days after its entry.
    fake = FakeEutils(server, make_records(12))
    run_harvest(sqlite_url, fake)
    fake.seen.clear()

    run = run_harvest(sqlite_url, fake, since=date(2020, 2, 5))

    term = fake.requests_to("esearch")[0].params["term"]
    assert '(("2020/02/05"[EDAT] : "3000"[EDAT]) OR ("2020/02/05"[MDAT] : "3000"[MDAT]))' in term
    # Revised on or after 2020/02/05: the records entered from 2020/01/06 on.
    assert (run.since, run.count, run.records_unchanged) == (date(2020, 2, 5), 7, 7)


def test_revised_records_are_updated_in_place_with_a_revision_row(db_url: str, server: HTTPServer) -> None:
    fake = FakeEutils(server, make_records(12))
    run_harvest(db_url, fake)
    revised_pmid = fake.records[4].pmid
    fake.revise(revised_pmid, title="Ketamine for depression: corrected title.", on=HARVEST_DAY)
    fake.records.append(FakeRecord(30_000_100, "A new trial.", HARVEST_DAY, HARVEST_DAY))

    second = run_harvest(db_url, fake)

    assert (second.count, second.records_new, second.records_updated, second.records_unchanged) == (
        2,
        1,
        1,
        0,
    )
    rows = {row["pmid"]: row for row in article_table(db_url)}
    assert len(rows) == 13
    assert rows[revised_pmid]["title"] == "Ketamine for depression: corrected title."
    [revision] = revisions(db_url)
    assert (revision.pmid, revision.change, revision.run_id) == (revised_pmid, "revised", second.id)
    assert "title" in revision.changed_fields
    assert revision.before["title"] == "Ketamine for depression: synthetic trial 5."


def test_harvesting_everything_twice_gives_the_same_database(db_url: str, server: HTTPServer) -> None:
    fake = FakeEutils(server, make_records(15))
    run_harvest(db_url, fake, batch_size=4)
    before = article_table(db_url)

    again = run_harvest(db_url, fake, batch_size=4, since=date(1900, 1, 1))

    assert (again.count, again.records_new, again.records_updated, again.records_unchanged) == (15, 0, 0, 15)
    assert article_table(db_url) == before
    assert revisions(db_url) == []


# --- failures ------------------------------------------------------------------------------------


def test_transient_faults_during_a_harvest_are_retried(sqlite_url: str, server: HTTPServer) -> None:
    fake = FakeEutils(server, make_records(23))
    fake.inject("esearch", Fault.RATE_LIMIT)
    fake.inject("efetch", Fault.TRUNCATED, None, Fault.ERROR_BODY, Fault.HTML, Fault.BAD_GATEWAY)

    run = run_harvest(sqlite_url, fake, batch_size=10, client=fast_client(fake.base_url, max_retries=3))

    assert run.status == "succeeded"
    assert len(article_table(sqlite_url)) == 23
    assert run.requests_made == 2 + 3 + 4 == len(fake.seen)


def test_spent_retries_fail_the_run_and_keep_the_committed_batches(db_url: str, server: HTTPServer) -> None:
    fake = FakeEutils(server, make_records(23))
    fake.inject("efetch", None, Fault.UNAVAILABLE, Fault.UNAVAILABLE, Fault.UNAVAILABLE)

    with pytest.raises(EutilsError, match=r"HTTP 503 \(server error\) 3 times for efetch") as caught:
        run_harvest(db_url, fake, batch_size=10)

    [run] = runs(db_url)
    assert (run.status, run.error, run.records_new, run.requests_made) == ("failed", str(caught.value), 10, 5)
    assert run.finished_at is not None
    assert len(article_table(db_url)) == 10


def test_an_invalid_query_fails_the_run_without_retrying(sqlite_url: str, server: HTTPServer) -> None:
    fake = FakeEutils(server, make_records(3))

    with pytest.raises(InvalidQueryError, match="abcXYZ"):
        run_harvest(sqlite_url, fake, query="abcXYZ")

    [run] = runs(sqlite_url)
    assert (run.status, run.requests_made) == ("failed", 1)
    assert "abcXYZ" in (run.error or "")


def test_an_unreachable_server_fails_the_run_with_what_to_check(sqlite_url: str) -> None:
    base_url = "http://127.0.0.1:9/entrez/eutils/"  # the discard port: nothing listens there

    with pytest.raises(EutilsError, match=r"^Cannot reach NCBI E-utilities at http://127\.0\.0\.1:9/"):
        harvest(settings_for(sqlite_url, base_url), query=QUERY, client=fast_client(base_url, max_retries=1))

    [run] = runs(sqlite_url)
    assert run.status == "failed"
    assert (run.error or "").endswith("check your network or EUTILS_BASE_URL.")


def test_a_failed_run_is_not_the_base_of_the_next_incremental_one(
    sqlite_url: str, server: HTTPServer
) -> None:
    fake = FakeEutils(server, make_records(5))
    fake.fail_always("esearch", Fault.UNAVAILABLE)
    with pytest.raises(EutilsError):
        run_harvest(sqlite_url, fake)
    fake.fail_always("esearch", None)

    run = run_harvest(sqlite_url, fake)

    assert (run.since, run.records_new) == (None, 5)


def test_ctrl_c_marks_the_run_interrupted_and_keeps_committed_batches(
    sqlite_url: str, server: HTTPServer
) -> None:
    fake = FakeEutils(server, make_records(23))

    def press_ctrl_c(done: int, _total: int) -> None:
        if done == 20:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_harvest(sqlite_url, fake, batch_size=10, progress=press_ctrl_c)

    [run] = runs(sqlite_url)
    assert (run.status, run.records_new) == ("interrupted", 20)
    assert len(article_table(sqlite_url)) == 20


# --- kill and rerun ------------------------------------------------------------------------------

_CHILD = """
import os
from db.settings import load_settings
from ingest.eutils import EutilsClient, RateLimiter
from ingest.harvest import harvest

settings = load_settings()
client = EutilsClient.from_settings(
    settings, rate_limiter=RateLimiter(sleep=lambda s: None), backoff_base=0.01, timeout=120
)
harvest(settings, query="ketamine AND depression", batch_size=10, client=client,
        max_per_window=int(os.environ.get("TEST_MAX_PER_WINDOW", "9999")))
"""


def _start_child(db_url: str, base_url: str, max_per_window: int = 9_999) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "TEST_MAX_PER_WINDOW": str(max_per_window),
        "DATABASE_URL": db_url,
        "EUTILS_BASE_URL": base_url,
        "NCBI_EMAIL": EMAIL,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])),
    }
    return subprocess.Popen([sys.executable, "-c", _CHILD], env=env, stderr=subprocess.PIPE)


def _finish(child: subprocess.Popen[bytes]) -> None:
    _, stderr = child.communicate(timeout=60)
    assert child.returncode == 0, stderr.decode()


@pytest.mark.slow
@pytest.mark.parametrize("max_per_window", [9_999, 20], ids=["one window", "date windows"])
def test_a_harvest_killed_mid_way_and_rerun_equals_an_uninterrupted_one(
    tmp_path: Path, server: HTTPServer, max_per_window: int, db_url: str
) -> None:
    # In date windows of at most 20 (PubMed's 9,999 writ small), batches of 10 leave short last
    # batches that are fetched together by PMID: the kill may land on one of those. The killed
    # harvest runs on each engine (on PostgreSQL new articles go in by COPY); the uninterrupted one
    # on SQLite, so the two engines' articles are compared as well.
    fake = FakeEutils(server, make_records(45, per_day=3), page_limit=max_per_window)
    whole_url = f"sqlite:///{tmp_path / 'whole.sqlite3'}"
    killed_url = db_url
    _finish(_start_child(whole_url, fake.base_url, max_per_window))

    fake.inject("efetch", None, None, Fault.HANG)  # the third batch never answers...
    child = _start_child(killed_url, fake.base_url, max_per_window)
    try:
        assert fake.hung.wait(timeout=60), "the harvest never reached its third batch"
    finally:
        child.send_signal(signal.SIGKILL)  # ...and the process dies waiting for it
        child.communicate(timeout=30)
        fake.release.set()
    assert child.returncode == -signal.SIGKILL
    init_db(killed_url)
    assert len(article_table(killed_url)) == 20  # the two committed batches, nothing half-written
    assert [run.status for run in runs(killed_url)] == ["running"]

    _finish(_start_child(killed_url, fake.base_url, max_per_window))

    assert article_table(killed_url) == article_table(whole_url)
    assert len(article_table(killed_url)) == 45
    with open_session(killed_url) as session:
        assert session.scalar(select(func.count(func.distinct(Article.pmid)))) == 45
    assert [run.status for run in runs(killed_url)] == ["interrupted", "succeeded"]
    assert bool(efetch_pmids(fake)) == (max_per_window < 45)  # windows' short batches went by PMID


# --- the console script, as a user runs it ----------------------------------------------------------


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ingest.cli", *args], capture_output=True, text=True, env=env, timeout=120
    )


@pytest.mark.slow  # a subprocess: the command as a user runs it
def test_cli_harvest_prints_a_summary_and_full_ignores_the_last_run(
    sqlite_url: str, server: HTTPServer
) -> None:
    fake = FakeEutils(server, make_records(7))
    env = dict(os.environ, DATABASE_URL=sqlite_url, EUTILS_BASE_URL=fake.base_url)
    first = _cli("harvest", "--query", QUERY, "--batch-size", "3", env=env)
    assert first.returncode == 0, first.stderr
    assert (
        "7 matching, 7 new, 0 updated, 0 unchanged, 0 deleted, 0 missing from NCBI's answers" in first.stdout
    )
    assert "4 requests to E-utilities" in first.stdout  # 1 esearch + ceil(7 / 3) efetch
    fake.seen.clear()
    again = _cli("harvest", "--query", QUERY, "--full", env=env)
    assert again.returncode == 0, again.stderr
    assert "[EDAT]" not in fake.requests_to("esearch")[0].params["term"]
    assert "7 unchanged" in again.stdout


@pytest.mark.slow  # a subprocess: the command as a user runs it
def test_cli_harvest_without_email_says_how_to_set_it(sqlite_url: str, server: HTTPServer) -> None:
    fake = FakeEutils(server, make_records(1))
    env = {k: v for k, v in os.environ.items() if k != "NCBI_EMAIL"}
    env.update(DATABASE_URL=sqlite_url, EUTILS_BASE_URL=fake.base_url)
    result = _cli("harvest", env=env)
    assert result.returncode == 1
    assert result.stderr.startswith("error: NCBI_EMAIL is not set.") and "export NCBI_EMAIL=" in result.stderr
    assert fake.seen == []


@pytest.mark.slow  # a subprocess: the command as a user runs it
def test_cli_harvest_with_an_invalid_query_fails_in_one_line(sqlite_url: str, server: HTTPServer) -> None:
    fake = FakeEutils(server, make_records(1))
    env = dict(os.environ, DATABASE_URL=sqlite_url, EUTILS_BASE_URL=fake.base_url)
    result = _cli("harvest", "--query", "abcXYZ", env=env)
    assert result.returncode == 1
    assert "abcXYZ" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert runs(sqlite_url)[-1].status == "failed"
