"""The loader on the real lake (fake-gcs-server), a DuckDB warehouse and the Pub/Sub emulator."""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner

from sfpipe.events import StorageObject
from sfpipe.lake import ManifestField
from sfpipe_loader import lakegen
from sfpipe_loader.loader import Loader
from sfpipe_loader.testing import T0, accounts, opp_id, opportunities, table_rows

pytestmark = pytest.mark.integration


def event_for(uri: str, store) -> StorageObject:
    stat = store.stat(uri)
    bucket, name = uri[5:].split("/", 1)
    return StorageObject(bucket=bucket, name=name, generation=stat.generation)


def load(loader: Loader, uri: str, **kwargs):
    obj = event_for(uri, loader.store)
    return loader.load_object_event(obj, obj.key, **kwargs)


def current(warehouse, table="opportunity") -> dict[str, dict]:
    return {r["Id"]: r for r in warehouse.query(f"SELECT * FROM `sfpipe_raw.{table}`").to_pylist()}


def test_a_run_lands_with_metadata_and_events(loader, lake, warehouse, bus):
    manifest, uri = lake.run(
        {"Opportunity": [opportunities([1, 2, 3], [1, 1, 1]), opportunities([4], [2])], "Account": [accounts([1, 2], [1, 1])]}
    )
    result = load(loader, uri)
    assert result.ok, result.summary()
    assert {n: (r.inserted, r.updated, r.deleted) for n, r in result.objects.items()} == {
        "Account": (2, 0, 0),
        "Opportunity": (4, 0, 0),
    }
    rows = current(warehouse)
    assert set(rows) == {opp_id(n) for n in (1, 2, 3, 4)}
    row = rows[opp_id(4)]
    assert row["_run_id"] == manifest.run_id
    assert row["_source"] == "batch"
    assert row["_version"] == row["SystemModstamp"] == T0 + timedelta(hours=2)
    assert row["_commit_number"] == 0
    assert row["_hard_deleted"] is False
    assert row["IsDeleted"] is False
    changes = warehouse.query("SELECT Id, _source_file FROM `sfpipe_raw.opportunity__changes`").to_pylist()
    assert sorted(c["_source_file"].rsplit("/", 1)[-1] for c in changes) == [
        "part-00000.parquet", "part-00000.parquet", "part-00000.parquet", "part-00001.parquet"
    ]
    assert all(c["_source_file"].startswith(f"gs://{lake.bucket}/salesforce/Opportunity/") for c in changes)
    # the raw table has the Salesforce columns in describe order, then the metadata
    names = warehouse.table_schema(pa_ref("opportunity")).names
    assert names[: len(lakegen.OPPORTUNITY_FIELDS)] == [n for n, _ in lakegen.OPPORTUNITY_FIELDS]
    assert names[len(lakegen.OPPORTUNITY_FIELDS) :] == [
        "_run_id", "_ingested_at", "_source", "_version", "_commit_number", "_hard_deleted"
    ]
    # ops: one loads row per object, the run's load stage, the processed records
    loads = warehouse.query("SELECT object, status, path, inserted FROM `sfpipe_ops.loads` ORDER BY object").to_pylist()
    assert loads == [
        {"object": "Account", "status": "loaded", "path": "warehouse", "inserted": 2},
        {"object": "Opportunity", "status": "loaded", "path": "warehouse", "inserted": 4},
    ]
    stage = warehouse.query("SELECT status, rows, detail FROM `sfpipe_ops.runs` WHERE stage = 'load'").to_pylist()
    assert [(s["status"], s["rows"]) for s in stage] == [("succeeded", 6)]
    assert json.loads(stage[0]["detail"])["path"] == "warehouse"
    # the extract stage comes from the manifest (the extractor writes no warehouse rows)
    extract = warehouse.query("SELECT status, rows, started_at, ended_at, detail FROM `sfpipe_ops.runs` WHERE stage = 'extract'").to_pylist()
    assert [(e["status"], e["rows"]) for e in extract] == [("succeeded", 6)]
    assert extract[0]["started_at"] == manifest.created_at
    assert json.loads(extract[0]["detail"])["objects"]["Opportunity"]["rows"] == 4
    [event] = bus.pull("sfpipe.load.completed")
    assert event["attributes"]["ce-type"] == "sfpipe.load.completed"
    assert event["attributes"]["ce-source"] == "//sfpipe/loader"
    assert event["data"]["run_id"] == manifest.run_id
    assert event["data"]["manifest_uri"] == uri
    assert {k: (v["inserted"], v["updated"], v["deleted"], v["path"]) for k, v in event["data"]["objects"].items()} == {
        "Account": (2, 0, 0, "warehouse"),
        "Opportunity": (4, 0, 0, "warehouse"),
    }
    # no staging table or view is left behind
    leftovers = warehouse.query(
        "SELECT table_name FROM information_schema.tables WHERE STARTS_WITH(table_name, '_stage')"
    )
    assert leftovers.num_rows == 0


