"""Starting a simulator: in this process (tests, benches) or as a child process, and serving forever.

``Simulator(config).start()`` generates (or reuses) the org's Parquet files, loads them into
DuckDB, and serves the API on a background thread; ``SimulatorProcess`` runs the same thing as
``python -m sfpipe_simulator`` in a child process. Both expose the same client helpers: the base
URL, the CA file that verifies its certificate, a ``requests.Session`` that routes Salesforce's
login hosts to it (for simple-salesforce's ``session=``), a ready ``Salesforce`` client, and the
admin client.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import requests
from flask import Flask
from requests.adapters import HTTPAdapter
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from sfpipe.config import Settings, get_settings
from sfpipe_simulator.activity import ActivityEngine
from sfpipe_simulator.app import create_app
from sfpipe_simulator.auth import Auth, Credentials, Identity
from sfpipe_simulator.bulk import BulkJobs
from sfpipe_simulator.cursors import QueryCursors
from sfpipe_simulator.faults import FaultConfig, Faults
from sfpipe_simulator.generator import (
    ORG_NAME,
    OrgPlan,
    Progress,
    as_of_today,
    parse_counts,
    read_manifest,
    write_parquet,
)
from sfpipe_simulator.limits import Limits
from sfpipe_simulator.orgfaults import OrgFaults
from sfpipe_simulator.runtime import Runtime
from sfpipe_simulator.store import Clock, OrgStore
from sfpipe_simulator.tls import ensure_certificate

if TYPE_CHECKING:
    from simple_salesforce import Salesforce

    from sfpipe_simulator.client import AdminClient

log = logging.getLogger(__name__)

MEMORY_STORE_MAX_SCALE = 200_000
HOUSEKEEPING_SECONDS = 60.0
DEFAULT_API_VERSION = "62.0"


@dataclass
class SimulatorConfig:
    """How to run one simulated org."""

    seed: int = 42
    scale: int = 10_000
    as_of: datetime | None = None
    host: str = "127.0.0.1"
    port: int = 0
    tls: bool = True
    data_dir: Path | None = None
    store: str = "auto"
    admin_token: str = "sfpipe-admin"
    username: str = "admin@sfpipe.example.com"
    password: str = "sfpipe-local"
    security_token: str = ""
    client_id: str = "sfpipe-local"
    client_secret: str = "sfpipe-local-secret"
    jwt_public_key: str | None = None
    session_seconds: int = 7_200
    api_daily_limit: int = 1_000_000
    activity_rate: float = 0.0
    activity_seed: int | None = None
    faults: dict[str, Any] = field(default_factory=dict)
    public_url: str | None = None
    memory_limit: str = "1GB"
    counts: dict[str, int] = field(default_factory=dict)
    """Records of named objects instead of their share of ``scale`` (``{"Opportunity": 1_000_000}``)."""

    @classmethod
    def from_settings(cls, settings: Settings | None = None, **overrides: Any) -> SimulatorConfig:
        """The configuration ``SFPIPE_*`` settings describe, with explicit overrides (None = keep)."""
        s = settings or get_settings()
        faults = json.loads(s.simulator_faults) if s.simulator_faults.strip() else {}
        config = cls(
            seed=s.simulator_seed,
            scale=s.simulator_scale,
            as_of=datetime.fromisoformat(s.simulator_as_of).replace(tzinfo=UTC) if s.simulator_as_of else None,
            host=s.host,
            port=s.simulator_port,
            tls=s.simulator_tls,
            data_dir=s.simulator_data_dir or s.home / "simulator",
            admin_token=s.simulator_admin_token.get_secret_value(),
            username=s.simulator_username,
            password=s.simulator_password.get_secret_value(),
            security_token=s.simulator_security_token.get_secret_value(),
            client_id=s.sf_client_id,
            client_secret=s.sf_client_secret.get_secret_value(),
            jwt_public_key=s.simulator_jwt_public_key,
            session_seconds=s.simulator_session_seconds,
            api_daily_limit=s.simulator_api_daily_limit,
            activity_rate=s.simulator_activity_rate,
            faults=faults,
            public_url=s.simulator_public_url,
            counts=parse_counts(s.simulator_counts),
        )
        for key, value in overrides.items():
            if value is not None:
                setattr(config, key, value)
        return config

    def env(self) -> dict[str, str]:
        """The ``SFPIPE_*`` variables that make ``python -m sfpipe_simulator`` run this configuration."""
        out = {
            "SFPIPE_SIMULATOR_SEED": str(self.seed),
            "SFPIPE_SIMULATOR_SCALE": str(self.scale),
            "SFPIPE_HOST": self.host,
            "SFPIPE_SIMULATOR_PORT": str(self.port),
            "SFPIPE_SIMULATOR_TLS": "true" if self.tls else "false",
            "SFPIPE_SIMULATOR_ADMIN_TOKEN": self.admin_token,
            "SFPIPE_SIMULATOR_USERNAME": self.username,
            "SFPIPE_SIMULATOR_PASSWORD": self.password,
            "SFPIPE_SIMULATOR_SECURITY_TOKEN": self.security_token,
            "SFPIPE_SF_CLIENT_ID": self.client_id,
            "SFPIPE_SF_CLIENT_SECRET": self.client_secret,
            "SFPIPE_SIMULATOR_SESSION_SECONDS": str(self.session_seconds),
            "SFPIPE_SIMULATOR_API_DAILY_LIMIT": str(self.api_daily_limit),
            "SFPIPE_SIMULATOR_ACTIVITY_RATE": str(self.activity_rate),
            "SFPIPE_SIMULATOR_FAULTS": json.dumps(self.faults),
            "SFPIPE_SIMULATOR_COUNTS": ",".join(f"{k}={v}" for k, v in sorted(self.counts.items())),
        }
        if self.as_of is not None:
            out["SFPIPE_SIMULATOR_AS_OF"] = self.as_of.date().isoformat()
        if self.data_dir is not None:
            out["SFPIPE_SIMULATOR_DATA_DIR"] = str(self.data_dir)
        if self.jwt_public_key:
            out["SFPIPE_SIMULATOR_JWT_PUBLIC_KEY"] = self.jwt_public_key
        if self.public_url:
            out["SFPIPE_SIMULATOR_PUBLIC_URL"] = self.public_url
        return out


class _Handler(WSGIRequestHandler):
    """HTTP/1.1 keep-alive, no Nagle delay, and no access log line per request.

    Headers and body leave in separate writes; with Nagle's algorithm on, the body waits for the
    client's delayed ACK of the headers, about 40 ms on every keep-alive response.
    """

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Requests are not logged one by one (benchmarks send thousands per second)."""


