"""The raw layer (DESIGN.md §7): a current-state table and a change log per Salesforce object.

``sfpipe_raw.<object>`` holds one row per ``Id``: the newest version by ``(_version,
_commit_number)`` wins and an older one never overwrites it, whichever path brought it.
``sfpipe_raw.<object>__changes`` is append-only: every version a load offered (the newest
per ``Id`` of that load, whether or not it won) with the file it came from.

Both load paths and the CDC stream go through :class:`RawLayer`. It takes a staging table
(Salesforce columns, optionally already carrying the metadata columns) or Arrow data and a
source tag, plans the schema change, and hands one MERGE per object to the warehouse:

- the staged rows are projected onto the raw table's types and given their metadata
  (``_version`` = ``SystemModstamp`` unless the rows carry one, as CDC rows do);
- the newest version per ``Id`` is ranked once and appended to ``__changes``; the effect
  count and the MERGE read exactly those rows back (the load's ``_ingested_at`` and
  ``_run_id`` select them), all in one transaction;
- hard-deleted Ids become tombstones: they set ``IsDeleted`` and ``_hard_deleted`` on an
  existing row with a version that wins, keep every other value, and never insert.

Schema evolution: a new column is added (to both tables), none is ever dropped, and a type
changes only by a written rule (:func:`plan_schema`); anything else fails the object before
a single row moves.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc

from sfpipe.adapters.warehouse import schema as wschema
from sfpipe.adapters.warehouse import sql as wsql
from sfpipe.adapters.warehouse.base import MergeResult, MergeSpec, TableRef, Warehouse, check_name
from sfpipe.errors import BadInputError, TerminalError
from sfpipe.ops import sql_literal

RAW_DATASET = "sfpipe_raw"
TIMESTAMP = pa.timestamp("us", tz="UTC")

KEY = "Id"
DELETED_FLAG = "IsDeleted"
RUN_ID = "_run_id"
INGESTED_AT = "_ingested_at"
SOURCE = "_source"
VERSION = "_version"
COMMIT_NUMBER = "_commit_number"
HARD_DELETED = "_hard_deleted"
SOURCE_FILE = "_source_file"

METADATA = pa.schema(
    [
        (RUN_ID, pa.string()),
        (INGESTED_AT, TIMESTAMP),
        (SOURCE, pa.string()),
        (VERSION, TIMESTAMP),
        (COMMIT_NUMBER, pa.int64()),
        (HARD_DELETED, pa.bool_()),
    ]
)
"""Columns the raw layer adds to every object's Salesforce fields, in this order."""

CHANGES_METADATA = pa.schema([*METADATA, pa.field(SOURCE_FILE, pa.string())])
"""The change log's metadata columns: the raw table's plus the file each version came from."""

RESERVED = frozenset(CHANGES_METADATA.names)

VERSION_FIELDS = ("SystemModstamp", "LastModifiedDate", "CreatedDate")
"""Where a batch row's version comes from: the first of these the object has."""

SOURCES = frozenset({"batch", "cdc"})

class SchemaConflict(TerminalError):
    """The new data's schema cannot be written into the raw table without losing information."""


def table_name(sobject: str) -> str:
    """The raw table of an object: its API name in lower case (``OpportunityLineItem`` → ``opportunitylineitem``)."""
    return check_name(sobject.lower(), "object")


def raw_ref(sobject: str) -> TableRef:
    """``sfpipe_raw.<object>``."""
    return TableRef(RAW_DATASET, table_name(sobject))


def changes_ref(sobject: str) -> TableRef:
    """``sfpipe_raw.<object>__changes``."""
    return TableRef(RAW_DATASET, f"{table_name(sobject)}__changes")


def stage_ref(sobject: str, token: str | None = None) -> TableRef:
    """A staging table for one load of an object, unique per load so that loads never share one.

    It lives in ``sfpipe_raw`` (the dataset the loader and the Dataflow workers may write),
    with a leading underscore, and is dropped when the load ends.
    """
    return TableRef(RAW_DATASET, f"_stage_{table_name(sobject)}_{token or secrets.token_hex(4)}")


def version_field(names: Sequence[str]) -> str:
    """The column a batch row's ``_version`` comes from."""
    for candidate in VERSION_FIELDS:
        if candidate in names:
            return candidate
    msg = f"the data has none of {', '.join(VERSION_FIELDS)}; one of them is needed to order versions"
    raise BadInputError(msg, field="schema")


