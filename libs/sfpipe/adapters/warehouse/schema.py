"""Arrow schemas as warehouse tables: type names, DDL, and the rules for widening a column."""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from sfpipe.adapters.warehouse.base import TableRef, check_name
from sfpipe.errors import TerminalError


def bigquery_type(dtype: pa.DataType) -> str:
    """The BigQuery type that holds an Arrow type."""
    if pa.types.is_boolean(dtype):
        return "BOOL"
    if pa.types.is_integer(dtype):
        return "INT64"
    if pa.types.is_floating(dtype):
        return "FLOAT64"
    if pa.types.is_decimal(dtype):
        return "NUMERIC" if dtype.precision <= 38 and dtype.scale <= 9 else "BIGNUMERIC"
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return "STRING"
    if pa.types.is_binary(dtype) or pa.types.is_large_binary(dtype):
        return "BYTES"
    if pa.types.is_timestamp(dtype):
        return "TIMESTAMP" if dtype.tz else "DATETIME"
    if pa.types.is_date(dtype):
        return "DATE"
    if pa.types.is_time(dtype):
        return "TIME"
    if pa.types.is_list(dtype):
        return f"ARRAY<{bigquery_type(dtype.value_type)}>"
    if pa.types.is_null(dtype):
        return "STRING"
    msg = f"Arrow type {dtype} has no BigQuery equivalent"
    raise TerminalError(msg)


def arrow_type(type_name: str) -> pa.DataType:
    """The Arrow type for a BigQuery (or DuckDB) column type name."""
    name = type_name.upper().split("(")[0].strip()
    mapping: dict[str, pa.DataType] = {
        "BOOL": pa.bool_(),
        "BOOLEAN": pa.bool_(),
        "INT64": pa.int64(),
        "INTEGER": pa.int64(),
        "BIGINT": pa.int64(),
        "INT": pa.int64(),
        "FLOAT64": pa.float64(),
        "FLOAT": pa.float64(),
        "DOUBLE": pa.float64(),
        "NUMERIC": pa.decimal128(38, 9),
        "DECIMAL": pa.decimal128(38, 9),
        "STRING": pa.string(),
        "VARCHAR": pa.string(),
        "TEXT": pa.string(),
        "BYTES": pa.binary(),
        "BLOB": pa.binary(),
        "TIMESTAMP": pa.timestamp("us", tz="UTC"),
        "TIMESTAMP WITH TIME ZONE": pa.timestamp("us", tz="UTC"),
        "TIMESTAMPTZ": pa.timestamp("us", tz="UTC"),
        "DATETIME": pa.timestamp("us"),
        "DATE": pa.date32(),
        "TIME": pa.time64("us"),
        "JSON": pa.string(),
    }
    if name in mapping:
        return mapping[name]
    if name.startswith("TIMESTAMP"):
        return pa.timestamp("us", tz="UTC")
    msg = f"column type {type_name!r} is not supported"
    raise TerminalError(msg)


def create_table_sql(
    ref: TableRef,
    schema: pa.Schema,
    *,
    partition_by: str | None = None,
    cluster_by: Sequence[str] = (),
    if_not_exists: bool = True,
    with_options: bool = True,
) -> str:
    """`CREATE TABLE` in BigQuery's dialect; partitioning and clustering only when asked."""
    cols = []
    for f in schema:
        check_name(f.name, "column")
        null = "" if f.nullable else " NOT NULL"
        cols.append(f"`{f.name}` {bigquery_type(f.type)}{null}")
    head = "CREATE TABLE IF NOT EXISTS" if if_not_exists else "CREATE TABLE"
    sql = f"{head} {ref.sql} (\n  " + ",\n  ".join(cols) + "\n)"
    if with_options and partition_by:
        check_name(partition_by, "column")
        ptype = schema.field(partition_by).type
        sql += (
            f"\nPARTITION BY DATE(`{partition_by}`)"
            if pa.types.is_timestamp(ptype)
            else f"\nPARTITION BY `{partition_by}`"
        )
    if with_options and cluster_by:
        sql += "\nCLUSTER BY " + ", ".join(f"`{check_name(c, 'column')}`" for c in cluster_by)
    return sql


def add_column_sql(ref: TableRef, field: pa.Field) -> str:
    """`ALTER TABLE … ADD COLUMN IF NOT EXISTS` for one nullable column."""
    check_name(field.name, "column")
    return f"ALTER TABLE {ref.sql} ADD COLUMN IF NOT EXISTS `{field.name}` {bigquery_type(field.type)}"


_WIDENINGS: dict[str, set[str]] = {
    "INT64": {"FLOAT64", "NUMERIC", "BIGNUMERIC", "STRING"},
    "NUMERIC": {"BIGNUMERIC", "FLOAT64", "STRING"},
    "FLOAT64": {"STRING"},
    "BOOL": {"STRING"},
    "DATE": {"TIMESTAMP", "DATETIME", "STRING"},
    "DATETIME": {"TIMESTAMP", "STRING"},
    "TIME": {"STRING"},
}


def widening(old: pa.DataType, new: pa.DataType) -> str | None:
    """How a column of type ``old`` may take values of type ``new``.

    Returns ``"same"`` when the warehouse type does not change, ``"cast"`` when incoming
    values can be cast to the existing column (a narrower value into a wider column), and
    None when the change is incompatible and must fail the object.
    """
    old_bq, new_bq = bigquery_type(old), bigquery_type(new)
    if old_bq == new_bq:
        return "same"
    if old_bq in _WIDENINGS.get(new_bq, set()):
        return "cast"
    if pa.types.is_null(new):
        return "cast"
    return None


# What an existing column may be altered to in place: BigQuery's `ALTER COLUMN SET DATA
# TYPE` allows exactly these coercions (DuckDB allows them too).
_COLUMN_WIDENINGS: dict[str, set[str]] = {
    "INT64": {"NUMERIC", "BIGNUMERIC", "FLOAT64"},
    "NUMERIC": {"BIGNUMERIC", "FLOAT64"},
}


def column_widening(old: pa.DataType, new: pa.DataType) -> bool:
    """Whether a column of type ``old`` may be widened in place to hold ``new`` values."""
    return bigquery_type(new) in _COLUMN_WIDENINGS.get(bigquery_type(old), set())


def alter_column_type_sql(ref: TableRef, field: pa.Field) -> str:
    """`ALTER TABLE … ALTER COLUMN … SET DATA TYPE` for a widening :func:`column_widening` allows."""
    check_name(field.name, "column")
    return f"ALTER TABLE {ref.sql} ALTER COLUMN `{field.name}` SET DATA TYPE {bigquery_type(field.type)}"
