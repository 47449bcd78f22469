"""Salesforce pages → Arrow, typed by describe through :mod:`sfpipe.salesforce.types`.

A REST page (a list of JSON records) and a Bulk API 2.0 chunk (CSV text) become the same
Arrow table for the same fields, so that the Parquet files of one object never depend on
which API brought them. Anything that does not fit the describe — a missing column, a
value of the wrong type, a CSV cut short — is a :class:`BadResponseError` that names the
object, the field and what was expected.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from sfpipe.errors import TerminalError
from sfpipe.salesforce.errors import BadResponseError, UnknownFieldTypeError
from sfpipe.salesforce.types import FieldInfo, UnknownFieldType, arrow_schema, convert_strings

_NATIVE_JSON = (pa.bool_(), pa.int64(), pa.float64())


def checked_schema(sobject: str, fields: Sequence[FieldInfo]) -> pa.Schema:
    """The Arrow schema of the selected fields; an unknown describe type fails with its field's name."""
    for f in fields:
        try:
            f.arrow  # noqa: B018 - the lookup is the check
        except UnknownFieldType as exc:
            msg = f"{sobject}.{f.name}: {exc}"
            raise UnknownFieldTypeError(msg, error_code="UNKNOWN_FIELD_TYPE") from None
    return arrow_schema(fields)


class PageConverter:
    """Turns pages of one object into Arrow tables with the object's schema."""

    def __init__(self, sobject: str, fields: Sequence[FieldInfo]) -> None:
        self.sobject = sobject
        self.fields = list(fields)
        self.schema = checked_schema(sobject, self.fields)
        self.names = [f.name for f in self.fields]
        self._csv_types = dict.fromkeys(self.names, pa.string())

    # ------------------------------------------------------------------ REST JSON

    def from_records(self, records: list[dict[str, Any]], where: str = "") -> pa.Table:
        """A REST page's records as a table (``attributes`` and unselected keys ignored)."""
        if not records:
            return self.schema.empty_table()
        first = records[0]
        if not isinstance(first, dict):
            msg = f"{self.sobject}{where}: a record is a {type(first).__name__}, expected a JSON object"
            raise BadResponseError(msg)
        missing = [n for n in self.names if n not in first]
        if missing:
            msg = f"{self.sobject}{where}: records lack selected fields {missing[:10]}; expected every selected field"
            raise BadResponseError(msg)
        try:
            columns = [self._json_column(f, [r.get(f.name) for r in records]) for f in self.fields]
        except AttributeError:
            msg = f"{self.sobject}{where}: a record in the page is not a JSON object"
            raise BadResponseError(msg) from None
        return pa.Table.from_arrays(columns, schema=self.schema)

    def _json_column(self, f: FieldInfo, values: list[Any]) -> pa.Array:
        target = f.arrow
        try:
            if pa.types.is_string(target):
                try:
                    return pa.array(values, pa.string())
                except (pa.ArrowTypeError, pa.ArrowInvalid):
                    # anyType / JSON fields may carry numbers or objects: keep them as JSON text
                    return pa.array([v if v is None or isinstance(v, str) else json.dumps(v) for v in values])
            if target in _NATIVE_JSON:
                return pa.array(values, target)
            return convert_strings(pa.array(values, pa.string()), f.type)
        except (pa.ArrowTypeError, pa.ArrowInvalid, TerminalError) as exc:
            msg = f"{self.sobject}.{f.name}: values are not of type {f.type!r} ({exc})"
            raise BadResponseError(msg) from None

    # ------------------------------------------------------------------ Bulk CSV

    def from_csv(self, data: bytes, expected_rows: int, where: str = "") -> pa.Table:
        """A Bulk API 2.0 result chunk as a table; its row count must match ``Sforce-NumberOfRecords``."""
        if not data.strip():
            if expected_rows == 0:
                return self.schema.empty_table()
            msg = f"{self.sobject}{where}: empty CSV chunk, but Sforce-NumberOfRecords says {expected_rows}"
            raise BadResponseError(msg)
        try:
            table = pacsv.read_csv(
                io.BytesIO(data),
                read_options=pacsv.ReadOptions(use_threads=True, block_size=8 << 20),
                parse_options=pacsv.ParseOptions(newlines_in_values=True),
                convert_options=pacsv.ConvertOptions(
                    column_types=self._csv_types,
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                ),
            )
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            msg = f"{self.sobject}{where}: CSV chunk is malformed or truncated ({exc})"
            raise BadResponseError(msg) from None
        header = table.column_names
        missing = [n for n in self.names if n not in header]
        if missing:
            msg = f"{self.sobject}{where}: CSV header lacks selected fields {missing[:10]}; got {header[:10]}…"
            raise BadResponseError(msg)
        if table.num_rows != expected_rows:
            msg = (
                f"{self.sobject}{where}: CSV chunk has {table.num_rows} rows but Sforce-NumberOfRecords "
                f"says {expected_rows}: the chunk is truncated"
            )
            raise BadResponseError(msg)
        columns = []
        for f in self.fields:
            try:
                columns.append(convert_strings(table.column(f.name), f.type))
            except TerminalError as exc:
                msg = f"{self.sobject}.{f.name}: {exc}"
                raise BadResponseError(msg) from None
        return pa.Table.from_arrays(columns, schema=self.schema)


def max_timestamp(table: pa.Table, column: str | None) -> Any:
    """The highest value of a timestamp column (None for an empty table or no column)."""
    if column is None or table.num_rows == 0:
        return None
    return pc.max(table.column(column)).as_py()


def true_ids(table: pa.Table, flag: str, id_column: str = "Id") -> list[str]:
    """Ids of the rows whose boolean ``flag`` column is true (soft-deleted rows)."""
    if table.num_rows == 0 or flag not in table.column_names or id_column not in table.column_names:
        return []
    mask = pc.fill_null(table.column(flag), False)
    return [i for i in pc.filter(table.column(id_column), mask).to_pylist() if i is not None]
