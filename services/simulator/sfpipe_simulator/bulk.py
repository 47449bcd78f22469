"""Bulk API 2.0 query jobs: create, poll, page through RFC 4180 CSV results, abort, delete.

A job's query is validated when the job is created (a bad query is refused there, as on
Salesforce), then runs on a worker thread: DuckDB renders every field in Salesforce's CSV formats
and the rows stream into an Arrow IPC file. Result pages are slices of that file written as CSV
by Arrow (quotes doubled, embedded line breaks kept inside quotes), each page with its header
line, paged by ``maxRecords`` and an opaque ``locator``; the last page says ``Sforce-Locator:
null``. Without ``maxRecords`` a page holds as many rows as fit in about 64 MB.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import io
import itertools
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
from flask import Blueprint, Response, g, request

from sfpipe_simulator.app import data_api_preprocess, json_response, limit_header, read_json, runtime
from sfpipe_simulator.errors import ApiError, not_found
from sfpipe_simulator.ids import make_id
from sfpipe_simulator.soql import SoqlError
from sfpipe_simulator.soql_compile import Compiled, compile_soql
from sfpipe_simulator.store import sf_datetime

log = logging.getLogger(__name__)

DELIMITERS = {"COMMA": ",", "TAB": "\t", "SEMICOLON": ";", "PIPE": "|", "CARET": "^", "BACKQUOTE": "`"}
LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
READ_ROWS = 50_000
WRITE_ROWS = 25_000
DEFAULT_PAGE_BYTES = 64 * 1024 * 1024
TERMINAL = {"JobComplete", "Failed", "Aborted"}


@dataclass
class Job:
    """One Bulk API 2.0 query job."""

    id: str
    operation: str
    object: str
    query: str
    api_version: str
    created_by: str
    column_delimiter: str
    line_ending: str
    compiled: Compiled
    created: datetime
    state: str = "UploadComplete"
    modstamp: datetime | None = None
    path: Path | None = None
    total: int = 0
    error: str | None = None
    processing_ms: int = 0
    aborted: threading.Event = field(default_factory=threading.Event)
    dropped: bool = False
    """Whether the dropped-connection fault has cut this job's results once already."""
    _table: pa.Table | None = None
    _source: pa.MemoryMappedFile | None = None

    def info(self, detail: bool) -> dict[str, Any]:
        """The job's JSON (status adds counts and timings)."""
        body: dict[str, Any] = {
            "id": self.id,
            "operation": self.operation,
            "object": self.object,
            "createdById": self.created_by,
            "createdDate": sf_datetime(self.created),
            "systemModstamp": sf_datetime(self.modstamp or self.created),
            "state": self.state,
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(self.api_version),
            "lineEnding": self.line_ending,
            "columnDelimiter": self.column_delimiter,
        }
        if detail:
            body.update({"jobType": "V2Query", "numberRecordsProcessed": self.total, "retries": 0,
                         "totalProcessingTime": self.processing_ms})  # fmt: skip
            if self.error:
                body["errorMessage"] = self.error
        return body

    def table(self) -> pa.Table:
        """The result rows (memory-mapped)."""
        if self._table is None:
            assert self.path is not None
            self._source = pa.memory_map(str(self.path), "r")
            self._table = pa.ipc.open_file(self._source).read_all()
        return self._table

    def release(self) -> None:
        """Drop the mapping and the file."""
        self._table = None
        if self._source is not None:
            with contextlib.suppress(OSError):
                self._source.close()
            self._source = None
        if self.path is not None:
            self.path.unlink(missing_ok=True)


def encode_locator(offset: int) -> str:
    """An opaque locator for a row offset."""
    return base64.urlsafe_b64encode(str(offset).encode()).decode().rstrip("=")


def decode_locator(locator: str) -> int:
    """The row offset of a locator, or INVALID_LOCATOR."""
    try:
        text = base64.urlsafe_b64decode(locator + "=" * (-len(locator) % 4)).decode()
        value = int(text)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "INVALID_LOCATOR", f"Invalid locator: {locator}") from None
    if value < 0:
        raise ApiError(400, "INVALID_LOCATOR", f"Invalid locator: {locator}")
    return value