def canonical_type(dtype: pa.DataType) -> pa.DataType:
    """The Arrow type sfpipe stores for a value type: one width per kind, timestamps in UTC microseconds."""
    if pa.types.is_dictionary(dtype):
        return canonical_type(dtype.value_type)
    if pa.types.is_large_string(dtype) or pa.types.is_string_view(dtype) or pa.types.is_null(dtype):
        return pa.string()
    if pa.types.is_large_binary(dtype):
        return pa.binary()
    if pa.types.is_integer(dtype):
        return pa.int64()
    if pa.types.is_floating(dtype):
        return pa.float64()
    if pa.types.is_timestamp(dtype):
        return TIMESTAMP
    if pa.types.is_date(dtype):
        return pa.date32()
    if pa.types.is_time(dtype):
        return pa.time64("us")
    return dtype


def declared_types(fields: Sequence[tuple[str, str]]) -> dict[str, pa.DataType]:
    """Arrow types from describe's ``(name, Salesforce type)`` pairs, through the one type mapping."""
    from sfpipe.salesforce.types import arrow_type

    return {name: arrow_type(sf_type) for name, sf_type in fields}


def salesforce_fields(schema: pa.Schema) -> list[pa.Field]:
    """The columns of a schema that are Salesforce fields (not sfpipe's metadata)."""
    return [f for f in schema if f.name not in RESERVED]


@dataclass(frozen=True)
class SchemaPlan:
    """How this load's columns fit the raw table, decided before any row moves."""

    fields: list[pa.Field]
    """The raw table's Salesforce columns after the load, in table order."""
    add: list[pa.Field] = field(default_factory=list)
    """New nullable columns (added to the raw table and the change log)."""
    widen: list[pa.Field] = field(default_factory=list)
    """Existing columns altered in place to a wider type."""
    casts: dict[str, pa.DataType] = field(default_factory=dict)
    """Staged columns whose values are cast on the way in, to the column's type."""
    exists: bool = True

    @property
    def types(self) -> dict[str, pa.DataType]:
        """Each Salesforce column's type in the raw table after the load."""
        return {f.name: f.type for f in self.fields}


def _bq(dtype: pa.DataType) -> str:
    return wschema.bigquery_type(dtype)


def plan_schema(
    sobject: str,
    existing: pa.Schema | None,
    incoming: pa.Schema,
    declared: Mapping[str, pa.DataType] | None = None,
) -> SchemaPlan:
    """Fit the incoming Salesforce columns to the raw table by the written rules.

    A column's incoming type is the one describe declared (through the one type mapping)
    when the manifest lists it, else the staged type made canonical. Then, per column:

    - not in the table: added, nullable, with the incoming type;
    - same warehouse type: nothing to do;
    - the incoming values fit the column (INT64 into FLOAT64, NUMERIC or STRING; NUMERIC
      into BIGNUMERIC, FLOAT64 or STRING; FLOAT64, BOOL, TIME into STRING; DATE into
      DATETIME, TIMESTAMP or STRING; DATETIME into TIMESTAMP or STRING): cast on the way in;
    - the column can be widened in place to the incoming type (INT64 to NUMERIC, BIGNUMERIC
      or FLOAT64; NUMERIC to BIGNUMERIC or FLOAT64): altered, then loaded;
    - anything else (a number becoming text, text becoming a date…): :class:`SchemaConflict`.

    Columns the table has and the data lacks are kept; loaded rows leave them as they were.
    """
    declared = declared or {}
    staged = salesforce_fields(incoming)
    if KEY not in [f.name for f in staged]:
        msg = f"{sobject}: the data has no {KEY} column"
        raise SchemaConflict(msg)
    targets = [pa.field(f.name, declared.get(f.name) or canonical_type(f.type)) for f in staged]
    staged_types = {f.name: f.type for f in staged}

    def cast_needed(name: str, to: pa.DataType) -> bool:
        return staged_types[name] != to

    if existing is None:
        initial = {t.name: t.type for t in targets if cast_needed(t.name, t.type)}
        return SchemaPlan(fields=targets, casts=initial, exists=False)

    current = salesforce_fields(existing)
    by_lower = {f.name.lower(): f for f in current}
    add: list[pa.Field] = []
    widen: list[pa.Field] = []
    casts: dict[str, pa.DataType] = {}
    final = {f.name: f for f in current}
    problems: list[str] = []
    for target in targets:
        column = by_lower.get(target.name.lower())
        if column is None:
            add.append(target)
            final[target.name] = target
            if cast_needed(target.name, target.type):
                casts[target.name] = target.type
            continue
        if column.name != target.name:
            problems.append(f"{target.name} differs only in case from the existing column {column.name}")
            continue
        rule = wschema.widening(column.type, target.type)
        if rule in ("same", "cast"):
            if cast_needed(target.name, column.type):
                casts[target.name] = column.type
        elif wschema.column_widening(column.type, target.type):
            widen.append(target)
            final[target.name] = target
            if cast_needed(target.name, target.type):
                casts[target.name] = target.type
        else:
            problems.append(
                f"{target.name} is {_bq(column.type)} in the raw table and {_bq(target.type)} in the new data"
            )
    if problems:
        msg = (
            f"{sobject}: incompatible type change ({'; '.join(problems)}). Allowed: a narrower value into a wider "
            "column, or widening INT64 to NUMERIC/BIGNUMERIC/FLOAT64 and NUMERIC to BIGNUMERIC/FLOAT64. "
            "Load into a new column or rebuild the table deliberately."
        )
        raise SchemaConflict(msg)
    fields = [final[f.name] for f in current] + add
    return SchemaPlan(fields=fields, add=add, widen=widen, casts=casts, exists=True)


