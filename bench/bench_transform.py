"""Transform benchmark: a full local run of the Dataform project on a 1,000,000-record org.

The org comes from the simulator's generator (``sfpipe simulator generate``), loaded into
the raw layer as a first full load would leave it. Timed in a fresh interpreter: the full
run (Dataform CLI compile + every table and assertion on DuckDB), then a second run that
finds the incremental history in place. Reference, same child, same data: DuckDB copying
every raw table with ``CREATE TABLE AS SELECT *`` (the least any rebuild must do).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.harness import BenchResult, run_isolated, timed

ROOT = Path(__file__).resolve().parents[1]
RECORDS = int(os.environ.get("SFPIPE_BENCH_TRANSFORM_RECORDS", "1000000"))
AS_OF = "2026-01-01"

CHILD = """
import datetime as dt, time
from pathlib import Path
from sfpipe.adapters.warehouse.base import TableRef
from sfpipe.adapters.warehouse.duckdb.client import DuckDBWarehouse
from sfpipe.adapters.warehouse.duckdb.session import EmbeddedSession
from sfpipe_transform.local import LocalRunner
from sfpipe_transform.rawschema import RawContract
from sfpipe_transform.result import TransformRequest
from sfpipe_transform.seed import load_parquet_org

project = Path({project!r})
wh = DuckDBWarehouse(EmbeddedSession({db!r}))
contract = RawContract.load(project)
t = time.perf_counter()
loaded = load_parquet_org(wh, contract, Path({org!r}), run_id="20260101T000000Z-00000001",
                          ingested_at=dt.datetime(2026, 1, 1, 1, tzinfo=dt.UTC))
load_seconds = time.perf_counter() - t

wh.ensure_dataset("bench_ref")
t = time.perf_counter()
for table in loaded:
    copy = TableRef("bench_ref", table).sql
    wh.execute([f"CREATE OR REPLACE TABLE {{copy}} AS SELECT * FROM {{TableRef('sfpipe_raw', table).sql}}"])
reference_seconds = time.perf_counter() - t

runner = LocalRunner.for_project(wh, project)
request = TransformRequest(run_id="20260101T000000Z-00000002", as_of=dt.date.fromisoformat({as_of!r}))
t = time.perf_counter()
first = runner.run(request)
full_seconds = time.perf_counter() - t
t = time.perf_counter()
second = runner.run(request)
incremental_seconds = time.perf_counter() - t
wh.close()
slowest = sorted(first.actions, key=lambda a: -a.seconds)[:6]
result = {{
    "raw_rows": sum(loaded.values()) - loaded.get("opportunity__changes", 0),
    "load_seconds": load_seconds,
    "reference_copy_seconds": reference_seconds,
    "full_run_seconds": full_seconds,
    "compile_seconds": first.compile_seconds,
    "second_run_seconds": incremental_seconds,
    "succeeded": first.succeeded and second.succeeded,
    "failed": [a.name for a in first.actions + second.actions if a.status != "succeeded"],
    "actions": len(first.actions),
    "history_rows": next(a.rows for a in first.actions if a.name.endswith("salesforce__opportunity_daily_history")),
    "slowest": [[a.name, a.rows, a.seconds] for a in slowest],
}}
"""


def run() -> BenchResult:
    bench = BenchResult("transform")
    with tempfile.TemporaryDirectory(prefix="bench-transform-") as tmp:
        org = Path(tmp) / "org"
        with timed() as generate:
            subprocess.run(
                [
                    str(Path(sys.executable).parent / "sfpipe"),
                    "simulator",
                    "generate",
                    "--scale",
                    str(RECORDS),
                    "--out",
                    str(org),
                ],
                check=True,
                capture_output=True,
                cwd=ROOT,
            )
        counts = json.loads((org / "_org.json").read_text())["counts"]
        code = CHILD.format(project=str(ROOT / "dataform"), db=str(Path(tmp) / "w.duckdb"), org=str(org), as_of=AS_OF)
        child = run_isolated(code, env={"SFPIPE_LOG_LEVEL": "WARNING"})
    bench.figures.update(
        {
            "records_generated": sum(counts.values()),
            "generate_seconds": round(generate.seconds, 2),
            **{k: (round(v, 3) if isinstance(v, float) else v) for k, v in child.items()},
            "full_run_over_reference_copy": round(
                child["full_run_seconds"] / max(child["reference_copy_seconds"], 1e-9), 2
            ),
        }
    )
    bench.target("full_local_run_seconds_1m_records", child["full_run_seconds"], 60.0, higher_is_better=False, unit="s")
    bench.target("all_actions_succeeded", 1.0 if child["succeeded"] else 0.0, 1.0, higher_is_better=True)
    return bench
