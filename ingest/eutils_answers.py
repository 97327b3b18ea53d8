"""E-utilities answers read for what they are: search results, records, and the failures a 200 can hide.

Empty bodies, HTML pages, `<ERROR>` payloads, truncated XML and odd values are failures here, never
data; each says whether a retry may get past it (Retryable) or not (EutilsError and its kinds).
"""

from __future__ import annotations

import json
import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass

from ingest.pubmed_xml import PubmedFormatError, parse_efetch_response
from ingest.records import DeletedCitation, PubmedRecord

logger = logging.getLogger(__name__)

_HEAD_BYTES = 4096
_MAX_DETAIL = 160
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


class EutilsError(RuntimeError):
    """E-utilities could not answer usefully; the one-line message names the cause and what to do."""


class InvalidQueryError(EutilsError):
    """PubMed rejected the query (unknown phrase or field, bad syntax); retrying will not help."""


class HistoryExpiredError(EutilsError):
    """The history server no longer holds the search (WebEnv sessions expire after hours of idling);
    retrying the same WebEnv will not help, searching again will."""


class AnswerTooLargeError(EutilsError):
    """An answer went past the size limit; retrying would only read it again."""


class Retryable(Exception):
    """One failed attempt that a later attempt may get past."""

    def __init__(self, kind: str, summary: str) -> None:
        super().__init__(summary)
        self.kind = kind  # rate_limit | server | timeout | connection | body
        self.summary = summary


@dataclass(frozen=True, slots=True)
class SearchResult:
    count: int
    query_key: str | None
    webenv: str | None
    query_translation: str | None
    ids: tuple[int, ...] = ()
    phrases_not_found: tuple[str, ...] = ()


# --- reading answers ------------------------------------------------------------------------------


def read_search_result(data: bytes) -> SearchResult:
    reject_unusable(data, query_errors=True)
    try:
        # expat loads no DTD and resolves no external entities, so the DOCTYPE costs nothing.
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise Retryable("body", f"answered with truncated or malformed XML ({first_line(exc)})") from exc
    if root.tag != "eSearchResult" or root.findtext("Count") is None:
        raise Retryable("body", f"answered with <{root.tag}> XML instead of an esearch result")
    count = int_text(root.findtext("Count"))
    if count < 0:
        raise Retryable("body", f"answered with a negative Count ({count}) in an esearch result")
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
    ids = tuple(int_text(e.text) for e in root.iterfind("IdList/Id"))
    return SearchResult(
        count=count,
        query_key=root.findtext("QueryKey"),
        webenv=root.findtext("WebEnv"),
        query_translation=root.findtext("QueryTranslation"),
        ids=ids,
        phrases_not_found=phrases,
    )


def read_records(data: bytes) -> list[PubmedRecord | DeletedCitation]:
    reject_unusable(data, query_errors=False)
    try:
        return parse_efetch_response(data)
    except PubmedFormatError as exc:
        # A body cut off mid-way is the usual cause, and a retry usually gets it whole.
        raise Retryable("body", f"answered with unusable PubMed XML ({first_line(exc)})") from exc


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


def checked_efetch(data: bytes) -> bytes:
    read_records(data)
    return data


def reject_unusable(data: bytes, *, query_errors: bool) -> None:
    """Empty bodies, HTML pages and <ERROR> answers are failures even when the status is 200."""
    head = data[:_HEAD_BYTES].lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head:
        raise Retryable("body", "answered with an empty body")
    lowered = head[:200].lower()
    if lowered.startswith((b"<!doctype html", b"<html")) or (
        b"<html" in lowered and not lowered.startswith(b"<?xml")
    ):
        raise Retryable("body", html_summary(data))
    if head.startswith(b"{"):
        raise Retryable("body", f"answered with JSON instead of XML{body_hint(data)}")
    match = _ERROR_ELEMENT.search(head)
    if match:
        text = clip(match.group(1).decode("utf-8", "replace"))
        if query_errors and _QUERY_ERROR.search(text):
            raise InvalidQueryError(
                f"PubMed rejected the query: {text!r}; check its syntax (quotes, brackets, field tags)."
            )
        if not query_errors and _HISTORY_GONE.search(text):
            raise HistoryExpiredError(
                f"The history server no longer holds the search ({text!r}); search again for a new WebEnv."
            )
        raise Retryable("body", f"answered with an <ERROR> body ({text!r})")


def html_summary(data: bytes) -> str:
    title = _HTML_TITLE.search(data[:_HEAD_BYTES])
    if title:
        text = clip(title.group(1).decode("utf-8", "replace"))
        return f"answered with an HTML page ({text!r}) instead of XML"
    return "answered with an HTML page instead of XML"


def body_hint(data: bytes) -> str:
    """' (the error NCBI gave)' from a short JSON or text body, or '' when there is nothing useful."""
    text = data[:_HEAD_BYTES].decode("utf-8", "replace").strip()
    if not text:
        return ""
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if isinstance(value, dict) and isinstance(value.get("error"), str):
        return f" ({clip(value['error'])})"
    if text.startswith("<"):
        return ""
    return f" ({clip(text)})"


def int_text(text: str | None) -> int:
    try:
        return int((text or "").strip())
    except ValueError as exc:
        raise Retryable("body", f"answered with a non-numeric value {text!r} where a number belongs") from exc


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return clip(text.splitlines()[0] if text else type(exc).__name__)


def clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"
