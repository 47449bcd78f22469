"""Helpers for integration tests against the emulators: a push endpoint that records what it gets.

A real HTTP server on a free port (the emulator pushes over real HTTP), answering each
delivery with a status the test chooses, so that acks, retries and dead-lettering can be
observed from the outside.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Push:
    """One push request as the endpoint received it."""

    at: float
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def message(self) -> dict[str, Any]:
        """The Pub/Sub message of the envelope."""
        return dict(self.body.get("message") or {})

    @property
    def attributes(self) -> dict[str, str]:
        """The message's attributes."""
        return dict(self.message.get("attributes") or {})

    @property
    def data(self) -> bytes:
        """The message's data, decoded from base64."""
        return base64.b64decode(self.message.get("data") or "")

    @property
    def message_id(self) -> str:
        """The message id."""
        return str(self.message.get("messageId") or self.message.get("message_id") or "")


StatusRule = Callable[[Push, int], int]
"""Chooses the HTTP status of a push: (push, how many pushes of this message so far) → code."""


class PushRecorder:
    """An HTTP endpoint for push subscriptions that records every request."""

    def __init__(self, status: int | StatusRule = 204, host: str = "127.0.0.1") -> None:
        self.status = status
        self.pushes: list[Push] = []
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {"raw": raw.decode(errors="replace")}
                push = Push(time.monotonic(), dict(self.headers), body)
                code = recorder._record(push)
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.host = host
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, name="push-recorder", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """The push endpoint."""
        return f"http://{self.host}:{self.port}/push"

    def _record(self, push: Push) -> int:
        with self._changed:
            earlier = sum(1 for p in self.pushes if p.message_id == push.message_id)
            self.pushes.append(push)
            self._changed.notify_all()
        return self.status(push, earlier + 1) if callable(self.status) else self.status

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Push]:
        """Wait until at least ``count`` pushes arrived; all of them so far."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.pushes) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
            return list(self.pushes)

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def push_recorder(status: int | StatusRule = 204) -> Iterator[PushRecorder]:
    """A :class:`PushRecorder` for the duration of a block."""
    recorder = PushRecorder(status)
    try:
        yield recorder
    finally:
        recorder.close()


def pull_all(
    subscriber: Any, subscription: str, *, expected: int | None = None, timeout: float = 30.0, ack: bool = True
) -> list[Any]:
    """Pull until ``expected`` messages arrived (or, without it, until a pull comes back empty)."""
    received: list[Any] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = subscriber.pull(
            request={"subscription": subscription, "max_messages": 100, "return_immediately": True}, timeout=10
        )
        batch = list(response.received_messages)
        if batch and ack:
            subscriber.acknowledge(request={"subscription": subscription, "ack_ids": [m.ack_id for m in batch]})
        received += batch
        if expected is not None and len(received) >= expected:
            break
        if expected is None and not batch:
            break
        if not batch:
            time.sleep(0.1)
    return received


@contextmanager
def serve_wsgi(app: Any, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve a WSGI app (a service's Flask app) on a free port in a thread; yields its base URL."""
    from werkzeug.serving import make_server

    server = make_server(host, 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="wsgi", daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def warehouse_server_process(
    home: Any, port: int, host: str = "127.0.0.1", timeout: float = 30.0, env: dict[str, str] | None = None
) -> Iterator[str]:
    """The warehouse server as its own OS process (as ``sfpipe up`` runs it); yields its URL.

    ``env`` adds settings (``SFPIPE_…``) to the process's environment.
    """
    import os
    import subprocess
    import sys
    from pathlib import Path

    from sfpipe_devstack.procs import stop_groups

    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    extra = env or {}
    env = {k: v for k, v in os.environ.items() if not k.startswith("SFPIPE_")}
    env.update({"SFPIPE_HOME": str(home), "SFPIPE_HOST": host, "SFPIPE_WAREHOUSE_PORT": str(port), **extra})
    log = (home / "warehouse.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "sfpipe_devstack.warehouse_server"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    marker = home / "warehouse.url"
    try:
        deadline = time.monotonic() + timeout
        while not marker.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                msg = f"warehouse server did not start; see {home / 'warehouse.log'}"
                raise RuntimeError(msg)
            time.sleep(0.05)
        yield marker.read_text().strip()
    finally:
        stop_groups([proc.pid], timeout=5)
        proc.wait(timeout=5)
        log.close()
