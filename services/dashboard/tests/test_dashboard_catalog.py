"""The catalog query the panels start from: a dataset's INFORMATION_SCHEMA, on DuckDB as on BigQuery."""

from __future__ import annotations

import pyarrow as pa

from sfpipe.adapters.warehouse.base import TableRef
from sfpipe.adapters.warehouse.transpile import to_duckdb
from sfpipe_dashboard.panels import Catalog


def test_information_schema_lists_only_that_dataset(duckdb_warehouse):
    duckdb_warehouse.load_arrow(TableRef("sfpipe_raw", "account"), pa.table({"Id": ["a"], "Name": ["x"]}))
    duckdb_warehouse.load_arrow(TableRef("sfpipe_marts", "salesforce__sales_snapshot"), pa.table({"n": [1]}))
    rows = duckdb_warehouse.query(
        "SELECT c.table_name, c.column_name FROM `sfpipe_raw`.INFORMATION_SCHEMA.COLUMNS AS c ORDER BY 2"
    ).to_pylist()
    assert rows == [{"table_name": "account", "column_name": "Id"}, {"table_name": "account", "column_name": "Name"}]
    tables = duckdb_warehouse.query("SELECT table_name FROM sfpipe_marts.INFORMATION_SCHEMA.TABLES").to_pylist()
    assert tables == [{"table_name": "salesforce__sales_snapshot"}]
    (sql,) = to_duckdb("SELECT * FROM `proj.sfpipe_ops.INFORMATION_SCHEMA.TABLES`")
    assert "information_schema.tables" in sql and "table_schema = 'sfpipe_ops'" in sql


def test_catalog_of_missing_and_present_datasets(duckdb_warehouse):
    duckdb_warehouse.load_arrow(TableRef("sfpipe_ops", "runs"), pa.table({"run_id": ["r"], "stage": ["load"]}))
    catalog = Catalog.load(duckdb_warehouse, ("sfpipe_ops", "sfpipe_raw"))
    assert catalog.columns("sfpipe_ops", "runs") == ["run_id", "stage"]
    assert catalog.tables["sfpipe_raw"] == {} and not catalog.has("sfpipe_raw", "account")
    assert catalog.errors == {}