@dataclass(frozen=True)
class RawLoad:
    """What one object's load changed."""

    result: MergeResult
    added: list[str] = field(default_factory=list)
    widened: list[str] = field(default_factory=list)
    tombstones: int = 0


def _q(name: str) -> str:
    return f"`{check_name(name, 'column')}`"


def _ts(value: datetime) -> str:
    return f"TIMESTAMP '{value.astimezone(UTC).isoformat()}'"


class RawLayer:
    """Writes objects into the raw layer of one warehouse."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse

    # -- schema -------------------------------------------------------------------------

    def _table_statements(
        self, ref: TableRef, existing: pa.Schema | None, plan: SchemaPlan, meta: pa.Schema
    ) -> list[str]:
        if existing is None:
            schema = pa.schema([*plan.fields, *meta])
            partition = INGESTED_AT if ref.table.endswith("__changes") else None
            return [wschema.create_table_sql(ref, schema, partition_by=partition, cluster_by=[KEY])]
        have = {f.name.lower(): f for f in existing}
        statements = []
        for f in plan.fields:
            column = have.get(f.name.lower())
            if column is None:
                statements.append(wschema.add_column_sql(ref, f))
            elif wschema.bigquery_type(column.type) != wschema.bigquery_type(f.type):
                statements.append(wschema.alter_column_type_sql(ref, f))
        return statements

    def plan(
        self, sobject: str, incoming: pa.Schema, declared: Mapping[str, pa.DataType] | None = None
    ) -> tuple[SchemaPlan, list[str]]:
        """The schema plan and the DDL it needs (raw table and change log), without running it."""
        existing = self.warehouse.table_schema(raw_ref(sobject))
        plan = plan_schema(sobject, existing, incoming, declared)
        changes_existing = self.warehouse.table_schema(changes_ref(sobject))
        ddl = [
            *self._table_statements(raw_ref(sobject), existing, plan, METADATA),
            *self._table_statements(changes_ref(sobject), changes_existing, plan, CHANGES_METADATA),
        ]
        return plan, ddl

    # -- SQL ----------------------------------------------------------------------------

    def projection_sql(
        self,
        staging: TableRef,
        staged: pa.Schema,
        plan: SchemaPlan,
        *,
        source: str,
        run_id: str,
        ingested_at: datetime,
    ) -> str:
        """The staged rows as raw rows: Salesforce columns on the table's types, then the metadata."""
        names = staged.names
        columns = []
        for f in plan.fields:
            if f.name not in names:
                continue
            if f.name in plan.casts:
                columns.append(f"CAST({_q(f.name)} AS {_bq(plan.casts[f.name])}) AS {_q(f.name)}")
            else:
                columns.append(_q(f.name))
        version = _q(VERSION) if VERSION in names else f"CAST({_q(version_field(names))} AS TIMESTAMP)"
        meta = {
            RUN_ID: _q(RUN_ID) if RUN_ID in names else sql_literal(run_id),
            INGESTED_AT: _ts(ingested_at),
            SOURCE: _q(SOURCE) if SOURCE in names else sql_literal(source),
            VERSION: version,
            COMMIT_NUMBER: _q(COMMIT_NUMBER) if COMMIT_NUMBER in names else "0",
            HARD_DELETED: _q(HARD_DELETED) if HARD_DELETED in names else "FALSE",
            SOURCE_FILE: _q(SOURCE_FILE) if SOURCE_FILE in names else "CAST(NULL AS STRING)",
        }
        columns += [f"{expr} AS {_q(name)}" for name, expr in meta.items()]
        return f"SELECT {', '.join(columns)}\n  FROM {staging.sql}\n  WHERE {_q(KEY)} IS NOT NULL"

    def tombstone_sql(
        self,
        ids: TableRef,
        present: Sequence[str],
        plan: SchemaPlan,
        *,
        source: str,
        run_id: str,
        ingested_at: datetime,
        version: datetime,
        origin: str | None,
    ) -> str:
        """Hard-deleted Ids as rows that only mark: the deletion flags, a winning version, NULL elsewhere."""
        types = plan.types
        columns = []
        for name in present:
            if name == KEY:
                columns.append(_q(KEY))
            elif name == DELETED_FLAG:
                columns.append(f"TRUE AS {_q(name)}")
            else:
                columns.append(f"CAST(NULL AS {_bq(types[name])}) AS {_q(name)}")
        columns += [
            f"{sql_literal(run_id)} AS {_q(RUN_ID)}",
            f"{_ts(ingested_at)} AS {_q(INGESTED_AT)}",
            f"{sql_literal(source)} AS {_q(SOURCE)}",
            f"{_ts(version)} AS {_q(VERSION)}",
            f"0 AS {_q(COMMIT_NUMBER)}",
            f"TRUE AS {_q(HARD_DELETED)}",
            f"{sql_literal(origin)} AS {_q(SOURCE_FILE)}",
        ]
        return f"SELECT {', '.join(columns)}\n  FROM {ids.sql}\n  WHERE {_q(KEY)} IS NOT NULL"

    # -- loading ------------------------------------------------------------------------

    def apply(
        self,
        sobject: str,
        staging: TableRef | None,
        staged: pa.Schema | None,
        *,
        source: str,
        run_id: str,
        ingested_at: datetime,
        declared: Mapping[str, pa.DataType] | None = None,
        tombstones: Sequence[str] = (),
        tombstone_version: datetime | None = None,
        tombstone_origin: str | None = None,
        replace_equal: bool = False,
        revive_tombstones: bool = False,
        unique: bool = False,
        extra_statements: Sequence[str] = (),
    ) -> RawLoad:
        """Merge a staging table (and any hard deletes) into an object's raw tables, all or nothing.

        ``staging`` holds the Salesforce columns, and optionally ``_source_file`` and the
        metadata columns (CDC rows carry ``_version`` and ``_commit_number``). The schema
        change, the MERGE, the change-log insert and ``extra_statements`` (the caller's
        ops records) commit together or not at all. ``unique`` says the staging holds one
        row per Id already (the Beam pipeline's output), so the ranking step is skipped.
        """
        if source not in SOURCES:
            msg = f"source {source!r} is not one of {sorted(SOURCES)}"
            raise BadInputError(msg, field="source")
        if (staging is None) != (staged is None):
            msg = "staging and its schema come together"
            raise BadInputError(msg, field="staging")
        wh = self.warehouse
        target = raw_ref(sobject)
        existing = wh.table_schema(target)
        if staged is None or staging is None:
            if not tombstones or existing is None:
                return RawLoad(MergeResult())
            incoming = pa.schema([f for f in existing if f.name not in RESERVED])
        else:
            incoming = staged
        wh.ensure_dataset(RAW_DATASET)
        plan, ddl = self.plan(sobject, incoming, declared)
        present = [f.name for f in plan.fields if f.name in incoming.names]
        columns = [*present, *METADATA.names]
        parts: list[str] = []
        if staging is not None and staged is not None:
            parts.append(
                self.projection_sql(staging, staged, plan, source=source, run_id=run_id, ingested_at=ingested_at)
            )
        ids_table: TableRef | None = None
        try:
            if tombstones and existing is not None:
                if tombstone_version is None:
                    msg = "hard-deleted Ids need the version their deletion wins with"
                    raise BadInputError(msg, field="tombstone_version")
                ids_table = TableRef(RAW_DATASET, f"_tomb_{table_name(sobject)}_{secrets.token_hex(4)}")
                wh.load_arrow(ids_table, pa.table({KEY: pa.array(sorted(set(tombstones)), pa.string())}), replace=True)
                parts.append(
                    self.tombstone_sql(
                        ids_table, present, plan, source=source, run_id=run_id, ingested_at=ingested_at,
                        version=tombstone_version, origin=tombstone_origin,
                    )
                )
            if not parts:
                return RawLoad(MergeResult())
            # 1. the newest version per Id of this load goes to the change log (one ranking);
            # 2. the MERGE reads exactly those rows back: no second ranking, no temp copy.
            offered = MergeSpec(
                target=target,
                source=staging or ids_table or target,
                key=KEY,
                columns=tuple(columns),
                source_query="\n  UNION ALL\n  ".join(parts),
                carry=(SOURCE_FILE,),
                tiebreak=(SOURCE_FILE,),
                unique_source=unique and len(parts) == 1 and staging is not None,
                rank_repeated_only=True,
            )
            log = changes_ref(sobject)
            log_columns = ", ".join(_q(c) for c in [*columns, SOURCE_FILE])
            to_log = f"INSERT INTO {log.sql} ({log_columns})\n{wsql.newest_per_key_sql(offered, columns)}"
            this_load = (
                f"SELECT {', '.join(_q(c) for c in columns)} FROM {log.sql}\n"
                f"  WHERE {_q(INGESTED_AT)} = {_ts(ingested_at)} AND {_q(RUN_ID)} = {sql_literal(run_id)}"
            )
            spec = MergeSpec(
                target=target,
                source=log,
                key=KEY,
                columns=tuple(columns),
                deleted_flag=DELETED_FLAG if DELETED_FLAG in plan.types else None,
                source_query=this_load,
                tombstone_flag=HARD_DELETED,
                replace_equal=replace_equal,
                revive_tombstones=revive_tombstones,
                unique_source=True,
            )
            result = wh.merge(spec, before=ddl, prelude=[to_log], extra_statements=list(extra_statements))
        finally:
            if ids_table is not None:
                wh.drop_table(ids_table)
        return RawLoad(
            result,
            added=[f.name for f in plan.add],
            widened=[f.name for f in plan.widen],
            tombstones=len(set(tombstones)) if ids_table is not None else 0,
        )

    def apply_arrow(
        self,
        sobject: str,
        data: pa.Table | pa.RecordBatchReader,
        *,
        source: str,
        run_id: str,
        ingested_at: datetime | None = None,
        declared: Mapping[str, pa.DataType] | None = None,
        replace_equal: bool = False,
        revive_tombstones: bool = False,
        extra_statements: Sequence[str] = (),
    ) -> RawLoad:
        """Arrow rows (a CDC micro-batch, a fixture) into the raw layer through a staging table.

        Rows may carry ``_version``, ``_commit_number``, ``_hard_deleted`` (a tombstone)
        and ``_source_file``; otherwise they get the batch defaults.
        """
        staging = stage_ref(sobject)
        self.warehouse.load_arrow(staging, data, replace=True)
        try:
            staged = self.warehouse.table_schema(staging)
            return self.apply(
                sobject, staging, staged, source=source, run_id=run_id,
                ingested_at=ingested_at or datetime.now(UTC), declared=declared,
                replace_equal=replace_equal, revive_tombstones=revive_tombstones,
                extra_statements=extra_statements,
            )
        finally:
            self.warehouse.drop_table(staging)


