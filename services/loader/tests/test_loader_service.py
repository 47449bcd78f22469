"""The loader's event endpoint: the service contract, Eventarc's binary mode, the Cloud Run entry."""

from __future__ import annotations

import importlib.util
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sfpipe.adapters import factory
from sfpipe.events import GCS_FINALIZED, CloudEvent
from sfpipe.service import create_app
from sfpipe.testing.contract import EventServiceContract
from sfpipe_loader.service import build_service
from sfpipe_loader.testing import opportunities

pytestmark = pytest.mark.integration


def finalize_event(uri: str, store) -> CloudEvent:
    bucket, name = uri[5:].split("/", 1)
    stat = store.stat(uri)
    return CloudEvent(
        id=f"evt-{stat.generation}",
        source=f"//storage.googleapis.com/projects/_/buckets/{bucket}",
        type=GCS_FINALIZED,
        time=datetime.now(UTC),
        subject=f"objects/{name}",
        data={"bucket": bucket, "name": name, "generation": str(stat.generation), "size": str(stat.size)},
    )


class TestLoaderContract(EventServiceContract):
    @pytest.fixture(autouse=True)
    def _wire(self, loader, lake, local_settings):
        self.loader = loader
        self.settings = local_settings
        _, uri = lake.run({"Opportunity": [opportunities([1, 2, 3], [1, 1, 1])]})
        self.event = finalize_event(uri, lake.store)

    def app(self):
        return create_app(build_service(self.settings, loader=self.loader))

    def valid_event(self):
        return self.event

    def side_effect_count(self):
        if not self.loader.warehouse.table_exists(_ref("opportunity__changes")):
            return 0
        return self.loader.warehouse.scalar("SELECT count(*) FROM `sfpipe_raw.opportunity__changes`")


def _ref(table):
    from sfpipe.adapters.warehouse.base import TableRef

    return TableRef("sfpipe_raw", table)


def test_eventarc_binary_mode_event_loads(loader, lake, local_settings, bus):
    manifest, uri = lake.run({"Opportunity": [opportunities([1, 2], [1, 1])]})
    event = finalize_event(uri, lake.store)
    client = create_app(build_service(local_settings, loader=loader)).test_client()
    headers = {k: v for k, v in event.attributes().items()}
    response = client.post("/", data=json.dumps(event.data), headers=headers, content_type="application/json")
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["run_id"] == manifest.run_id and body["objects"]["Opportunity"]["inserted"] == 2
    # objects in other buckets or outside the runs are acknowledged and ignored
    other = event.model_copy(update={"data": {**event.data, "bucket": "someone-elses"}})
    assert client.post("/", data=json.dumps(other.data), headers=other.attributes()).status_code == 204
    parquet = event.model_copy(update={"data": {**event.data, "name": "salesforce/Opportunity/x/part-00000.parquet"}})
    assert client.post("/", data=json.dumps(parquet.data), headers=parquet.attributes()).status_code == 204
    # a malformed object is a clear 422 naming the problem, recorded as failed
    broken = event.model_copy(update={"id": "broken", "data": {"bucket": lake.bucket}})
    answer = client.post("/", data=json.dumps(broken.data), headers=broken.attributes())
    assert answer.status_code == 422 and "generation" in answer.get_json()["error"]


def test_cloud_run_entry_takes_a_cloudevent(lake, local_settings, monkeypatch, tmp_path, bus):
    from cloudevents.http import CloudEvent as SdkEvent

    monkeypatch.setenv("SFPIPE_WAREHOUSE_PATH", str(tmp_path / "entry.duckdb"))
    from sfpipe.config import reset_settings

    reset_settings()
    for cached in (factory.shared_warehouse, factory.shared_object_store, factory.shared_publisher):
        cached.cache_clear()
    spec = importlib.util.spec_from_file_location("loader_main", Path(__file__).parents[1] / "main.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    _, uri = lake.run({"Opportunity": [opportunities([7], [1])]})
    event = finalize_event(uri, lake.store)
    sdk_event = SdkEvent(
        {"type": event.type, "source": event.source, "id": event.id, "subject": event.subject, "time": event.time.isoformat()},
        event.data,
    )
    module.handle(sdk_event)
    warehouse = factory.shared_warehouse()
    assert warehouse.scalar("SELECT count(*) FROM `sfpipe_raw.opportunity`") == 1
    [completed] = bus.pull("sfpipe.load.completed")
    assert completed["data"]["objects"]["Opportunity"]["inserted"] == 1
    warehouse.close()
    for cached in (factory.shared_warehouse, factory.shared_object_store, factory.shared_publisher):
        cached.cache_clear()
