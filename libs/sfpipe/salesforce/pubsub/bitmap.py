"""Change-event field bitmaps: ``changedFields``, ``nulledFields`` and ``diffFields``.

Salesforce does not list field names in a change event's header: it sends bitmaps over the
positions of the fields in the event's Avro schema. The first entry is a hex number whose bit
*i* (least significant first) stands for top-level field *i* (``ChangeEventHeader`` is field
0). A compound field (an address, a person's name) adds an entry
``"<parent position>-<hex bitmap>"`` over the fields of its nested record; such a child is
named ``Parent.child``. Hex digits are upper case and whole bytes (``0x2C``, ``0x0100``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sfpipe.errors import BadInputError


def encode(positions: Iterable[int]) -> str:
    """Field positions as one hex bitmap (``{2, 3, 5}`` → ``0x2C``)."""
    value = 0
    for position in positions:
        if position < 0:
            msg = f"a field position cannot be negative, got {position}"
            raise BadInputError(msg, field="positions")
        value |= 1 << position
    digits = f"{value:X}"
    if len(digits) % 2:
        digits = "0" + digits
    return "0x" + digits


def decode(bitmap: str) -> list[int]:
    """The positions a hex bitmap sets, ascending."""
    text = bitmap.strip()
    if not text.lower().startswith("0x"):
        msg = f"field bitmap {bitmap!r} does not start with 0x; expected a hex number such as 0x2C"
        raise BadInputError(msg, field="bitmap")
    try:
        value = int(text[2:], 16)
    except ValueError:
        msg = f"field bitmap {bitmap!r} is not a hex number; expected one such as 0x2C"
        raise BadInputError(msg, field="bitmap") from None
    positions = []
    position = 0
    while value:
        if value & 1:
            positions.append(position)
        value >>= 1
        position += 1
    return positions


@dataclass(frozen=True)
class SchemaIndex:
    """Positions of an event schema's fields, and of the fields of its nested records."""

    fields: tuple[str, ...]
    nested: Mapping[int, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def from_schema(cls, schema: Mapping[str, Any]) -> SchemaIndex:
        """Read an Avro record schema (the parsed JSON of GetSchema)."""
        named: dict[str, Mapping[str, Any]] = {}
        names: list[str] = []
        nested: dict[int, tuple[str, ...]] = {}
        for position, spec in enumerate(schema.get("fields", [])):
            names.append(spec["name"])
            record = _record_type(spec["type"], named, schema.get("namespace"))
            if record is not None and spec["name"] != "ChangeEventHeader":
                nested[position] = tuple(f["name"] for f in record.get("fields", []))
        return cls(tuple(names), nested)

    def bitmaps(self, paths: Iterable[str]) -> list[str]:
        """Field paths (``Name``, ``BillingAddress.City``) as Salesforce's bitmap list.

        A child also sets its parent's bit in the top-level bitmap, as Salesforce does. No paths
        give an empty list (never a bitmap of zero).
        """
        top: set[int] = set()
        children: dict[int, set[int]] = {}
        position = {name: i for i, name in enumerate(self.fields)}
        for path in paths:
            parent, _, child = path.partition(".")
            if parent not in position:
                msg = f"field {parent!r} is not in the event schema"
                raise BadInputError(msg, field="fields")
            index = position[parent]
            top.add(index)
            if child:
                names = self.nested.get(index, ())
                if child not in names:
                    msg = f"field {path!r} is not in the event schema"
                    raise BadInputError(msg, field="fields")
                children.setdefault(index, set()).add(names.index(child))
        if not top:
            return []
        out = [encode(top)]
        out += [f"{parent}-{encode(bits)}" for parent, bits in sorted(children.items())]
        return out

    def names(self, bitmaps: Sequence[str]) -> list[str]:
        """Salesforce's bitmap list back as field paths, in schema order.

        A compound parent whose children are listed is named only through them.
        """
        top: list[int] = []
        children: dict[int, list[int]] = {}
        for entry in bitmaps:
            if entry.lower().startswith("0x"):
                top.extend(decode(entry))
                continue
            parent_text, sep, bitmap = entry.partition("-")
            if not sep or not parent_text.isdigit():
                msg = f"field bitmap {entry!r} is neither 0x… nor <parent position>-0x…"
                raise BadInputError(msg, field="bitmap")
            children.setdefault(int(parent_text), []).extend(decode(bitmap))
        out: list[str] = []
        for index in sorted(set(top) | set(children)):
            if index >= len(self.fields):
                msg = f"field bitmap names position {index}; the schema has {len(self.fields)} fields"
                raise BadInputError(msg, field="bitmap")
            name = self.fields[index]
            if index in children:
                nested = self.nested.get(index, ())
                for child in sorted(set(children[index])):
                    if child >= len(nested):
                        msg = f"field bitmap names child {child} of {name}, which has {len(nested)} fields"
                        raise BadInputError(msg, field="bitmap")
                    out.append(f"{name}.{nested[child]}")
            else:
                out.append(name)
        return out


def _record_type(
    avro_type: Any, named: dict[str, Mapping[str, Any]], namespace: str | None
) -> Mapping[str, Any] | None:
    """The record a (possibly nullable, possibly named-reference) Avro type stands for."""
    if isinstance(avro_type, list):
        for branch in avro_type:
            found = _record_type(branch, named, namespace)
            if found is not None:
                return found
        return None
    if isinstance(avro_type, Mapping):
        if avro_type.get("type") == "record":
            space = avro_type.get("namespace", namespace)
            full = f"{space}.{avro_type['name']}" if space else str(avro_type["name"])
            named[full] = avro_type
            named[str(avro_type["name"])] = avro_type
            return avro_type
        return None
    if isinstance(avro_type, str):
        return named.get(avro_type) or named.get(f"{namespace}.{avro_type}")
    return None
