"""Choosing the load path, and both paths giving the same raw tables for the same manifests."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pytest

from sfpipe.adapters import factory
from sfpipe.adapters.warehouse.duckdb.client import DuckDBWarehouse
from sfpipe.adapters.warehouse.duckdb.session import EmbeddedSession
from sfpipe.config import LoadPath, load_settings
from sfpipe.events import StorageObject
from sfpipe.lake import Manifest, ManifestFile, ManifestObject
from sfpipe_loader import lakegen
from sfpipe_loader.loader import Loader
from sfpipe_loader.paths import choose_path
from sfpipe_loader.testing import accounts, opp_id, opportunities, table_rows


def manifest(rows: int, size: int) -> Manifest:
    file = ManifestFile(uri="gs://lake/salesforce/Opportunity/p.parquet", generation=1, rows=rows, bytes=size)
    entry = ManifestObject(
        files=[file], rows=rows, window_from=None, window_to=datetime(2026, 1, 1, tzinfo=UTC),
        schema_fingerprint="x", watermark=None,
    )
    return Manifest(run_id="20260101T000000Z-0a1b2c3d", created_at=datetime(2026, 1, 1, tzinfo=UTC),
                    objects={"Opportunity": entry, "Account": entry})


@pytest.mark.parametrize(
    ("rows", "size", "setting", "forced", "expected"),
    [
        (1_000, 10_000, "auto", None, LoadPath.WAREHOUSE),
        (3_000_000, 10_000, "auto", None, LoadPath.BEAM),  # 6M rows over two objects > 5M
        (2_000_000, 10_000, "auto", None, LoadPath.WAREHOUSE),
        (1_000, 3 * 1024**3, "auto", None, LoadPath.BEAM),  # bytes decide too
        (1_000, 10_000, "beam", None, LoadPath.BEAM),
        (10_000_000, 10_000, "warehouse", None, LoadPath.WAREHOUSE),
        (10_000_000, 10_000, "auto", LoadPath.WAREHOUSE, LoadPath.WAREHOUSE),
        (1, 1, "warehouse", LoadPath.BEAM, LoadPath.BEAM),
    ],
)
def test_path_is_chosen_per_run_by_size(rows, size, setting, forced, expected):
    settings = load_settings(load_path=setting)
    choice = choose_path(manifest(rows, size), settings, forced=forced)
    assert choice.path is expected
    assert choice.rows == 2 * rows and choice.bytes == 2 * size


def test_only_the_objects_still_to_load_count():
    settings = load_settings()
    assert choose_path(manifest(3_000_000, 1), settings, objects=["Account"]).path is LoadPath.WAREHOUSE


def loaded(loader: Loader, uri: str, forced: LoadPath):
    stat = loader.store.stat(uri)
    bucket, name = uri[5:].split("/", 1)
    obj = StorageObject(bucket=bucket, name=name, generation=stat.generation)
    return loader.load_object_event(obj, obj.key, forced=forced)


@pytest.mark.integration
@pytest.mark.slow
def test_warehouse_and_beam_paths_give_identical_raw_tables(local_settings, lake, object_store, warehouse, tmp_path):
    beam_warehouse = DuckDBWarehouse(
        EmbeddedSession(tmp_path / "beam.duckdb"), store=object_store, scratch=tmp_path / "beam-scratch"
    )
    loaders = {
        LoadPath.WAREHOUSE: Loader(local_settings, warehouse, object_store, None),
        LoadPath.BEAM: Loader(
            local_settings, beam_warehouse, object_store, None, launcher=lambda: factory.pipeline_launcher(local_settings)
        ),
    }
    # run 1: duplicates across files (newer in either file, and exact ties), two objects
    first_files = [
        opportunities(range(0, 60), [1] * 60, seed=1),
        opportunities(range(40, 100), [2] * 20 + [1] * 40, seed=2),  # 40-59 newer here; 60-99 new
        opportunities(range(90, 120), [1] * 30, seed=3),  # 90-99 tie with file 1 at the same version
    ]
    _, first = lake.run({"Opportunity": first_files, "Account": [accounts(range(10), [1] * 10)]})
    # run 2: overlap, an older version, a hard delete, a widened and a new column
    fields = [(n, "double") if n == "FiscalYear" else (n, t) for n, t in lakegen.OPPORTUNITY_FIELDS]
    fields.append(("Region__c", "picklist"))
    newer = lakegen.records(
        "Opportunity", np.arange(100, 130), np.full(30, np.datetime64("2026-03-01T05:00:00"), dtype="datetime64[us]"),
        fields=fields, seed=4,
    )
    newer = newer.set_column(newer.schema.get_field_index("Region__c"), "Region__c", pa.array(["EMEA"] * 30))
    older = lakegen.records(
        "Opportunity", np.arange(0, 5), np.full(5, np.datetime64("2026-02-01T00:00:00"), dtype="datetime64[us]"),
        fields=fields, seed=5,
    )
    part = lakegen.ObjectPart([newer, older], fields=fields, hard_deleted_ids=[opp_id(7), opp_id(8)], kind="repair")
    _, second = lake.run({"Opportunity": part, "Account": [accounts(range(5, 15), [3] * 10)]})

    results = {}
    for path, loader in loaders.items():
        results[path] = [loaded(loader, first, path), loaded(loader, second, path)]
        assert all(r.ok for r in results[path]), [r.summary() for r in results[path]]
        assert {r.objects["Opportunity"].path for r in results[path]} == {path.value}

    def counts(path):
        return [{n: (o.inserted, o.updated, o.deleted) for n, o in r.objects.items()} for r in results[path]]

    assert counts(LoadPath.WAREHOUSE) == counts(LoadPath.BEAM)
    assert counts(LoadPath.WAREHOUSE)[0]["Opportunity"] == (120, 0, 0)
    for table in ("opportunity", "opportunity__changes", "account", "account__changes"):
        assert warehouse.table_schema(ref(table)) == beam_warehouse.table_schema(ref(table)), table
        assert table_rows(warehouse, table) == table_rows(beam_warehouse, table), table
    assert warehouse.scalar("SELECT count(*) FROM `sfpipe_raw.opportunity`") == 130
    assert warehouse.scalar("SELECT count(*) FROM `sfpipe_raw.opportunity` WHERE _hard_deleted") == 2
    # the Beam path leaves no staging files behind
    assert not list((tmp_path / "home").glob("tmp/beam/*/staging/*/*.parquet"))
    beam_warehouse.close()


def ref(table):
    from sfpipe.adapters.warehouse.base import TableRef

    return TableRef("sfpipe_raw", table)
