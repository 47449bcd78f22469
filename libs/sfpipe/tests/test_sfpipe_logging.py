import io
import json
import logging

from sfpipe.config import load_settings
from sfpipe.logging import log_context, setup_logging, trace_from_headers


def test_trace_from_headers():
    assert trace_from_headers({"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}, "p") == (
        "projects/p/traces/4bf92f3577b34da6a3ce929d0e0e4736"
    )
    assert trace_from_headers({"X-Cloud-Trace-Context": "105445aa7843bc8bf206b120001000/1;o=1"}, "p") == (
        "projects/p/traces/105445aa7843bc8bf206b120001000"
    )
    assert trace_from_headers({}, "p") is None


def test_json_lines_in_cloud_logging_format(sfpipe_env, monkeypatch):
    monkeypatch.setenv("SFPIPE_MODE", "gcp")
    monkeypatch.setenv("SFPIPE_LOG_FORMAT", "auto")
    stream = io.StringIO()
    setup_logging("loader", load_settings(), stream)
    with log_context(run_id="20260101T000000Z-0a1b2c3d", trace="projects/p/traces/abc"):
        logging.getLogger("sfpipe.test").warning("loaded %d rows", 5, extra={"fields": {"object": "Account"}})
    entry = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert entry["severity"] == "WARNING"
    assert entry["message"] == "loaded 5 rows"
    assert entry["logging.googleapis.com/trace"] == "projects/p/traces/abc"
    assert entry["logging.googleapis.com/labels"] == {"service": "loader", "run_id": "20260101T000000Z-0a1b2c3d"}
    assert entry["object"] == "Account"


def test_readable_lines_on_a_terminal(sfpipe_env, monkeypatch):
    monkeypatch.setenv("SFPIPE_LOG_FORMAT", "text")
    stream = io.StringIO()
    setup_logging("cli", load_settings(), stream)
    logging.getLogger("sfpipe.test").info("hello")
    line = stream.getvalue().strip().splitlines()[-1]
    assert line.endswith("INFO    cli: hello")
    assert not line.startswith("{")
