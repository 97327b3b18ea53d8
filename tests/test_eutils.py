"""The E-utilities client against a real HTTP server on loopback: identity, pacing, retries, errors."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from pytest_httpserver import HTTPServer

from db.settings import load_settings
from ingest.eutils import ConfigurationError, EutilsClient, RateLimiter, process_rate_limiter
from ingest.eutils_answers import EutilsError, InvalidQueryError
from ingest.records import PubmedRecord
from tests.conftest import shared_file
from tests.eutils_server import FakeEutils, Fault, article_set_xml, make_records

EMAIL = "tests@example.org"


def _no_sleep(_seconds: float) -> None:
    pass


def make_client(base_url: str, **options: Any) -> EutilsClient:
    """A client that retries fast and, unless a test is about pacing, is not paced."""
    options.setdefault("rate_limiter", RateLimiter(sleep=_no_sleep))
    options.setdefault("backoff_base", 0.001)
    options.setdefault("max_retries", 2)
    options.setdefault("timeout", 5)
    api_key = options.pop("api_key", None)
    return EutilsClient(base_url, EMAIL, api_key, **options)


@pytest.fixture
def fake(server: HTTPServer) -> FakeEutils:
    return FakeEutils(server, make_records(25))


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- answers ----------------------------------------------------------------------------------------


def test_esearch_returns_count_history_and_translation(fake: FakeEutils) -> None:
    result = make_client(fake.base_url).esearch("ketamine AND depression", retmax=5)

    assert result.count == 25
    assert result.webenv and result.webenv.startswith("MCID_fake")
    assert result.query_key == "1"
    assert result.query_translation == "ketamine AND depression"
    assert result.ids == tuple(range(30_000_001, 30_000_006))
    assert fake.seen[0].params["usehistory"] == "y"
    assert fake.seen[0].params["db"] == "pubmed"


def test_esearch_reads_ncbis_recorded_history_answer(server: HTTPServer) -> None:
    body = shared_file("pubmed", "format", "biopython-entrez", "esearch9_usehistory.xml").read_bytes()
    server.expect_request("/esearch.fcgi").respond_with_data(body, content_type="text/xml")

    result = make_client(server.url_for("/")).esearch("#2")

    assert (result.count, result.query_key, result.query_translation) == (2, "19", "#2")
    assert result.webenv is not None and result.webenv.startswith("NCID_1_214573425")
    assert result.ids == (48526533, 22347799)


def test_fetch_batch_returns_the_records_of_a_history_slice(fake: FakeEutils) -> None:
    client = make_client(fake.base_url)
    search = client.esearch("ketamine")
    assert search.webenv and search.query_key

    records = client.fetch_batch(search.webenv, search.query_key, 10, 5)

    assert [r.pmid for r in records if isinstance(r, PubmedRecord)] == list(range(30_000_011, 30_000_016))
    params = fake.requests_to("efetch")[0].params
    assert (params["retstart"], params["retmax"], params["retmode"]) == ("10", "5", "xml")


def test_efetch_returns_the_checked_xml_body(fake: FakeEutils) -> None:
    client = make_client(fake.base_url)
    search = client.esearch("ketamine")
    assert search.webenv and search.query_key
    fake.inject("efetch", Fault.TRUNCATED)

    body = client.efetch(search.webenv, search.query_key, 0, 3)

    assert body == article_set_xml(fake.records[:3])
    assert client.requests_made == 3


def test_fake_records_are_valid_against_the_pubmed_dtd() -> None:
    import Bio

    dtd_path = Path(Bio.__file__).parent / "Entrez" / "DTDs" / "pubmed_250101.dtd"
    if not dtd_path.exists():
        pytest.skip(f"Biopython does not ship {dtd_path.name}")
    document = etree.fromstring(article_set_xml(make_records(3)))

    dtd = etree.DTD(str(dtd_path))

    assert dtd.validate(document), dtd.error_log.filter_from_errors()


# --- identity ------------------------------------------------------------------------------------


def test_every_request_sends_tool_email_and_api_key(fake: FakeEutils) -> None:
    client = make_client(fake.base_url, api_key="key-123")
    search = client.esearch("ketamine")
    assert search.webenv and search.query_key
    client.fetch_batch(search.webenv, search.query_key, 0, 2)

    assert len(fake.seen) == 2
    for request in fake.seen:
        assert request.params["tool"] == "ketamine-evidence"
        assert request.params["email"] == EMAIL
        assert request.params["api_key"] == "key-123"


def test_no_api_key_parameter_without_a_key(fake: FakeEutils) -> None:
    make_client(fake.base_url).esearch("ketamine")

    assert "api_key" not in fake.seen[0].params


def test_client_takes_base_url_email_and_key_from_settings(
    fake: FakeEutils, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EUTILS_BASE_URL", fake.base_url)
    monkeypatch.setenv("NCBI_API_KEY", "settings-key")

    client = EutilsClient.from_settings(load_settings(), rate_limiter=RateLimiter(sleep=_no_sleep))
    client.esearch("ketamine")

    assert fake.seen[0].params["api_key"] == "settings-key"
    assert fake.seen[0].params["email"] == "tests@example.org"
    assert client.rate == 10


def test_missing_email_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NCBI_EMAIL")

    with pytest.raises(ConfigurationError) as caught:
        EutilsClient.from_settings(load_settings())

    assert str(caught.value) == (
        "NCBI_EMAIL is not set. NCBI asks every E-utilities client for a contact address; "
        "export NCBI_EMAIL=you@example.org and retry."
    )
    assert isinstance(caught.value, ValueError)


def test_long_terms_are_sent_by_post(fake: FakeEutils) -> None:
    term = " OR ".join(f'"synthetic phrase {i}"[tiab]' for i in range(100))

    result = make_client(fake.base_url).esearch(term)

    assert fake.seen[0].method == "POST"
    assert fake.seen[0].params["term"] == term
    assert result.query_translation == term


def test_short_terms_are_sent_by_get(fake: FakeEutils) -> None:
    make_client(fake.base_url).esearch("ketamine")

    assert fake.seen[0].method == "GET"


# --- retries -------------------------------------------------------------------------------------

TRANSIENT_FAULTS = [
    Fault.RATE_LIMIT,
    Fault.SERVER_ERROR,
    Fault.BAD_GATEWAY,
    Fault.UNAVAILABLE,
    Fault.TRUNCATED,
    Fault.ERROR_BODY,
    Fault.HTML,
    Fault.SLOW,
]


def _timeout_for(fault: Fault) -> float:
    # Short only where the fault is a slow answer (3 s): a loaded machine answers the rest late too.
    return 1.0 if fault is Fault.SLOW else 10.0


@pytest.mark.parametrize("fault", TRANSIENT_FAULTS)
def test_esearch_retries_a_transient_fault_and_succeeds(fake: FakeEutils, fault: Fault) -> None:
    fake.slow_seconds = 3.0
    fake.inject("esearch", fault)
    client = make_client(fake.base_url, timeout=_timeout_for(fault))

    result = client.esearch("ketamine")

    assert result.count == 25
    assert client.requests_made == 2
    assert len(fake.requests_to("esearch")) == 2


@pytest.mark.parametrize("fault", TRANSIENT_FAULTS)
def test_efetch_retries_a_transient_fault_and_succeeds(fake: FakeEutils, fault: Fault) -> None:
    fake.slow_seconds = 3.0
    client = make_client(fake.base_url, timeout=_timeout_for(fault))
    search = client.esearch("ketamine")
    assert search.webenv and search.query_key
    fake.inject("efetch", fault)

    records = client.fetch_batch(search.webenv, search.query_key, 0, 10)

    assert len(records) == 10
    assert client.requests_made == 3


def test_requests_made_counts_every_retry(fake: FakeEutils) -> None:
    fake.inject("esearch", Fault.UNAVAILABLE, Fault.RATE_LIMIT, Fault.HTML)
    client = make_client(fake.base_url, max_retries=5)

    client.esearch("ketamine")

    assert client.requests_made == 4 == len(fake.seen)


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (
            Fault.RATE_LIMIT,
            r"^NCBI E-utilities answered HTTP 429 \(rate limit\) 3 times for efetch; "
            r"wait a few minutes or set NCBI_API_KEY, then rerun\.$",
        ),
        (Fault.UNAVAILABLE, r"^NCBI E-utilities answered HTTP 503 \(server error\) 3 times for efetch; "),
        (Fault.HTML, r"answered with an HTML page \('NCBI - WWW Error Blocked Diagnostic'\) instead of XML"),
        (Fault.TRUNCATED, r"answered with unusable PubMed XML \(.*truncated"),
        (
            Fault.ERROR_BODY,
            r"answered with an <ERROR> body \('Search Backend failed: read timeout'\) 3 times",
        ),
    ],
)
def test_efetch_gives_up_after_max_retries_with_a_one_line_error(
    fake: FakeEutils, fault: Fault, message: str
) -> None:
    client = make_client(fake.base_url, max_retries=2)
    search = client.esearch("ketamine")
    assert search.webenv and search.query_key
    fake.fail_always("efetch", fault)

    with pytest.raises(EutilsError, match=message) as caught:
        client.fetch_batch(search.webenv, search.query_key, 0, 10)

    assert "\n" not in str(caught.value)
    assert not isinstance(caught.value, InvalidQueryError)
    assert len(fake.requests_to("efetch")) == 3


def test_mixed_failures_name_the_last_one(fake: FakeEutils) -> None:
    fake.inject("esearch", Fault.UNAVAILABLE, Fault.RATE_LIMIT)

    with pytest.raises(EutilsError, match=r"failed 2 times for esearch \(last: answered HTTP 429"):
        make_client(fake.base_url, max_retries=1).esearch("ketamine")


def test_timeouts_give_up_with_the_timeout_named(fake: FakeEutils) -> None:
    fake.slow_seconds = 0.6
    fake.fail_always("esearch", Fault.SLOW)

    with pytest.raises(EutilsError, match=r"did not answer within 0\.2 s 2 times for esearch"):
        make_client(fake.base_url, timeout=0.2, max_retries=1).esearch("ketamine")


def test_retries_back_off_exponentially(fake: FakeEutils) -> None:
    fake.inject("esearch", Fault.UNAVAILABLE, Fault.UNAVAILABLE)
    client = make_client(fake.base_url, backoff_base=0.2, max_retries=2)

    client.esearch("ketamine")

    first, second, third = (request.at for request in fake.seen)
    # Waits are within [ceiling/2, ceiling]: 0.1-0.2 s, then 0.2-0.4 s.
    assert second - first >= 0.1
    assert third - second >= 0.2


def test_backoff_delays_double_with_jitter_and_a_cap() -> None:
    client = make_client("http://127.0.0.1:9/", backoff_base=1.0, backoff_max=5.0)

    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 5.0), (8, 5.0)]:
        delays = [client.backoff_delay(attempt) for _ in range(200)]
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
        assert len(set(delays)) > 100  # jittered, not a fixed schedule


def test_connection_refused_names_the_url_and_what_to_check() -> None:
    base_url = f"http://127.0.0.1:{_closed_port()}/entrez/eutils/"
    client = make_client(base_url, max_retries=1)

    with pytest.raises(EutilsError) as caught:
        client.esearch("ketamine")

    assert str(caught.value) == (
        f"Cannot reach NCBI E-utilities at {base_url} (connection refused, 2 attempts); "
        "check your network or EUTILS_BASE_URL."
    )
    assert client.requests_made == 2


def test_http_404_is_not_retried(server: HTTPServer) -> None:
    server.no_handler_status_code = 404
    client = make_client(server.url_for("/wrong/"), max_retries=3)

    with pytest.raises(EutilsError, match=r"answered HTTP 404 for esearch .*check EUTILS_BASE_URL"):
        client.esearch("ketamine")

    assert client.requests_made == 1


# --- errors in the body --------------------------------------------------------------------------


def test_phrase_not_found_is_an_invalid_query_and_not_retried(fake: FakeEutils) -> None:
    client = make_client(fake.base_url, max_retries=3)

    with pytest.raises(InvalidQueryError, match=r"does not know the phrase 'abcXYZ'.*PhraseNotFound"):
        client.esearch("abcXYZ")

    assert client.requests_made == 1


def test_ncbis_recorded_phrase_not_found_answer_is_an_invalid_query(server: HTTPServer) -> None:
    body = shared_file("ncbi-errors", "biopython-esearch8.xml").read_bytes()
    server.expect_request("/esearch.fcgi").respond_with_data(body, content_type="text/xml")
    client = make_client(server.url_for("/"), max_retries=3)

    with pytest.raises(InvalidQueryError, match="abcXYZ"):
        client.esearch("abcXYZ")

    assert client.requests_made == 1


def test_phrase_not_found_with_results_is_only_a_warning(server: HTTPServer) -> None:
    body = (
        b"<eSearchResult><Count>3</Count><RetMax>0</RetMax><RetStart>0</RetStart><IdList/>"
        b"<QueryTranslation>ketamine[All Fields]</QueryTranslation>"
        b"<ErrorList><PhraseNotFound>qqq</PhraseNotFound></ErrorList></eSearchResult>"
    )
    server.expect_request("/esearch.fcgi").respond_with_data(body, content_type="text/xml")

    result = make_client(server.url_for("/")).esearch("ketamine OR qqq")

    assert (result.count, result.phrases_not_found) == (3, ("qqq",))


def test_a_query_syntax_error_is_an_invalid_query_and_not_retried(server: HTTPServer) -> None:
    body = b"<eSearchResult><ERROR>Invalid query syntax: unbalanced parentheses</ERROR></eSearchResult>"
    server.expect_request("/esearch.fcgi").respond_with_data(body, content_type="text/xml")
    client = make_client(server.url_for("/"), max_retries=3)

    with pytest.raises(InvalidQueryError, match="unbalanced parentheses"):
        client.esearch("(ketamine")

    assert client.requests_made == 1


@pytest.mark.parametrize(
    ("recorded", "reason"),
    [
        ("biopython-epost2.xml", "Invalid db name specified: nothing"),
        ("biopython-esummary8.xml", "Neither query_key nor id specified"),
    ],
)
def test_ncbis_recorded_error_bodies_are_failures_not_data(
    server: HTTPServer, recorded: str, reason: str
) -> None:
    body = shared_file("ncbi-errors", recorded).read_bytes()
    server.expect_request("/esearch.fcgi").respond_with_data(body, content_type="text/xml")
    client = make_client(server.url_for("/"), max_retries=1)

    with pytest.raises(EutilsError, match=f"<ERROR> body \\('{reason}'\\) 2 times for esearch") as caught:
        client.esearch("ketamine")

    assert not isinstance(caught.value, InvalidQueryError)


@pytest.mark.parametrize("content_type", ["text/html", "text/xml"])
@pytest.mark.parametrize("endpoint", ["esearch", "efetch"])
def test_ncbis_recorded_html_page_is_a_failure_not_data(
    server: HTTPServer, endpoint: str, content_type: str
) -> None:
    # Mislabelled as XML too: the body itself gives the page away.
    body = shared_file("ncbi-errors", "biopython-pubmed3.html").read_bytes()
    server.expect_request(f"/{endpoint}.fcgi").respond_with_data(body, content_type=content_type)
    client = make_client(server.url_for("/"), max_retries=1)

    with pytest.raises(
        EutilsError, match=rf"HTML page \('PmFetch response'\) instead of XML 2 times for {endpoint}"
    ):
        if endpoint == "esearch":
            client.esearch("ketamine")
        else:
            client.fetch_batch("MCID_x", "1", 0, 10)


def test_ncbis_recorded_429_body_is_retried_then_reported(server: HTTPServer) -> None:
    body = shared_file("ncbi-errors", "rate-limit-429_rentrez-issue132.json").read_bytes()
    server.expect_request("/esearch.fcgi").respond_with_data(
        body, status=429, content_type="application/json"
    )
    client = make_client(server.url_for("/"), max_retries=2)

    with pytest.raises(EutilsError, match=r"HTTP 429 \(rate limit\) 3 times for esearch"):
        client.esearch("ketamine")

    assert client.requests_made == 3


# --- rate limit ----------------------------------------------------------------------------------


class FakeClock:
    """The limiter's clock and sleep: time moves only when the limiter sleeps, so the pace it keeps is
    exact however busy the machine is (real request arrival times are not: a late thread shrinks a gap)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(seconds)


