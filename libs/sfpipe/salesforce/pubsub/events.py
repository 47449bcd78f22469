"""Change events as Avro: the schema of an object's events, and the codec both sides share.

A change event is one Avro record: ``ChangeEventHeader`` first, then the object's fields in
describe order, each nullable. Compound fields are nested records, as at Salesforce: an address
(``BillingAddress`` holds ``Street``, ``City``…, whose columns are ``BillingStreet``,
``BillingCity``…) and a person's name (``Name`` holds ``FirstName``, ``LastName``…, whose
columns keep those names). Every field's ``doc`` is ``Data:<Salesforce type>``, so that a
reader can type what it decodes.

Values on the wire: DateTime and Date are ``long`` milliseconds since the epoch (a Date at
midnight UTC), Time is ``long`` milliseconds since midnight, numbers and booleans are Avro's
own. :class:`ChangeEventDecoder` turns a payload back into Salesforce API field names with
JSON-ready values (ISO 8601 text for times), which is what ``sfpipe.cdc.change`` carries.

Not in an event, as at Salesforce: ``IsDeleted`` (the change type says it) and
``SystemModstamp`` (the commit timestamp gives it).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import fastavro

from sfpipe.errors import BadInputError
from sfpipe.salesforce.pubsub.bitmap import SchemaIndex

NAMESPACE = "com.sforce.eventbus"
HEADER = "ChangeEventHeader"
CHANGE_TYPES = (
    "CREATE", "UPDATE", "DELETE", "UNDELETE", "GAP_CREATE", "GAP_UPDATE", "GAP_DELETE", "GAP_UNDELETE",
    "GAP_OVERFLOW", "SNAPSHOT",
)  # fmt: skip
GAP_TYPES = frozenset(t for t in CHANGE_TYPES if t.startswith("GAP_"))
NOT_IN_EVENTS = frozenset({"IsDeleted", "SystemModstamp"})
"""Stored fields a change event never carries."""

ADDRESS_PARTS = (
    ("Street", "textarea"), ("City", "string"), ("State", "string"), ("PostalCode", "string"),
    ("Country", "string"), ("StateCode", "picklist"), ("CountryCode", "picklist"), ("Latitude", "double"),
    ("Longitude", "double"), ("GeocodeAccuracy", "picklist"),
)  # fmt: skip
NAME_PARTS = (
    ("Salutation", "picklist"), ("FirstName", "string"), ("LastName", "string"), ("MiddleName", "string"),
    ("InformalName", "string"), ("Suffix", "string"),
)  # fmt: skip
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_DATE = date(1970, 1, 1)

_AVRO_TYPES = {
    "boolean": "boolean",
    "int": "int",
    "long": "long",
    "double": "double",
    "currency": "double",
    "percent": "double",
    "date": "long",
    "datetime": "long",
    "time": "long",
}


@dataclass(frozen=True)
class EventField:
    """One field of an object as a change event sees it."""

    name: str
    sf_type: str
    compound: str | None = None
    """The compound field (``BillingAddress``, ``Name``) this field is a part of."""


def _header_schema() -> dict[str, Any]:
    strings = {"type": "array", "items": "string"}
    return {
        "type": "record",
        "name": HEADER,
        "namespace": NAMESPACE,
        "fields": [
            {"name": "entityName", "type": "string"},
            {"name": "recordIds", "type": strings},
            {"name": "changeType", "type": {"type": "enum", "name": "ChangeType", "namespace": NAMESPACE,
                                            "symbols": list(CHANGE_TYPES)}},
            {"name": "changeOrigin", "type": "string"},
            {"name": "transactionKey", "type": "string"},
            {"name": "sequenceNumber", "type": "int"},
            {"name": "commitTimestamp", "type": "long"},
            {"name": "commitNumber", "type": "long"},
            {"name": "commitUser", "type": "string"},
            {"name": "nulledFields", "type": strings},
            {"name": "diffFields", "type": strings},
            {"name": "changedFields", "type": strings},
        ],
    }  # fmt: skip


def _nullable(avro_type: Any, sf_type: str) -> dict[str, Any]:
    return {"type": ["null", avro_type], "doc": f"Data:{sf_type}", "default": None}


def _compound_record(kind: str) -> dict[str, Any]:
    parts = ADDRESS_PARTS if kind == "Address" else NAME_PARTS
    return {
        "type": "record",
        "name": kind,
        "namespace": NAMESPACE,
        "fields": [{"name": n, **_nullable(_AVRO_TYPES.get(t, "string"), t)} for n, t in parts],
    }


def compound_kind(compound: str, sf_type: str) -> str:
    """``Address`` for address compounds, ``Name`` for a person's name."""
    return "Address" if sf_type in {"address", "location"} or compound.endswith("Address") else "Name"


