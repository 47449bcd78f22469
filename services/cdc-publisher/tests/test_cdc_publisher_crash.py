"""Killing the cdc-publisher (SIGKILL, no goodbye) at random points while the org keeps changing, and
restarting it, leaves the raw layer equal to the org's truth export: nothing lost, nothing doubled."""

import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from sfpipe.adapters.factory import object_store
from sfpipe_beam.cdc.stream import CdcStream
from sfpipe_beam.cdc.testing import cdc_rig, truth_differences
from sfpipe_cdc_publisher.checkpoint import Checkpoints
from sfpipe_devstack.emulators import free_port
from sfpipe_simulator.pubsub_api import replay

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def start_publisher(rig, log):
    port = free_port()
    env = {**os.environ, **rig.env, "SFPIPE_CDC_PUBLISHER_PORT": str(port)}
    proc = subprocess.Popen([sys.executable, "-m", "sfpipe_cdc_publisher"], env=env, stdout=log, stderr=log)
    proc.health = f"http://127.0.0.1:{port}/healthz"
    return proc


def wait_healthy(proc, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(proc.health, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("the publisher did not answer /healthz")


def checkpointed(rig):
    position = Checkpoints(object_store(rig.settings), rig.settings.state_bucket).load(rig.settings.cdc_topic)
    return replay.from_bytes(position.replay_id) if position else 0


def test_random_kills_and_restarts_lose_and_double_nothing(tmp_path, emulators, duckdb_warehouse):
    rng = random.Random(1234)
    with cdc_rig(tmp_path, emulators, seed=47) as rig, (tmp_path / "publisher.log").open("ab") as log:
        start = rig.batch_load(duckdb_warehouse)
        rig.start_at(start)
        stream = CdcStream(rig.settings, duckdb_warehouse, rig.subscriber_client())
        streaming = threading.Thread(target=stream.run, daemon=True)
        streaming.start()
        try:
            run_and_check(rig, rng, log, stream, start, duckdb_warehouse, tmp_path)
        finally:
            stream.stop()
            streaming.join(30)


def run_and_check(rig, rng, log, stream, start, duckdb_warehouse, tmp_path):
    activity = threading.Thread(target=rig.sim.runtime.activity.apply, args=(300,), daemon=True)
    activity.start()
    kills = 0
    while activity.is_alive() or kills < 4:
        proc = start_publisher(rig, log)
        time.sleep(rng.uniform(1.5, 4.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        kills += 1
    activity.join()
    latest = rig.sim.store.changes.latest()
    proc = start_publisher(rig, log)
    wait_healthy(proc)
    deadline = time.monotonic() + 180
    while checkpointed(rig) < latest and time.monotonic() < deadline:
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    assert checkpointed(rig) >= latest
    # the stream drains what the publishers acknowledged
    settled, last = time.monotonic(), -1
    while time.monotonic() - settled < 3 and time.monotonic() < deadline:
        if stream.metrics.applied != last:
            last, settled = stream.metrics.applied, time.monotonic()
        time.sleep(0.3)
    events = latest - start
    assert kills >= 4
    assert stream.metrics.applied >= events, (stream.metrics.applied, events)
    assert truth_differences(rig.sim, duckdb_warehouse, tmp_path / "truth") == {}
    print(f"{kills} kills, {events} change events, {stream.metrics.applied} messages applied "
          f"({stream.metrics.applied - events} replayed duplicates)")  # fmt: skip
