"""How the demo observes the pipeline without calling it: ops subscriptions and ops tables.

- :class:`OpsWatcher` holds a streaming pull on every ``*-ops`` subscription of the
  topology (they exist for readers like this one) and hands over each event it receives;
  it acknowledges what it reads, so the next demo does not see this one's events again.
- :class:`OpsReader` reads ``sfpipe_ops`` through the warehouse adapter (the local
  warehouse server): the run's stage rows, its loaded objects, the CDC lag.
- :class:`ExtractorClient` is the one service call the demo makes: ``POST /runs``, then
  ``GET /runs/<id>`` for the extract stage's live progress.
"""

from __future__ import annotations

import logging
import queue
import threading
from datetime import datetime
from typing import Any

import requests

from sfpipe import ops
from sfpipe.adapters.warehouse.base import Warehouse
from sfpipe.errors import BadInputError, SfpipeError, TransientError
from sfpipe.events import CloudEvent, from_pubsub_message
from sfpipe.topology import Topology

log = logging.getLogger(__name__)


def ops_subscriptions(topology: Topology) -> list[str]:
    """Every pull subscription named ``<topic>-ops`` (one per event topic a reader follows)."""
    return [s.name for t in topology.topics for s in t.subscriptions if not s.push and s.name.endswith("-ops")]


class OpsWatcher:
    """Streaming pulls on the ops subscriptions; received events wait in a queue."""

    def __init__(self, subscriber: Any, project: str, subscriptions: list[str]) -> None:
        self.subscriber = subscriber
        self.project = project
        self.subscriptions = subscriptions
        self.unreadable: list[str] = []
        self._queue: queue.Queue[CloudEvent] = queue.Queue()
        self._futures: list[Any] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        """Open one streaming pull per subscription."""
        for name in self.subscriptions:
            path = self.subscriber.subscription_path(self.project, name)
            self._futures.append(self.subscriber.subscribe(path, self._received))

    def _received(self, message: Any) -> None:
        try:
            event = from_pubsub_message(
                {"attributes": dict(message.attributes), "data": bytes(message.data), "message_id": message.message_id}
            )
        except BadInputError as exc:
            with self._lock:
                self.unreadable.append(str(exc))
        else:
            self._queue.put(event)
        message.ack()

    def drain(self, timeout: float = 0.0) -> list[CloudEvent]:
        """Events received so far (waiting up to ``timeout`` for the first one)."""
        out: list[CloudEvent] = []
        try:
            out.append(self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait())
        except queue.Empty:
            return out
        while True:
            try:
                out.append(self._queue.get_nowait())
            except queue.Empty:
                return out

    def close(self) -> None:
        """Stop the streaming pulls (unacknowledged messages return to the subscriptions)."""
        for future in self._futures:
            future.cancel()
        for future in self._futures:
            try:
                future.result(timeout=5)
            except Exception:  # noqa: BLE001 - a cancelled pull ends with its cancellation error
                pass
        self._futures.clear()


class OpsReader:
    """Reads of ``sfpipe_ops`` for one run (an absent table is simply no rows yet)."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse
        self._known: set[str] = set()

    def _exists(self, ref: Any) -> bool:
        if ref.sql in self._known:
            return True
        if self.warehouse.table_exists(ref):
            self._known.add(ref.sql)
            return True
        return False

    def rows(self, sql: str, ref: Any) -> list[dict[str, Any]]:
        """The rows of a query on ``ref``; none while the table does not exist or the read fails transiently."""
        try:
            if not self._exists(ref):
                return []
            return list(self.warehouse.query(sql).to_pylist())
        except TransientError as exc:
            log.debug("ops read retried later: %s", exc)
            return []

    def run_rows(self, run_id: str) -> list[dict[str, Any]]:
        """The run's stage rows in ``sfpipe_ops.runs``."""
        return self.rows(
            f"SELECT stage, status, started_at, ended_at, `rows`, detail FROM {ops.RUNS.sql} "
            f"WHERE run_id = {ops.sql_literal(run_id)} ORDER BY started_at",
            ops.RUNS,
        )

    def loaded_objects(self, run_id: str) -> int:
        """Objects of the run that are in the raw layer."""
        rows = self.rows(
            f"SELECT COUNT(DISTINCT object) AS n FROM {ops.LOADS.sql} "
            f"WHERE run_id = {ops.sql_literal(run_id)} AND status = 'loaded'",
            ops.LOADS,
        )
        return int(rows[0]["n"] or 0) if rows else 0

    def cdc_lag(self, since: datetime) -> dict[str, Any] | None:
        """Changes applied by the CDC stream since ``since``, with their commit-to-applied lag."""
        rows = self.rows(
            f"SELECT COUNT(*) AS changes, APPROX_QUANTILES(lag_ms, 100)[OFFSET(50)] AS p50_ms, "
            f"APPROX_QUANTILES(lag_ms, 100)[OFFSET(99)] AS p99_ms, MAX(lag_ms) AS max_ms, "
            f"MAX(applied_at) AS last_applied FROM {ops.CDC_LAG.sql} "
            f"WHERE applied_at >= {ops.sql_literal(since)}",
            ops.CDC_LAG,
        )
        if not rows or not rows[0]["changes"]:
            return None
        return rows[0]


class ExtractorError(SfpipeError):
    """The extractor refused the run or could not be reached."""


class ExtractorClient:
    """``POST /runs`` and ``GET /runs/<id>`` of the extractor service."""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        self.timeout = timeout

    def start_run(self, objects: list[str] | None = None) -> dict[str, Any]:
        """Ask for a run of every configured object (or ``objects``); the 202 answer's body."""
        body = {"objects": objects} if objects else {}
        try:
            response = self.session.post(f"{self.base_url}/runs", json=body, timeout=self.timeout)
        except requests.RequestException as exc:
            msg = f"cannot reach the extractor at {self.base_url}: {exc}"
            raise ExtractorError(msg) from exc
        if response.status_code != 202:
            msg = f"POST {self.base_url}/runs answered {response.status_code}: {response.text[:500]}"
            raise ExtractorError(msg)
        result: dict[str, Any] = response.json()
        return result

    def status(self, run_id: str) -> dict[str, Any] | None:
        """The run's status with live per-object progress; None when the extractor does not answer now."""
        try:
            response = self.session.get(f"{self.base_url}/runs/{run_id}", timeout=self.timeout)
        except requests.RequestException as exc:
            log.debug("extractor status not read: %s", exc)
            return None
        if response.status_code != 200:
            return None
        result: dict[str, Any] = response.json()
        return result
