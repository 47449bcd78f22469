"""The contract every event-driven service keeps, as a test class the library ships.

A service's tests subclass :class:`EventServiceContract`, say how to build the service
and a valid event for it, and inherit the checks for bad envelopes, foreign event types,
redelivery and old events — the same checks for every service.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import flask

from sfpipe.events import CloudEvent


def push_body(event: CloudEvent, delivery_attempt: int | None = None) -> bytes:
    """The Pub/Sub push envelope that the emulator (or Pub/Sub) would send for an event."""
    message = {
        "data": base64.b64encode(json.dumps(event.data).encode()).decode(),
        "attributes": event.attributes(),
        "messageId": event.id,
    }
    envelope: dict[str, Any] = {"message": message, "subscription": "projects/p/subscriptions/s"}
    if delivery_attempt is not None:
        envelope["deliveryAttempt"] = delivery_attempt
    return json.dumps(envelope).encode()


class EventServiceContract:
    """Inherit this in a service's tests; implement ``app`` and ``valid_event``."""

    def app(self) -> flask.Flask:
        """The service's Flask app, wired to test dependencies."""
        raise NotImplementedError

    def valid_event(self) -> CloudEvent:
        """An event the service accepts and processes successfully."""
        raise NotImplementedError

    def side_effect_count(self) -> int:
        """How many times the service's work took effect (rows written, events published…)."""
        raise NotImplementedError

    def test_contract_healthz(self) -> None:
        """`GET /healthz` answers 200."""
        assert self.app().test_client().get("/healthz").status_code == 200

    def test_contract_malformed_envelope_is_400_naming_the_problem(self) -> None:
        """Garbage is a 400 with a JSON body that says what was expected."""
        client = self.app().test_client()
        response = client.post("/", data=b"{not json", content_type="application/json")
        assert response.status_code == 400
        assert "expected" in response.get_json()["error"]

    def test_contract_foreign_event_type_is_acknowledged(self) -> None:
        """An event type the service does not handle is acknowledged and ignored."""
        event = self.valid_event().model_copy(update={"type": "sfpipe.something.else"})
        before = self.side_effect_count()
        response = self.app().test_client().post("/", data=push_body(event), content_type="application/json")
        assert response.status_code == 204
        assert self.side_effect_count() == before

    def test_contract_redelivery_changes_nothing(self) -> None:
        """The same event twice takes effect once."""
        app = self.app()
        event = self.valid_event()
        first = app.test_client().post("/", data=push_body(event), content_type="application/json")
        assert first.status_code in (200, 204), first.get_data(as_text=True)
        after_first = self.side_effect_count()
        second = app.test_client().post("/", data=push_body(event, delivery_attempt=2), content_type="application/json")
        assert second.status_code == 204
        assert self.side_effect_count() == after_first

    def test_contract_old_event_is_dropped(self) -> None:
        """An event older than the configured age is acknowledged, not processed."""
        event = self.valid_event().model_copy(update={"time": datetime.now(UTC) - timedelta(days=30)})
        before = self.side_effect_count()
        response = self.app().test_client().post("/", data=push_body(event), content_type="application/json")
        assert response.status_code == 204
        assert self.side_effect_count() == before
