"""The devstack's parts that need no emulator: registry, pid files, process groups, the check, env."""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from google.cloud import pubsub_v1

from sfpipe.adapters import factory
from sfpipe.config import Settings
from sfpipe.errors import ConfigError
from sfpipe.topology import load_topology
from sfpipe_devstack import check, emulators, procs, registry, warehouse_server
from sfpipe_devstack.supervisor import Devstack
from sfpipe_devstack.topology_apply import compare, subscription_request


def test_every_push_route_of_the_topology_is_a_registered_service():
    targets = {s.push for t in load_topology().topics for s in t.subscriptions if s.push}
    assert targets <= {s.name for s in registry.SERVICES}


def test_every_service_port_setting_exists():
    settings = Settings()
    for spec in registry.SERVICES:
        for name, port in spec.ports(settings).items():
            assert name in Settings.model_fields
            assert 1 <= port <= 65535


def test_a_service_is_runnable_once_its_package_has_a_main(tmp_path, monkeypatch):
    package = tmp_path / "sfpipe_devstack_probe_svc"
    package.mkdir()
    (package / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = registry.ServiceSpec("probe", "sfpipe_devstack_probe_svc", "loader_port")
    assert not spec.runnable
    (package / "__main__.py").write_text("print('serving')\n")
    assert spec.runnable
    assert not registry.ServiceSpec("absent", "sfpipe_devstack_no_such_package", "loader_port").runnable
    assert registry.runnable_services((spec,)) == [spec]


def test_push_endpoints_follow_the_port_settings():
    settings = Settings(host="127.0.0.9", loader_port=18320)
    assert registry.push_endpoint(settings, "loader") == "http://127.0.0.9:18320/"
    with pytest.raises(KeyError):
        registry.push_endpoint(settings, "nobody")


def test_the_warehouse_server_advertises_itself_where_the_factory_looks():
    assert warehouse_server.WAREHOUSE_URL_FILE == factory.WAREHOUSE_URL_FILE


def test_pid_files_round_trip_and_a_reused_pid_is_not_ours(tmp_path):
    pids = procs.PidDir(tmp_path / "run")
    me = procs.PidRecord(
        "me", os.getpid(), os.getpgid(0), {"x_port": 1}, ["python"], "log", procs.start_ticks(os.getpid())
    )
    pids.write(me)
    assert pids.names() == ["me"]
    assert pids.read("me") == me
    assert me.is_running()
    impostor = procs.PidRecord("me", os.getpid(), os.getpgid(0), {}, [], "", (me.start_ticks or 0) + 12345)
    assert not impostor.is_running()  # same number, another process's start time
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    assert not procs.PidRecord("gone", finished.pid, finished.pid, {}, [], "").is_running()
    (tmp_path / "run" / "broken.pid").write_text("{not json")
    assert pids.read("broken") is None
    pids.remove("me")
    assert pids.names() == ["broken"]


def test_stop_groups_stops_a_whole_group_even_a_child_that_ignores_sigterm():
    code = (
        "import signal, subprocess, sys, time\n"
        "subprocess.Popen([sys.executable, '-c', 'import signal, time; "
        "signal.signal(signal.SIGTERM, signal.SIG_IGN); print(1, flush=True); time.sleep(600)'])\n"
        "time.sleep(600)\n"
    )
    leader = subprocess.Popen([sys.executable, "-c", code], start_new_session=True, stdout=subprocess.PIPE)
    assert leader.stdout is not None
    leader.stdout.readline()  # the child has installed its handler
    members = procs.group_members(leader.pid)
    assert len(members) == 2
    started = time.monotonic()
    killed = procs.stop_groups([leader.pid], timeout=1.0)
    leader.wait(timeout=5)
    assert killed == [leader.pid]  # SIGTERM was not enough for the child
    assert time.monotonic() - started < 4
    assert not procs.group_alive(leader.pid)
    assert not any(procs.alive(p) for p in members)


def test_listener_pids_names_the_process_holding_a_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert os.getpid() in procs.listener_pids(port)
        assert f"pid {os.getpid()}" in procs.describe_pid(os.getpid())


def _runner(answers: dict[str, subprocess.CompletedProcess[str]], calls: list[list[str]]):
    def run(cmd: list[str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
        calls.append(cmd)
        for key, answer in answers.items():
            if key in " ".join(cmd):
                return answer
        return subprocess.CompletedProcess(cmd, 1, "", "unexpected")

    return run


@pytest.mark.parametrize(
    ("stderr", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('java version "1.8.0_292"', 8),
        ('openjdk version "21" 2023-09-19', 21),
    ],
)
def test_java_version_is_read_from_java_dash_version(stderr, major):
    run = _runner({"-version": subprocess.CompletedProcess([], 0, "", stderr)}, [])
    found = check.java_version(run)
    assert found is not None
    assert found[0] == major
    result = check.check_java(run)
    assert result.ok is (major >= 11)


def test_without_gcloud_or_apt_the_check_says_exactly_what_to_install(monkeypatch):
    monkeypatch.setattr(check.shutil, "which", lambda name: None)
    with pytest.raises(ConfigError) as raised:
        check.install_pubsub_emulator(_runner({}, []))
    message = str(raised.value)
    assert "gcloud components install pubsub-emulator" in message
    assert "apt-get install google-cloud-cli-pubsub-emulator" in message
    assert "Java 11" in message


def test_a_disabled_component_manager_falls_back_to_the_debian_package(monkeypatch):
    monkeypatch.setattr(check.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(check.os, "geteuid", lambda: 0)
    calls: list[list[str]] = []
    run = _runner(
        {
            "components install": subprocess.CompletedProcess([], 1, "", "the component manager is disabled"),
            "apt-cache policy": subprocess.CompletedProcess([], 0, "Candidate: 528.0.0-0\n", ""),
            "apt-get install": subprocess.CompletedProcess([], 0, "", ""),
        },
        calls,
    )
    how = check.install_pubsub_emulator(run)
    assert how == "apt-get install -y -qq google-cloud-cli-pubsub-emulator"
    assert calls[0] == ["/usr/bin/gcloud", "components", "install", "pubsub-emulator", "--quiet"]


def test_a_missing_emulator_is_installed_then_found(monkeypatch, tmp_path):
    launcher = tmp_path / "platform/pubsub-emulator/bin/cloud-pubsub-emulator"
    state = {"installed": False}

    def find() -> Path:
        if not state["installed"]:
            raise ConfigError(emulators.PUBSUB_INSTALL_HINT)
        return launcher

    def install(run) -> str:
        state["installed"] = True
        return "gcloud components install pubsub-emulator"

    monkeypatch.setattr(check.emulators, "pubsub_emulator_launcher", find)
    monkeypatch.setattr(check, "install_pubsub_emulator", install)
    assert not check.check_pubsub_emulator(install=False).ok
    result = check.check_pubsub_emulator(install=True)
    assert result.ok
    assert "installed with `gcloud components install pubsub-emulator`" in result.detail


def test_this_machine_passes_the_check():
    results = check.run_checks(install=False)
    assert [r.name for r in results] == ["java", "pubsub-emulator", "fake-gcs-server"]
    assert all(r.ok for r in results), results


def test_env_exports_what_a_client_needs(tmp_path):
    settings = Settings(home=tmp_path / "home", project="p-1", pubsub_port=18085, gcs_port=14443, warehouse_port=18370)
    stack = Devstack(settings)
    env = {}
    for line in stack.export_lines():
        assert line.startswith("export ")
        key, value = line.removeprefix("export ").split("=", 1)
        env[key] = shlex.split(value)[0]
    assert env["PUBSUB_EMULATOR_HOST"] == "127.0.0.1:18085"
    assert env["STORAGE_EMULATOR_HOST"] == "http://127.0.0.1:14443"
    assert env["SFPIPE_WAREHOUSE_URL"] == "grpc://127.0.0.1:18370"
    assert env["SFPIPE_HOME"] == str((tmp_path / "home").resolve())
    assert env["SFPIPE_PUBSUB_PORT"] == "18085"
    assert env["SFPIPE_PROJECT"] == env["GOOGLE_CLOUD_PROJECT"] == "p-1"
    assert env["SFPIPE_SF_LOGIN_URL"] == "https://127.0.0.1:8300"
    moved = Devstack(Settings(home=tmp_path / "home", simulator_port=18300)).client_env()
    assert moved["SFPIPE_SF_LOGIN_URL"] == "https://127.0.0.1:18300"  # follows the simulator's port
    real = Devstack(Settings(home=tmp_path / "home", sf_login_url="https://acme.my.salesforce.com")).client_env()
    assert real["SFPIPE_SF_LOGIN_URL"] == "https://acme.my.salesforce.com"  # a real org is left alone
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "warehouse.url").write_text("grpc://127.0.0.1:19999\n")
    assert stack.client_env()["SFPIPE_WAREHOUSE_URL"] == "grpc://127.0.0.1:19999"


def test_components_start_infrastructure_first_and_check_tls_services_over_https(tmp_path, monkeypatch):
    package = tmp_path / "pkgs" / "sfpipe_devstack_probe_tls"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "__main__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))
    tls = registry.ServiceSpec(
        "probe",
        "sfpipe_devstack_probe_tls",
        "simulator_port",
        extra_port_settings=("simulator_grpc_port",),
        scheme="https",
    )
    unbuilt = registry.ServiceSpec("unbuilt", "sfpipe_devstack_no_such_package", "loader_port")
    stack = Devstack(Settings(home=tmp_path, simulator_port=18300), services=[tls, unbuilt])
    components = stack.components()
    assert [c.name for c in components] == ["pubsub", "gcs", "warehouse", "probe"]
    probe = components[-1]
    assert probe.health_url == "https://127.0.0.1:18300/healthz"
    assert probe.command[-2:] == ["-m", "sfpipe_devstack_probe_tls"]
    assert set(probe.ports) == {"simulator_port", "simulator_grpc_port"}
    assert registry.service("simulator").scheme == "https"
    gcs = components[1].command
    assert gcs[gcs.index("-event.pubsub-topic") + 1] == "sfpipe-lake-notifications"
    assert gcs[gcs.index("-event.object-prefix") + 1] == "salesforce/_runs/"
    assert gcs[gcs.index("-backend") + 1] == "memory"  # versioned state bucket: see ADR 0012


def test_compare_reports_each_differing_field():
    topology = load_topology()
    topic, sub = topology.subscription("loader")
    request = subscription_request("p", topology, topic, sub, lambda t: f"http://h/{t}")
    live = pubsub_v1.types.Subscription(**request)
    assert compare(live, request) == {}
    live.push_config.push_endpoint = "http://elsewhere/"
    live.ack_deadline_seconds = 30
    assert set(compare(live, request)) == {"push_config", "ack_deadline_seconds"}


def test_a_health_check_of_a_closed_port_is_false():
    assert not emulators.http_ok(f"http://127.0.0.1:{emulators.free_port()}/healthz", timeout=0.5)
