"""The full quality suite on a 1,000,000-record org, locally: target ≤ 60 s.

The org is the simulator's generator at scale 1,000,000 (seed 7), loaded as a first full
load leaves the raw layer, with the marts built by the real Dataform project (the
transform's local runner). Setting it up is not timed.

Measured, each in a fresh interpreter (the best of two: the machine is shared):

- ``full_suite``: raw + marts + reconcile (every check, Data Docs built to a folder), as the
  service runs them, through the warehouse server that owns the file (Arrow Flight), GX's
  import included — the figure the target is about; and the same in-process
  (``embedded``).
- ``import``: ``import great_expectations`` alone (it is paid once per process).
- reference: the same questions asked as hand-written DuckDB SQL on a bare connection (one
  aggregate query per table). The ratio is what GX, SQLAlchemy and the session add.
- pushdown: rows handed to Python over the whole run, against the rows in the warehouse.
- the rejected alternative: a read-only snapshot of the file (CHECKPOINT + copy) costs this
  much before any check runs.

The reconciliation's ``COUNT()`` answers come from the generated Parquet (the org's truth),
not over HTTP: 17 REST requests are not what this measures.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import duckdb

from bench.harness import BenchResult, run_isolated, timed

SCALE = 1_000_000
SEED = 7
AS_OF = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
RUN_ID = "20261101T000000Z-0000beef"
ROUNDS = 2
ROOT = Path(__file__).resolve().parents[1]

CHILD = textwrap.dedent(
    """
    import json, time, os
    from datetime import datetime
    from pathlib import Path
    started = time.perf_counter()
    import great_expectations
    imported = time.perf_counter() - started
    import pyarrow as pa
    from sfpipe.config import load_settings
    from sfpipe.adapters.warehouse.duckdb.client import DuckDBWarehouse
    from sfpipe.adapters.warehouse.duckdb.session import EmbeddedSession, FlightSession
    from sfpipe_quality.runner import QualityChecker
    from sfpipe_quality.suites.context import ObjectWindow

    facts = json.loads(Path(os.environ["BENCH_FACTS"]).read_text())
    url = os.environ.get("BENCH_FLIGHT")
    inner = FlightSession(url) if url else EmbeddedSession(os.environ["BENCH_WAREHOUSE"])
    pulled = {"rows": 0, "largest": 0}
    reader = inner.reader
    def counting(sql, batch_rows):
        r = reader(sql, batch_rows)
        def batches():
            n = 0
            for b in r:
                n += b.num_rows
                pulled["rows"] += b.num_rows
                pulled["largest"] = max(pulled["largest"], n)
                yield b
        return pa.RecordBatchReader.from_batches(r.schema, batches())
    inner.reader = counting

    class Source:
        def count(self, sobject, *, created_before=None):
            return facts["counts"][sobject]
        def picklist(self, sobject, field):
            return None

    windows = {
        k: ObjectWindow(datetime.fromisoformat(v["from"]), datetime.fromisoformat(v["to"]), v["rows"])
        for k, v in facts["windows"].items()
    }
    wh = DuckDBWarehouse(inner)
    checker = QualityChecker(wh, load_settings(), source=lambda: Source(), windows=lambda _run: windows)
    docs = Path(os.environ["BENCH_DOCS"])
    t0 = time.perf_counter()
    run = checker.run(os.environ["BENCH_RUN_ID"], docs_dir=docs)
    seconds = time.perf_counter() - t0
    wh.close()
    result = {
        "import_s": imported, "suite_s": seconds, "total_s": time.perf_counter() - started,
        "checks": len(run.results), "failed": sorted(r.check for r in run.failing()),
        "statements": run.statements, "rows_pulled": pulled["rows"], "largest_pull": pulled["largest"],
        "docs_files": sum(1 for p in docs.rglob("*.html")),
    }
    """
)

BUILD = textwrap.dedent(
    """
    import json, os
    from pathlib import Path
    from bench.bench_quality import build_org
    folder = Path(os.environ["BENCH_FOLDER"])
    path, facts = build_org(folder)
    (folder / "facts.json").write_text(json.dumps(facts))
    result = {"path": str(path)}
    """
)

IMPORT_ONLY = textwrap.dedent(
    """
    import time
    t = time.perf_counter()
    import great_expectations
    result = {"import_s": time.perf_counter() - t}
    """
)

REFERENCE = textwrap.dedent(
    """
    import json, os, time
    import duckdb
    conn = duckdb.connect(os.environ["BENCH_WAREHOUSE"], read_only=True)
    tables = [r[0] for r in conn.sql(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'sfpipe_raw' AND table_name NOT LIKE '%__changes'"
    ).fetchall()]
    marts = [r[0] for r in conn.sql(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'sfpipe_marts'"
    ).fetchall()]
    t = time.perf_counter()
    for table in tables:
        cols = {r[0] for r in conn.sql(f"DESCRIBE sfpipe_raw.\\"{table}\\"").fetchall()}
        parts = ["count(*)", "count(*) - count(Id)", "count(*) - count(DISTINCT Id)", "max(SystemModstamp)"]
        if "CreatedDate" in cols:
            parts.append("count(*) FILTER (WHERE SystemModstamp < CreatedDate)")
        if "Amount" in cols:
            parts.append("count(*) FILTER (WHERE Amount < 0)")
        conn.sql(f"SELECT {', '.join(parts)} FROM sfpipe_raw.\\"{table}\\"").fetchall()
        if "AccountId" in cols:
            live = "NOT COALESCE(c.IsDeleted, FALSE)" if "IsDeleted" in cols else "TRUE"
            conn.sql(f"SELECT count(*) FROM sfpipe_raw.\\"{table}\\" c "
                     "LEFT JOIN sfpipe_raw.account p ON p.Id = c.AccountId "
                     f"WHERE c.AccountId IS NOT NULL AND {live} AND p.Id IS NULL").fetchall()
    for table in marts:
        first = conn.sql(f"DESCRIBE sfpipe_marts.\\"{table}\\"").fetchall()[0][0]
        key = f'\\"{first}\\"'
        conn.sql(f"SELECT count(*), count(*) - count(DISTINCT {key}) FROM sfpipe_marts.\\"{table}\\"").fetchall()
    result = {"reference_s": time.perf_counter() - t, "tables": len(tables) + len(marts)}
    """
)


def build_org(folder: Path) -> tuple[Path, dict[str, object]]:
    """Generate, load and transform the org; the warehouse file and the facts the checks need."""
    from sfpipe.adapters.warehouse.duckdb.client import DuckDBWarehouse
    from sfpipe.adapters.warehouse.duckdb.session import EmbeddedSession
    from sfpipe_simulator.generator import OrgPlan, write_parquet
    from sfpipe_transform.local import LocalRunner
    from sfpipe_transform.result import TransformRequest

    org = folder / "org"
    write_parquet(OrgPlan.build(SEED, SCALE, AS_OF), org)
    path = folder / "warehouse.duckdb"
    session = EmbeddedSession(path)
    statements = ["CREATE SCHEMA IF NOT EXISTS sfpipe_raw"]
    objects = sorted(p for p in org.iterdir() if p.is_dir())
    for obj in objects:
        statements.append(
            f'CREATE OR REPLACE TABLE sfpipe_raw."{obj.name.lower()}" AS SELECT *, '
            f"'{RUN_ID}' AS _run_id, TIMESTAMPTZ '{AS_OF.isoformat()}' AS _ingested_at, 'batch' AS _source, "
            "SystemModstamp AS _version, 0::BIGINT AS _commit_number, FALSE AS _hard_deleted "
            f"FROM read_parquet('{obj}/*.parquet')"
        )
    statements.append(
        "CREATE OR REPLACE TABLE sfpipe_raw.opportunity__changes AS "
        "SELECT *, 'seed' AS _source_file FROM sfpipe_raw.opportunity"
    )
    session.run(statements)
    warehouse = DuckDBWarehouse(session)
    result = LocalRunner.for_project(warehouse, ROOT / "dataform").run(
        TransformRequest(run_id=RUN_ID, as_of=AS_OF.date())
    )
    failed = [a.name for a in result.actions if a.status != "succeeded"]
    if failed:
        msg = f"the transform failed: {failed}"
        raise RuntimeError(msg)
    window_from = AS_OF - dt.timedelta(days=1)
    counts: dict[str, int] = {}
    windows: dict[str, dict[str, object]] = {}
    records = 0
    for obj in objects:
        table = f'sfpipe_raw."{obj.name.lower()}"'
        cols = {f.name for f in session.fetch(f"SELECT * FROM {table} LIMIT 0").schema}
        live = "NOT IsDeleted" if "IsDeleted" in cols else "TRUE"
        row = session.fetch(
            f"SELECT count(*) AS n, count(*) FILTER (WHERE {live}) AS live, "
            f"count(*) FILTER (WHERE SystemModstamp >= TIMESTAMPTZ '{window_from.isoformat()}') AS recent FROM {table}"
        ).to_pylist()[0]
        records += int(row["n"])
        counts[obj.name] = int(row["live"])
        windows[obj.name] = {"from": window_from.isoformat(), "to": AS_OF.isoformat(), "rows": int(row["recent"])}
    warehouse.close()
    return path, {"counts": counts, "windows": windows, "records": records}


def start_server(path: Path) -> tuple[subprocess.Popen[bytes], str]:
    """The local warehouse server owning the file, in its own process."""
    from sfpipe.adapters.warehouse.duckdb.session import FlightSession
    from sfpipe_devstack.emulators import free_port

    port = free_port()
    code = (
        "import sys; from sfpipe.adapters.warehouse.duckdb.server import serve; "
        "serve(sys.argv[1], '127.0.0.1', int(sys.argv[2]))"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(path), str(port)], stderr=subprocess.DEVNULL)
    url = f"grpc://127.0.0.1:{port}"
    client = FlightSession(url)
    deadline = time.monotonic() + 120
    while not client.ping():
        if proc.poll() is not None or time.monotonic() > deadline:
            msg = "the warehouse server did not start"
            raise RuntimeError(msg)
        time.sleep(0.2)
    client.close()
    return proc, url


def best(code: str, env: dict[str, str]) -> dict[str, object]:
    """The fastest of ``ROUNDS`` runs in fresh interpreters (the machine is shared), with every time seen."""
    runs = [run_isolated(code, env=env) for _ in range(ROUNDS)]
    fastest = dict(min(runs, key=lambda r: r["total_s"]))
    fastest["all_total_s"] = [round(r["total_s"], 1) for r in runs]
    return fastest


def run() -> BenchResult:
    result = BenchResult("quality")
    folder = Path(tempfile.mkdtemp(prefix="bench-quality-"))
    try:
        # Built in its own interpreter: on Linux a child inherits its parent's peak RSS at
        # fork, so a parent that held the 1,000,000-record build would inflate every figure.
        with timed() as setup:
            built = run_isolated(BUILD, env={"BENCH_FOLDER": str(folder)})
        path = Path(str(built["path"]))
        facts_file = folder / "facts.json"
        facts = json.loads(facts_file.read_text())
        env = {
            "BENCH_FACTS": str(facts_file),
            "BENCH_WAREHOUSE": str(path),
            "BENCH_RUN_ID": RUN_ID,
            "SFPIPE_HOME": str(folder / "home"),
            "SFPIPE_LOG_LEVEL": "WARNING",
        }
        imported = min((run_isolated(IMPORT_ONLY) for _ in range(ROUNDS)), key=lambda r: r["import_s"])
        embedded = best(CHILD, {**env, "BENCH_DOCS": str(folder / "docs-embedded")})
        reference = min((run_isolated(REFERENCE, env=env) for _ in range(ROUNDS)), key=lambda r: r["reference_s"])

        proc, url = start_server(path)
        try:
            flight = best(CHILD, {**env, "BENCH_FLIGHT": url, "BENCH_DOCS": str(folder / "docs-flight")})
        finally:
            proc.terminate()
            proc.wait(timeout=60)

        conn = duckdb.connect(str(path))
        conn.execute("CHECKPOINT")
        conn.close()
        with timed() as snapshot:
            shutil.copyfile(path, folder / "snapshot.duckdb")
        size_mb = path.stat().st_size / 2**20

        result.figures = {
            "org": {"generator": "sfpipe_simulator (seed 7)", "records": facts["records"], "scale": SCALE},
            "setup_seconds": round(setup.seconds, 1),
            "setup_peak_rss_mb": round(float(built["peak_rss_mb"]), 1),
            "gx_import_seconds": round(imported["import_s"], 2),
            "flight": {k: v for k, v in flight.items() if k != "failed"},
            "embedded": {k: v for k, v in embedded.items() if k != "failed"},
            "failed_checks": flight["failed"],
            "reference_sql_seconds": round(reference["reference_s"], 3),
            "suite_over_reference": round(flight["suite_s"] / max(reference["reference_s"], 1e-6), 1),
            "warehouse_mb": round(size_mb, 1),
            "snapshot_copy_seconds": round(snapshot.seconds, 2),
        }
        result.target("full_suite_seconds", flight["total_s"], 60.0, higher_is_better=False, unit="s")
        result.target("full_suite_embedded_seconds", embedded["total_s"], 60.0, higher_is_better=False, unit="s")
        result.target("rows_pulled_per_million_records", flight["rows_pulled"] / facts["records"] * 1e6, 10_000,
                      higher_is_better=False, unit="rows")  # fmt: skip
        result.target("peak_rss_mb", flight["peak_rss_mb"], 1024, higher_is_better=False, unit="MiB")
        result.target("clean_org_failed_checks", len(flight["failed"]), 0, higher_is_better=False)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return result
