"""`python -m sfpipe_transform`: serve the `sfpipe.load.completed` handler (what the container runs).

One gunicorn worker with one thread: a transform rebuilds the marts, and two at once would
only contend for the same tables (Pub/Sub redelivers what waits too long). No worker
timeout, since a run on a large org takes minutes.
"""

from __future__ import annotations

from sfpipe.config import get_settings
from sfpipe.logging import setup_logging
from sfpipe.serve import serve
from sfpipe.service import create_app
from sfpipe_transform.service import SERVICE, build_service


def main() -> None:
    """Serve on ``SFPIPE_HOST:SFPIPE_TRANSFORM_PORT``; ``GET /healthz`` answers 200 once ready."""
    settings = get_settings()
    setup_logging(SERVICE, settings)
    app = create_app(build_service(settings))
    serve(app, settings.host, settings.transform_port, threads=1)


if __name__ == "__main__":
    main()
