"""The dashboard as it runs beside the devstack: every query through the local warehouse server."""

from __future__ import annotations

import threading
import time

import pytest

from sfpipe.adapters import factory
from sfpipe.adapters.factory import warehouse as make_warehouse
from sfpipe.adapters.warehouse.duckdb.session import FlightSession
from sfpipe.config import load_settings
from sfpipe_dashboard import sample
from sfpipe_dashboard.app import create_app
from sfpipe_devstack import warehouse_server
from sfpipe_devstack.emulators import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def server(sfpipe_env, monkeypatch):
    monkeypatch.setenv("SFPIPE_WAREHOUSE_PORT", str(free_port()))
    settings = load_settings()
    stop = threading.Event()
    thread = threading.Thread(target=warehouse_server.run, args=(settings, stop), daemon=True)
    thread.start()
    marker = warehouse_server.url_file(settings)
    deadline = time.monotonic() + 30
    while not marker.exists():
        assert time.monotonic() < deadline, "the warehouse server did not start"
        time.sleep(0.05)
    yield settings
    stop.set()
    thread.join(timeout=10)


def test_every_panel_through_the_warehouse_server(server, now, monkeypatch):
    writer = make_warehouse(server)
    assert isinstance(writer.session, FlightSession)
    summary = sample.fill(writer, now=now)
    writer.close()

    sessions: list[object] = []

    def spying(settings=None):
        opened = make_warehouse(settings)
        sessions.append(opened.session)
        return opened

    monkeypatch.setattr(factory, "warehouse", spying)
    app = create_app(settings=server, backlog=None, cache_seconds=0, now=lambda: now)
    body = app.test_client().get("/api/dashboard").get_json()
    states = {name: p["state"] for name, p in body["panels"].items()}
    assert states.pop("dead_letters") == "empty"
    assert set(states.values()) == {"ok"}, {n: body["panels"][n]["message"] for n, s in states.items() if s != "ok"}
    assert body["health"]["rows"] == sum(summary.raw_rows.values())
    assert body["panels"]["snapshot"]["data"]["total_bookings_amount"] == pytest.approx(summary.won_amount, abs=1)

    # the dashboard asked the factory once for this refresh and got the server, not the file
    assert len(sessions) == 1 and isinstance(sessions[0], FlightSession)
