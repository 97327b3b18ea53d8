"""Harvest PubMed into the database: esearch, date windows past 9,999 results, efetch in committed batches."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from db.clock import utcnow
from db.corpus.runs import finish_run, last_successful_run, start_run
from db.engine import describe_operational_error, init_db, open_session
from db.errors import DatabaseError
from db.models import HarvestRun
from db.ops.locks import job_lock
from db.settings import Settings
from db.vocab import RunStatus
from ingest.batch_sizes import DEFAULT_BATCH_SIZE
from ingest.date_windows import DateWindow, ncbi_day, plan_windows
from ingest.eutils import ConfigurationError, EutilsClient
from ingest.eutils_answers import EutilsError, HistoryExpiredError, SearchResult, only_asked
from ingest.items import to_stored_items
from ingest.records import DeletedCitation, PubmedRecord
from ingest.store import store_batch

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_QUERY",
    "ESEARCH_LIMIT",
    "ConfigurationError",
    "DateWindow",
    "harvest",
    "term_since",
]

logger = logging.getLogger(__name__)

_DRUGS = (
    '"Ketamine"[MeSH Terms]',  # NLM indexes esketamine and arketamine papers under this heading too
    "ketamine[tiab]",
    "esketamine[tiab]",
    "arketamine[tiab]",
)
_CONDITIONS = (
    '"Depression"[MeSH Terms]',
    '"Depressive Disorder"[MeSH Terms]',  # explodes to major, treatment-resistant, postpartum, ...
    '"Depressive Disorder, Treatment-Resistant"[MeSH Terms]',
    # MeSH has no "bipolar depression" heading; the bipolar heading is the nearest, reviewers sort the rest.
    '"Bipolar Disorder"[MeSH Terms]',
    '"Suicidal Ideation"[MeSH Terms]',
    # [tiab] catches records not yet MeSH-indexed (the newest ones). "depression" also matches
    # "respiratory depression" in anaesthesia papers: recall first, screening happens downstream.
    "depression[tiab]",
    "depressive[tiab]",
    '"treatment-resistant depression"[tiab]',
    '"bipolar depression"[tiab]',
    '"suicidal ideation"[tiab]',
)
DEFAULT_QUERY = f"({' OR '.join(_DRUGS)}) AND ({' OR '.join(_CONDITIONS)})"

# A harvest that runs longer than this stops (keeping its committed batches) rather than hold the
# harvest lock past the next night's run: the whole literature takes well under an hour at 3 requests/s.
DEFAULT_TIME_LIMIT = 6 * 3600.0
MAX_BATCH_SIZE = 10_000  # the most efetch returns in one answer
MAX_RESEARCHES = 3  # fresh searches per window when the history server drops one
# PubMed's esearch cannot page past the first 9,999 results of a search (history included).
ESEARCH_LIMIT = 9_999

Progress = Callable[[int, int], None]


def term_since(query: str, since: date | None) -> str:
    """The query restricted to records added (EDAT) or revised (MDAT) on or after `since`."""
    if since is None:
        return query
    day = ncbi_day(since)
    return f'({query}) AND (("{day}"[EDAT] : "3000"[EDAT]) OR ("{day}"[MDAT] : "3000"[MDAT]))'


def harvest(
    settings: Settings,
    *,
    query: str = DEFAULT_QUERY,
    since: date | None = None,
    full: bool = False,
    max_records: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Progress | None = None,
    client: EutilsClient | None = None,
    max_per_window: int = ESEARCH_LIMIT,
    clock: Callable[[], datetime] = utcnow,
    time_limit: float | None = DEFAULT_TIME_LIMIT,
) -> HarvestRun:
    """Search PubMed and store every matching record, one committed transaction per batch.

    Without `since`, a query harvested successfully before asks only for what was added or
    revised since that run started, less a day of overlap; `full` asks for everything again. The run log records how it went;
    an E-utilities failure marks the run failed and is re-raised. `clock` (aware UTC) stamps the run
    and bounds the date windows; tests pass a fixed one so the windows never follow the calendar.
    `time_limit` (seconds, on the client's monotonic clock) ends a harvest that runs too long as failed,
    its committed batches kept; every single answer has its own deadline in the client.
    """
    _check_options(query, max_records, batch_size, max_per_window, time_limit)
    own_client = client is None
    if client is None:
        client = EutilsClient.from_settings(settings)  # ConfigurationError without NCBI_EMAIL
    url = settings.database_url
    try:
        init_db(url)
        # One harvest at a time per database: a second one raises LockBusyError naming the first.
        with job_lock(url, "harvest") as lock, open_session(url) as session:
            if since is None and not full:
                previous = last_successful_run(session, query)
                if previous is not None:
                    since = previous.started_at.date() - timedelta(days=1)
            run = start_run(session, "harvest", query, since, started_at=clock())
            _run_logged(
                session,
                run,
                client,
                term_since(query, since),
                max_records=max_records,
                batch_size=batch_size,
                progress=progress,
                max_per_window=max_per_window,
                check_lock=_with_time_limit(lock.check, client, time_limit),
                today=run.started_at.date(),
            )
            return run
    except OperationalError as exc:
        raise DatabaseError(describe_operational_error(url, exc)) from exc
    finally:
        if own_client:
            client.close()


def _with_time_limit(
    check_lock: Callable[[], None], client: EutilsClient, time_limit: float | None
) -> Callable[[], None]:
    """The lock check before each batch, and the harvest's overall time limit with it."""
    if time_limit is None:
        return check_lock
    deadline = client.clock() + time_limit

    def check() -> None:
        check_lock()
        if client.clock() > deadline:
            raise EutilsError(
                f"The harvest ran past its time limit of {_duration(time_limit)}; the batches stored so "
                "far are kept: rerun it to go on."
            )

    return check


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:g} h" if seconds >= 3600 else f"{seconds:g} s"


