"""``sfpipe dashboard``: serve the dashboard locally and, with ``--open``, open it in a browser."""

from __future__ import annotations

import threading
import webbrowser

import click

from sfpipe.config import get_settings
from sfpipe_dashboard.app import create_app
from sfpipe_dashboard.server import serve_forever


@click.command("dashboard")
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="Port (default SFPIPE_DASHBOARD_PORT, 8360).")
@click.option("--host", default=None, help="Interface to listen on (default SFPIPE_HOST).")
@click.option("--open", "open_browser", is_flag=True, help="Open the page in the default browser.")
@click.option(
    "--refresh", type=click.FloatRange(2, 3600), default=10.0, show_default=True, help="Seconds between redraws."
)
def dashboard(port: int | None, host: str | None, open_browser: bool, refresh: float) -> None:
    """Pipeline runs, freshness, quality, dead letters and the sales marts on one page."""
    settings = get_settings()
    host = host or settings.host
    port = settings.dashboard_port if port is None else port
    app = create_app(settings=settings, refresh_seconds=refresh)
    url = f"http://{host}:{port}/"
    click.echo(f"dashboard: {url}  (Ctrl-C stops it)")
    if open_browser:
        threading.Timer(0.5, webbrowser.open, args=(url,)).start()
    serve_forever(app, host, port)
