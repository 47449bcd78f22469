"""What reconciliation writes to ``sfpipe_ops.reconciliations`` and reads back from it.

One row per object per reconciliation (and per repair verification, per formula refresh):
counts, what differed, what was repaired, the pass (``full``, ``recent``, ``formula``), the
source snapshot it compared against, buckets, API calls and time. The newest ``clean`` or
``repaired`` row of an object is the baseline its next recent pass starts from.

Statuses: ``clean`` (nothing differs), ``differs`` (found, not repaired), ``repairing`` (a repair
run is written, its load not yet verified), ``repaired`` (the load of the repair run closed every
difference), ``unrepaired`` (it did not: an alert went out), ``failed`` (could not compare),
``refreshed`` (formula pass).
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from sfpipe import ops
from sfpipe.adapters.warehouse.base import Warehouse
from sfpipe.ops import sql_literal

if TYPE_CHECKING:
    from sfpipe_reconciler.reconcile import ObjectCheck

TABLE = ops.RECONCILIATIONS
BASELINE_STATUSES = ("clean", "repaired")


_ENSURED: weakref.WeakSet[Warehouse] = weakref.WeakSet()


def ensure_table(warehouse: Warehouse) -> None:
    """The ops tables, and any column of ``reconciliations`` that an older table lacks (once per warehouse)."""
    if warehouse in _ENSURED:
        return
    ops.ensure_ops_tables(warehouse)
    _ENSURED.add(warehouse)
    existing = warehouse.table_schema(TABLE)
    if existing is None:
        return
    have = {f.name.lower() for f in existing}
    missing = [f for f in ops.SCHEMAS[TABLE] if f.name.lower() not in have]
    if missing:
        warehouse.add_columns(TABLE, missing)


@dataclass(frozen=True)
class Baseline:
    """An object's last clean comparison (any pass) and last clean full comparison."""

    last_clean: datetime
    last_full: datetime | None


def baselines(warehouse: Warehouse, objects: Sequence[str]) -> dict[str, Baseline]:
    """Per object, the snapshots of its newest clean comparisons."""
    if not objects:
        return {}
    names = ", ".join(sql_literal(o) for o in objects)
    statuses = ", ".join(sql_literal(s) for s in BASELINE_STATUSES)
    rows = warehouse.query(
        f"SELECT object, UNIX_MILLIS(MAX(snapshot_at)) AS last_clean, "
        f"UNIX_MILLIS(MAX(IF(mode = 'full', snapshot_at, NULL))) AS last_full FROM {TABLE.sql} "
        f"WHERE status IN ({statuses}) AND object IN ({names}) AND snapshot_at IS NOT NULL GROUP BY object"
    ).to_pylist()
    out = {}
    for row in rows:
        clean = _from_ms(row["last_clean"])
        if clean is not None:
            out[str(row["object"])] = Baseline(clean, _from_ms(row["last_full"]))
    return out


def _from_ms(value: Any) -> datetime | None:
    """Epoch milliseconds as an aware datetime (times travel as integers: no timestamp conversion per row)."""
    return datetime.fromtimestamp(value / 1000, UTC) if isinstance(value, int) else None


def last_formula_refresh(warehouse: Warehouse, objects: Sequence[str]) -> dict[str, datetime]:
    """Per object, when formula fields were last refreshed."""
    if not objects:
        return {}
    names = ", ".join(sql_literal(o) for o in objects)
    rows = warehouse.query(
        f"SELECT object, UNIX_MILLIS(MAX(snapshot_at)) AS at FROM {TABLE.sql} WHERE mode = 'formula' "
        f"AND status IN ('refreshed', 'clean') AND object IN ({names}) GROUP BY object"
    ).to_pylist()
    return {str(r["object"]): t for r in rows if (t := _from_ms(r["at"])) is not None}


def row(
    run_id: str,
    check: ObjectCheck,
    status: str,
    *,
    repaired: int = 0,
    repair_run_id: str | None = None,
    detail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One ``reconciliations`` row for a check."""
    return {
        "run_id": run_id,
        "object": check.sobject,
        "source_rows": check.source_rows,
        "warehouse_rows": check.warehouse_rows,
        "missing": len(check.missing),
        "extra": len(check.extra),
        "stale": len(check.stale),
        "repaired": repaired,
        "status": status,
        "checked_at": ops.now(),
        "mode": check.mode,
        "snapshot_at": check.snapshot_at,
        "buckets": check.buckets,
        "buckets_differing": check.buckets_differing,
        "api_calls": round(check.api_calls),
        "seconds": round(check.seconds, 3),
        "repair_run_id": repair_run_id,
        "detail": json.dumps(detail if detail is not None else check.summary(), default=str),
    }


def write(warehouse: Warehouse, rows: Sequence[dict[str, Any]]) -> None:
    """Append rows in one load (Arrow, no SQL to write and transpile per row)."""
    if rows:
        schema = ops.SCHEMAS[TABLE]
        warehouse.load_arrow(TABLE, pa.Table.from_pylist([{f.name: r.get(f.name) for f in schema} for r in rows],
                                                         schema=schema))  # fmt: skip


def pending_repair(warehouse: Warehouse, repair_run_id: str) -> list[dict[str, Any]]:
    """The rows of the reconciliation that wrote a repair run, while that repair is not verified."""
    rows = warehouse.query(
        f"SELECT * FROM {TABLE.sql} WHERE repair_run_id = {sql_literal(repair_run_id)} "
        f"ORDER BY checked_at"
    ).to_pylist()
    done = {r["object"] for r in rows if r["status"] in ("repaired", "unrepaired")}
    return [r for r in rows if r["status"] == "repairing" and r["object"] not in done]
