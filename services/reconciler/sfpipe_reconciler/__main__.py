"""`python -m sfpipe_reconciler`: serve the `sfpipe.load.completed` handler (what the container runs).

One gunicorn worker with one thread: reconciliations of the same objects must not overlap (a
recent pass starts from the previous one's baseline), and Pub/Sub redelivers what waits too
long. No worker timeout, since a full pass over a large org takes minutes.
"""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication

from sfpipe.config import get_settings
from sfpipe.logging import setup_logging
from sfpipe.service import create_app
from sfpipe_reconciler.service import SERVICE, build_service


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
    """Serve on ``SFPIPE_HOST:SFPIPE_RECONCILER_PORT``; ``GET /healthz`` answers 200 once ready."""
    settings = get_settings()
    setup_logging(SERVICE, settings)
    app = create_app(build_service(settings))
    options = {
        "bind": f"{settings.host}:{settings.reconciler_port}",
        "workers": 1,
        "worker_class": "gthread",
        "threads": 1,
        "timeout": 0,
        "graceful_timeout": 10,
        "accesslog": None,
        "loglevel": "warning",
    }
    _Server(app, options).run()


if __name__ == "__main__":
    main()
