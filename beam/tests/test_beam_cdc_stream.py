"""The local CDC stream on the real Pub/Sub emulator: the cdc-publisher's own messages, duplicated and
reordered on the Google Pub/Sub side, leave the raw layer equal to the org's truth export."""

import random
import threading
import time

import pytest
from google.cloud import pubsub_v1

from sfpipe_beam.cdc.stream import CdcStream
from sfpipe_beam.cdc.testing import cdc_rig, truth_differences
from sfpipe_cdc_publisher.publisher import build as build_publisher
from sfpipe_devstack.testing import pull_all

pytestmark = pytest.mark.integration


def _publish_until(publisher, latest, timeout=120.0):
    thread = threading.Thread(target=publisher.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        replay = publisher.metrics.replay_id
        if replay and int(replay, 16) >= latest:
            break
        time.sleep(0.2)
    publisher.stop()
    thread.join(30)
    assert publisher.metrics.replay_id and int(publisher.metrics.replay_id, 16) >= latest, publisher.metrics


def _stream_until(stream, count, timeout=120.0):
    thread = threading.Thread(target=stream.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and stream.metrics.applied + stream.metrics.rejected < count:
        time.sleep(0.2)
    time.sleep(0.5)
    stream.stop()
    thread.join(30)


def test_duplicated_and_reordered_deliveries_leave_the_truth(tmp_path, emulators, duckdb_warehouse):
    rng = random.Random(17)
    with cdc_rig(tmp_path, emulators, scale=1_000, seed=23) as rig:
        start = rig.batch_load(duckdb_warehouse)
        rig.start_at(start)
        rig.sim.runtime.activity.apply(250)
        latest = rig.sim.store.changes.latest()
        assert latest - start > 250

        # the cdc-publisher's real output, captured on a topic of its own
        pub = rig.publisher_client()
        sub = rig.subscriber_client()
        capture = pub.topic_path(rig.settings.project, "cdc-capture")
        pub.create_topic(name=capture)
        captured_sub = sub.subscription_path(rig.settings.project, "cdc-capture-all")
        sub.create_subscription(name=captured_sub, topic=capture)
        publisher = build_publisher(rig.settings)
        publisher.topic_path = capture
        _publish_until(publisher, latest)
        messages = pull_all(sub, captured_sub, expected=publisher.metrics.messages_published, timeout=60)
        assert len(messages) == publisher.metrics.messages_published >= latest - start

        # Google's side: every message once, a third of them again, all in a shuffled order, no ordering keys
        deliveries = [m.message for m in messages] + rng.sample([m.message for m in messages], len(messages) // 3)
        rng.shuffle(deliveries)
        plain = pubsub_v1.PublisherClient()
        topic = plain.topic_path(rig.settings.project, "sfpipe-cdc")
        futures = [plain.publish(topic, m.data, **dict(m.attributes)) for m in deliveries]
        for f in futures:
            f.result(timeout=60)

        stream = CdcStream(rig.settings, duckdb_warehouse, sub)
        _stream_until(stream, len(deliveries))
        assert stream.metrics.applied == len(deliveries) and stream.metrics.rejected == 0
        assert truth_differences(rig.sim, duckdb_warehouse, tmp_path / "truth") == {}
        lag = duckdb_warehouse.query("SELECT count(*) AS n FROM sfpipe_ops.cdc_lag").to_pylist()[0]["n"]
        assert lag >= len(messages)


def test_a_message_that_does_not_parse_is_refused_and_the_rest_applied(tmp_path, emulators, duckdb_warehouse):
    with cdc_rig(tmp_path, emulators, scale=1_000, seed=29) as rig:
        start = rig.batch_load(duckdb_warehouse)
        rig.start_at(start)
        rig.sim.runtime.activity.apply(40)
        publisher = build_publisher(rig.settings)
        _publish_until(publisher, rig.sim.store.changes.latest())
        pub = rig.publisher_client()
        topic = pub.topic_path(rig.settings.project, "sfpipe-cdc")
        pub.publish(topic, b"{not json", **{"ce-type": "sfpipe.cdc.change", "ce-id": "bad"}).result(timeout=30)
        stream = CdcStream(rig.settings, duckdb_warehouse, rig.subscriber_client())
        _stream_until(stream, publisher.metrics.messages_published + 1)
        assert stream.metrics.rejected >= 1
        assert stream.metrics.applied == publisher.metrics.messages_published
        assert truth_differences(rig.sim, duckdb_warehouse, tmp_path / "truth") == {}
