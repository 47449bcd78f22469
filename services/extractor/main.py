"""Cloud Run / functions-framework entry of the extractor: ``functions-framework --target handle``.

The same routes as ``python -m sfpipe_extractor`` (``POST /runs``, ``GET /runs/<id>``,
``GET /healthz``), dispatched to the one service object of this process.
"""

from __future__ import annotations

import functools

import flask

from sfpipe_extractor.app import ExtractorService, build_service, create_app


@functools.cache
def _app() -> flask.Flask:
    return create_app(_service())


@functools.cache
def _service() -> ExtractorService:
    return build_service()


def handle(request: flask.Request) -> flask.Response:
    """An HTTP function: route the request through the extractor's app."""
    app = _app()
    with app.request_context(request.environ):
        return app.full_dispatch_request()
