"""fake-gcs-server → Pub/Sub emulator → push endpoint: the path that wakes the loader."""

from __future__ import annotations

import json
import time
import uuid
from datetime import date

import pytest

from sfpipe.events import GCS_FINALIZED, parse_http
from sfpipe.ids import new_run_id
from sfpipe.lake import data_uri, manifest_uri
from sfpipe.topology import LAKE_NOTIFICATIONS_TOPIC
from sfpipe_devstack.testing import push_recorder

pytestmark = pytest.mark.integration


def test_a_manifest_upload_pushes_a_finalize_notification_and_data_files_do_not(
    emulators, object_store, local_settings
):
    from google.cloud import pubsub_v1

    bucket = local_settings.lake_bucket
    subscriber = pubsub_v1.SubscriberClient()
    project = emulators.notify_project
    sub = subscriber.subscription_path(project, f"loader-{uuid.uuid4().hex[:8]}")
    with push_recorder(204) as loader:
        subscriber.create_subscription(
            request={
                "name": sub,
                "topic": f"projects/{project}/topics/{LAKE_NOTIFICATIONS_TOPIC}",
                "push_config": {"push_endpoint": loader.url},
            }
        )
        try:
            run_id = new_run_id()
            data = object_store.put_bytes(data_uri(bucket, "Account", date(2026, 1, 2), run_id, 0), b"PAR1")
            manifest = object_store.put_json(manifest_uri(bucket, run_id), {"run_id": run_id})
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not any(
                p.attributes.get("bucketId") == bucket for p in loader.pushes
            ):
                time.sleep(0.1)
            time.sleep(3)  # a notification for the data file would have come by now
            mine = [p for p in loader.pushes if p.attributes.get("bucketId") == bucket]
        finally:
            subscriber.delete_subscription(subscription=sub)

    assert len(mine) == 1, [p.attributes for p in mine]
    push = mine[0]
    assert push.attributes["eventType"] == "OBJECT_FINALIZE"
    assert push.attributes["objectId"] == manifest.name
    assert push.attributes["objectGeneration"] == str(manifest.generation)
    assert push.attributes["payloadFormat"] == "JSON_API_V1"
    assert manifest.name.startswith("salesforce/_runs/")
    assert not data.name.startswith("salesforce/_runs/")
    resource = json.loads(push.data)
    assert resource["name"] == manifest.name
    assert resource["bucket"] == bucket

    # what the loader's handler makes of it
    event = parse_http(push.headers, json.dumps(push.body).encode())
    assert event.type == GCS_FINALIZED
    assert event.data["name"] == manifest.name
    assert event.idempotency_key == f"{bucket}/{manifest.name}#{manifest.generation}"
