"""The `sfpipe.load.completed` handler on the real Pub/Sub emulator and a DuckDB warehouse.

The transform runs for real (Dataform CLI compile, local runner); the events it publishes
are pulled from their topics; the run's stage and the event's idempotency record are read
back from sfpipe_ops.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from sfpipe import ops
from sfpipe.adapters.warehouse.duckdb.client import DuckDBWarehouse
from sfpipe.adapters.warehouse.duckdb.session import EmbeddedSession
from sfpipe.config import Settings
from sfpipe.events import EventType, LoadCompleted, ObjectLoad, TransformCompleted, TransformFailed, make_event
from sfpipe.service import create_app
from sfpipe_transform.service import build_service

pytestmark = pytest.mark.integration

RUN_ID = "20240515T230000Z-0a1b2c3d"
TOPICS = {"completed": "sfpipe-transform-completed", "failed": "sfpipe-transform-failed"}


@pytest.fixture
def topics(transform_settings: Settings) -> dict[str, str]:
    """The two transform topics in the test's project, each with a pull subscription."""
    from google.cloud import pubsub_v1

    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    subs = {}
    for key, topic in TOPICS.items():
        topic_path = publisher.topic_path(transform_settings.project, topic)
        publisher.create_topic(name=topic_path)
        sub = subscriber.subscription_path(transform_settings.project, f"{topic}-test")
        subscriber.create_subscription(name=sub, topic=topic_path)
        subs[key] = sub
    subscriber.close()
    return subs


def pull(subscription: str, expect: int, timeout: float = 20.0) -> list[Any]:
    from google.cloud import pubsub_v1

    subscriber = pubsub_v1.SubscriberClient()
    try:
        messages = []
        deadline = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=timeout)
        while len(messages) < expect and dt.datetime.now(dt.UTC) < deadline:
            response = subscriber.pull(subscription=subscription, max_messages=10, timeout=5)
            for received in response.received_messages:
                messages.append(received.message)
            if response.received_messages:
                subscriber.acknowledge(
                    subscription=subscription, ack_ids=[m.ack_id for m in response.received_messages]
                )
        return messages
    finally:
        subscriber.close()


def load_event(event_id: str = "load-event-1") -> Any:
    data = LoadCompleted(
        run_id=RUN_ID,
        manifest_uri=f"gs://lake/salesforce/_runs/{RUN_ID}/_manifest.json",
        objects={"Opportunity": ObjectLoad(inserted=13, updated=0, deleted=1, seconds=0.2)},
    )
    return make_event(EventType.LOAD_COMPLETED, data, service="loader", event_id=event_id)


def push_body(event: Any) -> bytes:
    message = {
        "attributes": event.attributes(),
        "data": base64.b64encode(json.dumps(event.data).encode()).decode(),
        "messageId": "m-1",
    }
    return json.dumps({"message": message, "subscription": "projects/p/subscriptions/transform"}).encode()


def test_load_completed_runs_the_transform_and_publishes(
    transform_settings: Settings, golden_warehouse_file: Path, topics: dict[str, str]
) -> None:
    wh = DuckDBWarehouse(EmbeddedSession(golden_warehouse_file))
    try:
        app = create_app(build_service(transform_settings, warehouse=lambda: wh))
        client = app.test_client()
        assert client.get("/healthz").status_code == 200

        event = load_event()
        response = client.post("/", data=push_body(event), content_type="application/json")
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_json()
        assert body["status"] == "succeeded" and body["as_of"] == "2024-05-15" and body["actions"] == 66

        messages = pull(topics["completed"], 1)
        assert len(messages) == 1
        assert messages[0].attributes["ce-type"] == "sfpipe.transform.completed"
        assert messages[0].attributes["ce-source"] == "//sfpipe/transform"
        completed = TransformCompleted.model_validate_json(messages[0].data)
        assert completed.run_id == RUN_ID
        statuses = {a.name: a for a in completed.actions}
        assert statuses["sfpipe_marts.salesforce__sales_snapshot"].status == "succeeded"
        assert statuses["sfpipe_marts.salesforce__sales_snapshot"].rows == 1

        stage = wh.query(f"SELECT * FROM {ops.RUNS.sql} WHERE run_id = '{RUN_ID}' AND stage = 'transform'").to_pylist()
        assert len(stage) == 1 and stage[0]["status"] == "succeeded"
        assert stage[0]["started_at"] <= stage[0]["ended_at"]
        assert json.loads(stage[0]["detail"])["as_of"] == "2024-05-15"
        assert ops.processed_outcome(wh, event.idempotency_key, "transform") == "done"

        # the same delivery again: acknowledged, nothing rebuilt, nothing published
        before = wh.scalar(f"SELECT updated_at FROM {ops.RUNS.sql} WHERE run_id = '{RUN_ID}'")
        again = client.post("/", data=push_body(event), content_type="application/json")
        assert again.status_code == 204
        assert wh.scalar(f"SELECT updated_at FROM {ops.RUNS.sql} WHERE run_id = '{RUN_ID}'") == before
        assert pull(topics["completed"], 1, timeout=3) == []
    finally:
        wh.close()


def test_failed_assertion_is_reported_not_retried(
    transform_settings: Settings, broken_warehouse_file: Path, topics: dict[str, str]
) -> None:
    wh = DuckDBWarehouse(EmbeddedSession(broken_warehouse_file))
    try:
        service = build_service(transform_settings, warehouse=lambda: wh)
        event = load_event("load-event-broken")
        outcome = service.handle(event)

        assert outcome.status == 200
        assert outcome.body["status"] == "failed"
        assert "stg_salesforce__opportunity_assertions_rowConditions" in outcome.body["reason"]

        messages = pull(topics["failed"], 1)
        assert len(messages) == 1 and messages[0].attributes["ce-type"] == "sfpipe.transform.failed"
        failed = TransformFailed.model_validate_json(messages[0].data)
        assert "probability IS NULL OR probability BETWEEN 0 AND 100" in failed.reason
        assert {a.status for a in failed.actions} == {"succeeded", "failed", "skipped"}
        assert pull(topics["completed"], 1, timeout=2) == []

        stage = wh.query(f"SELECT status, detail FROM {ops.RUNS.sql} WHERE run_id = '{RUN_ID}'").to_pylist()
        assert stage[0]["status"] == "failed"
        assert json.loads(stage[0]["detail"])["failed"] == [
            "sfpipe_assertions.sfpipe_staging_stg_salesforce__opportunity_assertions_rowConditions"
        ]
        assert ops.processed_outcome(wh, event.idempotency_key, "transform") == "transform-failed"
        assert service.handle(event).status == 204
    finally:
        wh.close()


def test_other_events_and_bad_data_are_refused(transform_settings: Settings, golden_warehouse_file: Path) -> None:
    wh = DuckDBWarehouse(EmbeddedSession(golden_warehouse_file))
    try:
        client = create_app(build_service(transform_settings, warehouse=lambda: wh)).test_client()
        other = make_event(
            EventType.TRANSFORM_COMPLETED, TransformCompleted(run_id=RUN_ID, actions=[]), service="transform"
        )
        assert client.post("/", data=push_body(other), content_type="application/json").status_code == 204
        bad = load_event("bad-data").model_copy(update={"data": {"run_id": "not-a-run", "objects": {}}})
        response = client.post("/", data=push_body(bad), content_type="application/json")
        assert response.status_code == 422
        assert "run_id" in response.get_json()["error"]
        assert client.post("/", data=b"{not json", content_type="application/json").status_code == 400
    finally:
        wh.close()
