"""The raw layer on DuckDB: schema rules, newest-wins, tombstones, CDC rows, all-or-nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from sfpipe import raw
from sfpipe.adapters.warehouse.base import TableRef
from sfpipe.errors import BadInputError

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TS = raw.TIMESTAMP


def schema(**types: pa.DataType) -> pa.Schema:
    return pa.schema([pa.field(n, t) for n, t in types.items()])


def test_plan_for_a_new_table_uses_describe_types():
    plan = raw.plan_schema("Account", None, schema(Id=pa.string(), N=pa.int32(), SystemModstamp=pa.timestamp("ms")), {"N": pa.float64()})
    assert not plan.exists
    assert plan.types == {"Id": pa.string(), "N": pa.float64(), "SystemModstamp": TS}
    assert plan.casts == {"N": pa.float64(), "SystemModstamp": TS}


@pytest.mark.parametrize(
    ("old", "new", "outcome"),
    [
        (pa.float64(), pa.int64(), "cast"),  # a narrower value into a wider column
        (pa.string(), pa.float64(), "cast"),
        (pa.timestamp("us", tz="UTC"), pa.date32(), "cast"),
        (pa.int64(), pa.float64(), "widen"),  # the column widens in place
        (pa.int64(), pa.decimal128(38, 9), "widen"),
        (pa.float64(), pa.string(), "conflict"),  # a number becoming text
        (pa.date32(), pa.string(), "conflict"),  # text into a date column
        (pa.string(), pa.date32(), "cast"),
        (pa.bool_(), pa.int64(), "conflict"),
        (pa.date32(), pa.timestamp("us", tz="UTC"), "conflict"),
    ],
)
def test_type_change_rules(old, new, outcome):
    existing = schema(Id=pa.string(), X=old, _version=TS)
    incoming = schema(Id=pa.string(), X=new)
    if outcome == "conflict":
        with pytest.raises(raw.SchemaConflict, match=r"Account: incompatible type change \(X is "):
            raw.plan_schema("Account", existing, incoming)
        return
    plan = raw.plan_schema("Account", existing, incoming)
    if outcome == "cast":
        assert plan.widen == [] and plan.casts == {"X": old}
        assert plan.types["X"] == old
    else:
        assert [f.name for f in plan.widen] == ["X"] and plan.types["X"] == new


def test_new_columns_are_added_and_missing_ones_kept():
    existing = schema(Id=pa.string(), Kept=pa.string(), _run_id=pa.string())
    plan = raw.plan_schema("Account", existing, schema(Id=pa.string(), Added=pa.int64()))
    assert [f.name for f in plan.fields] == ["Id", "Kept", "Added"]
    assert [f.name for f in plan.add] == ["Added"]


def test_names_differing_only_in_case_and_a_missing_id_are_refused():
    with pytest.raises(raw.SchemaConflict, match="differs only in case"):
        raw.plan_schema("Account", schema(Id=pa.string(), Name=pa.string()), schema(Id=pa.string(), NAME=pa.string()))
    with pytest.raises(raw.SchemaConflict, match="no Id column"):
        raw.plan_schema("Account", None, schema(Name=pa.string()))


def test_table_names_and_refs():
    assert raw.raw_ref("OpportunityLineItem") == TableRef("sfpipe_raw", "opportunitylineitem")
    assert raw.changes_ref("UserRole") == TableRef("sfpipe_raw", "userrole__changes")
    assert raw.stage_ref("Account", "ab12cd34") == TableRef("sfpipe_raw", "_stage_account_ab12cd34")
    assert raw.version_field(["Id", "LastModifiedDate", "SystemModstamp"]) == "SystemModstamp"
    assert raw.version_field(["Id", "CreatedDate"]) == "CreatedDate"
    with pytest.raises(BadInputError, match="SystemModstamp"):
        raw.version_field(["Id"])


def rows(*items, **extra):
    """(Id, Name, hours after T0) batch rows."""
    data = {
        "Id": [i[0] for i in items],
        "Name": [i[1] for i in items],
        "SystemModstamp": pa.array([T0 + timedelta(hours=i[2]) for i in items], TS),
        "IsDeleted": [False] * len(items),
    }
    data.update(extra)
    return pa.table(data)


def current(wh, table="account"):
    return {r["Id"]: r for r in wh.query(f"SELECT * FROM `sfpipe_raw.{table}`").to_pylist()}


def test_batch_then_cdc_newest_wins_whichever_path(duckdb_warehouse):
    layer = raw.RawLayer(duckdb_warehouse)
    layer.apply_arrow("Account", rows(("a", "batch-1", 1), ("b", "batch-1", 1)), source="batch", run_id="r1")
    cdc = pa.table(
        {
            "Id": ["a", "a", "b"],
            "Name": ["cdc-old", "cdc-new", "cdc-stale"],
            "_version": pa.array([T0 + timedelta(hours=2)] * 2 + [T0], TS),
            "_commit_number": pa.array([1, 2, 9], pa.int64()),
            "IsDeleted": [False, False, False],
        }
    )
    loaded = layer.apply_arrow("Account", cdc, source="cdc", run_id="r2")
    assert (loaded.result.inserted, loaded.result.updated) == (0, 1)
    state = current(duckdb_warehouse)
    assert (state["a"]["Name"], state["a"]["_source"], state["a"]["_commit_number"]) == ("cdc-new", "cdc", 2)
    assert state["a"]["SystemModstamp"] is None or state["a"]["SystemModstamp"] == T0 + timedelta(hours=1)
    assert state["b"]["Name"] == "batch-1"
    # a batch row at the CDC's timestamp but commit number 0 is older than commit 2
    layer.apply_arrow("Account", rows(("a", "batch-2", 2)), source="batch", run_id="r3")
    assert current(duckdb_warehouse)["a"]["Name"] == "cdc-new"
    assert duckdb_warehouse.scalar("SELECT count(*) FROM `sfpipe_raw.account__changes`") == 5


def test_cdc_hard_delete_rows_are_tombstones(duckdb_warehouse):
    layer = raw.RawLayer(duckdb_warehouse)
    layer.apply_arrow("Account", rows(("a", "A", 1), ("b", "B", 1)), source="batch", run_id="r1")
    delete = pa.table(
        {
            "Id": ["a", "zz"],
            "Name": pa.array([None, None], pa.string()),
            "IsDeleted": [True, True],
            "_version": pa.array([T0 + timedelta(hours=5)] * 2, TS),
            "_commit_number": pa.array([3, 3], pa.int64()),
            "_hard_deleted": [True, True],
        }
    )
    loaded = layer.apply_arrow("Account", delete, source="cdc", run_id="r2")
    assert (loaded.result.inserted, loaded.result.updated, loaded.result.deleted) == (0, 1, 1)
    state = current(duckdb_warehouse)
    assert set(state) == {"a", "b"}
    assert state["a"]["Name"] == "A" and state["a"]["IsDeleted"] and state["a"]["_hard_deleted"]
    assert state["a"]["_version"] == T0 + timedelta(hours=5)


def test_only_a_repair_revives_a_tombstone_whose_version_is_newer(duckdb_warehouse):
    # a tombstone's version is the run's time: a record wrongly taken for deleted would stay
    # deleted for ever if its real, older version could never replace it
    layer = raw.RawLayer(duckdb_warehouse)
    layer.apply_arrow("Account", rows(("a", "A", 1)), source="batch", run_id="r1")
    tomb = pa.table({"Id": ["a"], "Name": pa.array([None], pa.string()), "IsDeleted": [True],
                     "_version": pa.array([T0 + timedelta(hours=5)], TS), "_hard_deleted": [True]})  # fmt: skip
    layer.apply_arrow("Account", tomb, source="batch", run_id="r2")
    layer.apply_arrow("Account", rows(("a", "A2", 2)), source="batch", run_id="r3")
    assert current(duckdb_warehouse)["a"]["_hard_deleted"]  # an ordinary load: the newer tombstone wins
    loaded = layer.apply_arrow("Account", rows(("a", "A2", 2)), source="batch", run_id="r4", revive_tombstones=True)
    state = current(duckdb_warehouse)["a"]
    assert (state["Name"], state["IsDeleted"], state["_hard_deleted"]) == ("A2", False, False)
    assert state["_version"] == T0 + timedelta(hours=2)
    assert (loaded.result.inserted, loaded.result.updated) == (0, 1)


def test_a_failure_in_the_transaction_leaves_rows_log_and_schema_as_they_were(duckdb_warehouse):
    layer = raw.RawLayer(duckdb_warehouse)
    layer.apply_arrow("Account", rows(("a", "A", 1)), source="batch", run_id="r1")
    before = (current(duckdb_warehouse), duckdb_warehouse.table_schema(raw.raw_ref("Account")))
    changes_before = duckdb_warehouse.scalar("SELECT count(*) FROM `sfpipe_raw.account__changes`")
    widened = rows(("a", "A2", 2), ("c", "C", 2), Extra=["x", "y"])
    with pytest.raises(BadInputError):
        layer.apply_arrow(
            "Account", widened, source="batch", run_id="r2", extra_statements=["INSERT INTO `sfpipe_raw.nowhere` VALUES (1)"]
        )
    assert (current(duckdb_warehouse), duckdb_warehouse.table_schema(raw.raw_ref("Account"))) == before
    assert "Extra" not in duckdb_warehouse.table_schema(raw.changes_ref("Account")).names
    assert duckdb_warehouse.scalar("SELECT count(*) FROM `sfpipe_raw.account__changes`") == changes_before
    leftovers = duckdb_warehouse.query(
        "SELECT table_name FROM information_schema.tables WHERE STARTS_WITH(table_name, '_stage')"
    )
    assert leftovers.num_rows == 0


def test_refresh_replaces_an_equal_version_and_objects_without_isdeleted_work(duckdb_warehouse):
    layer = raw.RawLayer(duckdb_warehouse)
    role = pa.table({"Id": ["r"], "Name": ["Sales"], "SystemModstamp": pa.array([T0], TS)})
    layer.apply_arrow("UserRole", role, source="batch", run_id="r1")
    renamed = role.set_column(1, "Name", pa.array(["Sales EMEA"]))
    assert layer.apply_arrow("UserRole", renamed, source="batch", run_id="r2").result.updated == 0
    assert layer.apply_arrow("UserRole", renamed, source="batch", run_id="r3", replace_equal=True).result.updated == 1
    assert current(duckdb_warehouse, "userrole")["r"]["Name"] == "Sales EMEA"
    gone = layer.apply(
        "UserRole", None, None, source="batch", run_id="r4", ingested_at=T0, tombstones=["r"],
        tombstone_version=T0 + timedelta(days=1),
    )
    assert gone.result.updated == 1 and gone.result.deleted == 0
    assert current(duckdb_warehouse, "userrole")["r"]["_hard_deleted"] is True


def test_source_tag_is_checked(duckdb_warehouse):
    with pytest.raises(BadInputError, match="source"):
        raw.RawLayer(duckdb_warehouse).apply_arrow("Account", rows(("a", "A", 1)), source="stream", run_id="r")


def test_an_empty_batch_changes_nothing(duckdb_warehouse):
    import pyarrow as _pa

    from sfpipe.raw import RawLayer as _RawLayer

    empty = _pa.table({"Id": _pa.array([], _pa.string()), "Name": _pa.array([], _pa.string()), "SystemModstamp": _pa.array([], _pa.timestamp("us", tz="UTC"))})
    result = _RawLayer(duckdb_warehouse).apply_arrow("Account", empty, source="cdc", run_id="20260101T000000Z-0a1b2c3d")
    assert (result.result.inserted, result.result.updated, result.result.deleted) == (0, 0, 0)
    assert duckdb_warehouse.scalar("SELECT count(*) FROM `sfpipe_raw.account`") == 0
