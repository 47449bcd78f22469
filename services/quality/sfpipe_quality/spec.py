"""The shape of a quality suite, independent of Great Expectations.

A suite is plain data: which table, which GX expectation with which arguments, how
severe a failure is. Building a suite therefore costs nothing (GX is imported only
when checks run), a suite can be listed, diffed and tested without a warehouse, and
the one module that speaks to GX (:mod:`sfpipe_quality.gx_runner`) turns it into GX
objects. Custom SQL in a check is BigQuery's dialect, like every query in sfpipe.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sfpipe.adapters.warehouse.base import TableRef

BATCH = "{batch}"
"""Where GX puts the table (or query) under test in an ``UnexpectedRowsExpectation``."""


class Severity(StrEnum):
    """How bad a failure is: an error raises an alert, a warning is only recorded."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Check:
    """One expectation on one table.

    Attributes:
        name: Stable identifier, unique within its suite (``opportunity.amount_not_negative``);
            results, alerts and tests refer to checks by it.
        expectation: The GX expectation class name (``ExpectColumnValuesToBeUnique``).
        kwargs: The expectation's arguments; ``unexpected_rows_query`` is BigQuery SQL
            with ``{batch}`` for the table under test.
        severity: Error (alerts) or warning (recorded only).
        description: What the check protects, in one sentence (shown in the report and Data Docs).
        columns: Columns of the table the check needs; it is skipped when one is missing.
        reads: Other tables the check's SQL reads; it is skipped when one is missing.
    """

    name: str
    expectation: str
    kwargs: Mapping[str, Any]
    severity: Severity
    description: str
    columns: tuple[str, ...] = ()
    reads: tuple[TableRef, ...] = ()

    @property
    def column(self) -> str | None:
        """The column the check is about, when it is about one."""
        value = self.kwargs.get("column") or self.kwargs.get("column_A")
        return str(value) if value else (self.columns[0] if len(self.columns) == 1 else None)


@dataclass(frozen=True)
class TableChecks:
    """The checks on one table, run as one GX validation (one batch, one pass).

    Attributes:
        table: The table under test.
        checks: Its checks.
        query: BigQuery SQL selecting the rows under test instead of the whole table
            (for example only the rows that are not deleted); None = the whole table.
        query_columns: Columns that the query itself needs from the table.
    """

    table: TableRef
    checks: tuple[Check, ...]
    query: str | None = None
    query_columns: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """A name for the batch: dataset and table, plus a marker when it is a query."""
        return f"{self.table.dataset}.{self.table.table}" + ("__query" if self.query else "")


@dataclass(frozen=True)
class Suite:
    """A named, versioned set of checks (``raw``, ``marts``, ``reconcile``)."""

    name: str
    version: str
    tables: tuple[TableChecks, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def checks(self) -> list[Check]:
        """Every check of the suite."""
        return [check for table in self.tables for check in table.checks]


@dataclass(frozen=True)
class Catalog:
    """Which tables exist and their columns: decides which checks apply."""

    columns: Mapping[TableRef, frozenset[str]]

    def has(self, ref: TableRef, *columns: str) -> bool:
        """Whether the table exists with every named column (case-insensitive, as both warehouses are)."""
        found = self.columns.get(ref)
        if found is None:
            return False
        lower = {c.lower() for c in found}
        return all(c.lower() in lower for c in columns)

    def applicable(self, table: TableChecks) -> tuple[TableChecks | None, list[str]]:
        """The table's checks that can run here, and a note for each one that cannot."""
        if table.table not in self.columns:
            return None, [f"{table.table}: table missing, {len(table.checks)} checks skipped"]
        if not self.has(table.table, *table.query_columns):
            return None, [f"{table.table}: columns {list(table.query_columns)} missing, checks skipped"]
        kept, notes = [], []
        for check in table.checks:
            if not self.has(table.table, *check.columns):
                notes.append(f"{check.name}: column(s) {list(check.columns)} missing in {table.table}, skipped")
            elif any(ref not in self.columns for ref in check.reads):
                missing = [str(ref) for ref in check.reads if ref not in self.columns]
                notes.append(f"{check.name}: {', '.join(missing)} missing, skipped")
            else:
                kept.append(check)
        if not kept:
            return None, notes
        return TableChecks(table.table, tuple(kept), table.query, table.query_columns), notes
