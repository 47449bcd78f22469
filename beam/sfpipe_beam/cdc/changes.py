"""The CDC stream's transform functions: one message → changes → one patch per record.

Salesforce sends only what an UPDATE changed, so a change is a *patch*: the columns it sets and
their values, at a version ``(commit timestamp, commit number, sequence number)``. CREATE and
UNDELETE set the whole row; DELETE sets the deletion flags and the audit fields its header
implies. Folding a record's changes in version order gives one patch per record per batch, with
the version of every column it sets — what the warehouse needs for column-level
last-writer-wins (:mod:`sfpipe_beam.cdc.apply`) and what the Dataflow pipeline keeps as state.

Versions compare the way the raw layer does: ``_version`` is the commit timestamp (milliseconds)
and ``_commit_number`` the commit number. A batch load's row has ``_version`` = SystemModstamp,
the same commit timestamp cut to the second, and commit number 0; so the same change compares as
batch ≤ CDC, and a batch row beats a CDC change exactly when it was written in a later second.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pyarrow as pa

from sfpipe.salesforce.pubsub.events import parse_datetime
from sfpipe.salesforce.types import arrow_type

FULL_TYPES = frozenset({"CREATE", "UNDELETE"})
APPLIED_TYPES = frozenset({"CREATE", "UPDATE", "DELETE", "UNDELETE"})
DELETED = "IsDeleted"
HARD_DELETED = "_hard_deleted"
MODSTAMP = "SystemModstamp"
TIMESTAMP = pa.timestamp("us", tz="UTC")
DERIVED_TYPES = {
    DELETED: "boolean",
    HARD_DELETED: "boolean",
    MODSTAMP: "datetime",
    "LastModifiedDate": "datetime",
    "LastModifiedById": "reference",
}
"""Columns a change sets without carrying them (their Salesforce types)."""

Version = tuple[datetime, int, int]
"""(commit timestamp, commit number, sequence number): the order of changes to one record."""


@dataclass(frozen=True)
class Change:
    """One change to one record, as the stream applies it."""

    entity: str
    record_id: str
    change_type: str
    commit_timestamp: datetime
    commit_number: int
    sequence_number: int
    values: Mapping[str, Any]
    fields: tuple[str, ...] = ()
    field_types: Mapping[str, str] = field(default_factory=dict)
    commit_user: str | None = None
    event_id: str = ""
    replay_id: str | None = None

    @property
    def version(self) -> Version:
        """Where the change sits in its record's history."""
        return (self.commit_timestamp, self.commit_number, self.sequence_number)

    @property
    def full(self) -> bool:
        """Whether it sets the whole row (columns it does not carry become NULL)."""
        return self.change_type in FULL_TYPES

    def effects(self) -> dict[str, Any]:
        """The columns this change sets and their values (derived columns included).

        A full row sets every column its ``field_types`` name (the cdc-publisher lists the whole
        event schema for CREATE and UNDELETE), so that columns the change does not carry become
        NULL and columns the event schema lacks (formula fields a batch load brought) stay.
        ``SystemModstamp`` is the commit timestamp cut to the second (what Salesforce stores);
        a DELETE also sets ``LastModifiedDate`` and ``LastModifiedById`` as the deletion did.
        """
        stamp = self.commit_timestamp.replace(microsecond=0)
        if self.change_type == "DELETE":
            # a deleted record goes to the recycle bin, where queryAll still returns it with
            # IsDeleted: the raw row stays, flagged; only reconciliation, which sees a record
            # gone from the source, marks it ``_hard_deleted`` (ADR 0093)
            out: dict[str, Any] = {DELETED: True, HARD_DELETED: False, MODSTAMP: stamp, "LastModifiedDate": stamp}
            if self.commit_user:
                out["LastModifiedById"] = self.commit_user
            return out
        if self.full:
            # every column of the event schema: the ones it does not carry are null
            out = {name: None for name in self.field_types}
            out.update(self.values)
            out[DELETED] = False
            out[HARD_DELETED] = False
        else:
            out = {name: self.values.get(name) for name in self.fields}
        if out.get(MODSTAMP) is None:
            out[MODSTAMP] = stamp
        return out


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return parse_datetime(str(value))


