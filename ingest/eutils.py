"""A polite NCBI E-utilities client: identity, a process-wide rate limit, retries with backoff."""

from __future__ import annotations

import json
import logging
import random
import re
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar
from urllib.parse import urlencode

import requests
import urllib3

from db.settings import TOOL_NAME, Settings
from ingest.pubmed_xml import PubmedFormatError, parse_efetch_response
from ingest.records import DeletedCitation, PubmedRecord

logger = logging.getLogger(__name__)

T = TypeVar("T")

# NCBI's published limits: 3 requests/s per IP without an API key, 10/s with one.
RATE_WITHOUT_KEY = 3.0
RATE_WITH_KEY = 10.0
# Past about 2,000 characters some proxies refuse a URL; NCBI recommends POST for long requests.
POST_ABOVE_CHARS = 1800
_HEAD_BYTES = 4096
_MAX_DETAIL = 160
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

_ERROR_ELEMENT = re.compile(rb"<ERROR>(.*?)</ERROR>", re.S)
_HTML_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.S | re.I)
# efetch's <ERROR> when the WebEnv/query_key is unknown to the history server (expired or never made).
_HISTORY_GONE = re.compile(
    r"unable to obtain query|invalid (webenv|query_key)|webenv.*(expired|not found)", re.I
)
# <ERROR> texts from esearch that mean the query itself is wrong, so retrying cannot help.
_QUERY_ERROR = re.compile(
    r"syntax|invalid (query|term)|unbalanced|unmatched|parenthes|quotation|phrase not found"
    r"|field not found|unknown field|empty term|term too long",
    re.I,
)


class ConfigurationError(ValueError):
    """A setting the harvester needs is missing or invalid; the message says which and how to set it."""


class EutilsError(RuntimeError):
    """E-utilities could not answer usefully; the one-line message names the cause and what to do."""


class InvalidQueryError(EutilsError):
    """PubMed rejected the query (unknown phrase or field, bad syntax); retrying will not help."""


class HistoryExpiredError(EutilsError):
    """The history server no longer holds the search (WebEnv sessions expire after hours of idling);
    retrying the same WebEnv will not help, searching again will."""


class AnswerTooLargeError(EutilsError):
    """An answer went past the size limit; retrying would only read it again."""


class _Retryable(Exception):
    """One failed attempt that a later attempt may get past."""

    def __init__(self, kind: str, summary: str) -> None:
        super().__init__(summary)
        self.kind = kind  # rate_limit | server | timeout | connection | body
        self.summary = summary


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


