"""Serve a service's WSGI app with gunicorn, as every container and the devstack run it.

One worker process per service, threads inside it: each service holds one warehouse
connection and caches (transpiled SQL, a logged-in Salesforce client) that a second process
would only duplicate. No worker timeout: a load, a transform or a full reconciliation of a
large org takes minutes, and Pub/Sub's ack deadline already bounds how long an event may take.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gunicorn.app.base import BaseApplication

GRACEFUL_TIMEOUT_SECONDS = 10
"""Cloud Run allows 10 s between SIGTERM and SIGKILL; a request in flight may finish within them."""


class _Gunicorn(BaseApplication):
    def __init__(self, app: Any, options: dict[str, Any], on_load: Callable[[], None] | None) -> None:
        self.application = app
        self.options = options
        self.on_load = on_load
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        if self.on_load is not None:
            self.on_load()
        return self.application


def serve(app: Any, host: str, port: int, *, threads: int = 1, on_load: Callable[[], None] | None = None) -> None:
    """Serve ``app`` on ``host:port`` until SIGTERM (one gthread worker with ``threads`` threads).

    ``on_load`` runs in the worker process as it takes the app: a background thread started
    there (a slow import warmed up after the port opens) lives in the process that serves.
    """
    options = {
        "bind": f"{host}:{port}",
        "workers": 1,
        "worker_class": "gthread",
        "threads": threads,
        "timeout": 0,
        "graceful_timeout": GRACEFUL_TIMEOUT_SECONDS,
        "accesslog": None,
        "loglevel": "warning",
    }
    _Gunicorn(app, options, on_load).run()
