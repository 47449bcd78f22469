"""Simulator benchmarks: generation speed and memory, REST query pages and Bulk 2.0 CSV over HTTPS.

Targets (issue 4): generate 1,000,000 records in <= 60 s with peak memory <= 1 GB (also checked at
10,000,000); >= 50,000 records/s through REST query pages of 2,000 to one client; >= 150,000
records/s through Bulk 2.0 CSV results. The server runs as its own process (``python -m
sfpipe_simulator``) and the client is simple-salesforce over real HTTPS, as the extractor would
use it. References measured in the same run: DuckDB writing as many synthetic rows to Parquet
(generation), and the same HTTP requests with the body discarded unparsed (REST and Bulk).
"""

from __future__ import annotations

import csv
import io
import os
import re
import resource
import tempfile
import time
from pathlib import Path

from bench.harness import BenchResult, peak_rss_mb, run_isolated

GENERATE_CODE = """
import time, tempfile, shutil
from pathlib import Path
from sfpipe_simulator.generator import OrgPlan, write_parquet
out = Path(tempfile.mkdtemp(prefix='bench-gen-'))
started = time.perf_counter()
manifest = write_parquet(OrgPlan.build(1, {scale}), out)
seconds = time.perf_counter() - started
size = sum(p.stat().st_size for p in out.rglob('*.parquet'))
shutil.rmtree(out)
result = {{'seconds': seconds, 'records': sum(manifest['counts'].values()), 'bytes': size}}
"""

DUCKDB_REFERENCE_CODE = """
import time, tempfile, shutil, duckdb
from pathlib import Path
out = Path(tempfile.mkdtemp(prefix='bench-ref-'))
cols = ', '.join([f"'word' || (i * {{k}} % 997)::VARCHAR AS s{{k}}"
                  for k in range(20)]
                 + [f"(i * {{k}} % 1000)::DOUBLE AS d{{k}}" for k in range(10)]
                 + [f"TIMESTAMP '2020-01-01' + to_seconds(i * {{k}} % 100000000) AS t{{k}}" for k in range(5)])
started = time.perf_counter()
sql = f"COPY (SELECT {{cols}} FROM range({rows}) r(i)) TO '{{out}}/ref.parquet' (FORMAT PARQUET, COMPRESSION ZSTD)"
duckdb.connect().execute(sql)
seconds = time.perf_counter() - started
shutil.rmtree(out)
result = {{'seconds': seconds}}
"""


def _fields(sf, name: str) -> list[str]:
    return [f["name"] for f in getattr(sf, name).describe()["fields"] if f["type"] not in {"address", "location"}]


def _rest(sim, soql: str) -> tuple[int, float]:
    sf = sim.salesforce(version="59.0")
    started = time.perf_counter()
    count = 0
    for _ in sf.query_all_iter(soql):
        count += 1
    return count, time.perf_counter() - started


def _rest_raw(sim, soql: str) -> tuple[int, float]:
    """The reference: the same page requests, bodies read and discarded (no JSON parsing)."""
    session = sim.requests_session()
    session.headers["Authorization"] = f"Bearer {sim.login()}"
    started = time.perf_counter()
    first = session.get(f"{sim.url}/services/data/v59.0/query/", params={"q": soql}).json()
    nxt = first.get("nextRecordsUrl")
    while nxt:
        head = session.get(sim.url + nxt).content[:300]
        found = re.search(rb'"nextRecordsUrl":"([^"]+)"', head)
        nxt = found.group(1).decode() if found else None
    return first["totalSize"], time.perf_counter() - started


def _platform_client(sim):
    from sfpipe.salesforce.auth import PasswordLogin
    from sfpipe.salesforce.client import SalesforceClient

    c = sim.config
    auth = PasswordLogin(sim.url, c.client_id, c.client_secret, c.username, c.password)
    return SalesforceClient(auth, api_version="59.0", verify=str(sim.ca_file))


def _rest_platform(sim, soql: str) -> tuple[int, float]:
    """sfpipe's own Salesforce client (what the extractor uses: orjson pages)."""
    client = _platform_client(sim)
    client.login()
    started = time.perf_counter()
    count = sum(len(page.records) for page in client.query_pages(soql))
    return count, time.perf_counter() - started


