"""Loader throughput: 1,000,000 Opportunity rows in 8 Parquet files, 20 % of Ids repeated across files.

Three measurements on the same files, repeated, each path right after a reference run of
its own. A rate is rows per second of work: the processes' CPU time (the loader's, its
pipeline child's and DuckDB's threads), because on a shared 2-core machine the wall time
of one run varies tenfold with the neighbours while its CPU time does not; wall times are
reported too. A target is the median over the repetitions of (reference / path):

- reference: DuckDB's own ``INSERT INTO t SELECT * FROM read_parquet(…)`` on local copies;
- warehouse-native: the loader from the manifest in fake-gcs-server to the raw layer
  (file checks, download, dedup, MERGE, change log, ops rows) on a fresh DuckDB file;
- Beam: the same through the pipeline on FnApiRunner in a child process, then the MERGE;
  its start-up (interpreter, imports, graph) is reported apart.

Each runs in a fresh interpreter so that its peak memory is its own; the Beam child's
pipeline process is measured too.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import tempfile
from pathlib import Path

from bench.harness import BenchResult, run_isolated

ROWS = int(os.environ.get("SFPIPE_BENCH_LOADER_ROWS", "1000000"))
FILES = 8
REPEATS = int(os.environ.get("SFPIPE_BENCH_LOADER_REPEATS", "3"))
MEMORY_LIMIT = os.environ.get("SFPIPE_BENCH_LOADER_MEMORY", "640MB")
"""DuckDB's cap in the loader (SFPIPE_WAREHOUSE_MEMORY_LIMIT): the reference runs with DuckDB's defaults."""

REFERENCE = """
import time, duckdb, resource
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
files = {files!r}
con = duckdb.connect({db!r})
con.execute("SET TimeZone = 'UTC'")
con.execute("SET preserve_insertion_order = false")
con.execute("CREATE TABLE t AS SELECT * FROM read_parquet(" + repr(files) + ") LIMIT 0")
started, started_cpu = time.perf_counter(), cpu()
con.execute("INSERT INTO t SELECT * FROM read_parquet(" + repr(files) + ")")
seconds, cpu_seconds = time.perf_counter() - started, cpu() - started_cpu
rows = con.execute("SELECT count(*) FROM t").fetchone()[0]
con.close()
result = {{"seconds": seconds, "cpu_seconds": cpu_seconds, "rows": rows}}
"""

LOAD = """
import os, time, resource
os.environ.update({env!r})
from sfpipe.config import load_settings, LoadPath
from sfpipe.adapters import factory
from sfpipe.adapters.warehouse.duckdb.client import DuckDBWarehouse
from sfpipe.adapters.warehouse.duckdb.session import EmbeddedSession
from sfpipe.events import StorageObject
from sfpipe_loader.loader import Loader
from pathlib import Path
settings = load_settings()
store = factory.object_store(settings)
session = EmbeddedSession({db!r}, settings.warehouse_memory_limit)
warehouse = DuckDBWarehouse(session, store=store, scratch=Path({scratch!r}))
loader = Loader(settings, warehouse, store, None, launcher=lambda: factory.pipeline_launcher(settings))
def cpu(who):
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime
uri = {uri!r}
stat = store.stat(uri)
bucket, name = uri[5:].split("/", 1)
event = StorageObject(bucket=bucket, name=name, generation=stat.generation)
started = time.perf_counter()
own, children = cpu(resource.RUSAGE_SELF), cpu(resource.RUSAGE_CHILDREN)
outcome = loader.load_object_event(event, event.key, forced=LoadPath({path!r}))
seconds = time.perf_counter() - started
cpu_seconds = cpu(resource.RUSAGE_SELF) - own + cpu(resource.RUSAGE_CHILDREN) - children
assert outcome.ok, outcome.summary()
rows = warehouse.scalar("SELECT count(*) FROM `sfpipe_raw.opportunity`")
changes = warehouse.scalar("SELECT count(*) FROM `sfpipe_raw.opportunity__changes`")
warehouse.close()
result = {{
    "seconds": seconds, "cpu_seconds": cpu_seconds, "rows": rows, "changes": changes, "timings": outcome.timings,
    "children_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0,
    "inserted": outcome.objects["Opportunity"].inserted,
}}
"""


GENERATE = """
import os
os.environ.update({env!r})
from sfpipe.adapters import factory
from sfpipe.config import load_settings
from sfpipe.lake import manifest_uri
from sfpipe_loader import lakegen
settings = load_settings()
store = factory.object_store(settings)
store.ensure_bucket(settings.lake_bucket)
tables = lakegen.opportunity_backfill({rows}, {files}, repeated=0.2)
part = lakegen.ObjectPart(tables)
manifest = lakegen.write_run(store, settings.lake_bucket, "20260101T000000Z-be0c4a11", {{"Opportunity": part}})
local = []
for i, f in enumerate(manifest.objects["Opportunity"].files):
    path = os.path.join({workdir!r}, f"part-{{i:05d}}.parquet")
    store.download_file(f.uri, path)
    local.append(path)