@dataclass(frozen=True, slots=True)
class SearchResult:
    count: int
    query_key: str | None
    webenv: str | None
    query_translation: str | None
    ids: tuple[int, ...] = ()
    phrases_not_found: tuple[str, ...] = ()


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
        return self._call("esearch", params, _read_search_result)

    def efetch(self, webenv: str, query_key: str, retstart: int, retmax: int) -> bytes:
        """PubMed XML for a slice of a history set; the body is checked to be whole PubMed XML."""
        return self._call("efetch", _efetch_params(webenv, query_key, retstart, retmax), _checked_efetch)

    def fetch_batch(
        self, webenv: str, query_key: str, retstart: int, retmax: int
    ) -> list[PubmedRecord | DeletedCitation]:
        """Parsed records for a slice of a history set (one efetch, retried as a whole)."""
        return self._call("efetch", _efetch_params(webenv, query_key, retstart, retmax), _read_records)

    def fetch_ids(self, pmids: Sequence[int]) -> list[PubmedRecord | DeletedCitation]:
        """Parsed records for PMIDs named outright (one efetch, sent as POST when the list is long)."""
        params = {"db": "pubmed", "id": ",".join(str(pmid) for pmid in pmids), "retmode": "xml"}
        return only_asked(self._call("efetch", params, _read_records), pmids)

    # --- transport -----------------------------------------------------------------------------

    def _call(self, endpoint: str, params: dict[str, str], read: Callable[[bytes], T]) -> T:
        url = f"{self.base_url}{endpoint}.fcgi"
        params = {**params, "tool": self.tool, "email": self.email}
        if self.api_key:
            params["api_key"] = self.api_key
        use_post = len(urlencode(params)) > POST_ABOVE_CHARS
        failures: list[_Retryable] = []
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
            except _Retryable as failure:
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
                f"EUTILS_BASE_URL {self.base_url!r} is not a usable URL ({_first_line(exc)}); "
                "set it to https://eutils.ncbi.nlm.nih.gov/entrez/eutils/ or a mirror."
            ) from exc
        except requests.exceptions.InvalidSchema as exc:
            raise EutilsError(
                f"EUTILS_BASE_URL {self.base_url!r} is not an http(s) URL; "
                "set it to https://eutils.ncbi.nlm.nih.gov/entrez/eutils/ or a mirror."
            ) from exc
        except requests.Timeout as exc:
            raise _Retryable("timeout", f"did not answer within {self.timeout:g} s") from exc
        except requests.ConnectionError as exc:
            detail = _connection_detail(exc)
            if detail == "host name not found":
                # DNS answers the same on a retry a few seconds later: say so now, not after minutes.
                raise EutilsError(
                    f"Cannot reach NCBI E-utilities at {self.base_url} (host name not found); "
                    "check your network (are you offline?) or EUTILS_BASE_URL."
                ) from exc
            raise _Retryable("connection", detail) from exc
        except requests.RequestException as exc:  # broken chunked transfer, bad encoding, ...
            raise _Retryable("connection", f"broke off the answer ({_first_line(exc)})") from exc
        status = response.status_code
        if status == 429:
            raise _Retryable("rate_limit", "answered HTTP 429 (rate limit)")
        if status >= 500:
            raise _Retryable("server", f"answered HTTP {status} (server error)")
        if status != 200:
            # 4xx other than 429 is about the request (wrong base URL, bad API key): retrying won't help.
            raise EutilsError(
                f"NCBI E-utilities answered HTTP {status} for {endpoint} at {url}"
                f"{_body_hint(body)}; check EUTILS_BASE_URL and NCBI_API_KEY."
            )
        if "text/html" in response.headers.get("Content-Type", "").lower():
            raise _Retryable("body", _html_summary(body))
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
                raise _Retryable("timeout", f"did not finish its answer within {self.answer_deadline:g} s")
        return b"".join(chunks)

    def _give_up_message(self, endpoint: str, failures: list[_Retryable]) -> str:
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


# --- reading answers ------------------------------------------------------------------------------


def _read_search_result(data: bytes) -> SearchResult:
    _reject_unusable(data, query_errors=True)
    try:
        # expat loads no DTD and resolves no external entities, so the DOCTYPE costs nothing.
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise _Retryable("body", f"answered with truncated or malformed XML ({_first_line(exc)})") from exc
    if root.tag != "eSearchResult" or root.findtext("Count") is None:
        raise _Retryable("body", f"answered with <{root.tag}> XML instead of an esearch result")
    count = _int_text(root.findtext("Count"))
    if count < 0:
        raise _Retryable("body", f"answered with a negative Count ({count}) in an esearch result")
    errors = root.find("ErrorList")
    phrases = tuple(e.text or "" for e in errors.iterfind("PhraseNotFound")) if errors is not None else ()
    fields = tuple(e.text or "" for e in errors.iterfind("FieldNotFound")) if errors is not None else ()
    if count == 0 and (phrases or fields):
        # Without a match for its phrase PubMed searches nothing: a typo, not an empty result.
        if phrases:
            named = ", ".join(repr(p) for p in phrases)
            raise InvalidQueryError(
                f"PubMed does not know the phrase {named} in the query (PhraseNotFound); "
                "check its spelling and field tags, then rerun."
            )
        named = ", ".join(repr(f) for f in fields)
        raise InvalidQueryError(
            f"PubMed does not know the search field {named} in the query (FieldNotFound); "
            "use a field tag PubMed lists, such as [tiab] or [mh]."
        )
    if phrases:
        logger.warning("PubMed ignored phrases it does not know: %s", ", ".join(phrases))
    ids = tuple(_int_text(e.text) for e in root.iterfind("IdList/Id"))
    return SearchResult(
        count=count,
        query_key=root.findtext("QueryKey"),
        webenv=root.findtext("WebEnv"),
        query_translation=root.findtext("QueryTranslation"),
        ids=ids,
        phrases_not_found=phrases,
    )


