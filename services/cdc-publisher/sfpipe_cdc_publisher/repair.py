"""Gap repair: what the event stream could not deliver, re-read through the REST API.

Salesforce sends a gap event (GAP_CREATE / GAP_UPDATE / GAP_DELETE / GAP_UNDELETE) with the
record ids but no fields when it could not build a change event, and GAP_OVERFLOW (no ids) when a
transaction changed too many records; a replay id older than the retention window loses every
event in between. In each case the records are read again (``queryAll``, so that deleted rows
come back with ``IsDeleted``) and published as changes that set every field.

A repaired record carries the gap event's version: the state read now includes that change, so
older changes arriving later lose to it and newer ones (still in the stream) win. Records re-read
after a lost stretch carry ``(SystemModstamp, 0)``, exactly like a batch load. A record the
re-read no longer finds was deleted for good and is published as a DELETE.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from sfpipe.salesforce import soql
from sfpipe.salesforce.client import SalesforceClient
from sfpipe.salesforce.pubsub.events import DecodedChange, parse_datetime
from sfpipe.salesforce.types import fields_from_describe, queryable_fields

log = logging.getLogger(__name__)

AUDIT = ("IsDeleted", "SystemModstamp", "LastModifiedDate", "LastModifiedById")
ID_CHUNK = 200
OVERFLOW_MARGIN = timedelta(seconds=1)


class GapRepair:
    """Re-reads records of change-event objects through one REST client (describes cached)."""

    def __init__(self, client: SalesforceClient) -> None:
        self.client = client
        self._types: dict[str, dict[str, str]] = {}
        self.records_read = 0

    def types(self, entity: str) -> dict[str, str]:
        """Every queryable field of an object and its Salesforce type (describe, once per object)."""
        found = self._types.get(entity)
        if found is None:
            fields = queryable_fields(fields_from_describe(self.client.describe(entity)))
            found = {f.name: f.type.lower() for f in fields}
            self._types[entity] = found
        return found

    def audit_types(self, entity: str) -> dict[str, str]:
        """The deletion and audit fields the object has (what the stream derives from a header)."""
        types = self.types(entity)
        return {name: types[name] for name in AUDIT if name in types}

    def _query(self, entity: str, where: str) -> Iterator[dict[str, Any]]:
        text = soql.select(entity, self.types(entity), where)
        for record in self.client.query(text, include_deleted=True):
            self.records_read += 1
            yield {k: v for k, v in record.items() if k != "attributes"}

    def by_id(self, entity: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Records by Id (deleted ones included; purged ones missing)."""
        out: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), ID_CHUNK):
            chunk = ids[start : start + ID_CHUNK]
            where = f"Id IN ({', '.join(soql.quote(i) for i in chunk)})"
            for record in self._query(entity, where):
                out[str(record["Id"])] = record
        return out

    def since(self, entity: str, start: datetime) -> Iterator[dict[str, Any]]:
        """Records whose SystemModstamp is at or after ``start`` (to the second, rounded down)."""
        yield from self._query(entity, soql.window_clause("SystemModstamp", start, None))

    def _change(self, entity: str, record: dict[str, Any], like: DecodedChange | None) -> DecodedChange:
        types = self.types(entity)
        if like is not None:
            stamp, number, sequence, key, user = (like.commit_timestamp, like.commit_number, like.sequence_number,
                                                  like.transaction_key, like.commit_user)  # fmt: skip
        else:
            modstamp = record.get("SystemModstamp")
            stamp = parse_datetime(str(modstamp)) if modstamp else datetime.fromtimestamp(0).astimezone()
            number, sequence, key, user = 0, 0, "repair", ""
        names = list(record)
        return DecodedChange(
            entity=entity, change_type="UPDATE", record_ids=[str(record["Id"])], change_origin="sfpipe/repair",
            transaction_key=key, sequence_number=sequence, commit_timestamp=stamp, commit_number=number,
            commit_user=user, changed_fields=names, nulled_fields=[n for n in names if record[n] is None],
            diff_fields=[], values=record, field_types={n: types.get(n, "string") for n in names},
        )  # fmt: skip

    def for_gap(self, gap: DecodedChange) -> list[DecodedChange]:
        """The changes that replace one gap event."""
        entity = gap.entity
        if gap.change_type == "GAP_OVERFLOW" or not gap.record_ids:
            start = gap.commit_timestamp.replace(microsecond=0) - OVERFLOW_MARGIN
            return [self._change(entity, r, gap) for r in self.since(entity, start)]
        found = self.by_id(entity, gap.record_ids)
        out = []
        for record_id in gap.record_ids:
            record = found.get(record_id)
            if record is not None:
                out.append(self._change(entity, record, gap))
                continue
            out.append(
                DecodedChange(
                    entity=entity, change_type="DELETE", record_ids=[record_id], change_origin="sfpipe/repair",
                    transaction_key=gap.transaction_key, sequence_number=gap.sequence_number,
                    commit_timestamp=gap.commit_timestamp, commit_number=gap.commit_number,
                    commit_user=gap.commit_user, changed_fields=[], nulled_fields=[], diff_fields=[],
                )
            )
        return out

    def since_position(self, entities: Iterable[str], start: datetime) -> Iterator[DecodedChange]:
        """Every record changed since ``start`` in the objects, as batch-like full changes."""
        for entity in entities:
            for record in self.since(entity, start):
                yield self._change(entity, record, None)
