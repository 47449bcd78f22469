"""`python -m sfpipe_loader`: serve the loader's event endpoint (what the container runs).

``POST /`` takes a lake finalize event in any delivery shape, ``GET /healthz`` answers
once the process is up. One gunicorn worker with threads: the warehouse connection (and,
locally, the DuckDB file) belongs to one process.
"""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication

from sfpipe.config import get_settings
from sfpipe.logging import setup_logging
from sfpipe.service import create_app
from sfpipe_loader.loader import SERVICE
from sfpipe_loader.service import build_service


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
    """Start the server on ``SFPIPE_HOST:SFPIPE_LOADER_PORT``."""
    settings = get_settings()
    setup_logging(SERVICE, settings)
    app = create_app(build_service(settings))
    options = {
        "bind": f"{settings.host}:{settings.loader_port}",
        "workers": 1,
        "worker_class": "gthread",
        "threads": 4,
        "timeout": 0,
        "graceful_timeout": 10,
        "accesslog": None,
        "loglevel": "warning",
    }
    _Server(app, options).run()


if __name__ == "__main__":
    main()
