"""What every benchmark shares: timing, peak memory, and the JSON result file.

Figures are compared with a reference measured in the same run (DESIGN.md §10): a ratio
holds on a shared machine where an absolute time does not. Peak memory is read from the
process's own accounting: the kernel's high-water mark of this address space (``VmHWM``
in ``/proc/self/status``), which starts afresh in a new program — unlike ``ru_maxrss``,
which Linux carries across ``exec`` so that a child started from a large parent would
report the parent's peak.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def _vm_hwm_mb() -> float | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def peak_rss_mb(children: bool = False) -> float:
    """Peak resident memory in MiB of this process (or of its waited-for children)."""
    if not children and (hwm := _vm_hwm_mb()) is not None:
        return hwm
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024.0


@dataclass
class Timer:
    """Seconds of one measured block."""

    seconds: float = 0.0


@contextmanager
def timed() -> Iterator[Timer]:
    """Measure a block's wall time."""
    timer = Timer()
    start = time.perf_counter()
    try:
        yield timer
    finally:
        timer.seconds = time.perf_counter() - start


def run_isolated(code: str, env: dict[str, str] | None = None, timeout: float = 1800) -> dict[str, Any]:
    """Run Python code in a fresh interpreter; it prints one JSON object as its last line.

    The child's peak memory is its own (``peak_rss_mb`` is added), so that one benchmark's
    allocations do not hide another's.
    """
    wrapper = (
        "import json, resource, sys\n"
        f"{code}\n"
        "from bench.harness import peak_rss_mb\n"
        "result['peak_rss_mb'] = peak_rss_mb()\n"
        "print(json.dumps(result))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", wrapper],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )
    if proc.returncode != 0:
        msg = f"benchmark child failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
        raise RuntimeError(msg)
    return json.loads(proc.stdout.strip().splitlines()[-1])


@dataclass
class BenchResult:
    """One benchmark's figures, targets and verdicts."""

    name: str
    figures: dict[str, Any] = field(default_factory=dict)
    targets: dict[str, dict[str, Any]] = field(default_factory=dict)

    def target(self, name: str, value: float, limit: float, *, higher_is_better: bool, unit: str = "") -> None:
        """Record a figure against its target."""
        met = value >= limit if higher_is_better else value <= limit
        self.targets[name] = {
            "value": round(value, 4),
            "limit": limit,
            "unit": unit,
            "higher_is_better": higher_is_better,
            "met": met,
        }

    def write(self) -> Path:
        """Write `bench/results/<name>.json`."""
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / f"{self.name}.json"
        payload = {
            "name": self.name,
            "measured_at": datetime.now(UTC).isoformat(),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
            "figures": self.figures,
            "targets": self.targets,
            "all_met": all(t["met"] for t in self.targets.values()),
        }
        path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
        return path


Benchmark = Callable[[], BenchResult]
