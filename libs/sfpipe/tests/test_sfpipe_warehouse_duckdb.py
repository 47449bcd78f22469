from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sfpipe.adapters.warehouse.base import MergeSpec, TableRef
from sfpipe.errors import BadInputError

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TARGET = TableRef("sfpipe_raw", "account")
STAGE = TableRef("sfpipe_raw", "_stage_account")


def rows(*items):
    ids, names, versions, commits, deleted = zip(*items, strict=True)
    return pa.table(
        {
            "Id": list(ids),
            "Name": list(names),
            "_version": pa.array(list(versions), pa.timestamp("us", tz="UTC")),
            "_commit_number": pa.array(list(commits), pa.int64()),
            "IsDeleted": list(deleted),
        }
    )


def merge(wh, table):
    wh.load_arrow(STAGE, table, replace=True)
    return wh.merge(MergeSpec(TARGET, STAGE))


def current(wh):
    return {r["Id"]: r for r in wh.query("SELECT * FROM `sfpipe_raw.account` ORDER BY Id").to_pylist()}


def test_merge_inserts_updates_and_keeps_newest(duckdb_warehouse):
    wh = duckdb_warehouse
    wh.ensure_dataset("sfpipe_raw")
    wh.create_table(TARGET, rows(("x", "x", T0, 0, False)).schema)
    first = merge(wh, rows(("a", "A1", T0, 0, False), ("b", "B1", T0, 0, False)))
    assert (first.inserted, first.updated, first.deleted) == (2, 0, 0)

    # an update, an older version that must not win, and a duplicate key within the batch
    second = merge(
        wh,
        rows(
            ("a", "A2", T0 + timedelta(hours=1), 0, False),
            ("a", "A-older", T0 + timedelta(minutes=30), 0, False),
            ("b", "B-stale", T0 - timedelta(hours=1), 0, False),
        ),
    )
    assert (second.inserted, second.updated) == (0, 1)
    state = current(wh)
    assert state["a"]["Name"] == "A2"
    assert state["b"]["Name"] == "B1"


def test_commit_number_breaks_ties(duckdb_warehouse):
    wh = duckdb_warehouse
    wh.create_table(TARGET, rows(("x", "x", T0, 0, False)).schema)
    merge(wh, rows(("a", "first", T0, 5, False)))
    result = merge(wh, rows(("a", "lower", T0, 4, False), ("a", "higher", T0, 6, False)))
    assert result.updated == 1
    assert current(wh)["a"]["Name"] == "higher"
    again = merge(wh, rows(("a", "same", T0, 6, False)))
    assert again.updated == 0
    assert current(wh)["a"]["Name"] == "higher"


def test_delete_flag_is_kept_and_counted(duckdb_warehouse):
    wh = duckdb_warehouse
    wh.create_table(TARGET, rows(("x", "x", T0, 0, False)).schema)
    merge(wh, rows(("a", "A", T0, 0, False), ("b", "B", T0, 0, False)))
    result = merge(wh, rows(("a", "A", T0 + timedelta(seconds=1), 0, True), ("c", "C", T0, 0, True)))
    assert (result.inserted, result.updated, result.deleted) == (1, 1, 2)
    state = current(wh)
    assert state["a"]["IsDeleted"] is True and state["b"]["IsDeleted"] is False
    # re-applying the same deletion changes nothing and counts nothing
    again = merge(wh, rows(("a", "A", T0 + timedelta(seconds=1), 0, True)))
    assert (again.inserted, again.updated, again.deleted) == (0, 0, 0)


def test_merge_extra_statements_roll_back_together(duckdb_warehouse):
    wh = duckdb_warehouse
    wh.create_table(TARGET, rows(("x", "x", T0, 0, False)).schema)
    wh.load_arrow(STAGE, rows(("a", "A", T0, 0, False)), replace=True)
    with pytest.raises(BadInputError):
        wh.merge(MergeSpec(TARGET, STAGE), extra_statements=["INSERT INTO `sfpipe_raw.nope` VALUES (1)"])
    assert wh.scalar("SELECT count(*) FROM `sfpipe_raw.account`") == 0


def test_load_parquet_and_add_columns(duckdb_warehouse, tmp_path):
    wh = duckdb_warehouse
    path = tmp_path / "p.parquet"
    pq.write_table(rows(("a", "A", T0, 0, False), ("b", "B", T0, 0, False)), path)
    assert wh.load_parquet(TableRef("sfpipe_raw", "loaded"), [str(path)]) == 2
    wh.add_columns(TableRef("sfpipe_raw", "loaded"), [pa.field("Industry", pa.string())])
    schema = wh.table_schema(TableRef("sfpipe_raw", "loaded"))
    assert schema is not None and "Industry" in schema.names
    assert schema.field("_version").type == pa.timestamp("us", tz="UTC")
    assert wh.table_schema(TableRef("sfpipe_raw", "absent")) is None


def test_missing_parquet_file_is_a_clear_error(duckdb_warehouse, tmp_path):
    with pytest.raises(BadInputError, match="does not exist"):
        duckdb_warehouse.load_parquet(TableRef("sfpipe_raw", "x"), [str(tmp_path / "nope.parquet")])


def test_bigquery_semantics_after_transpiling(duckdb_warehouse):
    wh = duckdb_warehouse
    result = wh.query(
        """
        SELECT
          TIMESTAMP_DIFF(TIMESTAMP '2024-01-01 02:01:00', TIMESTAMP '2024-01-01 01:59:00', HOUR) AS hours,
          TIMESTAMP_DIFF(TIMESTAMP '2024-01-02 01:00:00', TIMESTAMP '2024-01-01 02:00:00', DAY) AS days,
          DATE_TRUNC(DATE '2024-05-17', MONTH) AS month_start,
          DATE_ADD(DATE '2024-01-31', INTERVAL 1 DAY) AS next_day,
          SAFE_DIVIDE(1, 0) AS safe,
          DATE_DIFF(DATE '2024-03-01', DATE '2024-02-01', DAY) AS date_days
        """
    ).to_pylist()[0]
    assert result["hours"] == 0
    assert result["days"] == 0
    assert str(result["month_start"]) == "2024-05-01" and type(result["month_start"]).__name__ == "date"
    assert type(result["next_day"]).__name__ == "date"
    assert result["safe"] is None
    assert result["date_days"] == 29


def test_three_part_names_lose_the_project(duckdb_warehouse):
    wh = duckdb_warehouse
    wh.load_arrow(TableRef("sfpipe_marts", "t"), pa.table({"v": [1, 2]}))
    assert wh.scalar("SELECT sum(v) FROM `my-project.sfpipe_marts.t`") == 3


def test_invalid_identifiers_are_rejected():
    with pytest.raises(BadInputError, match="not a valid identifier"):
        TableRef("sfpipe_raw", "account; DROP TABLE x")
