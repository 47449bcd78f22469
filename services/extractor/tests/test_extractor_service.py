"""The extractor as its users meet it: the HTTP server process, the CLI, the functions-framework entry."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from sfpipe_devstack.emulators import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOKEN = "local-test-token"


@pytest.fixture
def server(extract_settings, object_store, completed_events, monkeypatch, tmp_path):
    port = free_port("127.0.0.1")
    monkeypatch.setenv("SFPIPE_EXTRACTOR_PORT", str(port))
    monkeypatch.setenv("SFPIPE_EXTRACTOR_TOKEN", TOKEN)
    log = (tmp_path / "extractor.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "sfpipe_extractor"], env=dict(os.environ), stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "extractor.log").read_text()
            try:
                if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.2)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()


def test_post_runs_answers_202_and_the_run_is_followed_to_its_end(server, lake):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert requests.post(f"{server}/runs", json={"objects": ["Account"]}, timeout=10).status_code == 401
    answer = requests.post(f"{server}/runs", json={"objects": ["Account", "Campaign"], "mode": "full"},
                           headers=auth, timeout=10)
    assert answer.status_code == 202, answer.text
    run_id = answer.json()["run_id"]
    assert answer.headers["Location"] == f"/runs/{run_id}"
    deadline = time.monotonic() + 120
    status = {}
    while time.monotonic() < deadline:
        status = requests.get(f"{server}/runs/{run_id}", headers=auth, timeout=10).json()
        if status["status"] not in ("queued", "running"):
            break
        time.sleep(0.3)
    assert status["status"] == "completed", status
    assert status["objects"]["Account"]["rows"] > 0 and status["objects"]["Campaign"]["rows"] > 0
    assert status["manifest_uri"].endswith(f"/_runs/{run_id}/_manifest.json")
    assert [m.run_id for m in lake.manifests()] == [run_id]

    waited = requests.post(f"{server}/runs?wait=true", json={"objects": ["UserRole"]}, headers=auth, timeout=120)
    assert waited.status_code == 200, waited.text
    assert waited.json()["status"] == "completed"
    assert waited.json()["objects"]["UserRole"]["rows"] > 0
    listed = requests.get(f"{server}/runs", headers=auth, timeout=10).json()["runs"]
    assert {r["run_id"] for r in listed} == {run_id, waited.json()["run_id"]}


def test_cli_extract_prints_the_manifest_and_fails_loudly_on_a_failed_object(extract_settings, object_store,
                                                                              completed_events, lake):
    ok = subprocess.run([sys.executable, "-m", "sfpipe", "extract", "-o", "UserRole,Pricebook2", "--full"],
                        env=dict(os.environ), capture_output=True, text=True, timeout=300, check=False)
    assert ok.returncode == 0, ok.stderr
    [manifest] = lake.manifests()
    assert ok.stdout.strip().splitlines()[-1] == f"gs://{extract_settings.lake_bucket}/salesforce/_runs/{manifest.run_id}/_manifest.json"
    assert sorted(manifest.objects) == ["Pricebook2", "UserRole"]

    bad = subprocess.run([sys.executable, "-m", "sfpipe", "extract", "-o", "UserRole", "-o", "NoSuchThing", "-q"],
                         env=dict(os.environ), capture_output=True, text=True, timeout=300, check=False)
    assert bad.returncode == 1
    errors = [line for line in bad.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "1 object(s) failed: NoSuchThing" in errors[0], bad.stderr
    assert "NOT_FOUND" in bad.stderr or "INVALID_TYPE" in bad.stderr, bad.stderr

    usage = subprocess.run([sys.executable, "-m", "sfpipe", "extract", "-o", "Account; DROP", "-q"],
                           env=dict(os.environ), capture_output=True, text=True, timeout=60, check=False)
    assert usage.returncode == 1 and "not a Salesforce API name" in usage.stderr


def test_functions_framework_entry_routes_to_the_same_app(sfpipe_env, monkeypatch):
    import flask

    monkeypatch.setenv("SFPIPE_EXTRACTOR_TOKEN", TOKEN)
    path = Path(__file__).parents[1] / "main.py"
    spec = importlib.util.spec_from_file_location("sfpipe_extractor_main", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    outer = flask.Flask("functions-framework")
    with outer.test_request_context("/healthz"):
        assert module.handle(flask.request).status_code == 200
    with outer.test_request_context("/runs", method="POST", json={"objects": ["Account"]}):
        assert module.handle(flask.request).status_code == 401
    with outer.test_request_context("/runs", method="POST", json={"mode": "never"},
                                    headers={"Authorization": f"Bearer {TOKEN}"}):
        answer = module.handle(flask.request)
        assert answer.status_code == 400 and "mode" in answer.get_json()["error"]
