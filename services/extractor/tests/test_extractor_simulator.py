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

    # describe gains a field: make the committed state look as if Account's last extract lacked Rating
    from sfpipe_extractor.state import write_state

    account_state, generation = read_state(object_store, extract_settings.state_bucket, "Account")
    older = account_state.model_copy(update={"fields": [f for f in account_state.fields if f != "Rating"]})
    write_state(object_store, extract_settings.state_bucket, older, generation)

    # an incremental run right after: windows start a lookback before each watermark, nothing moves back
    second = make_extractor(extract_settings, object_store).run(OBJECTS, mode="incremental")
    assert second.status == "completed", second.summary()
    [latest] = [m for m in lake.manifests() if m.run_id == second.run_id]
    for sobject in OBJECTS:
        entry = latest.objects[sobject]
        watermark = manifest.objects[sobject].watermark
        assert entry.window_from == watermark - timedelta(seconds=extract_settings.lookback_seconds)
        assert entry.watermark == watermark
        assert entry.new_columns == (["Rating"] if sobject == "Account" else []), sobject
    assert "Rating" in read_state(object_store, extract_settings.state_bucket, "Account")[0].fields
    assert object_store.exists(watermark_uri(extract_settings.state_bucket, "Account"))


def test_bad_responses_fail_their_object_keep_its_watermark_and_let_the_others_finish(
    configure, simulator, object_store, lake, completed_events
):
    objects = ["Campaign", "Account", "Task", "UserRole", "Product2"]
    settings = configure(simulator.url, simulator.verify)
    client = SalesforceClient.from_settings(settings)
    counts = {o: client.count(o, include_deleted=True) for o in objects}
    assert counts["Campaign"] < counts["Task"]
    # Campaign (and smaller) over REST, Task over Bulk API 2.0
    settings = configure(simulator.url, simulator.verify, SFPIPE_BULK_THRESHOLD=str(counts["Campaign"]))

    first = make_extractor(settings, object_store).run(objects, mode="full")
    assert first.status == "completed", first.summary()
    assert first.objects["Task"].api == "bulk" and first.objects["Campaign"].api == "rest"
    before = {o: read_state(object_store, settings.state_bucket, o) for o in objects}

    # the simulator damages these answers on their way out
    simulator.admin.set_faults(malformed_json_objects=["Campaign"], unknown_type_objects=["Account"],
                               truncated_csv_objects=["Task"])
    try:
        second = make_extractor(settings, object_store).run(objects, mode="full")
    finally:
        simulator.admin.clear_faults()
    assert second.status == "partial"
    failed = second.failed
    assert sorted(failed) == ["Account", "Campaign", "Task"], second.summary()
    assert "malformed JSON" in failed["Campaign"]
    assert "Account.Hologram__c: unknown Salesforce field type 'hologram'" in failed["Account"]
    assert "truncated" in failed["Task"]

    [manifest] = [m for m in lake.manifests() if m.run_id == second.run_id]
    assert sorted(manifest.objects) == ["Product2", "UserRole"]
    assert manifest.failed == failed
    for sobject in ("Account", "Campaign", "Task"):
        assert read_state(object_store, settings.state_bucket, sobject) == before[sobject], sobject
        assert second.objects[sobject].entry is None
    for sobject in ("Product2", "UserRole"):
        assert manifest.objects[sobject].rows == counts[sobject]
    events = completed_events.pull(2)
    assert events[-1]["data"]["failed"] == failed



