"""Raw tables from CSV seeds, typed exactly as the loader types them.

Golden tests and demos describe a small org as one CSV per raw table with only the columns
that matter; every other column of the contract is NULL, and the loader's metadata columns
get defaults. Values are Salesforce's text forms (as in a Bulk API CSV), converted by the
library's one type-mapping module.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Mapping
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from sfpipe.adapters.warehouse.base import TableRef, Warehouse
from sfpipe.errors import BadInputError
from sfpipe.salesforce.types import convert_strings
from sfpipe_transform.rawschema import RawContract

RAW_DATASET = "sfpipe_raw"
DEFAULT_INGESTED_AT = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def _sf_type_of(contract: RawContract, table: str) -> dict[str, str]:
    for spec in contract.objects.values():
        if spec.table == table:
            return spec.fields
    for log_table, (obj, _) in contract.change_logs.items():
        if log_table == table:
            return contract.objects[obj].fields
    msg = f"{table} is not a raw table of the contract"
    raise BadInputError(msg, field="table")


def _convert_metadata(values: pa.Array, target: pa.DataType) -> pa.Array:
    cleaned = pc.if_else(pc.equal(values, ""), pa.scalar(None, values.type), values)
    if pa.types.is_boolean(target):
        return pc.equal(pc.utf8_lower(cleaned), "true")
    if pa.types.is_timestamp(target):
        parsed = pc.strptime(cleaned, format="%Y-%m-%dT%H:%M:%S.000+0000", unit="us", error_is_null=False)
        return pc.cast(parsed, target)
    return pc.cast(cleaned, target)


def table_from_csv(
    contract: RawContract,
    table: str,
    path: Path,
    *,
    run_id: str = "seed",
    ingested_at: dt.datetime = DEFAULT_INGESTED_AT,
) -> pa.Table:
    """One raw table from a CSV of some of its columns; the rest NULL or defaulted."""
    schema = contract.tables()[table]
    with path.open(newline="") as handle:
        header = next(csv.reader(handle), [])
    text = pacsv.read_csv(
        path,
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(header, pa.string()), strings_can_be_null=False, quoted_strings_can_be_null=False
        ),
    )
    unknown = sorted(set(text.column_names) - set(schema.names))
    if unknown:
        msg = f"{path.name}: columns {unknown} are not raw columns of {table}"
        raise BadInputError(msg, field="columns")
    sf_types = _sf_type_of(contract, table)
    rows = text.num_rows
    columns: dict[str, pa.Array] = {}
    for field in schema:
        if field.name in text.column_names:
            values = text.column(field.name).combine_chunks()
            if field.name in sf_types:
                columns[field.name] = convert_strings(values, sf_types[field.name])
            else:
                columns[field.name] = _convert_metadata(values, field.type)
        else:
            columns[field.name] = pa.nulls(rows, field.type)
    defaults: Mapping[str, pa.Array] = {
        "_run_id": pa.array([run_id] * rows, pa.string()),
        "_ingested_at": pa.array([ingested_at] * rows, schema.field("_ingested_at").type),
        "_source": pa.array(["batch"] * rows, pa.string()),
        "_version": pa.array([ingested_at] * rows, schema.field("_version").type),
        "_commit_number": pa.array([0] * rows, pa.int64()),
        "_hard_deleted": pa.array([False] * rows, pa.bool_()),
    }
    for name, default in defaults.items():
        if name in columns:
            columns[name] = pc.coalesce(columns[name], default)
    return pa.table([columns[f.name] for f in schema], schema=schema)


def load_folder(
    warehouse: Warehouse,
    contract: RawContract,
    folder: Path,
    *,
    ingested_at: dt.datetime = DEFAULT_INGESTED_AT,
) -> dict[str, int]:
    """Replace every raw table of the contract: from ``<table>.csv`` when present, else empty."""
    warehouse.ensure_dataset(RAW_DATASET)
    loaded = {}
    for table, schema in contract.tables().items():
        path = folder / f"{table}.csv"
        data = table_from_csv(contract, table, path, ingested_at=ingested_at) if path.exists() else schema.empty_table()
        loaded[table] = warehouse.load_arrow(TableRef(RAW_DATASET, table), data, replace=True)
    return loaded


def append_csv(warehouse: Warehouse, contract: RawContract, table: str, path: Path, *, ingested_at: dt.datetime) -> int:
    """Append the rows of a CSV to a raw table (a later load)."""
    data = table_from_csv(contract, table, path, ingested_at=ingested_at)
    return warehouse.load_arrow(TableRef(RAW_DATASET, table), data)


def load_parquet_org(
    warehouse: Warehouse,
    contract: RawContract,
    folder: Path,
    *,
    run_id: str,
    ingested_at: dt.datetime,
) -> dict[str, int]:
    """Raw tables from an org written as ``<Object>/part-*.parquet`` (the simulator's export).

    Each object becomes ``sfpipe_raw.<table>`` with every column of its files plus the
    loader's metadata (batch source, ``_version`` = SystemModstamp); each change log gets
    the object's rows as its first version. This is what a first full load produces.
    """
    warehouse.ensure_dataset(RAW_DATASET)
    stamp = ingested_at.astimezone(dt.UTC).isoformat()
    loaded = {}
    for name, spec in contract.objects.items():
        files = sorted(str(p) for p in (folder / name).glob("*.parquet"))
        if not files:
            msg = f"{folder / name} has no Parquet files"
            raise BadInputError(msg, field="folder")
        staging = TableRef(RAW_DATASET, f"_seed_{spec.table}")
        warehouse.load_parquet(staging, files, replace=True)
        version = (
            "SystemModstamp" if "SystemModstamp" in (warehouse.table_schema(staging) or pa.schema([])).names else "NULL"
        )
        warehouse.execute(
            [
                f"CREATE OR REPLACE TABLE {TableRef(RAW_DATASET, spec.table).sql} AS SELECT *, "
                f"'{run_id}' AS _run_id, TIMESTAMP '{stamp}' AS _ingested_at, 'batch' AS _source, "
                f"CAST({version} AS TIMESTAMP) AS _version, CAST(0 AS INT64) AS _commit_number, "
                f"FALSE AS _hard_deleted FROM {staging.sql}",
                f"DROP TABLE {staging.sql}",
            ]
        )
        loaded[spec.table] = int(str(warehouse.scalar(f"SELECT COUNT(*) FROM {TableRef(RAW_DATASET, spec.table).sql}")))
    for table, (obj, _) in contract.change_logs.items():
        source = TableRef(RAW_DATASET, contract.objects[obj].table)
        target = TableRef(RAW_DATASET, table)
        warehouse.execute(
            [f"CREATE OR REPLACE TABLE {target.sql} AS SELECT *, 'seed' AS _source_file FROM {source.sql}"]
        )
        loaded[table] = loaded[source.table]
    return loaded
