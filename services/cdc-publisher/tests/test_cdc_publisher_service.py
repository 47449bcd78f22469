"""The cdc-publisher against a simulated org and the real Pub/Sub emulator and fake-gcs-server:
ordered publishes, checkpoints after acknowledgement, gap repair, catch-up past retention, health."""

import json
import threading
import time
import urllib.error
import urllib.request

import pytest

from sfpipe.adapters.factory import object_store
from sfpipe.events import CdcChange
from sfpipe_beam.cdc.apply import CdcApplier
from sfpipe_beam.cdc.changes import from_message
from sfpipe_beam.cdc.testing import cdc_rig, truth_differences
from sfpipe_cdc_publisher.checkpoint import CheckpointConflict, Checkpoints, Position
from sfpipe_cdc_publisher.health import serve_health
from sfpipe_cdc_publisher.publisher import build
from sfpipe_devstack.testing import pull_all
from sfpipe_simulator.pubsub_api import replay

pytestmark = pytest.mark.integration
RUN = "20260301T000000Z-0a1b2c3d"


def run_until(publisher, latest, timeout=120.0, extra=lambda: True, before_stop=lambda: None):
    thread = threading.Thread(target=publisher.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        replay_hex = publisher.metrics.replay_id
        if replay_hex and int(replay_hex, 16) >= latest and extra():
            break
        time.sleep(0.2)
    before_stop()
    publisher.stop()
    thread.join(30)
    assert not thread.is_alive()


def stream_messages(rig, count):
    sub = rig.subscriber_client()
    path = sub.subscription_path(rig.settings.project, "cdc-stream")
    return pull_all(sub, path, expected=count, timeout=60)


def test_publishes_every_change_in_commit_order_and_checkpoints_after(tmp_path, emulators):
    with cdc_rig(tmp_path, emulators, seed=31) as rig:
        start = rig.sim.store.changes.latest()
        rig.start_at(start)
        rig.sim.runtime.activity.apply(80)
        latest = rig.sim.store.changes.latest()
        publisher = build(rig.settings)
        health = serve_health(publisher, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{health.server_address[1]}"
        seen = {}

        def probe():
            with urllib.request.urlopen(f"{url}/healthz", timeout=5) as r:
                seen["status"] = json.loads(r.read())
            with urllib.request.urlopen(f"{url}/metrics", timeout=5) as r:
                seen["metrics"] = r.read().decode()

        try:
            run_until(publisher, latest, before_stop=probe)
            with pytest.raises(urllib.error.HTTPError, match="503"):
                urllib.request.urlopen(f"{url}/healthz", timeout=5)
        finally:
            health.shutdown()
        status, metrics_text = seen["status"], seen["metrics"]
        events = rig.sim.store.changes.read(start, 100_000)
        assert publisher.metrics.events_received == len(events) == latest - start
        assert publisher.metrics.messages_published == len(events)
        assert publisher.metrics.lag_seconds is not None and publisher.metrics.lag_seconds >= 0
        messages = stream_messages(rig, len(events))
        assert len(messages) == len(events)
        by_key: dict[str, list[int]] = {}
        for m in messages:
            body = CdcChange.model_validate(json.loads(m.message.data))
            assert m.message.ordering_key == body.record_ids[0]
            by_key.setdefault(m.message.ordering_key, []).append(body.commit_number)
        assert all(numbers == sorted(numbers) for numbers in by_key.values())
        expected = {(e.record_ids[0], e.commit_number) for e in events}
        got = {(m.message.ordering_key, json.loads(m.message.data)["commit_number"]) for m in messages}
        assert got == expected
        position = Checkpoints(object_store(rig.settings), rig.settings.state_bucket).load(rig.settings.cdc_topic)
        assert replay.from_bytes(position.replay_id) == latest
        assert position.commit_timestamp == events[-1].commit_timestamp
        assert status["status"] == "ok" and status["subscribed"] is True
        assert status["messages_published"] == len(events) and status["channel"] == "/data/ChangeEvents"
        assert f"sfpipe_cdc_messages_published_total {len(events)}" in metrics_text


def _apply_all(rig, warehouse, count):
    changes = [c for m in stream_messages(rig, count) for c in from_message(m.message.data, m.message.attributes)]
    CdcApplier(warehouse).apply(changes, run_id=RUN)
    return changes


@pytest.mark.parametrize(("gap_every", "overflow_every"), [(3, 0), (0, 9)])
def test_gap_events_are_repaired_through_rest(tmp_path, emulators, duckdb_warehouse, gap_every, overflow_every):
    with cdc_rig(tmp_path, emulators, seed=37, gap_every=gap_every, overflow_every=overflow_every) as rig:
        start = rig.batch_load(duckdb_warehouse)
        rig.start_at(start)
        rig.sim.runtime.activity.apply(60)
        latest = rig.sim.store.changes.latest()
        publisher = build(rig.settings)
        run_until(publisher, latest)
        assert publisher.metrics.gap_events > 0 and publisher.metrics.records_repaired > 0
        changes = _apply_all(rig, duckdb_warehouse, publisher.metrics.messages_published)
        repaired = [c for c in changes if c.change_type == "UPDATE" and "SystemModstamp" in c.values]
        assert repaired and all("Id" in c.values for c in repaired)
        assert truth_differences(rig.sim, duckdb_warehouse, tmp_path / "truth") == {}


def test_a_checkpoint_past_retention_catches_up_through_rest(tmp_path, emulators, duckdb_warehouse):
    with cdc_rig(tmp_path, emulators, seed=41) as rig:
        start = rig.batch_load(duckdb_warehouse)
        rig.start_at(start)
        rig.sim.runtime.activity.apply(40)  # these events are lost to retention below
        rig.sim.admin.advance_clock(73 * 3600)
        rig.sim.runtime.activity.apply(20)
        latest = rig.sim.store.changes.latest()
        assert rig.sim.store.changes.earliest() > start + 1
        publisher = build(rig.settings)
        run_until(publisher, latest, extra=lambda: publisher.metrics.catch_ups > 0)
        assert publisher.metrics.catch_ups == 1 and publisher.metrics.records_repaired > 0
        _apply_all(rig, duckdb_warehouse, publisher.metrics.messages_published)
        assert truth_differences(rig.sim, duckdb_warehouse, tmp_path / "truth") == {}


def test_a_second_writer_cannot_move_the_checkpoint(tmp_path, emulators):
    with cdc_rig(tmp_path, emulators, seed=43) as rig:
        store = object_store(rig.settings)
        first = Checkpoints(store, rig.settings.state_bucket)
        second = Checkpoints(store, rig.settings.state_bucket)
        assert first.load("/data/ChangeEvents") is None and second.load("/data/ChangeEvents") is None
        first.save("/data/ChangeEvents", Position(replay.to_bytes(5)))
        with pytest.raises(CheckpointConflict):
            second.save("/data/ChangeEvents", Position(replay.to_bytes(3)))
        first.save("/data/ChangeEvents", Position(replay.to_bytes(9)))
        again = Checkpoints(store, rig.settings.state_bucket).load("/data/ChangeEvents")
        assert replay.from_bytes(again.replay_id) == 9 and first.writes == 2


def test_a_publisher_started_before_the_pubsub_api_connects_once_it_is_there(tmp_path, emulators):
    from sfpipe_devstack.emulators import free_port
    from sfpipe_simulator.pubsub_api.server import start_pubsub_api
    from sfpipe_simulator.pubsub_api.service import PubSubConfig

    port = free_port()
    late = tmp_path / "late"
    env = {"SFPIPE_SF_VERIFY_TLS": None, "SFPIPE_SIMULATOR_DATA_DIR": str(late),
           "SFPIPE_SF_PUBSUB_ENDPOINT": f"127.0.0.1:{port}"}  # fmt: skip
    with cdc_rig(tmp_path, emulators, seed=53, extra_env=env) as rig:
        start = rig.sim.store.changes.latest()
        rig.start_at(start)
        publisher = build(rig.settings)  # no API listening yet, and no CA to trust
        thread = threading.Thread(target=publisher.run, daemon=True)
        thread.start()
        time.sleep(3)
        assert publisher.metrics.errors >= 1 and not publisher.metrics.subscribed
        api = start_pubsub_api(rig.sim.runtime, port=port, security="tls", tls_folder=late / "tls",
                               config=PubSubConfig(keepalive_seconds=0.5))  # fmt: skip
        try:
            rig.sim.runtime.activity.apply(10)
            latest = rig.sim.store.changes.latest()
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                if publisher.metrics.replay_id and int(publisher.metrics.replay_id, 16) >= latest:
                    break
                time.sleep(0.2)
        finally:
            publisher.stop()
            thread.join(30)
            api.stop()
        assert publisher.metrics.messages_published == latest - start
