"""Importing files (PubMed XML, .xml.gz, MEDLINE/.nbib text, JSON records, JSON Lines) through the harvester's upsert path.

This module reads and parses; ingest.import_run stores. It imports no database module, so that an
import's worker processes are forked, and parsing, before those load.
"""

from __future__ import annotations

import gc
import gzip
import io
import logging
import multiprocessing
import os
import pickle
import tempfile
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from multiprocessing.pool import AsyncResult, Pool
from pathlib import Path
from typing import IO, TYPE_CHECKING, Literal

from db.corpus.classifier import shipped_model
from ingest.batch_sizes import DEFAULT_IMPORT_BATCH
from ingest.items import StoredItem, to_stored_items
from ingest.json_records import iter_json_records, looks_like_json
from ingest.medline_text import iter_medline_text, looks_like_medline
from ingest.pubmed_blocks import GZIP_MAGIC, RecordBlock, RecordChunk, iter_record_blocks, split_block
from ingest.pubmed_xml import (
    GROUP_RECORDS,
    PubmedFormatError,
    iter_pubmed_xml,
    parse_record_chunk,
    parse_record_group,
)
from ingest.records import IMPORT_FORMATS, DeletedCitation, PubmedRecord

if TYPE_CHECKING:
    from db.models import HarvestRun

log = logging.getLogger(__name__)

PARALLEL_FROM_BYTES = 4 << 20  # below this, starting worker processes costs more than it saves
BLOCK_BYTES = 1 << 20  # what one worker task parses: about 150 records of a baseline file
# Workers run at the lowest priority: the storing process sets the pace, and competing with it
# for a core cost more than the workers gained (docs/performance.md).
WORKER_NICENESS = 19
MAX_WORKERS = 2
# Blocks handed out per worker when the workers start, and in flight afterwards. At the start the
# storing process loads the database modules and migrates for about a second and takes no results:
# the larger first window keeps the workers parsing meanwhile (docs/performance.md).
START_BLOCKS_PER_WORKER = 8
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

    def read(self, size: int = -1) -> bytes:
        # The block cutter reads 1 MiB at a time: straight from the file, not through readinto's copies.
        data = self._handle.read(size)
        self._position.read += len(data)
        return data


def _check_path(path: Path) -> None:
    if not path.exists():
        raise PubmedFormatError(f"{path}: no such file; check the path.")
    if path.is_dir():
        raise PubmedFormatError(f"{path}: is a folder; pass the PubMed files inside it.")


# Names that say MEDLINE text: a damaged one is then told what MEDLINE text should look like.
_MEDLINE_SUFFIXES = (".nbib", ".txt", ".medline")
_BLANK = b"\xef\xbb\xbf \t\r\n"
FileFormat = Literal["xml", "medline", "json"]


def file_format(path: Path) -> FileFormat:
    """The format of a file to import, by its first non-blank bytes (decompressed), not by its name.

    "<" opens PubMed XML, "{" or "[" JSON records or JSON Lines, a "TAG - value" line MEDLINE text;
    a name that says MEDLINE text (.nbib, .txt) is taken as such when the content is none of these.
    """
    head = _head(path)
    text = head.lstrip(_BLANK)
    if not text:
        raise PubmedFormatError(f"{path}: empty input; import takes {IMPORT_FORMATS}.")
    if text.startswith(b"<"):
        return "xml"
    if looks_like_json(head):
        return "json"
    name = path.name.lower().removesuffix(".gz")
    if looks_like_medline(head) or name.endswith(_MEDLINE_SUFFIXES):
        return "medline"
    start = text.split(b"\n", 1)[0][:30].decode("utf-8", "replace").strip()
    raise PubmedFormatError(
        f"{path}: line 1: {start!r} opens no format import reads; import takes {IMPORT_FORMATS}."
    )


