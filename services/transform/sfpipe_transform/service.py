"""The transform stage: run the project for a run, record it, and tell the others.

Both entries share this: the handler of ``sfpipe.load.completed`` (Cloud Run, or the local
service behind a push subscription) and ``sfpipe transform``. Each run's ``transform``
stage goes to ``sfpipe_ops.runs`` and ends with ``sfpipe.transform.completed`` or
``sfpipe.transform.failed``. A failed action or assertion is a result, reported and
acknowledged (a retry would fail the same way); only transient trouble asks for a retry.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sfpipe import ops
from sfpipe.adapters import factory as adapters
from sfpipe.adapters.bus import EventPublisher
from sfpipe.adapters.warehouse.base import Warehouse
from sfpipe.config import Settings, get_settings
from sfpipe.errors import TransientError
from sfpipe.events import CloudEvent, EventType, LoadCompleted, make_event
from sfpipe.service import EventService, HandlerContext, Outcome
from sfpipe_transform.factory import transformer as make_transformer
from sfpipe_transform.result import Transformer, TransformRequest, TransformResult

log = logging.getLogger(__name__)

SERVICE = "transform"
STAGE = "transform"


def default_as_of(settings: Settings | None = None) -> dt.date:
    """SFPIPE_AS_OF, or today in UTC."""
    settings = settings or get_settings()
    return dt.date.fromisoformat(settings.as_of) if settings.as_of else dt.datetime.now(dt.UTC).date()


@dataclass
class TransformStage:
    """Runs a transform request end to end: ops record, transformer, event."""

    transformer: Transformer
    warehouse: Warehouse
    publisher: EventPublisher | None
    publish_timeout: float = 60.0

    def run(self, request: TransformRequest, ctx: HandlerContext | None = None) -> TransformResult:
        """Run, publish the outcome, then record the stage (with the event's idempotency record)."""
        started = ops.now()
        ops.ensure_ops_tables(self.warehouse)
        ops.record_stage(
            self.warehouse,
            request.run_id,
            STAGE,
            "running",
            started_at=started,
            detail={"as_of": request.as_of.isoformat(), "backend": self.transformer.name},
        )
        try:
            result = self.transformer.run(request)
        except TransientError as exc:
            ops.record_stage(
                self.warehouse,
                request.run_id,
                STAGE,
                "retrying",
                started_at=started,
                ended_at=ops.now(),
                detail={"as_of": request.as_of.isoformat(), "error": str(exc)},
            )
            raise
        if self.publisher is not None:
            if result.succeeded:
                event = make_event(EventType.TRANSFORM_COMPLETED, result.completed_event(), service=SERVICE)
            else:
                event = make_event(EventType.TRANSFORM_FAILED, result.failed_event(), service=SERVICE)
            self.publisher.publish(event, timeout=self.publish_timeout)
        status = "succeeded" if result.succeeded else "failed"
        detail: dict[str, Any] = {
            "as_of": request.as_of.isoformat(),
            "backend": self.transformer.name,
            "actions": len(result.actions),
            "failed": [a.name for a in result.failed_actions],
            "skipped": sum(1 for a in result.actions if a.status == "skipped"),
            "invocation": result.invocation,
            "seconds": result.seconds,
        }
        if not result.succeeded:
            detail["reason"] = result.reason
        statements = ops.stage_sql(
            request.run_id, STAGE, status, started_at=started, ended_at=ops.now(), rows=result.rows, detail=detail
        )
        if ctx is not None:
            statements += ctx.processed_statements("done" if result.succeeded else "transform-failed")
        self.warehouse.execute(statements)
        log.info(
            "transform of run %s %s: %d actions in %.1f s", request.run_id, status, len(result.actions), result.seconds
        )
        return result


def handler(
    stage: Callable[[], TransformStage], settings: Settings | None = None
) -> Callable[[CloudEvent, HandlerContext], Outcome]:
    """The `sfpipe.load.completed` handler over a (lazily built) transform stage."""

    def handle(event: CloudEvent, ctx: HandlerContext) -> Outcome:
        data = event.model_data()
        assert isinstance(data, LoadCompleted)
        request = TransformRequest(run_id=data.run_id, as_of=default_as_of(settings))
        result = stage().run(request, ctx)
        body = {
            "run_id": data.run_id,
            "status": "succeeded" if result.succeeded else "failed",
            "as_of": request.as_of.isoformat(),
            "actions": len(result.actions),
            "failed": [a.name for a in result.failed_actions],
            "invocation": result.invocation,
        }
        if not result.succeeded:
            body["reason"] = result.reason
        return Outcome(200, body)

    return handle


def build_stage(settings: Settings | None = None, warehouse: Warehouse | None = None) -> TransformStage:
    """The transform stage of this mode, on the process's shared warehouse and publisher."""
    settings = settings or get_settings()
    warehouse = warehouse or adapters.shared_warehouse()
    return TransformStage(make_transformer(settings, warehouse), warehouse, adapters.event_publisher(settings))


def build_service(
    settings: Settings | None = None,
    *,
    warehouse: Callable[[], Warehouse] | None = None,
    stage: Callable[[], TransformStage] | None = None,
) -> EventService:
    """The transform's event service (idempotent through sfpipe_ops.processed_events)."""
    settings = settings or get_settings()
    warehouse = warehouse or adapters.shared_warehouse
    lazy_stage = stage or functools.cache(lambda: build_stage(settings, warehouse()))
    return EventService(
        SERVICE,
        handler(lazy_stage, settings),
        accepts={EventType.LOAD_COMPLETED},
        warehouse=warehouse,
        settings=settings,
    )
