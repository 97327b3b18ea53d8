"""A polite NCBI E-utilities client: identity, a process-wide rate limit, retries with backoff."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any, TypeVar
from urllib.parse import urlencode

import requests
import urllib3

from db.settings import TOOL_NAME, Settings
from ingest.eutils_answers import (
    AnswerTooLargeError,
    EutilsError,
    Retryable,
    SearchResult,
    body_hint,
    checked_efetch,
    first_line,
    html_summary,
    only_asked,
    read_records,
    read_search_result,
)
from ingest.records import DeletedCitation, PubmedRecord

logger = logging.getLogger(__name__)

T = TypeVar("T")

# NCBI's published limits: 3 requests/s per IP without an API key, 10/s with one.
RATE_WITHOUT_KEY = 3.0
RATE_WITH_KEY = 10.0
# Past about 2,000 characters some proxies refuse a URL; NCBI recommends POST for long requests.
POST_ABOVE_CHARS = 1800
# A whole answer must arrive within this many seconds: the socket timeout bounds only the wait for
# each piece, so a server trickling a byte every few seconds would otherwise hold a harvest for ever.
DEFAULT_ANSWER_DEADLINE = 300.0
# The largest answer read (streamed, never held past this): 10,000 records, efetch's most, are about
# 50 MB of XML; anything far larger is a broken or hostile server, not PubMed.
DEFAULT_MAX_ANSWER_BYTES = 256 * 1024 * 1024
_READ_CHUNK = 64 * 1024

NCBI_EMAIL_MISSING = (
    "NCBI_EMAIL is not set. NCBI asks every E-utilities client for a contact address; "
    "export NCBI_EMAIL=you@example.org and retry."
)


class ConfigurationError(ValueError):
    """A setting the harvester needs is missing or invalid; the message says which and how to set it."""


_ADVICE = {
    "rate_limit": "wait a few minutes or set NCBI_API_KEY, then rerun.",
    "server": "NCBI may be down or overloaded; try again later.",
    "timeout": "NCBI may be overloaded; try again later or raise the timeout.",
    "body": "NCBI may be having trouble; try again later.",
}


class RateLimiter:
    """Spaces the starts of requests by 1/rate seconds, across every thread and client sharing it.

    Slots are handed out in order under a lock and slept for outside it, so concurrent
    callers queue up instead of bursting together.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._last: float | None = None

    def wait(self, rate: float) -> None:
        """Block until a request may start without exceeding `rate` requests per second."""
        with self._lock:
            now = self._clock()
            slot = now if self._last is None else max(now, self._last + 1.0 / rate)
            self._last = slot
        if slot > now:
            self._sleep(slot - now)

    def reset(self) -> None:
        """Forget the last request (tests use this; a real process never needs to)."""
        with self._lock:
            self._last = None


# NCBI counts requests per IP (or per key), not per client object: one limiter for the process.
_PROCESS_LIMITER = RateLimiter()


def process_rate_limiter() -> RateLimiter:
    """The limiter every client shares unless one is injected."""
    return _PROCESS_LIMITER


