"""Every mart metric of the golden org, compared exactly with values worked out by hand."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from sfpipe.adapters.warehouse.duckdb.client import DuckDBWarehouse
from sfpipe_transform.rawschema import RawContract
from sfpipe_transform.result import TransformResult
from sfpipe_transform.seed import append_csv, load_folder
from sfpipe_transform.testing import differences

MARTS = "sfpipe_marts"


def rows_by_key(wh: DuckDBWarehouse, table: str, key: str) -> dict[str, dict[str, Any]]:
    rows = wh.query(f"SELECT * FROM {MARTS}.{table}").to_pylist()
    out = {}
    for row in rows:
        value = row[key]
        out[value.isoformat() if isinstance(value, dt.date) else value] = row
    assert len(out) == len(rows), f"{table} has duplicate {key}"
    return out


def test_golden_run_builds_everything(golden_run: tuple[DuckDBWarehouse, TransformResult]) -> None:
    _, result = golden_run
    assert result.succeeded, result.reason
    kinds = {a.kind for a in result.actions}
    assert kinds == {"table", "incremental", "assertion"}
    tables = [a.name for a in result.actions if a.kind in ("table", "incremental")]
    assert len(tables) == 22
    for table in tables:
        schema, name = table.split(".")
        for check in ("uniqueKey_0", "rowConditions"):
            assertion = f"sfpipe_assertions.{schema}_{name}_assertions_{check}"
            assert any(a.name == assertion and a.status == "succeeded" for a in result.actions), assertion


@pytest.mark.parametrize(
    ("section", "table"),
    [
        ("opportunity_enhanced", "salesforce__opportunity_enhanced"),
        ("owner_performance", "salesforce__owner_performance"),
        ("manager_performance", "salesforce__manager_performance"),
        ("contact_enhanced", "salesforce__contact_enhanced"),
        ("daily_activity", "salesforce__daily_activity"),
        ("opportunity_line_item_enhanced", "salesforce__opportunity_line_item_enhanced"),
    ],
)
def test_golden_mart_rows(
    golden_run: tuple[DuckDBWarehouse, TransformResult], expected: dict[str, Any], section: str, table: str
) -> None:
    wh, _ = golden_run
    spec = expected[section]
    rows = rows_by_key(wh, table, spec["key"])
    assert len(rows) == spec["row_count"]
    problems = []
    for key, values in spec["rows"].items():
        if key not in rows:
            problems.append(f"no row {key}")
            continue
        problems += differences(rows[key], values, f"{table}[{key}]")
    assert not problems, "\n".join(problems)


def test_golden_sales_snapshot(golden_run: tuple[DuckDBWarehouse, TransformResult], expected: dict[str, Any]) -> None:
    wh, _ = golden_run
    rows = wh.query(f"SELECT * FROM {MARTS}.salesforce__sales_snapshot").to_pylist()
    assert len(rows) == expected["sales_snapshot"]["row_count"]
    problems = differences(rows[0], expected["sales_snapshot"]["row"], "sales_snapshot")
    assert not problems, "\n".join(problems)


def test_golden_daily_activity_totals(
    golden_run: tuple[DuckDBWarehouse, TransformResult], expected: dict[str, Any]
) -> None:
    wh, _ = golden_run
    totals = expected["daily_activity"]["totals"]
    sums = ", ".join(
        f"CAST(SUM({c}) AS {'NUMERIC' if isinstance(v, str) else 'INT64'}) AS {c}" for c, v in totals.items()
    )
    row = wh.query(
        f"SELECT {sums}, MIN(date_day) AS first_day, MAX(date_day) AS last_day FROM {MARTS}.salesforce__daily_activity"
    ).to_pylist()[0]
    assert row["first_day"] == dt.date(2023, 11, 15)
    assert row["last_day"] == dt.date(2024, 5, 15)
    problems = differences(row, totals, "daily_activity totals")
    assert not problems, "\n".join(problems)


def test_golden_win_percent_follows_one_rule(golden_run: tuple[DuckDBWarehouse, TransformResult]) -> None:
    """The same won and lost amounts give the same percentage in all three marts."""
    wh, _ = golden_run
    owner = rows_by_key(wh, "salesforce__owner_performance", "owner_id")["U4"]
    manager = rows_by_key(wh, "salesforce__manager_performance", "manager_id")["No Manager Assigned"]
    for column in ("win_percent_this_month", "win_percent_this_quarter", "total_win_percent"):
        assert owner[column] == manager[column]


def history(wh: DuckDBWarehouse) -> dict[str, dict[str, Any]]:
    return rows_by_key(wh, "salesforce__opportunity_daily_history", "opportunity_day_id")


def check_history(rows: dict[str, dict[str, Any]], spec: dict[str, Any]) -> list[str]:
    problems = []
    if len(rows) != spec["row_count"]:
        problems.append(f"{len(rows)} rows, expected {spec['row_count']}")
    counts: dict[str, int] = {}
    for row in rows.values():
        counts[row["opportunity_id"]] = counts.get(row["opportunity_id"], 0) + 1
    if counts != spec["per_opportunity"]:
        problems.append(f"rows per opportunity {counts}, expected {spec['per_opportunity']}")
    for key, values in spec["rows"].items():
        if key not in rows:
            problems.append(f"no row {key}")
        else:
            problems += differences(rows[key], values, key)
    problems += [f"unexpected row {key}" for key in spec["absent"] if key in rows]
    return problems


def test_golden_daily_history(golden_run: tuple[DuckDBWarehouse, TransformResult], expected: dict[str, Any]) -> None:
    wh, _ = golden_run
    problems = check_history(history(wh), expected["opportunity_daily_history"])
    assert not problems, "\n".join(problems)


def test_golden_history_incremental_equals_full_refresh(
    make_warehouse, project_dir, contract: RawContract, expected: dict[str, Any], golden_dir, loaded_at, run_transform
) -> None:
    later = dt.date.fromisoformat(expected["incremental_history"]["as_of"])
    later_load = dt.datetime(2024, 5, 17, 1, 0, tzinfo=dt.UTC)
    incremental = make_warehouse("incremental")
    load_folder(incremental, contract, golden_dir / "raw", ingested_at=loaded_at)
    assert run_transform(incremental, project_dir).succeeded
    append_csv(
        incremental,
        contract,
        "opportunity__changes",
        golden_dir / "later" / "opportunity__changes.csv",
        ingested_at=later_load,
    )
    second = run_transform(incremental, project_dir, later)
    assert second.succeeded, second.reason
    merged = {a.name: a for a in second.actions}["sfpipe_marts.salesforce__opportunity_daily_history"]
    assert merged.rows == expected["incremental_history"]["row_count"]

    full = make_warehouse("full")
    load_folder(full, contract, golden_dir / "raw", ingested_at=loaded_at)
    append_csv(
        full,
        contract,
        "opportunity__changes",
        golden_dir / "later" / "opportunity__changes.csv",
        ingested_at=later_load,
    )
    assert run_transform(full, project_dir, later, full_refresh=True).succeeded

    inc_rows, full_rows = history(incremental), history(full)
    problems = check_history(inc_rows, expected["incremental_history"])
    assert not problems, "\n".join(problems)
    strip = lambda rows: {k: {c: v for c, v in r.items() if c != "_source_ingested_at"} for k, r in rows.items()}  # noqa: E731
    assert strip(inc_rows) == strip(full_rows)
    # rows before the rebuild day were kept from the first run, not rewritten
    assert inc_rows["O3-20240504"]["_source_ingested_at"] < inc_rows["O3-20240505"]["_source_ingested_at"]
