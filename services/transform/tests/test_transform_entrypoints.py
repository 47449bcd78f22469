"""The two ways the service is started: `python -m sfpipe_transform` and the Cloud Run entry."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from sfpipe.events import EventType, TransformCompleted, make_event
from sfpipe_devstack.emulators import free_port

MAIN = Path(__file__).resolve().parents[1] / "main.py"


@pytest.mark.integration
def test_module_serves_healthz(tmp_path: Path, transform_env: dict[str, str]) -> None:
    port = free_port()
    env = {**os.environ, "SFPIPE_TRANSFORM_PORT": str(port), "SFPIPE_HOST": "127.0.0.1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sfpipe_transform"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except requests.ConnectionError:
                assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
                assert time.monotonic() < deadline, "the transform service did not start"
                time.sleep(0.2)
        assert response.status_code == 200
        assert response.json() == {"service": "transform", "status": "ok"}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_cloud_run_entry_accepts_a_cloudevent(transform_env: dict[str, str]) -> None:
    import functions_framework

    app = functions_framework.create_app(target="handle", source=str(MAIN), signature_type="cloudevent")
    event = make_event(
        EventType.TRANSFORM_COMPLETED,
        TransformCompleted(run_id="20240515T230000Z-0a1b2c3d", actions=[]),
        service="transform",
    )
    headers = {**event.attributes(), "Content-Type": "application/json"}
    response = app.test_client().post("/", json=event.data, headers=headers)
    # not an event the transform handles: acknowledged without any work
    assert response.status_code == 200
