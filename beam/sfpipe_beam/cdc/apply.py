"""Applying folded changes to the raw layer through the warehouse adapter, column by column.

A CDC UPDATE carries only the columns it changed, so a row of ``sfpipe_raw.<object>`` can hold
columns from different versions. Each column is last-writer-wins: the version that last set it
is kept in ``sfpipe_ops.cdc_field_versions`` (one row per record and column, ``*`` for a
full-row change or a batch load), and a patch sets a column only when its version is newer than
that column's, the record's last full row, and a batch load that has since replaced the row.
That makes the result independent of delivery order and of duplicates; the row's own
``(_version, _commit_number)`` stays the newest change applied, as DESIGN.md §7 orders rows.

One batch is one transaction (every object of the batch): capture the versions of rows a batch
load wrote, compute which columns each patch may set, MERGE, record the column versions, log the
new row versions in ``<object>__changes``. The SQL is BigQuery's, written once. It names every
column of the raw table and reads which ones to set from the staged rows, so it stays the same
from batch to batch and the DuckDB backend transpiles it once per object.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pyarrow as pa

from sfpipe.adapters.warehouse.base import TableRef, Warehouse, check_name
from sfpipe.errors import SfpipeError
from sfpipe.ops import CDC_LAG, OPS, ensure_ops_tables, sql_literal
from sfpipe.raw import METADATA as RAW_METADATA
from sfpipe.raw import RAW_DATASET, RESERVED, RawLayer, changes_ref, raw_ref
from sfpipe_beam.cdc.changes import (
    DERIVED_TYPES,
    HARD_DELETED,
    TIMESTAMP,
    Change,
    Patch,
    column_types,
    fold,
    patch_table,
    version_table,
)

log = logging.getLogger(__name__)

FIELD_VERSIONS = TableRef(OPS, "cdc_field_versions")
FIELD_VERSIONS_SCHEMA = pa.schema(
    [
        ("entity", pa.string()),
        ("Id", pa.string()),
        ("field", pa.string()),
        ("_version", TIMESTAMP),
        ("_commit_number", pa.int64()),
        ("_sequence", pa.int64()),
    ]
)
SOURCE_FILE = "pubsub://sfpipe-cdc"
SCHEMA_TTL_SECONDS = 60.0
_ORDER = ("_version", "_commit_number", "_sequence")
_STATE_COLS = "entity, `Id`, field, `_version`, `_commit_number`, `_sequence`"
_STATE_VALS = "s.entity, s.`Id`, s.field, s.`_version`, s.`_commit_number`, s.`_sequence`"
_STATE_SET = "`_version` = s.`_version`, `_commit_number` = s.`_commit_number`, `_sequence` = s.`_sequence`"
_NAME_PARTS = ("FirstName", "LastName")


def _q(name: str) -> str:
    return f"`{check_name(name, 'column')}`"


def newer(a: str, b: str, columns: Sequence[str] = _ORDER, b_columns: Sequence[str] | None = None) -> str:
    """``a`` is strictly newer than ``b`` by the version columns; a missing ``b`` is older than anything.

    ``b_columns`` names ``b``'s version columns when they differ from ``a``'s.
    """
    other = b_columns or columns
    terms = []
    for i, col in enumerate(columns):
        equal = [f"{a}.{_q(prev)} = {b}.{_q(bprev)}" for prev, bprev in zip(columns[:i], other[:i], strict=True)]
        terms.append("(" + " AND ".join([*equal, f"{a}.{_q(col)} > {b}.{_q(other[i])}"]) + ")")
    return f"({b}.{_q(other[0])} IS NULL OR {' OR '.join(terms)})"


@dataclass
class ApplyResult:
    """What one batch did."""

    changes: int = 0
    records: int = 0
    objects: dict[str, int] = field(default_factory=dict)
    lag_ms: list[float] = field(default_factory=list)
    applied_at: datetime | None = None


class CdcApplier:
    """Writes batches of changes into one warehouse's raw layer."""

    def __init__(self, warehouse: Warehouse, *, instance: str | None = None, record_lag: bool = True) -> None:
        self.wh = warehouse
        self.raw = RawLayer(warehouse)
        self.instance = instance or secrets.token_hex(4)
        self.record_lag = record_lag
        self._ready = False
        self._schemas: dict[str, tuple[float, pa.Schema | None]] = {}

    def _stage(self, kind: str) -> TableRef:
        return TableRef(RAW_DATASET, f"_cdc_{kind}_{self.instance}")

    def ensure(self) -> None:
        """The ops tables (lag, column versions) and the raw dataset."""
        if self._ready:
            return
        ensure_ops_tables(self.wh)
        self.wh.create_table(FIELD_VERSIONS, FIELD_VERSIONS_SCHEMA, cluster_by=["entity", "Id"])
        self.wh.ensure_dataset(RAW_DATASET)
        self._ready = True

    def schema(self, entity: str, *, fresh: bool = False) -> pa.Schema | None:
        """The raw table's schema, read again after a minute (a batch load may have added columns)."""
        cached = self._schemas.get(entity)
        if fresh or cached is None or time.monotonic() - cached[0] > SCHEMA_TTL_SECONDS:
            cached = (time.monotonic(), self.wh.table_schema(raw_ref(entity)))
            self._schemas[entity] = cached
        return cached[1]

    # ------------------------------------------------------------------ one batch

    def apply(self, changes: Iterable[Change], *, run_id: str) -> ApplyResult:
        """Apply a batch (any order, duplicates allowed) in one transaction; returns what it did."""
        self.ensure()
        items = list(changes)
        result = ApplyResult(changes=len(items))
        if not items:
            return result
        patches = fold(items)
        result.records = len(patches)
        by_entity: dict[str, list[Patch]] = defaultdict(list)
        for (entity, _), patch in patches.items():
            by_entity[entity].append(patch)
        types_seen: dict[str, dict[str, str]] = defaultdict(dict)
        for change in items:
            types_seen[change.entity].update(change.field_types)
        ingested_at = datetime.now(UTC)
        columns = {e: self._columns(e, plist, types_seen[e]) for e, plist in sorted(by_entity.items())}
        groups = _groups(columns)
        versions = self._stage("fv")
        staged = [versions]
        try:
            self.wh.load_arrow(versions, version_table(list(patches.values())), replace=True)
            statements = self._common_before(versions, list(columns))
            for index, group in enumerate(groups):
                staging = self._stage(f"patch{index}")
                staged.append(staging)
                table = self._patch_table(group, by_entity, columns, run_id, ingested_at)
                self.wh.load_arrow(staging, table, replace=True)
                statements += self._group_statements(index, staging)
                for entity in group:
                    statements += self._entity_statements(entity, [f.name for f in columns[entity]], index)
                    result.objects[entity] = len(by_entity[entity])
            statements += self._common_after(len(groups))
            statements += [f"DROP TABLE {ref.sql}" for ref in staged]
            self.wh.execute(statements)
            staged = []
        except SfpipeError:
            self._schemas.clear()
            raise
        finally:
            for ref in staged:
                self.wh.drop_table(ref)
        result.applied_at = datetime.now(UTC)
        self._lag(items, result)
        return result

    def _lag(self, items: Sequence[Change], result: ApplyResult) -> None:
        assert result.applied_at is not None
        seen: set[str] = set()
        rows = []
        for change in items:
            key = change.event_id or f"{change.entity}:{change.record_id}:{change.version}"
            if key in seen:
                continue
            seen.add(key)
            lag = (result.applied_at - change.commit_timestamp).total_seconds() * 1000.0
            result.lag_ms.append(lag)
            rows.append((change.entity, change.record_id, change.commit_timestamp, lag))
        if self.record_lag and rows:
            self.wh.load_arrow(CDC_LAG, _lag_table(rows, result.applied_at))

    def _columns(self, entity: str, patches: Sequence[Patch], field_types: Mapping[str, str]) -> list[pa.Field]:
        """The raw table's Salesforce columns (Id excluded), after adding the ones these patches bring."""
        existing = self.schema(entity)
        have = set(existing.names) if existing is not None else set()
        carried = {n for p in patches for n in p.values} - {"Id"}
        # a derived column (IsDeleted, audit fields) only where the object has it: the raw table or describe says so
        carried = {n for n in carried if n not in DERIVED_TYPES or n == HARD_DELETED or n in have or n in field_types}
        new = sorted(n for n in carried if n not in have and n not in RESERVED)
        if existing is None or new:
            names = ["Id", *[f.name for f in existing or () if f.name not in RESERVED and f.name != "Id"], *new]
            types = column_types(names, existing, field_types)
            incoming = pa.schema([pa.field(n, types[n]) for n in dict.fromkeys(names)])
            _, ddl = self.raw.plan(entity, incoming, declared={f.name: f.type for f in incoming})
            if ddl:
                self.wh.execute(ddl)
            existing = self.schema(entity, fresh=True)
            assert existing is not None
        return [f for f in existing if f.name not in RESERVED and f.name != "Id"]

    @staticmethod
    def _patch_table(
        group: Sequence[str],
        by_entity: Mapping[str, Sequence[Patch]],
        columns: Mapping[str, Sequence[pa.Field]],
        run_id: str,
        ingested_at: datetime,
    ) -> pa.Table:
        """One staging table for the objects of a group: their columns side by side, ``_entity`` first."""
        types: dict[str, pa.DataType] = {"Id": pa.string()}
        for entity in group:
            types.update({f.name: f.type for f in columns[entity]})
        types[HARD_DELETED] = pa.bool_()
        tables = []
        for entity in group:
            table = patch_table(by_entity[entity], types)
            rows = table.num_rows
            table = table.add_column(0, pa.field("_entity", pa.string()), pa.array([entity] * rows, pa.string()))
            table = table.append_column(pa.field("_run_id", pa.string()), pa.array([run_id] * rows, pa.string()))
            stamps = pa.array([ingested_at] * rows, TIMESTAMP)
            table = table.append_column(pa.field("_ingested_at", TIMESTAMP), stamps)
            tables.append(table)
        return pa.concat_tables(tables)

    # ------------------------------------------------------------------ SQL

    def _name(self, kind: str) -> str:
        return check_name(f"_cdc_{kind}_{self.instance}", "table")

    def _common_before(self, versions: TableRef, entities: Sequence[str]) -> list[str]:
        """Batch-loaded rows' versions remembered, then which columns of which records may be set."""
        state = FIELD_VERSIONS.sql
        base, eff, keep = self._name("base"), self._name("eff"), self._name("keep")
        out = [
            f"CREATE TEMP TABLE {base} (entity STRING, `Id` STRING, field STRING, `_version` TIMESTAMP, "
            f"`_commit_number` INT64, `_sequence` INT64)"
        ]
        for entity in entities:
            raw, ent = raw_ref(entity).sql, sql_literal(entity)
            out.append(
                f"INSERT INTO {base} ({_STATE_COLS})\n"
                f"SELECT {ent}, r.`Id`, '*', r.`_version`, r.`_commit_number`, 0 FROM {raw} AS r\n"
                f"WHERE r.`_source` = 'batch' AND r.`_version` IS NOT NULL\n"
                f"  AND r.`Id` IN (SELECT `Id` FROM {versions.sql} WHERE entity = {ent})"
            )
        out += [
            f"MERGE {state} AS t\nUSING {base} AS s\n"
            f"ON t.entity = s.entity AND t.`Id` = s.`Id` AND t.field = s.field\n"
            f"WHEN MATCHED AND {newer('s', 't')} THEN UPDATE SET {_STATE_SET}\n"
            f"WHEN NOT MATCHED THEN INSERT ({_STATE_COLS}) VALUES ({_STATE_VALS})",
            f"CREATE TEMP TABLE {eff} AS\n"
            f"SELECT b.entity, b.`Id`, b.field, b.`_version`, b.`_commit_number`, b.`_sequence`\n"
            f"FROM {versions.sql} AS b\n"
            f"LEFT JOIN {state} AS f ON f.entity = b.entity AND f.`Id` = b.`Id` AND f.field = b.field\n"
            f"  AND f.field <> '*'\n"
            f"LEFT JOIN {state} AS a ON a.entity = b.entity AND a.`Id` = b.`Id` AND a.field = '*'\n"
            f"WHERE {newer('b', 'f')} AND {newer('b', 'a')}",
            f"CREATE TEMP TABLE {keep} AS\n"
            f"SELECT e.entity, e.`Id`, STRING_AGG(f.field, ',') AS keep\n"
            f"FROM {eff} AS e\n"
            f"JOIN {state} AS f ON f.entity = e.entity AND f.`Id` = e.`Id` AND f.field <> '*'\n"
            f"WHERE e.field = '*' AND {newer('f', 'e')}\n"
            f"GROUP BY e.entity, e.`Id`",
        ]
        return out

    def _group_statements(self, index: int, patch: TableRef) -> list[str]:
        """The staged rows of a group with the columns each may set (``_eff``, ``_star``, ``_keep``)."""
        eff, keep, src = self._name("eff"), self._name("keep"), self._name(f"src{index}")
        later = f"(m.`_version` IS NOT NULL AND {newer('m', 'p', ('_version', '_commit_number'))})"
        return [
            f"CREATE TEMP TABLE {src} AS\n"
            f"SELECT p.*, CONCAT(',', COALESCE(x.eff, ''), ',') AS `_eff`, x.star AS `_star`,\n"
            f"  CONCAT(',', COALESCE(k.keep, ''), ',') AS `_keep`, (x.star OR a.`Id` IS NOT NULL) AS `_complete`,\n"
            f"  IF({later}, m.`_version`, p.`_version`) AS `_newest_version`,\n"
            f"  IF({later}, m.`_commit_number`, p.`_commit_number`) AS `_newest_commit`\n"
            f"FROM {patch.sql} AS p\n"
            f"JOIN (SELECT entity, `Id`, STRING_AGG(IF(field = '*', NULL, field), ',') AS eff,\n"
            f"  LOGICAL_OR(field = '*') AS star FROM {eff} GROUP BY entity, `Id`) AS x\n"
            f"  ON x.entity = p.`_entity` AND x.`Id` = p.`Id`\n"
            f"LEFT JOIN {keep} AS k ON k.entity = p.`_entity` AND k.`Id` = p.`Id`\n"
            f"LEFT JOIN (SELECT entity, `Id` FROM {FIELD_VERSIONS.sql} WHERE field = '*') AS a\n"
            f"  ON a.entity = p.`_entity` AND a.`Id` = p.`Id`\n"
            # the newest version ever applied to the record (a row that was only patched has none of its own)
            f"LEFT JOIN (SELECT f.entity, f.`Id`, f.`_version`, f.`_commit_number` FROM {FIELD_VERSIONS.sql} AS f\n"
            f"  JOIN (SELECT DISTINCT `_entity`, `Id` FROM {patch.sql}) AS b\n"
            f"    ON b.`_entity` = f.entity AND b.`Id` = f.`Id`\n"
            f"  WHERE TRUE QUALIFY ROW_NUMBER() OVER (PARTITION BY f.entity, f.`Id`\n"
            f"    ORDER BY f.`_version` DESC, f.`_commit_number` DESC) = 1) AS m\n"
            f"  ON m.entity = p.`_entity` AND m.`Id` = p.`Id`"
        ]

    def _entity_statements(self, entity: str, columns: Sequence[str], index: int) -> list[str]:
        """One object's MERGE and change-log rows (the same SQL for the same columns and group)."""
        raw, log_table, ent = raw_ref(entity).sql, changes_ref(entity).sql, sql_literal(entity)
        src = self._name(f"src{index}")
        wanted = ["Id", *columns, "_hard_deleted", "_schema", "_eff", "_star", "_keep", "_complete", "_newest_version",
                  "_newest_commit", "_version",
                  "_commit_number", "_run_id", "_ingested_at"]  # fmt: skip
        source = f"(SELECT {', '.join(_q(c) for c in wanted)} FROM {src} WHERE `_entity` = {ent})"
        log_cols = ", ".join(_q(c) for c in ["Id", *columns, *RAW_METADATA.names])
        return [
            self._merge_sql(raw, source, columns),
            f"INSERT INTO {log_table} ({log_cols}, `_source_file`)\n"
            f"SELECT {log_cols}, {sql_literal(SOURCE_FILE)} FROM {raw}\n"
            f"WHERE `Id` IN (SELECT `Id` FROM {src} WHERE `_entity` = {ent})",
        ]

    def _common_after(self, groups: int) -> list[str]:
        """Record the column versions set, drop versions a newer full row made moot, drop the temp tables."""
        state = FIELD_VERSIONS.sql
        base, eff, keep = self._name("base"), self._name("eff"), self._name("keep")
        return [
            f"MERGE {state} AS t\nUSING {eff} AS s\n"
            f"ON t.entity = s.entity AND t.`Id` = s.`Id` AND t.field = s.field\n"
            f"WHEN MATCHED THEN UPDATE SET {_STATE_SET}\n"
            f"WHEN NOT MATCHED THEN INSERT ({_STATE_COLS}) VALUES ({_STATE_VALS})",
            f"DELETE FROM {state} AS f WHERE f.field <> '*' AND EXISTS (\n"
            f"  SELECT 1 FROM {eff} AS e WHERE e.field = '*' AND e.entity = f.entity AND e.`Id` = f.`Id`\n"
            f"  AND {newer('e', 'f')})",
            *[f"DROP TABLE {self._name(f'src{i}')}" for i in range(groups)],
            f"DROP TABLE {keep}",
            f"DROP TABLE {eff}",
            f"DROP TABLE {base}",
        ]

    @staticmethod
    def _merge_sql(raw: str, src: str, columns: Sequence[str]) -> str:
        def sets(name: str) -> str:
            mark = sql_literal(f",{name},")
            return (f"(STRPOS(s.`_eff`, {mark}) > 0 OR (s.`_star` AND STRPOS(s.`_schema`, {mark}) > 0 "
                    f"AND STRPOS(s.`_keep`, {mark}) = 0))")  # fmt: skip

        updates = {c: f"IF({sets(c)}, s.{_q(c)}, t.{_q(c)})" for c in columns}
        inserts = {c: f"s.{_q(c)}" for c in columns}
        if "IsDeleted" in inserts:
            inserts["IsDeleted"] = "COALESCE(s.`IsDeleted`, FALSE)"
        if all(n in columns for n in (*_NAME_PARTS, "Name")):
            # a person's full Name is not in change events: recomputed when a part is set, unless a newer
            # explicit Name (a repaired row's) is in place
            def full(first: str, last: str) -> str:
                return f"NULLIF(TRIM(CONCAT(COALESCE({first}, ''), ' ', COALESCE({last}, ''))), '')"

            parts = " OR ".join(sets(n) for n in _NAME_PARTS)
            derived = full(updates["FirstName"], updates["LastName"])
            updates["Name"] = (f"IF({sets('Name')}, s.`Name`, IF(({parts}) AND STRPOS(s.`_keep`, ',Name,') = 0, "
                               f"{derived}, t.`Name`))")  # fmt: skip
            inserts["Name"] = f"COALESCE(s.`Name`, {full('s.`FirstName`', 's.`LastName`')})"
        newer_row = newer("s", "t", ("_newest_version", "_newest_commit"), ("_version", "_commit_number"))
        assignments = [f"{_q(c)} = {expr}" for c, expr in updates.items()] + [
            f"`_hard_deleted` = IF({sets('_hard_deleted')}, s.`_hard_deleted`, t.`_hard_deleted`)",
            # a record only ever patched (its CREATE and every full read came before CDC started) has no
            # version of its own: the next batch load replaces it whole
            f"`_version` = IF(s.`_complete`, IF({newer_row}, s.`_newest_version`, t.`_version`), NULL)",
            f"`_commit_number` = IF(s.`_complete`, IF({newer_row}, s.`_newest_commit`, t.`_commit_number`), NULL)",
            "`_source` = 'cdc'",
            "`_run_id` = s.`_run_id`",
            "`_ingested_at` = s.`_ingested_at`",
        ]
        insert_cols = ["Id", *inserts, "_hard_deleted", "_version", "_commit_number", "_source", "_run_id",
                       "_ingested_at"]  # fmt: skip
        insert_vals = ["s.`Id`", *inserts.values(), "COALESCE(s.`_hard_deleted`, FALSE)",
                       "IF(s.`_complete`, s.`_newest_version`, NULL)", "IF(s.`_complete`, s.`_newest_commit`, NULL)",
                       "'cdc'",
                       "s.`_run_id`", "s.`_ingested_at`"]  # fmt: skip
        set_sql = ",\n    ".join(assignments)
        return (
            f"MERGE {raw} AS t\n"
            f"USING {src} AS s\n"
            f"ON t.`Id` = s.`Id`\n"
            f"WHEN MATCHED THEN UPDATE SET\n    {set_sql}\n"
            f"WHEN NOT MATCHED THEN INSERT ({', '.join(_q(c) for c in insert_cols)})\n"
            f"  VALUES ({', '.join(insert_vals)})"
        )


def _lag_table(rows: Sequence[tuple[str, str, datetime, float]], applied_at: datetime) -> pa.Table:
    return pa.table(
        {
            "entity": pa.array([r[0] for r in rows], pa.string()),
            "record_id": pa.array([r[1] for r in rows], pa.string()),
            "commit_timestamp": pa.array([r[2] for r in rows], TIMESTAMP),
            "applied_at": pa.array([applied_at] * len(rows), TIMESTAMP),
            "lag_ms": pa.array([r[3] for r in rows], pa.float64()),
        }
    )


def _groups(columns: Mapping[str, Sequence[pa.Field]]) -> list[list[str]]:
    """Objects whose columns can share one staging table (a name never has two types in a group)."""
    groups: list[tuple[list[str], dict[str, pa.DataType]]] = []
    for entity, fields in columns.items():
        for members, types in groups:
            if all(types.get(f.name, f.type) == f.type for f in fields):
                members.append(entity)
                types.update({f.name: f.type for f in fields})
                break
        else:
            groups.append(([entity], {f.name: f.type for f in fields}))
    return [members for members, _ in groups]
