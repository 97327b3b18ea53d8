"""Hostile or broken E-utilities answers: a trickle, a flood, a host that does not resolve, a bad Count.

Each must end in one line that names the problem, never in a hang or in memory running out.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import func, select
from werkzeug import Request, Response

from db.engine import open_session
from db.models import Article, HarvestRun
from db.settings import Settings
from ingest.eutils import EutilsClient, RateLimiter
from ingest.eutils_answers import AnswerTooLargeError, EutilsError
from ingest.harvest import harvest
from tests.eutils_server import FakeEutils, article_set_xml, make_records

EMAIL = "tests@example.org"
SEARCH = (
    b'<?xml version="1.0" encoding="UTF-8" ?>\n<eSearchResult><Count>3</Count><RetMax>0</RetMax>'
    b"<RetStart>0</RetStart><QueryKey>1</QueryKey><WebEnv>MCID_x</WebEnv><IdList></IdList>"
    b"<QueryTranslation>ketamine</QueryTranslation></eSearchResult>\n"
)


def _no_sleep(_seconds: float) -> None:
    pass


def make_client(base_url: str, **options: Any) -> EutilsClient:
    options.setdefault("rate_limiter", RateLimiter(sleep=_no_sleep))
    options.setdefault("backoff_base", 0.001)
    options.setdefault("max_retries", 1)
    options.setdefault("timeout", 10)
    return EutilsClient(base_url, EMAIL, **options)


def _serve(server: HTTPServer, pieces: list[bytes], gap: float = 0.0, length: int | None = None) -> None:
    def handler(_request: Request) -> Response:
        def body() -> Iterator[bytes]:
            for piece in pieces:
                time.sleep(gap)
                yield piece

        headers = {"Content-Length": str(length)} if length is not None else {}
        return Response(body(), content_type="text/xml", headers=headers)

    server.expect_request("/esearch.fcgi").respond_with_handler(handler)


def test_an_answer_that_trickles_in_is_cut_off_at_its_deadline_and_retried(server: HTTPServer) -> None:
    # A whole, valid answer sent a few bytes at a time: each read comes back well within the socket
    # timeout, so only the answer's own deadline ends it. The client's clock moves 10 s a reading.
    _serve(server, [SEARCH[i : i + 16] for i in range(0, len(SEARCH), 16)], gap=0.01, length=len(SEARCH))
    ticks = itertools.count(step=10.0)
    client = make_client(server.url_for("/"), answer_deadline=25.0, clock=lambda: next(ticks))

    with pytest.raises(EutilsError, match=r"did not finish its answer within 25 s 2 times for esearch"):
        client.esearch("ketamine")

    assert client.requests_made == 2  # retried like a 5xx, then given up in one line


def test_the_same_answer_within_its_deadline_is_read_whole(server: HTTPServer) -> None:
    _serve(server, [SEARCH[i : i + 16] for i in range(0, len(SEARCH), 16)], gap=0.01, length=len(SEARCH))
    ticks = itertools.count(step=0.001)
    client = make_client(server.url_for("/"), answer_deadline=25.0, clock=lambda: next(ticks))

    assert client.esearch("ketamine").count == 3


def test_an_answer_past_the_size_limit_is_refused_while_streaming(server: HTTPServer) -> None:
    # No Content-Length: the limit must hold on what arrives, not on what the server announces.
    _serve(server, [b"<eSearchResult>" + b" " * 4096] * 64)
    client = make_client(server.url_for("/"), max_answer_bytes=100_000)

    with pytest.raises(AnswerTooLargeError, match=r"esearch answer larger than the 100,000 bytes limit"):
        client.esearch("ketamine")

    assert client.requests_made == 1  # reading it again would not make it smaller


def test_an_announced_answer_past_the_size_limit_is_refused_before_reading(server: HTTPServer) -> None:
    _serve(server, [SEARCH], length=300 * 1024 * 1024)
    client = make_client(server.url_for("/"), max_answer_bytes=1024 * 1024)

    with pytest.raises(AnswerTooLargeError, match=r"esearch answer larger than the 1 MB limit"):
        client.esearch("ketamine")


def test_a_negative_count_is_not_a_search_result(server: HTTPServer) -> None:
    _serve(server, [SEARCH.replace(b"<Count>3</Count>", b"<Count>-5</Count>")])
    client = make_client(server.url_for("/"))

    with pytest.raises(EutilsError, match=r"negative Count \(-5\)"):
        client.esearch("ketamine")


def test_a_host_name_that_does_not_resolve_fails_at_once() -> None:
    client = make_client("http://no-such-host.invalid/entrez/eutils/", max_retries=5, backoff_base=30)

    with pytest.raises(EutilsError, match=r"host name not found.*are you offline\?"):
        client.esearch("ketamine")

    assert client.requests_made == 1  # no retries (and no 30 s backoff) for a name that cannot resolve


def test_a_harvest_past_its_time_limit_fails_in_one_line_and_keeps_its_batches(
    sqlite_url: str, server: HTTPServer
) -> None:
    fake = FakeEutils(server, make_records(30))
    settings = Settings(sqlite_url, EMAIL, None, fake.base_url)
    ticks = itertools.count(step=1.0)  # the client's clock: a second a reading, however fast the machine
    slow = make_client(fake.base_url, clock=lambda: next(ticks))

    with pytest.raises(EutilsError, match=r"^The harvest ran past its time limit of 5 s; the batches stored"):
        harvest(settings, query="ketamine", client=slow, batch_size=10, time_limit=5.0)

    with open_session(sqlite_url) as session:
        [run] = session.scalars(select(HarvestRun))
        stored = session.scalar(select(func.count()).select_from(Article))
    assert run.status == "failed" and run.error is not None and "time limit" in run.error
    assert stored is not None and stored < 30
    # The lock went with the failed run: the next harvest starts and finishes the job.
    again = harvest(settings, query="ketamine", client=make_client(fake.base_url), full=True, time_limit=None)
    assert again.status == "succeeded" and again.records_new == 30 - stored


def test_records_nobody_asked_for_are_left_out(server: HTTPServer) -> None:
    asked, stray = make_records(2)
    server.expect_request("/efetch.fcgi").respond_with_data(
        article_set_xml([asked, stray]), content_type="text/xml"
    )
    client = make_client(server.url_for("/"))

    records = client.fetch_ids([asked.pmid])

    assert [record.pmid for record in records] == [asked.pmid]
