"""What the demo prints after the run: read from the tables the pipeline wrote.

Every figure comes from the warehouse (BigQuery SQL through the adapter): quality results
from ``sfpipe_ops.quality_results``, the headline sales numbers from
``sfpipe_marts.salesforce__sales_snapshot``, the CDC lag from ``sfpipe_ops.cdc_lag``, the
reconciliation from ``sfpipe_ops.reconciliations`` once ``sfpipe reconcile`` has written
it. A table that is missing is a sentence saying which step fills it, never an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sfpipe import ops
from sfpipe.adapters.warehouse.base import TableRef, Warehouse
from sfpipe.errors import SfpipeError

SNAPSHOT = TableRef("sfpipe_marts", "salesforce__sales_snapshot")

HEADLINES = (
    ("total_bookings_amount", "bookings", "money"),
    ("total_number_bookings", "deals won", "count"),
    ("total_pipeline_amount", "open pipeline", "money"),
    ("total_number_pipeline", "open deals", "count"),
    ("total_win_percent", "win rate", "percent"),
    ("total_lost_amount", "lost", "money"),
    ("bookings_amount_closed_this_quarter", "booked this quarter", "money"),
    ("avg_bookings_amount", "average deal", "money"),
    ("largest_booking", "largest deal", "money"),
)
"""Snapshot columns the summary shows (dbt_salesforce's names), with a label and a format."""


@dataclass
class SuiteTotals:
    """One quality suite's checks for the run."""

    suite: str
    passed: int
    failed: int


@dataclass
class Summary:
    """Everything after the stage table."""

    suites: list[SuiteTotals] = field(default_factory=list)
    failing: list[dict[str, Any]] = field(default_factory=list)
    snapshot: dict[str, Any] | None = None
    snapshot_note: str = ""
    raw_tables: int = 0
    raw_rows: int = 0
    cdc: dict[str, Any] | None = None
    cdc_note: str = ""
    reconciliation: list[dict[str, Any]] | None = None
    reconciliation_note: str = ""
    reconciliation_seconds: float | None = None
    """How long ``sfpipe reconcile`` took, when the demo ran it."""

    def as_json(self) -> dict[str, Any]:
        """For the demo's JSON result."""
        return {
            "quality": [vars(s) for s in self.suites],
            "quality_failing": self.failing,
            "snapshot": self.snapshot,
            "raw": {"tables": self.raw_tables, "rows": self.raw_rows},
            "cdc": self.cdc,
            "cdc_note": self.cdc_note or None,
            "reconciliation": self.reconciliation,
            "reconciliation_note": self.reconciliation_note or None,
            "reconciliation_seconds": self.reconciliation_seconds,
        }


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    return value


def _rows(warehouse: Warehouse, sql: str) -> list[dict[str, Any]]:
    return [{k: _plain(v) for k, v in row.items()} for row in warehouse.query(sql).to_pylist()]


def quality(warehouse: Warehouse, run_id: str, summary: Summary) -> None:
    """Per-suite totals and the failing expectations of the run."""
    if not warehouse.table_exists(ops.QUALITY_RESULTS):
        return
    run = ops.sql_literal(run_id)
    summary.suites = [
        SuiteTotals(r["suite"], int(r["passed"] or 0), int(r["failed"] or 0))
        for r in _rows(
            warehouse,
            f"SELECT suite, COUNTIF(success) AS passed, COUNTIF(NOT success) AS failed "
            f"FROM {ops.QUALITY_RESULTS.sql} WHERE run_id = {run} GROUP BY suite ORDER BY suite",
        )
    ]
    summary.failing = _rows(
        warehouse,
        f"SELECT suite, severity, table_name, column_name, expectation, check_name, observed_value, "
        f"unexpected_count FROM {ops.QUALITY_RESULTS.sql} WHERE run_id = {run} AND NOT success "
        f"ORDER BY CASE severity WHEN 'error' THEN 0 ELSE 1 END, suite, table_name LIMIT 20",
    )


def snapshot(warehouse: Warehouse, summary: Summary) -> None:
    """The one row of the sales snapshot mart."""
    if not warehouse.table_exists(SNAPSHOT):
        summary.snapshot_note = f"{SNAPSHOT} does not exist: the transform builds it after a load"
        return
    rows = _rows(warehouse, f"SELECT * FROM {SNAPSHOT.sql} LIMIT 1")
    if not rows:
        summary.snapshot_note = f"{SNAPSHOT} is empty"
        return
    summary.snapshot = rows[0]


def raw_totals(warehouse: Warehouse, load_detail: dict[str, Any], summary: Summary) -> None:
    """Tables and live rows of the raw layer after the run (the loader's per-object detail names them)."""
    objects = sorted((load_detail.get("objects") or {}).keys())
    if not objects:
        return
    parts = [
        f"SELECT COUNT(*) AS n FROM {TableRef('sfpipe_raw', name.lower()).sql}"
        for name in objects
        if warehouse.table_exists(TableRef("sfpipe_raw", name.lower()))
    ]
    if not parts:
        return
    rows = _rows(warehouse, " UNION ALL ".join(parts))
    summary.raw_tables = len(rows)
    summary.raw_rows = sum(int(r["n"] or 0) for r in rows)


def reconciliation(warehouse: Warehouse, since: Any, summary: Summary) -> None:
    """The latest reconciliation per object written since the run started, if any."""
    if not warehouse.table_exists(ops.RECONCILIATIONS):
        return
    rows = _rows(
        warehouse,
        f"SELECT object, source_rows, warehouse_rows, missing, extra, stale, repaired, status, checked_at "
        f"FROM {ops.RECONCILIATIONS.sql} WHERE checked_at >= {ops.sql_literal(since)} "
        f"QUALIFY ROW_NUMBER() OVER (PARTITION BY object ORDER BY checked_at DESC) = 1 ORDER BY object",
    )
    if rows:
        summary.reconciliation = rows


def reconcile_rows(detail: dict[str, Any]) -> list[dict[str, Any]]:
    """Per object, what the reconcile stage's row says differs (when the reconciliations table has nothing newer)."""
    objects = detail.get("objects") or {}
    return [
        {"object": name, "mode": o.get("mode"), "missing": o.get("missing"), "extra": o.get("extra"),
         "stale": o.get("stale")}
        for name, o in sorted(objects.items())
    ]  # fmt: skip


def gather(
    warehouse: Warehouse,
    run_id: str,
    *,
    since: Any,
    load_detail: dict[str, Any],
    cdc: dict[str, Any] | None,
    reconcile_detail: dict[str, Any] | None = None,
) -> Summary:
    """Read every part of the summary; a part that cannot be read says why instead."""
    summary = Summary(cdc=cdc)
    for part, call in (
        ("quality", lambda: quality(warehouse, run_id, summary)),
        ("snapshot", lambda: snapshot(warehouse, summary)),
        ("raw", lambda: raw_totals(warehouse, load_detail, summary)),
        ("reconciliation", lambda: reconciliation(warehouse, since, summary)),
    ):
        try:
            call()
        except SfpipeError as exc:
            if part == "snapshot":
                summary.snapshot_note = f"cannot read {SNAPSHOT}: {exc}"
            elif part == "reconciliation":
                summary.reconciliation_note = f"cannot read {ops.RECONCILIATIONS}: {exc}"
    if summary.reconciliation is None and reconcile_detail and reconcile_detail.get("objects"):
        summary.reconciliation = reconcile_rows(reconcile_detail)
    return summary


def money(value: Any) -> str:
    """$4.9M, $560.6K, $980."""
    if value is None:
        return "–"
    amount = float(value)
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(amount) >= limit:
            return f"${amount / limit:,.1f}{suffix}"
    return f"${amount:,.0f}"


def headline(snapshot_row: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, formatted value) of the snapshot's headline columns that exist."""
    out = []
    for column, label, kind in HEADLINES:
        if column not in snapshot_row:
            continue
        value = snapshot_row[column]
        if kind == "money":
            text = money(value)
        elif kind == "percent":
            text = "–" if value is None else f"{float(value):.1f}%"
        else:
            text = "–" if value is None else f"{int(value):,}"
        out.append((label, text))
    return out