def pa_ref(table):
    from sfpipe.adapters.warehouse.base import TableRef

    return TableRef("sfpipe_raw", table)


def test_same_event_again_changes_nothing(loader, lake, warehouse, bus):
    _, uri = lake.run({"Opportunity": [opportunities([1, 2], [1, 1])]})
    assert load(loader, uri).ok
    before = (table_rows(warehouse, "opportunity"), table_rows(warehouse, "opportunity__changes"))
    again = load(loader, uri)
    assert again.ok
    assert [r.status for r in again.objects.values()] == ["skipped"]
    assert (again.objects["Opportunity"].inserted, again.objects["Opportunity"].updated) == (2, 0)
    assert (table_rows(warehouse, "opportunity"), table_rows(warehouse, "opportunity__changes")) == before


def test_overlapping_windows_leave_one_row_per_id(loader, lake, warehouse):
    # run 1: records 1-4; run 2 overlaps: 3 and 4 again (same versions) plus a newer 2 and a new 5
    _, first = lake.run({"Opportunity": [opportunities([1, 2, 3, 4], [1, 1, 1, 1])]})
    _, second = lake.run({"Opportunity": [opportunities([3, 4], [1, 1]), opportunities([2, 5], [3, 3], seed=9)]})
    assert load(loader, first).ok
    result = load(loader, second)
    assert (result.objects["Opportunity"].inserted, result.objects["Opportunity"].updated) == (1, 1)
    rows = current(warehouse)
    assert len(rows) == 5 == warehouse.scalar("SELECT count(*) FROM `sfpipe_raw.opportunity`")
    assert rows[opp_id(2)]["_version"] == T0 + timedelta(hours=3)
    assert warehouse.scalar("SELECT count(DISTINCT Id) FROM `sfpipe_raw.opportunity`") == 5


def test_an_older_version_arriving_later_does_not_overwrite(loader, lake, warehouse):
    _, newer = lake.run({"Opportunity": [opportunities([1], [5], seed=1)]})
    _, older = lake.run({"Opportunity": [opportunities([1], [2], seed=2)]})
    assert load(loader, newer).ok
    kept = current(warehouse)[opp_id(1)]
    result = load(loader, older)
    assert (result.objects["Opportunity"].inserted, result.objects["Opportunity"].updated) == (0, 0)
    assert current(warehouse)[opp_id(1)] == kept
    # the change log still records the older version it was offered
    versions = warehouse.query(
        "SELECT _version FROM `sfpipe_raw.opportunity__changes` ORDER BY _version"
    ).column(0).to_pylist()
    assert versions == [T0 + timedelta(hours=2), T0 + timedelta(hours=5)]


def test_duplicates_within_a_run_keep_the_newest_and_the_later_file_on_a_tie(loader, lake, warehouse):
    early = opportunities([1, 2], [1, 4], seed=1)
    late = opportunities([1, 2], [3, 4], seed=2)
    _, uri = lake.run({"Opportunity": [early, late]})
    assert load(loader, uri).ok
    rows = current(warehouse)
    assert rows[opp_id(1)]["Name"] == late.column("Name")[0].as_py()
    assert rows[opp_id(2)]["Name"] == late.column("Name")[1].as_py()
    assert rows[opp_id(2)]["_version"] == T0 + timedelta(hours=4)


def test_hard_deleted_ids_mark_rows_with_a_winning_version(loader, lake, warehouse, bus):
    _, first = lake.run({"Opportunity": [opportunities([1, 2, 3], [1, 1, 1])]})
    assert load(loader, first).ok
    before = current(warehouse)[opp_id(2)]
    repair = lakegen.ObjectPart([], hard_deleted_ids=[opp_id(2), opp_id(99)], kind="repair")
    manifest, uri = lake.run({"Opportunity": repair}, mode="repair")
    result = load(loader, uri)
    assert result.ok, result.summary()
    assert (result.objects["Opportunity"].inserted, result.objects["Opportunity"].deleted) == (0, 1)
    after = current(warehouse)
    assert len(after) == 3
    row = after[opp_id(2)]
    assert row["IsDeleted"] is True and row["_hard_deleted"] is True
    assert row["_version"] == manifest.created_at
    assert row["_run_id"] == manifest.run_id
    assert row["Name"] == before["Name"] and row["Amount"] == before["Amount"]
    # an older copy of the record arriving later cannot bring it back
    _, late = lake.run({"Opportunity": [opportunities([2], [20])]})
    assert load(loader, late).ok
    assert current(warehouse)[opp_id(2)]["_hard_deleted"] is True


