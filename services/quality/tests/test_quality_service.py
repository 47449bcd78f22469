"""The quality service on the real emulators: results, Data Docs in the lake, events, idempotency."""

from __future__ import annotations

import json
import uuid

import pytest
from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1

from sfpipe import lake, ops
from sfpipe.adapters import factory
from sfpipe.errors import TransientError
from sfpipe.events import ActionReport, EventType, TransformCompleted, make_event
from sfpipe.service import create_app
from sfpipe.testing.contract import EventServiceContract, push_body
from sfpipe.topology import load_topology
from sfpipe_quality import sample_org
from sfpipe_quality.service import QualityStage, build_service

pytestmark = pytest.mark.integration


def transform_completed(event_id: str | None = None):
    data = TransformCompleted(
        run_id=sample_org.RUN_ID,
        actions=[ActionReport(name="salesforce__opportunity_enhanced", status="succeeded", rows=10, seconds=0.1)],
    )
    return make_event(EventType.TRANSFORM_COMPLETED, data, service="transform", event_id=event_id or uuid.uuid4().hex)


class Bus:
    """Pull subscriptions on the quality topics of the test's project."""

    def __init__(self, project: str) -> None:
        self.publisher = pubsub_v1.PublisherClient()
        self.subscriber = pubsub_v1.SubscriberClient()
        self.subscriptions = {}
        topology = load_topology()
        for event_type in (EventType.QUALITY_COMPLETED, EventType.QUALITY_ALERT):
            topic = self.publisher.topic_path(project, topology.topic_for(event_type))
            try:
                self.publisher.create_topic(name=topic)
            except gexc.AlreadyExists:
                pass
            sub = self.subscriber.subscription_path(project, f"test-{event_type.replace('.', '-')}")
            self.subscriber.create_subscription(name=sub, topic=topic)
            self.subscriptions[event_type] = sub

    def pull(self, event_type: str, expect: int, timeout: float = 20.0) -> list[dict]:
        """Messages of one event type (waits for ``expect`` of them, then a little for any extra)."""
        import time

        got: list[dict] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(got) < expect:
            response = self.subscriber.pull(subscription=self.subscriptions[event_type], max_messages=50, timeout=5)
            for received in response.received_messages:
                got.append({"attributes": dict(received.message.attributes), "data": json.loads(received.message.data)})
            if response.received_messages:
                self.subscriber.acknowledge(
                    subscription=self.subscriptions[event_type], ack_ids=[m.ack_id for m in response.received_messages]
                )
        return got


@pytest.fixture
def wired(org, local_settings, object_store):
    """A quality stage on the test org, the real lake and the real Pub/Sub emulator."""
    object_store.put_json(
        lake.manifest_uri(local_settings.lake_bucket, sample_org.RUN_ID), sample_org.manifest_json(org.size)
    )
    bus = Bus(local_settings.project)
    publisher = factory.event_publisher(local_settings)
    stage = QualityStage(
        local_settings, lambda: org.warehouse, lambda: object_store, lambda: publisher, lambda: org.source
    )
    return stage, bus


def result_sets(warehouse) -> int:
    ops.ensure_ops_tables(warehouse)
    return int(
        warehouse.scalar(
            f"SELECT COUNT(DISTINCT checked_at) FROM {ops.QUALITY_RESULTS.sql} WHERE run_id = '{sample_org.RUN_ID}'"
        )
    )


class TestQualityServiceContract(EventServiceContract):
    @pytest.fixture(autouse=True)
    def _wire(self, wired, org):
        self.stage, self.bus = wired
        self.org = org
        self.service = build_service(self.stage.settings, stage=lambda: self.stage)
        self.event = transform_completed()

    def app(self):
        return create_app(self.service)

    def valid_event(self):
        return self.event

    def side_effect_count(self) -> int:
        return result_sets(self.org.warehouse)


