"""Query cursors: a query's result materialised once, then served page by page from disk.

A REST query runs as one DuckDB statement that renders every record as JSON text followed by a
comma; the rows stream into an Arrow IPC file. A page is then a byte range of that file's
string data (memory-mapped, no per-record Python), wrapped in the page envelope. The cursor
is a snapshot: live writes after the query started never change its pages, as on Salesforce,
and a locator works under any API version. Cursors expire after 15 idle minutes; the oldest
are dropped beyond a cap.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from sfpipe_simulator.errors import ApiError
from sfpipe_simulator.ids import make_id

DEFAULT_BATCH = 2_000
MIN_BATCH = 200
READ_ROWS = 20_000
IDLE_SECONDS = 15 * 60


class QueryTimeout(Exception):
    """The query ran over the configured row budget (fault injection's QUERY_TIMEOUT)."""


@dataclass
class Cursor:
    """One materialised query result."""

    cursor_id: str
    total: int
    batch_size: int
    path: Path | None
    endpoint: str
    first: pa.ChunkedArray | None = None
    touched: float = field(default_factory=time.monotonic)
    _table: pa.Table | None = None
    _source: pa.MemoryMappedFile | None = None

    def rows(self) -> pa.ChunkedArray:
        """The rendered records (memory-mapped)."""
        if self.first is not None:
            return self.first
        if self._table is None:
            assert self.path is not None
            self._source = pa.memory_map(str(self.path), "r")
            self._table = pa.ipc.open_file(self._source).read_all()
        return self._table.column(0)

    def close(self) -> None:
        """Release the mapping and delete the file."""
        self._table = None
        if self._source is not None:
            with contextlib.suppress(OSError):
                self._source.close()
        if self.path is not None:
            self.path.unlink(missing_ok=True)


def records_bytes(rows: pa.ChunkedArray, start: int, stop: int) -> bytes:
    """Rows ``[start, stop)`` of JSON-text-plus-comma strings as one ``rec,rec,…`` byte string."""
    pieces: list[bytes] = []
    position = 0
    for chunk in rows.chunks:
        n = len(chunk)
        lo, hi = max(start - position, 0), min(stop - position, n)
        position += n
        if lo >= hi:
            continue
        offsets = chunk.buffers()[1]
        data = chunk.buffers()[2]
        assert offsets is not None and data is not None
        view = memoryview(offsets).cast("i")
        base = chunk.offset
        pieces.append(bytes(memoryview(data)[view[base + lo] : view[base + hi]]))
        if position >= stop:
            break
    body = b"".join(pieces)
    return body[:-1] if body.endswith(b",") else body


@dataclass(frozen=True)
class Page:
    """One page of a query answer."""

    total: int
    records: bytes
    next_locator: str | None

    def body(self, version: str, endpoint: str) -> bytes:
        """The REST envelope: totalSize, done, nextRecordsUrl, records."""
        head = f'{{"totalSize":{self.total},"done":{"false" if self.next_locator else "true"}'
        if self.next_locator:
            head += f',"nextRecordsUrl":"/services/data/v{version}/{endpoint}/{self.next_locator}"'
        return head.encode() + b',"records":[' + self.records + b"]}"


class QueryCursors:
    """All open cursors of the simulator."""

    def __init__(self, folder: Path, pod: str, max_open: int = 500) -> None:
        self.folder = folder
        self.pod = pod
        self.max_open = max_open
        folder.mkdir(parents=True, exist_ok=True)
        self._cursors: OrderedDict[str, Cursor] = OrderedDict()
        self._lock = threading.Lock()
        self._numbers = itertools.count(1)

    def run(self, cur: duckdb.DuckDBPyConnection, sql: str, params: list[object], batch_size: int,
            endpoint: str, max_rows: int | None = None) -> Page:  # fmt: skip
        """Run a JSON query and return its first page, keeping a cursor when there are more."""
        wrapped = f"SELECT j || ',' AS j FROM ({sql})"
        reader = cur.sql(wrapped, params=params).to_arrow_reader(READ_ROWS)
        held: list[pa.Array] = []
        count = 0
        writer: pa.ipc.RecordBatchFileWriter | None = None
        path: Path | None = None
        cursor_id = make_id("01g", self.pod, next(self._numbers))
        schema = pa.schema([pa.field("j", pa.string())])
        try:
            for batch in reader:
                column = batch.column(0)
                if column.type != pa.string():
                    column = column.cast(pa.string())
                count += len(column)
                if max_rows is not None and count > max_rows:
                    raise QueryTimeout
                if writer is None and count <= batch_size:
                    held.append(column)
                    continue
                if writer is None:
                    path = self.folder / f"{cursor_id}.arrow"
                    writer = pa.ipc.new_file(str(path), schema)
                    for earlier in held:
                        writer.write_batch(pa.record_batch([earlier], schema=schema))
                    held = []
                writer.write_batch(pa.record_batch([column], schema=schema))
        except BaseException:
            if writer is not None:
                writer.close()
            if path is not None:
                path.unlink(missing_ok=True)
            raise
        finally:
            with contextlib.suppress(duckdb.Error):
                reader.close()
        if writer is None:
            rows = pa.chunked_array(held, pa.string())
            return Page(count, records_bytes(rows, 0, count), None)
        writer.close()
        cursor = Cursor(cursor_id, count, batch_size, path, endpoint)
        self._add(cursor)
        return self._page(cursor, 0)

    def _add(self, cursor: Cursor) -> None:
        with self._lock:
            self._cursors[cursor.cursor_id] = cursor
        self.expire_idle()

    def expire_idle(self) -> int:
        """Drop cursors idle for 15 minutes, and the oldest beyond the cap; returns how many."""
        dropped: list[Cursor] = []
        with self._lock:
            now = time.monotonic()
            for key in list(self._cursors):
                old = self._cursors[key]
                if now - old.touched > IDLE_SECONDS or len(self._cursors) > self.max_open:
                    dropped.append(self._cursors.pop(key))
        for old in dropped:
            old.close()
        return len(dropped)

    def _page(self, cursor: Cursor, offset: int) -> Page:
        stop = min(offset + cursor.batch_size, cursor.total)
        records = records_bytes(cursor.rows(), offset, stop)
        nxt = f"{cursor.cursor_id}-{stop}" if stop < cursor.total else None
        if nxt is None:
            self.discard(cursor.cursor_id)
        return Page(cursor.total, records, nxt)

    def next(self, locator: str) -> tuple[Page, str]:
        """The page a ``nextRecordsUrl`` locator points at, and the endpoint of its query."""
        cursor_id, _, offset_text = locator.partition("-")
        with self._lock:
            cursor = self._cursors.get(cursor_id)
            if cursor is not None:
                cursor.touched = time.monotonic()
                self._cursors.move_to_end(cursor_id)
        if cursor is None or not offset_text.isdigit() or int(offset_text) >= cursor.total:
            raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._page(cursor, int(offset_text)), cursor.endpoint

    def discard(self, cursor_id: str) -> None:
        """Forget a cursor (its last page was served)."""
        with self._lock:
            cursor = self._cursors.pop(cursor_id, None)
        if cursor is not None:
            # the mapping may still be in use by a page being sent; the file goes once unreferenced
            cursor.close()

    def open_count(self) -> int:
        """Cursors currently open."""
        with self._lock:
            return len(self._cursors)

    def close_all(self) -> None:
        """Drop every cursor and its file."""
        with self._lock:
            cursors = list(self._cursors.values())
            self._cursors.clear()
        for cursor in cursors:
            cursor.close()

    def __iter__(self) -> Iterator[Cursor]:
        with self._lock:
            return iter(list(self._cursors.values()))


def batch_size_from_header(value: str | None) -> int:
    """``Sforce-Query-Options: batchSize=N`` → a page size in Salesforce's bounds (200–2,000)."""
    if not value:
        return DEFAULT_BATCH
    for part in value.split(","):
        key, _, raw = part.strip().partition("=")
        if key.strip().lower() == "batchsize":
            try:
                size = int(raw.strip())
            except ValueError:
                raise ApiError(400, "INVALID_QUERY_OPTIONS", f"invalid batchSize: {raw.strip()}") from None
            return max(MIN_BATCH, min(DEFAULT_BATCH, size))
    return DEFAULT_BATCH
