"""A warehouse filled the way a few hours of sfpipe leave it, for tests, the benchmark and design work.

The rows follow the contracts the services write (``sfpipe.ops`` schemas, the raw layer's
columns, dbt_salesforce's mart columns), with the irregularities real runs have: a failed
load, a failing warning-level expectation, soft-deleted records, a CDC tail. The same
seed gives the same warehouse.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa

from sfpipe import ops
from sfpipe.adapters.warehouse.base import TableRef, Warehouse

TS = pa.timestamp("us", tz="UTC")

STAGES = [
    ("Prospecting", 10.0, "Pipeline"),
    ("Qualification", 10.0, "Pipeline"),
    ("Needs Analysis", 20.0, "Pipeline"),
    ("Value Proposition", 50.0, "Pipeline"),
    ("Id. Decision Makers", 60.0, "Pipeline"),
    ("Perception Analysis", 70.0, "BestCase"),
    ("Proposal/Price Quote", 75.0, "BestCase"),
    ("Negotiation/Review", 90.0, "Forecast"),
]
OWNERS = [
    "Avery Chen",
    "Jordan Patel",
    "Mia Rossi",
    "Noah Kim",
    "Olivia Brown",
    "Liam Novak",
    "Sofia Garcia",
    "Ethan Walker",
    "Amara Okafor",
    "Lucas Moreau",
    "Hana Sato",
    "Diego Alvarez",
]
RAW_OBJECTS = {
    "account": 600,
    "contact": 1800,
    "lead": 900,
    "opportunity": 1200,
    "opportunitylineitem": 2600,
    "user": len(OWNERS) + 3,
    "userrole": 8,
    "product2": 40,
    "task": 3000,
    "case": 700,
}
TABLE_OF_SUITE = {
    "raw": "sfpipe_raw.opportunity",
    "staging": "sfpipe_staging.stg_salesforce__opportunity",
    "marts": "sfpipe_marts.salesforce__opportunity_enhanced",
}
SUITES = {
    "raw": [
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_unique",
        "expect_table_row_count_to_be_between",
    ],
    "staging": [
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_in_set",
        "expect_column_values_to_be_unique",
    ],
    "marts": [
        "expect_column_values_to_be_between",
        "expect_column_pair_values_a_to_be_greater_than_b",
        "expect_column_values_to_not_be_null",
    ],
}


@dataclass(frozen=True)
class SampleSummary:
    """What the sample holds, for tests to compare against."""

    runs: int
    failed_run_id: str
    latest_run_id: str
    raw_rows: dict[str, int]
    deleted_rows: dict[str, int]
    open_opportunities: int
    won_amount: float
    owners: int
    cdc_changes: int


def _run_id(at: datetime, rng: np.random.Generator) -> str:
    return at.strftime("%Y%m%dT%H%M%SZ") + "-" + "".join(rng.choice(list("0123456789abcdef"), 8))


def fill(
    warehouse: Warehouse, *, now: datetime | None = None, seed: int = 7, runs: int = 8, scale: float = 1.0
) -> SampleSummary:
    """Write the sample into ``warehouse`` (tables are replaced)."""
    now = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    rng = np.random.default_rng(seed)
    ops.ensure_ops_tables(warehouse)
    run_ids, failed_run = _runs(warehouse, now, rng, runs)
    raw_rows, deleted = _raw(warehouse, now, rng, scale, run_ids)
    _loads(warehouse, now, rng, run_ids, failed_run, raw_rows)
    open_count, won_amount = _marts(warehouse, now, rng, scale)
    _quality(warehouse, now, run_ids, failed_run)
    changes = _cdc(warehouse, now, rng, scale)
    _reconciliations(warehouse, now, run_ids[0], raw_rows)
    return SampleSummary(
        runs=len(run_ids),
        failed_run_id=failed_run,
        latest_run_id=run_ids[0],
        raw_rows=raw_rows,
        deleted_rows=deleted,
        open_opportunities=open_count,
        won_amount=won_amount,
        owners=len(OWNERS),
        cdc_changes=changes,
    )


def _runs(warehouse: Warehouse, now: datetime, rng: np.random.Generator, count: int) -> tuple[list[str], str]:
    rows: list[dict[str, Any]] = []
    run_ids: list[str] = []
    failed_index = min(2, count - 1)
    for i in range(count):
        start = now - timedelta(minutes=4 + 30 * i) - timedelta(seconds=int(rng.integers(0, 40)))
        run_id = _run_id(start, rng)
        run_ids.append(run_id)
        at = start
        for stage, (lo, hi) in zip(
            ("extract", "load", "transform", "quality"), ((18, 42), (6, 16), (9, 22), (4, 9)), strict=True
        ):
            seconds = float(rng.uniform(lo, hi))
            status = "succeeded"
            if i == failed_index and stage == "load":
                status = "failed"
            ended = at + timedelta(seconds=seconds)
            detail: dict[str, Any] = {"objects": len(RAW_OBJECTS)}
            if status == "failed":
                detail = {"error": "sfpipe_raw.opportunitylineitem: schema fingerprint changed while loading; retry"}
            rows.append(
                {
                    "run_id": run_id,
                    "stage": stage,
                    "status": status,
                    "started_at": at,
                    "ended_at": ended,
                    "rows": int(sum(RAW_OBJECTS.values()) * (1.0 if i == count - 1 else rng.uniform(0.01, 0.06))),
                    "detail": json.dumps(detail),
                    "updated_at": ended,
                }
            )
            if status == "failed":
                break
            if stage == "transform":
                # the reconciler runs next to transform, on the same load.completed event
                rows.append(
                    {
                        "run_id": run_id, "stage": "reconcile", "status": "succeeded", "started_at": at,
                        "ended_at": at + timedelta(seconds=8.0 + i % 3), "rows": 0,
                        "detail": json.dumps({"objects": len(RAW_OBJECTS)}), "updated_at": at,
                    }
                )
            at = ended + timedelta(seconds=float(rng.uniform(0.3, 1.5)))
    warehouse.load_arrow(ops.RUNS, pa.Table.from_pylist(rows, schema=ops.SCHEMAS[ops.RUNS]), replace=True)
    return run_ids, run_ids[failed_index]


def _raw(
    warehouse: Warehouse, now: datetime, rng: np.random.Generator, scale: float, run_ids: list[str]
) -> tuple[dict[str, int], dict[str, int]]:
    counts: dict[str, int] = {}
    deleted_counts: dict[str, int] = {}
    for name, base in RAW_OBJECTS.items():
        n = max(1, int(base * scale))
        ids = [f"{name[:3].upper()}{i:012d}" for i in range(n)]
        # a slow-moving object (product2) was last touched weeks ago
        horizon = 86_400 * (40 if name == "product2" else 2)
        modstamps = [now - timedelta(seconds=int(s)) for s in rng.integers(60, horizon, n)]
        deleted = rng.random(n) < (0.03 if name not in ("user", "userrole") else 0.0)
        source = np.where(rng.random(n) < 0.05, "cdc", "batch")
        table = pa.table(
            {
                "Id": pa.array(ids),
                "Name": pa.array([f"{name} {i}" for i in range(n)]),
                "IsDeleted": pa.array(deleted.tolist()),
                "SystemModstamp": pa.array(modstamps, type=TS),
                "_run_id": pa.array([run_ids[int(k)] for k in rng.integers(0, len(run_ids), n)]),
                "_ingested_at": pa.array([m + timedelta(minutes=5) for m in modstamps], type=TS),
                "_source": pa.array(source.tolist()),
                "_version": pa.array(modstamps, type=TS),
                "_commit_number": pa.array([0] * n, type=pa.int64()),
                "_hard_deleted": pa.array([False] * n),
            }
        )
        warehouse.load_arrow(TableRef("sfpipe_raw", name), table, replace=True)
        counts[name] = n
        deleted_counts[name] = int(deleted.sum())
    # the change log sits next to its table and is not an object of its own
    warehouse.load_arrow(
        TableRef("sfpipe_raw", "opportunity__changes"),
        pa.table({"Id": ["OPP000000000000"], "_source_file": ["gs://lake/x.parquet"]}),
        replace=True,
    )
    return counts, deleted_counts


def _loads(
    warehouse: Warehouse,
    now: datetime,
    rng: np.random.Generator,
    run_ids: list[str],
    failed_run: str,
    raw_rows: dict[str, int],
) -> None:
    rows = []
    for i, run_id in enumerate(reversed(run_ids)):
        loaded_at = now - timedelta(minutes=3 + 30 * (len(run_ids) - 1 - i))
        for name, n in raw_rows.items():
            failed = run_id == failed_run and name == "opportunitylineitem"
            rows.append(
                {
                    "run_id": run_id,
                    "object": name.capitalize(),
                    "path": "warehouse",
                    "status": "failed" if failed else "loaded",
                    "inserted": 0 if failed else (n if i == 0 else int(rng.integers(0, max(2, n // 40)))),
                    "updated": 0 if failed else int(rng.integers(0, max(2, n // 30))),
                    "deleted": 0 if failed else int(rng.integers(0, 3)),
                    "seconds": float(rng.uniform(0.05, 1.2)),
                    "error": "schema fingerprint changed while loading" if failed else None,
                    "loaded_at": loaded_at,
                }
            )
    warehouse.load_arrow(ops.LOADS, pa.Table.from_pylist(rows, schema=ops.SCHEMAS[ops.LOADS]), replace=True)


def _marts(warehouse: Warehouse, now: datetime, rng: np.random.Generator, scale: float) -> tuple[int, float]:
    n = max(20, int(RAW_OBJECTS["opportunity"] * scale))
    today = now.date()
    rows: list[dict[str, Any]] = []
    for i in range(n):
        owner = int(rng.integers(0, len(OWNERS)))
        created = now - timedelta(days=int(rng.integers(1, 540)))
        amount = float(round(rng.lognormal(10.2, 0.8), 2))
        roll = rng.random()
        skill = 0.35 + 0.04 * (owner % 7)
        if roll < 0.55:
            won = bool(rng.random() < skill)
            stage, probability, category = ("Closed Won", 100.0, "Closed") if won else ("Closed Lost", 0.0, "Omitted")
            closed = True
            age_days = max(1, (now - created).days)
            close_date = (created + timedelta(days=int(rng.integers(0, min(160, age_days))))).date()
        else:
            won, closed = False, False
            stage, probability, category = STAGES[int(rng.integers(0, len(STAGES)))]
            close_date = today + timedelta(days=int(rng.integers(5, 120)))
        status = (
            "Won"
            if won
            else ("Lost" if closed else ("Pipeline" if category in ("Pipeline", "Forecast", "BestCase") else "Other"))
        )
        rows.append(
            {
                "opportunity_id": f"006{i:012d}",
                "opportunity_name": f"Deal {i}",
                "stage_name": stage,
                "amount": amount,
                "probability": probability,
                "is_closed": closed,
                "is_won": won,
                "close_date": close_date,
                "created_date": created,
                "forecast_category": category,
                "status": status,
                "opportunity_owner_id": f"005{owner:012d}",
                "opportunity_owner_name": OWNERS[owner],
            }
        )
    schema = pa.schema(
        [
            ("opportunity_id", pa.string()),
            ("opportunity_name", pa.string()),
            ("stage_name", pa.string()),
            ("amount", pa.decimal128(38, 9)),
            ("probability", pa.float64()),
            ("is_closed", pa.bool_()),
            ("is_won", pa.bool_()),
            ("close_date", pa.date32()),
            ("created_date", TS),
            ("forecast_category", pa.string()),
            ("status", pa.string()),
            ("opportunity_owner_id", pa.string()),
            ("opportunity_owner_name", pa.string()),
        ]
    )
    table = pa.Table.from_pylist([{**r, "amount": Decimal(str(r["amount"]))} for r in rows], schema=schema)
    warehouse.load_arrow(TableRef("sfpipe_marts", "salesforce__opportunity_enhanced"), table, replace=True)

    owners = []
    for k, name in enumerate(OWNERS):
        mine = [r for r in rows if r["opportunity_owner_name"] == name]
        booked = sum(r["amount"] for r in mine if r["status"] == "Won")
        lost = sum(r["amount"] for r in mine if r["status"] == "Lost")
        owners.append(
            {
                "owner_id": f"005{k:012d}",
                "owner_name": name,
                "total_number_bookings": sum(1 for r in mine if r["status"] == "Won"),
                "total_bookings_amount": booked,
                "total_number_lost": sum(1 for r in mine if r["status"] == "Lost"),
                "total_lost_amount": lost,
                "total_number_pipeline": sum(1 for r in mine if r["status"] == "Pipeline"),
                "total_pipeline_amount": sum(r["amount"] for r in mine if r["status"] == "Pipeline"),
                "total_win_percent": booked / (booked + lost) * 100 if booked + lost > 0 else 0.0,
            }
        )
    warehouse.load_arrow(
        TableRef("sfpipe_marts", "salesforce__owner_performance"), pa.Table.from_pylist(owners), replace=True
    )

    won_rows = [r for r in rows if r["status"] == "Won"]
    lost_rows = [r for r in rows if r["status"] == "Lost"]
    pipeline = [r for r in rows if r["status"] == "Pipeline"]
    quarter_start = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    month_start = today.replace(day=1)

    def total(items: list[dict[str, Any]], since: date | None = None) -> float:
        return float(round(sum(r["amount"] for r in items if since is None or r["close_date"] >= since)))

    booked_total, lost_total = total(won_rows), total(lost_rows)
    snapshot = {
        "bookings_amount_closed_this_month": total(won_rows, month_start),
        "bookings_amount_closed_this_quarter": total(won_rows, quarter_start),
        "total_number_bookings": len(won_rows),
        "total_bookings_amount": booked_total,
        "avg_bookings_amount": float(round(booked_total / max(1, len(won_rows)))),
        "largest_booking": max((r["amount"] for r in won_rows), default=0.0),
        "total_number_pipeline": len(pipeline),
        "total_pipeline_amount": total(pipeline),
        "total_pipeline_forecast_amount": float(round(sum(r["amount"] * r["probability"] / 100 for r in pipeline))),
        "largest_deal_in_pipeline": max((r["amount"] for r in pipeline), default=0.0),
        "total_number_lost": len(lost_rows),
        "total_lost_amount": lost_total,
        "total_win_percent": round(booked_total / (booked_total + lost_total) * 100, 2)
        if booked_total + lost_total
        else None,
    }
    warehouse.load_arrow(
        TableRef("sfpipe_marts", "salesforce__sales_snapshot"), pa.Table.from_pylist([snapshot]), replace=True
    )
    return sum(1 for r in rows if not r["is_closed"]), booked_total


def _quality(warehouse: Warehouse, now: datetime, run_ids: list[str], failed_run: str) -> None:
    rows = []
    for age, run_id in enumerate(run_ids):
        if run_id == failed_run:
            continue  # the run stopped at its load: no quality results
        checked = now - timedelta(minutes=1 + 30 * age)
        for suite, expectations in SUITES.items():
            for j, expectation in enumerate(expectations):
                for column in ("Id", "Amount", "CloseDate")[: 2 + j % 2]:
                    failing = suite == "marts" and expectation.startswith("expect_column_pair") and column == "Id"
                    rows.append(
                        {
                            "run_id": run_id,
                            "suite": suite,
                            "expectation": expectation,
                            "column_name": column,
                            "success": not failing,
                            "severity": "warning" if failing else "error",
                            "observed_value": "3 rows where created_date > close_date" if failing else None,
                            "unexpected_count": 3 if failing else 0,
                            "checked_at": checked,
                            "table_name": TABLE_OF_SUITE[suite],
                            "check_name": "closes after it is created" if failing else None,
                        }
                    )
    table = pa.Table.from_pylist(rows, schema=ops.SCHEMAS[ops.QUALITY_RESULTS])
    warehouse.load_arrow(ops.QUALITY_RESULTS, table, replace=True)


def _cdc(warehouse: Warehouse, now: datetime, rng: np.random.Generator, scale: float) -> int:
    n = max(50, int(2400 * scale))
    offsets = np.sort(rng.uniform(0, 45 * 60, n))
    lags = rng.lognormal(np.log(420), 0.55, n)
    burst = (offsets > 20 * 60) & (offsets < 24 * 60)  # a short backlog: lag climbs, then drains
    lags = np.where(burst, lags * 4.5, lags)
    applied = [now - timedelta(seconds=45 * 60 - float(o)) for o in offsets]
    table = pa.table(
        {
            "entity": pa.array(rng.choice(["Opportunity", "Account", "Contact", "Case"], n).tolist()),
            "record_id": pa.array([f"006{i:012d}" for i in range(n)]),
            "commit_timestamp": pa.array(
                [a - timedelta(milliseconds=float(lag)) for a, lag in zip(applied, lags, strict=True)], type=TS
            ),
            "applied_at": pa.array(applied, type=TS),
            "lag_ms": pa.array(lags.tolist(), type=pa.float64()),
        }
    )
    warehouse.load_arrow(ops.CDC_LAG, table, replace=True)
    return n


def _reconciliations(warehouse: Warehouse, now: datetime, run_id: str, raw_rows: dict[str, int]) -> None:
    rows = []
    for name, n in raw_rows.items():
        stale = 2 if name == "opportunity" else 0
        rows.append(
            {
                "run_id": run_id,
                "object": name,
                "source_rows": n,
                "warehouse_rows": n,
                "missing": 0,
                "extra": 0,
                "stale": stale,
                "repaired": stale,
                "status": "repaired" if stale else "clean",
                "checked_at": now - timedelta(minutes=2),
            }
        )
    table = pa.Table.from_pylist(rows, schema=ops.SCHEMAS[ops.RECONCILIATIONS])
    warehouse.load_arrow(ops.RECONCILIATIONS, table, replace=True)