def test_clean_run_writes_results_docs_stage_and_a_completed_event(wired, org, object_store, local_settings):
    stage, bus = wired
    service = build_service(local_settings, stage=lambda: stage)

    response = (
        create_app(service)
        .test_client()
        .post("/", data=push_body(transform_completed()), content_type="application/json")
    )

    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["failing_errors"] == [] and body["failing_warnings"] == []
    assert body["events"] == [EventType.QUALITY_COMPLETED]
    rows = org.warehouse.query(
        f"SELECT * FROM {ops.QUALITY_RESULTS.sql} WHERE run_id = '{sample_org.RUN_ID}'"
    ).to_pylist()
    assert len(rows) > 150 and all(r["success"] for r in rows)
    assert {r["suite"] for r in rows} == {"raw", "marts", "reconcile"}
    fresh = next(r for r in rows if r["check_name"] == "opportunity.fresh")
    assert fresh["table_name"] == "sfpipe_raw.opportunity"
    assert fresh["expectation"] == "expect_column_max_to_be_between"
    assert fresh["column_name"] == "SystemModstamp"
    assert fresh["severity"] == "error"
    # Data Docs: the index at the agreed place, the validation pages, not GX's 4 MB of images
    docs = lake.quality_docs_uri(local_settings.lake_bucket, sample_org.RUN_ID)
    assert body["docs_uri"] == docs
    index, _ = object_store.get_bytes(docs)
    assert b"Validation" in index
    stored = list(object_store.list(local_settings.lake_bucket, f"quality/{sample_org.RUN_ID}/docs/"))
    assert sum(1 for s in stored if "/validations/" in s.name) >= 40
    assert sum(s.size for s in stored) < 3_000_000
    stage_row = org.warehouse.query(
        f"SELECT status, detail FROM {ops.RUNS.sql} WHERE run_id = '{sample_org.RUN_ID}' AND stage = 'quality'"
    ).to_pylist()
    assert [r["status"] for r in stage_row] == ["succeeded"]
    assert json.loads(stage_row[0]["detail"])["docs_uri"] == docs
    (completed,) = bus.pull(EventType.QUALITY_COMPLETED, expect=1)
    assert completed["attributes"]["ce-type"] == EventType.QUALITY_COMPLETED
    assert {s["suite"]: s["failed"] for s in completed["data"]["suites"]} == {"raw": 0, "marts": 0, "reconcile": 0}
    assert completed["data"]["docs_uri"] == docs
    assert bus.pull(EventType.QUALITY_ALERT, expect=1, timeout=3) == []


def test_a_failed_error_check_publishes_an_alert(wired, org, local_settings):
    stage, bus = wired
    org.sql("UPDATE sfpipe_raw.opportunity SET Amount = -3 WHERE Id = (SELECT min(Id) FROM sfpipe_raw.opportunity)")

    published = stage.run(sample_org.RUN_ID, seed="e1")

    assert [e.type for e in published.events] == [EventType.QUALITY_COMPLETED, EventType.QUALITY_ALERT]
    (alert,) = bus.pull(EventType.QUALITY_ALERT, expect=1)
    (failing,) = alert["data"]["failing"]
    assert failing["expectation"] == "opportunity.amount_not_negative"
    assert failing["table"] == "sfpipe_raw.opportunity"
    assert failing["severity"] == "error"
    assert failing["column"] == "Amount"
    assert failing["unexpected_count"] == 1
    status = org.warehouse.scalar(
        f"SELECT status FROM {ops.RUNS.sql} WHERE run_id = '{sample_org.RUN_ID}' AND stage = 'quality'"
    )
    assert status == "failed"


def test_a_failed_warning_publishes_no_alert(wired, org):
    stage, bus = wired
    org.sql(
        "INSERT INTO sfpipe_raw.contact SELECT * REPLACE ('bad id' AS Id) FROM sfpipe_raw.contact "
        "WHERE Id = (SELECT min(Id) FROM sfpipe_raw.contact)"
    )

    published = stage.run(sample_org.RUN_ID, seed="e2")

    assert [r.check for r in published.run.failing()] == ["contact.id_format"]
    assert [e.type for e in published.events] == [EventType.QUALITY_COMPLETED]
    (completed,) = bus.pull(EventType.QUALITY_COMPLETED, expect=1)
    assert {s["suite"]: s["failed"] for s in completed["data"]["suites"]}["raw"] == 1
    assert bus.pull(EventType.QUALITY_ALERT, expect=1, timeout=3) == []


def test_a_failed_publish_is_retried_with_the_same_event_ids(org, local_settings, object_store):
    bus = Bus(local_settings.project)
    real = factory.event_publisher(local_settings)
    calls = {"n": 0}

    def flaky():
        calls["n"] += 1
        if calls["n"] == 1:
            raise TransientError("Pub/Sub is unavailable")
        return real

    stage = QualityStage(local_settings, lambda: org.warehouse, lambda: object_store, flaky, lambda: org.source)
    app = create_app(build_service(local_settings, stage=lambda: stage))
    event = transform_completed()

    first = app.test_client().post("/", data=push_body(event), content_type="application/json")
    second = app.test_client().post("/", data=push_body(event, 2), content_type="application/json")
    third = app.test_client().post("/", data=push_body(event, 3), content_type="application/json")

    assert first.status_code == 503
    assert second.status_code == 200
    assert third.status_code == 204
    assert result_sets(org.warehouse) == 1
    (completed,) = bus.pull(EventType.QUALITY_COMPLETED, expect=1)
    assert completed["attributes"]["ce-id"].startswith("quality-completed-")
    again = stage.run(sample_org.RUN_ID, seed=event.id, docs=False, events=True)
    assert again.events[0].id == completed["attributes"]["ce-id"]
