"""BigQuery SQL → DuckDB SQL, in exactly one place.

sqlglot does the syntax; this module fixes the semantics that differ (see FINDINGS):
``TIMESTAMP_DIFF`` counts whole units elapsed in BigQuery but unit boundaries in DuckDB's
``DATE_DIFF``; ``DATE_TRUNC`` / ``DATE_ADD`` on a DATE return a DATE in BigQuery but a
TIMESTAMP in DuckDB; three-part names lose their project (DuckDB has one database); a
dataset's ``INFORMATION_SCHEMA`` views become DuckDB's global ones narrowed to that schema;
a bare ``NUMERIC`` is (38, 9) as in BigQuery, not DuckDB's (18, 3); ``COUNTIF`` stays INT64.
"""

from __future__ import annotations

import functools

import sqlglot
from sqlglot import exp

from sfpipe.errors import BadInputError

_INFORMATION_SCHEMA = "INFORMATION_SCHEMA."


def _information_schema(node: exp.Table) -> exp.Expression:
    """`dataset.INFORMATION_SCHEMA.X` lists one dataset in BigQuery; DuckDB's view spans every schema."""
    view = node.name[len(_INFORMATION_SCHEMA) :].lower()
    alias = node.alias if node.alias and "." not in node.alias else view
    select = exp.select("*").from_(exp.table_(view, db="information_schema"))
    if node.db:
        select = select.where(exp.column("table_schema").eq(exp.Literal.string(node.db)))
    return select.subquery(alias)


def _fix(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Table) and node.name.upper().startswith(_INFORMATION_SCHEMA):
        return _information_schema(node)
    if isinstance(node, exp.Table) and node.args.get("catalog") is not None:
        node = node.copy()
        node.set("catalog", None)
        return node
    if isinstance(node, exp.TimestampDiff):
        unit = node.args.get("unit")
        unit_name = unit.name if isinstance(unit, exp.Expression) else str(unit or "DAY")
        return exp.Anonymous(
            this="DATE_SUB",
            expressions=[exp.Literal.string(unit_name.upper()), node.expression, node.this],
        )
    if isinstance(node, exp.CountIf) and not isinstance(node.parent, exp.Cast):
        # BigQuery's COUNTIF is INT64; DuckDB's COUNT_IF is a 128-bit HUGEINT
        return exp.Cast(this=node, to=exp.DataType.build("BIGINT"))
    if isinstance(node, exp.DataType) and node.this == exp.DataType.Type.DECIMAL and not node.expressions:
        # BigQuery's NUMERIC is (38, 9); DuckDB's bare DECIMAL is (18, 3) and would round money
        return exp.DataType.build("DECIMAL(38, 9)")
    if isinstance(node, exp.DateTrunc | exp.DateAdd | exp.DateSub) and not isinstance(node.parent, exp.Cast):
        return exp.Cast(this=node, to=exp.DataType.build("DATE"))
    return node


@functools.lru_cache(maxsize=4096)
def to_duckdb(sql: str) -> tuple[str, ...]:
    """Each statement of a BigQuery script, as DuckDB SQL."""
    try:
        trees = sqlglot.parse(sql, read="bigquery")
    except sqlglot.errors.ParseError as exc:
        msg = f"SQL does not parse as BigQuery: {exc}"
        raise BadInputError(msg, field="sql") from None
    out = []
    for tree in trees:
        if tree is None:
            continue
        for layout in list(tree.find_all(exp.PartitionedByProperty, exp.ClusterProperty)):
            # storage layout only: DuckDB has neither, and the rows are the same without them
            layout.pop()
        fixed = tree.transform(_fix)
        out.append(fixed.sql(dialect="duckdb"))
    return tuple(out)


def to_duckdb_one(sql: str) -> str:
    """A single BigQuery statement as DuckDB SQL."""
    statements = to_duckdb(sql)
    if len(statements) != 1:
        msg = f"expected one SQL statement, got {len(statements)}"
        raise BadInputError(msg, field="sql")
    return statements[0]
