"""The local devstack's supervisor behind ``sfpipe up``, ``status``, ``down`` and ``env``.

``up`` starts Google's Pub/Sub emulator, fake-gcs-server (publishing object notifications
for the manifest prefix to the emulator), the warehouse server and every service that
exists as a runnable package, each in its own process group with a log under
``<home>/logs`` and a pid file under ``<home>/run``; it applies the topology and creates
the buckets, and returns only when every health check is green. ``down`` stops exactly
what those pid files name. See docs/adr/0012-devstack-supervisor.md.
"""

from __future__ import annotations

import fcntl
import functools
import logging
import os
import shlex
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from sfpipe.config import Settings
from sfpipe.errors import SfpipeError
from sfpipe.topology import LAKE_NOTIFICATIONS_TOPIC, MANIFEST_PREFIX, Topology, load_topology
from sfpipe_devstack import emulators, procs
from sfpipe_devstack.emulators import StartError
from sfpipe_devstack.registry import SERVICES, ServiceSpec, push_endpoint, runnable_services
from sfpipe_devstack.warehouse_server import WAREHOUSE_URL_FILE

log = logging.getLogger(__name__)

Kind = Literal["emulator", "warehouse", "service"]
INFRA = ("pubsub", "gcs", "warehouse")
TOPOLOGY_STATE = "topology-state.json"


class PortTakenError(SfpipeError):
    """A port the devstack needs is held by a process it did not start."""


@dataclass
class Component:
    """One process the devstack runs."""

    name: str
    kind: Kind
    ports: dict[str, int]
    command: list[str]
    env: dict[str, str]
    healthy: Callable[[], bool]
    health_url: str
    timeout: float = 60.0

    @property
    def port(self) -> int:
        """The port its health check answers on."""
        return next(iter(self.ports.values()))


@dataclass
class ProcessState:
    """A process as ``status`` (and ``up``) report it."""

    name: str
    kind: Kind
    state: Literal["started", "running", "unhealthy", "stopped", "stale", "not built"]
    pid: int | None = None
    ports: dict[str, int] = field(default_factory=dict)
    health_url: str = ""
    log: str = ""
    started_at: str = ""
    seconds: float | None = None


@dataclass
class UpReport:
    """What ``up`` did."""

    processes: list[ProcessState] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    topology: str = ""
    buckets: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class DownReport:
    """What ``down`` did."""

    stopped: list[str] = field(default_factory=list)
    killed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _python() -> str:
    return sys.executable