def test_a_key_paces_at_ten_a_second_and_no_key_at_three(fake: FakeEutils) -> None:
    for api_key, gap in ((None, 1 / 3), ("key-123", 1 / 10)):
        clock = FakeClock()
        client = make_client(
            fake.base_url, api_key=api_key, rate_limiter=RateLimiter(clock=clock, sleep=clock.sleep)
        )
        for _ in range(5):
            client.esearch("ketamine")

        # The clock stands still: each request waits one more gap than the one before.
        assert clock.slept == pytest.approx([gap * n for n in range(1, 5)])
        assert len(fake.requests_to("esearch")) == 5
        fake.seen.clear()


def test_clients_in_different_threads_share_one_pace(fake: FakeEutils) -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)
    clients = [make_client(fake.base_url, rate_limiter=limiter) for _ in range(2)]

    def search_twice(client: EutilsClient) -> None:
        client.esearch("ketamine")
        client.esearch("ketamine")

    threads = [threading.Thread(target=search_twice, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(fake.seen) == 4
    # One queue for both: the four slots are a third of a second apart, whichever thread got which.
    assert sorted(clock.slept) == pytest.approx([1 / 3, 2 / 3, 1.0])


def test_the_real_clock_paces_requests_too(fake: FakeEutils) -> None:
    # The wiring to time.monotonic and time.sleep: two requests without a key take at least a third of
    # a second from the first start, measured here (a lower bound, which a busy machine only raises).
    client = make_client(fake.base_url, rate_limiter=RateLimiter())
    started = time.monotonic()
    client.esearch("ketamine")
    client.esearch("ketamine")

    assert time.monotonic() - started >= 1 / 3


def test_clients_share_the_process_wide_limiter_by_default() -> None:
    first = EutilsClient("http://127.0.0.1:9/", EMAIL)
    second = EutilsClient("http://127.0.0.1:9/", EMAIL, "key")

    assert first.rate_limiter is second.rate_limiter is process_rate_limiter()
    assert (first.rate, second.rate) == (3, 10)


def test_rate_limiter_hands_out_slots_one_interval_apart() -> None:
    now = [100.0]
    slept: list[float] = []
    limiter = RateLimiter(clock=lambda: now[0], sleep=slept.append)

    limiter.wait(3)  # first request: at once
    limiter.wait(3)  # 1/3 s after the first
    limiter.wait(10)  # a keyed client: 1/10 s after that
    now[0] = 200.0
    limiter.wait(3)  # long after: at once

    assert slept == pytest.approx([1 / 3, 1 / 3 + 1 / 10])
