"""Parquet parts and watermark state on fake-gcs-server."""

from __future__ import annotations

import io
import secrets
from datetime import UTC, date, datetime
from functools import partial

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sfpipe.lake import data_uri
from sfpipe_extractor.state import WatermarkConflictError, WatermarkState, read_state, write_state
from sfpipe_extractor.writer import ObjectWriter

pytestmark = pytest.mark.integration

SCHEMA = pa.schema([("Id", pa.string()), ("Amount", pa.float64()), ("Note", pa.string())])


def batch(start: int, rows: int) -> pa.Table:
    return pa.table(
        {
            "Id": [f"006{i:012d}" for i in range(start, start + rows)],
            "Amount": [float(i) for i in range(start, start + rows)],
            "Note": [secrets.token_hex(100) for _ in range(rows)],
        },
        schema=SCHEMA,
    )


def read_parquet(store, uri: str) -> pq.ParquetFile:
    data, _ = store.get_bytes(uri)
    return pq.ParquetFile(io.BytesIO(data))


def test_parts_are_zstd_with_bounded_row_groups_and_rolled_by_size(object_store, local_settings):
    part_uri = partial(data_uri, local_settings.lake_bucket, "Opportunity", date(2026, 1, 1), "20260101T000000Z-00000001")
    writer = ObjectWriter(object_store, part_uri, SCHEMA, row_group_bytes=1 << 20, part_bytes=2 << 20)
    for n in range(0, 40_000, 2_000):
        writer.write(batch(n, 2_000))
    files = writer.close()
    assert len(files) >= 2
    assert sum(f.rows for f in files) == writer.rows == 40_000
    assert [f.uri for f in files] == [part_uri(i) for i in range(len(files))]
    ids = []
    for f in files:
        stored = object_store.stat(f.uri)
        assert stored.generation == f.generation and stored.size == f.bytes
        parquet = read_parquet(object_store, f.uri)
        meta = parquet.metadata
        assert parquet.schema_arrow == SCHEMA
        for rg in range(meta.num_row_groups):
            assert meta.row_group(rg).column(0).compression == "ZSTD"
            assert meta.row_group(rg).total_byte_size < 128 << 20
        ids.extend(parquet.read().column("Id").to_pylist())
    assert ids == [f"006{i:012d}" for i in range(40_000)]


def test_aborted_part_never_appears_and_a_rerun_drops_stale_parts(object_store, local_settings):
    part_uri = partial(data_uri, local_settings.lake_bucket, "Account", date(2026, 1, 1), "20260101T000000Z-00000002")
    first = ObjectWriter(object_store, part_uri, SCHEMA, row_group_bytes=1 << 20, part_bytes=1 << 20)
    for n in range(0, 30_000, 3_000):
        first.write(batch(n, 3_000))
    assert len(first.close()) >= 3

    aborted = ObjectWriter(object_store, partial(data_uri, local_settings.lake_bucket, "Lead", date(2026, 1, 1),
                                                 "20260101T000000Z-00000002"), SCHEMA, row_group_bytes=1 << 20)
    aborted.write(batch(0, 20_000))  # a row group is uploaded, the part stays open
    aborted.abort()
    assert not object_store.exists(data_uri(local_settings.lake_bucket, "Lead", date(2026, 1, 1),
                                            "20260101T000000Z-00000002", 0))

    again = ObjectWriter(object_store, part_uri, SCHEMA)
    again.write(batch(0, 100))
    files = again.close()
    assert [f.uri for f in files] == [part_uri(0)]
    prefix = part_uri(0).rsplit("/", 1)[0].split("/", 3)[3]
    assert [o.uri for o in object_store.list(local_settings.lake_bucket, prefix)] == [part_uri(0)]


def test_watermark_moves_only_from_the_generation_that_was_read(object_store, local_settings):
    bucket = local_settings.state_bucket
    assert read_state(object_store, bucket, "Account") == (None, 0)
    state = WatermarkState(object="Account", watermark=datetime(2024, 1, 1, tzinfo=UTC), run_id="20260101T000000Z-00000001",
                           fields=["Id"], updated_at=datetime.now(UTC))
    generation = write_state(object_store, bucket, state, 0)
    read, read_generation = read_state(object_store, bucket, "Account")
    assert read.watermark == state.watermark and read_generation == generation
    with pytest.raises(WatermarkConflictError, match="moved by another run"):
        write_state(object_store, bucket, state.model_copy(update={"watermark": datetime(2025, 1, 1, tzinfo=UTC)}), 0)
    assert read_state(object_store, bucket, "Account")[0].watermark == datetime(2024, 1, 1, tzinfo=UTC)
