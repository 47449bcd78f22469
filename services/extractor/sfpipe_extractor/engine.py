"""The extraction engine: objects → Parquet parts → manifest → watermarks → event.

A run extracts each object's window ``[watermark − lookback, run start − 1 s)`` (or the
whole object in full mode) with ``queryAll``, so that soft-deleted rows arrive with
IsDeleted. The order of commits is what makes it crash-safe:

1. each object's parts are written (a part exists only once closed cleanly);
2. the manifest is written last, listing every part with its generation; its finalize
   notification is what makes the loader load the run;
3. only then does each object's watermark move, with a generation precondition;
4. ``sfpipe.extract.completed`` is published.

A crash before 2 leaves parts that no manifest points at and watermarks where they were:
the next run starts from the last committed watermark. A run id encodes its start time,
so re-running a run id computes the same windows (or reuses the manifest's, once it
exists) and rewrites the same files and the one manifest.
"""

from __future__ import annotations

import contextvars
import logging
import re
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any, Literal, Protocol

import pyarrow as pa

from sfpipe.adapters.bus import EventPublisher
from sfpipe.adapters.storage import ObjectStore
from sfpipe.config import Settings
from sfpipe.errors import BadInputError, NotFoundError, SfpipeError, TransientError
from sfpipe.events import EventType, ExtractCompleted, ObjectExtract, make_event
from sfpipe.ids import is_run_id, new_run_id
from sfpipe.lake import Manifest, ManifestField, ManifestObject, data_uri, manifest_uri, parse_manifest
from sfpipe.logging import log_context
from sfpipe.salesforce import soql
from sfpipe.salesforce.client import SalesforceClient
from sfpipe.salesforce.errors import (
    ApiLimitError,
    AuthError,
    BadResponseError,
    BulkJobFailedError,
    QueryTimeoutError,
    SalesforceFatalError,
)
from sfpipe.salesforce.types import FieldInfo, fields_from_describe, queryable_fields, schema_fingerprint
from sfpipe_extractor.bulk import BulkReader
from sfpipe_extractor.convert import PageConverter, max_timestamp, true_ids
from sfpipe_extractor.pipeline import prefetch
from sfpipe_extractor.state import WatermarkState, read_state, write_state
from sfpipe_extractor.writer import ObjectWriter

log = logging.getLogger(__name__)

SERVICE = "extractor"
Mode = Literal["incremental", "full"]
RunStatus = Literal["queued", "running", "completed", "partial", "failed"]

CURSOR_FIELDS = ("SystemModstamp", "LastModifiedDate", "CreatedDate")
"""The field a window is cut on: the first of these that the object has."""

SKIPPED_TYPES = frozenset({"base64"})
"""Blob fields are not returned by queries (nor by Bulk API 2.0 at all); they are fetched one record at a time."""

EARLIEST = datetime(1999, 1, 1, tzinfo=UTC)
"""Lower bound used to split an open-ended window (no org has older data)."""

DELETED_HORIZON = timedelta(days=14)
"""``sobjects/X/deleted`` covers about 15 days: older windows are not asked for hard deletes."""

_NO_FALLBACK = (BadResponseError, ApiLimitError, AuthError)
BULK_READERS = 2
"""Bulk result chunks parsed at the same time (each on its own thread and connection)."""
"""Bulk failures that REST would not cure: a malformed page, the API budget, a refused login."""

OBJECT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,79}$")


class Progress(Protocol):
    """What the CLI's progress bars and the HTTP status page are told."""

    def started(self, sobject: str, total: int | None, api: str) -> None:
        """An object's window is known: ``total`` rows (from COUNT()) over ``api``."""

    def advanced(self, sobject: str, rows: int) -> None:
        """``rows`` more rows of an object are written."""

    def finished(self, sobject: str, status: str, detail: str) -> None:
        """An object is done (``done``) or failed (``failed``, with the error)."""


class NullProgress:
    """Progress that nobody watches."""

    def started(self, sobject: str, total: int | None, api: str) -> None:
        """Ignore."""

    def advanced(self, sobject: str, rows: int) -> None:
        """Ignore."""

    def finished(self, sobject: str, status: str, detail: str) -> None:
        """Ignore."""


