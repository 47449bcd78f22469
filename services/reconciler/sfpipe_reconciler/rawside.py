"""The raw layer's side of a reconciliation, in SQL through the warehouse adapter.

Every statement is BigQuery dialect (the local warehouse transpiles it): per-bucket counts and
checksums of the live rows (``_hard_deleted`` rows are tombstones of records the org no longer
has), the rows of the buckets that differ, rows by Id, and counts below a version.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sfpipe import raw
from sfpipe.adapters.warehouse.base import Warehouse
from sfpipe.ops import sql_literal
from sfpipe_reconciler.buckets import Bucket, bucket_sql, summarise, summary_sql

LIVE = "NOT COALESCE(`_hard_deleted`, FALSE)"
IDS_PER_QUERY = 5_000


def _ts(value: datetime) -> str:
    return sql_literal(value)


def _ms(value: object) -> int | None:
    """A version as epoch milliseconds (selected as such: no timestamp conversion per row)."""
    return int(value) if isinstance(value, int) else None


@dataclass(frozen=True)
class LiveRow:
    """A live raw row in a comparison's scope: its version, and when the warehouse got it.

    A row ingested after the listing's snapshot may belong to a transaction that committed after
    the listing began, even with a SystemModstamp before it (SystemModstamp is when the
    transaction started, to the second): absent from the listing, it is not yet proof of a delete.
    """

    version_ms: int | None
    ingested_ms: int | None


@dataclass(frozen=True)
class RawRow:
    """One raw row as reconciliation sees it."""

    version_ms: int | None
    hard_deleted: bool
    is_deleted: bool


class RawSide:
    """One object's raw table."""

    def __init__(self, warehouse: Warehouse, sobject: str) -> None:
        self.warehouse = warehouse
        self.sobject = sobject
        self.ref = raw.raw_ref(sobject)
        self.schema = warehouse.table_schema(self.ref)

    @property
    def exists(self) -> bool:
        """Whether the object has been loaded at all."""
        return self.schema is not None

    @property
    def columns(self) -> list[str]:
        """The raw table's Salesforce columns."""
        return [f.name for f in raw.salesforce_fields(self.schema)] if self.schema is not None else []

    @property
    def version(self) -> str:
        """The field that orders versions (SystemModstamp, else LastModifiedDate, else CreatedDate)."""
        return raw.version_field(self.columns)

    def _scope(self, since: datetime | None, *, before: bool = False) -> str:
        if since is None:
            return LIVE
        op = "<" if before else ">="
        return f"{LIVE} AND `{self.version}` {op} {_ts(since)}"

    def count(self, since: datetime | None = None, *, before: bool = False) -> int:
        """Live rows (at or after ``since``; before it with ``before``)."""
        value = self.warehouse.scalar(f"SELECT COUNT(*) FROM {self.ref.sql} WHERE {self._scope(since, before=before)}")
        return int(value) if isinstance(value, int) else 0

    def stats_sql(self, since: datetime | None) -> str:
        """Live rows, and those in scope (at or after ``since``), in one scan."""
        scope = f"COUNTIF(`{self.version}` >= {_ts(since)})" if since is not None else "COUNT(*)"
        return (f"SELECT {sql_literal(self.sobject)} AS object, COUNT(*) AS total, {scope} AS in_scope "
                f"FROM {self.ref.sql} WHERE {LIVE}")  # fmt: skip

    def summary_sql(self, width: int, since: datetime | None) -> str:
        """Count and checksum per bucket of the live rows in scope."""
        return summary_sql(self.ref.sql, f"`{self.version}`", width, self._scope(since))

    def summary(self, width: int, since: datetime | None = None) -> dict[str, Bucket]:
        """Count and checksum per bucket of the live rows in scope."""
        table = self.warehouse.query(summary_sql(self.ref.sql, f"`{self.version}`", width, self._scope(since)))
        return summarise(table.to_pylist())

    def rows_in(self, width: int, buckets: Iterable[str], since: datetime | None = None) -> dict[str, LiveRow]:
        """The live rows in scope that fall in the given buckets, by Id."""
        keys = sorted(set(buckets))
        ingested = f"UNIX_MILLIS(`{raw.INGESTED_AT}`)" if raw.INGESTED_AT in self.schema_names else "NULL"
        out: dict[str, LiveRow] = {}
        for start in range(0, len(keys), 1_000):
            part = ", ".join(sql_literal(k) for k in keys[start : start + 1_000])
            sql = (f"SELECT `Id`, UNIX_MILLIS(`{self.version}`) AS version, {ingested} AS ingested "
                   f"FROM {self.ref.sql} WHERE {self._scope(since)} AND {bucket_sql(width)} IN ({part})")  # fmt: skip
            for row in self.warehouse.query(sql).to_pylist():
                out[str(row["Id"])] = LiveRow(_ms(row["version"]), _ms(row["ingested"]))
        return out

    @property
    def schema_names(self) -> set[str]:
        """Every column of the raw table, metadata included."""
        return set(self.schema.names) if self.schema is not None else set()

    def rows_by_id(self, ids: Sequence[str]) -> dict[str, RawRow]:
        """Rows by Id, tombstones included."""
        deleted = "COALESCE(`IsDeleted`, FALSE)" if "IsDeleted" in self.columns else "FALSE"
        out: dict[str, RawRow] = {}
        for start in range(0, len(ids), IDS_PER_QUERY):
            part = ", ".join(sql_literal(i) for i in ids[start : start + IDS_PER_QUERY])
            sql = (f"SELECT `Id`, UNIX_MILLIS(`{self.version}`) AS version, COALESCE(`_hard_deleted`, FALSE) AS hard, "
                   f"{deleted} AS is_deleted FROM {self.ref.sql} WHERE `Id` IN ({part})")  # fmt: skip
            for row in self.warehouse.query(sql).to_pylist():
                out[str(row["Id"])] = RawRow(_ms(row["version"]), bool(row["hard"]), bool(row["is_deleted"]))
        return out


@dataclass(frozen=True)
class Stats:
    """Live rows of a raw table, and those in a comparison's scope."""

    total: int
    in_scope: int


def stats(warehouse: Warehouse, sides: dict[str, tuple[RawSide, datetime | None]]) -> dict[str, Stats]:
    """Row counts of several raw tables in one query (one statement to write, send and transpile)."""
    if not sides:
        return {}
    sql = "\nUNION ALL\n".join(side.stats_sql(since) for side, since in sides.values())
    out = {}
    for row in warehouse.query(sql).to_pylist():
        out[str(row["object"])] = Stats(int(row["total"] or 0), int(row["in_scope"] or 0))
    return out


def summaries(
    warehouse: Warehouse, sides: dict[str, tuple[RawSide, int, datetime | None]]
) -> dict[str, dict[str, Bucket]]:
    """Per-bucket counts and checksums of several raw tables in one query."""
    if not sides:
        return {}
    parts = [
        f"SELECT {sql_literal(name)} AS object, s.* FROM ({side.summary_sql(width, since)}) AS s"
        for name, (side, width, since) in sides.items()
    ]
    rows = warehouse.query("\nUNION ALL\n".join(parts)).to_pylist()
    out: dict[str, list[dict[str, object]]] = {name: [] for name in sides}
    for row in rows:
        out[str(row["object"])].append(row)
    return {name: summarise(found) for name, found in out.items()}
