"""The sales panels against the real Dataform marts, built by the local runner from the golden org."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from sfpipe.adapters.warehouse.base import TableRef
from sfpipe_transform.compiler import DataformCli
from sfpipe_transform.local import LocalRunner
from sfpipe_transform.rawschema import RawContract
from sfpipe_transform.result import TransformRequest
from sfpipe_transform.seed import load_folder

PROJECT = Path(__file__).resolve().parents[3] / "dataform"
GOLDEN = PROJECT / "tests" / "golden" / "raw"
AS_OF = dt.date(2024, 5, 15)
LOADED_AT = dt.datetime(2024, 5, 15, 23, 0, tzinfo=dt.UTC)

pytestmark = pytest.mark.integration


@pytest.fixture
def marts(duckdb_warehouse):
    assert DataformCli(PROJECT).binary.exists(), "the Dataform CLI is not installed: run `make npm`"
    loaded = load_folder(duckdb_warehouse, RawContract.load(PROJECT), GOLDEN, ingested_at=LOADED_AT)
    result = LocalRunner.for_project(duckdb_warehouse, PROJECT).run(
        TransformRequest(run_id="20240515T230000Z-0a1b2c3d", as_of=AS_OF)
    )
    assert result.succeeded, result.reason
    return duckdb_warehouse, loaded


def scalar(warehouse, sql: str):
    return warehouse.scalar(sql)


def test_sales_panels_match_the_marts(marts, make_app):
    warehouse, _ = marts
    client = make_app(warehouse, now=lambda: LOADED_AT).test_client()
    sales = client.get("/api/sales").get_json()
    assert {k: v["state"] for k, v in sales.items() if k != "generated_at"} == dict.fromkeys(
        ("snapshot", "pipeline_by_stage", "bookings_by_month", "win_by_owner"), "ok"
    ), sales

    snapshot = sales["snapshot"]["data"]
    assert snapshot["total_bookings_amount"] == 5900.0  # the golden org's four won deals
    assert snapshot["total_number_pipeline"] == 5

    enhanced = "sfpipe_marts.salesforce__opportunity_enhanced"
    stages = sales["pipeline_by_stage"]["data"]
    assert stages["open_count"] == scalar(warehouse, f"SELECT COUNT(*) FROM `{enhanced}` WHERE NOT is_closed")
    assert stages["open_amount"] == pytest.approx(
        float(scalar(warehouse, f"SELECT COALESCE(SUM(amount), 0) FROM `{enhanced}` WHERE NOT is_closed"))
    )
    bookings = sales["bookings_by_month"]["data"]
    assert bookings["total"] == pytest.approx(5900.0)
    assert sum(m["deals"] for m in bookings["months"]) == 4

    owners = sales["win_by_owner"]["data"]["owners"]
    expected = warehouse.query(
        "SELECT owner_name, total_win_percent FROM `sfpipe_marts.salesforce__owner_performance` "
        "WHERE COALESCE(total_bookings_amount, 0) + COALESCE(total_lost_amount, 0) > 0"
    ).to_pylist()
    assert {o["owner_name"]: pytest.approx(o["win_percent"]) for o in owners} == {
        e["owner_name"]: pytest.approx(float(e["total_win_percent"])) for e in expected
    }
    assert owners, "the golden org has owners with closed deals"


def test_freshness_reads_the_raw_layer_the_loader_contract_defines(marts, make_app):
    warehouse, loaded = marts
    body = make_app(warehouse, now=lambda: LOADED_AT).test_client().get("/api/freshness").get_json()
    assert body["state"] == "ok", body
    objects = {o["object"]: o for o in body["data"]["objects"]}
    assert not any("__" in name for name in objects)
    for name, rows in loaded.items():
        if "__" in name:
            continue
        assert objects[name]["rows"] == rows, name
    opportunity = objects["opportunity"]
    deleted = scalar(warehouse, "SELECT COUNTIF(IsDeleted) FROM `sfpipe_raw.opportunity`")
    assert opportunity["deleted"] == deleted
    # the Dataform contract's raw columns carry no SystemModstamp: the row version stands in for it
    columns = warehouse.table_schema(TableRef("sfpipe_raw", "opportunity")).names
    version = "SystemModstamp" if "SystemModstamp" in columns else "_version"
    newest = scalar(warehouse, f"SELECT MAX({version}) FROM `sfpipe_raw.opportunity`")
    assert newest is not None
    assert opportunity["max_modstamp"] == newest.isoformat().replace("+00:00", "Z")