@dataclass
class ObjectResult:
    """One object's outcome in a run."""

    sobject: str
    status: Literal["done", "failed"]
    entry: ManifestObject | None = None
    error: str | None = None
    state: WatermarkState | None = field(default=None, repr=False)
    generation: int = 0
    state_changed: bool = False
    rows: int = 0
    expected: int | None = None
    api: str = "none"
    seconds: float = 0.0


@dataclass
class RunReport:
    """What a run did: per object, and as a whole."""

    run_id: str
    mode: Mode
    status: RunStatus
    started_at: datetime
    ended_at: datetime | None = None
    manifest_uri: str | None = None
    objects: dict[str, ObjectResult] = field(default_factory=dict)
    error: str | None = None

    @property
    def failed(self) -> dict[str, str]:
        """Objects that failed, with their errors."""
        return {k: v.error or "failed" for k, v in self.objects.items() if v.status == "failed"}

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary (``GET /runs/<id>``, the CLI's table)."""
        return {
            "run_id": self.run_id,
            "mode": self.mode,
            "status": self.status,
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "manifest_uri": self.manifest_uri,
            "error": self.error,
            "objects": {
                name: {
                    "status": r.status,
                    "rows": r.rows,
                    "expected": r.expected,
                    "api": r.api,
                    "seconds": round(r.seconds, 3),
                    "files": len(r.entry.files) if r.entry else 0,
                    "window_from": r.entry.window_from.isoformat() if r.entry and r.entry.window_from else None,
                    "window_to": r.entry.window_to.isoformat() if r.entry else None,
                    "watermark": r.entry.watermark.isoformat() if r.entry and r.entry.watermark else None,
                    "error": r.error,
                }
                for name, r in self.objects.items()
            },
            "failed": self.failed,
        }


def run_started_at(run_id: str) -> datetime:
    """The start time a run id encodes (``YYYYMMDDTHHMMSSZ-…``)."""
    return datetime.strptime(run_id[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def parse_objects(objects: Sequence[str] | str | None, default: str) -> list[str]:
    """Object names from a list or a comma-separated string; each must be an API name."""
    if objects is None or (isinstance(objects, str | list | tuple) and len(objects) == 0):
        objects = default
    raw = objects.split(",") if isinstance(objects, str) else [p for o in objects for p in o.split(",")]
    names: list[str] = []
    for item in raw:
        name = item.strip()
        if not name:
            continue
        if not OBJECT_NAME.match(name):
            msg = f"objects: {name!r} is not a Salesforce API name; expected letters, digits and underscores"
            raise BadInputError(msg, field="objects")
        if name not in names:
            names.append(name)
    if not names:
        msg = "objects: no object to extract; expected at least one API name such as Account"
        raise BadInputError(msg, field="objects")
    return names


@dataclass
class _Job:
    """One object's extraction in progress."""

    sobject: str
    fields: list[FieldInfo]
    converter: PageConverter
    cursor: str | None
    rest_possible: bool
    """Whether the whole field list fits one REST query (otherwise REST reads column groups)."""
    rows: int = 0
    max_cursor: datetime | None = None
    soft_deleted: set[str] = field(default_factory=set)
    apis: set[str] = field(default_factory=set)
    splits: int = 0

    @property
    def names(self) -> list[str]:
        return self.converter.names

    def where(self, start: datetime | None, end: datetime | None) -> str:
        return soql.window_clause(self.cursor, start, end) if self.cursor else ""

    def add(self, table: pa.Table) -> None:
        self.rows += table.num_rows
        top = max_timestamp(table, self.cursor)
        if top is not None and (self.max_cursor is None or top > self.max_cursor):
            self.max_cursor = top
        if "IsDeleted" in table.column_names:
            self.soft_deleted.update(true_ids(table, "IsDeleted"))

    @property
    def api(self) -> str:
        if not self.apis:
            return "none"
        return next(iter(self.apis)) if len(self.apis) == 1 else "mixed"


class Extractor:
    """Runs extractions with one Salesforce client, one object store and one event publisher."""

    def __init__(
        self,
        client: SalesforceClient,
        store: ObjectStore,
        settings: Settings,
        *,
        publisher: Callable[[], EventPublisher] | None = None,
    ) -> None:
        self.client = client
        self.store = store
        self.settings = settings
        self._publisher_factory = publisher
        self._publisher: EventPublisher | None = None

    # ------------------------------------------------------------------ run

    def run(
        self,
        objects: Sequence[str] | str | None = None,
        *,
        mode: Mode = "incremental",
        run_id: str | None = None,
        progress: Progress | None = None,
        report: RunReport | None = None,
    ) -> RunReport:
        """Extract objects into the lake; object failures are reported, never raised.

        A run-level failure (login refused, manifest or watermark not writable, event not
        published) sets the report's status to ``failed`` with the error.
        """
        names = parse_objects(objects, self.settings.extract_objects)
        if mode not in ("incremental", "full"):
            msg = f"mode: {mode!r} is not a mode; expected 'incremental' or 'full'"
            raise BadInputError(msg, field="mode")
        run_id = self.validate_run_id(run_id) if run_id else new_run_id()
        progress = progress or NullProgress()
        report = report or RunReport(run_id, mode, "running", run_started_at(run_id))
        report.status = "running"
        with log_context(run_id=run_id, service=SERVICE):
            try:
                self._run(names, mode, report, progress)
            except SfpipeError as exc:
                log.error("extract run %s failed: %s", run_id, exc)
                report.status = "failed"
                report.error = str(exc)
            report.ended_at = datetime.now(UTC)
        return report

    @staticmethod
    def validate_run_id(run_id: str) -> str:
        """A run id given by a caller: the right form, and not in the future."""
        if not is_run_id(run_id):
            msg = f"run_id: {run_id!r} is not a run id; expected one like 20260101T000000Z-0a1b2c3d"
            raise BadInputError(msg, field="run_id")
        if run_started_at(run_id) > datetime.now(UTC) + timedelta(minutes=5):
            msg = f"run_id: {run_id!r} starts in the future; its time is the end of every window"
            raise BadInputError(msg, field="run_id")
        return run_id

    def _run(self, names: list[str], mode: Mode, report: RunReport, progress: Progress) -> None:
        run_id = report.run_id
        started = report.started_at
        window_to = started - timedelta(seconds=1)
        muri = manifest_uri(self.settings.lake_bucket, run_id)
        previous = self._previous_manifest(muri)
        token = self.client.token  # a refused login fails the run before any object
        log.info(
            "extract run %s (%s) of %d objects, window end %s", run_id, mode, len(names), window_to.isoformat()
        )

        def one(sobject: str) -> ObjectResult:
            reused = previous.objects.get(sobject) if previous else None
            return self._extract_safe(sobject, mode, run_id, window_to, started.date(), reused, progress)

        workers = max(1, min(self.settings.extract_concurrency, len(names)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="extract") as pool:
            futures = [pool.submit(contextvars.copy_context().run, one, name) for name in names]
            for name, future in zip(names, futures, strict=True):
                report.objects[name] = future.result()

        manifest = Manifest(
            run_id=run_id,
            created_at=started,
            mode=mode,
            org_id=token.org_id,
            objects={n: r.entry for n, r in report.objects.items() if r.status == "done" and r.entry},
            failed=report.failed,
            completed_at=datetime.now(UTC),
        )
        self.store.put_bytes(muri, manifest.model_dump_json(indent=2).encode(), content_type="application/json")
        report.manifest_uri = muri
        log.info("wrote %s (%d objects, %d failed)", muri, len(manifest.objects), len(manifest.failed))
        self._commit_watermarks(report)
        self._publish(report, manifest)
        report.status = "partial" if report.failed else "completed"

    def _previous_manifest(self, uri: str) -> Manifest | None:
        try:
            raw, _ = self.store.get_bytes(uri)
        except NotFoundError:
            return None
        manifest = parse_manifest(raw, uri)
        log.info("run already has a manifest: re-extracting its windows")
        return manifest

    def _commit_watermarks(self, report: RunReport) -> None:
        conflicts = []
        for name, result in report.objects.items():
            if result.status != "done" or result.state is None or not result.state_changed:
                continue
            try:
                write_state(self.store, self.settings.state_bucket, result.state, result.generation)
            except SfpipeError as exc:
                conflicts.append(f"{name}: {exc}")
        if conflicts:
            msg = "watermarks not moved: " + "; ".join(conflicts)
            raise SfpipeError(msg)

    def _publish(self, report: RunReport, manifest: Manifest) -> None:
        data = ExtractCompleted(
            run_id=report.run_id,
            manifest_uri=report.manifest_uri or "",
            objects={
                name: ObjectExtract(
                    window_from=entry.window_from, window_to=entry.window_to, rows=entry.rows, files=len(entry.files)
                )
                for name, entry in manifest.objects.items()
            },
            failed=manifest.failed,
        )
        event = make_event(EventType.EXTRACT_COMPLETED, data, service=SERVICE, subject=report.manifest_uri)
        if self._publisher is None:
            if self._publisher_factory is None:
                from sfpipe.adapters.factory import event_publisher

                self._publisher = event_publisher(self.settings)
            else:
                self._publisher = self._publisher_factory()
        try:
            self._publisher.publish(event)
        except TransientError as exc:
            msg = f"manifest written and watermarks moved, but {EventType.EXTRACT_COMPLETED} not published: {exc}"
            raise SfpipeError(msg) from exc

    # ------------------------------------------------------------------ one object

    def _extract_safe(
        self,
        sobject: str,
        mode: Mode,
        run_id: str,
        window_to: datetime,
        ingest_date: date,
        reused: ManifestObject | None,
        progress: Progress,
    ) -> ObjectResult:
        started = time.monotonic()
        try:
            result = self._extract(sobject, mode, run_id, window_to, ingest_date, reused, progress)
        except SfpipeError as exc:
            log.error("%s failed: %s", sobject, exc)
            result = ObjectResult(sobject, "failed", error=str(exc))
        except Exception as exc:
            log.exception("%s failed unexpectedly", sobject)
            result = ObjectResult(sobject, "failed", error=f"{type(exc).__name__}: {exc}")
        result.seconds = time.monotonic() - started
        if result.entry is not None:
            result.entry.seconds = round(result.seconds, 3)
        progress.finished(sobject, result.status, result.error or f"{result.rows} rows")
        return result

    def _extract(
        self,
        sobject: str,
        mode: Mode,
        run_id: str,
        window_to: datetime,
        ingest_date: date,
        reused: ManifestObject | None,
        progress: Progress,
    ) -> ObjectResult:
        described = fields_from_describe(self.client.describe(sobject))
        selected = [f for f in queryable_fields(described) if f.type.lower() not in SKIPPED_TYPES]
        converter = PageConverter(sobject, selected)
        names = converter.names
        cursor = next((c for c in CURSOR_FIELDS if c in names), None)
        state, generation = read_state(self.store, self.settings.state_bucket, sobject)

        start: datetime | None = None
        end = window_to
        if reused is not None:
            start, end = reused.window_from, reused.window_to
        elif mode == "incremental" and state is not None and state.watermark is not None and cursor is not None:
            start = state.watermark - timedelta(seconds=self.settings.lookback_seconds)
        if cursor is None:
            start = None

        query = soql.select(sobject, names, soql.window_clause(cursor, start, end) if cursor else "")
        rest_possible = soql.fits_url(query)  # as it travels in the URL
        job = _Job(sobject, selected, converter, cursor, rest_possible)
        expected = self.client.count(sobject, job.where(start, end), include_deleted=True)
        api = "bulk" if expected > self.settings.bulk_threshold or not rest_possible else "rest"
        progress.started(sobject, expected, api if expected else "none")
        log.info(
            "%s: window [%s, %s) holds %d rows; using %s",
            sobject,
            start.isoformat() if start else "-∞",
            end.isoformat(),
            expected,
            api if expected else "nothing",
        )

        writer = ObjectWriter(
            self.store,
            partial(data_uri, self.settings.lake_bucket, sobject, ingest_date, run_id),
            converter.schema,
        )
        try:
            if expected:
                for table in self._window(job, start, end, api):
                    writer.write(table)
                    job.add(table)
                    progress.advanced(sobject, table.num_rows)
            files = writer.close()
        except BaseException:
            writer.abort()
            raise

        hard_deleted = self._hard_deleted(job, start, end) if mode == "incremental" else []
        watermark = max((w for w in (state.watermark if state else None, job.max_cursor) if w), default=None)
        previous_fields = state.fields if state else []
        new_columns = [n for n in names if previous_fields and n not in previous_fields]
        if new_columns:
            log.info("%s: new fields in describe: %s", sobject, ", ".join(new_columns))
        fingerprint = schema_fingerprint(converter.schema)
        entry = ManifestObject(
            files=files,
            rows=writer.rows,
            window_from=start,
            window_to=end,
            schema_fingerprint=fingerprint,
            fields=[ManifestField(name=f.name, type=f.type, calculated=f.calculated) for f in selected],
            new_columns=new_columns,
            watermark=watermark,
            api=job.api,
            kind=mode,
            hard_deleted_ids=hard_deleted,
        )
        new_state = WatermarkState(
            object=sobject,
            watermark=watermark,
            cursor_field=cursor,
            run_id=run_id,
            window_to=end,
            fields=names,
            schema_fingerprint=fingerprint,
            updated_at=datetime.now(UTC),
        )
        changed = state is None or state.watermark != watermark or state.fields != names
        return ObjectResult(
            sobject,
            "done",
            entry=entry,
            state=new_state,
            generation=generation,
            state_changed=changed,
            rows=writer.rows,
            expected=expected,
            api=job.api,
        )

    # ------------------------------------------------------------------ windows

    def _window(self, job: _Job, start: datetime | None, end: datetime, api: str) -> Iterator[pa.Table]:
        """Rows of one window: Bulk first when asked, REST if the Bulk job fails before any row."""
        if api == "bulk":
            produced = False
            try:
                for table in self._bulk(job, start, end):
                    produced = True
                    yield table
                return
            except (BulkJobFailedError, SalesforceFatalError) as exc:
                # a failed or refused job (quota, an object Bulk does not support) falls back; a bad page does not
                if produced or isinstance(exc, _NO_FALLBACK):
                    raise
                how = "REST" if job.rest_possible else "REST in column groups"
                log.warning("%s: Bulk API 2.0 failed (%s); falling back to %s", job.sobject, exc, how)
        yield from self._rest(job, start, end)

    def _bulk(self, job: _Job, start: datetime | None, end: datetime) -> Iterator[pa.Table]:
        """A Bulk API 2.0 query job's results, streamed and parsed on worker threads (see :mod:`.bulk`)."""
        query = soql.select(job.sobject, job.names, job.where(start, end))
        created = self.client.create_query_job(query, include_deleted=True)
        try:
            self.client.wait_for_query_job(created.id)
            reader = BulkReader(
                self.client, job.converter, max_records=self.settings.bulk_page_records, readers=BULK_READERS
            )
            for batch in reader.batches(created.id):
                job.apis.add("bulk")
                yield pa.Table.from_batches([batch])
        finally:
            self.client.delete_query_job(created.id)

    def _rest(self, job: _Job, start: datetime | None, end: datetime) -> Iterator[pa.Table]:
        where = job.where(start, end)
        if job.rest_possible:
            query = soql.select(job.sobject, job.names, where)
            source: Iterator[list[dict[str, Any]]] = (
                page.records for page in self.client.query_pages(query, include_deleted=True)
            )
        else:
            keys = ["Id", *([job.cursor] if job.cursor else [])]
            groups = soql.column_groups(job.sobject, job.names, where, keys=keys)
            log.info("%s: %d fields do not fit one REST URL; reading %d column groups joined by Id",
                     job.sobject, len(job.names), len(groups))  # fmt: skip
            source = joined_pages(self.client, job.sobject, groups, where, job.cursor)
        pages = prefetch(source, depth=3, name=f"rest-{job.sobject}")
        try:
            first = next(pages)
        except StopIteration:
            return
        except QueryTimeoutError as exc:
            halves = self._split(job, start, end)
            if halves is None:
                raise
            job.splits += 1
            log.info("%s: %s; splitting the window in two", job.sobject, exc.error_code)
            for low, high in halves:
                yield from self._rest(job, low, high)
            return
        job.apis.add("rest")
        yield job.converter.from_records(first, where=" (REST page)")
        for records in pages:
            yield job.converter.from_records(records, where=" (REST page)")

    @staticmethod
    def _split(
        job: _Job, start: datetime | None, end: datetime
    ) -> list[tuple[datetime | None, datetime]] | None:
        """Two halves of a window at a whole second, or None when it cannot be narrowed further."""
        if job.cursor is None:
            return None
        low = soql.floor_second(start) if start else EARLIEST
        high = soql.ceil_second(end)
        if high - low <= timedelta(seconds=1):
            return None
        middle = soql.floor_second(low + (high - low) / 2)
        return [(start, middle), (middle, end)]

    def _hard_deleted(self, job: _Job, start: datetime | None, end: datetime) -> list[str]:
        """Ids deleted in the window that queryAll no longer returns (purged from the recycle bin)."""
        if start is None or job.cursor is None or "IsDeleted" not in job.names:
            return []
        now = datetime.now(UTC)
        low = start.replace(second=0, microsecond=0)
        # whole minutes, never in the future: deletions in a last partial minute are checked by
        # the next run, whose window starts a lookback earlier
        high = min(end.replace(second=0, microsecond=0) + timedelta(minutes=1), now.replace(second=0, microsecond=0))
        if high <= low or now - low > DELETED_HORIZON:
            return []
        try:
            deleted = self.client.deleted(job.sobject, low, high)
        except SalesforceFatalError as exc:
            log.info("%s: no replication API answer for deletes (%s); skipping hard-delete check", job.sobject, exc)
            return []
        # the API works in whole minutes: keep only deletions inside the window itself, whose
        # rows queryAll would have returned with IsDeleted had they still been in the recycle bin
        inside = {i for i, when in deleted.records if when is not None and start <= when < end}
        return sorted(inside - job.soft_deleted)


def joined_pages(
    client: SalesforceClient, sobject: str, groups: list[list[str]], where: str, version: str | None
) -> Iterator[list[dict[str, Any]]]:
    """Records of several column-group queries joined by Id, a page at a time.

    Every group has the same filter and ``ORDER BY Id``, so the groups advance together: one
    page of each is read in turn and a record is handed on once every group has delivered it.
    A record that changed between two group queries is left out (its groups disagree on
    ``version``, or a later group no longer sees it because its new version lies outside the
    window): the next incremental window, which starts at or before its new SystemModstamp,
    reads it whole. Memory holds about one page per group.
    """
    streams = [
        client.query_pages(soql.select(sobject, group, where, order_by="Id"), include_deleted=True) for group in groups
    ]
    pending: dict[str, list[dict[str, Any] | None]] = {}
    live = list(range(len(streams)))
    dropped = 0
    while live:
        for index in list(live):
            page = next(streams[index], None)
            if page is None:
                live.remove(index)
                continue
            for record in page.records:
                parts = pending.setdefault(str(record.get("Id")), [None] * len(streams))
                parts[index] = record
        complete: list[dict[str, Any]] = []
        for record_id in [i for i, parts in pending.items() if all(p is not None for p in parts)]:
            parts = pending.pop(record_id)
            versions = {p.get(version) for p in parts if p is not None} if version else {None}
            if len(versions) > 1:
                dropped += 1
                continue
            merged: dict[str, Any] = {}
            for p in parts:
                if p is not None:
                    merged.update(p)
            complete.append(merged)
        if complete:
            yield complete
    dropped += len(pending)
    if dropped:
        log.info("%s: %d records changed while their column groups were read; the next window takes them",
                 sobject, dropped)  # fmt: skip
