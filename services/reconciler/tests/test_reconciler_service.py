"""The service on `sfpipe.load.completed`, the CLI, and the process entry points."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import requests
from click.testing import CliRunner

from sfpipe.events import EventType, LoadCompleted, ObjectLoad, make_event
from sfpipe.lake import manifest_uri
from sfpipe.topology import load_topology

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OBJECTS = ["Account", "Contact", "Task", "Event", "User"]


def _event(rig, run_id: str):
    data = LoadCompleted(
        run_id=run_id,
        manifest_uri=manifest_uri(rig.settings.lake_bucket, run_id),
        objects={o: ObjectLoad(inserted=0, updated=0, deleted=0, seconds=0.0) for o in OBJECTS},
    )
    return make_event(EventType.LOAD_COMPLETED, data, service="loader")


def _alerts(rig):
    """A subscription on the alert topic, in the test's Pub/Sub project."""
    from sfpipe.adapters.factory import publisher_client, subscriber_client

    topic = load_topology().topic_for(EventType.RECONCILE_ALERT)
    publisher, subscriber = publisher_client(rig.settings), subscriber_client(rig.settings)
    topic_path = publisher.topic_path(rig.settings.project, topic)
    publisher.create_topic(name=topic_path)
    path = subscriber.subscription_path(rig.settings.project, "alerts-test")
    subscriber.create_subscription(name=path, topic=topic_path)

    def pull() -> list[dict]:
        got = []
        deadline = time.monotonic() + 20
        while not got and time.monotonic() < deadline:
            response = subscriber.pull(subscription=path, max_messages=10, timeout=5)
            got += [json.loads(m.message.data) for m in response.received_messages]
        return got

    return pull


def test_the_service_reconciles_each_load_repairs_and_verifies_the_repair(rig_factory):
    from sfpipe_reconciler.service import build_service

    rig = rig_factory(env={"SFPIPE_RECONCILE_OBJECTS": ",".join(OBJECTS)})
    engine = rig.engine()
    service = build_service(rig.settings, warehouse=lambda: rig.warehouse, engine=lambda: engine)
    first = rig.extract(OBJECTS, "full")
    event = _event(rig, first.run_id)
    outcome = service.handle(event)
    assert outcome.status == 200, outcome.body
    assert outcome.body["differences"] == 0 and outcome.body["repair"] is None
    assert service.handle(event).status == 204  # a redelivery does nothing
    stage = rig.warehouse.query(
        f"SELECT status, detail FROM sfpipe_ops.runs WHERE run_id = '{first.run_id}' AND stage = 'reconcile'"
    ).to_pylist()
    assert [s["status"] for s in stage] == ["succeeded"]

    touched = rig.sim.admin.inject_fault("hard_delete", 6, objects=["Task", "Event"])
    second = rig.extract(OBJECTS)
    outcome = service.handle(_event(rig, second.run_id))
    assert outcome.status == 200
    repair = outcome.body["repair"]
    assert repair and repair["manifest_uri"]
    assert sum(o["hard_deleted"] for o in repair["objects"].values()) >= sum(len(v) for v in touched.values()) // 2

    rig.load(repair["run_id"])
    verified = service.handle(_event(rig, repair["run_id"]))
    assert verified.status == 200 and verified.body["unclosed"] == {}
    statuses = rig.warehouse.query(
        f"SELECT DISTINCT status FROM sfpipe_ops.reconciliations WHERE repair_run_id = '{repair['run_id']}'"
    ).to_pylist()
    assert {s["status"] for s in statuses} == {"repairing", "repaired"}
    assert rig.truth(OBJECTS) == {}


def test_a_difference_left_unrepaired_is_alerted(rig_factory):
    from sfpipe_reconciler.service import build_service

    rig = rig_factory(env={"SFPIPE_RECONCILE_OBJECTS": ",".join(OBJECTS), "SFPIPE_RECONCILE_REPAIR": "false"})
    pull = _alerts(rig)
    first = rig.extract(OBJECTS, "full")
    touched = rig.sim.admin.inject_fault("hard_delete", 4, objects=["Task"])
    service = build_service(rig.settings, warehouse=lambda: rig.warehouse)
    outcome = service.handle(_event(rig, first.run_id))
    assert outcome.status == 200 and outcome.body["repair"] is None
    assert outcome.body["alerted"]["Task"]["extra"] == len(touched["Task"])
    [alert] = pull()
    assert alert["run_id"] == first.run_id and alert["objects"]["Task"]["extra"] == len(touched["Task"])


def test_the_cli_reports_repairs_and_compares_with_the_truth(rig_factory, monkeypatch):
    from sfpipe.cli import main

    rig = rig_factory()
    rig.extract(OBJECTS, "full")
    runner = CliRunner(env={"COLUMNS": "220"})
    clean = runner.invoke(main, ["reconcile", "-o", ",".join(OBJECTS)])
    assert clean.exit_code == 0, clean.output
    assert "reconciliation" in clean.output and "clean" in clean.output
    rig.sim.admin.inject_fault("hard_delete", 3, objects=["Event"])
    truth = runner.invoke(main, ["reconcile", "--against", "truth", "-o", "Event"])
    assert truth.exit_code == 1 and "differs" in truth.output
    found = runner.invoke(main, ["reconcile", "-o", "Event", "--repair", "--full", "--json"])
    assert found.exit_code == 1, found.output  # written, not yet loaded: still different
    body = json.loads(found.stdout)
    assert body["objects"]["Event"]["extra"] == 3 and body["repair"]["manifest_uri"]
    rig.load(body["repair"]["run_id"])
    equal = runner.invoke(main, ["reconcile", "--against", "truth", "-o", "Event"])
    assert equal.exit_code == 0, equal.output
    assert "equal" in equal.output


def test_python_m_serves_healthz(sfpipe_env):
    from sfpipe_devstack.emulators import free_port

    port = free_port("127.0.0.1")
    env = {**os.environ, "SFPIPE_RECONCILER_PORT": str(port), "SFPIPE_HOST": "127.0.0.1"}
    proc = subprocess.Popen([sys.executable, "-m", "sfpipe_reconciler"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline and status != 200:
            try:
                status = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code
            except requests.ConnectionError:
                time.sleep(0.3)
        assert status == 200
        bad = requests.post(f"http://127.0.0.1:{port}/", data=b"not an event", timeout=10)
        assert bad.status_code == 400
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_the_functions_framework_entry_is_the_same_service():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("reconciler_main", Path(__file__).parents[1] / "main.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    assert callable(module.handle)
