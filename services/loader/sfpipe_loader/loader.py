"""A run manifest → the raw layer, object by object, each object all or nothing.

For each object of the run (in name order):

1. its files are checked before anything is written: each exists at the manifest's
   generation and is Parquet with the row count the manifest states;
2. the files are staged (warehouse-native: DuckDB reads them itself / BigQuery load jobs;
   Beam: the pipeline's deduplicated output) and handed to :class:`sfpipe.raw.RawLayer`,
   whose one transaction holds the schema change, the MERGE, the ``__changes`` insert and
   this object's processed-event record;
3. the outcome goes to ``sfpipe_ops.loads``.

A redelivered event skips the objects whose record exists, so a retry after a partial
failure finishes the run without loading anything twice. The run ends with one event:
``sfpipe.load.completed`` (every object loaded) or ``sfpipe.load.failed`` (the reasons,
and what did load). Event ids are derived from the manifest, so a republished event is
the same event to its consumers.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import pyarrow as pa
import pyarrow.parquet as pq

from sfpipe import ops, raw
from sfpipe.adapters.bus import EventPublisher
from sfpipe.adapters.pipelines import Launched, LoadRequest, PipelineLauncher
from sfpipe.adapters.storage import ObjectStore
from sfpipe.adapters.warehouse.base import MergeResult, TableRef, Warehouse
from sfpipe.config import LoadPath, Settings
from sfpipe.errors import NotFoundError, SfpipeError, TerminalError
from sfpipe.events import EventType, LoadCompleted, LoadFailed, ObjectLoad, StorageObject, make_event
from sfpipe.ids import is_run_id
from sfpipe.lake import Manifest, ManifestFile, ManifestObject, StagedRun, parse_manifest
from sfpipe.logging import log_context
from sfpipe.salesforce.types import UnknownFieldType, arrow_type
from sfpipe_loader.paths import PathChoice, choose_path

log = logging.getLogger(__name__)

SERVICE = "loader"
STAGE = "load"
VERIFY_THREADS = 8

Status = Literal["loaded", "failed", "skipped"]


@dataclass
class ObjectResult:
    """One object's outcome in this delivery."""

    sobject: str
    status: Status
    path: str
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    seconds: float = 0.0
    rows: int = 0
    error: str | None = None
    added: list[str] = field(default_factory=list)
    widened: list[str] = field(default_factory=list)

    def as_event(self) -> ObjectLoad:
        """The per-object part of ``sfpipe.load.completed``."""
        return ObjectLoad(
            inserted=self.inserted,
            updated=self.updated,
            deleted=self.deleted,
            seconds=round(self.seconds, 3),
            path=self.path if self.path in ("warehouse", "beam") else "warehouse",
        )


@dataclass
class RunResult:
    """What loading one manifest did."""

    run_id: str
    manifest_uri: str
    choice: PathChoice | None = None
    objects: dict[str, ObjectResult] = field(default_factory=dict)
    reason: str | None = None
    """Why the whole run could not load (an unreadable manifest)."""
    ignored: str | None = None
    """Why this delivery did nothing (an older generation of the manifest)."""
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def failed(self) -> dict[str, str]:
        """Objects that failed, with their reasons."""
        return {n: r.error or "failed" for n, r in self.objects.items() if r.status == "failed"}

    @property
    def ok(self) -> bool:
        """Whether every object is in the raw layer."""
        return self.reason is None and not self.failed

    def summary(self) -> str:
        """One line for logs and the failed event."""
        if self.reason:
            return self.reason
        if not self.failed:
            return f"loaded {len(self.objects)} objects"
        parts = [f"{name}: {reason}" for name, reason in sorted(self.failed.items())]
        return f"{len(self.failed)} of {len(self.objects)} objects failed: " + "; ".join(parts)

    def body(self) -> dict[str, object]:
        """The HTTP answer's JSON."""
        return {
            "run_id": self.run_id,
            "manifest_uri": self.manifest_uri,
            "path": self.choice.path.value if self.choice else None,
            "objects": {
                n: {k: v for k, v in vars(r).items() if k != "sobject"} for n, r in sorted(self.objects.items())
            },
            "failed": self.failed,
            "reason": self.reason,
        }


