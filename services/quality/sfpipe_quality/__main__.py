"""`python -m sfpipe_quality`: serve the `sfpipe.transform.completed` handler (what the container runs).

One gunicorn worker with two threads: one runs checks (runs are serialised by the stage's
lock, since two at once would only compete for the warehouse), the other keeps
``GET /healthz`` answering meanwhile. Great Expectations is imported in the background
after start-up, so the port opens at once and the first event does not wait for it.
No worker timeout: a large org's checks take a minute.
"""

from __future__ import annotations

import threading

from sfpipe.config import get_settings
from sfpipe.logging import setup_logging
from sfpipe.serve import serve
from sfpipe.service import create_app
from sfpipe_quality.service import SERVICE, build_service, warm_up


def main() -> None:
    """Serve on ``SFPIPE_HOST:SFPIPE_QUALITY_PORT``; ``GET /healthz`` answers 200 once ready."""
    settings = get_settings()
    setup_logging(SERVICE, settings)
    app = create_app(build_service(settings))
    serve(app, settings.host, settings.quality_port, threads=2, on_load=_warm_up_in_background)


def _warm_up_in_background() -> None:
    threading.Thread(target=warm_up, name="gx-import", daemon=True).start()


if __name__ == "__main__":
    main()
