"""Demo benchmark: ``sfpipe demo`` at its default scale, as a user runs it, on a fresh home.

Each run is ``sfpipe demo --down --json`` in its own interpreter with a fresh home and free
ports: the devstack comes up, the simulator generates the org, one run is posted to the
extractor, and the events drive load, transform and quality. Figures per run: set-up time,
the pipeline's time after set-up (target ≤ 90 s), each stage's own duration, the gaps between
stages (event delivery and start-up of the next handler), the CDC lag when that path runs, the
whole devstack's peak resident memory (sampled across every process group the supervisor
started) and the machine's load average.

Reference, same run: the sum of the stages' own durations — the pipeline can be no faster
than its stages back to back, so ``pipeline / stages`` is what the event-driven hand-offs cost.
"""

from __future__ import annotations

import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.harness import BenchResult

ROOT = Path(__file__).resolve().parents[1]
RUNS = int(os.environ.get("SFPIPE_BENCH_DEMO_RUNS", "2"))
SCALE = os.environ.get("SFPIPE_BENCH_DEMO_SCALE")  # unset: the demo's default
STAGES = ("extract", "load", "transform", "quality")


def _free_ports() -> dict[str, str]:
    from sfpipe.config import Settings
    from sfpipe_devstack.emulators import free_port

    return {f"SFPIPE_{n.upper()}": str(free_port()) for n in Settings.model_fields if n.endswith("_port")}


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0


class StackMemory:
    """Samples the resident memory of every process group the devstack's pid files name."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        from sfpipe_devstack import procs

        while not self._stop.wait(0.5):
            pids = procs.PidDir(self.home / "run")
            groups = {r.pgid for n in pids.names() if (r := pids.read(n)) is not None}
            total = sum(_rss_kb(pid) for pgid in groups for pid in procs.group_members(pgid))
            self.peak_kb = max(self.peak_kb, total)

    def __enter__(self) -> StackMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def one_run(index: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="sfpipe-bench-demo-") as tmp:
        home = Path(tmp) / "home"
        result_file = Path(tmp) / "demo.json"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SFPIPE_", "PUBSUB_", "STORAGE_EMULATOR"))}
        env.update(_free_ports())
        env.update({"SFPIPE_HOME": str(home), "SFPIPE_PROJECT": f"sfpipe-bench-demo-{index}", "COLUMNS": "160"})
        args = [sys.executable, "-m", "sfpipe", "demo", "--down", "--json", str(result_file)]
        if SCALE:
            args += ["--scale", SCALE]
        load_before = os.getloadavg()[0]
        started = time.perf_counter()
        with StackMemory(home) as memory:
            done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=1800, check=False, cwd=ROOT)
        wall = time.perf_counter() - started
        if not result_file.exists():
            msg = f"sfpipe demo exited {done.returncode} without a result:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
            raise RuntimeError(msg)
        result = json.loads(result_file.read_text())
    stages = result["stages"]
    own = {n: stages[n]["seconds"] or 0.0 for n in STAGES}
    beside = {n: stages[n]["seconds"] for n in stages if n not in STAGES}  # the reconciler, next to transform
    gaps = {}
    for before, after in itertools.pairwise(STAGES):
        if stages[after]["started_at"] and stages[before]["ended_at"]:
            start, end = stages[after]["started_at"], stages[before]["ended_at"]
            gap = datetime.fromisoformat(start) - datetime.fromisoformat(end)
            gaps[f"{before}->{after}"] = round(gap.total_seconds(), 3)
    cdc = (result.get("summary") or {}).get("cdc")
    return {
        "ok": result["ok"],
        "exit_code": done.returncode,
        "failures": result["failures"],
        "scale": result["org"]["scale"],
        "records": result["org"]["records"],
        "setup_seconds": result["setup_seconds"],
        "pipeline_seconds": result["pipeline_seconds"],
        "stage_seconds": own,
        "parallel_stage_seconds": beside,
        "stage_rows": {n: stages[n]["rows"] for n in STAGES},
        "gaps_seconds": gaps,
        "stages_sum_seconds": round(sum(own.values()), 3),
        "cdc_running": result["cdc_running"],
        "cdc": {k: cdc[k] for k in ("changes", "p50_ms", "p99_ms")} if cdc else None,
        "command_wall_seconds": round(wall, 3),
        "peak_stack_rss_mb": round(memory.peak_kb / 1024, 1),
        "load_average_before": round(load_before, 2),
        "load_average_after": round(os.getloadavg()[0], 2),
    }


def run() -> BenchResult:
    result = BenchResult("demo")
    runs = [one_run(i) for i in range(RUNS)]
    result.figures["runs"] = runs
    ok = [r for r in runs if r["ok"]]
    result.figures["all_succeeded"] = len(ok) == len(runs)
    measured = ok or runs
    pipeline = statistics.median(r["pipeline_seconds"] for r in measured)
    ratio = statistics.median(r["pipeline_seconds"] / max(r["stages_sum_seconds"], 1e-9) for r in measured)
    result.figures.update(
        {
            "scale": measured[0]["scale"],
            "pipeline_seconds_median": round(pipeline, 2),
            "setup_seconds_median": round(statistics.median(r["setup_seconds"] for r in measured), 2),
            "stage_seconds_median": {
                n: round(statistics.median(r["stage_seconds"][n] for r in measured), 2) for n in STAGES
            },
            "pipeline_over_stages_median": round(ratio, 3),
            "peak_stack_rss_mb_max": max(r["peak_stack_rss_mb"] for r in measured),
        }
    )
    result.target("pipeline_after_setup_s", pipeline, 90.0, higher_is_better=False, unit="s")
    result.target("pipeline_over_stages_sum", ratio, 1.25, higher_is_better=False, unit="x")
    result.target("runs_succeeded", float(len(ok)), float(len(runs)), higher_is_better=True, unit="runs")
    return result
