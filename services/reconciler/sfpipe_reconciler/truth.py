"""``sfpipe reconcile --against truth``: every raw table against the simulator's truth export.

The simulator knows what its org holds; its truth export (one snapshot of every object, soft-
deleted rows included) is the answer a perfect pipeline reaches. Per object this compares the
row counts and, per Id, a hash of every field the truth has, and names the missing, extra and
different records and the columns that differ. Raw rows marked ``_hard_deleted`` are tombstones
of records the org no longer has: they must be absent from the truth and are not compared.
Both sides go into a local DuckDB file with the truth's types, so that memory stays flat and the
hashes are computed by one engine.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sfpipe import raw
from sfpipe.adapters.warehouse.base import Warehouse
from sfpipe.config import Settings

log = logging.getLogger(__name__)

SAMPLE = 5


@dataclass
class TruthDiff:
    """How one raw table differs from the org."""

    sobject: str
    org_rows: int = 0
    raw_rows: int = 0
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    different: list[str] = field(default_factory=list)
    columns: dict[str, int] = field(default_factory=dict)
    """Columns that differ, and in how many records."""
    tombstoned_in_org: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def clean(self) -> bool:
        """The raw table equals the org's rows."""
        return self.error is None and not (self.missing or self.extra or self.different or self.tombstoned_in_org)

    def summary(self) -> dict[str, Any]:
        """JSON-ready, with samples of the Ids."""
        return {
            "org_rows": self.org_rows, "raw_rows": self.raw_rows, "missing": len(self.missing),
            "extra": len(self.extra), "different": len(self.different), "columns": self.columns,
            "hard_deleted_but_in_org": len(self.tombstoned_in_org), "error": self.error,
            "sample": {"missing": self.missing[:SAMPLE], "extra": self.extra[:SAMPLE],
                       "different": self.different[:SAMPLE]},
        }  # fmt: skip


def admin_client(settings: Settings) -> Any:
    """The simulator's admin client, at the org the Salesforce settings point to."""
    from sfpipe_simulator.client import AdminClient

    verify = settings.sf_verify_tls
    return AdminClient(settings.sf_login_url, settings.simulator_admin_token.get_secret_value(), verify=verify)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def against_truth(
    warehouse: Warehouse, admin: Any, objects: Sequence[str] | None = None, scratch: Path | None = None
) -> dict[str, TruthDiff]:
    """Compare every raw table (or the named ones) with one truth export of the org."""
    if scratch is not None:
        scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="truth-", dir=scratch) as tmp:
        folder = Path(tmp)
        manifest = admin.export_truth(folder / "export", list(objects) if objects else None)
        con = duckdb.connect(str(folder / "compare.duckdb"))
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"SET temp_directory = '{folder / 'spill'}'")
        try:
            return {
                name: _object(warehouse, con, name, folder / "export" / file)
                for name, file in sorted(manifest["files"].items())
            }
        finally:
            con.close()


def _object(warehouse: Warehouse, con: duckdb.DuckDBPyConnection, name: str, path: Path) -> TruthDiff:
    diff = TruthDiff(name)
    schema = pq.read_schema(path)
    con.execute(f"CREATE OR REPLACE TABLE t AS SELECT * FROM read_parquet('{path.as_posix()}')")
    diff.org_rows = int(con.execute("SELECT count(*) FROM t").fetchall()[0][0])
    ref = raw.raw_ref(name)
    have = warehouse.table_schema(ref)
    if have is None:
        if diff.org_rows:
            diff.error = f"no raw table; the org has {diff.org_rows} rows"
        return diff
    absent = [c for c in schema.names if c not in have.names]
    if absent:
        diff.error = f"columns missing from the raw table: {', '.join(absent[:10])}"
        return diff
    columns = schema.names
    con.execute("CREATE OR REPLACE TABLE r AS SELECT * FROM t WHERE FALSE")
    con.execute("CREATE OR REPLACE TABLE h (Id VARCHAR)")
    picked = ", ".join(f"`{c}`" for c in columns)
    sql = f"SELECT {picked}, COALESCE(`{raw.HARD_DELETED}`, FALSE) AS _hard FROM {ref.sql}"
    for batch in warehouse.query_batches(sql):
        hard = batch.column(batch.num_columns - 1)
        live = pa.Table.from_batches([batch]).filter(pc.invert(hard))
        tombs = pa.Table.from_batches([batch]).filter(hard)
        arrays = [live.column(c).cast(schema.field(c).type) for c in columns]
        _insert(con, "r", pa.Table.from_arrays(arrays, schema=schema))
        _insert(con, "h", tombs.select(["Id"]))
    diff.raw_rows = int(con.execute("SELECT count(*) FROM r").fetchall()[0][0])
    row = ", ".join(f"{_q(c)} := {_q(c)}" for c in columns)
    con.execute(f"CREATE OR REPLACE TABLE th AS SELECT Id, md5(CAST(struct_pack({row}) AS VARCHAR)) AS h FROM t")
    con.execute(f"CREATE OR REPLACE TABLE rh AS SELECT Id, md5(CAST(struct_pack({row}) AS VARCHAR)) AS h FROM r")
    diff.missing = _ids(con, "SELECT Id FROM th ANTI JOIN rh USING (Id) ORDER BY Id")
    diff.extra = _ids(con, "SELECT Id FROM rh ANTI JOIN th USING (Id) ORDER BY Id")
    diff.different = _ids(con, "SELECT th.Id FROM th JOIN rh USING (Id) WHERE th.h <> rh.h ORDER BY th.Id")
    diff.tombstoned_in_org = _ids(con, "SELECT Id FROM h SEMI JOIN t USING (Id) ORDER BY Id")
    if diff.different:
        counts = ", ".join(f"count_if(t.{_q(c)} IS DISTINCT FROM r.{_q(c)}) AS {_q(c)}" for c in columns)
        found = (con.execute(f"SELECT {counts} FROM t JOIN r USING (Id)").fetchall() or [()])[0]
        diff.columns = {c: int(n) for c, n in zip(columns, found, strict=True) if n}
    return diff


def _ids(con: duckdb.DuckDBPyConnection, sql: str) -> list[str]:
    return [str(r[0]) for r in con.execute(sql).fetchall()]


def _insert(con: duckdb.DuckDBPyConnection, table: str, data: pa.Table) -> None:
    if data.num_rows == 0:
        return
    con.register("_incoming", data)
    try:
        con.execute(f"INSERT INTO {table} SELECT * FROM _incoming")
    finally:
        con.unregister("_incoming")
