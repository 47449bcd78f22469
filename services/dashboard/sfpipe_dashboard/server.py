"""Serve the dashboard app: in the foreground (``python -m sfpipe_dashboard``, ``sfpipe dashboard``)
or on a background thread (tests, and the demo that opens the page while it runs).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import flask
from werkzeug.serving import BaseWSGIServer, make_server

log = logging.getLogger(__name__)


@dataclass
class Serving:
    """A server running on a thread."""

    server: BaseWSGIServer
    thread: threading.Thread

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:8360``."""
        return f"http://{self.server.host}:{self.server.port}"

    def stop(self) -> None:
        """Stop serving and wait for the thread."""
        self.server.shutdown()
        self.thread.join(timeout=10)
        self.server.server_close()


def start(app: flask.Flask, host: str, port: int) -> Serving:
    """Listen on host:port (port 0 picks a free one) and serve on a daemon thread."""
    server = make_server(host, port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="sfpipe-dashboard", daemon=True)
    thread.start()
    return Serving(server, thread)


@contextmanager
def serving(app: flask.Flask, host: str = "127.0.0.1", port: int = 0) -> Iterator[Serving]:
    """Serve for the duration of a block."""
    running = start(app, host, port)
    try:
        yield running
    finally:
        running.stop()


def serve_forever(app: flask.Flask, host: str, port: int) -> None:
    """Serve in the foreground until interrupted (SIGINT or SIGTERM)."""
    import signal

    server = make_server(host, port, app, threaded=True)
    if not log.isEnabledFor(logging.DEBUG):
        # one access line per browser every few seconds drowns the service log; DEBUG shows them
        logging.getLogger("werkzeug").setLevel(logging.WARNING)

    def _stop(signum: int, frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    log.info("dashboard on http://%s:%s", host, server.port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
