"""The extractor against the simulator process and fake-gcs-server: what lands in the lake."""

from __future__ import annotations

import io
from datetime import timedelta

import pyarrow.parquet as pq
import pytest

from sfpipe.lake import manifest_uri, watermark_uri
from sfpipe.salesforce.client import SalesforceClient
from sfpipe.salesforce.types import fields_from_describe, queryable_fields
from sfpipe_extractor.engine import Extractor
from sfpipe_extractor.state import read_state

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OBJECTS = [
    "User", "UserRole", "Account", "Contact", "Lead", "Opportunity", "OpportunityLineItem", "OpportunityHistory",
    "Product2", "Pricebook2", "PricebookEntry", "Task", "Event", "Campaign", "CampaignMember", "Case", "Order",
]  # fmt: skip
OBJECTS.remove("Order")  # the simulator's SOQL parser refuses `FROM Order` (a real org accepts it)


def make_extractor(settings, store):
    return Extractor(SalesforceClient.from_settings(settings), store, settings)


def source_versions(client: SalesforceClient, sobject: str) -> dict[str, tuple]:
    """Id → (SystemModstamp text, IsDeleted) straight from queryAll, for a static org."""
    described = {f.name for f in fields_from_describe(client.describe(sobject))}
    deleted = "IsDeleted" in described
    fields = "Id, SystemModstamp" + (", IsDeleted" if deleted else "")
    out = {}
    for record in client.query(f"SELECT {fields} FROM {sobject}", include_deleted=True):
        out[record["Id"]] = (record["SystemModstamp"], record.get("IsDeleted", False))
    return out


def test_full_then_incremental_extract_of_every_object(extract_settings, object_store, lake, completed_events,
                                                       monkeypatch):
    extractor = make_extractor(extract_settings, object_store)
    report = extractor.run(OBJECTS, mode="full")
    assert report.status == "completed", report.summary()
    assert report.manifest_uri == manifest_uri(extract_settings.lake_bucket, report.run_id)

    [manifest] = lake.manifests()
    assert manifest.run_id == report.run_id and manifest.mode == "full" and not manifest.failed
    assert sorted(manifest.objects) == sorted(OBJECTS)
    assert manifest.completed_at >= manifest.created_at

    client = extractor.client
    for sobject in OBJECTS:
        entry = manifest.objects[sobject]
        expected = client.count(sobject, include_deleted=True)
        assert entry.rows == expected == sum(f.rows for f in entry.files), sobject
        assert entry.window_from is None and entry.window_to < manifest.created_at
        described = fields_from_describe(client.describe(sobject))
        selected = [f.name for f in queryable_fields(described)]
        assert [f.name for f in entry.fields] == selected
        for f in entry.files:
            parquet = pq.ParquetFile(io.BytesIO(object_store.get_bytes(f.uri)[0]))
            assert parquet.schema_arrow.names == selected, sobject
            assert parquet.metadata.row_group(0).column(0).compression == "ZSTD"
        compound = {f.name for f in described if f.is_compound}
        assert not compound & set(selected)

        table = lake.read_object(sobject)
        top = table.column("SystemModstamp").to_pylist()
        state, _ = read_state(object_store, extract_settings.state_bucket, sobject)
        assert state.watermark == entry.watermark == max(top), sobject
        assert state.fields == selected

    # soft-deleted rows arrive as rows, with IsDeleted
    opportunities = lake.latest("Opportunity", ["Id", "IsDeleted"])
    source = source_versions(client, "Opportunity")
    assert set(opportunities) == set(source)
    assert {i for i, (_, d) in opportunities.items() if d} == {i for i, (_, d) in source.items() if d}
    assert any(d for _, d in source.values()), "the generated org should have soft-deleted opportunities"

    [event] = completed_events.pull(1)
    assert event["attributes"]["ce-type"] == "sfpipe.extract.completed"
    assert event["data"]["manifest_uri"] == report.manifest_uri
    assert event["data"]["objects"]["Account"]["rows"] == manifest.objects["Account"].rows

    # an incremental run right after: windows start a lookback before each watermark, nothing moves back
    second = make_extractor(extract_settings, object_store).run(OBJECTS, mode="incremental")
    assert second.status == "completed", second.summary()
    latest = lake.manifests()[-1]
    assert latest.run_id == second.run_id
    for sobject in OBJECTS:
        entry = latest.objects[sobject]
        watermark = manifest.objects[sobject].watermark
        assert entry.window_from == watermark - timedelta(seconds=extract_settings.lookback_seconds)
        assert entry.watermark == watermark
        assert entry.new_columns == []
    assert object_store.exists(watermark_uri(extract_settings.state_bucket, "Account"))
