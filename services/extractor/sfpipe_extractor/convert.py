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
from collections.abc import Iterator, Sequence
from typing import IO, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from sfpipe.errors import TerminalError
from sfpipe.salesforce.errors import BadResponseError, UnknownFieldTypeError
from sfpipe.salesforce.types import FieldInfo, UnknownFieldType, arrow_schema, convert_strings

_NATIVE_JSON = (pa.bool_(), pa.int64(), pa.float64())
CSV_BLOCK_BYTES = 1 << 20
"""Bulk CSV is parsed in blocks of this size: the memory a chunk costs, whatever its row count."""


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
        # the CSV reader parses numbers, booleans, dates and timestamps itself (twice as fast as
        # reading text and casting); times keep their text and go through convert_strings
        self._csv_types = {f.name: pa.string() if pa.types.is_time(f.arrow) else f.arrow for f in self.fields}
        self._csv_text = [f for f in self.fields if pa.types.is_time(f.arrow)]
        self._csv_convert = pacsv.ConvertOptions(
            column_types=self._csv_types,
            include_columns=self.names,
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
            true_values=["true", "True", "TRUE"],
            false_values=["false", "False", "FALSE"],
        )
        self._csv_read = pacsv.ReadOptions(use_threads=True, block_size=CSV_BLOCK_BYTES)
        self._csv_parse = pacsv.ParseOptions(newlines_in_values=True)

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
        """A Bulk API 2.0 result chunk held in memory; its row count must match ``Sforce-NumberOfRecords``."""
        if not data.strip():
            if expected_rows == 0:
                return self.schema.empty_table()
            msg = f"{self.sobject}{where}: empty CSV chunk, but Sforce-NumberOfRecords says {expected_rows}"
            raise BadResponseError(msg)
        table = pa.Table.from_batches(list(self.csv_batches(io.BytesIO(data), where)), schema=self.schema)
        self.check_count(table.num_rows, expected_rows, where)
        return table

    def check_count(self, rows: int, expected_rows: int, where: str = "") -> None:
        """A chunk with fewer (or more) rows than its header announced was cut short (or padded)."""
        if rows != expected_rows:
            msg = (
                f"{self.sobject}{where}: CSV chunk has {rows} rows but Sforce-NumberOfRecords "
                f"says {expected_rows}: the chunk is truncated"
            )
            raise BadResponseError(msg)

    def csv_batches(self, stream: IO[bytes], where: str = "") -> Iterator[pa.RecordBatch]:
        """A Bulk CSV chunk read from a stream, block by block, as typed record batches.

        Memory stays at a few blocks whatever the chunk's size. A parse error (a row cut short,
        a value that is not of its field's type, a missing column) is a :class:`BadResponseError`;
        an error of the stream itself (a dropped connection) is raised as it is, for the caller
        to retry.
        """
        try:
            reader = pacsv.open_csv(
                stream, read_options=self._csv_read, parse_options=self._csv_parse, convert_options=self._csv_convert
            )
            for batch in reader:
                yield self._finish(batch, where)
        except pa.ArrowKeyError as exc:
            msg = f"{self.sobject}{where}: CSV header lacks a selected field ({exc})"
            raise BadResponseError(msg) from None
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            if "does not exist in CSV file" in str(exc):
                msg = f"{self.sobject}{where}: CSV header lacks a selected field ({exc})"
            else:
                msg = f"{self.sobject}{where}: CSV chunk is malformed or truncated ({exc})"
            raise BadResponseError(msg) from None

    def _finish(self, batch: pa.RecordBatch, where: str) -> pa.RecordBatch:
        for f in self._csv_text:
            index = batch.schema.get_field_index(f.name)
            try:
                converted = convert_strings(batch.column(index), f.type)
            except TerminalError as exc:
                msg = f"{self.sobject}.{f.name}{where}: {exc}"
                raise BadResponseError(msg) from None
            batch = batch.set_column(index, f.name, converted)
        if batch.schema != self.schema:
            batch = batch.cast(self.schema)
        return batch


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
