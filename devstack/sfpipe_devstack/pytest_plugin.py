"""Test fixtures that start the real emulators once per test session, on free ports.

Every integration test in the repository uses these: Google's Pub/Sub emulator,
fake-gcs-server publishing object notifications to it, and a DuckDB warehouse file per
test. Settings are pinned per test through ``SFPIPE_*`` variables so that no test reads
the developer's environment.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from sfpipe.config import Settings, load_settings, reset_settings
from sfpipe.topology import LAKE_NOTIFICATIONS_TOPIC, MANIFEST_PREFIX
from sfpipe_devstack.emulators import Started, free_port, start_fake_gcs, start_pubsub_emulator

if TYPE_CHECKING:
    from sfpipe.adapters.storage import ObjectStore
    from sfpipe.adapters.warehouse.duckdb.client import DuckDBWarehouse

NOTIFY_PROJECT = "sfpipe-it"


@dataclass
class Emulators:
    """Where the session's emulators listen."""

    pubsub_host: str
    gcs_url: str
    gcs_port: int
    pubsub_port: int
    notify_project: str = NOTIFY_PROJECT


@pytest.fixture(scope="session")
def emulators(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulators]:
    """Start the Pub/Sub emulator and fake-gcs-server (with notifications) once."""
    from google.api_core import exceptions as gexc
    from google.cloud import pubsub_v1

    root = tmp_path_factory.mktemp("emulators")
    host = "127.0.0.1"
    pubsub_port = free_port(host)
    pubsub = start_pubsub_emulator(host, pubsub_port, root / "pubsub", root / "pubsub.log")
    started: list[Started] = [pubsub]
    previous = {k: os.environ.get(k) for k in ("PUBSUB_EMULATOR_HOST", "STORAGE_EMULATOR_HOST")}
    try:
        os.environ["PUBSUB_EMULATOR_HOST"] = f"{host}:{pubsub_port}"
        publisher = pubsub_v1.PublisherClient()
        try:
            publisher.create_topic(name=publisher.topic_path(NOTIFY_PROJECT, LAKE_NOTIFICATIONS_TOPIC))
        except gexc.AlreadyExists:
            pass
        gcs_port = free_port(host)
        gcs = start_fake_gcs(
            host,
            gcs_port,
            root / "gcs.log",
            pubsub_host=f"{host}:{pubsub_port}",
            project=NOTIFY_PROJECT,
            topic=LAKE_NOTIFICATIONS_TOPIC,
            object_prefix=MANIFEST_PREFIX,
        )
        started.append(gcs)
        os.environ["STORAGE_EMULATOR_HOST"] = f"http://{host}:{gcs_port}"
        yield Emulators(f"{host}:{pubsub_port}", f"http://{host}:{gcs_port}", gcs_port, pubsub_port)
    finally:
        for proc in reversed(started):
            proc.stop()
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def sfpipe_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Pin every SFPIPE_* variable for one test: a fresh home, warehouse and buckets."""
    for key in list(os.environ):
        if key.startswith("SFPIPE_"):
            monkeypatch.delenv(key)
    suffix = uuid.uuid4().hex[:8]
    values = {
        "SFPIPE_MODE": "local",
        "SFPIPE_HOME": str(tmp_path / "home"),
        "SFPIPE_PROJECT": f"sfpipe-test-{suffix}",
        "SFPIPE_LAKE_BUCKET": f"lake-{suffix}",
        "SFPIPE_STATE_BUCKET": f"state-{suffix}",
        "SFPIPE_LOG_FORMAT": "text",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    reset_settings()
    yield values
    reset_settings()


@pytest.fixture
def local_settings(sfpipe_env: dict[str, str], emulators: Emulators, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings for a test that uses the session's emulators."""
    host, port = emulators.pubsub_host.split(":")
    monkeypatch.setenv("SFPIPE_PUBSUB_PORT", port)
    monkeypatch.setenv("SFPIPE_GCS_PORT", str(emulators.gcs_port))
    monkeypatch.setenv("SFPIPE_HOST", host)
    reset_settings()
    return load_settings()


@pytest.fixture
def object_store(local_settings: Settings) -> ObjectStore:
    """The object store on fake-gcs-server, with the test's buckets created."""
    from sfpipe.adapters.factory import object_store as make_store

    store = make_store(local_settings)
    store.ensure_bucket(local_settings.lake_bucket)
    store.ensure_bucket(local_settings.state_bucket, versioned=True)
    return store


@pytest.fixture
def duckdb_warehouse(tmp_path: Path) -> Iterator[DuckDBWarehouse]:
    """An embedded DuckDB warehouse in a fresh file."""
    from sfpipe.adapters.warehouse.duckdb.client import DuckDBWarehouse
    from sfpipe.adapters.warehouse.duckdb.session import EmbeddedSession

    wh = DuckDBWarehouse(EmbeddedSession(tmp_path / "warehouse.duckdb"), scratch=tmp_path / "scratch")
    yield wh
    wh.close()


@dataclass
class PubSubClients:
    """Real Pub/Sub clients on the session's emulator, in a project of the test's own."""

    project: str
    publisher: Any
    subscriber: Any

    def topic(self, name: str) -> str:
        """`projects/<project>/topics/<name>`."""
        return f"projects/{self.project}/topics/{name}"

    def subscription(self, name: str) -> str:
        """`projects/<project>/subscriptions/<name>`."""
        return f"projects/{self.project}/subscriptions/{name}"

    def create_topic(self, name: str) -> str:
        """Create a topic; its path."""
        path = self.topic(name)
        self.publisher.create_topic(name=path)
        return path


@pytest.fixture
def pubsub_project(emulators: Emulators) -> str:
    """A Pub/Sub project id no other test uses: the emulator keeps projects apart."""
    return f"sfpipe-t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def pubsub(emulators: Emulators, pubsub_project: str) -> Iterator[PubSubClients]:
    """Publisher and subscriber clients on the emulator, in the test's own project."""
    from google.cloud import pubsub_v1

    publisher = pubsub_v1.PublisherClient(
        publisher_options=pubsub_v1.types.PublisherOptions(enable_message_ordering=True)
    )
    subscriber = pubsub_v1.SubscriberClient()
    yield PubSubClients(pubsub_project, publisher, subscriber)
    subscriber.close()
