"""The local runner: the compiled Dataform graph, executed on sfpipe's warehouse.

Each action is one transaction (pre-operations, the statement that builds the table,
post-operations), so a table is either rebuilt completely or left as it was. Incremental
tables merge their incremental query on the unique key, as Dataform does on BigQuery.
An assertion is a view in the assertion dataset; any row it returns fails it. An action
whose dependency failed or was skipped is skipped.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from sfpipe.adapters.warehouse.base import TableRef, Warehouse
from sfpipe.errors import SfpipeError, TransientError
from sfpipe.events import ActionReport
from sfpipe_transform.compiler import Action, CompiledGraph, DataformCli
from sfpipe_transform.result import TransformRequest, TransformResult
from sfpipe_transform.script import Script

log = logging.getLogger(__name__)

_SAMPLE_ROWS = 3


class AssertionFailed(SfpipeError):
    """An assertion returned rows."""


def _quote(name: str) -> str:
    return f"`{name}`"


def merge_sql(target: TableRef, source_query: str, columns: list[str], unique_key: tuple[str, ...]) -> str:
    """The MERGE Dataform runs for an incremental table with a unique key (BigQuery dialect)."""
    on = " AND ".join(f"T.{_quote(k)} = S.{_quote(k)}" for k in unique_key)
    updates = ", ".join(f"{_quote(c)} = S.{_quote(c)}" for c in columns)
    cols = ", ".join(_quote(c) for c in columns)
    values = ", ".join(f"S.{_quote(c)}" for c in columns)
    return (
        f"MERGE {target.sql} T\nUSING (\n{source_query}\n) S\nON {on}\n"
        f"WHEN MATCHED THEN UPDATE SET {updates}\n"
        f"WHEN NOT MATCHED THEN INSERT ({cols}) VALUES ({values})"
    )


def _one_line(text: str, limit: int = 500) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


@dataclass
class LocalRunner:
    """Compile with the Dataform CLI, then execute the graph on a warehouse."""

    warehouse: Warehouse
    cli: DataformCli
    default_database: str | None = None
    name: str = "local"

    @classmethod
    def for_project(cls, warehouse: Warehouse, project_dir: Path, default_database: str | None = None) -> LocalRunner:
        """A runner over the project in ``project_dir``."""
        return cls(warehouse, DataformCli(project_dir), default_database)

    def compile(self, request: TransformRequest) -> CompiledGraph:
        """The request's graph (selected actions, when asked)."""
        graph = self.cli.compile(request.compile_vars, default_database=self.default_database)
        if request.actions:
            graph = graph.select(request.actions, include_dependencies=request.include_dependencies)
        return graph

    def run(self, request: TransformRequest, graph: CompiledGraph | None = None) -> TransformResult:
        """Compile (unless given the graph) and execute; failures are reported per action, transient ones raised."""
        started = time.monotonic()
        result = TransformResult(run_id=request.run_id, as_of=request.as_of)
        graph = graph or self.compile(request)
        result.compile_seconds = round(time.monotonic() - started, 3)
        result.actions = self.execute(graph, full_refresh=request.full_refresh)
        result.seconds = round(time.monotonic() - started, 3)
        return result

    def execute(self, graph: CompiledGraph, *, full_refresh: bool = False) -> list[ActionReport]:
        """Every action in dependency order; a report for each (declarations only when missing)."""
        reports: list[ActionReport] = []
        outcome: dict[str, str] = {}
        for dataset in sorted({a.target.dataset for a in graph.actions.values() if a.kind != "declaration"}):
            self.warehouse.ensure_dataset(dataset)
        for action in graph.order():
            blocked = [d for d in action.dependencies if outcome.get(d) in ("failed", "skipped")]
            if blocked:
                outcome[action.name] = "skipped"
                reports.append(
                    ActionReport(
                        name=action.name,
                        kind=action.kind,
                        status="skipped",
                        error=f"dependency {blocked[0]} did not succeed",
                    )
                )
                continue
            report = self.run_action(action, full_refresh=full_refresh)
            outcome[action.name] = report.status
            if action.kind != "declaration" or report.status != "succeeded":
                reports.append(report)
        return reports

    def run_action(self, action: Action, *, full_refresh: bool = False) -> ActionReport:
        """One action; an error becomes a failed report, except a transient one, which is raised."""
        started = time.monotonic()
        rows: int | None = None
        try:
            if action.kind == "declaration":
                if not self.warehouse.table_exists(action.target):
                    msg = f"source table {action.target} does not exist"
                    raise AssertionFailed(msg)
            elif action.kind in ("table", "incremental"):
                rows = self._build_table(action, full_refresh=full_refresh)
            elif action.kind == "view":
                self._build_view(action)
            elif action.kind == "assertion":
                rows = self._check_assertion(action)
            elif action.kind == "operation":
                self._run_operation(action)
        except TransientError:
            raise
        except SfpipeError as exc:
            seconds = round(time.monotonic() - started, 3)
            log.warning("%s %s failed in %.2f s: %s", action.kind, action.name, seconds, _one_line(str(exc)))
            failing_rows = rows if action.kind == "assertion" else None
            return ActionReport(
                name=action.name,
                kind=action.kind,
                status="failed",
                rows=failing_rows,
                seconds=seconds,
                error=_one_line(str(exc)),
            )
        seconds = round(time.monotonic() - started, 3)
        log.info("%s %s: %s rows in %.2f s", action.kind, action.name, rows if rows is not None else "-", seconds)
        return ActionReport(name=action.name, kind=action.kind, status="succeeded", rows=rows, seconds=seconds)

    def _count(self, table: TableRef) -> int:
        value = self.warehouse.scalar(f"SELECT COUNT(*) FROM {table.sql}")
        return int(value) if isinstance(value, int | float | str) else 0

    def _query_columns(self, query: str) -> list[str]:
        return list(self.warehouse.query(f"SELECT * FROM (\n{query}\n) AS q WHERE FALSE").schema.names)

    def _build_table(self, action: Action, *, full_refresh: bool) -> int:
        target = action.target
        script = Script(self.warehouse)
        existing = self.warehouse.table_schema(target) if action.kind == "incremental" and not full_refresh else None
        if existing is not None and action.incremental_query is not None:
            pre = script.prepare(action.incremental_pre_ops)
            source = script.statement(action.incremental_query)
            columns = self._query_columns(source)
            if set(columns) == set(existing.names):
                post = script.prepare(action.incremental_post_ops)
                if action.unique_key:
                    write = merge_sql(target, source, columns, action.unique_key)
                else:
                    write = f"INSERT INTO {target.sql} ({', '.join(_quote(c) for c in columns)})\n{source}"
                self.warehouse.execute([*pre, write, *post])
                return self._count(target)
            log.info(
                "%s: columns changed (%s → %s); rebuilding it in full",
                action.name,
                sorted(existing.names),
                sorted(columns),
            )
            script = Script(self.warehouse)
        pre = script.prepare(action.pre_ops)
        query = script.statement(action.query)
        post = script.prepare(action.post_ops)
        self.warehouse.execute([*pre, f"CREATE OR REPLACE TABLE {target.sql} AS\n{query}", *post])
        return self._count(target)

    def _build_view(self, action: Action) -> None:
        script = Script(self.warehouse)
        pre = script.prepare(action.pre_ops)
        query = script.statement(action.query)
        post = script.prepare(action.post_ops)
        self.warehouse.execute([*pre, f"CREATE OR REPLACE VIEW {action.target.sql} AS\n{query}", *post])

    def _check_assertion(self, action: Action) -> int:
        self.warehouse.execute([f"CREATE OR REPLACE VIEW {action.target.sql} AS\n{action.query}"])
        violations = self._count(action.target)
        if violations:
            raise AssertionFailed(f"{violations} row(s) violate it: {self._describe_violations(action)}")
        return 0

    def _describe_violations(self, action: Action) -> str:
        columns = set(self.warehouse.query(f"SELECT * FROM {action.target.sql} WHERE FALSE").schema.names)
        if "failing_row_condition" in columns:
            table = self.warehouse.query(
                f"SELECT failing_row_condition AS c, COUNT(*) AS n FROM {action.target.sql} "
                "GROUP BY 1 ORDER BY 2 DESC, 1"
            )
            return "; ".join(f"NOT ({row['c']}) in {row['n']} row(s)" for row in table.to_pylist())
        sample = self.warehouse.query(f"SELECT * FROM {action.target.sql} LIMIT {_SAMPLE_ROWS}").to_pylist()
        return "e.g. " + "; ".join(", ".join(f"{k}={v}" for k, v in row.items()) for row in sample)

    def _run_operation(self, action: Action) -> None:
        script = Script(self.warehouse)
        statements = script.prepare(action.queries)
        if statements:
            self.warehouse.execute(statements)
