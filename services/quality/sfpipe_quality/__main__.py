"""`python -m sfpipe_quality`: serve the `sfpipe.transform.completed` handler (what the container runs).

One gunicorn worker with two threads: one runs checks (runs are serialised by the stage's
lock, since two at once would only compete for the warehouse), the other keeps
``GET /healthz`` answering meanwhile. Great Expectations is imported in the background
after start-up, so the port opens at once and the first event does not wait for it.
No worker timeout: a large org's checks take a minute.
"""

from __future__ import annotations

import threading
from typing import Any

from gunicorn.app.base import BaseApplication

from sfpipe.config import get_settings
from sfpipe.logging import setup_logging
from sfpipe.service import create_app
from sfpipe_quality.service import SERVICE, build_service, warm_up


class _Server(BaseApplication):
    def __init__(self, app: Any, options: dict[str, Any]) -> None:
        self.application = app
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        threading.Thread(target=warm_up, name="gx-import", daemon=True).start()
        return self.application


def main() -> None:
    """Serve on ``SFPIPE_HOST:SFPIPE_QUALITY_PORT``; ``GET /healthz`` answers 200 once ready."""
    settings = get_settings()
    setup_logging(SERVICE, settings)
    app = create_app(build_service(settings))
    options = {
        "bind": f"{settings.host}:{settings.quality_port}",
        "workers": 1,
        "worker_class": "gthread",
        "threads": 2,
        "timeout": 0,
        "graceful_timeout": 10,
        "accesslog": None,
        "loglevel": "warning",
    }
    _Server(app, options).run()


if __name__ == "__main__":
    main()
