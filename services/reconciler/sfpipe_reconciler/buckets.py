"""Buckets and checksums that both sides compute the same way.

A bucket is the last ``width`` characters of a record's 15-character Id (base 62). Salesforce
hands out record numbers in sequence, so the low digits spread records evenly over the
buckets, and a bucket is a plain substring that BigQuery, DuckDB and Python all compute alike.
Per bucket both sides take ``COUNT(*)`` and the XOR of a 60-bit hash of ``Id|version`` (the
version field, SystemModstamp, in epoch milliseconds). The hash is the first 15 hex digits of
MD5, which BigQuery (``TO_HEX(MD5(…))``), DuckDB (``md5``) and Python's ``hashlib`` give
identically; XOR makes the checksum independent of row order and lets a missing, an extra or
a changed record flip it. Only the buckets whose count or checksum differ are opened.

The SQL here is BigQuery's dialect; the local warehouse and the local side table transpile it
through :mod:`sfpipe.adapters.warehouse.transpile`, so the two sides run the same expression.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

ID_CHARS = 15
MAX_WIDTH = 3
BASE = 62


def width_for(rows: int, bucket_rows: int) -> int:
    """Id characters per bucket key: the fewest that keep buckets at about ``bucket_rows`` rows or fewer (×4)."""
    width = 1
    while width < MAX_WIDTH and rows > BASE**width * bucket_rows * 4:
        width += 1
    return width


def bucket_sql(width: int, column: str = "`Id`") -> str:
    """The bucket key of a row: the last ``width`` characters of the 15-character Id."""
    return f"SUBSTR({column}, {ID_CHARS + 1 - width}, {width})"


def hash_sql(version: str, column: str = "`Id`") -> str:
    """A 60-bit hash of ``Id|epoch milliseconds of version`` as INT64 (NULL versions hash as ``Id|``)."""
    text = f"CONCAT({column}, '|', COALESCE(CAST(UNIX_MILLIS({version}) AS STRING), ''))"
    return f"CAST(CONCAT('0x', SUBSTR(TO_HEX(MD5({text})), 1, 15)) AS INT64)"


def summary_sql(table: str, version: str, width: int, where: str = "") -> str:
    """``bucket, n, checksum`` per bucket of a table (BigQuery dialect)."""
    clause = f" WHERE {where}" if where else ""
    return (
        f"SELECT {bucket_sql(width)} AS bucket, COUNT(*) AS n, BIT_XOR({hash_sql(version)}) AS checksum "
        f"FROM {table}{clause} GROUP BY bucket"
    )


def row_hash(record_id: str, version_ms: int | None) -> int:
    """The same hash in Python (tests, and single rows)."""
    text = f"{record_id}|{'' if version_ms is None else version_ms}"
    return int(hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()[:15], 16)


@dataclass(frozen=True)
class Bucket:
    """One bucket's count and checksum."""

    rows: int
    checksum: int


Summary = Mapping[str, Bucket]


def summarise(rows: Iterable[Mapping[str, object]]) -> dict[str, Bucket]:
    """``{bucket: Bucket}`` from rows with ``bucket``, ``n`` and ``checksum``."""
    out: dict[str, Bucket] = {}
    for row in rows:
        checksum = row["checksum"]
        count = row["n"]
        out[str(row["bucket"])] = Bucket(int(count) if isinstance(count, int) else 0,
                                         int(checksum) if isinstance(checksum, int) else 0)  # fmt: skip
    return out


def differing(source: Summary, warehouse: Summary) -> list[str]:
    """Buckets whose count or checksum differ (a bucket only one side has differs too)."""
    keys = set(source) | set(warehouse)
    empty = Bucket(0, 0)
    return sorted(k for k in keys if source.get(k, empty) != warehouse.get(k, empty))