def _check_options(
    query: str, max_records: int | None, batch_size: int, max_per_window: int, time_limit: float | None
) -> None:
    if not query.strip():
        raise ValueError("The query is empty; give a PubMed query or leave it out to use the default.")
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise ValueError(
            f"Batch size {batch_size} is out of range; efetch takes 1 to {MAX_BATCH_SIZE:,} records a request."
        )
    if max_records is not None and max_records < 1:
        raise ValueError(f"The maximum number of records must be 1 or more, not {max_records}.")
    if time_limit is not None and not time_limit > 0:
        raise ValueError(f"The time limit must be more than 0 seconds, not {time_limit:g}.")
    if not 1 <= max_per_window <= ESEARCH_LIMIT:
        raise ValueError(f"max_per_window must be 1 to {ESEARCH_LIMIT:,}, not {max_per_window}.")


def _run_logged(session: Session, run: HarvestRun, client: EutilsClient, term: str, **options: Any) -> None:
    """Harvest into `run`, closing its log entry however the harvest ends."""
    first_request = client.requests_made
    try:
        _harvest_into(session, run, client, term, first_request, **options)
    except EutilsError as exc:
        _close_unfinished(session, run, client, first_request, RunStatus.FAILED, str(exc))
        raise
    except KeyboardInterrupt:
        message = "Interrupted (Ctrl-C); committed batches are kept, rerun to finish."
        _close_unfinished(session, run, client, first_request, RunStatus.INTERRUPTED, message)
        raise
    except Exception as exc:
        text = str(exc).strip().splitlines()
        _close_unfinished(
            session,
            run,
            client,
            first_request,
            RunStatus.FAILED,
            f"{type(exc).__name__}: {text[0] if text else ''}",
        )
        raise
    run.requests_made = client.requests_made - first_request
    finish_run(session, run, RunStatus.SUCCEEDED)
    logger.info(
        "Harvest finished: %d new, %d updated, %d unchanged, %d failed; %d requests.",
        run.records_new,
        run.records_updated,
        run.records_unchanged,
        run.records_failed,
        run.requests_made,
    )


