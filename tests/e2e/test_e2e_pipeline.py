"""The whole event-driven pipeline, as a user runs it: ``sfpipe demo`` on a fresh home, then ``sfpipe down``.

Everything runs as real processes of the devstack on free ports (Pub/Sub emulator,
fake-gcs-server, the warehouse server, the simulator and every service): the demo posts one
run to the extractor and the events do the rest. The test then checks what a user would
look at — the marts, the quality results, the raw layer against the simulator's truth
export (every record, every field, deletes included), the dashboard in headless Chromium —
runs the demo a second time on the running stack after the org has changed (an incremental
run), and stops the stack, leaving no process behind.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sfpipe.adapters.warehouse.base import TableRef, Warehouse
from sfpipe.adapters.warehouse.duckdb.client import DuckDBWarehouse
from sfpipe.adapters.warehouse.duckdb.session import FlightSession
from sfpipe.config import Settings
from sfpipe_dashboard import browser
from sfpipe_devstack import procs
from sfpipe_devstack.emulators import free_port, port_open
from sfpipe_simulator.client import AdminClient

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
SCALE = 3_000
CHANGES = 400
STAGES = ["extract", "load", "transform", "quality"]


# ---- the stack ---------------------------------------------------------------------------


@pytest.fixture
def stack_env(tmp_path: Path) -> dict[str, str]:
    """A fresh home and a free port for every SFPIPE_*_PORT: nothing shared with a developer's devstack."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SFPIPE_", "PUBSUB_", "STORAGE_EMULATOR"))}
    env.update(
        {
            "SFPIPE_HOME": str(tmp_path / "home"),
            "SFPIPE_PROJECT": "sfpipe-e2e",
            "SFPIPE_HOST": "127.0.0.1",
            "SFPIPE_RETRY_SCALE": "0.01",
            "COLUMNS": "160",
        }
    )
    for name in Settings.model_fields:
        if name.endswith("_port"):
            env[f"SFPIPE_{name.upper()}"] = str(free_port())
    yield env
    home = Path(env["SFPIPE_HOME"])
    if procs.PidDir(home / "run").names():  # a failed test still stops what it started
        sfpipe(env, "down", timeout=60)


