"""Concurrent writers and readers against the local warehouse, each its own OS process.

The evidence behind docs/adr/0011-local-warehouse-server.md: several processes write
through the warehouse server at once (single-row inserts, Arrow appends, and a
read-modify-write counter that every writer bumps) while a reader counts rows. Each
process finds the server the way a service does, through ``<home>/warehouse.url``, and
prints one JSON line with what it saw::

    python -m sfpipe_devstack.loadgen setup
    python -m sfpipe_devstack.loadgen writer --id 3 --writes 200
    python -m sfpipe_devstack.loadgen reader --until /tmp/stop
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow as pa

from sfpipe.adapters.factory import warehouse
from sfpipe.adapters.warehouse.base import TableRef, Warehouse
from sfpipe.errors import SfpipeError

ROWS = TableRef("sfpipe_raw", "loadgen_rows")
COUNTERS = TableRef("sfpipe_raw", "loadgen_counters")
APPEND_EVERY = 5
APPEND_ROWS = 20

ROW_SCHEMA = pa.schema([("writer", pa.int64()), ("seq", pa.int64()), ("kind", pa.string())])


def expected_rows(writers: int, writes: int) -> int:
    """Rows the workload leaves behind: one per insert, ``APPEND_ROWS`` per append."""
    appends = sum(1 for i in range(writes) if i % APPEND_EVERY == APPEND_EVERY - 1)
    return writers * ((writes - appends) + appends * APPEND_ROWS)


def expected_counter(writers: int, writes: int) -> int:
    """The shared counter after the workload: one increment per insert."""
    appends = sum(1 for i in range(writes) if i % APPEND_EVERY == APPEND_EVERY - 1)
    return writers * (writes - appends)


def setup(wh: Warehouse) -> None:
    """Fresh tables for a run."""
    wh.drop_table(ROWS)
    wh.drop_table(COUNTERS)
    wh.create_table(ROWS, ROW_SCHEMA)
    wh.create_table(COUNTERS, pa.schema([("id", pa.int64()), ("n", pa.int64())]))
    wh.execute([f"INSERT INTO {COUNTERS.sql} (id, n) VALUES (0, 0)"])


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def write(wh: Warehouse, writer: int, writes: int) -> dict[str, Any]:
    """One writer's share: inserts with a counter bump in the same transaction, and appends."""
    errors: list[str] = []
    latencies: list[float] = []
    started = time.perf_counter()
    for seq in range(writes):
        began = time.perf_counter()
        try:
            if seq % APPEND_EVERY == APPEND_EVERY - 1:
                batch = pa.table(
                    {"writer": [writer] * APPEND_ROWS, "seq": [seq] * APPEND_ROWS, "kind": ["append"] * APPEND_ROWS},
                    schema=ROW_SCHEMA,
                )
                wh.load_arrow(ROWS, batch)
            else:
                wh.execute(
                    [
                        f"INSERT INTO {ROWS.sql} (writer, seq, kind) VALUES ({writer}, {seq}, 'insert')",
                        f"UPDATE {COUNTERS.sql} SET n = n + 1 WHERE id = 0",
                    ]
                )
        except SfpipeError as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        latencies.append(time.perf_counter() - began)
    seconds = time.perf_counter() - started
    return {
        "writer": writer,
        "writes": writes,
        "errors": errors,
        "seconds": round(seconds, 3),
        "p50_ms": round(statistics.median(latencies) * 1000, 2) if latencies else 0.0,
        "p99_ms": round(_percentile(latencies, 0.99) * 1000, 2),
    }


def read(wh: Warehouse, until: Path, *, pause: float = 0.01, max_seconds: float = 600.0) -> dict[str, Any]:
    """Count rows again and again until ``until`` exists; a count must never go down."""
    counts: list[int] = []
    errors: list[str] = []
    went_down = 0
    deadline = time.monotonic() + max_seconds
    while not until.exists() and time.monotonic() < deadline:
        try:
            value = wh.scalar(f"SELECT count(*) FROM {ROWS.sql}")
        except SfpipeError as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
            continue
        count = int(str(value))
        if counts and count < counts[-1]:
            went_down += 1
        counts.append(count)
        time.sleep(pause)
    return {"reads": len(counts), "errors": errors, "went_down": went_down, "last": counts[-1] if counts else None}


def main(argv: list[str] | None = None) -> int:
    """Run one role and print its result as one JSON line."""
    parser = argparse.ArgumentParser(prog="python -m sfpipe_devstack.loadgen")
    sub = parser.add_subparsers(dest="role", required=True)
    sub.add_parser("setup")
    w = sub.add_parser("writer")
    w.add_argument("--id", type=int, required=True)
    w.add_argument("--writes", type=int, default=200)
    r = sub.add_parser("reader")
    r.add_argument("--until", type=Path, required=True)
    r.add_argument("--pause", type=float, default=0.01)
    args = parser.parse_args(argv)
    wh = warehouse()
    try:
        if args.role == "setup":
            setup(wh)
            result: dict[str, Any] = {"setup": True}
        elif args.role == "writer":
            result = write(wh, args.id, args.writes)
        else:
            result = read(wh, args.until, pause=args.pause)
        result["session"] = type(getattr(wh, "session", None)).__name__
    finally:
        wh.close()
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
