"""The local runner on small hand-made graphs: every action kind, scripts, failures, ordering."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from sfpipe.adapters.warehouse.base import TableRef
from sfpipe.adapters.warehouse.duckdb.client import DuckDBWarehouse
from sfpipe.adapters.warehouse.duckdb.session import EmbeddedSession
from sfpipe.errors import BadInputError
from sfpipe_transform.compiler import CompiledGraph
from sfpipe_transform.local import LocalRunner, merge_sql
from sfpipe_transform.script import Script
from sfpipe_transform.testing import differences, same


def target(schema: str, name: str) -> dict[str, str]:
    return {"database": "proj", "schema": schema, "name": name}


def graph(**parts: Any) -> CompiledGraph:
    doc = {"tables": [], "assertions": [], "operations": [], "declarations": [], "projectConfig": {"vars": {}}}
    doc.update(parts)
    return CompiledGraph.from_json(doc)


@pytest.fixture
def wh(tmp_path: Path):
    warehouse = DuckDBWarehouse(EmbeddedSession(tmp_path / "w.duckdb"))
    warehouse.load_arrow(
        TableRef("raw", "events"), pa.table({"id": [1, 2, 3], "day": [dt.date(2024, 5, d) for d in (1, 2, 3)]})
    )
    yield warehouse
    warehouse.close()


def runner(wh: DuckDBWarehouse) -> LocalRunner:
    return LocalRunner.for_project(wh, Path("."))


RAW = {"target": target("raw", "events")}


def test_views_operations_and_declared_variables(wh: DuckDBWarehouse) -> None:
    g = graph(
        declarations=[RAW],
        tables=[
            {
                "type": "view",
                "target": target("s", "v"),
                "query": "SELECT id * 10 AS x FROM `proj.raw.events`",
                "dependencyTargets": [target("raw", "events")],
            },
        ],
        operations=[
            {
                "target": target("s", "op"),
                "dependencyTargets": [target("s", "v")],
                "queries": [
                    "DECLARE top INT64 DEFAULT (SELECT MAX(x) FROM `proj.s.v`); "
                    "DECLARE since DATE DEFAULT DATE '2024-05-02'; "
                    "CREATE OR REPLACE TABLE `proj.s.out` AS SELECT top AS top, COUNT(*) AS n FROM `proj.raw.events` WHERE day >= since"
                ],
            },
        ],
    )
    reports = runner(wh).execute(g)
    assert [(r.name, r.kind, r.status) for r in reports] == [
        ("s.v", "view", "succeeded"),
        ("s.op", "operation", "succeeded"),
    ]
    assert wh.query("SELECT * FROM s.out").to_pylist() == [{"top": 30, "n": 2}]


def test_incremental_without_key_appends_and_rebuilds_on_new_columns(wh: DuckDBWarehouse) -> None:
    def inc(query: str) -> CompiledGraph:
        return graph(
            declarations=[RAW],
            tables=[
                {
                    "type": "incremental",
                    "target": target("s", "log"),
                    "query": query,
                    "incrementalQuery": query + " WHERE id > (SELECT MAX(id) FROM `proj.s.log`)",
                    "dependencyTargets": [target("raw", "events")],
                }
            ],
        )

    r = runner(wh)
    assert r.execute(inc("SELECT id FROM `proj.raw.events`"))[0].rows == 3
    wh.load_arrow(TableRef("raw", "events"), pa.table({"id": [4], "day": [dt.date(2024, 5, 4)]}))
    assert r.execute(inc("SELECT id FROM `proj.raw.events`"))[0].rows == 4
    assert r.execute(inc("SELECT id, day FROM `proj.raw.events`"))[0].rows == 4
    assert wh.table_schema(TableRef("s", "log")).names == ["id", "day"]


def test_missing_source_fails_and_skips_what_depends_on_it(wh: DuckDBWarehouse) -> None:
    g = graph(
        declarations=[{"target": target("raw", "absent")}],
        tables=[
            {
                "type": "table",
                "target": target("s", "a"),
                "query": "SELECT 1 AS x FROM `proj.raw.absent`",
                "dependencyTargets": [target("raw", "absent")],
            },
            {
                "type": "table",
                "target": target("s", "b"),
                "query": "SELECT x FROM `proj.s.a`",
                "dependencyTargets": [target("s", "a")],
            },
            {"type": "table", "target": target("s", "c"), "query": "SELECT 1 AS y"},
        ],
    )
    reports = {r.name: r for r in runner(wh).execute(g)}
    assert reports["raw.absent"].status == "failed" and "does not exist" in reports["raw.absent"].error
    assert reports["s.a"].status == "skipped" and reports["s.b"].status == "skipped"
    assert reports["s.c"].status == "succeeded"


def test_sql_error_fails_only_that_action(wh: DuckDBWarehouse) -> None:
    g = graph(
        tables=[
            {"type": "table", "target": target("s", "bad"), "query": "SELECT no_such_column FROM `proj.raw.events`"},
            {"type": "table", "target": target("s", "good"), "query": "SELECT 1 AS y"},
        ]
    )
    reports = {r.name: r for r in runner(wh).execute(g)}
    assert reports["s.bad"].status == "failed" and "no_such_column" in reports["s.bad"].error
    assert reports["s.good"].status == "succeeded"


def test_graph_order_selection_and_errors() -> None:
    tables = [
        {"type": "table", "target": target("s", "c"), "query": "SELECT 1", "dependencyTargets": [target("s", "b")]},
        {"type": "table", "target": target("s", "b"), "query": "SELECT 1", "dependencyTargets": [target("s", "a")]},
        {"type": "table", "target": target("s", "a"), "query": "SELECT 1"},
    ]
    assertions = [
        {
            "target": target("as", "c_check"),
            "query": "SELECT 1 WHERE FALSE",
            "dependencyTargets": [target("s", "c")],
            "parentAction": target("s", "c"),
        }
    ]
    g = graph(tables=tables, assertions=assertions)
    assert [a.name for a in g.order()] == ["s.a", "s.b", "s.c", "as.c_check"]
    assert set(g.select(["c"]).actions) == {"s.c", "as.c_check"}
    assert set(g.select(["s.c"], include_dependencies=True).actions) == {"s.a", "s.b", "s.c", "as.c_check"}
    with pytest.raises(BadInputError, match="no Dataform action"):
        g.select(["nope"])
    cyclic = [{**tables[2], "dependencyTargets": [target("s", "c")]}, *tables[:2]]
    with pytest.raises(BadInputError, match="cycle"):
        graph(tables=cyclic).order()
    with pytest.raises(BadInputError, match="does not compile: definitions/x.sqlx: boom"):
        graph(graphErrors={"compilationErrors": [{"fileName": "definitions/x.sqlx", "message": "boom"}]})
    with pytest.raises(BadInputError, match="which the project does not define"):
        graph(tables=tables[:2])


def test_declare_values_become_literals(wh: DuckDBWarehouse) -> None:
    script = Script(wh)
    rest = script.prepare(
        [
            "DECLARE d DATE DEFAULT (SELECT MAX(day) FROM `raw.events`); DECLARE t TIMESTAMP DEFAULT TIMESTAMP '2024-05-01 10:00:00+00';"
            "DECLARE s STRING DEFAULT 'it\\'s'; DECLARE n INT64; DELETE FROM `raw.events` WHERE day >= d"
        ]
    )
    assert rest == ["DELETE FROM `raw.events` WHERE day >= CAST('2024-05-03' AS DATE)"]
    query = script.statement("SELECT d AS d, t AS t, s AS s, n AS n, e.day FROM `raw.events` AS e")
    assert wh.query(query).to_pylist()[0] == {
        "d": dt.date(2024, 5, 3),
        "t": dt.datetime(2024, 5, 1, 10, tzinfo=dt.UTC),
        "s": "it's",
        "n": None,
        "day": dt.date(2024, 5, 1),
    }


def test_merge_sql_matches_on_every_key_column() -> None:
    sql = merge_sql(TableRef("m", "h"), "SELECT 1 AS a, 2 AS b, 3 AS c", ["a", "b", "c"], ("a", "b"))
    assert "ON T.`a` = S.`a` AND T.`b` = S.`b`" in sql
    assert "WHEN NOT MATCHED THEN INSERT (`a`, `b`, `c`) VALUES (S.`a`, S.`b`, S.`c`)" in sql


def test_exact_comparisons() -> None:
    from decimal import Decimal

    assert same(Decimal("912.630000000"), "912.63") and not same(912.625, "912.63")
    assert not same(1, True) and not same(True, 1) and same(None, None) and not same(0, None)
    assert same(dt.date(2024, 5, 15), "2024-05-15") and same(20.0, 20.0)
    assert differences({"a": Decimal("1.00")}, {"a": "1.01", "b": 1}, "r") == [
        "r.a: got Decimal('1.00'), expected '1.01'",
        "r: no column b",
    ]
