"""``GET /healthz`` (JSON status) and ``GET /metrics`` (Prometheus text) of a running publisher.

Cloud Monitoring alerts on the lag; locally the dashboard and ``sfpipe status`` read the same
numbers. The server is the standard library's: it answers while the publisher's own threads
are busy, and adds nothing to the container.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sfpipe_cdc_publisher.publisher import CdcPublisher, Metrics

_COUNTERS = (
    ("events_received", "Change events received from the Pub/Sub API"),
    ("gap_events", "Gap events received (repaired through the REST API)"),
    ("messages_published", "Messages Google Pub/Sub acknowledged on sfpipe-cdc"),
    ("publish_requests", "Publish requests sent"),
    ("records_repaired", "Records re-read and published by gap repair and catch-up"),
    ("catch_ups", "Catch-ups after a resume position outside the retention window"),
    ("checkpoints", "Checkpoint writes"),
    ("errors", "Errors retried"),
)


def prometheus(metrics: Metrics) -> str:
    """The metrics in Prometheus' text format."""
    lines = []
    for name, text in _COUNTERS:
        lines += [f"# HELP sfpipe_cdc_{name}_total {text}", f"# TYPE sfpipe_cdc_{name}_total counter",
                  f"sfpipe_cdc_{name}_total {getattr(metrics, name)}"]  # fmt: skip
    lag = metrics.lag_seconds if metrics.lag_seconds is not None else float("nan")
    lines += [
        "# HELP sfpipe_cdc_lag_seconds Commit to Pub/Sub acknowledgement of the newest published change",
        "# TYPE sfpipe_cdc_lag_seconds gauge",
        f"sfpipe_cdc_lag_seconds {lag}",
        "# HELP sfpipe_cdc_subscribed Whether the Subscribe stream is open",
        "# TYPE sfpipe_cdc_subscribed gauge",
        f"sfpipe_cdc_subscribed {int(metrics.subscribed)}",
    ]
    return "\n".join(lines) + "\n"


def serve_health(publisher: CdcPublisher, host: str, port: int) -> ThreadingHTTPServer:
    """Start the health server on a daemon thread (port 0 picks one); returns it for ``shutdown()``."""

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            metrics = publisher.metrics
            if self.path.startswith("/metrics"):
                self._send(200, prometheus(metrics).encode(), "text/plain; version=0.0.4")
                return
            if self.path.startswith("/healthz") or self.path == "/":
                healthy = metrics.state != "stopped"
                payload: dict[str, Any] = {"status": "ok" if healthy else "stopped", "service": "cdc-publisher",
                                           "channel": publisher.channel, **metrics.as_dict()}  # fmt: skip
                self._send(200 if healthy else 503, json.dumps(payload, default=str).encode(), "application/json")
                return
            self._send(404, b'{"error": "not found"}', "application/json")

        def log_message(self, format: str, *args: Any) -> None:
            """Health probes are not logged."""

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="sfpipe-cdc-health", daemon=True).start()
    return server
