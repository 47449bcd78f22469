"""``python -m sfpipe_dashboard``: the dashboard on ``SFPIPE_HOST``:``SFPIPE_DASHBOARD_PORT``."""

from __future__ import annotations

from sfpipe.config import get_settings
from sfpipe.logging import setup_logging
from sfpipe_dashboard.app import create_app
from sfpipe_dashboard.server import serve_forever


def main() -> None:
    """Serve until SIGINT or SIGTERM."""
    settings = get_settings()
    setup_logging("dashboard", settings)
    serve_forever(create_app(settings=settings), settings.host, settings.dashboard_port)


if __name__ == "__main__":
    main()
