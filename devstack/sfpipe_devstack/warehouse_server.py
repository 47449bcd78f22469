"""Run the local warehouse server as its own process: ``python -m sfpipe_devstack.warehouse_server``.

It owns the DuckDB file (docs/adr/0011-local-warehouse-server.md) and advertises itself
in ``<home>/warehouse.url``, which :func:`sfpipe.adapters.factory.warehouse` reads, so a
service finds it without any setting. The file exists exactly while the server serves:
it is written once the port is bound and removed on SIGTERM or SIGINT.
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from types import FrameType

from sfpipe.config import Settings, get_settings
from sfpipe.logging import setup_logging

log = logging.getLogger(__name__)

WAREHOUSE_URL_FILE = "warehouse.url"
"""Same name as ``sfpipe.adapters.factory.WAREHOUSE_URL_FILE`` (a test holds them equal); not
imported from there because the factory pulls in every Google client, which doubles this
process's start-up time (and ``sfpipe down``'s, which reads it)."""


def url_file(settings: Settings) -> Path:
    """Where the running server's address is advertised."""
    return Path(settings.home) / WAREHOUSE_URL_FILE


def run(settings: Settings, stop: threading.Event | None = None) -> None:
    """Serve until ``stop`` is set (or a termination signal arrives, when run as a program)."""
    from sfpipe.adapters.warehouse.duckdb.server import WarehouseServer

    stop = stop or threading.Event()
    location = f"grpc://{settings.host}:{settings.warehouse_port}"
    server = WarehouseServer(settings.warehouse_file, location, settings.warehouse_memory_limit)
    marker = url_file(settings)
    thread = threading.Thread(target=server.serve, name="warehouse-flight", daemon=True)
    thread.start()
    marker.parent.mkdir(parents=True, exist_ok=True)
    tmp = marker.with_suffix(".tmp")
    tmp.write_text(f"grpc://{settings.host}:{server.port}\n")
    tmp.replace(marker)
    log.info("warehouse server on grpc://%s:%s owns %s", settings.host, server.port, settings.warehouse_file)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        marker.unlink(missing_ok=True)
        server.shutdown()
        thread.join(timeout=5)
        server.conn.close()
        log.info("warehouse server stopped")


def main() -> None:
    """Program entry: serve with the process's settings until SIGTERM or SIGINT."""
    settings = get_settings()
    setup_logging("warehouse", settings)
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    run(settings, stop)


if __name__ == "__main__":
    main()