def _head(path: Path) -> bytes:
    """The first bytes of the (decompressed) content, to tell the format by."""
    try:
        with open(path, "rb") as raw:
            is_gzip = raw.read(2) == GZIP_MAGIC
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
    """Records of a file to import, whichever supported format it is (decided by content, not name)."""
    _check_path(path)
    fmt = file_format(path)
    with _open_counted(path, position) as stream:
        if fmt == "xml":
            yield from iter_pubmed_xml(stream, str(path))  # recognises gzip by itself
            return
        if _is_gzip(path):
            stream = gzip.GzipFile(fileobj=stream, mode="rb")  # type: ignore[assignment]
        elif isinstance(stream, io.RawIOBase):
            stream = io.BufferedReader(stream, 1 << 16)  # readline by blocks, not byte by byte
        if fmt == "json":
            yield from iter_json_records(stream, str(path))  # a line at a time, each line bounded
        else:
            yield from iter_medline_text(stream, str(path))  # bytes: decoded strictly, line by line


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as raw:
        return raw.read(2) == GZIP_MAGIC


def iter_item_batches(
    path: Path, batch_size: int, position: ReadPosition | None = None, workers: int | None = None
) -> Iterator[list[StoredItem]]:
    """Batches of storable items, in file order (see parsed_batches)."""
    with parsed_batches(path, batch_size, position, workers) as batches:
        yield from batches


@contextmanager
def parsed_batches(
    path: Path, batch_size: int, position: ReadPosition | None = None, workers: int | None = None
) -> Iterator[Iterator[list[StoredItem]]]:
    """Batches of storable items, in file order; with worker processes, already parsing on entry.

    Large XML files are parsed by worker processes while this one stores: on two cores that
    nearly doubles throughput. This process only cuts the file into blocks of whole records;
    the workers split, check and parse them. Results come back in file order, so deletions and
    revisions apply as the file has them, and damage stops the import at its batch.

    The workers start, and get their first blocks, when the block is entered: the caller migrates
    the database meanwhile (import_file), and finds the first batches parsed when it starts storing.
    """
    _check_path(path)
    workers = _worker_count(path) if workers is None else workers
    try:
        parallel = workers >= 1 and file_format(path) == "xml"
    except PubmedFormatError as exc:
        yield _raising(exc)  # met where the batches are read, so the run that reads them logs it
        return
    if not parallel:
        records = iter_file_records(path, position)
        yield (to_stored_items(batch) for batch in iter(lambda: list(islice(records, batch_size)), []))
        return
    context = multiprocessing.get_context("fork")
    shipped_model()  # the design classifier's tables, built once here for every forked worker
    label = str(path)
    with (
        tempfile.TemporaryDirectory(prefix="ketamine-import-", dir=_spool_parent()) as spool,
        context.Pool(workers, initializer=os.nice, initargs=(WORKER_NICENESS,)) as pool,
        _open_counted(path, position) as stream,
    ):
        pending: deque[AsyncResult[str]] = deque()
        blocks = iter_record_blocks(stream, label, BLOCK_BYTES)
        # The first window of blocks goes out now; damage met while cutting it is raised where the
        # batches are read, after the blocks before it.
        damage: PubmedFormatError | None = None
        try:
            for block in islice(blocks, START_BLOCKS_PER_WORKER * workers):
                pending.append(pool.apply_async(_parse_block_to_spool, (block, label, spool)))
        except PubmedFormatError as exc:
            damage = exc
        yield _ordered_batches(pool, pending, blocks, damage, label, spool, batch_size, workers)


def _raising(exc: BaseException) -> Iterator[list[StoredItem]]:
    raise exc
    yield  # a generator: raises when first read


def _ordered_batches(
    pool: Pool,
    pending: deque[AsyncResult[str]],
    blocks: Iterator[RecordBlock],
    damage: PubmedFormatError | None,
    label: str,
    spool: str,
    batch_size: int,
    workers: int,
) -> Iterator[list[StoredItem]]:
    ready: list[StoredItem] = []
    while True:
        try:
            if damage is not None:
                raise damage
            block = next(blocks, None)
        except PubmedFormatError:
            # Damage found while cutting: everything before it is parsed and stored first.
            while pending:
                yield from _take_batches(ready, _unspool(pending.popleft().get()), batch_size)
            raise
        if block is not None:
            pending.append(pool.apply_async(_parse_block_to_spool, (block, label, spool)))
        # A bounded window of blocks in flight keeps memory flat.
        while pending and (block is None or len(pending) > 2 * workers):
            yield from _take_batches(ready, _unspool(pending.popleft().get()), batch_size)
        if block is None:
            break
    if ready:
        yield ready