result = {{"uri": manifest_uri(settings.lake_bucket, manifest.run_id), "local": local,
           "bytes": sum(f.bytes for f in manifest.objects["Opportunity"].files)}}
"""


def _prepare(workdir: Path) -> tuple[object, dict[str, object], dict[str, str]]:
    """fake-gcs-server with the run in it, and local copies of its files for the reference.

    The rows are generated in a child process: a parent that had held them would pass its
    peak memory on to every child it starts (Linux keeps the high-water mark across exec).
    """
    from sfpipe_devstack.emulators import free_port, start_fake_gcs

    host = "127.0.0.1"
    port = free_port(host)
    server = start_fake_gcs(host, port, workdir / "gcs.log")
    env = {
        "SFPIPE_MODE": "local",
        "SFPIPE_HOME": str(workdir / "home"),
        "SFPIPE_HOST": host,
        "SFPIPE_GCS_PORT": str(port),
        "SFPIPE_LAKE_BUCKET": "bench-lake",
        "SFPIPE_LOG_LEVEL": "WARNING",
        **({"SFPIPE_WAREHOUSE_MEMORY_LIMIT": MEMORY_LIMIT} if MEMORY_LIMIT != "none" else {}),
        "STORAGE_EMULATOR_HOST": f"http://{host}:{port}",
    }
    data = run_isolated(GENERATE.format(env=env, rows=ROWS, files=FILES, workdir=str(workdir)), env=env)
    return server, data, env


def run() -> BenchResult:
    """Measure the reference, the warehouse-native path and the Beam path; ratios and peak memory."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-loader-"))
    server, data, env = _prepare(workdir)
    uri, local = str(data["uri"]), list(data["local"])  # type: ignore[call-overload]
    measured: dict[str, list[dict]] = {"reference": [], "warehouse": [], "beam": []}
    pairs: dict[str, list[float]] = {"warehouse": [], "beam": []}
    cpu_pairs: dict[str, list[float]] = {"warehouse": [], "beam": []}
    try:
        for rep in range(REPEATS):
            for path in ("warehouse", "beam"):
                # each path right after its own reference run: the pair saw the same neighbours
                ref_db = str(workdir / f"ref-{rep}-{path}.duckdb")
                reference = run_isolated(REFERENCE.format(files=local, db=ref_db))
                measured["reference"].append(reference)
                db = str(workdir / f"{path}-{rep}.duckdb")
                code = LOAD.format(env=env, db=db, scratch=str(workdir / "scratch"), uri=uri, path=path)
                outcome = run_isolated(code, env=env)
                measured[path].append(outcome)
                spent = outcome["seconds"] - outcome["timings"].get("pipeline_startup", 0.0)
                pairs[path].append(reference["seconds"] / spent)
                spent_cpu = outcome["cpu_seconds"] - outcome["timings"].get("pipeline_startup_cpu", 0.0)
                cpu_pairs[path].append(reference["cpu_seconds"] / spent_cpu)
                for leftover in workdir.glob("*.duckdb*"):
                    leftover.unlink()
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    ref = min(measured["reference"], key=lambda r: r["seconds"])
    wh = min(measured["warehouse"], key=lambda r: r["seconds"])
    beam = min(measured["beam"], key=lambda r: r["seconds"] - r["timings"].get("pipeline_startup", 0.0))
    ref_rate = ROWS / ref["seconds"]
    wh_rate = ROWS / wh["seconds"]
    beam_startup = beam["timings"].get("pipeline_startup", 0.0)
    beam_after = beam["seconds"] - beam_startup
    beam_rate = ROWS / beam_after
    result = BenchResult("loader")
    result.figures = {
        "rows": ROWS,
        "files": FILES,
        "parquet_bytes": data["bytes"],
        "warehouse_memory_limit": MEMORY_LIMIT,
        "unique_ids": wh["rows"],
        "repeats": REPEATS,
        "reference_seconds": round(ref["seconds"], 3),
        "reference_rows_per_s": round(ref_rate),
        "warehouse_seconds": round(wh["seconds"], 3),
        "warehouse_rows_per_s": round(wh_rate),
        "warehouse_peak_rss_mb": round(max(r["peak_rss_mb"] for r in measured["warehouse"]), 1),
        "beam_seconds_total": round(beam["seconds"], 3),
        "beam_startup_seconds": round(beam_startup, 3),
        "beam_pipeline_run_seconds": round(beam["timings"].get("pipeline_run", 0.0), 3),
        "beam_merge_seconds": round(beam["seconds"] - beam["timings"].get("pipeline_wall", 0.0), 3),
        "beam_after_startup_seconds": round(beam_after, 3),
        "beam_rows_per_s_after_startup": round(beam_rate),
        "beam_loader_peak_rss_mb": round(max(r["peak_rss_mb"] for r in measured["beam"]), 1),
        "beam_pipeline_peak_rss_mb": round(max(r["children_peak_rss_mb"] for r in measured["beam"]), 1),
        "all_seconds": {k: [round(r["seconds"], 3) for r in v] for k, v in measured.items()},
    }
    assert wh["rows"] == beam["rows"] and wh["changes"] == beam["changes"], "the two paths disagree"
    result.figures["pair_ratios"] = {k: [round(r, 3) for r in v] for k, v in pairs.items()}
    result.figures["cpu_pair_ratios"] = {k: [round(r, 3) for r in v] for k, v in cpu_pairs.items()}
    result.figures["wall_median_ratios"] = {k: round(statistics.median(v), 3) for k, v in pairs.items()}
    result.figures["cpu_seconds"] = {
        "reference": [round(r["cpu_seconds"], 2) for r in measured["reference"]],
        "warehouse": [round(r["cpu_seconds"], 2) for r in measured["warehouse"]],
        "beam": [round(r["cpu_seconds"], 2) for r in measured["beam"]],
        "beam_startup": [round(r["timings"].get("pipeline_startup_cpu", 0.0), 2) for r in measured["beam"]],
    }
    result.figures["best_time_ratios"] = {
        "warehouse": round(wh_rate / ref_rate, 3),
        "beam": round(beam_rate / ref_rate, 3),
    }
    wh_ratio, beam_ratio = statistics.median(cpu_pairs["warehouse"]), statistics.median(cpu_pairs["beam"])
    result.target("warehouse_vs_duckdb_insert", wh_ratio, 0.5, higher_is_better=True, unit="ratio")
    result.target("beam_after_startup_vs_duckdb_insert", beam_ratio, 0.3, higher_is_better=True, unit="ratio")
    wh_peak = result.figures["warehouse_peak_rss_mb"]
    result.target("warehouse_peak_rss_mb", wh_peak, 1024, higher_is_better=False, unit="MiB")
    beam_peak = max(result.figures["beam_loader_peak_rss_mb"], result.figures["beam_pipeline_peak_rss_mb"])
    result.target("beam_peak_rss_mb", beam_peak, 1024, higher_is_better=False, unit="MiB")
    return result


if __name__ == "__main__":
    print(json.dumps(run().figures, indent=2))