class RouteToSimulator(HTTPAdapter):
    """Sends every request of a session to the simulator, whatever host it names.

    simple-salesforce logs in at ``https://login.salesforce.com/…`` (SOAP, OAuth password, client
    credentials, JWT); mounting this adapter on a session passed as ``session=`` sends those
    calls, unchanged, to the simulator.
    """

    def __init__(self, base_url: str, verify: str | bool = True) -> None:
        super().__init__(pool_connections=4, pool_maxsize=16)
        parts = urlsplit(base_url)
        self.scheme, self.netloc = parts.scheme, parts.netloc
        self.verify = verify

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        """Rewrite scheme and host, keep path and query; verify against the simulator's CA.

        The CA is set here rather than only on the session because ``REQUESTS_CA_BUNDLE`` in the
        environment would otherwise take precedence over ``session.verify``.
        """
        parts = urlsplit(request.url or "")
        request.url = urlunsplit((self.scheme, self.netloc, parts.path, parts.query, parts.fragment))
        kwargs["verify"] = self.verify
        return super().send(request, *args, **kwargs)


class _ClientHelpers:
    """What both the in-process and the child-process simulator offer a test or a client."""

    url: str
    ca_file: Path | None
    config: SimulatorConfig

    @property
    def verify(self) -> str | bool:
        """What ``requests`` should verify the certificate against."""
        return str(self.ca_file) if self.ca_file else True

    def requests_session(self) -> requests.Session:
        """A session that trusts the simulator's CA and routes every host (login hosts included) to it."""
        session = requests.Session()
        session.verify = self.verify
        adapter = RouteToSimulator(self.url, self.verify)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    def oauth_token(self) -> dict[str, Any]:
        """An OAuth password-flow login over HTTP (the token response)."""
        c = self.config
        response = requests.post(
            f"{self.url}/services/oauth2/token",
            data={"grant_type": "password", "client_id": c.client_id, "client_secret": c.client_secret,
                  "username": c.username, "password": c.password + c.security_token},
            verify=self.verify, timeout=30,
        )  # fmt: skip
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def login(self) -> str:
        """An access token of the integration user."""
        return str(self.oauth_token()["access_token"])

    def salesforce(self, version: str = DEFAULT_API_VERSION, **kwargs: Any) -> Salesforce:
        """A simple-salesforce client logged in to this org (its requests go through a routing session)."""
        from simple_salesforce import Salesforce

        return Salesforce(instance_url=self.url, session_id=self.login(), session=self.requests_session(),
                          version=version, **kwargs)  # fmt: skip

    @property
    def admin(self) -> AdminClient:
        """The admin API client (activity, faults, change log, truth export)."""
        from sfpipe_simulator.client import AdminClient

        return AdminClient(self.url, self.config.admin_token, self.verify)


