"""`sfpipe up`, `status`, `env` and `down` as a user runs them: separate processes, a fresh home.

A stand-in service (a package with a ``__main__`` put first on ``PYTHONPATH``) shows
that the registry starts what is built, health-checks it, and that ``down`` also stops
the children a service starts, even one that ignores SIGTERM.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from sfpipe.config import Settings
from sfpipe_devstack import procs
from sfpipe_devstack.emulators import free_port, http_ok, port_open

pytestmark = pytest.mark.integration

FAKE_SERVICE = textwrap.dedent(
    """
    import os, pathlib, subprocess, sys
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    if os.environ.get("FAKE_SERVICE_EXIT"):
        print("refusing to start", flush=True)
        sys.exit(3)
    child = subprocess.Popen([sys.executable, "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(3600)"])
    pathlib.Path(os.environ["FAKE_CHILD_PID_FILE"]).write_text(str(child.pid))

    class Health(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/healthz" else 404)
            self.end_headers()
            self.wfile.write(b"ok")

    ThreadingHTTPServer((os.environ["SFPIPE_HOST"], int(os.environ["SFPIPE_DASHBOARD_PORT"])), Health).serve_forever()
    """
)


@pytest.fixture
def stack_env(tmp_path: Path) -> dict[str, str]:
    """A fresh home, a free port for every SFPIPE_*_PORT, and the stand-in dashboard first on the path."""
    fake = tmp_path / "fake" / "sfpipe_dashboard"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "__main__.py").write_text(FAKE_SERVICE)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SFPIPE_", "PUBSUB_", "STORAGE_EMULATOR"))}
    env.update(
        {
            "SFPIPE_HOME": str(tmp_path / "home"),
            "SFPIPE_PROJECT": "sfpipe-up-test",
            "SFPIPE_HOST": "127.0.0.1",
            "SFPIPE_RETRY_SCALE": "0.01",
            "PYTHONPATH": str(tmp_path / "fake"),
            "FAKE_CHILD_PID_FILE": str(tmp_path / "child.pid"),
            "COLUMNS": "200",
        }
    )
    for name in Settings.model_fields:
        if name.endswith("_port"):
            env[f"SFPIPE_{name.upper()}"] = str(free_port())
    return env


def sfpipe(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sfpipe", *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def _home(env: dict[str, str]) -> Path:
    return Path(env["SFPIPE_HOME"])


def _records(env: dict[str, str]) -> dict[str, procs.PidRecord]:
    pids = procs.PidDir(_home(env) / "run")
    return {name: record for name in pids.names() if (record := pids.read(name)) is not None}


def test_up_status_env_down_from_a_fresh_home(stack_env, tmp_path):
    env = stack_env
    home = _home(env)
    # a pid file left by a crash: the pid belongs to a process that has exited
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (home / "run").mkdir(parents=True)
    (home / "run" / "dashboard.pid").write_text(
        json.dumps({"name": "dashboard", "pid": gone.pid, "pgid": gone.pid, "ports": {}, "command": [], "log": ""})
    )

    started = time.monotonic()
    first = sfpipe(env, "up", "--services", "dashboard")
    up_seconds = time.monotonic() - started
    assert first.returncode == 0, first.stderr + first.stdout
    assert "stale pid file of dashboard" in first.stdout
    records = _records(env)
    assert set(records) == {"pubsub", "gcs", "warehouse", "dashboard"}
    for name, record in records.items():
        assert record.is_running(), name
        assert Path(record.log).is_file() and Path(record.log).parent == home / "logs"
    assert http_ok(f"http://127.0.0.1:{env['SFPIPE_DASHBOARD_PORT']}/healthz")
    assert http_ok(f"http://127.0.0.1:{env['SFPIPE_PUBSUB_PORT']}/")
    assert (home / "warehouse.url").read_text().strip() == f"grpc://127.0.0.1:{env['SFPIPE_WAREHOUSE_PORT']}"
    java = Path(f"/proc/{records['pubsub'].pid}/cmdline").read_bytes()
    assert b"java" in java  # the launcher execs the JVM: the recorded pid is the Java process
    child = int((tmp_path / "child.pid").read_text())
    assert procs.alive(child)

    again = sfpipe(env, "up", "--services", "dashboard")
    assert again.returncode == 0, again.stderr
    assert "already running" in again.stdout
    assert {n: r.pid for n, r in _records(env).items()} == {n: r.pid for n, r in records.items()}

    exports = dict(
        shlex.split(line.removeprefix("export "))[0].split("=", 1) for line in sfpipe(env, "env").stdout.splitlines()
    )
    assert exports["PUBSUB_EMULATOR_HOST"] == f"127.0.0.1:{env['SFPIPE_PUBSUB_PORT']}"
    assert exports["STORAGE_EMULATOR_HOST"] == f"http://127.0.0.1:{env['SFPIPE_GCS_PORT']}"
    assert exports["SFPIPE_WAREHOUSE_URL"] == f"grpc://127.0.0.1:{env['SFPIPE_WAREHOUSE_PORT']}"

    # a client that only has `sfpipe env`: publish an event, write to the warehouse and the lake
    client_env = {k: v for k, v in os.environ.items() if not k.startswith(("SFPIPE_", "PUBSUB_", "STORAGE_"))}
    client = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                """
                from sfpipe.adapters import factory
                from sfpipe.events import EventType, LoadFailed, make_event
                from sfpipe.ids import new_run_id
                event = make_event(EventType.LOAD_FAILED, LoadFailed(run_id=new_run_id(), manifest_uri="gs://x/y",
                                   reason="test"), service="loader")
                factory.event_publisher().publish(event)
                wh = factory.warehouse()
                wh.execute(["CREATE SCHEMA IF NOT EXISTS sfpipe_ops", "CREATE TABLE sfpipe_ops.probe (n INT64)",
                            "INSERT INTO sfpipe_ops.probe (n) VALUES (42)"])
                print(type(wh.session).__name__, wh.scalar("SELECT n FROM sfpipe_ops.probe"))
                from sfpipe import ops
                ops.ensure_ops_tables(wh)
                ops.record_stage(wh, event.data["run_id"], "extract", "succeeded", rows=10)
                store = factory.object_store()
                print(store.put_bytes("gs://" + factory.get_settings().state_bucket + "/probe", b"1").generation > 0)
                """
            ),
        ],
        env={**client_env, **exports},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert client.returncode == 0, client.stderr
    assert client.stdout.split() == ["FlightSession", "42", "True"]

    status = sfpipe(env, "status", "--json")
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    states = {p["name"]: p for p in report["processes"]}
    assert {n: states[n]["state"] for n in ("pubsub", "gcs", "warehouse", "dashboard")} == dict.fromkeys(
        ("pubsub", "gcs", "warehouse", "dashboard"), "running"
    )
    assert states["loader"]["state"] in ("stopped", "not built")  # not asked for
    assert report["runs"][0]["stages"] == {"extract": {"status": "succeeded", "rows": 10}}
    backlog = {s["subscription"]: s["messages"] for s in report["subscriptions"]}
    assert backlog["sfpipe-load-failed-alerts"] == 1
    assert backlog["sfpipe-load-failed-ops"] == 1
    assert backlog["dead-letter"] == 0
    assert sfpipe(env, "status", "--json").returncode == 0  # counting did not consume
    assert {
        s["subscription"]: s["messages"] for s in json.loads(sfpipe(env, "status", "--json").stdout)["subscriptions"]
    }["sfpipe-load-failed-alerts"] == 1
    table = sfpipe(env, "status")
    assert table.returncode == 0
    assert "healthy" in table.stdout and "sfpipe-load-failed-alerts" in table.stdout
    assert "extract succeeded (10 rows)" in table.stdout

    started = time.monotonic()
    down = sfpipe(env, "down")
    down_seconds = time.monotonic() - started
    assert down.returncode == 0, down.stderr + down.stdout
    assert "dashboard" in down.stdout  # its child ignored SIGTERM: killed after the grace period
    for name, record in records.items():
        assert not procs.alive(record.pid), name
        assert not procs.group_alive(record.pgid), name
    assert not procs.alive(child)
    for key in ("SFPIPE_PUBSUB_PORT", "SFPIPE_GCS_PORT", "SFPIPE_WAREHOUSE_PORT", "SFPIPE_DASHBOARD_PORT"):
        assert not port_open("127.0.0.1", int(env[key])), key
    assert procs.processes_mentioning(str(home)) == []
    assert _records(env) == {}
    assert not (home / "warehouse.url").exists()

    assert sfpipe(env, "status").returncode == 3
    nothing = sfpipe(env, "down")
    assert nothing.returncode == 0
    assert "nothing was running" in nothing.stdout
    print(f"\nup {up_seconds:.1f}s, down {down_seconds:.1f}s (as subprocesses, imports included)")


def test_a_port_already_taken_is_named_and_nothing_is_started(stack_env):
    env = stack_env
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", int(env["SFPIPE_GCS_PORT"])))
        squatter.listen()
        result = sfpipe(env, "up", "--services", "none")
    assert result.returncode == 1
    message = " ".join(result.stderr.split())
    assert f"port {env['SFPIPE_GCS_PORT']} for gcs is already in use by pid {os.getpid()}" in message
    assert "SFPIPE_GCS_PORT" in message
    assert _records(env) == {}
    assert not port_open("127.0.0.1", int(env["SFPIPE_PUBSUB_PORT"]))


def test_a_service_that_fails_to_start_fails_up_and_leaves_nothing_running(stack_env):
    env = {**stack_env, "FAKE_SERVICE_EXIT": "1"}
    result = sfpipe(env, "up", "--services", "dashboard")
    assert result.returncode == 1
    assert "dashboard exited during start-up" in result.stderr
    assert "refusing to start" in result.stderr  # the log's tail is shown
    assert _records(env) == {}
    assert procs.processes_mentioning(str(_home(env))) == []
    for key in ("SFPIPE_PUBSUB_PORT", "SFPIPE_GCS_PORT", "SFPIPE_WAREHOUSE_PORT"):
        assert not port_open("127.0.0.1", int(env[key])), key
