"""Before the first run, and when something is broken: every answer is 200 and says why a panel is empty."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from sfpipe import ops
from sfpipe.adapters.warehouse.base import TableRef
from sfpipe.errors import TransientError
from sfpipe_dashboard.app import PANELS
from sfpipe_dashboard.panels import EMPTY

ENDPOINTS = (
    "/",
    "/healthz",
    "/api/dashboard",
    "/api/summary",
    "/api/runs",
    "/api/freshness",
    "/api/quality",
    "/api/dead-letters",
    "/api/sales",
    "/api/cdc-lag",
    "/api/reconciliation",
)


def test_a_warehouse_with_no_tables_at_all(duckdb_warehouse, make_app):
    client = make_app(duckdb_warehouse).test_client()
    for path in ENDPOINTS:
        assert client.get(path).status_code == 200, path
    body = client.get("/api/dashboard").get_json()
    assert set(body["panels"]) == set(PANELS)
    for name, panel in body["panels"].items():
        assert panel["state"] == "empty", name
        assert panel["message"] and panel["data"] is None, name
    assert body["panels"]["runs"]["message"] == EMPTY["runs"]
    assert "sfpipe reconcile" in body["panels"]["reconciliation"]["message"]
    assert body["health"]["status"] == "no-data"
    assert body["health"]["last_run"] is None and body["health"]["issues"] == []
    assert client.get("/api/summary").get_json()["sales"] is None


def test_ops_tables_created_but_empty(duckdb_warehouse, make_app):
    ops.ensure_ops_tables(duckdb_warehouse)
    duckdb_warehouse.ensure_dataset("sfpipe_raw")
    body = make_app(duckdb_warehouse).test_client().get("/api/dashboard").get_json()
    for name in ("runs", "freshness", "quality", "cdc_lag", "reconciliation"):
        assert body["panels"][name]["state"] == "empty", name
    assert body["panels"]["cdc_lag"]["message"] == EMPTY["cdc_lag"]


def test_a_mart_without_an_expected_column_is_that_panel_s_error(duckdb_warehouse, make_app):
    duckdb_warehouse.load_arrow(
        TableRef("sfpipe_marts", "salesforce__owner_performance"),
        pa.table({"owner_id": ["005A"], "owner_name": ["Ana"], "total_bookings_amount": [10.0]}),
    )
    duckdb_warehouse.load_arrow(
        TableRef("sfpipe_marts", "salesforce__sales_snapshot"), pa.table({"total_bookings_amount": [10.0]})
    )
    client = make_app(duckdb_warehouse).test_client()
    response = client.get("/api/dashboard")
    assert response.status_code == 200
    panels = response.get_json()["panels"]
    assert panels["win_by_owner"]["state"] == "error"
    assert "total_win_percent" in panels["win_by_owner"]["message"]
    assert "total_lost_amount" in panels["win_by_owner"]["message"]
    assert panels["snapshot"]["state"] == "ok"
    assert panels["runs"]["state"] == "empty"
    assert "win_by_owner" in response.get_json()["health"]["panel_errors"]


def test_a_warehouse_that_cannot_be_opened(make_app):
    def locked() -> Any:
        raise TransientError("the local warehouse is held by another process")

    client = make_app(locked).test_client()
    response = client.get("/api/dashboard")
    assert response.status_code == 200
    panels = response.get_json()["panels"]
    assert {p["state"] for p in panels.values()} == {"error"}
    assert all("held by another process" in p["message"] for p in panels.values())
    assert client.get("/api/runs").get_json()["state"] == "error"
    assert client.get("/").status_code == 200


def test_a_warehouse_opened_per_refresh_is_closed_after_it(duckdb_warehouse, make_app):
    opened: list[Any] = []

    class Borrowed:
        """The test's warehouse, counting opens and closes."""

        closed = 0

        def __init__(self) -> None:
            opened.append(self)

        def __getattr__(self, name: str) -> Any:
            return getattr(duckdb_warehouse, name)

        def close(self) -> None:
            Borrowed.closed += 1

    client = make_app(Borrowed).test_client()
    for _ in range(3):
        assert client.get("/api/dashboard").status_code == 200
    assert len(opened) == 3 and Borrowed.closed == 3


@pytest.mark.parametrize("path", ["/api/runs?limit=-1", "/api/sales?owners=0", "/api/runs?limit=5&x=1"])
def test_bad_query_parameters_are_400_with_the_field(duckdb_warehouse, make_app, path):
    response = make_app(duckdb_warehouse).test_client().get(path)
    assert response.status_code == 400
    body = response.get_json()
    assert body["field"] in path and body["error"]
