"""`python -m sfpipe_loader`: serve the loader's event endpoint (what the container runs).

``POST /`` takes a lake finalize event in any delivery shape, ``GET /healthz`` answers
once the process is up. One gunicorn worker with threads: the warehouse connection (and,
locally, the DuckDB file) belongs to one process.
"""

from __future__ import annotations

from sfpipe.config import get_settings
from sfpipe.logging import setup_logging
from sfpipe.serve import serve
from sfpipe.service import create_app
from sfpipe_loader.loader import SERVICE
from sfpipe_loader.service import build_service


def main() -> None:
    """Start the server on ``SFPIPE_HOST:SFPIPE_LOADER_PORT``."""
    settings = get_settings()
    setup_logging(SERVICE, settings)
    app = create_app(build_service(settings))
    serve(app, settings.host, settings.loader_port, threads=4)


if __name__ == "__main__":
    main()