def _org_folder(data_dir: Path, plan: OrgPlan) -> Path:
    name = f"seed{plan.seed}-scale{plan.scale}-{plan.as_of.date().isoformat()}"
    if plan.overrides:
        name += "-" + "-".join(f"{k}{v}" for k, v in plan.overrides)
    return data_dir / "orgs" / name


def prepare_org(plan: OrgPlan, data_dir: Path, progress: Progress | None = None) -> Path:
    """The folder of the org's Parquet files, generated unless a finished identical one is there."""
    folder = _org_folder(data_dir, plan)
    manifest = read_manifest(folder)
    expected = plan.manifest()
    if manifest is None or any(manifest.get(k) != v for k, v in expected.items()):
        lock = folder.with_suffix(".lock")
        lock.parent.mkdir(parents=True, exist_ok=True)
        with _file_lock(lock):
            manifest = read_manifest(folder)
            if manifest is None or any(manifest.get(k) != v for k, v in expected.items()):
                started = time.perf_counter()
                write_parquet(plan, folder, progress)
                log.info("generated %s records in %.1fs", f"{plan.scale:,}", time.perf_counter() - started)
    return folder


@contextlib.contextmanager
def _file_lock(path: Path) -> Any:
    import fcntl

    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class Simulator(_ClientHelpers):
    """A simulated org served from this process on a background thread."""

    def __init__(self, config: SimulatorConfig | None = None, **overrides: Any) -> None:
        self.config = config or SimulatorConfig()
        for key, value in overrides.items():
            setattr(self.config, key, value)
        self.runtime: Runtime | None = None
        self.app: Flask | None = None
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._temp: Path | None = None
        self._store_path: Path | None = None
        self.url = ""
        self.ca_file = None
        self.port = 0
        self._stopping = threading.Event()

    # ------------------------------------------------------------------ lifecycle

    def build(self, progress: Progress | None = None) -> Flask:
        """Generate or reuse the org, load it, start activity and housekeeping; returns the WSGI app.

        ``start`` serves that app on a socket; a WSGI host (``main.py``) can serve it instead.
        """
        c = self.config
        if c.data_dir is None:
            self._temp = Path(tempfile.mkdtemp(prefix="sfpipe-simulator-"))
        data_dir = c.data_dir or self._temp
        assert data_dir is not None
        plan = OrgPlan.build(c.seed, c.scale, c.as_of or as_of_today(), c.counts)
        folder = prepare_org(plan, data_dir, progress)
        run_id = uuid.uuid4().hex[:12]
        use_memory = c.store == "memory" or (c.store == "auto" and c.scale <= MEMORY_STORE_MAX_SCALE)
        self._store_path = None if use_memory else data_dir / "stores" / f"org-{run_id}.duckdb"
        clock = Clock()
        store = OrgStore(self._store_path, plan.pod, clock, c.memory_limit)
        started = time.perf_counter()
        counts = store.load_parquet(folder)
        log.info("loaded %s records into the store in %.1fs", f"{sum(counts.values()):,}",
                 time.perf_counter() - started)  # fmt: skip
        identity = self._identity(store, plan)
        credentials = Credentials(c.client_id, c.client_secret, c.username, c.password, c.security_token,
                                  c.jwt_public_key, c.session_seconds)  # fmt: skip
        auth = Auth(identity, credentials, lookup_user=lambda name: _lookup_user(store, name))
        faults = Faults(FaultConfig.model_validate({"seed": c.seed, **c.faults}))
        rt = Runtime(
            plan=plan, store=store, clock=clock, auth=auth, limits=Limits(c.api_daily_limit, clock),
            cursors=QueryCursors(data_dir / "cursors" / run_id, plan.pod), faults=faults,
            admin_token=c.admin_token, public_url=c.public_url,
        )  # fmt: skip
        rt.extra["data_dir"] = data_dir
        rt.bulk = BulkJobs(rt, data_dir / "bulk" / run_id)
        rt.org_faults = OrgFaults(rt)
        activity_seed = c.activity_seed if c.activity_seed is not None else c.seed
        rt.activity = ActivityEngine(rt, activity_seed)
        self.runtime = rt
        if c.activity_rate > 0:
            rt.activity.start(c.activity_rate)
        self._housekeeping = threading.Thread(target=self._housekeep, name="sfpipe-housekeeping", daemon=True)
        self._housekeeping.start()
        self.app = create_app(rt)
        return self.app

    def start(self, progress: Progress | None = None) -> Simulator:
        """Build the org and serve it on a background thread; returns self."""
        c = self.config
        app = self.build(progress)
        rt = self.runtime
        assert rt is not None
        ssl_context = None
        if c.tls:
            ca, cert, key = ensure_certificate(rt.extra["data_dir"] / "tls", [c.host])
            ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ssl_context.load_cert_chain(str(cert), str(key))
            self.ca_file = ca
        self._server = make_server(c.host, c.port, app, threaded=True, request_handler=_Handler,
                                   ssl_context=ssl_context)  # fmt: skip
        self._server.daemon_threads = True  # type: ignore[attr-defined]
        self.port = self._server.server_port
        self.url = f"{'https' if c.tls else 'http'}://{c.host}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="sfpipe-simulator", daemon=True)
        self._thread.start()
        log.info("simulator serving org %s at %s", rt.org_id, self.url)
        return self

    def _housekeep(self) -> None:
        """Drop change-log entries past their retention and idle cursors, once a minute."""
        while not self._stopping.wait(HOUSEKEEPING_SECONDS):
            rt = self.runtime
            if rt is None:
                return
            try:
                rt.store.changes.purge(rt.clock.now())
                rt.cursors.expire_idle()
            except Exception:
                log.exception("housekeeping failed")

    @staticmethod
    def _identity(store: OrgStore, plan: OrgPlan) -> Identity:
        with store.reader() as cur:
            row = cur.execute('SELECT Id, Username, Name, Email FROM "User" ORDER BY Id LIMIT 1').fetchone()
        assert row is not None
        return Identity(plan.org_id, row[0], row[1], row[2], row[3], ORG_NAME)

    def stop(self) -> None:
        """Stop serving and release everything (store, cursors, temporary folders)."""
        self._stopping.set()
        rt = self.runtime
        if rt is not None and rt.activity is not None:
            rt.activity.stop()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if rt is not None:
            if rt.bulk is not None:
                rt.bulk.close_all()
            rt.cursors.close_all()
            rt.store.close()
        if self._store_path is not None:
            for path in (self._store_path, self._store_path.with_suffix(".duckdb.wal")):
                path.unlink(missing_ok=True)
        if self._temp is not None:
            shutil.rmtree(self._temp, ignore_errors=True)
        self._server = None
        self.runtime = None

    def __enter__(self) -> Simulator:
        return self.start() if self.runtime is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ in-process shortcuts

    @property
    def store(self) -> OrgStore:
        """The org's store (tables and change log)."""
        assert self.runtime is not None, "the simulator is not started"
        return self.runtime.store

    def login(self) -> str:
        """An access token of the integration user (issued directly, no HTTP)."""
        assert self.runtime is not None, "the simulator is not started"
        return self.runtime.auth.issue().token


