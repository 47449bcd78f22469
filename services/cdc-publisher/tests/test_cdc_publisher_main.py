"""The Cloud Run entry (``main.handle``): starts the publisher once per instance and answers its health."""

import importlib.util
import json
import threading
from pathlib import Path

import flask

from sfpipe_cdc_publisher.publisher import Metrics

MAIN = Path(__file__).parents[1] / "main.py"


class FakePublisher:
    channel = "/data/ChangeEvents"

    def __init__(self):
        self.metrics = Metrics(state="streaming", messages_published=3)
        self.runs = 0
        self.ran = threading.Event()

    def run(self):
        self.runs += 1
        self.ran.set()


def load_main(monkeypatch, publisher):
    spec = importlib.util.spec_from_file_location("cdc_publisher_main", MAIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "build", lambda settings: publisher)
    monkeypatch.setattr(module, "setup_logging", lambda *a, **k: None)
    return module


def test_handle_starts_the_publisher_once_and_reports_it(monkeypatch, sfpipe_env):
    publisher = FakePublisher()
    main = load_main(monkeypatch, publisher)
    app = flask.Flask(__name__)
    with app.test_request_context("/healthz"):
        first = main.handle(flask.request)
        second = main.handle(flask.request)
    assert publisher.ran.wait(5) and publisher.runs == 1
    assert first.status_code == 200 and second.status_code == 200
    body = json.loads(first.get_data())
    assert body["messages_published"] == 3 and body["channel"] == "/data/ChangeEvents"
    publisher.metrics.state = "stopped"
    with app.test_request_context("/healthz"):
        assert main.handle(flask.request).status_code == 503
