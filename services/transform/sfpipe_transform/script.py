"""BigQuery scripting, as far as Dataform projects use it, for warehouses without it.

Dataform's documented pattern for incremental tables declares a variable in
``pre_operations`` (``DECLARE checkpoint DEFAULT (SELECT MAX(...) FROM self)``) and uses
it in the query. BigQuery runs pre-operations and the query as one script; a warehouse
without scripting runs them statement by statement. So each ``DECLARE`` is evaluated once
(a read query), and its value is written into the later statements as a literal.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import cast

import sqlglot
from sqlglot import exp

from sfpipe.adapters.warehouse.base import Warehouse
from sfpipe.errors import BadInputError


def parse_script(sql: str) -> list[exp.Expression]:
    """The statements of a BigQuery script (empty statements dropped)."""
    try:
        return [cast(exp.Expression, tree) for tree in sqlglot.parse(sql, read="bigquery") if tree is not None]
    except sqlglot.errors.ParseError as exc:
        msg = f"SQL does not parse as BigQuery: {exc}"
        raise BadInputError(msg, field="sql") from None


def literal(value: object, type_sql: str | None = None) -> exp.Expression:
    """A Python value as a BigQuery literal expression."""
    if value is None:
        null = exp.Null()
        return exp.Cast(this=null, to=exp.DataType.build(type_sql, dialect="bigquery")) if type_sql else null
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int | float | Decimal):
        return exp.Literal.number(str(value))
    if isinstance(value, dt.datetime):
        stamp = value.astimezone(dt.UTC) if value.tzinfo else value
        kind = "TIMESTAMP" if value.tzinfo else "DATETIME"
        return exp.Cast(
            this=exp.Literal.string(stamp.isoformat(sep=" ")), to=exp.DataType.build(kind, dialect="bigquery")
        )
    if isinstance(value, dt.date):
        return exp.Cast(this=exp.Literal.string(value.isoformat()), to=exp.DataType.build("DATE", dialect="bigquery"))
    return exp.Literal.string(str(value))


@dataclass
class Script:
    """Variables declared so far, and the statements that still have to run."""

    warehouse: Warehouse
    variables: dict[str, exp.Expression] = field(default_factory=dict)

    def substitute(self, tree: exp.Expression) -> exp.Expression:
        """Replace references to declared variables by their values."""
        if not self.variables:
            return tree

        def swap(node: exp.Expression) -> exp.Expression:
            if isinstance(node, exp.Column) and not node.table:
                value = self.variables.get(node.name.lower())
                if value is not None:
                    return value.copy()
            return node

        return tree.transform(swap)

    def declare(self, statement: exp.Declare) -> None:
        """Evaluate a ``DECLARE name [type] DEFAULT expr`` and remember the value."""
        for item in statement.expressions:
            names = item.this if isinstance(item.this, list) else [item.this]
            kind = item.args.get("kind")
            default = item.args.get("default")
            type_sql = kind.sql(dialect="bigquery") if isinstance(kind, exp.Expression) else None
            value: object = None
            if isinstance(default, exp.Expression):
                expression = self.substitute(default.copy())
                if type_sql:
                    expression = exp.Cast(this=expression, to=exp.DataType.build(type_sql, dialect="bigquery"))
                value = self.warehouse.scalar(exp.select(expression.as_("value")).sql(dialect="bigquery"))
            for name in names:
                self.variables[name.name.lower()] = literal(value, type_sql)

    def prepare(self, sql_items: Iterable[str]) -> list[str]:
        """Run the DECLAREs of some scripts and return their other statements, ready to execute."""
        ready = []
        for sql in sql_items:
            for tree in parse_script(sql):
                if isinstance(tree, exp.Declare):
                    self.declare(tree)
                    continue
                ready.append(self.substitute(tree).sql(dialect="bigquery"))
        return ready

    def statement(self, sql: str) -> str:
        """One statement (a query) with the declared variables filled in."""
        if not self.variables:
            return sql
        trees = parse_script(sql)
        if len(trees) != 1:
            msg = f"expected one SQL statement, got {len(trees)}"
            raise BadInputError(msg, field="sql")
        return self.substitute(trees[0]).sql(dialect="bigquery")
