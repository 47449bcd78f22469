"""`sfpipe transform` on an org the simulator generates: every model builds, every assertion holds."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from sfpipe.adapters.warehouse.duckdb.client import DuckDBWarehouse
from sfpipe.adapters.warehouse.duckdb.session import EmbeddedSession
from sfpipe.cli import main
from sfpipe_transform.rawschema import RawContract
from sfpipe_transform.seed import load_parquet_org

pytestmark = pytest.mark.slow

PROJECT = Path(__file__).resolve().parents[3] / "dataform"


def test_generated_org_builds_every_model(tmp_path: Path, transform_env: dict[str, str], monkeypatch) -> None:
    org = tmp_path / "org"
    generated = CliRunner().invoke(
        main, ["simulator", "generate", "--scale", "20000", "--seed", "7", "--out", str(org)], catch_exceptions=False
    )
    assert generated.exit_code == 0, generated.output
    counts = json.loads((org / "_org.json").read_text())["counts"]

    wh = DuckDBWarehouse(EmbeddedSession(Path(transform_env["SFPIPE_HOME"]) / "warehouse.duckdb"))
    try:
        loaded = load_parquet_org(
            wh,
            RawContract.load(PROJECT),
            org,
            run_id="20260101T000000Z-00000001",
            ingested_at=dt.datetime(2026, 1, 1, 1, tzinfo=dt.UTC),
        )
    finally:
        wh.close()
    assert loaded["opportunity"] == counts["Opportunity"] > 1000

    monkeypatch.setenv("SFPIPE_AS_OF", "2026-01-01")
    from sfpipe.config import reset_settings

    reset_settings()
    result = CliRunner().invoke(main, ["transform", "--no-publish", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    statuses = {a["status"] for a in report["actions"]}
    assert statuses == {"succeeded"}, [a for a in report["actions"] if a["status"] != "succeeded"]
    rows = {a["name"]: a["rows"] for a in report["actions"]}
    assert rows["sfpipe_marts.salesforce__opportunity_enhanced"] > 0.9 * counts["Opportunity"]
    assert rows["sfpipe_marts.salesforce__sales_snapshot"] == 1
    assert rows["sfpipe_marts.salesforce__owner_performance"] > 0
    assert rows["sfpipe_marts.salesforce__daily_activity"] > 300
    assert rows["sfpipe_marts.salesforce__opportunity_daily_history"] > counts["Opportunity"]
    assert sum(1 for a in report["actions"] if a["kind"] == "assertion") == 44

    wh = DuckDBWarehouse(EmbeddedSession(Path(transform_env["SFPIPE_HOME"]) / "warehouse.duckdb"))
    try:
        snapshot = wh.query("SELECT * FROM sfpipe_marts.salesforce__sales_snapshot").to_pylist()[0]
    finally:
        wh.close()
    assert snapshot["total_number_bookings"] > 0 and snapshot["total_number_pipeline"] > 0
    assert 0 < snapshot["total_win_percent"] < 100