def child_column(compound: str, child: str) -> str:
    """The column of a compound's part.

    ``BillingAddress`` + ``City`` is ``BillingCity``; ``Name`` + ``FirstName`` is ``FirstName``.
    """
    if compound.endswith("Address"):
        return compound[: -len("Address")] + child
    return child


def change_event_schema(sobject: str, fields: Sequence[EventField]) -> dict[str, Any]:
    """The Avro schema of an object's change events.

    ``fields`` are in describe order, compound fields included (type ``address`` for an address;
    a person's full ``Name`` is the field the name parts point at). Parts of a compound appear only
    inside its nested record, at the compound's position.
    """
    compounds = {f.compound for f in fields if f.compound}
    out: list[dict[str, Any]] = [{"name": HEADER, "type": _header_schema(), "doc": "Data:ComplexValueType"}]
    defined: set[str] = set()
    for f in fields:
        if f.compound or f.name in NOT_IN_EVENTS:
            continue
        if f.name in compounds or f.sf_type in {"address", "location"}:
            kind = compound_kind(f.name, f.sf_type)
            record: Any = f"{NAMESPACE}.{kind}" if kind in defined else _compound_record(kind)
            defined.add(kind)
            out.append({"name": f.name, "type": ["null", record], "doc": f"Data:{kind}", "default": None})
            continue
        out.append({"name": f.name, **_nullable(_AVRO_TYPES.get(f.sf_type, "string"), f.sf_type)})
    return {"type": "record", "name": f"{sobject}ChangeEvent", "namespace": NAMESPACE, "fields": out}


def schema_id(schema: Mapping[str, Any]) -> str:
    """A schema's stable id: 22 characters of a hash of its canonical JSON (Salesforce's shape)."""
    canonical = json.dumps(schema, sort_keys=True, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).decode()[:22]


# --------------------------------------------------------------------------- values


def to_avro(value: Any, sf_type: str) -> Any:
    """A stored or JSON value of a Salesforce type as it is written into a change event."""
    if value is None:
        return None
    kind = sf_type.lower()
    if kind == "datetime":
        moment = value if isinstance(value, datetime) else parse_datetime(str(value))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return (moment - _EPOCH) // timedelta(milliseconds=1)
    if kind == "date":
        day = value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
        return (day - _EPOCH_DATE).days * 86_400_000
    if kind == "time":
        clock = value if isinstance(value, time) else time.fromisoformat(str(value).rstrip("Z")[:12])
        return ((clock.hour * 60 + clock.minute) * 60 + clock.second) * 1000 + clock.microsecond // 1000
    if kind in {"double", "currency", "percent"}:
        return float(value)
    if kind in {"int", "long"}:
        return int(value)
    if kind == "boolean":
        return bool(value)
    return str(value)