def test_a_run_killed_mid_object_and_rerun_gives_the_same_result_and_one_manifest(
    configure, simulator_factory, object_store, lake, completed_events
):
    import os
    import signal
    import subprocess
    import sys
    import time

    from sfpipe.ids import new_run_id
    from sfpipe.lake import RUNS_PREFIX

    slow = simulator_factory(faults={"latency_ms": 60})
    objects = ["Account", "Contact", "Opportunity", "Task", "Event", "Lead", "Case", "CampaignMember"]
    settings = configure(slow.url, slow.verify, SFPIPE_BULK_THRESHOLD="1000", SFPIPE_BULK_PAGE_RECORDS="200",
                         SFPIPE_EXTRACT_CONCURRENCY="2")
    run_id = new_run_id()
    command = [sys.executable, "-m", "sfpipe", "extract", "--run-id", run_id, *[f"-o{o}" for o in objects]]
    child = subprocess.Popen(command, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             start_new_session=True)
    lines: list[bytes] = []
    deadline = time.monotonic() + 120
    assert child.stdout is not None
    while time.monotonic() < deadline:
        line = child.stdout.readline()
        if not line:
            break
        lines.append(line)
        # kill once the second wave of objects has started and rows are flowing
        if sum(b"holds" in entry for entry in lines) >= 3:
            break
    os.killpg(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    output = b"".join(lines).decode(errors="replace")
    assert child.returncode == -signal.SIGKILL, output
    assert "wrote gs://" not in output, "the run finished before it could be killed"

    run_prefix = f"{RUNS_PREFIX}{run_id}/"
    assert list(object_store.list(settings.lake_bucket, run_prefix)) == []
    for sobject in objects:
        assert read_state(object_store, settings.state_bucket, sobject) == (None, 0), sobject

    rerun = make_extractor(settings, object_store).run(objects, mode="incremental", run_id=run_id)
    assert rerun.status == "completed", rerun.summary()
    assert [o.name for o in object_store.list(settings.lake_bucket, run_prefix)] == [f"{run_prefix}_manifest.json"]
    again = make_extractor(settings, object_store).run(objects, mode="incremental", run_id=run_id)
    assert again.status == "completed", again.summary()
    assert [o.name for o in object_store.list(settings.lake_bucket, run_prefix)] == [f"{run_prefix}_manifest.json"]

    [manifest] = lake.manifests()
    client = SalesforceClient.from_settings(settings)
    for sobject in objects:
        listed = {f.uri for f in manifest.objects[sobject].files}
        prefix = next(iter(listed)).split("/", 3)[3].rsplit("/", 1)[0] + "/"
        assert {o.uri for o in object_store.list(settings.lake_bucket, prefix)} == listed, sobject
        got = lake.latest(sobject, ["Id", "IsDeleted"] if sobject != "User" else ["Id"])
        assert set(got) == set(source_versions(client, sobject)), sobject
        assert manifest.objects[sobject].rows == len(got), f"{sobject}: duplicate rows"


def test_a_connection_dropped_mid_chunk_is_resumed_without_losing_or_repeating_rows(
    configure, simulator, object_store, lake, completed_events, monkeypatch, caplog
):
    import re

    import sfpipe_extractor.convert

    # small CSV blocks, so that rows of a chunk are handed on before its connection drops
    monkeypatch.setattr(sfpipe_extractor.convert, "CSV_BLOCK_BYTES", 16 << 10)
    settings = configure(simulator.url, simulator.verify, SFPIPE_BULK_THRESHOLD="0", SFPIPE_BULK_PAGE_RECORDS="2000")
    # the simulator hangs up in the middle of the first results chunk of each job of these objects
    simulator.admin.set_faults(dropped_connection_objects=["Contact", "Task"])
    try:
        with caplog.at_level("INFO", logger="sfpipe_extractor.bulk"):
            report = make_extractor(settings, object_store).run(["Contact", "Task"], mode="full")
    finally:
        simulator.admin.clear_faults()
    assert report.status == "completed", report.summary()
    resumed = [int(n) for n in re.findall(r"chunk cut off after (\d+) rows", caplog.text)]
    assert len(resumed) == 2 and all(n > 0 for n in resumed), caplog.text
    client = SalesforceClient.from_settings(settings)
    for sobject in ("Contact", "Task"):
        table = lake.read_object(sobject)
        ids = table.column("Id").to_pylist()
        assert len(ids) == len(set(ids)) == client.count(sobject, include_deleted=True), sobject
        assert set(ids) == set(source_versions(client, sobject)), sobject
        assert report.objects[sobject].api == "bulk"


def assert_lake_equals_truth(lake, admin, objects, manifests):
    """The newest version of each Id across every manifest equals the simulator's truth, deletes included."""
    deleted_total = 0
    for sobject in objects:
        fields = [f.name for f in manifests[-1].objects[sobject].fields]
        truth, _ = admin.truth(sobject)
        assert set(fields) <= set(truth.column_names), sobject
        expected = {row["Id"]: tuple(row[c] for c in fields) for row in truth.select(fields).to_pylist()}
        got = lake.latest(sobject, fields)
        missing, extra = set(expected) - set(got), set(got) - set(expected)
        assert not missing and not extra, f"{sobject}: {len(missing)} missing, {len(extra)} extra"
        stale = {i for i in expected if expected[i] != got[i]}
        if stale:
            sample = next(iter(stale))
            diff = {c: (e, g) for c, e, g in zip(fields, expected[sample], got[sample], strict=True) if e != g}
            raise AssertionError(f"{sobject}: {len(stale)} stale rows, e.g. {sample}: {diff}")
        if "IsDeleted" in fields:
            deleted_total += sum(1 for row in expected.values() if row[fields.index("IsDeleted")])
        live = {i for i, row in expected.items() if "IsDeleted" not in fields or not row[fields.index("IsDeleted")]}
        for manifest in manifests:
            entry = manifest.objects.get(sobject)
            hard = set(entry.hard_deleted_ids) if entry else set()
            assert not hard & live, f"{sobject}: live records reported as hard-deleted: {sorted(hard & live)[:5]}"
    assert deleted_total > 0, "the org should hold soft-deleted rows"


def test_full_then_activity_then_incremental_under_faults_equals_the_truth(
    configure, simulator, object_store, lake, completed_events
):
    import time

    admin = simulator.admin
    settings = configure(simulator.url, simulator.verify, SFPIPE_BULK_THRESHOLD="2000")
    admin.set_faults(error_rate_429=0.03, error_rate_500=0.02, error_rate_503=0.03, session_expiry_rate=0.02,
                     query_timeout_rows=3000, seed=3)
    try:
        full = make_extractor(settings, object_store).run(OBJECTS, mode="full")
        assert full.status == "completed", full.summary()
        applied = admin.apply_changes(600)
        kinds = applied["applied"]
        assert any("delete" in k for k in kinds), kinds
        time.sleep(2.1)  # every change is older than the incremental run's window end (start − 1 s)
        incremental = make_extractor(settings, object_store).run(OBJECTS, mode="incremental")
        assert incremental.status == "completed", incremental.summary()
        injected = admin.faults()
    finally:
        admin.clear_faults()

    counts = injected.get("injected", {})
    assert sum(counts.values()) >= 5 and counts.get("session_expiry"), injected
    assert {r.api for r in full.objects.values()} >= {"bulk", "rest"}
    assert any(r.api in ("rest", "mixed") and r.rows > 3000 for r in full.objects.values()), "expected a split window"

    manifests = lake.manifests()
    assert [m.run_id for m in manifests] == sorted([full.run_id, incremental.run_id])
    second = next(m for m in manifests if m.run_id == incremental.run_id)
    first = next(m for m in manifests if m.run_id == full.run_id)
    changed = 0
    for sobject in OBJECTS:
        entry = second.objects[sobject]
        assert entry.window_from == first.objects[sobject].watermark - timedelta(seconds=settings.lookback_seconds)
        assert entry.watermark >= first.objects[sobject].watermark
        changed += entry.rows
    assert 0 < changed < sum(first.objects[o].rows for o in OBJECTS) / 2
    assert_lake_equals_truth(lake, admin, OBJECTS, [first, second])


def test_the_run_stops_before_its_share_of_the_daily_api_limit(configure, simulator, object_store, lake,
                                                               completed_events):
    admin = simulator.admin
    admin.reset_limits()
    objects = ["Account", "Contact", "Lead", "Opportunity", "Case", "Task", "Event", "Campaign"]
    # the simulated org allows 1,000,000 requests a day: a share of 0.002 % is 20 requests
    settings = configure(simulator.url, simulator.verify, SFPIPE_API_LIMIT_SHARE="0.00002",
                         SFPIPE_EXTRACT_CONCURRENCY="1")
    report = make_extractor(settings, object_store).run(objects, mode="full")
    assert report.status == "partial", report.summary()
    stopped = {o: e for o, e in report.failed.items() if "stopping before the daily API limit" in e}
    assert stopped and set(report.failed) == set(stopped), report.failed
    done = [o for o, r in report.objects.items() if r.status == "done"]
    assert done, "the first objects should finish before the budget is reached"
    for sobject in stopped:
        assert read_state(object_store, settings.state_bucket, sobject) == (None, 0)
    [manifest] = lake.manifests()
    assert sorted(manifest.objects) == sorted(done) and manifest.failed == report.failed
