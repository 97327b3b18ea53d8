"""A fake NCBI E-utilities server on loopback: synthetic PubMed records, a history server, injected faults."""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date, timedelta
from enum import StrEnum
from xml.sax.saxutils import escape

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

PUBMED_DOCTYPE = (
    '<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2025//EN" '
    '"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">'
)
ESEARCH_DOCTYPE = (
    '<!DOCTYPE eSearchResult PUBLIC "-//NLM//DTD esearch 20060628//EN" '
    '"https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20060628/esearch.dtd">'
)
# The shape of NCBI's real 429 body (see ../shared/data/ncbi-errors/rate-limit-429_*.json).
RATE_LIMIT_BODY = '{"error":"API rate limit exceeded","api-key":"127.0.0.1","count":"5","limit":"3"}'
HTML_PAGE = (
    "<!DOCTYPE html><html><head><title>NCBI - WWW Error Blocked Diagnostic</title></head>"
    "<body><h1>Service temporarily unavailable</h1></body></html>"
)
_SINCE_CLAUSE = re.compile(
    r'\(\("(\d{4}/\d{2}/\d{2})"\[EDAT\] : "3000"\[EDAT\]\) OR \("(\d{4}/\d{2}/\d{2})"\[MDAT\] : "3000"\[MDAT\]\)\)'
)
_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


class Fault(StrEnum):
    RATE_LIMIT = "429"
    SERVER_ERROR = "500"
    BAD_GATEWAY = "502"
    UNAVAILABLE = "503"
    TRUNCATED = "truncated"  # a 200 whose XML stops half-way
    ERROR_BODY = "error"  # a 200 holding NCBI's <ERROR> element
    HTML = "html"  # a 200 with an HTML error page
    SLOW = "slow"  # the right answer, after `slow_seconds`
    HANG = "hang"  # signals `hung`, then waits for `release` before answering


@dataclass(frozen=True)
class FakeRecord:
    pmid: int
    title: str
    entrez_date: date
    date_revised: date
    abstract: str = "Ketamine was compared with placebo in adults with treatment-resistant depression."

    @property
    def year(self) -> int:
        return self.entrez_date.year


@dataclass(frozen=True)
class SeenRequest:
    endpoint: str
    method: str
    params: dict[str, str]
    at: float  # time.monotonic() when the server received it


