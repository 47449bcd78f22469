"""`sfpipe transform` on the golden org: the report, the exit code, the ops record."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from sfpipe.adapters.warehouse.duckdb.client import DuckDBWarehouse
from sfpipe.adapters.warehouse.duckdb.session import EmbeddedSession
from sfpipe.cli import main

RUN_ID = "20240515T230000Z-0a1b2c3d"


def invoke(*args: str, stdout_only: bool = False) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["transform", "--no-publish", *args], catch_exceptions=False)
    return result.exit_code, result.stdout if stdout_only else result.output


def test_builds_everything_and_prints_a_report(golden_warehouse_file: Path, transform_env: dict[str, str]) -> None:
    code, output = invoke("--run-id", RUN_ID)

    assert code == 0, output
    assert "salesforce__sales_snapshot" in output and "succeeded" in output
    assert "66 succeeded, 0 failed, 0 skipped" in output
    wh = DuckDBWarehouse(EmbeddedSession(golden_warehouse_file))
    try:
        assert wh.scalar("SELECT total_win_percent FROM sfpipe_marts.salesforce__sales_snapshot") is not None
        assert (
            wh.scalar(f"SELECT status FROM sfpipe_ops.runs WHERE run_id = '{RUN_ID}' AND stage = 'transform'")
            == "succeeded"
        )
    finally:
        wh.close()


def test_json_report_and_selected_actions(golden_warehouse_file: Path, transform_env: dict[str, str]) -> None:
    code, output = invoke(
        "--json", "--as-of", "2024-05-31", "--action", "salesforce__sales_snapshot", "--with-deps", stdout_only=True
    )

    assert code == 0, output
    report = json.loads(output)
    assert report["succeeded"] and report["as_of"] == "2024-05-31"
    names = {a["name"] for a in report["actions"]}
    assert "sfpipe_marts.salesforce__sales_snapshot" in names
    assert "sfpipe_staging.stg_salesforce__opportunity" in names
    assert "sfpipe_marts.salesforce__daily_activity" not in names


def test_failed_assertion_exits_one(tmp_path: Path, transform_env: dict[str, str], broken_warehouse_file: Path) -> None:
    code, output = invoke()

    assert code == 1
    assert "failed" in output
    assert "stg_salesforce__opportunity_assertions_rowConditions" in output


def test_bad_options_and_missing_cli(
    golden_warehouse_file: Path, transform_env: dict[str, str], monkeypatch, tmp_path: Path
) -> None:
    code, output = invoke("--as-of", "tomorrow")
    assert code == 2 and "expected YYYY-MM-DD" in output
    code, output = invoke("--run-id", "run-1")
    assert code == 2 and "not a run id" in output

    project = tmp_path / "project"
    shutil.copytree(
        Path(transform_env["SFPIPE_DATAFORM_DIR"]), project, ignore=shutil.ignore_patterns("node_modules", "tests")
    )
    monkeypatch.setenv("SFPIPE_DATAFORM_DIR", str(project))
    from sfpipe.config import reset_settings

    reset_settings()
    code, output = invoke()
    assert code == 1 and "make npm" in output
