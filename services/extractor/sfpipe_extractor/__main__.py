"""`python -m sfpipe_extractor`: serve the extractor's HTTP API (what the container runs).

One gunicorn worker process with threads: runs started by ``POST /runs`` live in that
process's memory (``GET /runs/<id>`` reads it), and a long ``?wait=true`` request must not
be killed by a worker timeout.
"""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication

from sfpipe.config import get_settings
from sfpipe.logging import setup_logging
from sfpipe_extractor.app import build_service, create_app
from sfpipe_extractor.engine import SERVICE


class _Server(BaseApplication):
    def __init__(self, app: Any, options: dict[str, Any]) -> None:
        self.application = app
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return self.application


def main() -> None:
    """Start the server on ``SFPIPE_HOST:SFPIPE_EXTRACTOR_PORT``."""
    settings = get_settings()
    setup_logging(SERVICE, settings)
    app = create_app(build_service(settings))
    options = {
        "bind": f"{settings.host}:{settings.extractor_port}",
        "workers": 1,
        "worker_class": "gthread",
        "threads": 8,
        "timeout": 0,
        "graceful_timeout": 10,
        "accesslog": None,
        "loglevel": "warning",
    }
    _Server(app, options).run()


if __name__ == "__main__":
    main()
