"""``python -m sfpipe_cdc_publisher``: run the publisher with ``/healthz`` and ``/metrics``.

Health and metrics listen on ``SFPIPE_HOST:SFPIPE_CDC_PUBLISHER_PORT``. SIGTERM (Cloud Run's stop,
``sfpipe down``) stops the subscription, publishes what was already received, writes the
checkpoint, and exits 0; a terminal error (a second writer on the checkpoint, a refused login)
exits 1 after logging it.
"""

from __future__ import annotations

import logging
import signal
import sys

from sfpipe.config import get_settings
from sfpipe.errors import SfpipeError
from sfpipe.logging import setup_logging

log = logging.getLogger("sfpipe_cdc_publisher")


def main() -> int:
    """Run until SIGTERM / SIGINT."""
    try:
        settings = get_settings()
    except SfpipeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    setup_logging("cdc-publisher", settings)
    from sfpipe_cdc_publisher.health import serve_health
    from sfpipe_cdc_publisher.publisher import build

    publisher = build(settings)
    server = serve_health(publisher, settings.host, settings.cdc_publisher_port)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: publisher.stop())
    log.info("cdc-publisher: %s → %s (health on %s:%s)", settings.cdc_topic, publisher.topic_path, settings.host,
             server.server_address[1])  # fmt: skip
    try:
        publisher.run()
    except SfpipeError as exc:
        log.error("cdc-publisher stopped: %s", exc)
        return 1
    finally:
        server.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
