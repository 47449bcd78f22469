"""Buckets and checksums: the same on both sides, and a drill-down that opens only what differs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from sfpipe.adapters.warehouse.transpile import to_duckdb_one
from sfpipe.config import Settings
from sfpipe_reconciler.buckets import Bucket, differing, hash_sql, row_hash, width_for
from sfpipe_reconciler.listing import Listing, epoch_ms
from sfpipe_reconciler.rawside import RawSide
from sfpipe_reconciler.reconcile import ObjectCheck, Reconciler
from sfpipe_simulator.ids import make_ids

BASE = datetime(2026, 3, 1, tzinfo=UTC)


def test_the_python_hash_equals_the_sql_hash():
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("CREATE TABLE t (Id VARCHAR, v TIMESTAMPTZ)")
    rows = [("0064a0000000001AAA", BASE), ("0064a0000000002AAA", BASE + timedelta(seconds=1)), ("0064a0000000003AAA", None)]
    con.executemany("INSERT INTO t VALUES (?, ?)", rows)
    got = con.execute(to_duckdb_one(f"SELECT Id, {hash_sql('v')} AS h FROM t ORDER BY Id")).fetchall()
    assert got == [(i, row_hash(i, epoch_ms(v))) for i, v in rows]
    assert all(0 <= h < 2**60 for _, h in got)


def test_bucket_width_grows_with_the_object():
    assert width_for(1_000, 256) == 1
    assert width_for(1_000_000, 256) == 2
    assert width_for(10_000_000, 256) == 3
    assert differing({"a": Bucket(1, 5), "b": Bucket(2, 7)}, {"a": Bucket(1, 5), "c": Bucket(1, 1)}) == ["b", "c"]


def _settings(tmp_path) -> Settings:
    return Settings(home=tmp_path / "home", reconcile_bucket_rows=256)


@pytest.mark.slow
def test_the_drill_down_finds_one_changed_record_among_a_million(duckdb_warehouse, tmp_path):
    n = 1_000_000
    ids = make_ids("006", "4a", np.arange(1, n + 1, dtype=np.int64))
    stamps = pa.array(
        (np.datetime64(BASE.replace(tzinfo=None), "s") + np.arange(n) % 86_400).astype("datetime64[us]"),
        pa.timestamp("us", tz="UTC"),
    )
    raw_rows = pa.table({"Id": ids, "IsDeleted": pa.array(np.zeros(n, dtype=bool)), "SystemModstamp": stamps,
                         "_hard_deleted": pa.array(np.zeros(n, dtype=bool))})  # fmt: skip
    duckdb_warehouse.ensure_dataset("sfpipe_raw")
    from sfpipe.adapters.warehouse.base import TableRef

    duckdb_warehouse.load_arrow(TableRef("sfpipe_raw", "opportunity"), raw_rows, replace=True)
    changed = 654_321
    source_stamps = stamps.to_numpy(zero_copy_only=False).copy()
    source_stamps[changed] = source_stamps[changed] + np.timedelta64(5, "s")
    with Listing(tmp_path / "scratch") as listing:
        listing.reset("Opportunity")
        for start in range(0, n, 200_000):
            stop = min(n, start + 200_000)
            listing.append("Opportunity", ids.slice(start, stop - start),
                           pa.array(source_stamps[start:stop], pa.timestamp("us", tz="UTC")))  # fmt: skip
        side = RawSide(duckdb_warehouse, "Opportunity")
        check = ObjectCheck("Opportunity", "full", datetime.now(UTC))
        reconciler = Reconciler(client=None, warehouse=duckdb_warehouse, settings=_settings(tmp_path))  # type: ignore[arg-type]
        reconciler._compare_all({"Opportunity": check}, {"Opportunity": side}, listing)
    assert check.stale == [ids[changed].as_py()]
    assert check.missing == [] and check.extra == []
    assert check.buckets == 62**2 and check.buckets_differing == 1


def test_missing_extra_stale_ahead_and_pending_are_told_apart(duckdb_warehouse, tmp_path):
    ids = [f"0014a000000000{i:01d}AAA" for i in range(1, 10)]
    versions = [BASE + timedelta(minutes=i) for i in range(9)]
    snapshot = BASE + timedelta(hours=2)
    # the last row is not in the listing either, but reached the warehouse after the snapshot (CDC of a
    # transaction that began before it and committed after the listing started)
    raw_rows = pa.table({
        "Id": [*ids[:7], "0014a00000000ZZAAA", "0014a00000000ZYAAA"],
        "IsDeleted": [False] * 9,
        "SystemModstamp": [*versions[:3], versions[3] - timedelta(minutes=30), versions[4] + timedelta(minutes=30), *versions[5:7], versions[0], snapshot - timedelta(seconds=1)],
        "_ingested_at": [BASE + timedelta(hours=1)] * 8 + [snapshot + timedelta(seconds=1)],
        "_hard_deleted": [False] * 9,
    })  # fmt: skip
    from sfpipe.adapters.warehouse.base import TableRef

    duckdb_warehouse.ensure_dataset("sfpipe_raw")
    duckdb_warehouse.load_arrow(TableRef("sfpipe_raw", "account"), raw_rows, replace=True)
    with Listing(tmp_path / "scratch") as listing:
        listing.reset("Account")
        listing.append("Account", pa.array(ids), pa.array(versions, pa.timestamp("us", tz="UTC")))
        check = ObjectCheck("Account", "full", snapshot, complete_to=versions[8])
        reconciler = Reconciler(client=None, warehouse=duckdb_warehouse, settings=_settings(tmp_path))  # type: ignore[arg-type]
        reconciler._compare_all({"Account": check}, {"Account": RawSide(duckdb_warehouse, "Account")}, listing)
    assert check.stale == [ids[3]]          # the raw layer has an older version
    assert check.ahead == [ids[4], "0014a00000000ZYAAA"]  # newer, or ingested after the listing's snapshot
    assert check.missing == [ids[7]]        # not in the raw layer at all
    assert check.pending == [ids[8]]        # changed at the end of the extract window: the next extract's
    assert check.extra == ["0014a00000000ZZAAA"]  # gone from Salesforce
