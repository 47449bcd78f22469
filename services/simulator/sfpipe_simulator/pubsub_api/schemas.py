"""Change-event schemas and topics of the simulated org.

Every simulated object has a change-event channel ``/data/<Object>ChangeEvent``, and
``/data/ChangeEvents`` carries all of them. Each object's schema is built once from the same
metadata as describe, so a field exists in an event exactly when it exists in the REST API; its
id is a hash of the schema and never changes while the metadata does not.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from sfpipe.salesforce.pubsub.events import ChangeEventEncoder, EventField
from sfpipe_simulator.metadata import OBJECTS, ObjectDef, get_object

ALL_CHANGES = "/data/ChangeEvents"
_PREFIX = "/data/"
_SUFFIX = "ChangeEvent"


def event_fields(obj: ObjectDef) -> list[EventField]:
    """An object's fields in describe order, with the compound each part belongs to."""
    return [EventField(f.name, f.type, f.compound_field_name) for f in obj.fields]


@functools.cache
def encoder(name: str) -> ChangeEventEncoder:
    """The change-event encoder (schema, id, bitmaps) of an object."""
    obj = get_object(name)
    if obj is None:
        msg = f"no simulated object named {name!r}"
        raise KeyError(msg)
    return ChangeEventEncoder(obj.name, event_fields(obj))


@functools.cache
def schemas_by_id() -> dict[str, ChangeEventEncoder]:
    """Every object's encoder by schema id."""
    return {encoder(o.name).schema_id: encoder(o.name) for o in OBJECTS}


@dataclass(frozen=True)
class Topic:
    """A change-event channel: its name and the objects it carries (None = all)."""

    name: str
    entities: frozenset[str] | None

    @property
    def schema_id(self) -> str:
        """The schema of a one-object channel; empty for ``/data/ChangeEvents`` (one schema per object)."""
        if self.entities is None or len(self.entities) != 1:
            return ""
        return encoder(next(iter(self.entities))).schema_id


def topic_channel(name: str) -> str:
    """The channel of one object's change events."""
    return f"{_PREFIX}{name}{_SUFFIX}"


def resolve_topic(name: str) -> Topic | None:
    """A channel by name (object names case-insensitively, as Salesforce matches them), or None."""
    if name == ALL_CHANGES:
        return Topic(name, None)
    if not (name.startswith(_PREFIX) and name.endswith(_SUFFIX)):
        return None
    obj = get_object(name[len(_PREFIX) : -len(_SUFFIX)])
    if obj is None:
        return None
    return Topic(topic_channel(obj.name), frozenset({obj.name}))
