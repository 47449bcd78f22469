"""A Python client of the simulator's admin API, for tests, benchmarks and reconciliation.

Works the same against an in-process :class:`~sfpipe_simulator.server.Simulator`, a child
:class:`~sfpipe_simulator.server.SimulatorProcess`, or a simulator running elsewhere (given its
URL, admin token and CA file).
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import requests

from sfpipe.errors import SfpipeError


class AdminError(SfpipeError):
    """The admin API refused a request."""


class AdminClient:
    """The simulator's ``/admin`` endpoints."""

    def __init__(self, url: str, token: str, verify: str | bool = True, timeout: float = 600) -> None:
        self.url = url.rstrip("/")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.verify = verify
        self.timeout = timeout

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        response = self.session.request(method, f"{self.url}/admin{path}", verify=self.verify, timeout=self.timeout,
                                        **kwargs)  # fmt: skip
        if response.status_code >= 400:
            msg = f"{method} /admin{path} failed with {response.status_code}: {response.text[:500]}"
            raise AdminError(msg)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._call(method, path, **kwargs).json()

    # activity
    def status(self) -> dict[str, Any]:
        """Counts, activity, faults, change-log positions."""
        result: dict[str, Any] = self._json("GET", "/status")
        return result

    def start_activity(self, rate: float) -> dict[str, Any]:
        """Apply ``rate`` changes per second in the background."""
        result: dict[str, Any] = self._json("POST", "/activity/start", json={"rate": rate})
        return result

    def stop_activity(self) -> dict[str, Any]:
        """Stop the background activity."""
        result: dict[str, Any] = self._json("POST", "/activity/stop")
        return result

    def apply_changes(self, count: int) -> dict[str, Any]:
        """Apply ``count`` changes now; ``applied_now`` says what was applied, ``latest`` the newest replay id."""
        result: dict[str, Any] = self._json("POST", "/activity/apply", json={"count": count})
        return result

    # change log
    def changes(self, after: int = 0, limit: int = 1_000, entities: list[str] | None = None) -> dict[str, Any]:
        """``{"events": [...], "earliest": n, "latest": n}`` for events with replay id > ``after``."""
        params: dict[str, Any] = {"after": after, "limit": limit}
        if entities:
            params["entities"] = ",".join(entities)
        result: dict[str, Any] = self._json("GET", "/changes", params=params)
        return result

    def iter_changes(self, after: int = 0, page: int = 1_000, entities: list[str] | None = None
                     ) -> Iterator[dict[str, Any]]:  # fmt: skip
        """Every retained event after ``after``, in order, up to the log's current end."""
        while True:
            events = self.changes(after, page, entities)["events"]
            if not events:
                return
            yield from events
            after = events[-1]["replay_id"]

    # faults, sessions, clock, limits
    def set_faults(self, replace: bool = False, **config: Any) -> dict[str, Any]:
        """Configure faults (``error_rate_503=0.1``, ``latency_ms=20``, ``query_timeout_rows=1000`` …)."""
        result: dict[str, Any] = self._json("PUT" if replace else "PATCH", "/faults", json=config)
        return result

    def clear_faults(self) -> dict[str, Any]:
        """No more faults."""
        result: dict[str, Any] = self._json("DELETE", "/faults")
        return result

    def faults(self) -> dict[str, Any]:
        """The fault configuration and counts of injected faults."""
        result: dict[str, Any] = self._json("GET", "/faults")
        return result

    def inject_fault(self, kind: str, count: int = 1, *, objects: list[str] | None = None,
                     age_seconds: float | None = None) -> dict[str, list[str]]:  # fmt: skip
        """Make the org misbehave now (``late_commit``, ``formula_drift``, ``hard_delete``); the Ids it touched."""
        body: dict[str, Any] = {"kind": kind, "count": count}
        if objects is not None:
            body["objects"] = objects
        if age_seconds is not None:
            body["age_seconds"] = age_seconds
        records: dict[str, list[str]] = self._json("POST", "/faults/inject", json=body)["records"]
        return records

    def expire_sessions(self) -> int:
        """Invalidate every issued token; returns how many there were."""
        return int(self._json("POST", "/sessions/expire")["expired"])

    def advance_clock(self, seconds: float) -> dict[str, Any]:
        """Move simulated time forward."""
        result: dict[str, Any] = self._json("POST", "/clock", json={"advance_seconds": seconds})
        return result

    def reset_limits(self) -> None:
        """Forget API usage."""
        self._call("POST", "/limits/reset")

    # truth
    def truth(self, name: str) -> tuple[pa.Table, int]:
        """One object's rows (soft-deleted included) and the replay id they reflect."""
        response = self._call("GET", f"/truth/{name}", params={"format": "parquet"})
        return pq.read_table(io.BytesIO(response.content)), int(response.headers["X-Sfpipe-Replay-Id"])

    def export_truth(self, out_dir: Path, objects: list[str] | None = None, fmt: str = "parquet") -> dict[str, Any]:
        """Download every (or the named) object from one snapshot into ``out_dir``; returns ``_truth.json``."""
        params: dict[str, Any] = {"format": fmt}
        if objects:
            params["objects"] = ",".join(objects)
        response = self.session.get(f"{self.url}/admin/truth", params=params, verify=self.verify, stream=True,
                                    timeout=self.timeout)  # fmt: skip
        if response.status_code >= 400:
            msg = f"GET /admin/truth failed with {response.status_code}: {response.text[:500]}"
            raise AdminError(msg)
        out_dir.mkdir(parents=True, exist_ok=True)
        response.raw.decode_content = True
        with tarfile.open(fileobj=response.raw, mode="r|") as tar:
            tar.extractall(out_dir, filter="data")
        manifest: dict[str, Any] = json.loads((out_dir / "_truth.json").read_text())
        return manifest