def test_schema_evolution_adds_and_widens_but_never_drops(loader, lake, warehouse):
    _, first = lake.run({"Opportunity": [opportunities([1], [1])]})
    assert load(loader, first).ok
    fields = [(n, t) for n, t in lakegen.OPPORTUNITY_FIELDS if n != "NextStep"] + [("Region__c", "picklist")]
    fields = [(n, "double") if n == "FiscalYear" else (n, t) for n, t in fields]
    table = lakegen.records("Opportunity", np.array([2]), np.array([np.datetime64("2026-03-02T00:00:00")]), fields=fields)
    table = table.set_column(table.schema.get_field_index("FiscalYear"), "FiscalYear", pa.array([2026.5]))
    table = table.set_column(table.schema.get_field_index("Region__c"), "Region__c", pa.array(["EMEA"]))
    part = lakegen.ObjectPart([table], fields=fields)
    _, second = lake.run({"Opportunity": part})
    result = load(loader, second)
    assert result.ok, result.summary()
    assert result.objects["Opportunity"].added == ["Region__c"]
    assert result.objects["Opportunity"].widened == ["FiscalYear"]
    schema = warehouse.table_schema(pa_ref("opportunity"))
    assert "NextStep" in schema.names and "Region__c" in schema.names
    assert schema.field("FiscalYear").type == pa.float64()
    assert warehouse.table_schema(pa_ref("opportunity__changes")).field("FiscalYear").type == pa.float64()
    rows = current(warehouse)
    assert rows[opp_id(2)]["Region__c"] == "EMEA" and rows[opp_id(2)]["FiscalYear"] == 2026.5
    assert rows[opp_id(1)]["Region__c"] is None and rows[opp_id(1)]["NextStep"] is not None


@pytest.mark.parametrize("problem", ["corrupt", "missing", "incompatible"])
def test_a_bad_object_fails_alone_and_leaves_its_tables_as_they_were(problem, loader, lake, warehouse, bus):
    _, first = lake.run({"Opportunity": [opportunities([1, 2], [1, 1])], "Account": [accounts([1], [1])]})
    assert load(loader, first).ok
    bus.drain("sfpipe.load.completed")
    before = (table_rows(warehouse, "opportunity"), table_rows(warehouse, "opportunity__changes"))
    schema_before = warehouse.table_schema(pa_ref("opportunity"))
    good = opportunities([3], [2])
    if problem == "corrupt":
        part = lakegen.ObjectPart([good, opportunities([4], [2])], corrupt={1})
    elif problem == "missing":
        part = lakegen.ObjectPart([good, opportunities([4], [2])], missing={1})
    else:
        strings = pa.array(["twelve"])
        fields = [(n, "string") if n == "Amount" else (n, t) for n, t in lakegen.OPPORTUNITY_FIELDS]
        fields.append(("Region__c", "picklist"))
        bad = opportunities([3], [2], overrides={"Amount": strings, "Region__c": pa.array(["EMEA"])})
        part = lakegen.ObjectPart([bad], fields=fields)
    manifest, uri = lake.run({"Opportunity": part, "Account": [accounts([2], [2])]})
    result = load(loader, uri)
    assert not result.ok
    assert result.objects["Account"].status == "loaded"
    assert result.objects["Opportunity"].status == "failed"
    reason = result.failed["Opportunity"]
    expected = {"corrupt": "not readable Parquet", "missing": "is missing", "incompatible": "incompatible type change"}
    assert expected[problem] in reason
    if problem == "incompatible":
        assert "Amount is FLOAT64 in the raw table and STRING in the new data" in reason
    # the failed object's tables are exactly as they were: rows, log and schema
    assert (table_rows(warehouse, "opportunity"), table_rows(warehouse, "opportunity__changes")) == before
    assert warehouse.table_schema(pa_ref("opportunity")) == schema_before
    assert warehouse.scalar("SELECT count(*) FROM `sfpipe_raw.account`") == 2
    [failed] = bus.pull("sfpipe.load.failed")
    assert failed["data"]["run_id"] == manifest.run_id
    assert failed["data"]["objects"] == {"Opportunity": reason}
    assert set(failed["data"]["loaded"]) == {"Account"}
    assert not bus.drain("sfpipe.load.completed", 0.5)
    loads = warehouse.query(
        f"SELECT object, status, error FROM `sfpipe_ops.loads` WHERE run_id = '{manifest.run_id}' ORDER BY object"
    ).to_pylist()
    assert [(r["object"], r["status"]) for r in loads] == [("Account", "loaded"), ("Opportunity", "failed")]
    # a retry of the same event loads nothing twice and fails the same way
    again = load(loader, uri)
    assert again.objects["Account"].status == "skipped"
    assert again.failed == result.failed
    assert warehouse.scalar("SELECT count(*) FROM `sfpipe_raw.account__changes`") == 2