def _harvest_into(
    session: Session,
    run: HarvestRun,
    client: EutilsClient,
    term: str,
    first_request: int,
    *,
    max_records: int | None,
    batch_size: int,
    progress: Progress | None,
    max_per_window: int,
    check_lock: Callable[[], None],
    today: date,
) -> None:
    search = client.esearch(term, usehistory=True)
    logger.info("PubMed has %d records for %s", search.count, search.query_translation or term)
    if search.count == 0:
        windows: list[DateWindow] = []  # nothing new: no efetch at all
    elif search.count <= max_per_window:
        windows = [DateWindow(None, None, search)]
    else:
        windows = _split_into_windows(client, term, search.count, max_per_window, today)
    run.query_translation = search.query_translation
    run.count = search.count
    run.windows = [window.as_dict() for window in windows]
    run.requests_made = client.requests_made - first_request
    session.add(run)
    session.commit()

    total = search.count if max_records is None else min(search.count, max_records)
    # Windows' short last batches wait in `seams`, by PMID, and go out together in full batches:
    # a harvest in windows then makes ceil(N / batch) efetch calls, as one in a single window does.
    seams = _Seams(batch_size) if max_records is None and len(windows) > 1 else None
    done = 0

    def store(records: list[PubmedRecord | DeletedCitation], asked: int) -> None:
        nonlocal done
        check_lock()  # never write a batch after losing the lock to another harvest
        store_batch(session, run, to_stored_items(records), client.requests_made - first_request)
        done += asked
        if progress is not None:
            progress(min(done, total), total)

    for window in windows:
        retstart = 0
        searches_left = MAX_RESEARCHES
        fetched: set[int] = set()
        lacked = 0  # records this window's history batches did not return
        while retstart < window.count and (seams is not None or done < total):
            size = min(batch_size, window.count - retstart, total - done)
            if seams is not None and size < batch_size and seams.take(window, retstart, fetched, lacked):
                break
            if window.search.webenv is None or window.search.query_key is None:
                raise EutilsError(
                    "esearch gave no WebEnv/QueryKey although usehistory=y was sent; "
                    "check that EUTILS_BASE_URL points at E-utilities."
                )
            try:
                records = _listed(
                    window, client.fetch_batch(window.search.webenv, window.search.query_key, retstart, size)
                )
            except HistoryExpiredError:
                # A long harvest can outlive its WebEnv: search the window again and go on. If PubMed
                # changed meanwhile, the window is fetched again from its start (upserts are idempotent).
                searches_left -= 1
                if searches_left < 0:
                    raise
                fresh, restart_at = _search_again(client, term, window, retstart)
                if max_records is None:
                    total += fresh.count - window.count  # PubMed may have added or dropped records
                done -= retstart - restart_at  # a window fetched again is counted once
                if restart_at == 0:
                    fetched.clear()
                    lacked = 0
                window, retstart = fresh, restart_at
                continue
            got = {record.pmid for record in records if isinstance(record, PubmedRecord)}
            fetched |= got
            if len(got) < size:
                # PubMed dropped some (deleted since the search) or the parser skipped damaged ones.
                logger.warning("Asked for %d records at %d, got %d.", size, retstart, len(got))
                run.records_failed += size - len(got)
                lacked += size - len(got)
            store(records, size)
            retstart += size
        while seams is not None and (pmids := seams.full_batch()):
            store(_fetch_seam(client, run, seams, pmids), len(pmids))
    if seams is not None and (pmids := seams.rest()):
        store(_fetch_seam(client, run, seams, pmids), len(pmids))
    if seams is not None and seams.missing:
        run.records_failed -= seams.missing  # counted missing from a window, then found by PMID
        session.add(run)
        session.commit()


