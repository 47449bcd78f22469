"""The JSON API over a warehouse filled like a real afternoon of runs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pyarrow as pa
import pytest

from sfpipe import ops
from sfpipe.adapters.warehouse.base import TableRef
from sfpipe_dashboard import sample
from sfpipe_dashboard.panels import STAGES, status_class


def panel(client: Any, path: str) -> dict[str, Any]:
    response = client.get(path)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"service": "dashboard", "status": "ok"}


def test_dashboard_has_every_panel_filled(client, filled):
    _, summary = filled
    body = panel(client, "/api/dashboard")
    states = {name: p["state"] for name, p in body["panels"].items()}
    assert states.pop("dead_letters") == "empty"  # no Pub/Sub in this test
    assert set(states.values()) == {"ok"}, states
    assert body["environment"]["mode"] == "local"
    health = body["health"]
    assert health["last_run"]["run_id"] == summary.latest_run_id
    assert health["last_run"]["status_class"] == "ok"
    assert health["objects"] == len(summary.raw_rows)
    assert health["rows"] == sum(summary.raw_rows.values())
    assert health["quality"] == {"suites": 3, "passed": 2, "failing_expectations": 1}
    # a warning-level failure and a latest run that succeeded: healthy
    assert health["status"] == "healthy", health


def test_runs_newest_first_with_stages_in_pipeline_order(client, filled):
    _, summary = filled
    data = panel(client, "/api/runs")["data"]
    runs = data["runs"]
    assert len(runs) == summary.runs
    assert runs[0]["run_id"] == summary.latest_run_id
    starts = [r["started_at"] for r in runs]
    assert starts == sorted(starts, reverse=True)
    for run in runs:
        names = [s["stage"] for s in run["stages"]]
        assert names == sorted(names, key=STAGES.index)
        assert all(s["seconds"] > 0 for s in run["stages"])
        # reconcile runs next to transform: the run lasts at least its sequential stages
        assert run["seconds"] >= sum(s["seconds"] for s in run["stages"] if s["stage"] != "reconcile")
        by_name = {s["stage"]: s for s in run["stages"]}
        if "reconcile" in by_name:
            assert by_name["reconcile"]["started_at"] == by_name["transform"]["started_at"]
    failed = next(r for r in runs if r["run_id"] == summary.failed_run_id)
    assert failed["status_class"] == "failed"
    assert failed["failed_stage"] == "load"
    assert [s["stage"] for s in failed["stages"]] == ["extract", "load"]
    assert "schema fingerprint" in failed["stages"][1]["detail"]["error"]


def test_runs_limit_and_bad_parameters(client):
    assert len(panel(client, "/api/runs?limit=3")["data"]["runs"]) == 3
    for query, field in (("limit=0", "limit"), ("limit=abc", "limit"), ("since=yesterday", "since")):
        response = client.get(f"/api/runs?{query}")
        assert response.status_code == 400, query
        assert response.get_json()["field"] == field
    response = client.get("/api/sales?months=1000")
    assert response.status_code == 400
    assert response.get_json()["field"] == "months"


def test_freshness_counts_rows_and_deletes_per_raw_table(client, filled):
    _, summary = filled
    data = panel(client, "/api/freshness")["data"]
    objects = {o["object"]: o for o in data["objects"]}
    # the change log next to a table is not an object of its own
    assert set(objects) == set(summary.raw_rows)
    for name, rows in summary.raw_rows.items():
        assert objects[name]["rows"] == rows
        assert objects[name]["deleted"] == summary.deleted_rows[name]
        assert objects[name]["live_rows"] == rows - summary.deleted_rows[name]
        assert objects[name]["health"] == "ok"
        assert objects[name]["last_load_status"] == "loaded"
    # product2 changes rarely: its newest SystemModstamp is old, its last load is not
    assert objects["product2"]["modstamp_age_seconds"] > objects["account"]["modstamp_age_seconds"]
    assert objects["product2"]["last_load_age_seconds"] < 3600
    assert data["total_rows"] == sum(summary.raw_rows.values())


def test_freshness_flags_failed_and_stale_loads(duckdb_warehouse, make_app, now):
    ops.ensure_ops_tables(duckdb_warehouse)
    ts = pa.timestamp("us", tz="UTC")
    for name in ("account", "contact", "lead"):
        duckdb_warehouse.load_arrow(
            TableRef("sfpipe_raw", name),
            pa.table(
                {
                    "Id": ["a", "b"],
                    "IsDeleted": [False, True],
                    "SystemModstamp": pa.array([now - timedelta(days=3)] * 2, type=ts),
                    "_ingested_at": pa.array([now - timedelta(days=3)] * 2, type=ts),
                }
            ),
        )
    loads = [
        {"run_id": "r1", "object": "Account", "status": "loaded", "loaded_at": now - timedelta(hours=1)},
        {"run_id": "r1", "object": "Contact", "status": "loaded", "loaded_at": now - timedelta(hours=30)},
        {"run_id": "r0", "object": "Account", "status": "failed", "loaded_at": now - timedelta(hours=2)},
        {
            "run_id": "r1",
            "object": "Lead",
            "status": "failed",
            "error": "bad file",
            "loaded_at": now - timedelta(hours=1),
        },
        {"run_id": "r1", "object": "Case", "status": "failed", "error": "no table yet", "loaded_at": now},
    ]
    duckdb_warehouse.load_arrow(ops.LOADS, pa.Table.from_pylist(loads, schema=ops.SCHEMAS[ops.LOADS]))
    body = make_app(duckdb_warehouse).test_client().get("/api/dashboard").get_json()
    objects = {o["object"]: o for o in body["panels"]["freshness"]["data"]["objects"]}
    assert objects["account"]["health"] == "ok"  # the newest load counts, not the failed older one
    assert objects["contact"]["health"] == "stale"
    assert objects["lead"]["health"] == "failed"
    assert objects["lead"]["last_load_error"] == "bad file"
    assert objects["case"]["health"] == "failed" and objects["case"]["rows"] is None
    assert objects["account"]["deleted"] == 1
    assert body["health"]["status"] == "failing"
    assert any("lead" in issue and "case" in issue for issue in body["health"]["issues"])


def test_quality_reads_the_latest_run_of_each_suite(client, filled):
    data = panel(client, "/api/quality")["data"]
    suites = {s["suite"]: s for s in data["suites"]}
    assert set(suites) == set(sample.SUITES)
    latest = filled[1].latest_run_id
    assert {s["run_id"] for s in suites.values()} == {latest}
    marts = suites["marts"]
    assert marts["status"] == "warning"
    assert marts["failed"] == 1 and marts["total"] == marts["passed"] + 1
    failing = marts["failing"][0]
    assert failing["severity"] == "warning"
    assert failing["expectation"] == "expect_column_pair_values_a_to_be_greater_than_b"
    assert failing["unexpected_count"] == 3
    assert failing["table"] == "sfpipe_marts.salesforce__opportunity_enhanced"
    assert failing["check"] == "closes after it is created"
    assert suites["raw"]["status"] == "passed" and suites["raw"]["failing"] == []
    # failing suites sort first
    assert data["suites"][0]["suite"] == "marts"


def test_quality_error_severity_fails_the_suite_and_the_health(duckdb_warehouse, make_app, now):
    ops.ensure_ops_tables(duckdb_warehouse)
    rows = [
        {
            "run_id": "r2",
            "suite": "raw",
            "expectation": "expect_column_values_to_be_unique",
            "column_name": "Id",
            "success": False,
            "severity": "error",
            "unexpected_count": 2,
            "checked_at": now,
        },
        {
            "run_id": "r2",
            "suite": "raw",
            "expectation": "expect_column_values_to_not_be_null",
            "column_name": "Id",
            "success": True,
            "severity": "error",
            "unexpected_count": 0,
            "checked_at": now,
        },
        {
            "run_id": "r1",
            "suite": "raw",
            "expectation": "expect_column_values_to_be_unique",
            "column_name": "Id",
            "success": True,
            "severity": "error",
            "unexpected_count": 0,
            "checked_at": now - timedelta(hours=1),
        },
    ]
    duckdb_warehouse.load_arrow(
        ops.QUALITY_RESULTS, pa.Table.from_pylist(rows, schema=ops.SCHEMAS[ops.QUALITY_RESULTS])
    )
    body = make_app(duckdb_warehouse).test_client().get("/api/dashboard").get_json()
    suite = body["panels"]["quality"]["data"]["suites"][0]
    assert (suite["run_id"], suite["status"], suite["passed"], suite["failed"]) == ("r2", "failed", 1, 1)
    assert body["health"]["status"] == "failing"


def test_sales_panels_read_the_marts(client, filled):
    _, summary = filled
    body = panel(client, "/api/sales")
    stages = body["pipeline_by_stage"]["data"]
    assert stages["open_count"] == summary.open_opportunities
    probabilities = [s["probability"] for s in stages["stages"]]
    assert probabilities == sorted(probabilities)
    assert {s["stage_name"] for s in stages["stages"]} <= {name for name, _, _ in sample.STAGES}
    bookings = body["bookings_by_month"]["data"]
    months = [m["month"] for m in bookings["months"]]
    assert months == sorted(months) and all(m.endswith("-01") for m in months)
    assert bookings["total"] == pytest.approx(summary.won_amount, abs=1.0)
    owners = body["win_by_owner"]["data"]["owners"]
    assert len(owners) == summary.owners
    wins = [o["win_percent"] for o in owners]
    assert wins == sorted(wins, reverse=True) and all(0 <= w <= 100 for w in wins)
    snapshot = body["snapshot"]["data"]
    assert snapshot["total_bookings_amount"] == pytest.approx(summary.won_amount, abs=1.0)
    assert snapshot["total_number_pipeline"] == summary.open_opportunities
    assert len(panel(client, "/api/sales?months=3&owners=4")["win_by_owner"]["data"]["owners"]) == 4


def test_cdc_lag_percentiles_over_time(client, filled):
    data = panel(client, "/api/cdc-lag")["data"]
    assert data["changes"] == filled[1].cdc_changes
    assert 0 < data["p50_ms"] < data["p99_ms"]
    series = data["series"]
    assert 10 <= len(series) <= 100
    assert sum(p["changes"] for p in series) == data["changes"]
    assert all(p["p50_ms"] <= p["p99_ms"] <= p["max_ms"] for p in series)
    # the burst twenty minutes in shows as a climb in p50
    assert max(p["p50_ms"] for p in series) > 3 * data["p50_ms"]


def test_reconciliation_latest_per_object(client, filled):
    data = panel(client, "/api/reconciliation")["data"]
    objects = {o["object"]: o for o in data["objects"]}
    assert set(objects) == set(filled[1].raw_rows)
    assert objects["opportunity"]["differences"] == 2 and objects["opportunity"]["status_class"] == "ok"
    assert data["differences"] == 2 and data["clean"] == len(objects) - 1


def test_summary_and_unknown_endpoint(client, filled):
    body = panel(client, "/api/summary")
    assert set(body) == {"generated_at", "environment", "health", "sales"}
    assert body["sales"]["total_number_pipeline"] == filled[1].open_opportunities
    response = client.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.get_json()["field"] == "path"


def test_answers_are_cached_for_the_cache_interval(filled, make_app, now):
    warehouse, summary = filled
    cached = make_app(warehouse, cache_seconds=60).test_client()
    fresh = make_app(warehouse, cache_seconds=0).test_client()
    before = cached.get("/api/runs?limit=50").get_json()["data"]["runs"]
    warehouse.execute(ops.stage_sql("20990101T000000Z-0000000a", "extract", "running", started_at=now))
    assert cached.get("/api/runs?limit=50").get_json()["data"]["runs"] == before
    after = fresh.get("/api/runs?limit=50").get_json()["data"]["runs"]
    assert len(after) == summary.runs + 1
    assert after[0]["status_class"] == "running" and after[0]["seconds"] == 0


@pytest.mark.parametrize(
    ("word", "klass"),
    [
        ("succeeded", "ok"),
        ("Completed", "ok"),
        ("FAILED", "failed"),
        ("error", "failed"),
        ("running", "running"),
        ("in-progress", "running"),
        ("skipped", "skipped"),
        (None, "skipped"),
    ],
)
def test_status_words(word, klass):
    assert status_class(word) == klass


def test_page_links_its_assets_and_charts(client):
    html = client.get("/").get_data(as_text=True)
    for needle in (
        'id="chart-runs"',
        'id="chart-stages"',
        'id="chart-bookings"',
        'id="chart-owners"',
        'id="chart-cdc"',
        "/vendor/plotly.min.js",
        "/static/dashboard.js",
        'data-api="/api/dashboard"',
    ):
        assert needle in html
    assert "cdn" not in html.lower() and "https://" not in html
    js = client.get("/vendor/plotly.min.js")
    assert js.status_code == 200 and js.mimetype == "text/javascript"
    assert b"plotly.js" in js.get_data()[:400]


def test_quality_results_written_before_table_and_check_names_existed(duckdb_warehouse, make_app, now):
    older = pa.schema(
        [f for f in ops.SCHEMAS[ops.QUALITY_RESULTS] if f.name not in ("table_name", "check_name", "details")]
    )
    row = {
        "run_id": "r1",
        "suite": "raw",
        "expectation": "expect_column_values_to_be_unique",
        "column_name": "Id",
        "success": False,
        "severity": "error",
        "unexpected_count": 1,
        "checked_at": now,
    }
    duckdb_warehouse.load_arrow(ops.QUALITY_RESULTS, pa.Table.from_pylist([row], schema=older))
    body = make_app(duckdb_warehouse).test_client().get("/api/quality").get_json()
    assert body["state"] == "ok", body
    failing = body["data"]["suites"][0]["failing"][0]
    assert (failing["table"], failing["check"], failing["column"]) == (None, None, "Id")
