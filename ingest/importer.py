"""Importing PubMed files (XML, .xml.gz, MEDLINE/.nbib text) through the same upsert path as the harvester."""

from __future__ import annotations

import gzip
import io
import logging
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from multiprocessing.pool import AsyncResult
from pathlib import Path
from typing import IO

from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from db.engine import DatabaseError, describe_operational_error, init_db, open_session
from db.locks import job_lock
from db.models import HarvestRun, RunStatus
from db.runs import finish_run, start_run
from ingest.medline_text import iter_medline_text, looks_like_medline
from ingest.pubmed_xml import (
    PubmedFormatError,
    RecordChunk,
    iter_pubmed_xml,
    iter_record_chunks,
    parse_record_chunk,
)
from ingest.records import DeletedCitation, PubmedRecord
from ingest.store import StoredItem, store_batch, to_stored_items

log = logging.getLogger(__name__)

DEFAULT_IMPORT_BATCH = 500  # records per commit; 1,000 held peak memory above 200 MB with workers
PARALLEL_FROM_BYTES = 4 << 20  # below this, starting worker processes costs more than it saves
MAX_WORKERS = 2
_GZIP_MAGIC = b"\x1f\x8b"
Progress = Callable[[int, int | None], None]


@dataclass
class ReadPosition:
    """How many bytes of the file on disk an import has read, to estimate how far it has come."""

    size: int
    read: int = 0

    @property
    def fraction(self) -> float:
        return min(self.read / self.size, 1.0) if self.size else 0.0


class _CountingFile(io.RawIOBase):
    def __init__(self, handle: IO[bytes], position: ReadPosition) -> None:
        self._handle = handle
        self._position = position

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._handle.read(len(buffer))
        buffer[: len(data)] = data
        self._position.read += len(data)
        return len(data)


def _check_path(path: Path) -> None:
    if not path.exists():
        raise PubmedFormatError(f"{path}: no such file; check the path.")
    if path.is_dir():
        raise PubmedFormatError(f"{path}: is a folder; pass the PubMed files inside it.")


def _head(path: Path) -> bytes:
    """The first bytes of the (decompressed) content, to tell the format by."""
    try:
        with open(path, "rb") as raw:
            is_gzip = raw.read(2) == _GZIP_MAGIC
        with gzip.open(path, "rb") if is_gzip else open(path, "rb") as handle:
            return handle.read(4096)
    except (OSError, EOFError) as exc:
        raise PubmedFormatError(f"{path}: damaged gzip data ({exc}); download the file again.") from exc


@contextmanager
def _open_counted(path: Path, position: ReadPosition | None) -> Iterator[IO[bytes]]:
    with open(path, "rb") as raw:
        yield _CountingFile(raw, position) if position is not None else raw  # type: ignore[misc]


def iter_file_records(
    path: Path, position: ReadPosition | None = None
) -> Iterator[PubmedRecord | DeletedCitation]:
    """Records of a PubMed file, whichever supported format it is (decided by content, not name)."""
    _check_path(path)
    if not looks_like_medline(_head(path)):
        with _open_counted(path, position) as stream:
            yield from iter_pubmed_xml(stream, str(path))  # recognises gzip by itself
        return
    with _open_counted(path, position) as stream:
        if _is_gzip(path):
            stream = gzip.GzipFile(fileobj=stream, mode="rb")  # type: ignore[assignment]
        text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace")
        yield from iter_medline_text(text, str(path))


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as raw:
        return raw.read(2) == _GZIP_MAGIC


