"""Reading a Bulk API 2.0 query job's results: chunks streamed, parsed on several threads at once.

Each result chunk is read straight from the socket into pyarrow's CSV reader, one block at a
time, so that memory does not depend on the chunk size. The next chunk's locator arrives in
the headers of the current one, so the next chunk can be opened while the current one is
still being parsed: ``readers`` chunks are parsed at the same time (pyarrow releases the GIL),
which is what keeps a local extract from being bound to one core. Rows of different chunks
interleave; nothing downstream depends on row order (the loader keeps the newest version of
each Id).

A chunk whose connection drops mid-way is opened again at the same locator and the rows
already handed on are skipped; a chunk with fewer rows than its ``Sforce-NumberOfRecords``
is a :class:`BadResponseError`.
"""

from __future__ import annotations

import contextvars
import logging
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import requests
from urllib3.exceptions import HTTPError

from sfpipe.salesforce.client import BulkResultStream, SalesforceClient
from sfpipe.salesforce.errors import SalesforceTransientError
from sfpipe_extractor.convert import PageConverter

log = logging.getLogger(__name__)

TRANSPORT_ERRORS = (HTTPError, requests.ConnectionError, requests.exceptions.ChunkedEncodingError, OSError)
"""A results stream that broke off: the chunk is fetched again."""


class _Stop(Exception):
    """The consumer went away; workers end quietly."""


class BulkReader:
    """Streams one finished job's results as Arrow record batches."""

    def __init__(
        self,
        client: SalesforceClient,
        converter: PageConverter,
        *,
        max_records: int | None,
        readers: int = 2,
        queue_depth: int = 8,
    ) -> None:
        self.client = client
        self.converter = converter
        self.max_records = max_records
        self.readers = max(1, readers)
        self.queue_depth = queue_depth

    def batches(self, job_id: str) -> Iterator[pa.RecordBatch]:
        """Every row of the job, chunk by chunk, ``readers`` chunks at a time."""
        out: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=self.queue_depth)
        slots = threading.Semaphore(self.readers)
        stop = threading.Event()

        def put(item: tuple[str, Any]) -> None:
            while not stop.is_set():
                try:
                    out.put(item, timeout=0.1)
                    return
                except queue.Full:
                    continue
            raise _Stop

        def read(chunk: BulkResultStream, locator: str | None) -> None:
            try:
                for batch in self._chunk(job_id, locator, chunk, stop):
                    put(("batch", batch))
                put(("done", None))
            except _Stop:
                pass
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
                if not stop.is_set():
                    put(("error", exc))
            finally:
                slots.release()

        def schedule() -> None:
            locator: str | None = None
            opened = 0
            try:
                while True:
                    while not slots.acquire(timeout=0.1):
                        if stop.is_set():
                            return
                    if stop.is_set():
                        slots.release()
                        return
                    try:
                        chunk = self.client.open_query_job_results(
                            job_id, locator=locator, max_records=self.max_records
                        )
                    except BaseException:
                        slots.release()
                        raise
                    opened += 1
                    context = contextvars.copy_context()
                    threading.Thread(
                        target=context.run, args=(read, chunk, locator), name=f"bulk-read-{opened}", daemon=True
                    ).start()
                    locator = chunk.locator
                    if locator is None:
                        put(("opened", opened))
                        return
            except _Stop:
                pass
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
                if not stop.is_set():
                    put(("error", exc))

        context = contextvars.copy_context()
        threading.Thread(target=context.run, args=(schedule,), name="bulk-schedule", daemon=True).start()
        opened: int | None = None
        done = 0
        try:
            while opened is None or done < opened:
                kind, value = out.get()
                if kind == "batch":
                    yield value
                elif kind == "done":
                    done += 1
                elif kind == "opened":
                    opened = value
                else:
                    raise value
        finally:
            stop.set()

    def _chunk(
        self, job_id: str, locator: str | None, chunk: BulkResultStream, stop: threading.Event
    ) -> Iterator[pa.RecordBatch]:
        where = f" (Bulk job {job_id})"
        emitted = 0
        attempt = 0
        while True:
            skip, seen = emitted, 0
            try:
                for batch in self.converter.csv_batches(chunk.stream, where):
                    if stop.is_set():
                        raise _Stop
                    seen += batch.num_rows
                    if seen <= skip:
                        continue
                    if seen - batch.num_rows < skip:
                        batch = batch.slice(skip - (seen - batch.num_rows))
                    emitted += batch.num_rows
                    yield batch
            except TRANSPORT_ERRORS as exc:
                chunk.close()
                attempt += 1
                if attempt >= self.client.retry.attempts:
                    msg = f"{self.converter.sobject}{where}: results chunk cut off in transit {attempt} times: {exc}"
                    raise SalesforceTransientError(msg) from exc
                wait = self.client.retry.delay(attempt)
                log.info("%s%s: chunk cut off after %d rows (%s); again in %.2fs",
                         self.converter.sobject, where, seen, exc, wait)  # fmt: skip
                time.sleep(wait)
                chunk = self.client.open_query_job_results(job_id, locator=locator, max_records=self.max_records)
                continue
            except BaseException:
                chunk.close()
                raise
            chunk.close()
            self.converter.check_count(emitted, chunk.records, where)
            return