class EutilsClient:
    """esearch and efetch against PubMed, with NCBI's identity, rate limit and retry rules."""

    def __init__(
        self,
        base_url: str,
        email: str | None,
        api_key: str | None = None,
        tool: str = TOOL_NAME,
        *,
        max_retries: int = 5,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        timeout: float = 60.0,
        answer_deadline: float = DEFAULT_ANSWER_DEADLINE,
        max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
        session: requests.Session | None = None,
        rate_limiter: RateLimiter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not email:
            raise ConfigurationError(NCBI_EMAIL_MISSING)
        if max_retries < 0:
            raise ValueError(f"max_retries must be 0 or more, not {max_retries}.")
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.email = email
        self.api_key = api_key or None
        self.tool = tool
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.timeout = timeout
        self.answer_deadline = answer_deadline
        self.max_answer_bytes = max_answer_bytes
        self.clock = clock
        self.session = session or requests.Session()
        self.rate_limiter = rate_limiter or process_rate_limiter()
        self.requests_made = 0
        self._count_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> EutilsClient:
        """A client for EUTILS_BASE_URL with NCBI_EMAIL and NCBI_API_KEY from `settings`."""
        return cls(
            settings.eutils_base_url, settings.ncbi_email, settings.ncbi_api_key, settings.tool, **options
        )

    @property
    def rate(self) -> float:
        return RATE_WITH_KEY if self.api_key else RATE_WITHOUT_KEY

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> EutilsClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- E-utilities ---------------------------------------------------------------------------

    def esearch(
        self,
        term: str,
        *,
        usehistory: bool = True,
        mindate: date | str | None = None,
        maxdate: date | str | None = None,
        datetype: str | None = None,
        retmax: int = 0,
    ) -> SearchResult:
        """Search PubMed; with usehistory the result set stays on NCBI's history server for efetch."""
        params: dict[str, str] = {"db": "pubmed", "term": term, "retmax": str(retmax)}
        if usehistory:
            params["usehistory"] = "y"
        if (mindate is None) != (maxdate is None):
            raise ValueError("esearch needs both mindate and maxdate, or neither.")
        if mindate is not None and maxdate is not None:
            params["mindate"] = _ncbi_date(mindate)
            params["maxdate"] = _ncbi_date(maxdate)
        if datetype:
            params["datetype"] = datetype
        return self._call("esearch", params, read_search_result)

    def efetch(self, webenv: str, query_key: str, retstart: int, retmax: int) -> bytes:
        """PubMed XML for a slice of a history set; the body is checked to be whole PubMed XML."""
        return self._call("efetch", _efetch_params(webenv, query_key, retstart, retmax), checked_efetch)

    def fetch_batch(
        self, webenv: str, query_key: str, retstart: int, retmax: int
    ) -> list[PubmedRecord | DeletedCitation]:
        """Parsed records for a slice of a history set (one efetch, retried as a whole)."""
        return self._call("efetch", _efetch_params(webenv, query_key, retstart, retmax), read_records)

    def fetch_ids(self, pmids: Sequence[int]) -> list[PubmedRecord | DeletedCitation]:
        """Parsed records for PMIDs named outright (one efetch, sent as POST when the list is long)."""
        params = {"db": "pubmed", "id": ",".join(str(pmid) for pmid in pmids), "retmode": "xml"}
        return only_asked(self._call("efetch", params, read_records), pmids)

    # --- transport -----------------------------------------------------------------------------

    def _call(self, endpoint: str, params: dict[str, str], read: Callable[[bytes], T]) -> T:
        url = f"{self.base_url}{endpoint}.fcgi"
        params = {**params, "tool": self.tool, "email": self.email}
        if self.api_key:
            params["api_key"] = self.api_key
        use_post = len(urlencode(params)) > POST_ABOVE_CHARS
        failures: list[Retryable] = []
        for attempt in range(self.max_retries + 1):
            if attempt:
                delay = self.backoff_delay(attempt)
                logger.info(
                    "%s failed (%s); retry %d of %d in %.2f s",
                    endpoint,
                    failures[-1].summary,
                    attempt,
                    self.max_retries,
                    delay,
                )
                time.sleep(delay)
            try:
                return read(self._send(endpoint, url, params, use_post))
            except Retryable as failure:
                failures.append(failure)
        raise EutilsError(self._give_up_message(endpoint, failures))

    def backoff_delay(self, attempt: int) -> float:
        """Seconds to wait before retry `attempt` (1-based): exponential, capped, with jitter.

        NCBI sends no Retry-After, and clients that retry in lockstep hit the limit together
        again; the random half spreads them out.
        """
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def _send(self, endpoint: str, url: str, params: dict[str, str], use_post: bool) -> bytes:
        self.rate_limiter.wait(self.rate)
        with self._count_lock:
            self.requests_made += 1
        try:
            started = self.clock()
            if use_post:
                response = self.session.post(url, data=params, timeout=self.timeout, stream=True)
            else:
                response = self.session.get(url, params=params, timeout=self.timeout, stream=True)
            with response:
                body = self._read_body(response, endpoint, started)
        except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema) as exc:
            raise EutilsError(
                f"EUTILS_BASE_URL {self.base_url!r} is not a usable URL ({first_line(exc)}); "
                "set it to https://eutils.ncbi.nlm.nih.gov/entrez/eutils/ or a mirror."
            ) from exc
        except requests.exceptions.InvalidSchema as exc:
            raise EutilsError(
                f"EUTILS_BASE_URL {self.base_url!r} is not an http(s) URL; "
                "set it to https://eutils.ncbi.nlm.nih.gov/entrez/eutils/ or a mirror."
            ) from exc
        except requests.Timeout as exc:
            raise Retryable("timeout", f"did not answer within {self.timeout:g} s") from exc
        except requests.ConnectionError as exc:
            detail = _connection_detail(exc)
            if detail == "host name not found":
                # DNS answers the same on a retry a few seconds later: say so now, not after minutes.
                raise EutilsError(
                    f"Cannot reach NCBI E-utilities at {self.base_url} (host name not found); "
                    "check your network (are you offline?) or EUTILS_BASE_URL."
                ) from exc
            raise Retryable("connection", detail) from exc
        except requests.RequestException as exc:  # broken chunked transfer, bad encoding, ...
            raise Retryable("connection", f"broke off the answer ({first_line(exc)})") from exc
        status = response.status_code
        if status == 429:
            raise Retryable("rate_limit", "answered HTTP 429 (rate limit)")
        if status >= 500:
            raise Retryable("server", f"answered HTTP {status} (server error)")
        if status != 200:
            # 4xx other than 429 is about the request (wrong base URL, bad API key): retrying won't help.
            raise EutilsError(
                f"NCBI E-utilities answered HTTP {status} for {endpoint} at {url}"
                f"{body_hint(body)}; check EUTILS_BASE_URL and NCBI_API_KEY."
            )
        if "text/html" in response.headers.get("Content-Type", "").lower():
            raise Retryable("body", html_summary(body))
        return body

    def _read_body(self, response: requests.Response, endpoint: str, started: float) -> bytes:
        """The whole answer, streamed: within the answer deadline and the size limit, or a failure."""
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self.max_answer_bytes:
            raise AnswerTooLargeError(_too_large(endpoint, self.max_answer_bytes))
        chunks: list[bytes] = []
        size = 0
        # read1 returns what one read of the socket gives: iter_content would wait for a whole chunk,
        # which a trickling server never completes, and the deadline would never be looked at.
        while chunk := _read_some(response):
            size += len(chunk)
            if size > self.max_answer_bytes:
                raise AnswerTooLargeError(_too_large(endpoint, self.max_answer_bytes))
            chunks.append(chunk)
            if self.clock() - started > self.answer_deadline:
                raise Retryable("timeout", f"did not finish its answer within {self.answer_deadline:g} s")
        return b"".join(chunks)

    def _give_up_message(self, endpoint: str, failures: list[Retryable]) -> str:
        last = failures[-1]
        attempts = len(failures)
        if last.kind == "connection":
            return (
                f"Cannot reach NCBI E-utilities at {self.base_url} ({last.summary}, {attempts} attempts); "
                "check your network or EUTILS_BASE_URL."
            )
        advice = _ADVICE[last.kind]
        if all(f.summary == last.summary for f in failures):
            return f"NCBI E-utilities {last.summary} {_times(attempts)} for {endpoint}; {advice}"
        return f"NCBI E-utilities failed {_times(attempts)} for {endpoint} (last: {last.summary}); {advice}"


