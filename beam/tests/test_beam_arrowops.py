"""The pipeline's vectorised steps: bucketing by Id, splitting, and picking the newest version."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sfpipe import raw
from sfpipe_beam.arrowops import bucket_of, split_by_bucket
from sfpipe_loader.lakegen import salesforce_ids


def test_buckets_are_stable_in_range_and_independent_of_slicing():
    ids = salesforce_ids("006", np.arange(10_000))
    buckets = bucket_of(ids, 7)
    assert buckets.min() >= 0 and buckets.max() < 7
    assert np.array_equal(bucket_of(ids.slice(1234, 500), 7), buckets[1234:1734])
    assert np.array_equal(bucket_of(pa.chunked_array([ids.slice(0, 10), ids.slice(10)]), 7), buckets)
    counts = np.bincount(buckets, minlength=7)
    assert counts.min() > 10_000 / 7 * 0.8  # spread, not piled into one bucket
    assert np.array_equal(bucket_of(ids, 1), np.zeros(10_000))


def test_ids_of_different_lengths_take_the_general_hash():
    ids = pa.array(["001A", "001AB", "006Dn000000000aAAA", "é", "001A"])
    buckets = bucket_of(ids, 5)
    assert buckets[0] == buckets[4]
    assert all(0 <= b < 5 for b in buckets)
    with pytest.raises(ValueError, match="NULL"):
        bucket_of(pa.array(["a", None]), 3)


def test_split_by_bucket_keeps_every_row_once_and_drops_null_ids():
    ids = salesforce_ids("006", np.arange(1000))
    table = pa.table({"Id": pa.concat_arrays([ids, pa.array([None], pa.string())]), "n": np.arange(1001)})
    parts = dict(split_by_bucket(table, 4))
    assert sum(p.num_rows for p in parts.values()) == 1000
    assert sorted(pa.concat_tables(parts.values())["n"].to_pylist()) == list(range(1000))
    for bucket, part in parts.items():
        assert set(bucket_of(part["Id"], 4)) == {bucket}


T0 = datetime(2026, 1, 1, tzinfo=UTC)
rows = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c", "d", None]),
        st.one_of(st.none(), st.integers(0, 3)),
        st.integers(0, 2),
        st.sampled_from(["gs://l/f0", "gs://l/f1", "gs://l/f2"]),
        st.integers(0, 10**6),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(rows)
def test_newest_per_id_picks_what_the_warehouse_picks(items):
    """Same order as the MERGE's QUALIFY: version, commit number, file, all descending, NULLs last."""
    table = pa.table(
        {
            "Id": pa.array([i[0] for i in items], pa.string()),
            "_version": pa.array([None if i[1] is None else T0 + timedelta(hours=i[1]) for i in items], raw.TIMESTAMP),
            "_commit_number": pa.array([i[2] for i in items], pa.int64()),
            "_source_file": pa.array([i[3] for i in items], pa.string()),
            "payload": pa.array([i[4] for i in items], pa.int64()),
        }
    )
    picked = raw.newest_per_id(table, ["_version", "_commit_number"], ["_source_file"])
    assert picked["Id"].null_count == 0
    assert sorted(picked["Id"].to_pylist()) == sorted({i[0] for i in items if i[0] is not None})
    con = duckdb.connect()
    con.register("staged", table)
    expected = con.sql(
        "SELECT Id, _version, _commit_number, _source_file FROM staged WHERE Id IS NOT NULL "
        "QUALIFY row_number() OVER (PARTITION BY Id ORDER BY _version DESC NULLS LAST, "
        "_commit_number DESC, _source_file DESC) = 1"
    ).fetchall()
    key = ["Id", "_version", "_commit_number", "_source_file"]
    mine = [tuple(r[k] for k in key) for r in picked.select(key).to_pylist()]
    assert sorted(mine, key=str) == sorted(expected, key=str)

def test_normalise_casts_to_describe_types_and_canonical_widths():
    table = pa.table(
        {
            "Id": pa.array(["a"], pa.large_string()),
            "SystemModstamp": pa.array([datetime(2026, 1, 1, 12)], pa.timestamp("ms")),
            "NumberOfEmployees": pa.array([5], pa.int32()),
            "Industry": pa.array(["Energy"]).dictionary_encode(),
            "AnnualRevenue": pa.array([1], pa.int64()),
        }
    )
    out = raw.normalise(table, raw.declared_types([("AnnualRevenue", "currency")]))
    assert out.schema == pa.schema(
        [
            ("Id", pa.string()),
            ("SystemModstamp", raw.TIMESTAMP),
            ("NumberOfEmployees", pa.int64()),
            ("Industry", pa.string()),
            ("AnnualRevenue", pa.float64()),
        ]
    )
    assert out["SystemModstamp"][0].as_py() == datetime(2026, 1, 1, 12, tzinfo=UTC)
    with pytest.raises(raw.SchemaConflict, match="AnnualRevenue"):
        raw.normalise(pa.table({"AnnualRevenue": ["lots"]}), raw.declared_types([("AnnualRevenue", "currency")]))
