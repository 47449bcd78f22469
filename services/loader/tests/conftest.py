"""Fixtures for the loader's tests: a lake on fake-gcs-server, a DuckDB warehouse, the bus."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from google.api_core import exceptions as gexc

from sfpipe.adapters import factory
from sfpipe.adapters.warehouse.duckdb.client import DuckDBWarehouse
from sfpipe.adapters.warehouse.duckdb.session import EmbeddedSession
from sfpipe.topology import load_topology
from sfpipe_loader.loader import Loader
from sfpipe_loader.testing import Bus, Lake


@pytest.fixture
def bus(local_settings):
    """The load-completed and load-failed topics in the test's project, each with a pull subscription."""
    publisher = factory.publisher_client(local_settings)
    subscriber = factory.subscriber_client(local_settings)
    topology = load_topology()
    b = Bus(subscriber)
    for event_type in ("sfpipe.load.completed", "sfpipe.load.failed"):
        topic = topology.topic_for(event_type)
        topic_path = publisher.topic_path(local_settings.project, topic)
        try:
            publisher.create_topic(name=topic_path)
        except gexc.AlreadyExists:
            pass
        sub = subscriber.subscription_path(local_settings.project, f"{topic}-test-{uuid.uuid4().hex[:6]}")
        subscriber.create_subscription(request={"name": sub, "topic": topic_path, "ack_deadline_seconds": 10})
        b.subscriptions[event_type] = sub
    return b


@pytest.fixture
def lake(object_store, local_settings) -> Lake:
    return Lake(object_store, local_settings.lake_bucket)


@pytest.fixture
def warehouse(tmp_path: Path, object_store):
    wh = DuckDBWarehouse(
        EmbeddedSession(tmp_path / "warehouse.duckdb"), store=object_store, scratch=tmp_path / "scratch"
    )
    yield wh
    wh.close()


@pytest.fixture
def loader(local_settings, warehouse, object_store, bus) -> Loader:
    return Loader(
        local_settings,
        warehouse,
        object_store,
        factory.event_publisher(local_settings),
        launcher=lambda: factory.pipeline_launcher(local_settings),
    )