def make_records(
    count: int, *, first_pmid: int = 30_000_001, first_day: date = date(2020, 1, 1), per_day: int = 1
) -> list[FakeRecord]:
    """`count` distinct records, `per_day` of them entered on each day from `first_day` on."""
    return [
        FakeRecord(
            pmid=first_pmid + i,
            title=f"Ketamine for depression: synthetic trial {i + 1}.",
            entrez_date=first_day + timedelta(days=i // per_day),
            date_revised=first_day + timedelta(days=i // per_day + 30),
        )
        for i in range(count)
    ]


def article_xml(record: FakeRecord) -> str:
    """One <PubmedArticle>, valid against the PubMed DTD of 2025."""
    pmid = record.pmid
    edat = record.entrez_date
    rev = record.date_revised
    doi = f"10.5555/synthetic.{pmid}"
    return (
        '<PubmedArticle><MedlineCitation Status="MEDLINE" Owner="NLM" IndexingMethod="Automated">'
        f'<PMID Version="1">{pmid}</PMID>'
        f"<DateRevised>{_ymd(rev)}</DateRevised>"
        '<Article PubModel="Print-Electronic"><Journal>'
        '<ISSN IssnType="Electronic">1234-5678</ISSN>'
        '<JournalIssue CitedMedium="Internet"><Volume>12</Volume><Issue>3</Issue>'
        f"<PubDate><Year>{edat.year}</Year><Month>{_MONTHS[edat.month - 1]}</Month></PubDate></JournalIssue>"
        "<Title>Journal of synthetic psychiatry</Title><ISOAbbreviation>J Synth Psychiatry</ISOAbbreviation>"
        f"</Journal><ArticleTitle>{escape(record.title)}</ArticleTitle>"
        f'<ELocationID EIdType="doi" ValidYN="Y">{doi}</ELocationID>'
        '<Abstract><AbstractText Label="BACKGROUND" NlmCategory="BACKGROUND">'
        f"{escape(record.abstract)}</AbstractText>"
        '<AbstractText Label="RESULTS" NlmCategory="RESULTS">Response rates were 52% and 21% '
        "(<i>p</i> &lt; 0.01).</AbstractText></Abstract>"
        '<AuthorList CompleteYN="Y"><Author ValidYN="Y"><LastName>Doe</LastName><ForeName>Jane</ForeName>'
        '<Initials>J</Initials></Author><Author ValidYN="Y"><CollectiveName>Synthetic Trials Group'
        "</CollectiveName></Author></AuthorList>"
        "<Language>eng</Language>"
        '<PublicationTypeList><PublicationType UI="D016428">Journal Article</PublicationType>'
        '<PublicationType UI="D016449">Randomized Controlled Trial</PublicationType></PublicationTypeList>'
        "</Article>"
        "<MedlineJournalInfo><Country>United States</Country><MedlineTA>J Synth Psychiatry</MedlineTA>"
        "<NlmUniqueID>101999999</NlmUniqueID><ISSNLinking>1234-5678</ISSNLinking></MedlineJournalInfo>"
        '<MeshHeadingList><MeshHeading><DescriptorName UI="D007649" MajorTopicYN="Y">Ketamine</DescriptorName>'
        '</MeshHeading><MeshHeading><DescriptorName UI="D061218" MajorTopicYN="N">Depressive Disorder, '
        "Treatment-Resistant</DescriptorName></MeshHeading></MeshHeadingList>"
        "</MedlineCitation><PubmedData><History>"
        f'<PubMedPubDate PubStatus="entrez">{_ymd(edat)}<Hour>6</Hour><Minute>0</Minute></PubMedPubDate>'
        f'<PubMedPubDate PubStatus="pubmed">{_ymd(edat)}<Hour>6</Hour><Minute>0</Minute></PubMedPubDate>'
        "</History><PublicationStatus>ppublish</PublicationStatus><ArticleIdList>"
        f'<ArticleId IdType="pubmed">{pmid}</ArticleId><ArticleId IdType="doi">{doi}</ArticleId>'
        "</ArticleIdList></PubmedData></PubmedArticle>"
    )


def article_set_xml(records: list[FakeRecord]) -> bytes:
    body = "\n".join(article_xml(record) for record in records)
    return f'<?xml version="1.0" ?>\n{PUBMED_DOCTYPE}\n<PubmedArticleSet>\n{body}\n</PubmedArticleSet>\n'.encode()


def _ymd(day: date) -> str:
    return f"<Year>{day.year}</Year><Month>{day.month:02d}</Month><Day>{day.day:02d}</Day>"


class FakeEutils:
    """esearch and efetch over `records`, honouring the EDAT window and the incremental clause.

    `page_limit` mimics PubMed's rule that a search can page through only its first 9,999
    results: the history set keeps no more than that.
    """

    def __init__(
        self,
        server: HTTPServer,
        records: list[FakeRecord],
        *,
        page_limit: int = 9_999,
        slow_seconds: float = 1.0,
        unknown_phrases: tuple[str, ...] = ("abcXYZ",),
    ) -> None:
        self.server = server
        self.records = list(records)
        self.page_limit = page_limit
        self.slow_seconds = slow_seconds
        self.unknown_phrases = unknown_phrases
        self.seen: list[SeenRequest] = []
        self.hung = threading.Event()
        self.release = threading.Event()
        self._faults: dict[str, deque[Fault | None]] = {"esearch": deque(), "efetch": deque()}
        self._always: dict[str, Fault | None] = {"esearch": None, "efetch": None}
        self._history: dict[tuple[str, str], list[int]] = {}
        self.expire_history_on_every_fetch = False
        # NCBI does not promise that a search lists its PMIDs in its history set's order.
        self.list_ids_reversed = False
        self.served: list[int] = []  # every PMID efetch answered with, in order
        self._webenvs = itertools.count(1)
        self._lock = threading.Lock()
        server.expect_request(re.compile(r"/(esearch|efetch)\.fcgi$")).respond_with_handler(self._handle)

    @property
    def base_url(self) -> str:
        return self.server.url_for("/")

    # --- test controls --------------------------------------------------------------------------

    def inject(self, endpoint: str, *faults: Fault | None) -> None:
        """The next requests to `endpoint` meet these faults, one each, in order (None: answer normally)."""
        self._faults[endpoint].extend(faults)

    def fail_always(self, endpoint: str, fault: Fault | None) -> None:
        self._always[endpoint] = fault

    def revise(self, pmid: int, *, title: str, on: date) -> None:
        """PubMed revised a record: new title and DateRevised (so MDAT) `on`."""
        self.records = [
            replace(record, title=title, date_revised=on) if record.pmid == pmid else record
            for record in self.records
        ]

    def expire_history(self) -> None:
        """The history server forgets every search, as when a WebEnv session expires."""
        with self._lock:
            self._history.clear()

    def delete(self, pmid: int) -> None:
        self.records = [record for record in self.records if record.pmid != pmid]

    def requests_to(self, endpoint: str) -> list[SeenRequest]:
        return [request for request in self.seen if request.endpoint == endpoint]

    # --- HTTP ---------------------------------------------------------------------------------

    def _handle(self, request: Request) -> Response:
        endpoint = request.path.rsplit("/", 1)[-1].removesuffix(".fcgi")
        params = {key: request.values[key] for key in request.values}
        with self._lock:
            self.seen.append(SeenRequest(endpoint, request.method, params, time.monotonic()))
            fault = self._faults[endpoint].popleft() if self._faults[endpoint] else self._always[endpoint]
        if fault in (Fault.RATE_LIMIT, Fault.SERVER_ERROR, Fault.BAD_GATEWAY, Fault.UNAVAILABLE):
            return _fault_response(fault)
        if fault is Fault.HTML:
            return Response(HTML_PAGE, status=200, content_type="text/html; charset=UTF-8")
        if fault is Fault.ERROR_BODY:
            return _xml(_error_body(endpoint))
        if fault is Fault.SLOW:
            time.sleep(self.slow_seconds)
        if fault is Fault.HANG:
            self.hung.set()
            self.release.wait(timeout=60)
        body = self._esearch(params) if endpoint == "esearch" else self._efetch(params)
        if fault is Fault.TRUNCATED:
            body = body[: len(body) // 2]
        return _xml(body)

    def _esearch(self, params: dict[str, str]) -> bytes:
        term = params.get("term", "")
        for phrase in self.unknown_phrases:
            if phrase in term:
                return _phrase_not_found(phrase, term)
        matching = self._matching(term, params)
        if matching is None:
            return _error_body("esearch", "Invalid date range: give both mindate and maxdate")
        pmids = [record.pmid for record in sorted(matching, key=lambda r: (r.entrez_date, r.pmid))]
        query_key = webenv = ""
        if params.get("usehistory") == "y":
            webenv, query_key = f"MCID_fake{next(self._webenvs):06d}", "1"
            self._history[(webenv, query_key)] = pmids[: self.page_limit]
        retmax = int(params.get("retmax", "20"))
        listed = pmids[:retmax][::-1] if self.list_ids_reversed else pmids[:retmax]
        ids = "".join(f"<Id>{pmid}</Id>" for pmid in listed)
        history = f"<QueryKey>{query_key}</QueryKey><WebEnv>{webenv}</WebEnv>" if webenv else ""
        return (
            f'<?xml version="1.0" encoding="UTF-8" ?>\n{ESEARCH_DOCTYPE}\n'
            f"<eSearchResult><Count>{len(pmids)}</Count><RetMax>{min(retmax, len(pmids))}</RetMax>"
            f"<RetStart>0</RetStart>{history}<IdList>{ids}</IdList><TranslationSet/>"
            f"<QueryTranslation>{escape(term)}</QueryTranslation></eSearchResult>\n"
        ).encode()

    def _matching(self, term: str, params: dict[str, str]) -> list[FakeRecord] | None:
        records = self.records
        clause = _SINCE_CLAUSE.search(term)
        if clause:
            edat_from, mdat_from = (_day(text) for text in clause.groups())
            records = [r for r in records if r.entrez_date >= edat_from or r.date_revised >= mdat_from]
        mindate, maxdate = params.get("mindate"), params.get("maxdate")
        if (mindate is None) != (maxdate is None):
            return None
        if mindate and maxdate:
            low, high = _day(mindate), _day(maxdate)
            # Only the Entrez date is modelled; any other datetype would be a harvester bug.
            assert params.get("datetype") == "edat", params
            records = [r for r in records if low <= r.entrez_date <= high]
        return records

    def _efetch(self, params: dict[str, str]) -> bytes:
        assert params.get("db") == "pubmed" and params.get("retmode") == "xml", params
        by_pmid = {record.pmid: record for record in self.records}
        if "id" in params:  # PMIDs named outright; deleted ones are simply missing, as on PubMed
            asked = [int(pmid) for pmid in params["id"].split(",")]
            return self._serve([by_pmid[pmid] for pmid in asked if pmid in by_pmid])
        key = (params.get("WebEnv", ""), params.get("query_key", ""))
        if self.expire_history_on_every_fetch:
            self.expire_history()
        if key not in self._history:
            return _error_body("efetch", f"Unable to obtain query #{key[1]}")
        retstart, retmax = int(params.get("retstart", "0")), int(params.get("retmax", "20"))
        pmids = self._history[key][retstart : retstart + retmax]
        if not pmids:
            return _error_body("efetch", "Empty result - nothing to do")
        # A record deleted since the search is simply missing from the answer, as on PubMed.
        return self._serve([by_pmid[pmid] for pmid in pmids if pmid in by_pmid])

    def _serve(self, records: list[FakeRecord]) -> bytes:
        with self._lock:
            self.served.extend(record.pmid for record in records)
        return article_set_xml(records)


@contextmanager
def running_server() -> Iterator[HTTPServer]:
    """A threaded loopback server, so a slow or hung answer does not hold up the next request.

    Starting and stopping costs about half a second, so test modules share one (see `cleared`).
    """
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    try:
        yield server
    finally:
        server.clear()
        server.stop()


@contextmanager
def cleared(server: HTTPServer) -> Iterator[HTTPServer]:
    """Lend a shared server to one test; afterwards fail on handler errors and forget its handlers."""
    try:
        yield server
        server.check_handler_errors()
    finally:
        server.clear()


def _fault_response(fault: Fault) -> Response:
    if fault is Fault.RATE_LIMIT:
        return Response(RATE_LIMIT_BODY, status=429, content_type="application/json")
    return Response(
        f"<html><body>{int(fault)} error</body></html>", status=int(fault), content_type="text/html"
    )


def _error_body(endpoint: str, text: str = "Search Backend failed: read timeout") -> bytes:
    root = "eSearchResult" if endpoint == "esearch" else "eFetchResult"
    return f'<?xml version="1.0" encoding="UTF-8" ?>\n<{root}>\n\t<ERROR>{escape(text)}</ERROR>\n</{root}>\n'.encode()


def _phrase_not_found(phrase: str, term: str) -> bytes:
    # Modelled on NCBI's answer in ../shared/data/ncbi-errors/biopython-esearch8.xml.
    return (
        f'<?xml version="1.0" encoding="UTF-8" ?>\n{ESEARCH_DOCTYPE}\n'
        "<eSearchResult><Count>0</Count><RetMax>0</RetMax><RetStart>0</RetStart><IdList/><TranslationSet/>"
        f"<QueryTranslation>({escape(term)}[All Fields])</QueryTranslation>"
        f"<ErrorList><PhraseNotFound>{escape(phrase)}</PhraseNotFound></ErrorList>"
        "<WarningList><OutputMessage>No items found.</OutputMessage></WarningList></eSearchResult>\n"
    ).encode()


def _xml(body: bytes) -> Response:
    return Response(body, status=200, content_type="text/xml; charset=UTF-8")


def _day(text: str) -> date:
    year, month, day = (int(part) for part in text.split("/"))
    return date(year, month, day)
