"""The simulator as a separate process: `python -m sfpipe_simulator` and `sfpipe simulator serve`."""

import os
import signal
import subprocess
import sys
import time

import pytest
import requests

from sfpipe_devstack.emulators import free_port
from sfpipe_simulator.server import SimulatorConfig, SimulatorProcess

pytestmark = pytest.mark.integration


def test_module_entry_serves_the_configured_org(tmp_path):
    config = SimulatorConfig(seed=4, scale=1_000, data_dir=tmp_path, activity_rate=5.0)
    with SimulatorProcess(config) as proc:
        sf = proc.salesforce(version="59.0")
        assert sf.query("SELECT COUNT() FROM UserRole")["totalSize"] >= 1
        status = proc.admin.status()
        assert status["seed"] == 4 and status["scale"] == 1_000
        time.sleep(1.5)
        assert proc.admin.status()["activity"]["total"] > 0  # SFPIPE_SIMULATOR_ACTIVITY_RATE started it
    assert proc.proc is None


def test_cli_serve_and_sigterm(tmp_path):
    port = free_port()
    env = {**os.environ, "SFPIPE_HOME": str(tmp_path), "SFPIPE_SIMULATOR_DATA_DIR": str(tmp_path / "sim"),
           "SFPIPE_SIMULATOR_GRPC_PORT": str(free_port())}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sfpipe", "simulator", "serve", "--seed", "1", "--scale", "1000", "--port", str(port),
         "--no-tls"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.2)
        versions = requests.get(f"http://127.0.0.1:{port}/services/data", timeout=5)
        assert versions.status_code == 200
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output.decode()[-2000:]
    assert b"simulator ready at http://127.0.0.1:" in output
