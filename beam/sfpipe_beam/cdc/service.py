"""The local CDC stream as a service: ``python -m sfpipe_beam.cdc`` / ``sfpipe cdc stream``.

``GET /healthz`` answers 200 while the stream pulls (JSON with counts, batches, the last batch's
duration and lag); ``GET /metrics`` gives the same numbers in Prometheus' text format. The
devstack starts it like any other local service.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sfpipe.config import Settings
    from sfpipe_beam.cdc.stream import CdcStream

log = logging.getLogger(__name__)
SERVICE = "cdc-stream"


def prometheus(stream: CdcStream) -> str:
    """The stream's numbers in Prometheus' text format."""
    m = stream.metrics
    lines = []
    for name, value in (("received", m.received), ("applied", m.applied), ("batches", m.batches),
                        ("rejected", m.rejected), ("retries", m.retries)):  # fmt: skip
        lines += [f"# TYPE sfpipe_cdc_stream_{name}_total counter", f"sfpipe_cdc_stream_{name}_total {value}"]
    lag = (m.last_lag_ms / 1000.0) if m.last_lag_ms is not None else float("nan")
    lines += ["# TYPE sfpipe_cdc_stream_lag_seconds gauge", f"sfpipe_cdc_stream_lag_seconds {lag}"]
    return "\n".join(lines) + "\n"


def serve_health(stream: CdcStream, host: str, port: int) -> ThreadingHTTPServer:
    """The health server on a daemon thread (port 0 picks one)."""

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path.startswith("/metrics"):
                self._send(200, prometheus(stream).encode(), "text/plain; version=0.0.4")
                return
            if self.path.startswith("/healthz") or self.path == "/":
                healthy = stream.metrics.state != "stopped"
                payload = {"status": "ok" if healthy else "stopped", "service": SERVICE,
                           "subscription": stream.subscription, **stream.metrics.as_dict()}  # fmt: skip
                self._send(200 if healthy else 503, json.dumps(payload, default=str).encode(), "application/json")
                return
            self._send(404, b'{"error": "not found"}', "application/json")

        def log_message(self, format: str, *args: Any) -> None:
            """Health probes are not logged."""

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="sfpipe-cdc-stream-health", daemon=True).start()
    return server


def run_service(settings: Settings, *, port: int | None = None, duration: float | None = None) -> CdcStream:
    """Pull and apply until SIGTERM / SIGINT (or ``duration`` seconds); returns the stream for its numbers."""
    from sfpipe_beam.cdc.stream import build

    stream = build(settings)
    server = serve_health(stream, settings.host, settings.cdc_stream_port if port is None else port)
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stream.stop())
    if duration is not None:
        threading.Timer(duration, stream.stop).start()
    log.info("CDC stream: %s → raw layer (health on %s:%s)", stream.subscription, settings.host,
             server.server_address[1])  # fmt: skip
    try:
        stream.run()
    finally:
        server.shutdown()
    return stream
