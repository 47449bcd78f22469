"""Helpers for the loader's tests, the end-to-end suite and the benchmark (never used by the service).

Records with chosen Ids and versions, runs written to the lake as the extractor writes
them, pull subscriptions that show what the loader published, and table snapshots.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
from google.api_core import exceptions as gexc

from sfpipe.adapters.storage import ObjectStore
from sfpipe.adapters.warehouse.base import Warehouse
from sfpipe.ids import new_run_id
from sfpipe.lake import Manifest, manifest_uri
from sfpipe_loader import lakegen

T0 = datetime(2026, 3, 1, tzinfo=UTC)
"""The versions of test records are hours after this."""


def stamps(*hours: float) -> np.ndarray:
    """datetime64[us] versions, ``hours`` after :data:`T0`."""
    base = np.datetime64(T0.replace(tzinfo=None), "us")
    return base + (np.array(hours, dtype=float) * 3600e6).astype("timedelta64[us]")


def opportunities(
    numbers: Sequence[int], hours: Sequence[float], *, seed: int = 0, overrides: Mapping[str, pa.Array] | None = None
) -> pa.Table:
    """Opportunity records: Ids from ``numbers``, SystemModstamp ``hours`` after T0."""
    return lakegen.records(
        "Opportunity", np.array(numbers, dtype=np.int64), stamps(*hours), seed=seed, overrides=overrides
    )


def accounts(numbers: Sequence[int], hours: Sequence[float], *, seed: int = 0) -> pa.Table:
    """Account records."""
    return lakegen.records("Account", np.array(numbers, dtype=np.int64), stamps(*hours), seed=seed)


def opp_id(number: int) -> str:
    """The Opportunity Id of a record number."""
    value = lakegen.salesforce_ids("006", np.array([number]))[0].as_py()
    return str(value)


@dataclass
class Lake:
    """A lake bucket and a way to write runs into it as the extractor does."""

    store: ObjectStore
    bucket: str

    def run(
        self,
        objects: Mapping[str, lakegen.ObjectPart | Sequence[pa.Table]],
        *,
        run_id: str | None = None,
        created_at: datetime | None = None,
        **kwargs: Any,
    ) -> tuple[Manifest, str]:
        """Upload a run (files, then the manifest); the manifest and its URI."""
        run_id = run_id or new_run_id()
        parts = {
            name: value if isinstance(value, lakegen.ObjectPart) else lakegen.ObjectPart(list(value))
            for name, value in objects.items()
        }
        manifest = lakegen.write_run(
            self.store, self.bucket, run_id, parts, created_at=created_at or T0 + timedelta(days=30), **kwargs
        )
        return manifest, manifest_uri(self.bucket, run_id)


@dataclass
class Bus:
    """Pull subscriptions on event topics, to see what a service published."""

    subscriber: Any
    subscriptions: dict[str, str] = field(default_factory=dict)

    def pull(self, name: str, want: int = 1, timeout: float = 20.0) -> list[dict[str, Any]]:
        """At least ``want`` messages (or what arrived before the timeout), acknowledged."""
        deadline = time.monotonic() + timeout
        got: list[dict[str, Any]] = []
        while time.monotonic() < deadline and len(got) < want:
            try:
                response = self.subscriber.pull(
                    request={"subscription": self.subscriptions[name], "max_messages": 50}, timeout=2.0
                )
            except gexc.DeadlineExceeded:
                continue
            if response.received_messages:
                self.subscriber.acknowledge(
                    request={
                        "subscription": self.subscriptions[name],
                        "ack_ids": [m.ack_id for m in response.received_messages],
                    }
                )
            for m in response.received_messages:
                got.append({"attributes": dict(m.message.attributes), "data": json.loads(m.message.data)})
            if len(got) < want:
                time.sleep(0.2)
        return got

    def drain(self, name: str, seconds: float = 1.0) -> list[dict[str, Any]]:
        """Whatever arrives within ``seconds``."""
        return self.pull(name, want=10**9, timeout=seconds)


def table_rows(warehouse: Warehouse, table: str, drop: Sequence[str] = ("_ingested_at",)) -> list[dict[str, Any]]:
    """A raw table's rows in a stable order, without the columns that differ by load time."""
    rows = warehouse.query(f"SELECT * FROM `sfpipe_raw.{table}`").to_pylist()
    rows = [{k: v for k, v in r.items() if k not in drop} for r in rows]
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True, default=str))
