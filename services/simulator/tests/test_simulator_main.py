"""The functions-framework entry routes through the same app (no socket server)."""

import importlib.util
from pathlib import Path

import flask
import pytest
from werkzeug.test import EnvironBuilder


@pytest.fixture
def entry(tmp_path, monkeypatch):
    monkeypatch.setenv("SFPIPE_SIMULATOR_SCALE", "1000")
    monkeypatch.setenv("SFPIPE_SIMULATOR_DATA_DIR", str(tmp_path))
    from sfpipe.config import reset_settings

    reset_settings()
    spec = importlib.util.spec_from_file_location("simulator_main", Path(__file__).parents[1] / "main.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    module._simulator().stop()
    module._app.cache_clear()
    module._simulator.cache_clear()
    reset_settings()


def _request(path, **kwargs):
    return flask.Request(EnvironBuilder(path=path, base_url="https://sim.example.run.app", **kwargs).get_environ())


def test_handle_serves_the_api(entry):
    versions = entry.handle(_request("/services/data/"))
    assert versions.status_code == 200 and versions.get_json()[0]["version"] == "31.0"
    token = entry.handle(_request("/services/oauth2/token", method="POST", data={
        "grant_type": "client_credentials", "client_id": "sfpipe-local", "client_secret": "sfpipe-local-secret"}))
    body = token.get_json()
    assert body["instance_url"] == "https://sim.example.run.app"
    limits = entry.handle(_request("/services/data/v59.0/limits/",
                                   headers={"Authorization": f"Bearer {body['access_token']}"}))
    assert limits.status_code == 200 and "Sforce-Limit-Info" in limits.headers
