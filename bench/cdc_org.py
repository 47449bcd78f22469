"""A simulated org for the CDC benchmark, in a process of its own: REST, the Pub/Sub API, and a load.

``python -m bench.cdc_org`` prints one JSON line (URL, CA file, Pub/Sub API endpoint, log position)
once serving, then answers JSON commands on stdin, one per line:

- ``{"cmd": "fill", "events": N}``: commit N record updates as fast as possible (10 per transaction);
- ``{"cmd": "rate", "per_second": R, "seconds": S}``: commit one update per transaction at R/s for S s;
- ``{"cmd": "stop"}``.

The load writes through the org store's own transactions (commit number, commit timestamp, change log)
but skips the business rules of the simulator's live activity, so that the org, not the benchmark's
load, is what a CDC path is measured against at hundreds of changes per second.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ORIGIN = "com/salesforce/api/rest/62.0;client=sfpipe-bench"
FIELDS: dict[str, list[tuple[str, Any]]] = {
    "Account": [("Rating", ("Hot", "Warm", "Cold")), ("Description", None), ("NumberOfEmployees", "int")],
    "Contact": [("Title", ("CEO", "CFO", "VP Sales", "Analyst")), ("Phone", "phone")],
    "Opportunity": [("NextStep", None), ("Amount", "money"), ("Description", None)],
    "Lead": [("Title", ("CEO", "CFO", "Analyst")), ("Phone", "phone")],
    "Case": [("Subject", None), ("Priority", ("High", "Medium", "Low"))],
    "Task": [("Description", None)],
}


class Load:
    """Record updates on a fixed pool of records, through the store's transactions."""

    def __init__(self, rt: Any, seed: int = 7) -> None:
        from sfpipe_simulator.metadata import get_object

        self.store = rt.store
        self.rng = np.random.default_rng(seed)
        self.objects = {}
        with self.store.reader() as cur:
            self.user = cur.execute('SELECT Id FROM "User" ORDER BY Id LIMIT 1').fetchone()[0]
            for name in FIELDS:
                ids = [r[0] for r in cur.execute(f'SELECT Id FROM "{name}" WHERE NOT IsDeleted LIMIT 2000').fetchall()]
                if ids:
                    self.objects[name] = (get_object(name), ids)
        self.names = list(self.objects)
        self.counter = 0
        self.per_commit = 1

    def _value(self, kind: Any) -> Any:
        self.counter += 1
        if isinstance(kind, tuple):
            return kind[int(self.rng.integers(len(kind)))]
        if kind == "int":
            return int(self.rng.integers(1, 50_000))
        if kind == "money":
            return round(float(self.rng.uniform(1_000, 500_000)), 2)
        if kind == "phone":
            return f"(555) 555-{int(self.rng.integers(0, 10_000)):04d}"
        return f"bench change {self.counter}"

    def commit(self, updates: int = 1) -> int:
        """One transaction updating ``updates`` records of one object (one field each); the events it logged.

        The records are written with one statement and their change-log entries added to the
        transaction the way the store's own update does (the audit fields set, one UPDATE event per
        record), because a row-at-a-time update costs the org milliseconds that a load of
        hundreds of changes per second does not have.
        """
        from sfpipe_simulator.store import _PendingEvent, q

        name = self.names[int(self.rng.integers(len(self.names)))]
        obj, ids = self.objects[name]
        field, kind = FIELDS[name][int(self.rng.integers(len(FIELDS[name])))]
        chosen = sorted({ids[int(self.rng.integers(len(ids)))] for _ in range(updates)})
        values = [self._value(kind) for _ in chosen]
        with self.store.transaction(ORIGIN, self.user) as tx:
            stamp = tx.stamp
            rows = ", ".join("(?, ?)" for _ in chosen)
            params: list[Any] = [x for pair in zip(chosen, values, strict=True) for x in pair]
            tx.cursor.execute(
                f"UPDATE {q(obj.table)} SET {q(field)} = v.val, LastModifiedDate = ?, LastModifiedById = ?, "
                f"SystemModstamp = ? FROM (VALUES {rows}) AS v(id, val) WHERE {q(obj.table)}.Id = v.id",
                [stamp, self.user, stamp, *params],
            )
            for record_id, value in zip(chosen, values, strict=True):
                tx.events.append(_PendingEvent(obj.name, "UPDATE", record_id, [field, "LastModifiedDate"], [],
                                               {field: value, "LastModifiedDate": stamp}))  # fmt: skip
            return len(tx.events)

    def fill(self, events: int) -> int:
        done = 0
        while done < events:
            done += self.commit(10)
        return done

    def rate(self, per_second: float, seconds: float) -> dict[str, float]:
        """Changes at ``per_second`` (``per_commit`` records per transaction) for ``seconds``."""
        start = time.monotonic()
        committed = 0
        while True:
            elapsed = time.monotonic() - start
            if elapsed >= seconds:
                break
            due = int(elapsed * per_second) - committed
            if due <= 0:
                time.sleep(min(0.002, 1.0 / per_second))
                continue
            for _ in range(min(max(1, due // self.per_commit), 50)):
                committed += self.commit(self.per_commit)
        elapsed = time.monotonic() - start
        return {"committed": committed, "seconds": elapsed, "achieved_per_second": committed / elapsed}


def main() -> int:
    from sfpipe_simulator.pubsub_api.server import start_pubsub_api
    from sfpipe_simulator.pubsub_api.service import PubSubConfig
    from sfpipe_simulator.server import Simulator, SimulatorConfig

    data = Path(os.environ["SFPIPE_BENCH_ORG_DIR"])
    scale = int(os.environ.get("SFPIPE_BENCH_ORG_SCALE", "10000"))
    sim = Simulator(SimulatorConfig(seed=5, scale=scale, data_dir=data)).start()
    assert sim.runtime is not None and sim.ca_file is not None
    api = start_pubsub_api(sim.runtime, security="tls", tls_folder=sim.ca_file.parent,
                           config=PubSubConfig(keepalive_seconds=1.0))  # fmt: skip
    load = Load(sim.runtime)
    print(json.dumps({"url": sim.url, "ca": str(sim.ca_file), "endpoint": api.endpoint,
                      "latest": sim.store.changes.latest(), "client_id": sim.config.client_id,
                      "client_secret": sim.config.client_secret}), flush=True)  # fmt: skip
    try:
        for line in sys.stdin:
            command = json.loads(line)
            if command["cmd"] == "fill":
                made = load.fill(int(command["events"]))
                print(json.dumps({"events": made, "latest": sim.store.changes.latest()}), flush=True)
            elif command["cmd"] == "rate":
                load.per_commit = int(command.get("per_commit", 1))
                done = load.rate(float(command["per_second"]), float(command["seconds"]))
                print(json.dumps({**done, "latest": sim.store.changes.latest()}), flush=True)
            elif command["cmd"] == "truth":
                from sfpipe_simulator.truth import export_truth

                export = export_truth(sim.store, Path(command["folder"]))
                print(json.dumps({"replay_id": export.replay_id}), flush=True)
            else:
                break
    finally:
        api.stop()
        sim.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