class Devstack:
    """The devstack of one ``SFPIPE_HOME``."""

    def __init__(self, settings: Settings, services: Sequence[ServiceSpec] = SERVICES) -> None:
        self.settings = settings
        self.home = Path(settings.home).expanduser().resolve()
        self.pids = procs.PidDir(self.home / "run")
        self.logs = self.home / "logs"
        self.services = tuple(services)

    # ---- what a client needs -------------------------------------------------------------

    @property
    def warehouse_url(self) -> str:
        """The warehouse server's address (the one it advertises, when it runs)."""
        marker = self.home / WAREHOUSE_URL_FILE
        if marker.exists() and (text := marker.read_text().strip()):
            return text
        return f"grpc://{self.settings.host}:{self.settings.warehouse_port}"

    def client_env(self) -> dict[str, str]:
        """The variables a client process needs to reach this devstack."""
        s = self.settings
        env = {
            "SFPIPE_MODE": "local",
            "SFPIPE_HOME": str(self.home),
            "SFPIPE_PROJECT": s.project,
            "SFPIPE_HOST": s.host,
            "SFPIPE_LAKE_BUCKET": s.lake_bucket,
            "SFPIPE_STATE_BUCKET": s.state_bucket,
            "SFPIPE_RETRY_SCALE": str(s.retry_scale),
            "SFPIPE_WAREHOUSE_URL": self.warehouse_url,
        }
        for name in Settings.model_fields:
            if name.endswith("_port"):
                env[f"SFPIPE_{name.upper()}"] = str(getattr(s, name))
        # Salesforce clients go to the simulator on its configured port, unless pointed at a real org
        default_login = Settings.model_fields["sf_login_url"].default
        env["SFPIPE_SF_LOGIN_URL"] = (
            f"https://{s.host}:{s.simulator_port}" if s.sf_login_url == default_login else s.sf_login_url
        )
        env.update(
            {
                "PUBSUB_EMULATOR_HOST": s.pubsub_emulator_host,
                "PUBSUB_PROJECT_ID": s.project,
                "STORAGE_EMULATOR_HOST": s.storage_emulator_host,
                "GOOGLE_CLOUD_PROJECT": s.project,
                "CLOUDSDK_API_ENDPOINT_OVERRIDES_PUBSUB": f"http://{s.pubsub_emulator_host}/",
            }
        )
        return env

    def export_lines(self) -> list[str]:
        """``export NAME=value`` lines for ``eval "$(sfpipe env)"``."""
        return [f"export {key}={shlex.quote(value)}" for key, value in self.client_env().items()]

    # ---- the processes -------------------------------------------------------------------

    def _child_env(self) -> dict[str, str]:
        env = os.environ.copy()
        env.update(self.client_env())
        env.setdefault("SFPIPE_LOG_FORMAT", "json")
        env.setdefault("PYTHONUNBUFFERED", "1")
        return env

    def components(self) -> list[Component]:
        """Every process ``up`` would run now, infrastructure first."""
        s = self.settings
        host = s.host
        env = self._child_env()
        found: list[Component] = [
            Component(
                "pubsub",
                "emulator",
                {"pubsub_port": s.pubsub_port},
                emulators.pubsub_command(host, s.pubsub_port, self.home / "pubsub"),
                {**env, **emulators.pubsub_env()},
                lambda: emulators.pubsub_healthy(host, s.pubsub_port),
                f"http://{host}:{s.pubsub_port}/",
            ),
            Component(
                "gcs",
                "emulator",
                {"gcs_port": s.gcs_port},
                emulators.fake_gcs_command(
                    host, s.gcs_port, project=s.project, topic=LAKE_NOTIFICATIONS_TOPIC, object_prefix=MANIFEST_PREFIX
                ),
                env,
                lambda: emulators.gcs_healthy(host, s.gcs_port),
                f"http://{host}:{s.gcs_port}/_internal/healthcheck",
                timeout=30.0,
            ),
            Component(
                "warehouse",
                "warehouse",
                {"warehouse_port": s.warehouse_port},
                [_python(), "-m", "sfpipe_devstack.warehouse_server"],
                {k: v for k, v in env.items() if k != "SFPIPE_WAREHOUSE_URL"},
                self._warehouse_healthy,
                f"grpc://{host}:{s.warehouse_port}",
                timeout=30.0,
            ),
        ]
        for spec in runnable_services(tuple(self.services)):
            port = spec.port(s)
            url = f"{spec.scheme}://{host}:{port}{spec.health_path}"
            found.append(
                Component(
                    spec.name,
                    "service",
                    spec.ports(s),
                    [_python(), "-m", spec.module],
                    env,
                    functools.partial(emulators.http_ok, url),
                    url,
                )
            )
        return found

    def _warehouse_healthy(self) -> bool:
        from sfpipe.adapters.warehouse.duckdb.session import FlightSession

        if not (self.home / WAREHOUSE_URL_FILE).exists():
            return False
        session = FlightSession(f"grpc://{self.settings.host}:{self.settings.warehouse_port}")
        try:
            return session.ping()
        finally:
            session.close()

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """One ``up`` or ``down`` at a time per home."""
        self.pids.path.mkdir(parents=True, exist_ok=True)
        with (self.pids.path / ".lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _running(self, name: str) -> procs.PidRecord | None:
        record = self.pids.read(name)
        return record if record is not None and record.is_running() else None

    def _forget_stale(self, notes: list[str]) -> None:
        for name in self.pids.names():
            record = self.pids.read(name)
            if record is None:
                self.pids.remove(name)
                notes.append(f"removed unreadable pid file {self.pids.file(name)}")
            elif not record.is_running():
                if procs.group_alive(record.pgid):
                    continue  # the leader died but its group lives on: `down` must stop it
                self.pids.remove(name)
                notes.append(f"removed stale pid file of {name}: pid {record.pid} no longer runs")

    def _check_ports(self, wanted: list[Component]) -> None:
        problems = []
        for comp in wanted:
            for setting, port in comp.ports.items():
                if emulators.port_open(self.settings.host, port):
                    owners = procs.listener_pids(port)
                    who = ", ".join(procs.describe_pid(p) for p in owners) or "another process"
                    problems.append(
                        f"port {port} for {comp.name} is already in use by {who}; stop it or set "
                        f"SFPIPE_{setting.upper()} to a free port"
                    )
        if problems:
            raise PortTakenError("; ".join(problems))

    def _start(self, comp: Component) -> procs.PidRecord:
        log_path = self.logs / f"{comp.name}.log"
        proc = emulators.spawn(comp.command, log_path, comp.env)
        record = procs.PidRecord(
            name=comp.name,
            pid=proc.pid,
            pgid=proc.pid,
            ports=dict(comp.ports),
            command=comp.command,
            log=str(log_path),
            start_ticks=procs.start_ticks(proc.pid),
            health=comp.health_url,
        )
        self.pids.write(record)
        return record

    def _wait_healthy(self, pending: dict[str, tuple[Component, procs.PidRecord, float]]) -> dict[str, float]:
        """Wait until each component answers its health check; seconds each took."""
        took: dict[str, float] = {}
        while pending:
            for name, (comp, record, started) in list(pending.items()):
                if comp.healthy():
                    took[name] = time.monotonic() - started
                    del pending[name]
                elif not procs.alive(record.pid):
                    raise StartError(f"{name} exited during start-up; see {record.log}:\n{_tail(Path(record.log))}")
                elif time.monotonic() - started > comp.timeout:
                    raise StartError(
                        f"{name} was not healthy at {comp.health_url} within {comp.timeout:.0f}s; "
                        f"see {record.log}:\n{_tail(Path(record.log))}"
                    )
            if pending:
                time.sleep(0.1)
        return took

    def up(self, *, topology: Topology | None = None) -> UpReport:
        """Start whatever is not running, apply the topology, create the buckets."""
        began = time.monotonic()
        report = UpReport()
        self.home.mkdir(parents=True, exist_ok=True)
        with self._locked():
            self._forget_stale(report.notes)
            planned = self.components()
            running = {c.name: self._running(c.name) for c in planned}
            to_start = [c for c in planned if running[c.name] is None]
            self._check_ports(to_start)
            started: list[procs.PidRecord] = []
            try:
                self._bring_up(planned, running, started, report, topology)
            except BaseException:
                procs.stop_groups([r.pgid for r in reversed(started)], timeout=3.0)
                for record in started:
                    self.pids.remove(record.name)
                if running["warehouse"] is None:
                    (self.home / WAREHOUSE_URL_FILE).unlink(missing_ok=True)
                raise
        report.seconds = time.monotonic() - began
        return report

    def _bring_up(
        self,
        planned: list[Component],
        running: dict[str, procs.PidRecord | None],
        started: list[procs.PidRecord],
        report: UpReport,
        topology: Topology | None,
    ) -> None:
        by_name = {c.name: c for c in planned}
        states: dict[str, ProcessState] = {}
        Pending = dict[str, tuple[Component, procs.PidRecord, float]]

        def spawn(names: list[str]) -> Pending:
            pending: Pending = {}
            for name in names:
                comp = by_name[name]
                existing = running.get(name)
                if existing is not None:
                    pending[name] = (comp, existing, time.monotonic())
                    states[name] = _state(comp, existing, "running")
                    continue
                record = self._start(comp)
                started.append(record)
                pending[name] = (comp, record, time.monotonic())
                states[name] = _state(comp, record, "started")
            return pending

        def wait(pending: Pending) -> None:
            for name, seconds in self._wait_healthy(pending).items():
                if states[name].state == "started":
                    states[name].seconds = round(seconds, 2)

        # the warehouse needs nothing else: it starts while the JVM warms up
        wait(spawn(["pubsub", "warehouse"]))
        self._ensure_notification_topic()
        wait(spawn(["gcs"]))
        # the services import for seconds: topology and buckets are set up meanwhile
        services = spawn([c.name for c in planned if c.kind == "service"])
        report.topology = self._apply_topology(topology, fresh_pubsub=running["pubsub"] is None)
        report.buckets = self._create_buckets()
        wait(services)
        report.processes = [states[c.name] for c in planned]

    def _ensure_notification_topic(self) -> None:
        """fake-gcs-server only publishes to a topic that exists when it starts."""
        from google.api_core import exceptions as gexc

        from sfpipe.adapters.factory import publisher_client

        publisher = publisher_client(self.settings, ordering=False)
        try:
            publisher.create_topic(name=publisher.topic_path(self.settings.project, LAKE_NOTIFICATIONS_TOPIC))
        except gexc.AlreadyExists:
            pass

    def _apply_topology(self, topology: Topology | None, *, fresh_pubsub: bool) -> str:
        from sfpipe.adapters.factory import publisher_client, subscriber_client
        from sfpipe_devstack.topology_apply import apply_topology

        state = self.pids.path / TOPOLOGY_STATE
        if fresh_pubsub:
            state.unlink(missing_ok=True)  # the emulator keeps nothing across restarts
        applied = apply_topology(
            topology or load_topology(),
            self.settings.project,
            lambda target: push_endpoint(self.settings, target),
            publisher=publisher_client(self.settings, ordering=False),
            subscriber=subscriber_client(self.settings),
            state_file=state,
            retry_scale=self.settings.retry_scale,
        )
        parts = [
            f"{len(applied.created_topics)} topics created",
            f"{len(applied.created_subscriptions)} subscriptions created",
        ]
        if applied.updated_subscriptions:
            parts.append(f"updated {', '.join(applied.updated_subscriptions)}")
        if applied.recreated_subscriptions:
            parts.append(f"recreated {', '.join(applied.recreated_subscriptions)}")
        parts.append(f"{applied.unchanged} unchanged")
        return ", ".join(parts)

    def _create_buckets(self) -> list[str]:
        from sfpipe.adapters.factory import object_store

        store = object_store(self.settings)
        store.ensure_bucket(self.settings.lake_bucket)
        store.ensure_bucket(self.settings.state_bucket, versioned=True)
        return [self.settings.lake_bucket, f"{self.settings.state_bucket} (versioned)"]

    def down(self, *, timeout: float = 2.5) -> DownReport:
        """Stop exactly the processes the pid files name; services first, then the rest."""
        began = time.monotonic()
        report = DownReport()
        with self._locked():
            records: dict[str, procs.PidRecord] = {}
            for name in self.pids.names():
                record = self.pids.read(name)
                if record is None:
                    report.notes.append(f"removed unreadable pid file {self.pids.file(name)}")
                    self.pids.remove(name)
                elif record.is_running() or procs.group_alive(record.pgid):
                    records[name] = record
                else:
                    report.notes.append(f"{name} (pid {record.pid}) was not running; removed its pid file")
                    self.pids.remove(name)
            services = [n for n in records if n not in INFRA]
            infra = [n for n in INFRA if n in records]
            for phase in (services, infra):
                if not phase:
                    continue
                killed = procs.stop_groups([records[n].pgid for n in phase], timeout=timeout)
                for name in phase:
                    (report.killed if records[name].pgid in killed else report.stopped).append(name)
            for name, record in records.items():
                if procs.group_alive(record.pgid):
                    report.leftovers.append(f"{name}: {procs.group_members(record.pgid)}")
                else:
                    self.pids.remove(name)
            (self.home / WAREHOUSE_URL_FILE).unlink(missing_ok=True)
        report.seconds = time.monotonic() - began
        return report

    def process_states(self) -> list[ProcessState]:
        """Each known process: recorded ones with their health, then services not built yet."""
        states = []
        planned = {c.name: c for c in self.components()}
        for name in [*INFRA, *(s.name for s in self.services)]:
            record = self.pids.read(name)
            comp = planned.get(name)
            if record is None:
                if comp is None:
                    states.append(ProcessState(name, "service", "not built"))
                else:
                    states.append(
                        ProcessState(name, comp.kind, "stopped", ports=comp.ports, health_url=comp.health_url)
                    )
                continue
            kind: Kind = comp.kind if comp else ("service" if name not in INFRA else "emulator")
            if not record.is_running():
                states.append(_state_from_record(record, kind, "stale"))
                continue
            healthy = comp.healthy() if comp else emulators.http_ok(record.health)
            states.append(_state_from_record(record, kind, "running" if healthy else "unhealthy"))
        return states


def _state(comp: Component, record: procs.PidRecord, state: Literal["started", "running"]) -> ProcessState:
    return ProcessState(
        comp.name,
        comp.kind,
        state,
        pid=record.pid,
        ports=dict(comp.ports),
        health_url=comp.health_url,
        log=record.log,
        started_at=record.started_at,
    )


def _state_from_record(
    record: procs.PidRecord, kind: Kind, state: Literal["running", "unhealthy", "stale"]
) -> ProcessState:
    return ProcessState(
        record.name,
        kind,
        state,
        pid=record.pid,
        ports=dict(record.ports),
        health_url=record.health,
        log=record.log,
        started_at=record.started_at,
    )


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join("    " + line for line in text[-lines:])
