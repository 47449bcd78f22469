"""Vectorised steps of the load pipeline: bucketing rows by Id and splitting Arrow tables.

Nothing here touches a row as a Python object: one Parquet batch becomes at most one
table per bucket, and the per-Id work happens in :func:`sfpipe.raw.newest_per_id`.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sfpipe.raw import KEY

_PRIME = np.uint64(1099511628211)
_OFFSET = np.uint64(14695981039346656037)


def _fixed_width_hash(ids: pa.StringArray, width: int) -> np.ndarray:
    """FNV-1a over every character of equal-length ids, all rows at once."""
    offset = ids.offset
    data = np.frombuffer(ids.buffers()[2], dtype=np.uint8)
    start = int(np.frombuffer(ids.buffers()[1], dtype=np.int32)[offset])
    chars = data[start : start + width * len(ids)].reshape(len(ids), width)
    h = np.full(len(ids), _OFFSET, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for i in range(width):
            h ^= chars[:, i].astype(np.uint64)
            h *= _PRIME
    return h


def bucket_of(ids: pa.Array | pa.ChunkedArray, buckets: int) -> np.ndarray:
    """A stable bucket in ``[0, buckets)`` per Id (the same on every worker and every run)."""
    if buckets <= 1:
        return np.zeros(len(ids), dtype=np.int64)
    array = ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids
    if array.null_count:
        msg = "Ids must not be NULL when bucketing"
        raise ValueError(msg)
    array = array.cast(pa.string())
    lengths = pc.utf8_length(array) if len(array) else pa.array([], pa.int32())
    bounds = pc.min_max(lengths).as_py() if len(array) else {"min": 0, "max": 0}
    if len(array) and bounds["min"] == bounds["max"] and bounds["min"] > 0 and pc.all(
        pc.equal(pc.binary_length(array), lengths)
    ).as_py():
        hashed = _fixed_width_hash(array, int(bounds["min"]))
    else:
        import pandas as pd

        hashed = pd.util.hash_array(np.asarray(array.to_numpy(zero_copy_only=False), dtype=object))
    return (hashed % np.uint64(buckets)).astype(np.int64)


def split_by_bucket(table: pa.Table, buckets: int) -> Iterator[tuple[int, pa.Table]]:
    """The table's rows grouped by the bucket of their Id (NULL Ids dropped)."""
    table = table.filter(pc.is_valid(table[KEY]))
    if table.num_rows == 0:
        return
    if buckets <= 1:
        yield 0, table
        return
    assigned = bucket_of(table[KEY], buckets)
    order = np.argsort(assigned, kind="stable")
    counts = np.bincount(assigned, minlength=buckets)
    start = 0
    for bucket, count in enumerate(counts):
        if count:
            # a copy per bucket, not a slice: a slice would be serialised with its parent's buffers
            yield bucket, table.take(pa.array(order[start : start + int(count)]))
        start += int(count)
