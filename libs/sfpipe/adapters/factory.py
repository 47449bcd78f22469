"""The one place that chooses adapters by mode. No other module asks which mode it is in."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING

import google.cloud.pubsub_v1 as pubsub_v1
import google.cloud.storage as storage
from google.auth.credentials import AnonymousCredentials

from sfpipe.adapters.bus import EventPublisher
from sfpipe.adapters.pipelines import PipelineLauncher
from sfpipe.adapters.storage import ObjectStore
from sfpipe.adapters.warehouse.base import Warehouse
from sfpipe.config import Mode, Settings, get_settings
from sfpipe.topology import load_topology

if TYPE_CHECKING:
    from google.cloud import dataform_v1

WAREHOUSE_URL_FILE = "warehouse.url"


def is_local(settings: Settings | None = None) -> bool:
    """Whether this process runs on the local emulators (for set-up commands only)."""
    return (settings or get_settings()).mode is Mode.LOCAL


def point_clients_at_emulators(settings: Settings) -> None:
    """Local mode: the Google clients read these variables to find the emulators."""
    if settings.mode is Mode.LOCAL:
        os.environ["PUBSUB_EMULATOR_HOST"] = settings.pubsub_emulator_host
        os.environ["STORAGE_EMULATOR_HOST"] = settings.storage_emulator_host


def storage_client(settings: Settings | None = None) -> storage.Client:
    """A GCS client (fake-gcs-server locally)."""
    settings = settings or get_settings()
    if settings.mode is Mode.LOCAL:
        return storage.Client(
            project=settings.project,
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": settings.storage_emulator_host},
        )
    return storage.Client(project=settings.project)


def object_store(settings: Settings | None = None) -> ObjectStore:
    """The object store of this mode."""
    return ObjectStore(storage_client(settings))


def publisher_client(settings: Settings | None = None, *, ordering: bool = True) -> pubsub_v1.PublisherClient:
    """A Pub/Sub publisher (the emulator locally), with message ordering on."""
    settings = settings or get_settings()
    point_clients_at_emulators(settings)
    options = pubsub_v1.types.PublisherOptions(enable_message_ordering=ordering)
    batch = pubsub_v1.types.BatchSettings(max_messages=500, max_latency=0.005)
    return pubsub_v1.PublisherClient(batch_settings=batch, publisher_options=options)


def subscriber_client(settings: Settings | None = None) -> pubsub_v1.SubscriberClient:
    """A Pub/Sub subscriber (the emulator locally)."""
    point_clients_at_emulators(settings or get_settings())
    return pubsub_v1.SubscriberClient()


def event_publisher(settings: Settings | None = None) -> EventPublisher:
    """The event publisher of this mode."""
    settings = settings or get_settings()
    return EventPublisher(publisher_client(settings), settings.project, load_topology())


def local_warehouse_url(settings: Settings) -> str | None:
    """The running warehouse server's address: the setting, or the file the server wrote."""
    if settings.warehouse_url:
        return settings.warehouse_url
    marker = Path(settings.home) / WAREHOUSE_URL_FILE
    if marker.exists():
        return marker.read_text().strip() or None
    return None


def warehouse(settings: Settings | None = None) -> Warehouse:
    """The warehouse of this mode: BigQuery, the local warehouse server, or the DuckDB file."""
    settings = settings or get_settings()
    if settings.mode is Mode.GCP:
        from google.cloud import bigquery

        from sfpipe.adapters.warehouse.bigquery.client import BigQueryWarehouse

        return BigQueryWarehouse(bigquery.Client(project=settings.project), location=None)

    from sfpipe.adapters.warehouse.duckdb.client import DuckDBWarehouse
    from sfpipe.adapters.warehouse.duckdb.session import DuckDBSession, EmbeddedSession, FlightSession

    scratch = Path(settings.home) / "tmp"
    session: DuckDBSession
    url = local_warehouse_url(settings)
    if url:
        flight_session = FlightSession(url)
        if settings.warehouse_url or flight_session.ping():
            session = flight_session
        else:
            session = EmbeddedSession(settings.warehouse_file, settings.warehouse_memory_limit)
    else:
        session = EmbeddedSession(settings.warehouse_file, settings.warehouse_memory_limit)
    return DuckDBWarehouse(session, store=object_store(settings), scratch=scratch)


def dataform_client(settings: Settings | None = None) -> dataform_v1.DataformClient | None:
    """The Dataform API client in gcp mode; None locally.

    Locally there is no Dataform service: the transform compiles the project with the
    Dataform CLI and executes the graph on the local warehouse itself.
    """
    settings = settings or get_settings()
    if settings.mode is Mode.GCP:
        from google.cloud import dataform_v1

        return dataform_v1.DataformClient()
    return None


def pipeline_launcher(settings: Settings | None = None) -> PipelineLauncher:
    """Where the Beam load pipeline runs: a Dataflow Flex Template job, or FnApiRunner in a child process."""
    from sfpipe.adapters.pipelines import FlexTemplateLauncher, SubprocessLauncher

    settings = settings or get_settings()
    if settings.mode is Mode.GCP:
        from google.cloud import dataflow_v1beta3 as dataflow

        return FlexTemplateLauncher.for_template(
            dataflow.FlexTemplatesServiceClient(),
            dataflow.JobsV1Beta3Client(),
            object_store(settings),
            project=settings.project,
            region=settings.region,
            template=settings.dataflow_template,
            service_account=settings.dataflow_service_account,
            max_workers=settings.dataflow_max_workers,
        )
    env = {"STORAGE_EMULATOR_HOST": settings.storage_emulator_host}
    return SubprocessLauncher(Path(settings.home) / "tmp", env=env)


@functools.cache
def shared_warehouse() -> Warehouse:
    """One warehouse per process (services keep it for their lifetime)."""
    return warehouse()


@functools.cache
def shared_publisher() -> EventPublisher:
    """One event publisher per process."""
    return event_publisher()


@functools.cache
def shared_object_store() -> ObjectStore:
    """One object store per process."""
    return object_store()