def _read_records(data: bytes) -> list[PubmedRecord | DeletedCitation]:
    _reject_unusable(data, query_errors=False)
    try:
        return parse_efetch_response(data)
    except PubmedFormatError as exc:
        # A body cut off mid-way is the usual cause, and a retry usually gets it whole.
        raise _Retryable("body", f"answered with unusable PubMed XML ({_first_line(exc)})") from exc


def only_asked(
    records: list[PubmedRecord | DeletedCitation], pmids: Sequence[int]
) -> list[PubmedRecord | DeletedCitation]:
    """The records whose PMID was asked for: an answer is never a way to slip others in."""
    asked = set(pmids)
    kept = [record for record in records if record.pmid in asked]
    if len(kept) < len(records):
        strays = sorted({record.pmid for record in records} - asked)
        logger.warning(
            "efetch sent %d record(s) not asked for (PMIDs %s...); left out.", len(strays), strays[:5]
        )
    return kept


def _checked_efetch(data: bytes) -> bytes:
    _read_records(data)
    return data


def _reject_unusable(data: bytes, *, query_errors: bool) -> None:
    """Empty bodies, HTML pages and <ERROR> answers are failures even when the status is 200."""
    head = data[:_HEAD_BYTES].lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head:
        raise _Retryable("body", "answered with an empty body")
    lowered = head[:200].lower()
    if lowered.startswith((b"<!doctype html", b"<html")) or (
        b"<html" in lowered and not lowered.startswith(b"<?xml")
    ):
        raise _Retryable("body", _html_summary(data))
    if head.startswith(b"{"):
        raise _Retryable("body", f"answered with JSON instead of XML{_body_hint(data)}")
    match = _ERROR_ELEMENT.search(head)
    if match:
        text = _clip(match.group(1).decode("utf-8", "replace"))
        if query_errors and _QUERY_ERROR.search(text):
            raise InvalidQueryError(
                f"PubMed rejected the query: {text!r}; check its syntax (quotes, brackets, field tags)."
            )
        if not query_errors and _HISTORY_GONE.search(text):
            raise HistoryExpiredError(
                f"The history server no longer holds the search ({text!r}); search again for a new WebEnv."
            )
        raise _Retryable("body", f"answered with an <ERROR> body ({text!r})")


def _html_summary(data: bytes) -> str:
    title = _HTML_TITLE.search(data[:_HEAD_BYTES])
    if title:
        text = _clip(title.group(1).decode("utf-8", "replace"))
        return f"answered with an HTML page ({text!r}) instead of XML"
    return "answered with an HTML page instead of XML"


def _body_hint(data: bytes) -> str:
    """' (the error NCBI gave)' from a short JSON or text body, or '' when there is nothing useful."""
    text = data[:_HEAD_BYTES].decode("utf-8", "replace").strip()
    if not text:
        return ""
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if isinstance(value, dict) and isinstance(value.get("error"), str):
        return f" ({_clip(value['error'])})"
    if text.startswith("<"):
        return ""
    return f" ({_clip(text)})"


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
    return _first_line(exc)


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


def _int_text(text: str | None) -> int:
    try:
        return int((text or "").strip())
    except ValueError as exc:
        raise _Retryable(
            "body", f"answered with a non-numeric value {text!r} where a number belongs"
        ) from exc


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


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return _clip(text.splitlines()[0] if text else type(exc).__name__)


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"
