"""Extractor throughput and memory: Opportunity at 1,000,000 records, simulator → Parquet on fake-gcs-server.

Figures, all measured in the same run against the same simulator process:

- ``raw_bulk_records_per_s``: run the extract's own query as a Bulk API 2.0 job and fetch its
  result chunks, reading each in 1 MiB blocks and discarding them (the reference: what the
  simulator and the network give);
- ``extract_records_per_s``: ``Extractor.run(["Opportunity"], mode="full")`` end to end (describe,
  COUNT(), Bulk job, CSV → Arrow, zstd Parquet streamed to fake-gcs-server, manifest, watermark,
  event), in a fresh interpreter whose peak RSS is the memory figure;
- the same two over REST ``queryAll`` pages on a 100,000-row window, and the raw rates of
  simple-salesforce 1.12 on the same pages, for ADR 0060.

The simulator serves a 100,000-record org whose Opportunity count is set to 1,000,000 on its own
(``counts={"Opportunity": 1_000_000}``); the other objects keep a 100,000-record org's size.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from bench.harness import BenchResult, run_isolated

OPPORTUNITIES = 1_000_000
REST_WINDOW_ROWS = 100_000
SEED = 5
ROUNDS = 3

SIMULATOR = """
from pathlib import Path
from sfpipe_simulator.server import SimulatorConfig, serve_forever

serve_forever(SimulatorConfig(seed={seed}, scale=100_000, port={port}, data_dir=Path({data_dir!r}), store="file",
                              memory_limit="4GB", counts={{"Opportunity": {opportunities}}}))
"""

COMMON = """
import time
from sfpipe.config import load_settings
from sfpipe.salesforce.client import SalesforceClient
from sfpipe.salesforce.types import fields_from_describe, queryable_fields
settings = load_settings()
client = SalesforceClient.from_settings(settings)
fields = [f.name for f in queryable_fields(fields_from_describe(client.describe("Opportunity")))]
query = "SELECT " + ", ".join(fields) + " FROM Opportunity"
"""

RAW_BULK = COMMON + """
started = time.perf_counter()
rows = chunks = size = 0
job = client.create_query_job(query, include_deleted=True)
client.wait_for_query_job(job.id)
locator = None
while True:
    chunk = client.open_query_job_results(job.id, locator=locator, max_records=settings.bulk_page_records)
    while block := chunk.stream.read(1 << 20):
        size += len(block)
    chunk.close()
    rows += chunk.records
    chunks += 1
    locator = chunk.locator
    if locator is None:
        break
client.delete_query_job(job.id)
result = {"rows": rows, "chunks": chunks, "bytes": size, "seconds": time.perf_counter() - started}
"""

RAW_REST = COMMON + """
started = time.perf_counter()
rows = pages = 0
for page in client.query_pages(query + " LIMIT {limit}", include_deleted=True):
    rows += len(page.records)
    pages += 1
result = {{"rows": rows, "pages": pages, "seconds": time.perf_counter() - started}}
"""

RAW_SIMPLE_SALESFORCE = COMMON + """
import os
from simple_salesforce import Salesforce
os.environ["REQUESTS_CA_BUNDLE"] = settings.sf_verify_tls  # simple-salesforce leaves verification to requests
session = __import__("requests").Session()
session.verify = settings.sf_verify_tls
sf = Salesforce(instance_url=client.instance_url, session_id=client.token.access_token, session=session,
                version=settings.sf_api_version)
started = time.perf_counter()
rows = sum(1 for _ in sf.query_all_iter(query + " LIMIT {limit}", include_deleted=True))
rest_seconds = time.perf_counter() - started
started = time.perf_counter()
bulk_rows = 0
for chunk in sf.bulk2.Opportunity.query(query, max_records=settings.bulk_page_records, wait=0.05):
    bulk_rows += chunk.count("\\n") - 1
