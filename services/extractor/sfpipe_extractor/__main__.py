"""`python -m sfpipe_extractor`: serve the extractor's HTTP API (what the container runs).

One gunicorn worker process with threads: runs started by ``POST /runs`` live in that
process's memory (``GET /runs/<id>`` reads it), and a long ``?wait=true`` request must not
be killed by a worker timeout.
"""

from __future__ import annotations

from sfpipe.config import get_settings
from sfpipe.logging import setup_logging
from sfpipe.serve import serve
from sfpipe_extractor.app import build_service, create_app
from sfpipe_extractor.engine import SERVICE


def main() -> None:
    """Start the server on ``SFPIPE_HOST:SFPIPE_EXTRACTOR_PORT``."""
    settings = get_settings()
    setup_logging(SERVICE, settings)
    app = create_app(build_service(settings))
    serve(app, settings.host, settings.extractor_port, threads=8)


if __name__ == "__main__":
    main()
