"""The three ways the dashboard starts: `python -m sfpipe_dashboard`, `sfpipe dashboard`, and Cloud Run's `main.handle`."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
import requests
from werkzeug.test import EnvironBuilder

from sfpipe_devstack.emulators import free_port

SERVICE = Path(__file__).resolve().parents[1]


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "exited"
        try:
            if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    pytest.fail(f"{url} never answered /healthz")


def stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


@pytest.fixture
def env(sfpipe_env: dict[str, str]) -> dict[str, str]:
    port = free_port()
    return {
        **os.environ,
        **sfpipe_env,
        "SFPIPE_DASHBOARD_PORT": str(port),
        "SFPIPE_PUBSUB_PORT": str(free_port()),  # nothing listens: the dead-letter panel says so at once
    }


@pytest.mark.integration
@pytest.mark.parametrize(
    "command",
    [[sys.executable, "-m", "sfpipe_dashboard"], [sys.executable, "-m", "sfpipe", "dashboard", "--refresh", "5"]],
    ids=["python-m", "sfpipe-dashboard"],
)
def test_serves_on_its_port_and_leaves_the_warehouse_file_free(env, command):
    url = f"http://127.0.0.1:{env['SFPIPE_DASHBOARD_PORT']}"
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_healthy(url, proc)
        body = requests.get(f"{url}/api/dashboard", timeout=30).json()
        assert body["health"]["status"] == "no-data"
        assert body["panels"]["dead_letters"]["state"] == "empty"
        assert "does not answer" in body["panels"]["dead_letters"]["message"]
        page = requests.get(f"{url}/", timeout=10)
        assert page.status_code == 200 and 'id="chart-runs"' in page.text
        # between refreshes another process can take the DuckDB file (the warehouse server, a CLI)
        warehouse = Path(env["SFPIPE_HOME"]) / "warehouse.duckdb"
        assert warehouse.exists()
        duckdb.connect(str(warehouse)).close()
    finally:
        code = stop(proc)
    assert code == 0


def test_cloud_run_handle_dispatches_to_the_app(sfpipe_env):
    spec = importlib.util.spec_from_file_location("sfpipe_dashboard_main", SERVICE / "main.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    response = module.handle(EnvironBuilder(path="/healthz").get_request())
    assert response.status_code == 200
    assert response.get_json() == {"service": "dashboard", "status": "ok"}
    missing = module.handle(EnvironBuilder(path="/api/missing").get_request())
    assert missing.status_code == 404


CONTAINER_LIKE = """
import sys, tempfile
from pathlib import Path
sys.modules["sfpipe_devstack"] = None  # the Cloud Run image ships the library and this package only
from sfpipe.adapters.warehouse.duckdb.client import DuckDBWarehouse
from sfpipe.adapters.warehouse.duckdb.session import EmbeddedSession
from sfpipe_dashboard.app import create_app
import sfpipe_dashboard.__main__, sfpipe_dashboard.cli
folder = Path(tempfile.mkdtemp())
client = create_app(DuckDBWarehouse(EmbeddedSession(folder / "w.duckdb"))).test_client()
body = client.get("/api/dashboard").get_json()
assert client.get("/").status_code == 200
print(body["panels"]["dead_letters"]["state"], body["panels"]["dead_letters"]["message"])
"""


def test_runs_without_the_devstack_in_gcp_mode(sfpipe_env):
    env = {**os.environ, **sfpipe_env, "SFPIPE_MODE": "gcp"}
    out = subprocess.run(
        [sys.executable, "-c", CONTAINER_LIKE], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr[-3000:]
    state, message = out.stdout.strip().splitlines()[-1].split(" ", 1)
    assert state == "empty"
    assert "Cloud Monitoring" in message