def _event_id(key: str, kind: str, detail: str = "") -> str:
    return hashlib.sha256(f"{key}|{kind}|{detail}".encode()).hexdigest()[:32]


def declared_types(entry: ManifestObject) -> dict[str, pa.DataType]:
    """Describe's types for the manifest's fields; a field type sfpipe does not know keeps the file's type."""
    types = {}
    for f in entry.fields:
        try:
            types[f.name] = arrow_type(f.type)
        except UnknownFieldType:
            log.warning("field %s has unknown type %s; keeping the Parquet type", f.name, f.type)
    return types


def tombstone_version(manifest: Manifest, entry: ManifestObject) -> datetime:
    """When the run observed its hard deletes: no version of a deleted record is later than this."""
    candidates = [manifest.created_at, entry.window_to]
    if manifest.completed_at is not None:
        candidates.append(manifest.completed_at)
    return max(c if c.tzinfo else c.replace(tzinfo=UTC) for c in candidates)


def run_id_from_uri(uri: str) -> str | None:
    """The run id in a manifest's path, when it has that form."""
    parts = uri.split("/")
    candidate = parts[-2] if len(parts) >= 2 else ""
    return candidate if is_run_id(candidate) else None


class Loader:
    """Loads manifests into the raw layer of one warehouse."""

    def __init__(
        self,
        settings: Settings,
        warehouse: Warehouse,
        store: ObjectStore,
        publisher: EventPublisher | None,
        launcher: Callable[[], PipelineLauncher] | None = None,
    ) -> None:
        self.settings = settings
        self.warehouse = warehouse
        self.store = store
        self.publisher = publisher
        self._launcher = launcher
        self.raw = raw.RawLayer(warehouse)
        self._ops_ready = False

    # -- entry points ---------------------------------------------------------------------

    def load_object_event(self, obj: StorageObject, key: str, *, forced: LoadPath | None = None) -> RunResult:
        """Load the manifest a finalize event names (its generation, not whatever is live now)."""
        try:
            data, generation = self.store.get_bytes(obj.uri)
        except NotFoundError:
            return RunResult(run_id_from_uri(obj.name) or "", obj.uri, ignored=f"{obj.uri} no longer exists")
        if obj.generation and generation != obj.generation:
            return RunResult(
                run_id_from_uri(obj.name) or "",
                obj.uri,
                ignored=f"{obj.uri} is now at generation {generation}; this event is for {obj.generation}",
            )
        return self.load_manifest_bytes(data, obj.uri, generation, key, forced=forced)

    def load_manifest_bytes(
        self, data: bytes, uri: str, generation: int, key: str, *, forced: LoadPath | None = None
    ) -> RunResult:
        """Validate a manifest and load it; a bad manifest fails the run with the field named."""
        self._ensure_ops()
        try:
            manifest = parse_manifest(data, uri)
        except SfpipeError as exc:
            result = RunResult(run_id_from_uri(uri) or "", uri, reason=str(exc))
            self._finish(result, key, started_at=ops.now())
            return result
        return self.load_manifest(manifest, uri, generation, key, forced=forced)

    def load_manifest(
        self,
        manifest: Manifest,
        uri: str,
        generation: int,
        key: str,
        *,
        forced: LoadPath | None = None,
    ) -> RunResult:
        """Load every object of a manifest not loaded by an earlier delivery of the same event."""
        self._ensure_ops()
        started_at = ops.now()
        result = RunResult(manifest.run_id, uri)
        with log_context(run_id=manifest.run_id):
            self._record_extract(manifest)
            ops.record_stage(self.warehouse, manifest.run_id, STAGE, "running", started_at=started_at)
            names = sorted(manifest.objects)
            done = self._already_loaded(key, names, manifest.run_id)
            todo = [n for n in names if n not in done]
            result.objects.update(done)
            result.choice = choose_path(manifest, self.settings, forced=forced, objects=todo)
            log.info(
                "loading run %s: %d objects (%d done before) via %s (%s)",
                manifest.run_id, len(todo), len(done), result.choice.path.value, result.choice.reason,
            )
            problems = self.verify(manifest, todo)
            for name, reason in problems.items():
                result.objects[name] = self._failed(manifest, name, reason, result.choice.path.value, 0.0)
            ready = [n for n in todo if n not in problems]
            ingested_at = ops.now()
            if result.choice.path is LoadPath.BEAM and any(manifest.objects[n].files for n in ready):
                result.objects.update(self._load_beam(manifest, uri, generation, ready, key, ingested_at, result))
            else:
                for name in ready:
                    result.objects[name] = self._load_warehouse(manifest, name, key, ingested_at)
            self._finish(result, key, started_at=started_at)
        return result

    # -- checks ---------------------------------------------------------------------------

    def verify(self, manifest: Manifest, objects: Sequence[str]) -> dict[str, str]:
        """Objects whose files are missing, changed or not Parquet: they fail before any write.

        Files are checked a few at a time (two small range reads each: the footer's length,
        then the footer), which keeps a backfill of thousands of files to seconds.
        """
        checks = [(name, f) for name in objects for f in manifest.objects[name].files]
        with ThreadPoolExecutor(max_workers=VERIFY_THREADS) as pool:
            found = list(pool.map(lambda item: self._check_file(item[1]), checks))
        problems: dict[str, list[str]] = {}
        for (name, _), issue in zip(checks, found, strict=True):
            if issue:
                problems.setdefault(name, []).append(issue)
        return {name: "; ".join(issues) for name, issues in problems.items()}

    def _check_file(self, f: ManifestFile) -> str | None:
        stat = self.store.stat(f.uri)
        if stat is None:
            return f"{f.uri} is missing"
        if f.generation and stat.generation != f.generation:
            return f"{f.uri} is at generation {stat.generation}, the manifest names {f.generation}"
        try:
            with self.store.open_read(f.uri) as stream:
                rows = pq.read_metadata(stream).num_rows
        except (pa.ArrowException, OSError) as exc:
            return f"{f.uri} is not readable Parquet ({exc})"
        if rows != f.rows:
            return f"{f.uri} holds {rows} rows, the manifest says {f.rows}"
        return None

    # -- paths ----------------------------------------------------------------------------

    def _load_warehouse(self, manifest: Manifest, name: str, key: str, ingested_at: datetime) -> ObjectResult:
        started = time.monotonic()
        entry = manifest.objects[name]
        try:
            if entry.files:
                stage = raw.stage_ref(name)
                with self.warehouse.staged_parquet(
                    stage,
                    [f.uri for f in entry.files],
                    source_file_column=raw.SOURCE_FILE,
                    generations=[f.generation for f in entry.files],
                ) as schema:
                    return self._apply(manifest, name, key, stage, schema, ingested_at, "warehouse", started)
            return self._apply(manifest, name, key, None, None, ingested_at, "warehouse", started)
        except TerminalError as exc:
            return self._failed(manifest, name, str(exc), "warehouse", time.monotonic() - started)

    def _load_beam(
        self,
        manifest: Manifest,
        uri: str,
        generation: int,
        objects: list[str],
        key: str,
        ingested_at: datetime,
        result: RunResult,
    ) -> dict[str, ObjectResult]:
        if self._launcher is None:
            msg = "this loader has no pipeline launcher"
            raise TerminalError(msg)
        started = time.monotonic()
        launcher = self._launcher()
        request = LoadRequest(manifest.run_id, uri, generation, tuple(objects))
        launched: Launched = launcher.launch(request)
        try:
            staged = launcher.wait(launched, float(self.settings.load_timeout_seconds))
        except TerminalError as exc:
            launcher.cleanup(launched)
            elapsed = time.monotonic() - started
            return {n: self._failed(manifest, n, str(exc), "beam", elapsed) for n in objects}
        result.timings.update({f"pipeline_{k}": v for k, v in staged.timings.items()})
        result.timings["pipeline_wall"] = time.monotonic() - started
        try:
            return {n: self._merge_staged(manifest, staged, n, key, ingested_at, started) for n in objects}
        finally:
            launcher.cleanup(launched)

    def _merge_staged(
        self, manifest: Manifest, staged: StagedRun, name: str, key: str, ingested_at: datetime, started: float
    ) -> ObjectResult:
        part = staged.objects.get(name)
        if part is None:
            return self._failed(manifest, name, "the Beam pipeline staged nothing for it", "beam", 0.0)
        try:
            if part.files:
                stage = raw.stage_ref(name)
                with self.warehouse.staged_parquet(stage, [f.uri for f in part.files]) as schema:
                    return self._apply(manifest, name, key, stage, schema, ingested_at, "beam", started, unique=True)
            return self._apply(manifest, name, key, None, None, ingested_at, "beam", started)
        except TerminalError as exc:
            return self._failed(manifest, name, str(exc), "beam", time.monotonic() - started)

    def _apply(
        self,
        manifest: Manifest,
        name: str,
        key: str,
        stage: TableRef | None,
        schema: pa.Schema | None,
        ingested_at: datetime,
        path: str,
        started: float,
        *,
        unique: bool = False,
    ) -> ObjectResult:
        entry = manifest.objects[name]
        marker = ops.processed_event_sql(
            self.object_key(key, name), SERVICE, "object", name, manifest.run_id, "done"
        )
        loaded = self.raw.apply(
            name,
            stage,
            schema,
            source="batch",
            run_id=manifest.run_id,
            ingested_at=ingested_at,
            declared=declared_types(entry),
            tombstones=entry.hard_deleted_ids,
            tombstone_version=tombstone_version(manifest, entry),
            tombstone_origin=f"hard_deleted_ids of {manifest.run_id}",
            replace_equal=entry.kind != "incremental",
            revive_tombstones=entry.kind == "repair",
            unique=unique,
            extra_statements=marker,
        )
        outcome = self._loaded(manifest, name, loaded.result, path, time.monotonic() - started, entry.rows)
        outcome.added, outcome.widened = loaded.added, loaded.widened
        return outcome

    # -- records --------------------------------------------------------------------------

    @staticmethod
    def object_key(key: str, name: str) -> str:
        """The processed-event key of one object of an event."""
        return f"{key}::{name}"

    def _ensure_ops(self) -> None:
        if not self._ops_ready:
            ops.ensure_ops_tables(self.warehouse)
            self._ops_ready = True

    def _already_loaded(self, key: str, names: Sequence[str], run_id: str) -> dict[str, ObjectResult]:
        keys = ", ".join(ops.sql_literal(self.object_key(key, n)) for n in names)
        if not keys:
            return {}
        rows = self.warehouse.query(
            f"SELECT event_id FROM {ops.PROCESSED_EVENTS.sql} WHERE `service` = {ops.sql_literal(SERVICE)} "
            f"AND `key` IN ({keys}) AND outcome = 'done'"
        ).to_pylist()
        done = sorted({r["event_id"] for r in rows})
        if not done:
            return {}
        previous = self.warehouse.query(
            f"SELECT object, path, inserted, updated, deleted, seconds FROM {ops.LOADS.sql} "
            f"WHERE run_id = {ops.sql_literal(run_id)} AND status = 'loaded' ORDER BY loaded_at"
        ).to_pylist()
        latest = {r["object"]: r for r in previous}
        results = {}
        for name in done:
            row = latest.get(name, {})
            results[name] = ObjectResult(
                name,
                "skipped",
                str(row.get("path") or "warehouse"),
                inserted=int(row.get("inserted") or 0),
                updated=int(row.get("updated") or 0),
                deleted=int(row.get("deleted") or 0),
                seconds=float(row.get("seconds") or 0.0),
            )
        return results

    def _loaded(
        self, manifest: Manifest, name: str, merged: MergeResult, path: str, seconds: float, rows: int
    ) -> ObjectResult:
        outcome = ObjectResult(
            name, "loaded", path, merged.inserted, merged.updated, merged.deleted, seconds, rows=rows
        )
        self._record_load(manifest.run_id, outcome)
        log.info(
            "%s: %d inserted, %d updated, %d deleted in %.2fs (%s)",
            name, merged.inserted, merged.updated, merged.deleted, seconds, path,
        )
        return outcome

    def _failed(self, manifest: Manifest, name: str, reason: str, path: str, seconds: float) -> ObjectResult:
        outcome = ObjectResult(name, "failed", path, seconds=seconds, error=reason, rows=manifest.objects[name].rows)
        self._record_load(manifest.run_id, outcome)
        log.error("%s failed: %s", name, reason)
        return outcome

    def _record_load(self, run_id: str, outcome: ObjectResult) -> None:
        self.warehouse.execute(
            ops.insert_sql(
                ops.LOADS,
                {
                    "run_id": run_id,
                    "object": outcome.sobject,
                    "path": outcome.path,
                    "status": outcome.status,
                    "inserted": outcome.inserted,
                    "updated": outcome.updated,
                    "deleted": outcome.deleted,
                    "seconds": round(outcome.seconds, 3),
                    "error": outcome.error,
                    "loaded_at": ops.now(),
                },
            )
        )

    def _record_extract(self, manifest: Manifest) -> None:
        """The run's extract stage, from its manifest: the extractor writes no warehouse rows (ADR 0063)."""
        status = "failed" if manifest.failed else "succeeded"
        detail: dict[str, object] = {
            "mode": manifest.mode,
            "objects": {
                name: {"rows": obj.rows, "files": len(obj.files), "api": obj.api, "seconds": obj.seconds}
                for name, obj in sorted(manifest.objects.items())
            },
        }
        if manifest.failed:
            detail["failed"] = dict(sorted(manifest.failed.items()))
        ops.record_stage(
            self.warehouse, manifest.run_id, "extract", status,
            started_at=manifest.created_at, ended_at=manifest.completed_at or manifest.created_at,
            rows=sum(obj.rows for obj in manifest.objects.values()), detail=detail,
        )

    def _finish(self, result: RunResult, key: str, *, started_at: datetime) -> None:
        """The run's load stage and its one event."""
        status = "succeeded" if result.ok else "failed"
        detail: dict[str, object] = {
            "path": result.choice.path.value if result.choice else None,
            "objects": {n: {"status": r.status, "inserted": r.inserted, "updated": r.updated, "deleted": r.deleted}
                        for n, r in sorted(result.objects.items())},
        }
        if not result.ok:
            detail["reason"] = result.summary()
        if result.run_id:
            ops.record_stage(
                self.warehouse, result.run_id, STAGE, status, started_at=started_at, ended_at=ops.now(),
                rows=sum(r.rows for r in result.objects.values() if r.status != "failed"), detail=detail,
            )
        self.publish(result, key)

    def publish(self, result: RunResult, key: str) -> None:
        """``sfpipe.load.completed`` or ``sfpipe.load.failed`` (with a stable id per outcome)."""
        if self.publisher is None or not result.run_id:
            return
        loaded = {n: r.as_event() for n, r in result.objects.items() if r.status != "failed"}
        if result.ok:
            data = LoadCompleted(run_id=result.run_id, manifest_uri=result.manifest_uri, objects=loaded)
            event = make_event(EventType.LOAD_COMPLETED, data, service=SERVICE, event_id=_event_id(key, "completed"))
        else:
            reason = result.summary()
            failed = LoadFailed(
                run_id=result.run_id, manifest_uri=result.manifest_uri, reason=reason[:4000],
                objects=result.failed, loaded=loaded,
            )
            event_id = _event_id(key, "failed", reason)
            event = make_event(EventType.LOAD_FAILED, failed, service=SERVICE, event_id=event_id)
        self.publisher.publish(event)

