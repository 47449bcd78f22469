"""The two ways the service is started: `python -m sfpipe_quality` and the Cloud Run entry."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from sfpipe.events import EventType, LoadCompleted, make_event
from sfpipe_devstack.emulators import free_port

MAIN = Path(__file__).resolve().parents[1] / "main.py"


@pytest.mark.integration
def test_module_serves_healthz_before_great_expectations_is_imported(tmp_path, sfpipe_env):
    port = free_port()
    env = {**os.environ, "SFPIPE_QUALITY_PORT": str(port), "SFPIPE_HOST": "127.0.0.1"}
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sfpipe_quality"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                response = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except requests.ConnectionError:
                assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
                assert time.monotonic() < deadline, "the quality service did not start"
                time.sleep(0.2)
        assert response.status_code == 200
        assert response.json() == {"service": "quality", "status": "ok"}
        # still answering while GX is imported in the background
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
        assert time.monotonic() - started < 60
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_cloud_run_entry_acknowledges_an_event_it_does_not_handle(sfpipe_env):
    import functions_framework

    app = functions_framework.create_app(target="handle", source=str(MAIN), signature_type="cloudevent")
    event = make_event(
        EventType.LOAD_COMPLETED,
        LoadCompleted(run_id="20261101T000000Z-00c0ffee", manifest_uri="gs://l/m.json", objects={}),
        service="loader",
    )
    headers = {**event.attributes(), "Content-Type": "application/json"}

    response = app.test_client().post("/", json=event.data, headers=headers)

    assert response.status_code == 200
