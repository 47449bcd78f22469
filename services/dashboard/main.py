"""Cloud Run entry: the dashboard app over the same code as ``python -m sfpipe_dashboard``.

``functions-framework --target handle`` serves :func:`handle`; a WSGI server (gunicorn)
can serve :data:`app` directly.
"""

from __future__ import annotations

import flask

from sfpipe_dashboard.app import create_app

app = create_app()


def handle(request: flask.Request) -> flask.Response:
    """Dispatch a functions-framework HTTP request to the dashboard app."""
    with app.request_context(request.environ):
        return app.full_dispatch_request()