bulk_seconds = time.perf_counter() - started
result = {{"rows": rows, "seconds": rest_seconds, "bulk_rows": bulk_rows, "bulk_seconds": bulk_seconds}}
"""

EXTRACT = """
import time
from sfpipe.config import load_settings
from sfpipe.adapters.factory import object_store
from sfpipe.salesforce.client import SalesforceClient
from sfpipe_extractor.engine import Extractor
settings = load_settings()
extractor = Extractor(SalesforceClient.from_settings(settings), object_store(settings), settings)
started = time.perf_counter()
report = extractor.run(["Opportunity"], mode="full")
seconds = time.perf_counter() - started
entry = report.objects["Opportunity"]
result = {"status": report.status, "error": report.error or entry.error, "rows": entry.rows, "api": entry.api,
          "seconds": seconds, "files": len(entry.entry.files) if entry.entry else 0,
          "parquet_bytes": sum(f.bytes for f in entry.entry.files) if entry.entry else 0}
"""


def _free_port() -> int:
    from sfpipe_devstack.emulators import free_port

    return free_port("127.0.0.1")


def _start_simulator(data_dir: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    port = _free_port()
    code = SIMULATOR.format(opportunities=OPPORTUNITIES, seed=SEED, port=port, data_dir=str(data_dir))
    log = (data_dir / "simulator.log").open("ab")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "SFPIPE_LOG_LEVEL": "WARNING"}, start_new_session=True)  # fmt: skip
    url, ca = f"https://127.0.0.1:{port}", data_dir / "tls" / "ca.pem"
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            msg = f"the simulator exited ({proc.returncode}); see {data_dir / 'simulator.log'}"
            raise RuntimeError(msg)
        if ca.exists():
            try:
                if requests.get(f"{url}/healthz", verify=str(ca), timeout=2).status_code == 200:
                    return proc, url, str(ca)
            except requests.RequestException:
                pass
        time.sleep(0.5)
    msg = "the simulator did not start within 15 minutes"
    raise RuntimeError(msg)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    from sfpipe_devstack.emulators import stop_group

    stop_group(proc.pid, 20)


def _step(name: str, code: str, env: dict[str, str]) -> dict[str, Any]:
    result = run_isolated(code, env=env)
    print(f"  {name}: {json.dumps(result)}", file=sys.stderr, flush=True)
    return result


def run() -> BenchResult:
    from google.cloud import pubsub_v1

    from sfpipe.events import EventType
    from sfpipe.topology import load_topology
    from sfpipe_devstack.emulators import start_fake_gcs, start_pubsub_emulator

    bench = BenchResult("extractor")
    with tempfile.TemporaryDirectory(prefix="bench-extractor-") as tmp:
        root = Path(tmp)
        pubsub = start_pubsub_emulator("127.0.0.1", _free_port(), root / "pubsub", root / "pubsub.log")
        gcs = start_fake_gcs("127.0.0.1", _free_port(), root / "gcs.log")
        started = time.perf_counter()
        sim, url, ca = _start_simulator(root)
        simulator_start = time.perf_counter() - started
        try:
            env = {
                "SFPIPE_MODE": "local",
                "SFPIPE_HOME": str(root / "home"),
                "SFPIPE_HOST": "127.0.0.1",
                "SFPIPE_PUBSUB_PORT": str(pubsub.port),
                "SFPIPE_GCS_PORT": str(gcs.port),
                "SFPIPE_PROJECT": "sfpipe-bench",
                "SFPIPE_LAKE_BUCKET": "bench-lake",
                "SFPIPE_STATE_BUCKET": "bench-state",
                "SFPIPE_SF_LOGIN_URL": url,
                "SFPIPE_SF_VERIFY_TLS": ca,
                "SFPIPE_LOG_LEVEL": "WARNING",
                "PUBSUB_EMULATOR_HOST": f"127.0.0.1:{pubsub.port}",
            }
            os.environ["PUBSUB_EMULATOR_HOST"] = env["PUBSUB_EMULATOR_HOST"]
            publisher = pubsub_v1.PublisherClient()
            topic = load_topology().topic_for(EventType.EXTRACT_COMPLETED)
            publisher.create_topic(name=publisher.topic_path("sfpipe-bench", topic))
            from sfpipe.adapters.factory import object_store
            from sfpipe.config import load_settings

            store = object_store(load_settings(**{k[7:].lower(): v for k, v in env.items() if k.startswith("SFPIPE_")}))
            store.ensure_bucket("bench-lake")
            store.ensure_bucket("bench-state", versioned=True)

            raws, extracts = [], []
            for round_ in range(1, ROUNDS + 1):
                raws.append(_step(f"raw bulk {round_}", RAW_BULK, env))
                extracts.append(_step(f"extract {round_}", EXTRACT, env))
            raws.append(_step(f"raw bulk {ROUNDS + 1}", RAW_BULK, env))
            raw_rest = _step("raw REST", RAW_REST.format(limit=REST_WINDOW_ROWS), env)
            simple = _step("simple-salesforce", RAW_SIMPLE_SALESFORCE.format(limit=REST_WINDOW_ROWS), env)
        finally:
            _stop(sim)
            gcs.stop()
            pubsub.stop()
            os.environ.pop("PUBSUB_EMULATOR_HOST", None)

    raw_rates = [r["rows"] / r["seconds"] for r in raws]
    extract_rates = [e["rows"] / e["seconds"] for e in extracts]
    # each extract against the raw fetches just before and after it (the machine's load drifts)
    ratios = [rate / max(raws[i]["rows"] / raws[i]["seconds"], raws[i + 1]["rows"] / raws[i + 1]["seconds"])
              for i, rate in enumerate(extract_rates)]  # fmt: skip
    extract_rate = statistics.median(extract_rates)
    ratio = statistics.median(ratios)
    peak = max(e["peak_rss_mb"] for e in extracts)
    figures: dict[str, Any] = {
        "opportunities": OPPORTUNITIES,
        "rounds": ROUNDS,
        "simulator_start_seconds": round(simulator_start, 1),
        "raw_bulk_records_per_s": [round(r) for r in raw_rates],
        "raw_bulk_chunks": raws[0]["chunks"],
        "raw_bulk_csv_mb": round(raws[0]["bytes"] / 2**20, 1),
        "extract_records_per_s": [round(r) for r in extract_rates],
        "extract_seconds": [round(e["seconds"], 2) for e in extracts],
        "extract_over_raw": [round(r, 3) for r in ratios],
        "extract_parquet_mb": round(extracts[0]["parquet_bytes"] / 2**20, 1),
        "extract_files": extracts[0]["files"],
        "extract_peak_rss_mb": [round(e["peak_rss_mb"], 1) for e in extracts],
        "raw_bulk_peak_rss_mb": round(max(r["peak_rss_mb"] for r in raws), 1),
        "raw_rest_records_per_s": round(raw_rest["rows"] / raw_rest["seconds"]),
        "simple_salesforce_rest_records_per_s": round(simple["rows"] / simple["seconds"]),
        "simple_salesforce_bulk_records_per_s": round(simple["bulk_rows"] / simple["bulk_seconds"]),
        "load_average_after": os.getloadavg()[0],
    }
    bench.figures.update(figures)
    print(json.dumps(figures, indent=2), file=sys.stderr)
    ok = all(e["status"] == "completed" and e["rows"] >= OPPORTUNITIES for e in extracts)
    bench.target("extract_completed_all_rows", 1.0 if ok else 0.0, 1.0, higher_is_better=True)
    bench.target("extract_records_per_s_median", extract_rate, 40_000, higher_is_better=True, unit="records/s")
    bench.target("extract_over_raw_fetch_median", ratio, 0.70, higher_is_better=True)
    bench.target("extract_peak_rss_mb", peak, 500, higher_is_better=False, unit="MiB")
    return bench