def _connection_detail(exc: requests.ConnectionError) -> str:
    text = str(exc)
    for needle, words in (
        ("Connection refused", "connection refused"),
        ("Name or service not known", "host name not found"),
        ("nodename nor servname", "host name not found"),
        ("Temporary failure in name resolution", "host name not found"),
        ("Network is unreachable", "network unreachable"),
        ("Read timed out", "the answer stalled"),
        ("Connection reset", "connection reset"),
        ("RemoteDisconnected", "connection closed without an answer"),
    ):
        if needle in text:
            return words
    return first_line(exc)


def _efetch_params(webenv: str, query_key: str, retstart: int, retmax: int) -> dict[str, str]:
    return {
        "db": "pubmed",
        "WebEnv": webenv,
        "query_key": str(query_key),
        "retstart": str(retstart),
        "retmax": str(retmax),
        "retmode": "xml",
    }


def _ncbi_date(value: date | str) -> str:
    return value.strftime("%Y/%m/%d") if isinstance(value, date) else value


def _read_some(response: requests.Response) -> bytes:
    try:
        return response.raw.read1(_READ_CHUNK, decode_content=True)
    except urllib3.exceptions.ReadTimeoutError as exc:
        raise requests.Timeout(str(exc)) from exc
    except (urllib3.exceptions.ProtocolError, urllib3.exceptions.DecodeError) as exc:
        raise requests.exceptions.ChunkedEncodingError(str(exc)) from exc


def _too_large(endpoint: str, limit: int) -> str:
    return (
        f"NCBI E-utilities sent a {endpoint} answer larger than the {_size(limit)} limit; "
        "that is not a PubMed answer: check EUTILS_BASE_URL, or use a smaller --batch-size."
    )


def _size(limit: int) -> str:
    return f"{limit // 1048576} MB" if limit % 1048576 == 0 else f"{limit:,} bytes"


def _times(n: int) -> str:
    return "once" if n == 1 else f"{n} times"
