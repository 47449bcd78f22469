"""The operations dataset (``sfpipe_ops``): runs, loads, processed events, quality, CDC lag.

Every service writes here through these helpers, so that the dashboard and ``sfpipe
status`` read one shape whatever produced it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from sfpipe.adapters.warehouse.base import TableRef, Warehouse

OPS = "sfpipe_ops"
TS = pa.timestamp("us", tz="UTC")

RUNS = TableRef(OPS, "runs")
LOADS = TableRef(OPS, "loads")
PROCESSED_EVENTS = TableRef(OPS, "processed_events")
QUALITY_RESULTS = TableRef(OPS, "quality_results")
CDC_LAG = TableRef(OPS, "cdc_lag")
RECONCILIATIONS = TableRef(OPS, "reconciliations")

SCHEMAS: dict[TableRef, pa.Schema] = {
    RUNS: pa.schema(
        [
            ("run_id", pa.string()),
            ("stage", pa.string()),
            ("status", pa.string()),
            ("started_at", TS),
            ("ended_at", TS),
            ("rows", pa.int64()),
            ("detail", pa.string()),
            ("updated_at", TS),
        ]
    ),
    LOADS: pa.schema(
        [
            ("run_id", pa.string()),
            ("object", pa.string()),
            ("path", pa.string()),
            ("status", pa.string()),
            ("inserted", pa.int64()),
            ("updated", pa.int64()),
            ("deleted", pa.int64()),
            ("seconds", pa.float64()),
            ("error", pa.string()),
            ("loaded_at", TS),
        ]
    ),
    PROCESSED_EVENTS: pa.schema(
        [
            ("key", pa.string()),
            ("service", pa.string()),
            ("event_type", pa.string()),
            ("event_id", pa.string()),
            ("run_id", pa.string()),
            ("outcome", pa.string()),
            ("processed_at", TS),
        ]
    ),
    QUALITY_RESULTS: pa.schema(
        [
            ("run_id", pa.string()),
            ("suite", pa.string()),
            ("expectation", pa.string()),
            ("column_name", pa.string()),
            ("success", pa.bool_()),
            ("severity", pa.string()),
            ("observed_value", pa.string()),
            ("unexpected_count", pa.int64()),
            ("checked_at", TS),
            ("table_name", pa.string()),
            ("check_name", pa.string()),
            ("details", pa.string()),
        ]
    ),
    CDC_LAG: pa.schema(
        [
            ("entity", pa.string()),
            ("record_id", pa.string()),
            ("commit_timestamp", TS),
            ("applied_at", TS),
            ("lag_ms", pa.float64()),
        ]
    ),
    RECONCILIATIONS: pa.schema(
        [
            ("run_id", pa.string()),
            ("object", pa.string()),
            ("source_rows", pa.int64()),
            ("warehouse_rows", pa.int64()),
            ("missing", pa.int64()),
            ("extra", pa.int64()),
            ("stale", pa.int64()),
            ("repaired", pa.int64()),
            ("status", pa.string()),
            ("checked_at", TS),
            ("mode", pa.string()),
            ("snapshot_at", TS),
            ("buckets", pa.int64()),
            ("buckets_differing", pa.int64()),
            ("api_calls", pa.int64()),
            ("seconds", pa.float64()),
            ("repair_run_id", pa.string()),
            ("detail", pa.string()),
        ]
    ),
}


def now() -> datetime:
    """The current time in UTC."""
    return datetime.now(UTC)


def ensure_ops_tables(warehouse: Warehouse) -> None:
    """Create the ops dataset and its tables if missing."""
    warehouse.ensure_dataset(OPS)
    for ref, schema in SCHEMAS.items():
        warehouse.create_table(ref, schema, partition_by=None)


def sql_literal(value: Any) -> str:
    """A value as a BigQuery SQL literal (for the few small rows ops writes)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, datetime):
        return f"TIMESTAMP '{value.astimezone(UTC).isoformat()}'"
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


def insert_sql(ref: TableRef, row: Mapping[str, Any]) -> str:
    """`INSERT INTO … (cols) VALUES (…)` for one row."""
    cols = ", ".join(f"`{c}`" for c in row)
    vals = ", ".join(sql_literal(v) for v in row.values())
    return f"INSERT INTO {ref.sql} ({cols}) VALUES ({vals})"


def processed_event_sql(
    key: str, service: str, event_type: str, event_id: str, run_id: str | None, outcome: str
) -> list[str]:
    """Statements that record an event as processed (to run in the work's own transaction)."""
    return [
        f"DELETE FROM {PROCESSED_EVENTS.sql} WHERE `key` = {sql_literal(key)} AND `service` = {sql_literal(service)}",
        insert_sql(
            PROCESSED_EVENTS,
            {
                "key": key,
                "service": service,
                "event_type": event_type,
                "event_id": event_id,
                "run_id": run_id,
                "outcome": outcome,
                "processed_at": now(),
            },
        ),
    ]


def processed_outcome(warehouse: Warehouse, key: str, service: str) -> str | None:
    """The recorded outcome of an event for a service, or None when it was never processed."""
    value = warehouse.scalar(
        f"SELECT outcome FROM {PROCESSED_EVENTS.sql} WHERE `key` = {sql_literal(key)} "
        f"AND `service` = {sql_literal(service)} ORDER BY processed_at DESC LIMIT 1"
    )
    return None if value is None else str(value)


def stage_sql(
    run_id: str,
    stage: str,
    status: str,
    *,
    started_at: datetime | None = None,
    ended_at: datetime | None = None,
    rows: int | None = None,
    detail: Mapping[str, Any] | None = None,
) -> list[str]:
    """Statements that set one stage of a run (replacing what was there)."""
    return [
        f"DELETE FROM {RUNS.sql} WHERE run_id = {sql_literal(run_id)} AND stage = {sql_literal(stage)}",
        insert_sql(
            RUNS,
            {
                "run_id": run_id,
                "stage": stage,
                "status": status,
                "started_at": started_at,
                "ended_at": ended_at,
                "rows": rows,
                "detail": json.dumps(detail, default=str) if detail is not None else None,
                "updated_at": now(),
            },
        ),
    ]


def record_stage(warehouse: Warehouse, run_id: str, stage: str, status: str, **kwargs: Any) -> None:
    """Set one stage of a run in its own transaction."""
    warehouse.execute(stage_sql(run_id, stage, status, **kwargs))
