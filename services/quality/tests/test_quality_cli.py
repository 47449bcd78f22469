"""`sfpipe quality` through the root command, on the local warehouse file and fake-gcs-server."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from sfpipe import lake, ops
from sfpipe.adapters.warehouse.duckdb.client import DuckDBWarehouse
from sfpipe.adapters.warehouse.duckdb.session import EmbeddedSession
from sfpipe.cli import main
from sfpipe_quality import sample_org

pytestmark = pytest.mark.integration


@pytest.fixture
def local_org(local_settings, object_store):
    session = EmbeddedSession(local_settings.warehouse_file)
    warehouse = DuckDBWarehouse(session)
    size = sample_org.build(session, 3_000)
    ops.ensure_ops_tables(warehouse)
    ops.record_stage(warehouse, sample_org.RUN_ID, "load", "succeeded")
    object_store.put_json(
        lake.manifest_uri(local_settings.lake_bucket, sample_org.RUN_ID), sample_org.manifest_json(size)
    )
    warehouse.close()
    return local_settings


def _run(*args):
    return CliRunner().invoke(main, ["quality", *args], catch_exceptions=False)


def test_clean_org_reports_success_and_exits_0(local_org, object_store):
    result = _run("--no-source", "--suite", "raw", "--suite", "marts")

    assert result.exit_code == 0, result.output
    assert f"quality of run {sample_org.RUN_ID}" in result.output
    assert "no error-severity check failed" in result.output
    assert "Data Docs: gs://" in result.output
    assert object_store.exists(lake.quality_docs_uri(local_org.lake_bucket, sample_org.RUN_ID))


def test_an_error_exits_1_and_names_the_check(local_org):
    session = EmbeddedSession(local_org.warehouse_file)
    session.run(
        ["UPDATE sfpipe_raw.opportunity SET StageName = 'Nope' WHERE Id = (SELECT min(Id) FROM sfpipe_raw.opportunity)"]
    )
    session.close()

    result = _run("--run-id", sample_org.RUN_ID, "--no-source", "--no-docs", "--suite", "raw")

    assert result.exit_code == 1
    assert "opportunity.stage_in_picklist" in result.output
    assert "FAIL" in result.output
    assert "1 error-severity check(s) failed" in result.output


def test_json_output_lists_every_result(local_org):
    result = _run("--no-source", "--no-docs", "--suite", "marts", "--json")

    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["run_id"] == sample_org.RUN_ID
    assert payload["suites"] == [{"suite": "marts", "passed": len(payload["results"]), "failed": 0}]
    assert {"suite", "table", "check", "severity", "success", "observed"} <= set(payload["results"][0])


def test_a_bad_run_id_is_one_line_and_exit_1(local_org):
    result = CliRunner().invoke(main, ["quality", "--run-id", "yesterday"])

    assert result.exit_code == 1
    assert "expected one like 20260101T000000Z-0a1b2c3d" in result.output