def test_a_manifest_that_does_not_validate_fails_naming_the_field(loader, lake, warehouse, bus):
    manifest, uri = lake.run({"Opportunity": [opportunities([1], [1])]}, upload_manifest=False)
    document = json.loads(manifest.model_dump_json())
    document["objects"]["Opportunity"]["rows"] = -5
    lake.store.put_bytes(uri, json.dumps(document).encode(), content_type="application/json")
    result = load(loader, uri)
    assert not result.ok
    assert "objects.Opportunity.rows" in result.reason
    [failed] = bus.pull("sfpipe.load.failed")
    assert failed["data"]["run_id"] == manifest.run_id
    assert "objects.Opportunity.rows" in failed["data"]["reason"]
    assert not warehouse.table_exists(pa_ref("opportunity"))


def test_an_event_for_an_older_manifest_generation_is_ignored(loader, lake, warehouse):
    manifest, uri = lake.run({"Opportunity": [opportunities([1], [1])]})
    old = event_for(uri, lake.store)
    lake.store.put_bytes(uri, manifest.model_dump_json().encode(), content_type="application/json")
    result = loader.load_object_event(old, old.key)
    assert result.ignored and "generation" in result.ignored
    assert not warehouse.table_exists(pa_ref("opportunity"))


def test_formula_refresh_replaces_an_equal_version(loader, lake, warehouse):
    _, first = lake.run({"Opportunity": [opportunities([1], [1], seed=1)]})
    assert load(loader, first).ok
    refreshed = opportunities([1], [1], seed=2)
    assert refreshed.column("Amount")[0] != current(warehouse)[opp_id(1)]["Amount"]
    _, same_version = lake.run({"Opportunity": [refreshed]})
    assert load(loader, same_version).objects["Opportunity"].updated == 0
    _, formula = lake.run({"Opportunity": lakegen.ObjectPart([refreshed], kind="formula")})
    assert load(loader, formula).objects["Opportunity"].updated == 1
    assert current(warehouse)[opp_id(1)]["Amount"] == refreshed.column("Amount")[0].as_py()


def test_unknown_describe_type_keeps_the_file_type(loader, lake, warehouse):
    fields = [*lakegen.OPPORTUNITY_FIELDS]
    manifest, uri = lake.run({"Opportunity": [opportunities([1], [1])]}, upload_manifest=False)
    manifest.objects["Opportunity"].fields.append(ManifestField(name="Amount", type="futuretype"))
    lake.store.put_bytes(uri, manifest.model_dump_json().encode(), content_type="application/json")
    assert len(fields) == len(lakegen.OPPORTUNITY_FIELDS)
    assert load(loader, uri).ok
    assert warehouse.table_schema(pa_ref("opportunity")).field("Amount").type == pa.float64()


def test_sfpipe_load_command(local_settings, lake, object_store, tmp_path, monkeypatch, bus):
    from sfpipe.cli import main
    from sfpipe.config import reset_settings

    monkeypatch.setenv("SFPIPE_WAREHOUSE_PATH", str(tmp_path / "cli.duckdb"))
    reset_settings()
    _, uri = lake.run({"Opportunity": [opportunities([1, 2], [1, 1])]})
    runner = CliRunner()
    first = runner.invoke(main, ["load", uri, "--json"], catch_exceptions=False)
    assert first.exit_code == 0, first.output
    body = json.loads(first.stdout)
    assert body["objects"]["Opportunity"]["inserted"] == 2 and body["path"] == "warehouse"
    second = runner.invoke(main, ["load", uri, "--json"], catch_exceptions=False)
    assert second.exit_code == 0 and "already loaded" in second.stdout
    bad = runner.invoke(main, ["load", f"gs://{lake.bucket}/salesforce/Opportunity/x.parquet"])
    assert bad.exit_code != 0 and "not a run manifest" in bad.output
    [event] = bus.pull("sfpipe.load.completed")
    assert event["data"]["objects"]["Opportunity"]["inserted"] == 2
