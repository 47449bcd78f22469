"""Many OS processes write to the local warehouse at once: no lock errors, no lost rows.

Each writer and the reader is its own interpreter that finds the warehouse server the way
a service does (``<home>/warehouse.url``). Without the server, a second process cannot
even open the DuckDB file: that is why the server exists (docs/adr/0011).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from sfpipe.adapters.warehouse.duckdb.client import DuckDBWarehouse
from sfpipe.adapters.warehouse.duckdb.session import EmbeddedSession, FlightSession
from sfpipe_devstack.emulators import free_port
from sfpipe_devstack.loadgen import APPEND_EVERY, APPEND_ROWS, COUNTERS, ROWS, expected_counter, expected_rows
from sfpipe_devstack.testing import warehouse_server_process

pytestmark = pytest.mark.integration

WRITERS = 4
WRITES = 150


def _env(home) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SFPIPE_")}
    env.update({"SFPIPE_HOME": str(home), "SFPIPE_LOG_FORMAT": "text"})
    return env


def _role(home, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "sfpipe_devstack.loadgen", *args],
        env=_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _result(proc: subprocess.Popen[str], timeout: float = 300) -> dict:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def test_concurrent_writer_processes_through_the_server_lose_nothing(tmp_path):
    home = tmp_path / "home"
    with warehouse_server_process(home, free_port()) as url:
        assert _result(_role(home, "setup"))["session"] == "FlightSession"  # found through warehouse.url
        stop = tmp_path / "stop-reading"
        reader = _role(home, "reader", "--until", str(stop))
        writers = [_role(home, "writer", "--id", str(w), "--writes", str(WRITES)) for w in range(WRITERS)]
        results = [_result(p) for p in writers]
        stop.touch()
        read = _result(reader)

        check = DuckDBWarehouse(FlightSession(url))
        rows = check.query(f"SELECT writer, seq, kind, count(*) AS n FROM {ROWS.sql} GROUP BY writer, seq, kind")
        counter = check.scalar(f"SELECT n FROM {COUNTERS.sql} WHERE id = 0")
        total = check.scalar(f"SELECT count(*) FROM {ROWS.sql}")
        check.close()

    assert [r["errors"] for r in results] == [[]] * WRITERS
    assert {r["session"] for r in results} == {"FlightSession"}
    assert int(str(total)) == expected_rows(WRITERS, WRITES)
    assert int(str(counter)) == expected_counter(WRITERS, WRITES)  # no lost read-modify-write
    keys = zip(rows.column("writer").to_pylist(), rows.column("seq").to_pylist(), strict=True)
    per_write = dict(zip(keys, rows.column("n").to_pylist(), strict=True))
    assert set(per_write) == {(w, s) for w in range(WRITERS) for s in range(WRITES)}  # nothing lost
    for (_, seq), n in per_write.items():  # nothing doubled
        assert n == (APPEND_ROWS if seq % APPEND_EVERY == APPEND_EVERY - 1 else 1)
    assert read["errors"] == []
    assert read["went_down"] == 0
    assert read["reads"] > 0
    busiest = max(r["seconds"] for r in results)
    print(
        f"\n{WRITERS} writers x {WRITES} writes: slowest writer {busiest:.2f}s "
        f"({WRITERS * WRITES / busiest:.0f} writes/s together); reader {read['reads']} counts; "
        f"writer p50/p99 ms {[(r['p50_ms'], r['p99_ms']) for r in results]}"
    )


def test_without_the_server_a_second_process_cannot_open_the_file(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    holder = EmbeddedSession(path)
    try:
        code = (
            "import sys\n"
            "from sfpipe.adapters.warehouse.duckdb.session import EmbeddedSession\n"
            "from sfpipe.errors import TransientError\n"
            f"try:\n    EmbeddedSession({str(path)!r})\nexcept TransientError as exc:\n"
            "    print(exc); sys.exit(3)\n"
        )
        other = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=_env(tmp_path)
        )
    finally:
        holder.close()
    assert other.returncode == 3, other.stderr
    assert "held by another process" in other.stdout


def test_the_server_keeps_to_the_configured_memory_limit(tmp_path):
    from sfpipe.adapters.warehouse.duckdb import engine

    expected = engine.connect(":memory:", "300MB").execute("SELECT current_setting('memory_limit')").fetchone()
    default = engine.connect(":memory:").execute("SELECT current_setting('memory_limit')").fetchone()
    assert expected != default
    env = {"SFPIPE_WAREHOUSE_MEMORY_LIMIT": "300MB"}
    with warehouse_server_process(tmp_path / "home", free_port(), env=env) as url:
        check = DuckDBWarehouse(FlightSession(url))
        limit = check.scalar("SELECT current_setting('memory_limit') AS m")
        check.close()
    assert (limit,) == expected