def sfpipe(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sfpipe", *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def demo(env: dict[str, str], result: Path, *args: str) -> dict[str, Any]:
    done = sfpipe(env, "demo", "--json", str(result), *args, timeout=420)
    home = Path(env["SFPIPE_HOME"])
    logs = "".join(
        f"\n--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        for log in sorted((home / "logs").glob("*.log"))
    ) if (home / "logs").exists() else ""  # fmt: skip
    assert done.returncode == 0, f"sfpipe demo exited {done.returncode}\n{done.stdout}\n{done.stderr}{logs}"
    (ARTIFACTS / f"{result.stem}.txt").write_text(done.stdout + done.stderr)
    return {"stdout": done.stdout, **json.loads(result.read_text())}


def settings_of(env: dict[str, str]) -> Settings:
    values = {k.removeprefix("SFPIPE_").lower(): v for k, v in env.items() if k.startswith("SFPIPE_")}
    return Settings(**values)


def warehouse_of(s: Settings) -> DuckDBWarehouse:
    url = (s.home / "warehouse.url").read_text().strip()
    return DuckDBWarehouse(FlightSession(url))


def admin_of(s: Settings) -> AdminClient:
    ca = s.home / "simulator" / "tls" / "ca.pem"
    return AdminClient(f"https://{s.host}:{s.simulator_port}", s.simulator_admin_token.get_secret_value(),
                       verify=str(ca))  # fmt: skip


# ---- the raw layer against the org ------------------------------------------------------


def _digest(row: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(row, sort_keys=True, default=str).encode()).hexdigest()


def truth_differences(warehouse: Warehouse, admin: AdminClient, folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Per object, how the raw layer differs from the org's truth export: counts and a hash of every field per Id.

    Every Salesforce column of the truth is compared, soft-deleted records included (the truth
    keeps them with IsDeleted = true). A raw row the org does not have is a difference unless
    the raw layer marks it ``_hard_deleted``: the tombstone of a record purged from the org.
    """
    manifest = admin.export_truth(folder)
    out: dict[str, Any] = {}
    for name, file_name in sorted(manifest["files"].items()):
        truth = pq.read_table(folder / file_name)
        ref = TableRef("sfpipe_raw", name.lower())
        if not warehouse.table_exists(ref):
            out[name] = {"raw table": "missing", "org rows": truth.num_rows}
            continue
        have = {f.name for f in warehouse.table_schema(ref) or []}
        absent = [c for c in truth.column_names if c not in have]
        if absent:
            out[name] = {"columns missing from the raw table": absent}
            continue
        columns = ", ".join(f"`{c}`" for c in truth.column_names)
        raw = warehouse.query(f"SELECT {columns}, COALESCE(`_hard_deleted`, FALSE) AS _hard FROM {ref.sql}")
        purged = {i for i, hard in zip(raw["Id"].to_pylist(), raw["_hard"].to_pylist(), strict=True) if hard}
        raw = pa.table({c: raw[c].cast(truth.schema.field(c).type) for c in truth.column_names})
        want = {r["Id"]: _digest(r) for r in truth.to_pylist()}
        got = {r["Id"]: _digest(r) for r in raw.to_pylist()}
        problems = {
            "missing": sorted(set(want) - set(got))[:5],
            "extra": sorted(set(got) - set(want) - purged)[:5],
            "different": sorted(i for i in set(want) & set(got) if want[i] != got[i])[:5],
        }
        if any(problems.values()):
            out[name] = {"org rows": len(want), "raw rows": len(got), **{k: v for k, v in problems.items() if v}}
    return out, manifest


def converged(warehouse: Warehouse, admin: AdminClient, folder: Path, timeout: float) -> tuple[dict, dict]:
    """The comparison once it shows no difference, or the last one after ``timeout`` (CDC may still be applying)."""
    deadline = time.monotonic() + timeout
    attempt = 0
    while True:
        attempt += 1
        diffs, manifest = truth_differences(warehouse, admin, folder / f"truth-{attempt}")
        if not diffs or time.monotonic() > deadline:
            return diffs, manifest
        time.sleep(3)


def assert_quality_green(warehouse: Warehouse, result: dict[str, Any]) -> None:
    """Every expectation of every suite passed for the demo's run."""
    rows = warehouse.query(
        f"SELECT suite, check_name, success FROM sfpipe_ops.quality_results WHERE run_id = '{result['run_id']}'"
    ).to_pylist()
    assert {r["suite"] for r in rows} == {"raw", "marts", "reconcile"}
    assert [r for r in rows if not r["success"]] == []
    assert result["summary"]["quality"] and all(q["failed"] == 0 for q in result["summary"]["quality"])


# ---- the test ---------------------------------------------------------------------------


def test_make_demo_runs_the_event_driven_pipeline_and_the_raw_layer_equals_the_org(stack_env, tmp_path):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    env = stack_env
    s = settings_of(env)

    # 1. the demo on a fresh home: the stack comes up, one run goes through every stage
    first = demo(env, tmp_path / "demo-first.json", "--scale", str(SCALE))
    assert first["ok"] and first["started_stack"], first
    assert [first["stages"][n]["status"] for n in STAGES] == ["succeeded"] * 4, first["stages"]
    assert first["org"]["scale"] == SCALE
    for name in STAGES:
        assert first["stages"][name]["seconds"] > 0, name
    assert first["stages"]["extract"]["rows"] == first["stages"]["load"]["rows"] == first["org"]["records"]
    when = {n: {k: datetime.fromisoformat(first["stages"][n][k]) for k in ("started_at", "ended_at")} for n in STAGES}
    # each stage started after the one before it ended: the events drove them, one after the other
    for before, after in itertools.pairwise(STAGES):
        assert when[after]["started_at"] >= when[before]["ended_at"] - timedelta(seconds=1), (before, after, when)
    if "reconcile" in first["stages"]:  # the devstack runs the reconciler after each load
        assert first["stages"]["reconcile"]["status"] == "succeeded", first["stages"]["reconcile"]
    reconciled = first["summary"]["reconciliation"]
    if reconciled is not None or "reconcile" in first["stages"]:  # the reconciler, as a service or a command
        assert reconciled and all(not (r["missing"] or r["extra"] or r["stale"]) for r in reconciled), reconciled
        assert "Reconciliation: no difference" in first["stdout"]
    out = first["stdout"]
    assert f"Pipeline run {first['run_id']} succeeded" in out
    assert f"Dashboard: http://127.0.0.1:{env['SFPIPE_DASHBOARD_PORT']}/" in out
    assert "make down" in out and "Sales snapshot" in out and "Quality:" in out

    wh = warehouse_of(s)
    admin = admin_of(s)
    try:
        # 2. quality green: every expectation of every suite passed for this run
        assert_quality_green(wh, first)

        # 3. the org changes (creates, updates, deletes, undeletes); with the CDC path up the
        #    changes stream in, and the demo on the running stack extracts only what changed
        if first["cdc_running"]:
            admin.stop_activity()
        applied = admin.apply_changes(CHANGES)
        assert sum(applied["applied_now"].values()) > 0
        if first["cdc_running"]:
            diffs, _ = converged(wh, admin, tmp_path / "cdc", timeout=90)
            assert diffs == {}, "CDC did not bring the raw layer to the org:\n" + json.dumps(diffs, indent=1)
        second = demo(env, tmp_path / "demo-second.json", "--activity", "0")
        assert second["ok"] and not second["started_stack"], second
        assert second["run_id"] != first["run_id"]
        assert 0 < second["stages"]["extract"]["rows"] < SCALE  # incremental: the window since the first run
        assert_quality_green(wh, second)
        if second["summary"]["reconciliation"] is not None:  # the reconciler agrees, deletes included
            differing = [r for r in second["summary"]["reconciliation"] if r["missing"] or r["extra"] or r["stale"]]
            assert differing == [], "reconciliation after the changes:\n" + json.dumps(differing, indent=1)

        # 4. the raw layer equals the org: every record and field, soft-deleted ones flagged
        diffs, manifest = converged(wh, admin, tmp_path / "batch", timeout=30)
        assert diffs == {}, json.dumps(diffs, indent=1, default=str)
        deleted = wh.scalar(
            "SELECT COUNT(*) FROM sfpipe_raw.account WHERE IsDeleted AND NOT COALESCE(_hard_deleted, FALSE)"
        )
        assert deleted and deleted > 0  # deletes are part of what was compared
        assert sum(manifest["rows"].values()) >= SCALE

        # 5. marts populated, and they agree with the raw layer they were built from
        snapshot = wh.query("SELECT * FROM sfpipe_marts.salesforce__sales_snapshot").to_pylist()
        assert len(snapshot) == 1
        won = wh.scalar(
            "SELECT COUNT(*) FROM sfpipe_raw.opportunity WHERE IsWon AND NOT IsDeleted "
            "AND NOT COALESCE(_hard_deleted, FALSE)"
        )
        assert won and snapshot[0]["total_number_bookings"] == won
        live_opps = wh.scalar(
            "SELECT COUNT(*) FROM sfpipe_raw.opportunity WHERE NOT IsDeleted AND NOT COALESCE(_hard_deleted, FALSE)"
        )
        assert wh.scalar("SELECT COUNT(*) FROM sfpipe_marts.salesforce__opportunity_enhanced") == live_opps
        assert wh.scalar("SELECT COUNT(*) FROM sfpipe_marts.salesforce__owner_performance") > 0
        assert second["summary"]["snapshot"]["total_number_bookings"] == won

        # 6. the dashboard draws every chart from the pipeline's tables in headless Chromium
        binary = browser.require_chromium()
        shot = ARTIFACTS / "dashboard.png"
        shot.unlink(missing_ok=True)
        rendered = browser.render(second["dashboard_url"], screenshot=shot, binary=binary)
        report = browser.inspect_dom(rendered.dom)
        charts = {"chart-runs", "chart-stages", "chart-bookings", "chart-owners"}
        if second["cdc_running"]:
            charts.add("chart-cdc")
        assert charts <= set(report.charts_drawn()), (report.plot_containers, report.main_svgs)
        for panel in ("runs", "quality", "freshness", "pipeline_by_stage", "bookings_by_month", "win_by_owner"):
            assert report.panel_states.get(panel) == "ok", report.panel_states
        assert report.attributes["health"]["data-status"] == "healthy", report.attributes.get("health")
        assert browser.png_size(shot) == (1600, 1100) and shot.stat().st_size > 50_000
    finally:
        wh.close()

    # 7. sfpipe down stops everything the demo started
    records = {n: r for n in procs.PidDir(s.home / "run").names() if (r := procs.PidDir(s.home / "run").read(n))}
    assert {"pubsub", "gcs", "warehouse", "simulator", "extractor", "loader", "transform", "quality"} <= set(records)
    down = sfpipe(env, "down", timeout=60)
    assert down.returncode == 0, down.stdout + down.stderr
    assert procs.PidDir(s.home / "run").names() == []
    for name, record in records.items():
        assert not procs.group_alive(record.pgid), name
    for key, value in env.items():
        if key.startswith("SFPIPE_") and key.endswith("_PORT"):
            assert not port_open("127.0.0.1", int(value)), key
    assert procs.processes_mentioning(str(s.home)) == []


def test_a_stage_that_keeps_failing_makes_the_demo_exit_1_naming_it(stack_env, tmp_path):
    """Quality refuses its event (a suite that does not exist): Pub/Sub retries, then dead-letters it."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    env = {**stack_env, "SFPIPE_QUALITY_SUITES": "raw,no_such_suite"}
    result_file = tmp_path / "demo-failing.json"
    done = sfpipe(env, "demo", "--scale", "1000", "--down", "--json", str(result_file), timeout=420)
    (ARTIFACTS / "demo-failing.txt").write_text(done.stdout + done.stderr)
    assert done.returncode == 1, done.stdout + done.stderr
    result = json.loads(result_file.read_text())
    assert not result["ok"]
    assert [result["stages"][n]["status"] for n in STAGES] == ["succeeded", "succeeded", "succeeded", "failed"]
    assert [f["stage"] for f in result["failures"]] == ["quality"]
    reason = result["failures"][0]["reason"]
    assert "dead-lettered" in reason and "no_such_suite" in reason, reason
    assert "✗ quality failed:" in done.stdout and "no_such_suite" in done.stdout
    assert "quality.log" in done.stdout  # where to look
    # --down: nothing is left running
    home = Path(env["SFPIPE_HOME"])
    assert procs.PidDir(home / "run").names() == []
    assert procs.processes_mentioning(str(home)) == []
