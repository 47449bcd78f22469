"""The reconciler's event handler: ``sfpipe.load.completed`` → reconcile, repair, verify, alert.

- The load of an **extract** run: reconcile the objects it loaded (a recent pass, or a full one
  when due), repair what differs when ``SFPIPE_RECONCILE_REPAIR`` is on, refresh formula fields
  when due, and record the ``reconcile`` stage of that run in ``sfpipe_ops.runs``.
- The load of one of the reconciler's own **repair** runs: verify it (no new reconciliation,
  so repairs never chase their own tail); what is still different is alerted.
- The load of a **formula** run: nothing to do.

Salesforce or the warehouse being unreachable is transient (503, Pub/Sub redelivers); a
redelivered event whose work is recorded is acknowledged by the shared idempotency check.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from sfpipe import ops
from sfpipe.adapters import factory as adapters
from sfpipe.adapters.warehouse.base import Warehouse
from sfpipe.config import Settings, get_settings
from sfpipe.events import CloudEvent, EventType, LoadCompleted
from sfpipe.salesforce.client import SalesforceClient
from sfpipe.service import EventService, HandlerContext, Outcome
from sfpipe_reconciler.run import SERVICE, STAGE, ReconcileRun, loaded_windows, manifest_kind

log = logging.getLogger(__name__)


def build_run(settings: Settings, warehouse: Warehouse) -> ReconcileRun:
    """The reconciler's engine on this mode's adapters."""
    return ReconcileRun(
        SalesforceClient.from_settings(settings),
        warehouse,
        adapters.object_store(settings),
        settings,
        adapters.event_publisher(settings),
        scratch=settings.home / "tmp",
    )


def handler(engine: Callable[[], ReconcileRun], settings: Settings) -> Callable[[CloudEvent, HandlerContext], Outcome]:
    """The ``sfpipe.load.completed`` handler over a (lazily built) engine."""

    def handle(event: CloudEvent, ctx: HandlerContext) -> Outcome:
        data = event.model_data()
        assert isinstance(data, LoadCompleted)
        run = engine()
        kind = manifest_kind(run.store, data.manifest_uri)
        if kind == "repair":
            verified = run.verify(data.run_id)
            body = {"run_id": data.run_id, "verified": None if verified is None else verified.objects,
                    "unclosed": {} if verified is None else verified.unclosed}  # fmt: skip
            return Outcome(200, body)
        if kind == "formula":
            return Outcome(200, {"run_id": data.run_id, "ignored": "a formula refresh of the reconciler's own"})
        objects = sorted(data.objects) or None
        started = ops.now()
        ops.record_stage(run.warehouse, data.run_id, STAGE, "running", started_at=started)
        outcome = run.run(objects, repair=settings.reconcile_repair, run_id=data.run_id,
                          complete_to=loaded_windows(run.store, data.manifest_uri))  # fmt: skip
        checks = outcome.checks
        status = "failed" if checks.failed and len(checks.failed) == len(checks.objects) else "succeeded"
        detail = {
            "differences": checks.differences,
            "api_calls": checks.api_calls,
            "repair_run_id": outcome.repair.run_id if outcome.repair and outcome.repair.manifest_uri else None,
            "objects": {n: {"mode": c.mode, "missing": len(c.missing), "extra": len(c.extra), "stale": len(c.stale)}
                        for n, c in checks.objects.items()},
            "failed": checks.failed,
        }  # fmt: skip
        statements = ops.stage_sql(data.run_id, STAGE, status, started_at=started, ended_at=ops.now(),
                                   rows=sum(c.source_rows for c in checks.objects.values()), detail=detail)  # fmt: skip
        statements += ctx.processed_statements("done")
        run.warehouse.execute(statements)
        log.info("reconciled run %s: %d differences over %d objects, %d API calls", data.run_id,
                 checks.differences, len(checks.objects), checks.api_calls)  # fmt: skip
        return Outcome(200, outcome.summary())

    return handle


def build_service(
    settings: Settings | None = None,
    *,
    warehouse: Callable[[], Warehouse] | None = None,
    engine: Callable[[], ReconcileRun] | None = None,
) -> EventService:
    """The reconciler's event service (idempotent through ``sfpipe_ops.processed_events``)."""
    settings = settings or get_settings()
    warehouse = warehouse or adapters.shared_warehouse
    lazy = engine or functools.cache(lambda: build_run(settings, warehouse()))
    return EventService(
        SERVICE,
        handler(lazy, settings),
        accepts={EventType.LOAD_COMPLETED},
        warehouse=warehouse,
        settings=settings,
    )