def from_avro(value: Any, sf_type: str) -> Any:
    """A decoded change-event value as JSON-ready data (times as ISO 8601 text in UTC)."""
    if value is None:
        return None
    kind = sf_type.lower()
    if kind == "datetime":
        moment = _EPOCH + timedelta(milliseconds=int(value))
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    if kind == "date":
        return (_EPOCH_DATE + timedelta(days=int(value) // 86_400_000)).isoformat()
    if kind == "time":
        ms = int(value)
        return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}Z"
    return value


def parse_datetime(text: str) -> datetime:
    """Salesforce's datetime text (``…T…+0000``, ``…Z`` or ISO 8601) as an aware datetime."""
    cleaned = text.strip().replace("Z", "+00:00")
    if len(cleaned) > 5 and cleaned[-5] in "+-" and cleaned[-3] != ":":
        cleaned = cleaned[:-2] + ":" + cleaned[-2:]
    moment = datetime.fromisoformat(cleaned)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def commit_time(millis: int) -> datetime:
    """A header's ``commitTimestamp`` as an aware datetime."""
    return _EPOCH + timedelta(milliseconds=int(millis))


# --------------------------------------------------------------------------- decoding


@dataclass(frozen=True)
class DecodedChange:
    """One change event with Salesforce API field names and JSON-ready values."""

    entity: str
    change_type: str
    record_ids: list[str]
    change_origin: str
    transaction_key: str
    sequence_number: int
    commit_timestamp: datetime
    commit_number: int
    commit_user: str
    changed_fields: list[str]
    nulled_fields: list[str]
    diff_fields: list[str]
    values: dict[str, Any] = field(default_factory=dict)
    field_types: dict[str, str] = field(default_factory=dict)


class ChangeEventDecoder:
    """Decodes the binary Avro payloads written with one schema (one per schema id)."""

    def __init__(self, schema_json: str) -> None:
        self.schema: dict[str, Any] = json.loads(schema_json)
        self._parsed = fastavro.parse_schema(self.schema)
        self.index = SchemaIndex.from_schema(self.schema)
        self.types: dict[str, str] = {}
        self.compound: dict[str, str] = {}
        for spec in self.schema["fields"][1:]:
            doc = str(spec.get("doc", "")).removeprefix("Data:")
            if doc in {"Address", "Name"}:
                self.compound[spec["name"]] = doc
                parts = ADDRESS_PARTS if doc == "Address" else NAME_PARTS
                for part, sf_type in parts:
                    self.types[f"{spec['name']}.{part}"] = sf_type
            else:
                self.types[spec["name"]] = doc.lower() or "string"

    @property
    def columns(self) -> dict[str, str]:
        """Every column the schema can carry (compound parts by their column names) and its type."""
        return {self.column(path): sf_type for path, sf_type in self.types.items()}

    def read(self, payload: bytes) -> dict[str, Any]:
        """The raw Avro record."""
        record: dict[str, Any] = fastavro.schemaless_reader(io.BytesIO(payload), self._parsed, None)  # type: ignore[assignment]
        return record

    def column(self, path: str) -> str:
        """A field path of the event as the object's column name."""
        parent, _, child = path.partition(".")
        return child_column(parent, child) if child else parent

    def decode(self, payload: bytes) -> DecodedChange:
        """One payload as a :class:`DecodedChange`.

        CREATE and UNDELETE carry every non-null field; UPDATE carries the changed fields, with
        None for the ones set to null; DELETE and gap events carry none.
        """
        record = self.read(payload)
        header = record[HEADER]
        change_type = str(header["changeType"])
        changed_paths = self.index.names(header.get("changedFields") or [])
        nulled_paths = self.index.names(header.get("nulledFields") or [])
        diff_paths = self.index.names(header.get("diffFields") or [])
        values: dict[str, Any] = {}
        types: dict[str, str] = {}
        if change_type in {"CREATE", "UNDELETE", "UPDATE"}:
            wanted = None if change_type != "UPDATE" else set(changed_paths) | set(nulled_paths)
            for name, value in record.items():
                if name == HEADER:
                    continue
                if name in self.compound:
                    parts = value or {}
                    for part, raw in parts.items():
                        path = f"{name}.{part}"
                        if (wanted is None and raw is not None) or (wanted is not None and path in wanted):
                            column = child_column(name, part)
                            values[column] = from_avro(raw, self.types[path])
                            types[column] = self.types[path]
                    continue
                if (wanted is None and value is not None) or (wanted is not None and name in wanted):
                    values[name] = from_avro(value, self.types[name])
                    types[name] = self.types[name]
        return DecodedChange(
            entity=str(header["entityName"]),
            change_type=change_type,
            record_ids=[str(r) for r in header["recordIds"]],
            change_origin=str(header["changeOrigin"]),
            transaction_key=str(header["transactionKey"]),
            sequence_number=int(header["sequenceNumber"]),
            commit_timestamp=commit_time(header["commitTimestamp"]),
            commit_number=int(header["commitNumber"]),
            commit_user=str(header["commitUser"]),
            changed_fields=_columns(self, changed_paths),
            nulled_fields=_columns(self, nulled_paths),
            diff_fields=_columns(self, diff_paths),
            values=values,
            field_types=types,
        )


def _columns(decoder: ChangeEventDecoder, paths: Iterable[str]) -> list[str]:
    """Paths as columns; a compound parent named alone stands for no column of its own."""
    out = []
    for path in paths:
        if path in decoder.compound:
            continue
        out.append(decoder.column(path))
    return out


# --------------------------------------------------------------------------- encoding


class ChangeEventEncoder:
    """Writes change events of one object with its schema (the simulator's side)."""

    def __init__(self, sobject: str, fields: Sequence[EventField]) -> None:
        self.sobject = sobject
        self.schema = change_event_schema(sobject, fields)
        self.schema_json = json.dumps(self.schema, separators=(",", ":"))
        self.schema_id = schema_id(self.schema)
        self._parsed = fastavro.parse_schema(self.schema)
        self.index = SchemaIndex.from_schema(self.schema)
        self._types = {f.name: f.sf_type for f in fields}
        self._paths: dict[str, str] = {}
        self._compound_kind: dict[str, str] = {}
        for spec in self.schema["fields"][1:]:
            doc = str(spec.get("doc", "")).removeprefix("Data:")
            if doc in {"Address", "Name"}:
                self._compound_kind[spec["name"]] = doc
        for f in fields:
            if f.compound and f.compound in self._compound_kind:
                child = f.name[len(f.compound) - len("Address"):] if f.compound.endswith("Address") else f.name
                self._paths[f.name] = f"{f.compound}.{child}"
            elif f.name not in NOT_IN_EVENTS and f.name not in self._compound_kind:
                self._paths[f.name] = f.name

    def path(self, column: str) -> str | None:
        """The event field path of a column (None for one that events never carry)."""
        return self._paths.get(column)

    def record(self, header: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
        """The Avro record: the header, then each column's value at its place (compound parts nested)."""
        out: dict[str, Any] = {HEADER: dict(header)}
        for column, value in values.items():
            path = self._paths.get(column)
            if path is None:
                continue
            parent, _, child = path.partition(".")
            converted = to_avro(value, self._types.get(column, "string"))
            if child:
                nested = out.get(parent) or {}
                nested[child] = converted
                out[parent] = nested
            else:
                out[parent] = converted
        return out

    def encode(self, header: Mapping[str, Any], values: Mapping[str, Any]) -> bytes:
        """Plain binary Avro (no container, no schema prefix)."""
        buffer = io.BytesIO()
        fastavro.schemaless_writer(buffer, self._parsed, self.record(header, values))
        return buffer.getvalue()

    def bitmaps(self, columns: Iterable[str]) -> list[str]:
        """Columns as the header's bitmap list (columns events never carry are left out)."""
        paths = [p for c in columns if (p := self._paths.get(c)) is not None]
        return self.index.bitmaps(paths)


def check_change_type(value: str) -> str:
    """A change type, validated."""
    if value not in CHANGE_TYPES:
        msg = f"change type {value!r} is not one of {', '.join(CHANGE_TYPES)}"
        raise BadInputError(msg, field="changeType")
    return value