# -- Arrow helpers shared by the Beam pipeline and the CDC stream ---------------------------


def normalise(table: pa.Table, declared: Mapping[str, pa.DataType] | None = None) -> pa.Table:
    """Cast every column to the type the raw layer stores (describe's when known), vectorised."""
    declared = declared or {}
    arrays = []
    fields = []
    for name, column in zip(table.column_names, table.columns, strict=True):
        target = declared.get(name) or canonical_type(column.type)
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        if column.type != target:
            try:
                column = pc.cast(column, target)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                msg = f"column {name} ({column.type}) does not convert to {target}: {exc}"
                raise SchemaConflict(msg) from None
        arrays.append(column)
        fields.append(pa.field(name, target))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def newest_per_id(table: pa.Table, sequence: Sequence[str], tiebreak: Sequence[str] = ()) -> pa.Table:
    """The newest row per ``Id`` (descending by sequence then tiebreak, NULLs last), as the MERGE picks it."""
    if table.num_rows == 0:
        return table
    table = table.filter(pc.is_valid(table[KEY]))
    if table.num_rows == 0:
        return table
    keys = [(KEY, "ascending", "at_end"), *[(c, "descending", "at_end") for c in (*sequence, *tiebreak)]]
    ordered = table.take(pc.sort_indices(table, sort_keys=keys))
    ids = ordered[KEY].combine_chunks()
    first = pc.not_equal(ids.slice(1), ids.slice(0, len(ids) - 1))
    mask = pa.concat_arrays([pa.array([True]), first])
    return ordered.filter(mask)
