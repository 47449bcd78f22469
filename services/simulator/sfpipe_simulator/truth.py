"""Truth export: every object's current rows (soft-deleted ones included), from one snapshot.

Reconciliation compares a warehouse copy against this. All objects are read inside one DuckDB
transaction, so they agree with each other and with the change-log position reported next to
them (``replay_id``): every change up to that position is in the export, none after it.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from sfpipe_simulator.metadata import OBJECTS, STANDARD_OBJECTS, ObjectDef, get_object
from sfpipe_simulator.store import CHANGES_TABLE, OrgStore

FORMATS = ("parquet", "csv")


@dataclass
class TruthExport:
    """What an export wrote: files per object, row counts, and the change-log position it reflects."""

    replay_id: int
    commit_number: int
    files: dict[str, Path] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)

    def manifest(self) -> dict[str, Any]:
        """JSON-ready summary (``_truth.json`` in a folder export)."""
        return {"replay_id": self.replay_id, "commit_number": self.commit_number, "rows": self.rows,
                "files": {k: v.name for k, v in self.files.items()}}  # fmt: skip


def resolve_objects(names: list[str] | None, store: OrgStore | None = None) -> list[ObjectDef]:
    """Objects by name (all of the org's when None); unknown names raise KeyError."""
    if not names:
        return list(store.object_defs()) if store is not None else [o for o in OBJECTS if o.name in STANDARD_OBJECTS]
    out = []
    for name in names:
        obj = get_object(name)
        if obj is None or (store is not None and not store.has_object(obj.name)):
            raise KeyError(name)
        out.append(obj)
    return out


@contextlib.contextmanager
def snapshot(store: OrgStore) -> Iterator[tuple[duckdb.DuckDBPyConnection, int, int]]:
    """A cursor inside one read transaction, with the change-log position it sees."""
    with store.reader() as cur:
        cur.execute("BEGIN TRANSACTION")
        try:
            rows = cur.execute(f"SELECT coalesce(max(replay_id), 0), coalesce(max(commit_number), 0) "
                               f"FROM {CHANGES_TABLE}").fetchall()  # fmt: skip
            yield cur, int(rows[0][0]), int(rows[0][1])
        finally:
            cur.execute("ROLLBACK")


def write_object(store: OrgStore, cur: duckdb.DuckDBPyConnection, obj: ObjectDef, path: Path, fmt: str) -> int:
    """One object's rows into a Parquet or CSV file; returns the row count."""
    reader = store.truth_reader(obj, cur)
    rows = 0
    if fmt == "parquet":
        with pq.ParquetWriter(path, reader.schema, compression="zstd") as writer:
            for batch in reader:
                writer.write_batch(batch)
                rows += batch.num_rows
        return rows
    with pacsv.CSVWriter(str(path), reader.schema) as csv_writer:
        for batch in reader:
            csv_writer.write_batch(batch)
            rows += batch.num_rows
    return rows


def export_truth(store: OrgStore, out_dir: Path, objects: list[str] | None = None, fmt: str = "parquet"
                 ) -> TruthExport:  # fmt: skip
    """Write ``<Object>.<fmt>`` files and ``_truth.json`` for every (or the named) object, from one snapshot."""
    if fmt not in FORMATS:
        msg = f"format must be one of {FORMATS}, got {fmt!r}"
        raise ValueError(msg)
    out_dir.mkdir(parents=True, exist_ok=True)
    with snapshot(store) as (cur, replay_id, commit_number):
        export = TruthExport(replay_id, commit_number)
        for obj in resolve_objects(objects, store):
            path = out_dir / f"{obj.name}.{fmt}"
            export.rows[obj.name] = write_object(store, cur, obj, path, fmt)
            export.files[obj.name] = path
    (out_dir / "_truth.json").write_text(json.dumps(export.manifest(), indent=2) + "\n")
    return export


def read_truth(folder: Path, name: str) -> pa.Table:
    """An exported object back as an Arrow table."""
    parquet = folder / f"{name}.parquet"
    if parquet.exists():
        return pq.read_table(parquet)
    return pacsv.read_csv(folder / f"{name}.csv")
