"""The whole delivery path, every part real and in its own process.

manifest upload → fake-gcs-server finalize notification → Pub/Sub emulator → push
subscription (retry backoff scaled down, dead-letter policy) → ``python -m sfpipe_loader``
on a free port → the local warehouse server (``python -m sfpipe_devstack.warehouse_server``)
→ raw tables; the loader's events on the emulator.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pytest
import requests
from google.cloud import pubsub_v1

from sfpipe.adapters import factory
from sfpipe.adapters.warehouse.base import Warehouse
from sfpipe.config import load_settings
from sfpipe.topology import LAKE_NOTIFICATIONS_TOPIC, load_topology
from sfpipe_devstack.emulators import free_port, stop_group
from sfpipe_devstack.topology_apply import subscription_request
from sfpipe_loader import lakegen
from sfpipe_loader.testing import Bus, Lake, accounts, opp_id, opportunities, table_rows

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@dataclass
class Stack:
    env: dict[str, str]
    lake: Lake
    warehouse: Warehouse
    bus: Bus
    publisher: pubsub_v1.PublisherClient
    notifications: str
    loader_log: Path
    loader_url: str

    def wait_for(self, name: str, run_id: str, timeout: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.bus.pull(name, want=1, timeout=2.0):
                if message["data"]["run_id"] == run_id:
                    return message
        raise AssertionError(f"no {name} event for {run_id} within {timeout}s")


def _spawn(module: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", module], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _wait(check, timeout: float, what: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited: {log.read_text()[-3000:]}")
        try:
            if check():
                return
        except (OSError, requests.RequestException):
            pass
        time.sleep(0.1)
    raise AssertionError(f"{what} not ready in {timeout}s: {log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def stack(emulators, tmp_path_factory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("flow")
    suffix = uuid.uuid4().hex[:8]
    host, pubsub_port = emulators.pubsub_host.split(":")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SFPIPE_")},
        "SFPIPE_MODE": "local",
        "SFPIPE_HOME": str(root / "home"),
        "SFPIPE_PROJECT": f"sfpipe-flow-{suffix}",
        "SFPIPE_LAKE_BUCKET": f"lake-flow-{suffix}",
        "SFPIPE_STATE_BUCKET": f"state-flow-{suffix}",
        "SFPIPE_HOST": host,
        "SFPIPE_PUBSUB_PORT": pubsub_port,
        "SFPIPE_GCS_PORT": str(emulators.gcs_port),
        "SFPIPE_LOADER_PORT": str(free_port(host)),
        "SFPIPE_WAREHOUSE_PORT": str(free_port(host)),
        "SFPIPE_LOG_FORMAT": "text",
        "SFPIPE_LOG_LEVEL": "INFO",
        "SFPIPE_RETRY_SCALE": "0.01",
        "PUBSUB_EMULATOR_HOST": emulators.pubsub_host,
        "STORAGE_EMULATOR_HOST": emulators.gcs_url,
    }
    settings = load_settings(
        **{k.removeprefix("SFPIPE_").lower(): v for k, v in env.items() if k.startswith("SFPIPE_")}
    )
    store = factory.object_store(settings)
    store.ensure_bucket(settings.lake_bucket)
    procs: list[subprocess.Popen[bytes]] = []
    publisher = factory.publisher_client(settings)
    subscriber = factory.subscriber_client(settings)
    try:
        warehouse_log = root / "warehouse.log"
        procs.append(_spawn("sfpipe_devstack.warehouse_server", env, warehouse_log))
        marker = Path(settings.home) / "warehouse.url"
        _wait(marker.exists, 60, "warehouse server", procs[-1], warehouse_log)
        loader_log = root / "loader.log"
        procs.append(_spawn("sfpipe_loader", env, loader_log))
        url = f"http://{host}:{settings.loader_port}"
        _wait(lambda: requests.get(f"{url}/healthz", timeout=1).ok, 90, "loader", procs[-1], loader_log)

        topology = load_topology()
        bus = Bus(subscriber)
        for event_type in ("sfpipe.load.completed", "sfpipe.load.failed"):
            topic = publisher.topic_path(settings.project, topology.topic_for(event_type))
            publisher.create_topic(name=topic)
            sub = subscriber.subscription_path(settings.project, f"{topology.topic_for(event_type)}-ops")
            subscriber.create_subscription(request={"name": sub, "topic": topic})
            bus.subscriptions[event_type] = sub
        # the loader's push subscription as the topology declares it, retries scaled down
        project = emulators.notify_project
        dead_letter = publisher.topic_path(project, f"sfpipe-dead-letter-{suffix}")
        publisher.create_topic(name=dead_letter)
        dead_sub = subscriber.subscription_path(project, f"dead-letter-{suffix}")
        subscriber.create_subscription(request={"name": dead_sub, "topic": dead_letter})
        bus.subscriptions["dead-letter"] = dead_sub
        topic, sub = topology.subscription("loader")
        request = subscription_request(project, topology, topic, sub, lambda _: f"{url}/", settings.retry_scale)
        request["name"] = subscriber.subscription_path(project, f"loader-{suffix}")
        request["dead_letter_policy"] = {**request["dead_letter_policy"], "dead_letter_topic": dead_letter}
        subscriber.create_subscription(request=request)
        warehouse = factory.warehouse(settings)
        yield Stack(
            env, Lake(store, settings.lake_bucket), warehouse, bus, publisher,
            publisher.topic_path(project, LAKE_NOTIFICATIONS_TOPIC), loader_log, url,
        )
        subscriber.delete_subscription(request={"subscription": request["name"]})
        warehouse.close()
    finally:
        for proc in reversed(procs):
            stop_group(proc.pid)


def test_upload_to_raw_through_the_notification_and_push(stack):
    manifest, uri = stack.lake.run(
        {"Opportunity": [opportunities(range(10), [1] * 10), opportunities(range(5, 15), [2] * 10)],
         "Account": [accounts(range(3), [1] * 3)]}
    )
    event = stack.wait_for("sfpipe.load.completed", manifest.run_id)
    assert {k: v["inserted"] for k, v in event["data"]["objects"].items()} == {"Opportunity": 15, "Account": 3}
    assert stack.warehouse.scalar("SELECT count(*) FROM `sfpipe_raw.opportunity`") == 15
    assert stack.warehouse.scalar("SELECT count(DISTINCT _version) FROM `sfpipe_raw.opportunity`") == 2
    name = uri.removeprefix(f"gs://{stack.lake.bucket}/")
    generation = stack.lake.store.stat(uri).generation
    key = f"{stack.lake.bucket}/{name}#{generation}"
    processed = stack.warehouse.query(
        f"SELECT key, outcome, run_id FROM `sfpipe_ops.processed_events` WHERE key = '{key}'"
    ).to_pylist()
    assert processed == [{"key": key, "outcome": "done", "run_id": manifest.run_id}]
    assert stack.warehouse.scalar(
        f"SELECT status FROM `sfpipe_ops.runs` WHERE run_id = '{manifest.run_id}' AND stage = 'load'"
    ) == "succeeded"


def _redeliver(stack: Stack, uri: str) -> None:
    """Publish the GCS notification of the manifest's current generation again, as Pub/Sub may."""
    bucket, name = uri[5:].split("/", 1)
    stat = stack.lake.store.stat(uri)
    resource = {"bucket": bucket, "name": name, "generation": str(stat.generation), "size": str(stat.size)}
    attributes = {
        "eventType": "OBJECT_FINALIZE", "bucketId": bucket, "objectId": name,
        "objectGeneration": str(stat.generation), "payloadFormat": "JSON_API_V1",
    }
    stack.publisher.publish(stack.notifications, json.dumps(resource).encode(), **attributes).result(timeout=30)


