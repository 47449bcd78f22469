"""Messages the cdc-publisher sends, its metrics text, and where it finds a local CA."""

import json
from datetime import UTC, datetime

from sfpipe.config import load_settings
from sfpipe.events import CdcChange
from sfpipe.salesforce.pubsub.events import DecodedChange
from sfpipe_cdc_publisher.health import prometheus
from sfpipe_cdc_publisher.messages import change_messages
from sfpipe_cdc_publisher.publisher import Metrics, local_ca

RUN = "20260301T000000Z-0a1b2c3d"


def decoded(**overrides):
    fields = dict(
        entity="Opportunity", change_type="UPDATE", record_ids=["006A", "006B"], change_origin="api",
        transaction_key="0001-aa", sequence_number=3, commit_timestamp=datetime(2026, 3, 1, 8, 0, 1, 500_000, tzinfo=UTC),
        commit_number=41, commit_user="005U", changed_fields=["StageName", "NextStep"], nulled_fields=["NextStep"],
        diff_fields=[], values={"StageName": "Closed Won", "NextStep": None},
        field_types={"StageName": "picklist", "NextStep": "string"},
    )  # fmt: skip
    fields.update(overrides)
    return DecodedChange(**fields)


def test_one_message_per_record_with_ordering_key_and_attributes():
    messages = change_messages(decoded(), run_id=RUN, replay_id="00000000000000ff", extra_types={"IsDeleted": "boolean"})
    assert [m.ordering_key for m in messages] == ["006A", "006B"]
    first = messages[0]
    body = CdcChange.model_validate(json.loads(first.data))
    assert body.record_ids == ["006A"] and body.change_type == "UPDATE" and body.commit_number == 41
    assert body.values == {"StageName": "Closed Won", "NextStep": None}
    assert body.field_types == {"IsDeleted": "boolean", "StageName": "picklist", "NextStep": "string"}
    assert body.replay_id == "00000000000000ff" and body.commit_user == "005U"
    assert first.attributes["ce-type"] == "sfpipe.cdc.change"
    assert first.attributes["ce-source"] == "//sfpipe/cdc-publisher"
    assert first.attributes["entity"] == "Opportunity" and first.attributes["change_type"] == "UPDATE"
    assert first.attributes["commit_timestamp"] == "2026-03-01T08:00:01.500Z"
    assert first.attributes["ce-id"] == "0001-aa.3.006A" != messages[1].attributes["ce-id"]


def test_the_same_change_always_gets_the_same_id():
    again = change_messages(decoded(), run_id="20260302T000000Z-ffffffff", replay_id=None)
    assert [m.attributes["ce-id"] for m in again] == [m.attributes["ce-id"] for m in
                                                       change_messages(decoded(), run_id=RUN, replay_id="01")]  # fmt: skip


def test_prometheus_text():
    metrics = Metrics(messages_published=12, events_received=13, lag_seconds=0.25, subscribed=True)
    text = prometheus(metrics)
    assert "sfpipe_cdc_messages_published_total 12" in text
    assert "sfpipe_cdc_events_received_total 13" in text
    assert "sfpipe_cdc_lag_seconds 0.25" in text and "sfpipe_cdc_subscribed 1" in text


def test_local_ca(tmp_path, monkeypatch):
    monkeypatch.setenv("SFPIPE_HOME", str(tmp_path))
    monkeypatch.delenv("SFPIPE_SF_VERIFY_TLS", raising=False)
    monkeypatch.delenv("SFPIPE_SIMULATOR_DATA_DIR", raising=False)
    assert local_ca(load_settings()) is None
    ca = tmp_path / "simulator" / "tls" / "ca.pem"
    ca.parent.mkdir(parents=True)
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    assert local_ca(load_settings()) == str(ca)
    monkeypatch.setenv("SFPIPE_SF_VERIFY_TLS", "/etc/org-ca.pem")
    assert local_ca(load_settings()) == "/etc/org-ca.pem"
