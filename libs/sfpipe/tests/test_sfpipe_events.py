import base64
import json
from datetime import UTC, datetime

import pytest

from sfpipe.errors import BadInputError
from sfpipe.events import (
    GCS_FINALIZED,
    CloudEvent,
    EventType,
    LoadCompleted,
    ObjectLoad,
    make_event,
    parse_http,
)

RUN = "20260101T000000Z-0a1b2c3d"


def load_event():
    data = LoadCompleted(
        run_id=RUN,
        manifest_uri="gs://l/m",
        objects={"Account": ObjectLoad(inserted=1, updated=2, deleted=0, seconds=0.5)},
    )
    return make_event(EventType.LOAD_COMPLETED, data, service="loader")


def test_binary_mode_roundtrip():
    event = load_event()
    headers = {f"ce-{k[3:]}": v for k, v in event.attributes().items()}
    headers["Content-Type"] = "application/json"
    parsed = parse_http(headers, json.dumps(event.data).encode())
    assert parsed.type == "sfpipe.load.completed"
    assert parsed.id == event.id
    assert parsed.model_data().objects["Account"].updated == 2


def test_structured_mode():
    event = load_event()
    body = event.model_dump(mode="json", exclude={"delivery_attempt", "ordering_key"})
    parsed = parse_http({"Content-Type": "application/cloudevents+json"}, json.dumps(body).encode())
    assert parsed.id == event.id
    assert parsed.source == "//sfpipe/loader"


def test_pubsub_push_envelope_with_ce_attributes():
    event = load_event()
    envelope = {
        "message": {
            "data": base64.b64encode(json.dumps(event.data).encode()).decode(),
            "attributes": event.attributes(),
            "messageId": "42",
        },
        "subscription": "projects/p/subscriptions/transform",
    }
    parsed = parse_http({"Content-Type": "application/json"}, json.dumps(envelope).encode())
    assert parsed.type == EventType.LOAD_COMPLETED
    assert parsed.id == event.id
    assert parsed.delivery_attempt is None


def test_pubsub_push_of_gcs_notification():
    resource = {"bucket": "lake", "name": "salesforce/_runs/x/_manifest.json", "generation": "17", "size": "10"}
    envelope = {
        "message": {
            "data": base64.b64encode(json.dumps(resource).encode()).decode(),
            "attributes": {
                "eventType": "OBJECT_FINALIZE",
                "bucketId": "lake",
                "objectId": "salesforce/_runs/x/_manifest.json",
                "objectGeneration": "17",
                "payloadFormat": "JSON_API_V1",
            },
            "messageId": "7",
        },
        "subscription": "projects/p/subscriptions/loader",
        "deliveryAttempt": 3,
    }
    parsed = parse_http({}, json.dumps(envelope).encode())
    assert parsed.type == GCS_FINALIZED
    assert parsed.idempotency_key == "lake/salesforce/_runs/x/_manifest.json#17"
    assert parsed.delivery_attempt == 3
    obj = parsed.model_data()
    assert obj.generation == 17


def test_eventarc_message_published_is_unwrapped():
    event = load_event()
    inner = {
        "message": {
            "data": base64.b64encode(json.dumps(event.data).encode()).decode(),
            "attributes": event.attributes(),
            "messageId": "1",
        },
        "subscription": "s",
    }
    headers = {
        "ce-specversion": "1.0",
        "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
        "ce-id": "x",
        "ce-source": "//pubsub.googleapis.com/projects/p/topics/t",
    }
    parsed = parse_http(headers, json.dumps(inner).encode())
    assert parsed.type == EventType.LOAD_COMPLETED
    assert parsed.id == event.id


@pytest.mark.parametrize(
    ("headers", "body", "field"),
    [
        ({}, b"not json", "body"),
        ({}, b"[1,2]", "body"),
        ({}, b'{"hello": 1}', "body"),
        ({}, json.dumps({"message": {"data": "%%%", "attributes": {"ce-type": "x"}}}).encode(), "message.data"),
        ({}, json.dumps({"message": {"data": "", "attributes": {}}}).encode(), "message.attributes"),
        (
            {},
            json.dumps({"message": {"attributes": {"eventType": "OBJECT_FINALIZE", "bucketId": "b"}}}).encode(),
            "objectId",
        ),
        ({"ce-type": "sfpipe.load.completed", "ce-source": "s"}, b"{}", "envelope"),
    ],
)
def test_malformed_envelopes_name_the_field(headers, body, field):
    with pytest.raises(BadInputError) as info:
        parse_http(headers, body)
    assert info.value.field == field
    assert "expected" in str(info.value) or "invalid" in str(info.value)


def test_bad_data_names_field():
    event = CloudEvent(
        id="1", source="s", type="sfpipe.load.completed", data={"run_id": "nope", "manifest_uri": "x", "objects": {}}
    )
    with pytest.raises(BadInputError, match="run_id.*expected a run id"):
        event.model_data()


def test_unknown_type_is_clear():
    event = CloudEvent(id="1", source="s", type="sfpipe.nope", data={}, time=datetime.now(UTC))
    with pytest.raises(BadInputError, match="unknown event type 'sfpipe.nope'"):
        event.model_data()
