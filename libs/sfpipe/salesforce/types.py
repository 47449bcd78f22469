"""Salesforce field types → Arrow and BigQuery types, in one module.

Every part that turns describe metadata into a schema (extractor, loader, CDC,
reconciliation, the simulator's own export) goes through here, so that a field has the
same type in Parquet, in the raw layer and in a change event.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from sfpipe.adapters.warehouse.schema import bigquery_type
from sfpipe.errors import TerminalError

TIMESTAMP = pa.timestamp("us", tz="UTC")

_STRING_TYPES = {
    "id",
    "reference",
    "string",
    "picklist",
    "multipicklist",
    "combobox",
    "textarea",
    "email",
    "phone",
    "url",
    "encryptedstring",
    "base64",
    "anytype",
    "json",
    "complexvalue",
    "datacategorygroupreference",
}

_ARROW: dict[str, pa.DataType] = {
    **dict.fromkeys(_STRING_TYPES, pa.string()),
    "boolean": pa.bool_(),
    "int": pa.int64(),
    "long": pa.int64(),
    "double": pa.float64(),
    "currency": pa.float64(),
    "percent": pa.float64(),
    "date": pa.date32(),
    "datetime": TIMESTAMP,
    "time": pa.time64("us"),
    # compound fields: their components are separate fields; the compound value, when
    # asked for at all, is kept as JSON text
    "address": pa.string(),
    "location": pa.string(),
}

COMPOUND_TYPES = frozenset({"address", "location"})


class UnknownFieldType(TerminalError):
    """Describe returned a field type sfpipe does not know how to store."""


def arrow_type(sf_type: str) -> pa.DataType:
    """The Arrow type of a Salesforce field type (case-insensitive)."""
    try:
        return _ARROW[sf_type.lower()]
    except KeyError:
        msg = f"unknown Salesforce field type {sf_type!r}; expected one of {sorted(_ARROW)}"
        raise UnknownFieldType(msg) from None


def bigquery_column_type(sf_type: str) -> str:
    """The BigQuery type of a Salesforce field type."""
    return bigquery_type(arrow_type(sf_type))


@dataclass(frozen=True)
class FieldInfo:
    """What sfpipe needs from one describe field."""

    name: str
    type: str
    nillable: bool = True
    calculated: bool = False
    compound_parent: str | None = None
    length: int = 0

    @property
    def arrow(self) -> pa.DataType:
        """This field's Arrow type."""
        return arrow_type(self.type)

    @property
    def is_compound(self) -> bool:
        """Address and location fields, whose parts are fields of their own."""
        return self.type.lower() in COMPOUND_TYPES


def fields_from_describe(describe: Mapping[str, Any]) -> list[FieldInfo]:
    """The fields of an sObject describe, in describe order."""
    fields = []
    for raw in describe.get("fields", []):
        fields.append(
            FieldInfo(
                name=raw["name"],
                type=raw["type"],
                nillable=bool(raw.get("nillable", True)),
                calculated=bool(raw.get("calculated", False)),
                compound_parent=raw.get("compoundFieldName"),
                length=int(raw.get("length") or 0),
            )
        )
    return fields


def queryable_fields(fields: Iterable[FieldInfo]) -> list[FieldInfo]:
    """Fields to select: compound fields are left out because their parts are selected."""
    return [f for f in fields if not f.is_compound]


def arrow_schema(fields: Iterable[FieldInfo]) -> pa.Schema:
    """An Arrow schema with Salesforce's API names and types (every column nullable)."""
    return pa.schema([pa.field(f.name, f.arrow, nullable=True) for f in fields])


def schema_fingerprint(schema: pa.Schema) -> str:
    """A short, stable hash of names and types, to notice when describe changes."""
    import hashlib

    text = "|".join(f"{f.name}:{f.type}" for f in schema)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def convert_strings(values: pa.Array | pa.ChunkedArray, sf_type: str) -> pa.Array | pa.ChunkedArray:
    """Text from a CSV or JSON page → the field's Arrow type, vectorised.

    Empty strings are NULL (Bulk CSV writes NULL as an empty field). Salesforce datetimes
    come as ``2024-01-02T03:04:05.000+0000`` or ``…Z``; times as ``03:04:05.000Z``.
    """
    target = arrow_type(sf_type)
    if not pa.types.is_string(values.type) and not pa.types.is_large_string(values.type):
        return pc.cast(values, target)
    cleaned = pc.if_else(pc.equal(values, ""), pa.scalar(None, values.type), values)
    if pa.types.is_string(target):
        return cleaned
    try:
        if pa.types.is_boolean(target):
            return pc.equal(pc.utf8_lower(cleaned), "true")
        if pa.types.is_time(target):
            stamped = pc.binary_join_element_wise("1970-01-01T", pc.replace_substring_regex(cleaned, "Z$", ""), "")
            return pc.cast(pc.cast(stamped, pa.timestamp("us")), target)
        return pc.cast(cleaned, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        msg = f"values are not of Salesforce type {sf_type!r}: {exc}"
        raise TerminalError(msg) from None


def format_datetime(value: Any) -> str | None:
    """A Python datetime in Salesforce's REST format (``2024-01-02T03:04:05.000+0000``)."""
    if value is None:
        return None
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"
