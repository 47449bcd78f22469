"""One reconciliation end to end: compare, repair, refresh formulas, record, verify, alert.

The service and ``sfpipe reconcile`` both go through :class:`ReconcileRun`. A repair is written
to the lake and loaded by the loader like any run; when its ``sfpipe.load.completed`` arrives,
:meth:`ReconcileRun.verify` reads the repair's own manifest and files, checks in the raw layer
that every record reached the version the repair fetched (and every hard delete is a
tombstone), records ``repaired`` — a new baseline — or ``unrepaired``, and publishes
``sfpipe.reconcile.alert`` for what is still different.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from sfpipe import ops
from sfpipe.adapters.bus import EventPublisher
from sfpipe.adapters.storage import ObjectStore
from sfpipe.adapters.warehouse.base import Warehouse
from sfpipe.config import Settings
from sfpipe.errors import NotFoundError, SfpipeError, TransientError
from sfpipe.events import EventType, ReconcileAlert, make_event
from sfpipe.lake import Manifest, manifest_uri, parse_manifest
from sfpipe.salesforce.client import SalesforceClient
from sfpipe_extractor.engine import parse_objects
from sfpipe_reconciler import record
from sfpipe_reconciler.formula import FormulaRefresher, FormulaRun
from sfpipe_reconciler.listing import epoch_ms
from sfpipe_reconciler.rawside import RawSide
from sfpipe_reconciler.reconcile import Checks, Mode, Reconciler
from sfpipe_reconciler.repair import Repair, Repairer

log = logging.getLogger(__name__)

SERVICE = "reconciler"
STAGE = "reconcile"


@dataclass
class Verification:
    """Whether a repair run's load closed what it was written for, per object."""

    repair_run_id: str
    objects: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per object: ``checked`` records, and those still ``stale``/``missing``/``extra``."""

    @property
    def unclosed(self) -> dict[str, dict[str, int]]:
        """Objects with records the load did not bring to the repaired state."""
        return {n: v for n, v in self.objects.items() if v.get("missing") or v.get("stale") or v.get("extra")}


@dataclass
class Outcome:
    """What one reconciliation did."""

    checks: Checks
    repair: Repair | None = None
    formula: FormulaRun | None = None
    alerted: dict[str, dict[str, int]] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """JSON-ready (the service's answer, ``sfpipe reconcile --json``)."""
        return {
            "run_id": self.checks.run_id,
            "differences": self.checks.differences,
            "api_calls": self.checks.api_calls,
            "seconds": round(self.checks.seconds, 3),
            "objects": {n: c.summary() for n, c in self.checks.objects.items()},
            "repair": None if self.repair is None else {
                "run_id": self.repair.run_id, "manifest_uri": self.repair.manifest_uri,
                "objects": {n: {"refetched": o.refetched, "hard_deleted": o.hard_deleted, "error": o.error}
                            for n, o in self.repair.objects.items()},
            },
            "formula": None if self.formula is None else {
                "run_id": self.formula.run_id, "manifest_uri": self.formula.manifest_uri,
                "objects": {n: {"fields": o.fields, "refreshed": o.refreshed, "error": o.error}
                            for n, o in self.formula.objects.items()},
            },
            "alerted": self.alerted,
        }  # fmt: skip


class ReconcileRun:
    """Reconciliation, repair and formula refresh over one client, warehouse, lake and bus."""

    def __init__(
        self,
        client: SalesforceClient,
        warehouse: Warehouse,
        store: ObjectStore,
        settings: Settings,
        publisher: EventPublisher | None = None,
        scratch: Path | None = None,
    ) -> None:
        self.client = client
        self.warehouse = warehouse
        self.store = store
        self.settings = settings
        self.publisher = publisher
        self.scratch = scratch
        # pyarrow imports pandas the first time it builds a timestamp array (0.4-1 s): pay it once,
        # as the process starts, not inside the first reconciliation's Salesforce phase
        pa.array([], pa.timestamp("ms", tz="UTC"))

    def objects(self, named: Sequence[str] | None = None) -> list[str]:
        """The objects to reconcile: the named ones, else ``SFPIPE_RECONCILE_OBJECTS``, else the extracted ones."""
        default = self.settings.reconcile_objects or self.settings.extract_objects
        return parse_objects(list(named) if named else None, default)

    def run(
        self,
        objects: Sequence[str] | None = None,
        *,
        mode: Mode = "auto",
        repair: bool = False,
        formula: bool | None = None,
        run_id: str | None = None,
        alert: bool = True,
        complete_to: Mapping[str, datetime | None] | None = None,
    ) -> Outcome:
        """Compare; repair what differs (``repair``); refresh formulas (``formula``: always, never, or when due).

        ``complete_to``: per object, the end of the extract window the raw layer was just loaded
        to (the service passes the loaded run's windows); default, the committed watermarks'.
        """
        names = self.objects(objects)
        reconciler = Reconciler(self.client, self.warehouse, self.settings, store=self.store, scratch=self.scratch)
        checks = reconciler.check(names, mode, run_id=run_id, complete_to=complete_to)
        outcome = Outcome(checks)
        repairs: dict[str, tuple[int, str | None]] = {}
        if repair and checks.differences:
            outcome.repair = Repairer(self.client, self.store, self.warehouse, self.settings).repair(checks)
            for name, done in outcome.repair.objects.items():
                repairs[name] = (done.repaired, None if done.error else outcome.repair.run_id)
        rows = []
        for name, check in checks.objects.items():
            if check.error:
                status = "failed"
            elif check.clean:
                status = "clean"
            elif name in repairs and outcome.repair and outcome.repair.manifest_uri and repairs[name][1]:
                status = "repairing"
            else:
                status = "differs"
            repaired, repair_run = repairs.get(name, (0, None))
            rows.append(record.row(checks.run_id, check, status, repaired=repaired, repair_run_id=repair_run))
        due = self._formula_due(names) if formula is None else (names if formula else [])
        if due:
            outcome.formula = FormulaRefresher(self.client, self.store, self.warehouse, self.settings,
                                               self.scratch).refresh(due)  # fmt: skip
            rows += self._formula_rows(checks.run_id, outcome.formula)
        record.write(self.warehouse, rows)
        unclosed = {
            n: {"missing": len(c.missing), "extra": len(c.extra), "stale": len(c.stale)}
            for n, c in checks.objects.items()
            if c.differences and (n not in repairs or repairs[n][1] is None)
        }
        if unclosed and alert:
            outcome.alerted = self._alert(checks.run_id, unclosed)
        return outcome

    # ------------------------------------------------------------------ formulas

    def _formula_due(self, names: list[str]) -> list[str]:
        interval = self.settings.reconcile_formula_seconds
        if not interval:
            return []
        last = record.last_formula_refresh(self.warehouse, names)
        now = datetime.now(UTC)
        return [n for n in names if n not in last or now - last[n] >= timedelta(seconds=interval)]

    def _formula_rows(self, run_id: str, run: FormulaRun) -> list[dict[str, Any]]:
        from sfpipe_reconciler.reconcile import ObjectCheck

        rows = []
        now = datetime.now(UTC)
        for name, done in run.objects.items():
            check = ObjectCheck(name, "formula", now, source_rows=done.compared, seconds=done.seconds)
            status = "failed" if done.error else ("refreshed" if done.refreshed else "clean")
            detail = {"fields": done.fields, "refreshed": done.refreshed, "error": done.error}
            rows.append(record.row(run_id, check, status, repaired=done.refreshed,
                                   repair_run_id=run.run_id if done.refreshed else None, detail=detail))  # fmt: skip
        return rows

    # ------------------------------------------------------------------ verification

    def verify(self, repair_run_id: str) -> Verification | None:
        """After a repair run's load: did every record reach the repaired state? Records it and alerts if not."""
        pending = record.pending_repair(self.warehouse, repair_run_id)
        if not pending:
            return None
        manifest = self._manifest(repair_run_id)
        result = Verification(repair_run_id)
        rows = []
        for row in pending:
            name = str(row["object"])
            entry = manifest.objects.get(name) if manifest else None
            found = result.objects[name] = self._verify_object(name, entry)
            status = "unrepaired" if any(found.get(k) for k in ("missing", "stale", "extra")) else "repaired"
            rows.append({**row, "status": status, "checked_at": ops.now(),
                         "detail": _merge_detail(row.get("detail"), {"verified": found})})  # fmt: skip
        record.write(self.warehouse, rows)
        if result.unclosed:
            self._alert(str(pending[0]["run_id"]), result.unclosed)
        return result

    def _manifest(self, run_id: str) -> Manifest | None:
        try:
            data, _ = self.store.get_bytes(manifest_uri(self.settings.lake_bucket, run_id))
        except NotFoundError:
            return None
        return parse_manifest(data)

    def _verify_object(self, name: str, entry: Any) -> dict[str, int]:
        if entry is None:
            return {"checked": 0, "missing": 1}
        side = RawSide(self.warehouse, name)
        expected: dict[str, int | None] = {}
        for f in entry.files:
            data, _ = self.store.get_bytes(f.uri)
            table = pq.read_table(io.BytesIO(data), columns=["Id", side.version])
            for record_id, version in zip(table.column(0).to_pylist(), table.column(1).to_pylist(), strict=True):
                expected[str(record_id)] = epoch_ms(version)
        hard = set(entry.hard_deleted_ids)
        rows = side.rows_by_id(sorted(set(expected) | hard))
        out = {"checked": len(expected) + len(hard), "missing": 0, "stale": 0, "extra": 0}
        for record_id, version in expected.items():
            got = rows.get(record_id)
            if got is None or got.hard_deleted:
                out["missing"] += 1
            elif version is not None and (got.version_ms is None or got.version_ms < version):
                out["stale"] += 1
        for record_id in hard:
            got = rows.get(record_id)
            if got is not None and not got.hard_deleted:
                out["extra"] += 1
        return out

    # ------------------------------------------------------------------ alerts

    def _alert(self, run_id: str, objects: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
        log.warning("reconciliation %s: differences not closed: %s", run_id, objects)
        if self.publisher is None:
            return objects
        event = make_event(EventType.RECONCILE_ALERT, ReconcileAlert(run_id=run_id, objects=objects), service=SERVICE)
        try:
            self.publisher.publish(event)
        except TransientError as exc:
            log.error("could not publish %s: %s", EventType.RECONCILE_ALERT, exc)
            raise
        return objects


def _merge_detail(raw_detail: Any, extra: dict[str, Any]) -> str:
    import json

    try:
        base = json.loads(raw_detail) if isinstance(raw_detail, str) else {}
    except ValueError:
        base = {}
    return json.dumps({**(base if isinstance(base, dict) else {}), **extra}, default=str)


def _read_manifest(store: ObjectStore, uri: str) -> Manifest | None:
    try:
        data, _ = store.get_bytes(uri)
        return parse_manifest(data, uri)
    except (NotFoundError, SfpipeError):
        return None


def manifest_kind(store: ObjectStore, uri: str) -> str | None:
    """The mode of a run's manifest (``repair`` and ``formula`` runs are the reconciler's own), or None."""
    manifest = _read_manifest(store, uri)
    return manifest.mode if manifest else None


def loaded_windows(store: ObjectStore, uri: str) -> dict[str, datetime | None] | None:
    """Per object of a loaded run, the end of its extract window (what the raw layer is now complete to)."""
    manifest = _read_manifest(store, uri)
    if manifest is None:
        return None
    return {name: entry.window_to for name, entry in manifest.objects.items()}