class BulkJobs:
    """All query jobs of the org, run on a small worker pool."""

    def __init__(self, rt: Any, folder: Path, workers: int = 2) -> None:
        self.rt = rt
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._numbers = itertools.count(1)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sfpipe-bulk")

    def create(self, body: Any, version: str, user_id: str) -> Job:
        """Validate and queue a query job."""
        if not isinstance(body, dict):
            raise ApiError(400, "INVALIDJOB", "The request body must be a JSON object")
        operation = body.get("operation")
        if operation not in {"query", "queryAll"}:
            raise ApiError(400, "INVALIDJOB", f"Invalid operation for a query job: {operation!r}; expected query "
                           "or queryAll")  # fmt: skip
        query = body.get("query")
        if not isinstance(query, str) or not query.strip():
            raise ApiError(400, "INVALIDJOB", "A query job needs a query")
        delimiter = body.get("columnDelimiter", "COMMA")
        line_ending = body.get("lineEnding", "LF")
        if delimiter not in DELIMITERS:
            raise ApiError(400, "INVALIDJOB", f"Invalid columnDelimiter: {delimiter!r}; expected one of "
                           f"{', '.join(DELIMITERS)}")  # fmt: skip
        if line_ending not in LINE_ENDINGS:
            raise ApiError(400, "INVALIDJOB", f"Invalid lineEnding: {line_ending!r}; expected LF or CRLF")
        if body.get("contentType", "CSV") != "CSV":
            raise ApiError(400, "INVALIDJOB", "Only contentType CSV is supported")
        try:
            compiled = compile_soql(query, include_deleted=operation == "queryAll", today=self.rt.clock.today(),
                                    version=version, mode="csv", bulk=True)  # fmt: skip
        except SoqlError as exc:
            raise ApiError(400, exc.code, exc.render()) from None
        if not self.rt.store.has_object(compiled.sobject.name):
            raise ApiError(400, "INVALID_TYPE", f"sObject type '{compiled.sobject.name}' is not supported.")
        if self.rt.faults.config.breaks("bulk_unsupported", compiled.sobject.name):
            raise ApiError(400, "INVALIDENTITY", f"Entity '{compiled.sobject.name}' is not supported by the Bulk API.")
        self.rt.limits.bulk_job()
        job = Job(
            id=make_id("750", self.rt.plan.pod, next(self._numbers)), operation=operation,
            object=compiled.sobject.name, query=query, api_version=version, created_by=user_id,
            column_delimiter=delimiter, line_ending=line_ending, compiled=compiled, created=self.rt.clock.now(),
        )  # fmt: skip
        with self._lock:
            self._jobs[job.id] = job
        self._pool.submit(self._run, job)
        return job

    def _run(self, job: Job) -> None:
        if job.aborted.is_set():
            return
        started = time.perf_counter()
        job.state = "InProgress"
        job.modstamp = self.rt.clock.now()
        limit = self.rt.faults.query_timeout()
        path = self.folder / f"{job.id}.arrow"
        writer: pa.ipc.RecordBatchFileWriter | None = None
        try:
            with self.rt.store.reader() as cur:
                reader = cur.sql(job.compiled.sql, params=job.compiled.params).to_arrow_reader(READ_ROWS)
                schema = pa.schema([pa.field(h, pa.string()) for h in job.compiled.headers])
                writer = pa.ipc.new_file(str(path), schema)
                count = 0
                for batch in reader:
                    if job.aborted.is_set():
                        break
                    count += batch.num_rows
                    if limit is not None and count > limit:
                        raise _Timeout
                    columns = [c if c.type == pa.string() else c.cast(pa.string()) for c in batch.columns]
                    writer.write_batch(pa.record_batch(columns, schema=schema))
                writer.close()
                writer = None
            job.path = path
            job.total = count
            if job.aborted.is_set():
                job.release()
                return
            job.state = "JobComplete"
        except _Timeout:
            job.state, job.error = "Failed", "QUERY_TIMEOUT: Your query request was running for too long."
        except (duckdb.Error, OSError, pa.ArrowException) as exc:
            log.exception("bulk job %s failed", job.id)
            job.state, job.error = "Failed", f"UNKNOWN_EXCEPTION: {exc}"
        finally:
            if writer is not None:
                writer.close()
            if job.state != "JobComplete":
                path.unlink(missing_ok=True)
            job.processing_ms = int((time.perf_counter() - started) * 1000)
            job.modstamp = self.rt.clock.now()

    def get(self, job_id: str) -> Job:
        """A job by Id, or 404."""
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise not_found()
        return job

    def all(self) -> list[Job]:
        """Every job, oldest first."""
        with self._lock:
            return list(self._jobs.values())

    def abort(self, job_id: str) -> Job:
        """Abort a job that has not finished."""
        job = self.get(job_id)
        if job.state in TERMINAL:
            raise ApiError(400, "INVALIDJOBSTATE", f"Job {job_id} is {job.state} and can no longer be aborted")
        job.aborted.set()
        job.state = "Aborted"
        job.modstamp = self.rt.clock.now()
        return job

    def delete(self, job_id: str) -> None:
        """Delete a finished job and its results."""
        job = self.get(job_id)
        if job.state not in TERMINAL:
            raise ApiError(400, "INVALIDJOBSTATE", f"Job {job_id} is {job.state}: abort it before deleting it")
        with self._lock:
            self._jobs.pop(job_id, None)
        job.release()

    def results(self, job_id: str, max_records: int | None, locator: str | None) -> tuple[Iterator[bytes], int,
                                                                                          str]:  # fmt: skip
        """(CSV chunks, rows in this page, next locator or "null")."""
        job = self.get(job_id)
        if job.state != "JobComplete":
            raise ApiError(400, "INVALIDJOBSTATE", f"Results are only available when the job is JobComplete; it is "
                           f"{job.state}")  # fmt: skip
        table = job.table() if job.total else None
        offset = decode_locator(locator) if locator else 0
        if offset > job.total:
            raise ApiError(400, "INVALID_LOCATOR", f"Invalid locator: {locator}")
        if max_records is None:
            size = job.path.stat().st_size if job.path else 0
            per_row = max(1, size // max(1, job.total))
            max_records = max(1, DEFAULT_PAGE_BYTES // per_row)
        stop = min(job.total, offset + max_records)
        nxt = encode_locator(stop) if stop < job.total else "null"
        return self._csv(job, table, offset, stop), stop - offset, nxt

    def _csv(self, job: Job, table: pa.Table | None, start: int, stop: int) -> Iterator[bytes]:
        delimiter = DELIMITERS[job.column_delimiter]
        headers = job.compiled.headers
        if job.line_ending == "CRLF":
            yield from _csv_python(headers, table, start, stop, delimiter)
            return
        header = pacsv.WriteOptions(include_header=True, delimiter=delimiter, quoting_style="needed")
        body = pacsv.WriteOptions(include_header=False, delimiter=delimiter, quoting_style="needed")
        if table is None or stop <= start:
            sink = io.BytesIO()
            pacsv.write_csv(pa.table({h: pa.array([], pa.string()) for h in headers}), sink, header)
            yield sink.getvalue()
            return
        first = True
        for lo in range(start, stop, WRITE_ROWS):
            part = table.slice(lo, min(WRITE_ROWS, stop - lo))
            sink = io.BytesIO()
            pacsv.write_csv(part, sink, header if first else body)
            first = False
            yield sink.getvalue()

    def close_all(self) -> None:
        """Stop the workers and delete every job's results."""
        with self._lock:
            jobs = list(self._jobs.values())
            self._jobs.clear()
        for job in jobs:
            job.aborted.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
        for job in jobs:
            job.release()


class _Timeout(Exception):
    pass


def _csv_python(headers: list[str], table: pa.Table | None, start: int, stop: int, delimiter: str
                ) -> Iterator[bytes]:  # fmt: skip
    """CRLF line endings: the csv module (Arrow writes LF only)."""
    sink = io.StringIO()
    writer = csv.writer(sink, delimiter=delimiter, lineterminator="\r\n", quoting=csv.QUOTE_ALL)
    writer.writerow(headers)
    if table is not None:
        for lo in range(start, stop, WRITE_ROWS):
            part = table.slice(lo, min(WRITE_ROWS, stop - lo)).to_pylist()
            for row in part:
                sink.write(delimiter.join("" if v is None else '"' + str(v).replace('"', '""') + '"'
                                          for v in (row[h] for h in headers)) + "\r\n")  # fmt: skip
            yield sink.getvalue().encode()
            sink.seek(0)
            sink.truncate()
    if sink.tell():
        yield sink.getvalue().encode()


# --------------------------------------------------------------------------- routes

bulk_api = Blueprint("bulk", __name__, url_prefix="/services/data/<version>/jobs")
bulk_api.url_value_preprocessor(data_api_preprocess)
bulk_api.after_request(limit_header)


def jobs() -> BulkJobs:
    """The runtime's job manager."""
    rt = runtime()
    if rt.bulk is None:
        raise not_found()
    bulk: BulkJobs = rt.bulk
    return bulk


@bulk_api.post("/query")
def create_job() -> Response:
    """Create a query job (answers with its info, state UploadComplete)."""
    job = jobs().create(read_json(), g.version, g.session.user_id)
    return json_response(job.info(detail=False))


@bulk_api.get("/query")
def list_jobs() -> Response:
    """Every query job."""
    return json_response({"done": True, "records": [j.info(detail=False) for j in jobs().all()],
                          "nextRecordsUrl": None})  # fmt: skip


@bulk_api.get("/query/<job_id>")
def job_status(job_id: str) -> Response:
    """A job's status."""
    return json_response(jobs().get(job_id).info(detail=True))


@bulk_api.patch("/query/<job_id>")
def change_job(job_id: str) -> Response:
    """Abort a job (the only state change a query job accepts)."""
    body = read_json()
    if not isinstance(body, dict) or body.get("state") != "Aborted":
        raise ApiError(400, "INVALIDJOBSTATE", "A query job can only be set to state Aborted")
    return json_response(jobs().abort(job_id).info(detail=True))


@bulk_api.delete("/query/<job_id>")
def delete_job(job_id: str) -> Response:
    """Delete a finished job."""
    jobs().delete(job_id)
    return Response(status=204)


@bulk_api.get("/query/<job_id>/results")
def job_results(job_id: str) -> Response:
    """One page of CSV results."""
    raw = request.args.get("maxRecords")
    max_records = None
    if raw is not None:
        if not raw.isdigit() or int(raw) < 1:
            raise ApiError(400, "INVALIDREQUEST", f"maxRecords must be a positive integer, got {raw!r}")
        max_records = int(raw)
    manager = jobs()
    chunks, count, nxt = manager.results(job_id, max_records, request.args.get("locator") or None)
    headers = {"Sforce-NumberOfRecords": str(count), "Sforce-Locator": nxt}
    job = manager.get(job_id)
    config = runtime().faults.config
    if config.breaks("truncated_csv", job.object):
        # the chunk ends early, at a line break: fewer rows than Sforce-NumberOfRecords says
        content = b"".join(chunks)
        cut = content.rfind(b"\n", 0, len(content) // 2)
        return Response(content[: cut + 1], 200, content_type="text/csv", headers=headers)
    if config.breaks("dropped_connection", job.object) and not job.dropped:
        job.dropped = True
        content = b"".join(chunks)
        headers["Content-Length"] = str(len(content))
        return Response(_hang_up(content, request.environ.get("werkzeug.socket")), 200, content_type="text/csv",
                        headers=headers, direct_passthrough=True)  # fmt: skip
    return Response(chunks, 200, content_type="text/csv", headers=headers)


def _hang_up(content: bytes, sock: Any) -> Iterator[bytes]:
    """Most of an announced body, then the connection is closed: a network drop mid-transfer."""
    yield content[: len(content) * 9 // 10]
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(2)