def _lookup_user(store: OrgStore, username: str) -> str | None:
    with store.reader() as cur:
        row = cur.execute('SELECT Id FROM "User" WHERE lower(Username) = lower(?) AND IsActive', [username]).fetchone()
    return str(row[0]) if row else None


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class SimulatorProcess(_ClientHelpers):
    """The simulator as a child process (``python -m sfpipe_simulator``), for tests across processes."""

    def __init__(self, config: SimulatorConfig | None = None, log_file: Path | None = None, **overrides: Any) -> None:
        self.config = config or SimulatorConfig()
        for key, value in overrides.items():
            setattr(self.config, key, value)
        self.log_file = log_file
        self.grpc_port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._temp: Path | None = None
        self.url = ""
        self.ca_file = None

    def start(self, timeout: float = 300) -> SimulatorProcess:
        """Start the child and wait until ``/healthz`` answers."""
        c = self.config
        if c.data_dir is None:
            self._temp = Path(tempfile.mkdtemp(prefix="sfpipe-simulator-"))
            c.data_dir = self._temp
        if not c.port:
            c.port = _free_port(c.host)
        self.grpc_port = _free_port(c.host)
        c.data_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **c.env(), "SFPIPE_SIMULATOR_GRPC_PORT": str(self.grpc_port)}
        log_handle = (self.log_file or (c.data_dir / f"simulator-{c.port}.log")).open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sfpipe_simulator"], env=env, stdout=log_handle, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        log_handle.close()
        scheme = "https" if c.tls else "http"
        self.url = f"{scheme}://{c.host}:{c.port}"
        self.ca_file = c.data_dir / "tls" / "ca.pem" if c.tls else None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                msg = f"the simulator exited with code {self.proc.returncode}; see {log_handle.name}"
                raise RuntimeError(msg)
            if self.ca_file is None or self.ca_file.exists():
                with contextlib.suppress(requests.RequestException):
                    if requests.get(f"{self.url}/healthz", verify=self.verify, timeout=2).status_code == 200:
                        return self
            time.sleep(0.2)
        self.stop()
        msg = f"the simulator did not answer /healthz within {timeout:.0f}s"
        raise RuntimeError(msg)

    def stop(self) -> None:
        """Terminate the child (its whole process group) and remove temporary folders."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.proc = None
        if self._temp is not None:
            shutil.rmtree(self._temp, ignore_errors=True)

    def __enter__(self) -> SimulatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_forever(config: SimulatorConfig, progress: bool = False) -> None:
    """Run a simulator until SIGTERM or SIGINT."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    sim = Simulator(config)
    if progress and sys.stderr.isatty():
        from sfpipe_simulator.cli import progress_bar

        with progress_bar(OrgPlan.build(config.seed, config.scale, config.as_of or as_of_today())) as advance:
            sim.start(advance)
    else:
        sim.start()
    pubsub = _attach_pubsub_api(sim)
    ca = f" (CA certificate: {sim.ca_file})" if sim.ca_file else ""
    grpc = f"; Pub/Sub API at {pubsub.endpoint}" if pubsub is not None else ""
    log.info("ready: %s%s%s; admin token from SFPIPE_SIMULATOR_ADMIN_TOKEN", sim.url, ca, grpc)
    print(f"simulator ready at {sim.url}{ca}{grpc}", file=sys.stderr, flush=True)
    try:
        stop.wait()
    finally:
        if pubsub is not None:
            pubsub.stop()
        sim.stop()


def _attach_pubsub_api(sim: Simulator) -> Any:
    """Serve the Salesforce Pub/Sub API next to REST on ``SFPIPE_SIMULATOR_GRPC_PORT``, when it is installed.

    A failure to start it (a port in use, say) is logged and REST keeps serving: the change log
    stays readable through the admin API.
    """
    import importlib

    try:
        module = importlib.import_module("sfpipe_simulator.pubsub_api.server")
    except ModuleNotFoundError:
        return None
    try:
        return module.attach(sim, get_settings())
    except Exception:
        log.exception("the Pub/Sub API did not start; serving REST only")
        return None


def config_dict(config: SimulatorConfig) -> dict[str, Any]:
    """The configuration as plain data (secrets included: for child processes only)."""
    return asdict(config)
