"""Fixtures of the extractor's integration tests: the simulator as a child process, settings that
point the extractor at it, a subscription on the extract-completed topic, and the lake read back
through the manifests. Broken answers (a malformed JSON page, a truncated CSV chunk, an unknown
field type, a connection dropped mid-body) come from the simulator's own fault modes.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sfpipe.config import Settings, load_settings, reset_settings
from sfpipe.events import EventType
from sfpipe.lake import RUNS_PREFIX, parse_manifest
from sfpipe.topology import load_topology

SIM_SEED = 11
SIM_SCALE = 20_000


def start_simulator(data_dir: Path, **overrides: Any):  # type: ignore[no-untyped-def]
    from sfpipe_simulator.server import SimulatorConfig, SimulatorProcess

    config = SimulatorConfig(seed=SIM_SEED, scale=SIM_SCALE, data_dir=data_dir, **overrides)
    return SimulatorProcess(config).start()


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One simulated org served by `python -m sfpipe_simulator` for the module's tests."""
    sim = start_simulator(tmp_path_factory.mktemp("simulator"))
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def simulator_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """``simulator_factory(faults=…)`` → another simulator process for one test (stopped after it)."""
    started: list[Any] = []

    def start(**overrides: Any) -> Any:
        sim = start_simulator(tmp_path_factory.mktemp("simulator"), **overrides)
        started.append(sim)
        return sim

    try:
        yield start
    finally:
        for sim in started:
            sim.stop()


def point_at(monkeypatch: pytest.MonkeyPatch, url: str, verify: str | bool, **extra: str) -> Settings:
    """Settings that send the extractor to ``url`` with fast retries."""
    values = {
        "SFPIPE_SF_LOGIN_URL": url,
        "SFPIPE_SF_VERIFY_TLS": str(verify).lower() if isinstance(verify, bool) else verify,
        "SFPIPE_SF_BACKOFF_SECONDS": "0.01",
        "SFPIPE_SF_RETRY_ATTEMPTS": "10",
        "SFPIPE_EXTRACT_CONCURRENCY": "4",
        **extra,
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    reset_settings()
    return load_settings()


@pytest.fixture
def extract_settings(local_settings: Settings, simulator: Any, monkeypatch: pytest.MonkeyPatch) -> Settings:
    return point_at(monkeypatch, simulator.url, simulator.verify)


@pytest.fixture
def configure(local_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``configure(url, verify, SFPIPE_X=...)`` → settings for an extractor talking to ``url``."""

    def apply(url: str, verify: str | bool, **extra: str) -> Settings:
        return point_at(monkeypatch, url, verify, **extra)

    return apply


@dataclass
class Events:
    """Pulls `sfpipe.extract.completed` events from a subscription made for the test."""

    subscriber: Any
    path: str

    def pull(self, expected: int = 1, timeout: float = 30.0) -> list[dict[str, Any]]:
        import time

        got: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(got) < expected and time.monotonic() < deadline:
            response = self.subscriber.pull(subscription=self.path, max_messages=10, timeout=5)
            ids = []
            for received in response.received_messages:
                got.append({"attributes": dict(received.message.attributes), "data": json.loads(received.message.data)})
                ids.append(received.ack_id)
            if ids:
                self.subscriber.acknowledge(subscription=self.path, ack_ids=ids)
        return got


@pytest.fixture
def completed_events(local_settings: Settings) -> Events:
    from google.api_core import exceptions as gexc

    from sfpipe.adapters.factory import publisher_client, subscriber_client

    topic = load_topology().topic_for(EventType.EXTRACT_COMPLETED)
    publisher = publisher_client(local_settings)
    subscriber = subscriber_client(local_settings)
    topic_path = publisher.topic_path(local_settings.project, topic)
    try:
        publisher.create_topic(name=topic_path)
    except gexc.AlreadyExists:
        pass
    path = subscriber.subscription_path(local_settings.project, f"extract-test-{uuid.uuid4().hex[:8]}")
    subscriber.create_subscription(name=path, topic=topic_path)
    return Events(subscriber, path)


# ---------------------------------------------------------------- reading the lake back


@dataclass
class Lake:
    """Reads back what the extractor wrote, the way the loader does: through the manifests."""

    store: Any
    settings: Settings

    def manifests(self) -> list[Any]:
        """Every run manifest in the lake, oldest first."""
        found = []
        for stored in self.store.list(self.settings.lake_bucket, RUNS_PREFIX):
            if stored.name.endswith("/_manifest.json"):
                raw, _ = self.store.get_bytes(stored.uri)
                found.append(parse_manifest(raw, stored.uri))
        return sorted(found, key=lambda m: m.run_id)

    def manifest_names(self) -> list[str]:
        return sorted(o.name for o in self.store.list(self.settings.lake_bucket, RUNS_PREFIX))

    def read_object(self, sobject: str, manifest_list: list[Any] | None = None) -> pa.Table | None:
        """All rows of one object across manifests (each file read at its listed generation)."""
        import io

        tables = []
        for manifest in manifest_list if manifest_list is not None else self.manifests():
            entry = manifest.objects.get(sobject)
            if entry is None:
                continue
            for f in entry.files:
                data, generation = self.store.get_bytes(f.uri)
                assert generation == f.generation, f"{f.uri} changed since its manifest listed it"
                tables.append(pq.read_table(io.BytesIO(data)))
        if not tables:
            return None
        return pa.concat_tables(tables, promote_options="default")

    def latest(self, sobject: str, columns: list[str]) -> dict[str, tuple[Any, ...]]:
        """The newest version (by SystemModstamp) of each Id: Id → the chosen columns' values."""
        return latest_by_id(self.read_object(sobject), columns)


def latest_by_id(table: pa.Table | None, columns: list[str]) -> dict[str, tuple[Any, ...]]:
    """Id → the chosen columns of its newest version (by SystemModstamp)."""
    if table is None:
        return {}
    latest: dict[str, tuple[Any, ...]] = {}
    stamps: dict[str, Any] = {}
    wanted = ["Id", "SystemModstamp", *[c for c in columns if c not in ("Id", "SystemModstamp")]]
    for row in table.select(wanted).to_pylist():
        rid = row["Id"]
        if rid not in stamps or row["SystemModstamp"] >= stamps[rid]:
            stamps[rid] = row["SystemModstamp"]
            latest[rid] = tuple(row[c] for c in columns)
    return latest


@pytest.fixture
def lake(object_store: Any, local_settings: Settings) -> Lake:
    return Lake(object_store, local_settings)