def _take_batches(
    ready: list[StoredItem], result: BlockResult, batch_size: int
) -> Iterator[list[StoredItem]]:
    """Add one block's items to `ready` and hand out every whole batch; a block's damage ends it all.

    The items before the damage count, so the batches that commit are exactly those a
    one-process import commits; the partial batch holding the damage is not written.
    """
    items, error = result
    ready.extend(items)
    while len(ready) >= batch_size:
        yield ready[:batch_size]
        del ready[:batch_size]
    if error is not None:
        raise error


def _worker_count(path: Path) -> int:
    if (
        path.stat().st_size < PARALLEL_FROM_BYTES
        or multiprocessing.get_start_method(allow_none=True) == "spawn"
    ):
        return 0
    return max(1, min(MAX_WORKERS, (os.cpu_count() or 1)))


# A worker's parsed block travels back as a file in a private folder, preferably in memory
# (/dev/shm), which this process reads in one go when it needs the block. Through the pool's
# pipe, a thread of this busy process read it 64 KiB at a time: the file measured 3% faster
# (docs/performance.md).
BlockResult = tuple[list[StoredItem], PubmedFormatError | None]


def _spool_parent() -> str | None:
    shared_memory = Path("/dev/shm")
    return str(shared_memory) if shared_memory.is_dir() and os.access(shared_memory, os.W_OK) else None


def _parse_block_to_spool(block: RecordBlock, label: str, spool: str) -> str:
    result = _parse_block(block, label)
    with tempfile.NamedTemporaryFile(dir=spool, delete=False) as spooled:
        pickle.dump(result, spooled, protocol=pickle.HIGHEST_PROTOCOL)
    return spooled.name


def _unspool(name: str) -> BlockResult:
    with open(name, "rb") as spooled:
        result: BlockResult = pickle.load(spooled)  # our own worker's file, in a folder only we can read
    os.unlink(name)
    return result


def _parse_block(block: RecordBlock, label: str) -> BlockResult:
    """In a worker: a block's storable items, and the damage that stopped it, if any."""
    records: list[PubmedRecord | DeletedCitation] = []
    chunks: list[RecordChunk] = []
    damage: PubmedFormatError | None = None
    # No cyclic garbage collection while parsing: element trees hold no cycles, and the
    # collector's passes over them cost a tenth of the parse.
    gc.disable()
    try:
        try:
            chunks.extend(split_block(block, label))
        except PubmedFormatError as exc:
            damage = exc  # after the records before it, which are parsed first
        try:
            for start in range(0, len(chunks), GROUP_RECORDS):
                group = chunks[start : start + GROUP_RECORDS]
                parsed = parse_record_group(group, label)
                if parsed is None:  # damage in the group: one record at a time, to stop at it
                    for chunk in group:
                        records.extend(parse_record_chunk(chunk, label))
                else:
                    records.extend(parsed)
        except PubmedFormatError as exc:
            damage = exc
        # The whole block at once: the design classifier scores a batch in one pass of array operations.
        return to_stored_items(records), damage
    finally:
        gc.enable()


def import_file(
    database_url: str,
    path: Path,
    batch_size: int = DEFAULT_IMPORT_BATCH,
    progress: Progress | None = None,
    workers: int | None = None,
    *,
    allow_older: bool = False,
) -> HarvestRun:
    """Import one file, committing each batch as one transaction; returns the run's log entry.

    A record older than the stored revision of its PMID is skipped (counted in `records_older`)
    unless `allow_older`.

    A bad record stops the import: the batches before it stay committed, the failing batch is
    not written, and the run is logged as failed with the reason. `workers=0` parses in this
    process; the default uses worker processes for large XML files.
    """
    if batch_size < 1:
        raise ValueError(f"Batch size {batch_size} must be at least 1.")
    _check_path(path)
    position = ReadPosition(size=path.stat().st_size)
    # The workers start parsing first: the database modules, which are most of an import command's
    # start-up, load meanwhile (below), and a new database is migrated meanwhile (docs/performance.md).
    with parsed_batches(path, batch_size, position, workers) as batches:
        from ingest.import_run import store_file

        return store_file(database_url, path, batches, position, progress, allow_older=allow_older)
