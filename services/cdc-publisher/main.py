"""Cloud Run entry of the cdc-publisher: ``functions-framework --target handle`` (HTTP).

The container normally runs ``python -m sfpipe_cdc_publisher`` (a long-running service with
CPU always allocated and one instance). Under functions-framework the first request starts the
same publisher on a background thread of the instance, and every request answers with its
health and lag — so a Cloud Run HTTP probe both wakes and watches it.
"""

from __future__ import annotations

import functools
import json
import threading

import flask

from sfpipe.config import get_settings
from sfpipe.logging import setup_logging
from sfpipe_cdc_publisher.publisher import CdcPublisher, build


@functools.cache
def _publisher() -> CdcPublisher:
    settings = get_settings()
    setup_logging("cdc-publisher", settings)
    publisher = build(settings)
    threading.Thread(target=publisher.run, name="sfpipe-cdc-publisher", daemon=True).start()
    return publisher


def handle(request: flask.Request) -> flask.Response:
    """Start the publisher once per instance; answer with its health (503 once it stopped)."""
    publisher = _publisher()
    metrics = publisher.metrics
    status = 503 if metrics.state == "stopped" else 200
    body = {"service": "cdc-publisher", "channel": publisher.channel, **metrics.as_dict()}
    return flask.Response(json.dumps(body, default=str), status=status, mimetype="application/json")
