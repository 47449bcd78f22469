"""The reconciliation suite: does the raw layer hold as many live records as the org?

Per object, the raw layer's live rows (not soft- or hard-deleted) are counted against the
source's ``SELECT COUNT() FROM <Object>``. Both sides count only records created before
the end of the object's last extract window, so records created since then (which the
next run or CDC brings) do not count as missing (objects without CreatedDate, such as
UserRole, are counted whole on both sides); what remains is deletions and
undeletions since the window closed, which the tolerance absorbs
(``SFPIPE_QUALITY_RECONCILE_TOLERANCE``, a share of the source count). Exact per-record
differences are the reconciliation service's job; this check says when to look.
"""

from __future__ import annotations

import math

from sfpipe.adapters.warehouse.base import TableRef
from sfpipe_quality.spec import Catalog, Check, Severity, Suite, TableChecks
from sfpipe_quality.suites import raw
from sfpipe_quality.suites.context import RunFacts, raw_table

VERSION = "1"


def bounds(source_count: int, tolerance: float) -> tuple[int, int]:
    """The range of raw counts that agree with the source within the tolerance."""
    slack = source_count * tolerance
    return max(0, math.floor(source_count - slack)), math.ceil(source_count + slack)


def suite(facts: RunFacts, catalog: Catalog) -> Suite:
    """One row-count check per object that the source could count."""
    tables = []
    for rules in raw.OBJECTS:
        if rules.name not in facts.source_counts:
            continue
        table = raw_table(rules.name)
        count = facts.source_counts[rules.name]
        low, high = bounds(count, facts.tolerance)
        window = facts.windows.get(rules.name)
        where = raw.live_condition(catalog, table)
        if window is not None and catalog.has(table, "CreatedDate"):
            where += f" AND CreatedDate < TIMESTAMP '{window.window_to.isoformat()}'"
        created = f"created before {window.window_to.isoformat()}" if window is not None else "all"
        tables.append(
            TableChecks(
                table,
                (
                    Check(
                        f"{table.table}.rows_match_source",
                        "ExpectTableRowCountToBeBetween",
                        {"min_value": low, "max_value": high},
                        Severity.ERROR,
                        f"Live rows ({created}) match the source's COUNT() of {count} within {facts.tolerance:.2%}.",
                    ),
                ),
                query=f"SELECT Id FROM {table.sql} WHERE {where}",
                query_columns=("Id",),
            )
        )
    notes = (f"source not counted: {facts.source_error}",) if facts.source_error else ()
    return Suite("reconcile", VERSION, tuple(tables), notes)


def tables() -> list[TableRef]:
    """Every table the reconciliation suite may read."""
    return raw.tables()
