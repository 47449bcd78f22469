"""Query cursors: a query's result rendered once, in the background, and served page by page.

A REST query opens one DuckDB read transaction (its snapshot), counts the rows (``totalSize``),
and, when they exceed one page, hands the transaction to a renderer thread. The renderer runs the
statement that turns every record into its JSON text (followed by a comma) and appends the bytes
to a flat file, recording where each record starts. The first page is answered as soon as its
rows are rendered; later pages wait only for their own rows, so the client consumes while the
server renders. A page is one ``pread`` of a byte range — no per-record Python. The cursor is a
snapshot: writes after the query started never change its pages, as on Salesforce, and a locator
works under any API version. Cursors expire after 15 idle minutes; the oldest go beyond a cap.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from sfpipe_simulator.errors import ApiError
from sfpipe_simulator.ids import make_id

log = logging.getLogger(__name__)

DEFAULT_BATCH = 2_000
MIN_BATCH = 200
READ_ROWS = 10_000
IDLE_SECONDS = 15 * 60
WAIT_SECONDS = 300
RENDERERS = 3


class QueryTimeout(Exception):
    """The query would return more rows than the configured budget (fault injection's QUERY_TIMEOUT)."""


@dataclass
class Cursor:
    """One query's rendered records: a byte file plus the start offset of every record."""

    cursor_id: str
    total: int
    batch_size: int
    endpoint: str
    path: Path
    offsets: np.ndarray = field(repr=False)
    ready: int = 0
    done: bool = False
    error: BaseException | None = None
    cancelled: bool = False
    touched: float = field(default_factory=time.monotonic)
    cond: threading.Condition = field(default_factory=threading.Condition, repr=False)
    fd: int = -1
    rendering: bool = False

    def wait_for(self, rows: int) -> None:
        """Block until ``rows`` records are rendered (or rendering failed)."""
        with self.cond:
            ok = self.cond.wait_for(lambda: self.ready >= rows or self.error is not None or self.cancelled,
                                    timeout=WAIT_SECONDS)  # fmt: skip
        if self.error is not None:
            raise ApiError(500, "UNKNOWN_EXCEPTION", f"the query failed while rendering: {self.error}")
        if self.cancelled or not ok:
            raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")

    def read(self, start: int, stop: int) -> bytes:
        """Records ``[start, stop)`` as ``rec,rec,…``."""
        self.wait_for(stop)
        lo, hi = int(self.offsets[start]), int(self.offsets[stop])
        try:
            data = os.pread(self.fd, hi - lo, lo)
        except OSError:
            raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator") from None
        return data[:-1] if data.endswith(b",") else data

    def close(self) -> None:
        """Stop rendering and release the file (the renderer closes it if it is still writing)."""
        with self.cond:
            self.cancelled = True
            self.cond.notify_all()
            close_now = not self.rendering
        if close_now:
            self.release()
        self.path.unlink(missing_ok=True)

    def release(self) -> None:
        """Close the file descriptor."""
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1


def _append(handle: int, column: pa.Array, offsets: np.ndarray, start_row: int, base: int) -> int:
    """Write one batch of record texts; fill their start offsets; return the new end of file."""
    buffers = column.buffers()
    value_offsets = np.frombuffer(buffers[1], dtype=np.int32, count=len(column) + 1, offset=column.offset * 4)
    first, last = int(value_offsets[0]), int(value_offsets[-1])
    data = buffers[2]
    view = memoryview(data)[first:last] if data is not None else memoryview(b"")
    written = 0
    while written < len(view):
        written += os.write(handle, view[written:])
    offsets[start_row + 1 : start_row + len(column) + 1] = base + value_offsets[1:] - first
    return base + (last - first)


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
    """All open cursors of the simulator, and the renderers behind them."""

    def __init__(self, folder: Path, pod: str, max_open: int = 500) -> None:
        self.folder = folder
        self.pod = pod
        self.max_open = max_open
        folder.mkdir(parents=True, exist_ok=True)
        self._cursors: OrderedDict[str, Cursor] = OrderedDict()
        self._lock = threading.Lock()
        self._numbers = itertools.count(1)
        self._renderers = threading.Semaphore(RENDERERS)

    def run(self, connection: duckdb.DuckDBPyConnection, sql: str, params: list[object], batch_size: int,
            endpoint: str, max_rows: int | None = None) -> Page:  # fmt: skip
        """Run a JSON query on a fresh cursor of ``connection`` and answer its first page.

        The cursor is owned from here on: it is closed here for a one-page answer, or by the
        renderer thread once every record is rendered.
        """
        cur = connection.cursor()
        handed_over = False
        try:
            cur.execute("BEGIN TRANSACTION")
            total = int(cur.execute(f"SELECT count(*) FROM ({sql})", params).fetchall()[0][0])
            if max_rows is not None and total > max_rows:
                raise QueryTimeout
            if total <= batch_size:
                rows = cur.execute(sql, params).fetchall()
                return Page(len(rows), ",".join(r[0] for r in rows).encode(), None)
            wrapped = f"SELECT j || ',' AS j FROM ({sql})"
            cursor_id = make_id("01g", self.pod, next(self._numbers))
            path = self.folder / f"{cursor_id}.jsonl"
            cursor = Cursor(cursor_id, total, batch_size, endpoint, path, np.zeros(total + 1, dtype=np.int64))
            cursor.fd = os.open(path, os.O_CREAT | os.O_RDWR | os.O_TRUNC, 0o600)
            cursor.rendering = True
            self._add(cursor)
            thread = threading.Thread(target=self._render, args=(cursor, cur, wrapped, params),
                                      name=f"sfpipe-cursor-{cursor_id}", daemon=True)  # fmt: skip
            handed_over = True
            thread.start()
            return self._page(cursor, 0)
        finally:
            if not handed_over:
                with contextlib.suppress(duckdb.Error):
                    cur.execute("ROLLBACK")
                cur.close()

    def _render(self, cursor: Cursor, cur: duckdb.DuckDBPyConnection, sql: str, params: list[object]) -> None:
        try:
            with self._renderers:
                reader = cur.sql(sql, params=params).to_arrow_reader(READ_ROWS)
                end = 0
                try:
                    for batch in reader:
                        if cursor.cancelled:
                            return
                        column = batch.column(0)
                        if column.type != pa.string():
                            column = column.cast(pa.string())
                        end = _append(cursor.fd, column, cursor.offsets, cursor.ready, end)
                        with cursor.cond:
                            cursor.ready += len(column)
                            cursor.cond.notify_all()
                finally:
                    with contextlib.suppress(duckdb.Error):
                        reader.close()
            with cursor.cond:
                cursor.done = True
                if cursor.ready != cursor.total and not cursor.cancelled:
                    cursor.error = RuntimeError(f"rendered {cursor.ready} rows, counted {cursor.total}")
                cursor.cond.notify_all()
        except (duckdb.Error, OSError, pa.ArrowException) as exc:
            if not cursor.cancelled:
                log.exception("rendering cursor %s failed", cursor.cursor_id)
            with cursor.cond:
                cursor.error = exc
                cursor.cond.notify_all()
        finally:
            with contextlib.suppress(duckdb.Error):
                cur.execute("ROLLBACK")
            cur.close()
            with cursor.cond:
                cursor.rendering = False
                if cursor.cancelled:
                    cursor.release()

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
        records = cursor.read(offset, stop)
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

    def status(self) -> dict[str, Any]:
        """Open cursors and how far each has rendered."""
        with self._lock:
            return {c.cursor_id: {"total": c.total, "rendered": c.ready} for c in self._cursors.values()}


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