def test_a_redelivered_notification_changes_nothing(stack):
    manifest, uri = stack.lake.run({"Opportunity": [opportunities(range(100, 105), [1] * 5)]})
    stack.wait_for("sfpipe.load.completed", manifest.run_id)
    before = table_rows(stack.warehouse, "opportunity"), table_rows(stack.warehouse, "opportunity__changes")
    _redeliver(stack, uri)
    bucket, name = uri[5:].split("/", 1)
    key = f"{bucket}/{name}#{stack.lake.store.stat(uri).generation}"
    deadline = time.monotonic() + 30
    while f"event {key} already processed" not in stack.loader_log.read_text():
        assert time.monotonic() < deadline, stack.loader_log.read_text()[-2000:]
        time.sleep(0.2)
    assert not [m for m in stack.bus.drain("sfpipe.load.completed", 2) if m["data"]["run_id"] == manifest.run_id]
    after = table_rows(stack.warehouse, "opportunity"), table_rows(stack.warehouse, "opportunity__changes")
    assert after == before


def test_overlapping_runs_and_a_late_older_version(stack):
    newer, _ = stack.lake.run({"Opportunity": [opportunities(range(200, 210), [5] * 10, seed=1)]})
    stack.wait_for("sfpipe.load.completed", newer.run_id)
    kept = {r["Id"]: r for r in table_rows(stack.warehouse, "opportunity") if r["Id"] in {opp_id(i) for i in range(200, 210)}}
    # overlaps the first run's window: the same Ids at an older version, plus new ones
    older, _ = stack.lake.run({"Opportunity": [opportunities(range(205, 215), [2] * 10, seed=2)]})
    event = stack.wait_for("sfpipe.load.completed", older.run_id)
    assert (event["data"]["objects"]["Opportunity"]["inserted"], event["data"]["objects"]["Opportunity"]["updated"]) == (5, 0)
    rows = {r["Id"]: r for r in table_rows(stack.warehouse, "opportunity")}
    assert all(rows[i] == kept[i] for i in kept)
    ids = [r["Id"] for r in table_rows(stack.warehouse, "opportunity")]
    assert len(ids) == len(set(ids))