def _bulk_platform(sim, soql: str, max_records: int) -> tuple[int, float]:
    """sfpipe's own client: create, poll, page through the CSV; each page parsed by Arrow."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    client = _platform_client(sim)
    client.login()
    started = time.perf_counter()
    job = client.create_query_job(soql)
    client.wait_for_query_job(job.id)
    count = 0
    options = pacsv.ConvertOptions(column_types=None, strings_can_be_null=True)
    for page in client.query_job_pages(job.id, max_records=max_records):
        table = pacsv.read_csv(pa.py_buffer(page.data), convert_options=options,
                               parse_options=pacsv.ParseOptions(newlines_in_values=True))
        count += table.num_rows
    return count, time.perf_counter() - started


def _bulk(sim, name: str, soql: str, max_records: int) -> tuple[int, float]:
    sf = sim.salesforce(version="59.0")
    started = time.perf_counter()
    count = 0
    for page in getattr(sf.bulk2, name).query(soql, max_records=max_records, wait=0.05):
        count += sum(1 for _ in csv.reader(io.StringIO(page, newline=""))) - 1
    return count, time.perf_counter() - started


def _bulk_raw(sim, soql: str, max_records: int) -> tuple[int, float]:
    """The reference: create, poll, download every page; bytes discarded, CSV not parsed."""
    session = sim.requests_session()
    session.headers["Authorization"] = f"Bearer {sim.login()}"
    base = f"{sim.url}/services/data/v59.0/jobs/query"
    started = time.perf_counter()
    job = session.post(base, json={"operation": "query", "query": soql}).json()["id"]
    while session.get(f"{base}/{job}").json()["state"] != "JobComplete":
        time.sleep(0.05)
    count, locator = 0, None
    while True:
        params = {"maxRecords": max_records, **({"locator": locator} if locator else {})}
        response = session.get(f"{base}/{job}/results", params=params)
        count += int(response.headers["Sforce-NumberOfRecords"])
        locator = response.headers["Sforce-Locator"]
        if locator == "null":
            break
    return count, time.perf_counter() - started


def run() -> BenchResult:
    """All simulator targets."""
    result = BenchResult("simulator")

    gen = run_isolated(GENERATE_CODE.format(scale=1_000_000))
    ref = run_isolated(DUCKDB_REFERENCE_CODE.format(rows=1_000_000))
    result.figures["generate_1m"] = gen
    result.figures["duckdb_parquet_1m_35_columns"] = ref
    result.figures["generate_vs_duckdb_ratio"] = round(gen["seconds"] / ref["seconds"], 2)
    result.target("generate_1m_seconds", gen["seconds"], 60, higher_is_better=False, unit="s")
    result.target("generate_1m_peak_mb", gen["peak_rss_mb"], 1024, higher_is_better=False, unit="MiB")
    big = run_isolated(GENERATE_CODE.format(scale=10_000_000))
    result.figures["generate_10m"] = big
    result.target("generate_10m_peak_mb", big["peak_rss_mb"], 1024, higher_is_better=False, unit="MiB")

    from sfpipe_simulator.server import SimulatorConfig, SimulatorProcess

    with tempfile.TemporaryDirectory(prefix="bench-sim-") as folder:
        config = SimulatorConfig(seed=1, scale=1_000_000, data_dir=Path(folder))
        started = time.perf_counter()
        with SimulatorProcess(config) as sim:
            result.figures["serve_1m_start_seconds"] = round(time.perf_counter() - started, 2)
            sf = sim.salesforce(version="59.0")
            fields = _fields(sf, "Contact")
            soql = f"SELECT {', '.join(fields)} FROM Contact"
            result.figures["query"] = f"SELECT <{len(fields)} fields> FROM Contact (every stored field)"
            _rest(sim, "SELECT Id FROM Contact LIMIT 10")  # warm the connection and caches
            runs = {
                "rest_raw_reference": (lambda: _rest_raw(sim, soql), "page bodies read, not parsed"),
                "rest_sfpipe_client": (lambda: _rest_platform(sim, soql), "sfpipe SalesforceClient.query_pages"),
                "rest_simple_salesforce": (lambda: _rest(sim, soql), "simple-salesforce query_all_iter "
                                           "(OrderedDict parsing)"),
                "bulk_raw_reference": (lambda: _bulk_raw(sim, soql, 50_000), "job + pages, bodies not parsed"),
                "bulk_sfpipe_client": (lambda: _bulk_platform(sim, soql, 50_000), "sfpipe SalesforceClient bulk "
                                       "pages, CSV parsed by Arrow"),
                "bulk_simple_salesforce": (lambda: _bulk(sim, "Contact", soql, 50_000), "simple-salesforce bulk2 "
                                           "query, CSV parsed by the csv module"),
            }
            for name, (measure, client) in runs.items():
                result.figures[name] = _measured(sim, measure, client)
            figures = result.figures
            counts = {figures[name]["records"] for name in runs}
            assert len(counts) == 1, counts
            for kind in ("rest", "bulk"):
                client_rate = figures[f"{kind}_sfpipe_client"]["records_per_second"]
                raw_rate = figures[f"{kind}_raw_reference"]["records_per_second"]
                figures[f"{kind}_vs_raw_ratio"] = round(client_rate / raw_rate, 3)
            result.target("rest_records_per_second", figures["rest_sfpipe_client"]["records_per_second"], 50_000,
                          higher_is_better=True, unit="records/s")
            result.target("bulk_records_per_second", figures["bulk_sfpipe_client"]["records_per_second"], 150_000,
                          higher_is_better=True, unit="records/s")
    result.figures["bench_client_peak_mb"] = round(peak_rss_mb(), 1)
    return result


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _measured(sim, measure, client: str) -> dict[str, object]:
    """Wall time, plus the CPU that server and client each used and the machine's load.

    ``records_per_cpu_bound_second`` = records / max(server CPU, client CPU): the rate two
    dedicated cores would give (server and client overlap through the pipelined cursor). On a
    shared machine the wall-clock rate is lower by the share of CPU others take.
    """
    server_before = _cpu_seconds(sim.proc.pid)
    own_before = resource.getrusage(resource.RUSAGE_SELF)
    load_before = os.getloadavg()[0]
    records, seconds = measure()
    own_after = resource.getrusage(resource.RUSAGE_SELF)
    server_cpu = _cpu_seconds(sim.proc.pid) - server_before
    client_cpu = (own_after.ru_utime + own_after.ru_stime) - (own_before.ru_utime + own_before.ru_stime)
    out = _figure(records, seconds, client)
    out.update({"server_cpu_seconds": round(server_cpu, 2), "client_cpu_seconds": round(client_cpu, 2),
                "records_per_cpu_bound_second": round(records / max(server_cpu, client_cpu, 1e-6)),
                "load_average": round(max(load_before, os.getloadavg()[0]), 2)})  # fmt: skip
    return out


def _figure(records: int, seconds: float, client: str) -> dict[str, object]:
    return {"records": records, "seconds": round(seconds, 2), "records_per_second": round(records / seconds),
            "client": client}