def from_message(data: bytes | str | Mapping[str, Any], attributes: Mapping[str, str] | None = None) -> list[Change]:
    """An ``sfpipe.cdc.change`` message (its JSON data) as changes, one per record id.

    Gap events never reach the stream (the cdc-publisher repairs them); should one arrive it is
    dropped here. A malformed message raises ``ValueError`` / ``KeyError`` for the caller to
    dead-letter.
    """
    body: Mapping[str, Any] = data if isinstance(data, Mapping) else json.loads(data)
    change_type = str(body["change_type"])
    if change_type not in APPLIED_TYPES:
        return []
    entity = str(body["entity"])
    values = dict(body.get("values") or {})
    fields = tuple(dict.fromkeys([*body.get("changed_fields", ()), *body.get("nulled_fields", ()), *values]))
    event_id = (attributes or {}).get("ce-id", "") or str(body.get("replay_id") or "")
    return [
        Change(
            entity=entity,
            record_id=str(record_id),
            change_type=change_type,
            commit_timestamp=_as_datetime(body["commit_timestamp"]),
            commit_number=int(body["commit_number"]),
            sequence_number=int(body.get("sequence_number") or 0),
            values=values,
            fields=fields if change_type == "UPDATE" else (),
            field_types=dict(body.get("field_types") or {}),
            commit_user=body.get("commit_user"),
            event_id=event_id,
            replay_id=body.get("replay_id"),
        )
        for record_id in body["record_ids"]
    ]


@dataclass
class Patch:
    """A record's changes of one batch, folded: what to set, and the version of each column set."""

    entity: str
    record_id: str
    values: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, Version] = field(default_factory=dict)
    """Columns set by partial changes, with the version that set each."""
    star: Version | None = None
    """Version of the newest full-row change, if any (every column not in ``versions`` comes from it)."""
    star_columns: frozenset[str] = frozenset()
    """The columns that full-row change sets (its event schema's)."""
    newest: Version | None = None

    def add(self, change: Change) -> None:
        """Apply one more change (they come in version order)."""
        effects = change.effects()
        if change.full:
            self.values = dict(effects)
            self.versions = {}
            self.star = change.version
            self.star_columns = frozenset(effects)
        else:
            self.values.update(effects)
            for name in effects:
                self.versions[name] = change.version
        if self.newest is None or change.version > self.newest:
            self.newest = change.version


def fold(changes: Iterable[Change]) -> dict[tuple[str, str], Patch]:
    """One patch per (object, record Id), changes applied in version order; duplicates fold away."""
    by_record: dict[tuple[str, str], list[Change]] = {}
    for change in changes:
        by_record.setdefault((change.entity, change.record_id), []).append(change)
    patches = {}
    for key, items in by_record.items():
        patch = Patch(*key)
        for change in sorted(items, key=lambda c: c.version):
            patch.add(change)
        patches[key] = patch
    return patches


# --------------------------------------------------------------------------- typing


_SF_OF_ARROW = (
    (pa.types.is_timestamp, "datetime"),
    (pa.types.is_date, "date"),
    (pa.types.is_time, "time"),
    (pa.types.is_boolean, "boolean"),
    (pa.types.is_integer, "long"),
    (pa.types.is_floating, "double"),
)


def column_types(
    columns: Iterable[str], existing: pa.Schema | None, field_types: Mapping[str, str]
) -> dict[str, pa.DataType]:
    """Each column's Arrow type: the raw table's when it has the column, else from the event schema."""
    have = {f.name: f.type for f in existing} if existing is not None else {}
    out: dict[str, pa.DataType] = {}
    for name in columns:
        if name in have:
            out[name] = have[name]
        else:
            sf_type = field_types.get(name) or DERIVED_TYPES.get(name) or "string"
            out[name] = arrow_type(sf_type)
    return out


def convert(value: Any, dtype: pa.DataType) -> Any:
    """A JSON value as the Python value of an Arrow type."""
    if value is None:
        return None
    if pa.types.is_timestamp(dtype):
        return _as_datetime(value)
    if pa.types.is_date(dtype):
        return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
    if pa.types.is_time(dtype):
        return value if isinstance(value, time) else time.fromisoformat(str(value).rstrip("Z"))
    if pa.types.is_boolean(dtype):
        return value if isinstance(value, bool) else str(value).lower() == "true"
    if pa.types.is_integer(dtype):
        return int(value)
    if pa.types.is_floating(dtype):
        return float(value)
    if pa.types.is_string(dtype) and not isinstance(value, str):
        return json.dumps(value) if isinstance(value, dict | list) else str(value)
    return value


def sf_type_of(dtype: pa.DataType) -> str:
    """The Salesforce type an Arrow type stands for (to name a column's type in describe terms)."""
    for test, name in _SF_OF_ARROW:
        if test(dtype):
            return name
    return "string"


