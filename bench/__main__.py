"""Run the benchmarks: `python -m bench [name ...]` (all of them by default)."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
from pathlib import Path

from bench.harness import BenchResult


def main(argv: list[str]) -> int:
    """Run each `bench_*` module's `run()` and write its JSON result."""
    here = Path(__file__).parent
    names = sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))
    wanted = [a if a.startswith("bench_") else f"bench_{a}" for a in argv]
    if wanted:
        unknown = sorted(set(wanted) - set(names))
        if unknown:
            print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(names)}", file=sys.stderr)
            return 2
        names = wanted
    failed = []
    for name in names:
        started = time.perf_counter()
        print(f"== {name}", flush=True)
        module = importlib.import_module(f"bench.{name}")
        result: BenchResult = module.run()
        path = result.write()
        for target, info in result.targets.items():
            mark = "ok " if info["met"] else "MISS"
            sign = "≥" if info["higher_is_better"] else "≤"
            print(
                f"  [{mark}] {target}: {info['value']} {info['unit']} (target {sign} {info['limit']})"
            )
        print(f"  -> {path} ({time.perf_counter() - started:.0f}s)", flush=True)
        if not all(t["met"] for t in result.targets.values()):
            failed.append(name)
    if failed:
        print(f"targets missed in: {', '.join(failed)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