class _Seams:
    """PMIDs of windows' short last batches, fetched by PMID in full batches.

    A window's PMIDs come with its search (in the same esearch answer). What a window still
    owes is its PMIDs less those its history batches returned, whatever order the history server
    keeps, so no record can fall between two windows.
    """

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self.pmids: list[int] = []
        # Records taken here that their window's history batches lacked (see take).
        self.missing = 0

    def take(self, window: DateWindow, retstart: int, fetched: set[int], lacked: int) -> bool:
        """Take the rest of `window` from `retstart`; False if its search gave no PMIDs to go by.

        `lacked`: records its history batches asked for and did not get (counted failed already).
        They are among the PMIDs taken, so they are asked again, and not counted twice.
        """
        ids = window.search.ids
        if len(ids) != window.count:
            return False
        owed = [pmid for pmid in ids if pmid not in fetched]
        if len(owed) < window.count - retstart:
            return False  # the history batches returned records the search did not list: play safe
        self.pmids.extend(owed)
        self.missing += lacked
        return True

    def full_batch(self) -> list[int]:
        return self._pop() if len(self.pmids) >= self.batch_size else []

    def rest(self) -> list[int]:
        return self._pop()

    def _pop(self) -> list[int]:
        batch, self.pmids = self.pmids[: self.batch_size], self.pmids[self.batch_size :]
        return batch


def _fetch_seam(
    client: EutilsClient, run: HarvestRun, seams: _Seams, pmids: list[int]
) -> list[PubmedRecord | DeletedCitation]:
    records = client.fetch_ids(pmids)
    lacking = len(pmids) - sum(isinstance(record, PubmedRecord) for record in records)
    already = min(lacking, seams.missing)  # missing from their window's batches too: counted there
    seams.missing -= already
    if lacking:
        logger.warning("Asked for %d records by PMID, got %d.", len(pmids), len(pmids) - lacking)
        run.records_failed += lacking - already
    return records


def _listed(
    window: DateWindow, records: list[PubmedRecord | DeletedCitation]
) -> list[PubmedRecord | DeletedCitation]:
    """A window's batch, less records its search never listed (when the search listed them all)."""
    ids = window.search.ids
    return only_asked(records, ids) if ids and len(ids) == window.count else records


def _search_again(
    client: EutilsClient, term: str, window: DateWindow, retstart: int
) -> tuple[DateWindow, int]:
    """A fresh history-server search for `window`, and where to go on fetching it."""
    if window.mindate is None or window.maxdate is None:
        search = client.esearch(term, usehistory=True)
    else:
        search = client.esearch(
            term,
            usehistory=True,
            mindate=window.mindate,
            maxdate=window.maxdate,
            datetype="edat",
            retmax=len(window.search.ids),
        )
    logger.warning("The history server dropped the search; searched again (%d records).", search.count)
    fresh = DateWindow(window.mindate, window.maxdate, search)
    return fresh, retstart if search.count == window.count else 0


def _split_into_windows(
    client: EutilsClient, term: str, total: int, limit: int, today: date
) -> list[DateWindow]:
    """Date windows of at most `limit` records that must add up to the whole search's `total`."""
    tomorrow = today + timedelta(days=1)  # NCBI dates are US Eastern; a day of slack covers it

    def search(start: date, end: date) -> SearchResult:
        # retmax: the window's PMIDs come in the same answer, for the seams between windows.
        return client.esearch(
            term, usehistory=True, mindate=start, maxdate=end, datetype="edat", retmax=limit
        )

    plan = plan_windows(search, total, limit, tomorrow)
    found = sum(window.count for window in plan.windows)
    logger.info(
        "Split %d records into %d date windows (%d searches).", total, len(plan.windows), plan.searches
    )
    if found != total:
        raise EutilsError(
            f"The {len(plan.windows)} date windows add up to {found:,} records but PubMed reported {total:,} "
            "for the whole query; PubMed may have changed during the harvest, so rerun it."
        )
    return plan.windows


def _close_unfinished(
    session: Session,
    run: HarvestRun,
    client: EutilsClient,
    first_request: int,
    status: RunStatus,
    message: str,
) -> None:
    """Log how the run ended; never let that mask the error that ended it."""
    try:
        session.rollback()  # the failing batch is dropped whole; committed ones stay
        run.requests_made = client.requests_made - first_request
        finish_run(session, run, status, message)
    except Exception:  # noqa: BLE001  (the database itself may be what failed)
        logger.exception("Could not record the end of harvest run %s", run.id)
