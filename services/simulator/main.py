"""Cloud Run / functions-framework entry of the simulator: ``functions-framework --target handle``.

The same app as ``python -m sfpipe_simulator`` (REST, Bulk 2.0, OAuth, SOAP login, admin), built
once per process from the ``SFPIPE_SIMULATOR_*`` settings. The container itself runs
``python -m sfpipe_simulator``; this entry exists for hosts that bring their own HTTP server.
The simulator keeps its org in memory, so one instance serves one org (max instances 1).
"""

from __future__ import annotations

import functools

import flask
from werkzeug.test import run_wsgi_app

from sfpipe_simulator.server import Simulator, SimulatorConfig


@functools.cache
def _simulator() -> Simulator:
    return Simulator(SimulatorConfig.from_settings())


@functools.cache
def _app() -> flask.Flask:
    return _simulator().build()


def handle(request: flask.Request) -> flask.Response:
    """An HTTP function: the request goes through the whole WSGI stack (proxy headers, trailing slashes)."""
    body, status, headers = run_wsgi_app(_app().wsgi_app, request.environ)
    return flask.Response(body, status=status, headers=headers)
