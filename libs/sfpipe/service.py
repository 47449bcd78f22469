"""The thin layer every event-driven service shares: envelope in, status code out.

A service is one handler function over a parsed :class:`~sfpipe.events.CloudEvent`.
This module accepts every delivery shape (Eventarc, structured CloudEvents, Pub/Sub
push), drops events that are too old, makes redeliveries harmless through
``sfpipe_ops.processed_events``, and maps the error tree onto status codes:

- malformed envelope → 400 (Pub/Sub retries, then dead-letters it);
- ``TransientError`` → 503 (retried with backoff);
- ``TerminalError`` → 422 after the handler recorded the failure (retried, then
  dead-lettered; the work is all-or-nothing, so the retries change nothing);
- success → 200 with a JSON summary; an event already processed or not for this
  service → 204.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import flask

from sfpipe import ops
from sfpipe.adapters.warehouse.base import Warehouse
from sfpipe.config import Settings, get_settings
from sfpipe.errors import BadInputError, TerminalError, TransientError
from sfpipe.events import CloudEvent, from_cloudevents_sdk, parse_http
from sfpipe.logging import log_context, trace_from_headers

log = logging.getLogger(__name__)


@dataclass
class HandlerContext:
    """What a handler gets besides the event: a way to record it in its own transaction."""

    service: str
    event: CloudEvent
    run_id: str | None = None
    recorded: bool = False

    def processed_statements(self, outcome: str = "done") -> list[str]:
        """SQL that marks this event processed; run it in the work's final transaction."""
        self.recorded = True
        return ops.processed_event_sql(
            self.event.idempotency_key, self.service, self.event.type, self.event.id, self.run_id, outcome
        )


@dataclass
class Outcome:
    """What a handler reports back (the HTTP body)."""

    status: int = 200
    body: dict[str, Any] = field(default_factory=dict)


Handler = Callable[[CloudEvent, HandlerContext], Outcome | None]


class EventService:
    """One service's event entry point, independent of HTTP."""

    def __init__(
        self,
        name: str,
        handler: Handler,
        *,
        accepts: Iterable[str],
        warehouse: Callable[[], Warehouse],
        settings: Settings | None = None,
        idempotent: bool = True,
    ) -> None:
        self.name = name
        self.handler = handler
        self.accepts = frozenset(accepts)
        self._warehouse = warehouse
        self.settings = settings or get_settings()
        self.idempotent = idempotent
        self._ops_ready = False

    @property
    def warehouse(self) -> Warehouse:
        """The warehouse, with the ops tables created on first use."""
        wh = self._warehouse()
        if not self._ops_ready:
            ops.ensure_ops_tables(wh)
            self._ops_ready = True
        return wh

    def _too_old(self, event: CloudEvent) -> bool:
        if event.time is None:
            return False
        age = (datetime.now(UTC) - event.time).total_seconds()
        return age > self.settings.max_event_age_seconds

    def handle(self, event: CloudEvent) -> Outcome:
        """Run the handler once per event, mapping errors to status codes."""
        if event.type not in self.accepts:
            log.info("ignoring %s event %s: not for %s", event.type, event.id, self.name)
            return Outcome(204, {"ignored": f"{event.type} is not handled by {self.name}"})
        run_id = event.data.get("run_id") if isinstance(event.data, dict) else None
        ctx = HandlerContext(self.name, event, run_id=run_id)
        with log_context(run_id=run_id):
            key = event.idempotency_key
            if self.idempotent:
                previous = ops.processed_outcome(self.warehouse, key, self.name)
                if previous is not None and previous != "failed":
                    log.info("event %s already processed (%s); acknowledging", key, previous)
                    return Outcome(204, {"duplicate": key, "outcome": previous})
            if self._too_old(event):
                log.warning("dropping event %s older than %ss", key, self.settings.max_event_age_seconds)
                self.warehouse.execute(ctx.processed_statements("dropped-too-old"))
                return Outcome(204, {"dropped": key, "reason": "too old"})
            started = time.monotonic()
            try:
                outcome = self.handler(event, ctx) or Outcome()
            except TransientError as exc:
                log.warning("transient failure on %s, asking for redelivery: %s", key, exc)
                return Outcome(503, {"error": str(exc), "retry": True})
            except TerminalError as exc:
                log.error("event %s failed for good: %s", key, exc)
                if self.idempotent and not ctx.recorded:
                    self.warehouse.execute(ctx.processed_statements("failed"))
                return Outcome(422, {"error": str(exc), "retry": False})
            if self.idempotent and not ctx.recorded:
                self.warehouse.execute(ctx.processed_statements("done"))
            outcome.body.setdefault("seconds", round(time.monotonic() - started, 3))
            return outcome


def create_app(service: EventService, *, extra: Callable[[flask.Flask], None] | None = None) -> flask.Flask:
    """A Flask app: ``POST /`` takes events in any shape, ``GET /healthz`` answers 200."""
    app = flask.Flask(service.name)

    @app.get("/healthz")
    def healthz() -> flask.Response:
        return flask.jsonify({"service": service.name, "status": "ok"})

    @app.post("/")
    def receive() -> flask.Response:
        trace = trace_from_headers(dict(flask.request.headers), service.settings.project)
        with log_context(trace=trace, service=service.name):
            try:
                event = parse_http(dict(flask.request.headers), flask.request.get_data())
            except BadInputError as exc:
                log.warning("malformed event: %s", exc)
                response = flask.jsonify({"error": str(exc), "field": exc.field})
                response.status_code = 400
                return response
            outcome = service.handle(event)
        if outcome.status == 204:
            return flask.Response(status=204)
        response = flask.Response(json.dumps(outcome.body, default=str), mimetype="application/json")
        response.status_code = outcome.status
        return response

    if extra is not None:
        extra(app)
    return app


def cloud_event_entry(service: Callable[[], EventService]) -> Callable[[Any], None]:
    """A functions-framework CloudEvent function over the same service (Cloud Run + Eventarc).

    functions-framework answers 500 to an exception, which makes Eventarc retry; so a
    transient or terminal outcome raises, and success returns.
    """

    def handle(cloud_event: Any) -> None:
        outcome = service().handle(from_cloudevents_sdk(cloud_event))
        if outcome.status >= 300:
            msg = f"{outcome.status}: {outcome.body.get('error')}"
            if outcome.status == 503:
                raise TransientError(msg)
            raise TerminalError(msg)

    return handle