def _bad_part(problem: str) -> lakegen.ObjectPart:
    good = opportunities(range(300, 303), [9] * 3)
    if problem == "corrupt":
        return lakegen.ObjectPart([good, opportunities(range(303, 306), [9] * 3)], corrupt={1})
    if problem == "missing":
        return lakegen.ObjectPart([good, opportunities(range(303, 306), [9] * 3)], missing={1})
    fields = [(n, "date") if n == "Amount" else (n, t) for n, t in lakegen.OPPORTUNITY_FIELDS]
    bad = opportunities(range(300, 303), [9] * 3, overrides={"Amount": pa.array([None, None, None], pa.date32())})
    return lakegen.ObjectPart([bad], fields=fields)


@pytest.mark.parametrize("problem", ["corrupt", "missing", "incompatible"])
def test_a_bad_run_fails_cleanly_and_is_dead_lettered(stack, problem):
    first, _ = stack.lake.run({"Opportunity": [opportunities(range(290, 300), [1] * 10)]})
    stack.wait_for("sfpipe.load.completed", first.run_id)
    before = table_rows(stack.warehouse, "opportunity"), table_rows(stack.warehouse, "opportunity__changes")
    schema = stack.warehouse.table_schema(_ref("opportunity"))
    manifest, uri = stack.lake.run({"Opportunity": _bad_part(problem)})
    failed = stack.wait_for("sfpipe.load.failed", manifest.run_id)
    reason = failed["data"]["objects"]["Opportunity"]
    assert {"corrupt": "not readable Parquet", "missing": "is missing", "incompatible": "incompatible type change"}[
        problem
    ] in reason
    # after max_delivery_attempts the notification reaches the dead-letter topic
    name = uri[5:].split("/", 1)[1]
    deadline = time.monotonic() + 90
    dead = []
    while not dead:
        assert time.monotonic() < deadline, "the failing notification was not dead-lettered"
        dead = [m for m in stack.bus.pull("dead-letter", want=1, timeout=2) if m["attributes"].get("objectId") == name]
    assert dead[0]["attributes"]["eventType"] == "OBJECT_FINALIZE"
    # every attempt failed the same way; the raw tables are exactly as they were
    after = table_rows(stack.warehouse, "opportunity"), table_rows(stack.warehouse, "opportunity__changes")
    assert after == before
    assert stack.warehouse.table_schema(_ref("opportunity")) == schema
    attempts = stack.warehouse.scalar(
        f"SELECT count(*) FROM `sfpipe_ops.loads` WHERE run_id = '{manifest.run_id}' AND status = 'failed'"
    )
    assert attempts == 5
    repeats = [m for m in stack.bus.drain("sfpipe.load.failed", 2) if m["data"]["run_id"] == manifest.run_id]
    assert all(m["attributes"]["ce-id"] == failed["attributes"]["ce-id"] for m in repeats)
    assert stack.warehouse.scalar(
        f"SELECT status FROM `sfpipe_ops.runs` WHERE run_id = '{manifest.run_id}' AND stage = 'load'"
    ) == "failed"


def test_objects_that_are_not_manifests_are_ignored(stack):
    body = {
        "message": {
            "data": base64.b64encode(b"{}").decode(),
            "attributes": {
                "eventType": "OBJECT_FINALIZE", "bucketId": stack.lake.bucket,
                "objectId": "salesforce/_runs/x/notes.txt", "objectGeneration": "1",
            },
            "messageId": "m-1",
        },
        "subscription": "projects/p/subscriptions/loader",
    }
    response = requests.post(f"{stack.loader_url}/", json=body, timeout=10)
    assert response.status_code == 204
    malformed = requests.post(f"{stack.loader_url}/", data=b"{nope", headers={"Content-Type": "application/json"}, timeout=10)
    assert malformed.status_code == 400 and "expected" in malformed.json()["error"]


def _ref(table):
    from sfpipe.adapters.warehouse.base import TableRef

    return TableRef("sfpipe_raw", table)