def iter_item_batches(
    path: Path, batch_size: int, position: ReadPosition | None = None, workers: int | None = None
) -> Iterator[list[StoredItem]]:
    """Batches of storable items, in file order.

    Large XML files are parsed by worker processes while this one stores: on two cores that
    nearly doubles throughput. The order of batches is kept, so deletions and revisions apply
    as the file has them.
    """
    _check_path(path)
    workers = _worker_count(path) if workers is None else workers
    if workers < 1 or looks_like_medline(_head(path)):
        records = iter_file_records(path, position)
        while batch := list(islice(records, batch_size)):
            yield to_stored_items(batch)
        return
    context = multiprocessing.get_context("fork")
    label = str(path)
    with context.Pool(workers) as pool:
        pending: deque[AsyncResult[list[StoredItem]]] = deque()
        try:
            with _open_counted(path, position) as stream:
                chunks = iter_record_chunks(stream, label)
                while batch_chunks := list(islice(chunks, batch_size)):
                    # Plain (bytes, line) tuples: pickling the dataclass cost this process 20 us a record.
                    parts = [(chunk.data, chunk.line) for chunk in batch_chunks]
                    task = (parts, batch_chunks[0].declaration, label)
                    pending.append(pool.apply_async(_parse_batch, task))
                    # A bounded window of batches in flight keeps memory flat.
                    if len(pending) > workers:
                        yield pending.popleft().get()
        except PubmedFormatError:
            while pending:  # everything before the damage is still stored
                yield pending.popleft().get()
            raise
        while pending:
            yield pending.popleft().get()


def _worker_count(path: Path) -> int:
    if (
        path.stat().st_size < PARALLEL_FROM_BYTES
        or multiprocessing.get_start_method(allow_none=True) == "spawn"
    ):
        return 0
    return max(1, min(MAX_WORKERS, (os.cpu_count() or 1)))


def _parse_batch(parts: list[tuple[bytes, int]], declaration: bytes, label: str) -> list[StoredItem]:
    chunks = (RecordChunk(data, line, declaration) for data, line in parts)
    return to_stored_items([item for chunk in chunks for item in parse_record_chunk(chunk, label)])


def import_file(
    database_url: str,
    path: Path,
    batch_size: int = DEFAULT_IMPORT_BATCH,
    progress: Progress | None = None,
    workers: int | None = None,
) -> HarvestRun:
    """Import one file, committing each batch as one transaction; returns the run's log entry.

    A bad record stops the import: the batches before it stay committed, the failing batch is
    not written, and the run is logged as failed with the reason. `workers=0` parses in this
    process; the default uses worker processes for large XML files.
    """
    if batch_size < 1:
        raise ValueError(f"Batch size {batch_size} must be at least 1.")
    _check_path(path)
    init_db(database_url)
    position = ReadPosition(size=path.stat().st_size)
    # The harvest's lock: an import and a harvest writing the same new records at once would
    # make one of them fail its batch.
    with job_lock(database_url, "harvest"), open_session(database_url) as session:
        run = start_run(session, kind="import", query=str(path))
        done = 0
        try:
            for items in iter_item_batches(path, batch_size, position, workers):
                store_batch(session, run, items)
                done += len(items)
                if progress:
                    # The total is estimated from the share of the file read so far.
                    estimate = int(done / position.fraction) if position.fraction > 0 else None
                    progress(done, max(estimate, done) if estimate else None)
            run.count = done
            if done == 0:
                raise PubmedFormatError(
                    f"{path}: holds no PubMed records; check that it is the file you meant."
                )
            finish_run(session, run, RunStatus.SUCCEEDED)
        except PubmedFormatError as exc:
            _fail(session, run, str(exc))
            raise
        except OperationalError as exc:
            message = describe_operational_error(database_url, exc)
            _fail(session, run, message)
            raise DatabaseError(message) from exc
        except BaseException as exc:  # Ctrl-C or a bug: the committed batches stay, the run says failed
            _fail(session, run, f"{type(exc).__name__}: {exc}".strip())
            raise
    log.info(
        "imported %s: %d new, %d updated, %d unchanged",
        path,
        run.records_new,
        run.records_updated,
        run.records_unchanged,
    )
    return run


def _fail(session: Session, run: HarvestRun, message: str) -> None:
    session.rollback()
    try:
        finish_run(session, run, RunStatus.FAILED, message)
    except OperationalError:
        log.warning("could not log the failed run %s: the database is not writable", run.id)
