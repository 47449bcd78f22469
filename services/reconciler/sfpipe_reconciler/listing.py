"""The source side's ``(Id, version)`` rows of one reconciliation, kept in a local DuckDB file.

An Id-only listing of a million records is tens of MB: it is streamed into a scratch DuckDB
file (which spills to disk, so memory stays flat), summarised per bucket with the same SQL
text the warehouse runs (transpiled the same way), and read back only for the buckets that
differ. The file is deleted when the reconciliation ends.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from sfpipe.adapters.warehouse.transpile import to_duckdb_one
from sfpipe_reconciler.buckets import Bucket, bucket_sql, summarise, summary_sql

TIMESTAMP = pa.timestamp("ms", tz="UTC")
_PLACEHOLDER = "src_listing_table"
"""The SQL is transpiled once per bucket width (the transpiler caches it) and the table named after."""


def _table(name: str) -> str:
    return "src_" + "".join(c if c.isalnum() else "_" for c in name.lower())


def epoch_ms(value: datetime | None) -> int | None:
    """A datetime as epoch milliseconds (what both sides' checksums hash)."""
    return None if value is None else int(value.timestamp() * 1000)


class Listing:
    """Per object, the source rows of this reconciliation: ``Id``, ``version`` and the chunk they came in."""

    def __init__(self, folder: Path | None = None, memory_limit: str = "256MB") -> None:
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
        self.folder = Path(tempfile.mkdtemp(prefix="reconcile-", dir=folder))
        self.con = duckdb.connect(str(self.folder / "listing.duckdb"))
        self.con.execute("SET TimeZone = 'UTC'")
        self.con.execute(f"SET memory_limit = '{memory_limit}'")
        self.con.execute(f"SET temp_directory = '{self.folder / 'spill'}'")

    def reset(self, sobject: str) -> None:
        """An empty table for an object."""
        self.con.execute(f"CREATE OR REPLACE TABLE {_table(sobject)} (Id VARCHAR, version TIMESTAMPTZ, chunk INTEGER)")

    def append(self, sobject: str, ids: pa.Array | pa.ChunkedArray, versions: pa.Array | pa.ChunkedArray,
               chunk: int = 0) -> int:  # fmt: skip
        """Add rows (Ids and their versions); returns how many."""
        if len(ids) == 0:
            return 0
        batch = pa.table({"Id": ids, "version": versions.cast(TIMESTAMP),
                          "chunk": pa.array([chunk] * len(ids), pa.int32())})  # fmt: skip
        self.con.register("_incoming", batch)
        try:
            self.con.execute(f"INSERT INTO {_table(sobject)} SELECT Id, version, chunk FROM _incoming")
        finally:
            self.con.unregister("_incoming")
        return len(ids)

    def drop_chunk(self, sobject: str, chunk: int) -> None:
        """Forget the rows of one chunk (it is read again)."""
        self.con.execute(f"DELETE FROM {_table(sobject)} WHERE chunk = ?", [chunk])

    def count(self, sobject: str) -> int:
        """Rows of an object."""
        rows = self.con.execute(f"SELECT count(*) FROM {_table(sobject)}").fetchall()
        return int(rows[0][0]) if rows else 0

    def summary(self, sobject: str, width: int) -> dict[str, Bucket]:
        """Count and checksum per bucket, with the warehouse's SQL (transpiled as the local warehouse does)."""
        sql = to_duckdb_one(summary_sql(_PLACEHOLDER, "`version`", width)).replace(_PLACEHOLDER, _table(sobject))
        cur = self.con.execute(sql)
        names = [d[0] for d in cur.description or []]
        return summarise(dict(zip(names, row, strict=True)) for row in cur.fetchall())

    def rows_in(self, sobject: str, width: int, buckets: Iterable[str]) -> dict[str, int | None]:
        """``{Id: version in epoch ms}`` of the rows in the given buckets."""
        keys = sorted(set(buckets))
        if not keys:
            return {}
        key = to_duckdb_one(bucket_sql(width, "Id"))
        marks = ", ".join("?" for _ in keys)
        rows = self.con.execute(
            f"SELECT Id, epoch_ms(version) FROM {_table(sobject)} WHERE {key} IN ({marks})", keys
        ).fetchall()
        return {r[0]: (int(r[1]) if r[1] is not None else None) for r in rows}

    def close(self) -> None:
        """Delete the file."""
        with contextlib.suppress(duckdb.Error):
            self.con.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> Listing:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