def patch_table(patches: Sequence[Patch], types: Mapping[str, pa.DataType]) -> pa.Table:
    """The patches of one object as rows: Id, every column any of them sets, and their versions.

    ``_full`` says a row carries a full-row change and ``_schema`` lists the columns it sets
    (``,a,b,``); a column set neither by it nor by a partial change is NULL here and never
    written (the MERGE reads which columns to set from the versions).
    """
    names = [n for n in types if n != "Id"]
    carried = {n for p in patches for n in p.values}
    arrays = [pa.array([p.record_id for p in patches], pa.string())]
    fields = [pa.field("Id", pa.string())]
    for name in names:
        dtype = types[name]
        if name in carried:
            arrays.append(pa.array([convert(p.values.get(name), dtype) for p in patches], dtype))
        else:
            arrays.append(pa.nulls(len(patches), dtype))
        fields.append(pa.field(name, dtype))
    newest = [p.newest for p in patches]
    arrays += [
        pa.array([p.star is not None for p in patches], pa.bool_()),
        pa.array([f",{','.join(sorted(p.star_columns))}," if p.star is not None else "," for p in patches]),
        pa.array([v[0] if v else None for v in newest], TIMESTAMP),
        pa.array([v[1] if v else None for v in newest], pa.int64()),
    ]
    fields += [pa.field("_full", pa.bool_()), pa.field("_schema", pa.string()), pa.field("_version", TIMESTAMP),
               pa.field("_commit_number", pa.int64())]  # fmt: skip
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def version_table(patches: Sequence[Patch]) -> pa.Table:
    """One row per (object, record, column set) with its version; a full-row change is the column ``*``."""
    entities: list[str] = []
    ids: list[str] = []
    names: list[str] = []
    stamps: list[datetime] = []
    commits: list[int] = []
    sequences: list[int] = []
    for p in patches:
        entries = list(p.versions.items())
        if p.star is not None:
            entries.append(("*", p.star))
        for name, version in entries:
            entities.append(p.entity)
            ids.append(p.record_id)
            names.append(name)
            stamps.append(version[0])
            commits.append(version[1])
            sequences.append(version[2])
    return pa.table(
        {
            "entity": pa.array(entities, pa.string()),
            "Id": pa.array(ids, pa.string()),
            "field": pa.array(names, pa.string()),
            "_version": pa.array(stamps, TIMESTAMP),
            "_commit_number": pa.array(commits, pa.int64()),
            "_sequence": pa.array(sequences, pa.int64()),
        }
    )


# --------------------------------------------------------------------------- one record's state


@dataclass
class RowState:
    """One record's current row with the version of each column: column-level last-writer-wins in memory.

    The Dataflow pipeline keeps one per record in Beam state and emits the whole row (BigQuery's
    CDC upserts replace rows); the rule is the one the warehouse MERGE applies.
    """

    values: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, Version] = field(default_factory=dict)
    star: Version | None = None
    row_version: tuple[datetime, int] | None = None
    emitted: int = 0
    seeded_at: float = 0.0
    """When the state was last read from the raw table (epoch seconds)."""

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> RowState:
        """A row read from the raw table: all of it stands at the row's version (as a batch load's does)."""
        values = {k: v for k, v in row.items() if not k.startswith("_") or k == HARD_DELETED}
        version = row.get("_version")
        star = (version, int(row.get("_commit_number") or 0), 0) if version is not None else None
        row_version = (version, int(row.get("_commit_number") or 0)) if version is not None else None
        return cls(values=values, star=star, row_version=row_version)

    def _floor(self, name: str) -> Version | None:
        candidates = [v for v in (self.versions.get(name), self.star) if v is not None]
        return max(candidates) if candidates else None

    def apply(self, change: Change) -> bool:
        """Apply one change; whether any column changed hands."""
        effects = change.effects()
        version = change.version
        touched = False
        if change.full:
            if self.star is not None and version <= self.star:
                return False
            for name, value in effects.items():
                current = self.versions.get(name)
                if current is None or version > current:
                    self.values[name] = value
                    touched = True
            for name in [n for n, v in self.versions.items() if v <= version]:
                del self.versions[name]
            self.star = version
            touched = True
        else:
            for name, value in effects.items():
                floor = self._floor(name)
                if floor is None or version > floor:
                    self.values[name] = value
                    self.versions[name] = version
                    touched = True
        if touched:
            parts = ("FirstName", "LastName")
            if any(p in effects for p in parts) and "Name" not in effects and "FirstName" in self.values:
                joined = " ".join(str(v) for v in (self.values.get(p) for p in parts) if v)
                self.values["Name"] = joined or None
            row = (version[0], version[1])
            if self.row_version is None or row > self.row_version:
                self.row_version = row
        return touched

    def sequence_number(self) -> str:
        """BigQuery's ``_CHANGE_SEQUENCE_NUMBER`` of the next upsert: row version, then an emit counter.

        Sections are hex and compare left to right, so a late change that only fills a column
        (the row's version stays) still outranks the row BigQuery holds.
        """
        assert self.row_version is not None
        stamp, number = self.row_version
        millis = (stamp - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
        return f"{millis:X}/{number:X}/{self.emitted:X}"
