"""Result types that BigQuery and DuckDB would otherwise disagree on, checked by running the SQL."""

from __future__ import annotations

from decimal import Decimal

import duckdb

from sfpipe.adapters.warehouse.transpile import to_duckdb_one


def run(sql: str) -> tuple:
    conn = duckdb.connect()
    try:
        return conn.execute(to_duckdb_one(sql)).fetchone()
    finally:
        conn.close()


def test_bare_numeric_keeps_nine_decimals() -> None:
    # DuckDB's bare DECIMAL is (18, 3): 0.3333 would become 0.333 and money would drift
    value = run("SELECT CAST(1 / 3 AS NUMERIC) AS v")[0]
    assert value == Decimal("0.333333333")
    assert run("SELECT CAST(123456789012345678901234.5 AS NUMERIC)")[0] == Decimal("123456789012345678901234.5")
    assert "DECIMAL(10, 2)" in to_duckdb_one("SELECT CAST(x AS NUMERIC(10, 2)) FROM t")


def test_countif_is_an_int64() -> None:
    # DuckDB's COUNT_IF returns a HUGEINT, which reaches Arrow and Python as a decimal
    value = run("SELECT COUNTIF(x > 1) FROM UNNEST([1, 2, 3]) AS x")[0]
    assert value == 2 and type(value) is int
    conn = duckdb.connect()
    try:
        arrow = conn.sql(to_duckdb_one("SELECT COUNTIF(x > 1) AS n FROM UNNEST([1, 2, 3]) AS x")).to_arrow_table()
    finally:
        conn.close()
    assert str(arrow.schema.field("n").type) == "int64"
