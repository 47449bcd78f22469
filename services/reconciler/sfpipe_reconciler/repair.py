"""Repair: bring the records reconciliation found back into the raw layer, through the lake.

- **Missing and stale** records are fetched again, whole, by Id: ``SELECT <every field> FROM X
  WHERE Id IN (…)`` over ``queryAll`` (soft-deleted records come back with IsDeleted), as many
  Ids per query as fit a REST URL; an object too wide for one URL is read in column groups
  joined by Id, as the extractor does.
- **Extra** records (the raw layer has them, Salesforce does not) are hard-deleted: they go to
  the manifest's ``hard_deleted_ids``, and the loader turns them into tombstones. A record that
  a re-fetch no longer finds went the same way. ``sobjects/X/deleted`` over the last 15 days adds
  the records Salesforce deleted that the raw layer still holds as alive and not deleted: those
  queryAll no longer returns were hard-deleted too; the others are fetched again.

Everything is one lake run of kind ``repair`` with its own manifest; the loader loads it like
any extract (an equal version may replace the stored one).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sfpipe.adapters.storage import ObjectStore
from sfpipe.adapters.warehouse.base import Warehouse
from sfpipe.config import Settings
from sfpipe.errors import SfpipeError
from sfpipe.salesforce import soql
from sfpipe.salesforce.client import SalesforceClient
from sfpipe.salesforce.errors import SalesforceFatalError
from sfpipe.salesforce.types import FieldInfo, fields_from_describe, queryable_fields
from sfpipe_extractor.convert import PageConverter
from sfpipe_extractor.engine import SKIPPED_TYPES, joined_pages
from sfpipe_reconciler.lakerun import RunWriter
from sfpipe_reconciler.rawside import RawSide
from sfpipe_reconciler.reconcile import Checks, ObjectCheck

log = logging.getLogger(__name__)

DELETED_DAYS = timedelta(days=14, hours=23)
"""``sobjects/X/deleted`` keeps 15 days; ask a little less so the start is never refused."""


@dataclass
class RepairedObject:
    """What a repair did for one object."""

    refetched: int = 0
    hard_deleted: int = 0
    requested: int = 0
    vanished: list[str] = field(default_factory=list)
    """Ids asked for again that Salesforce no longer returns (hard-deleted since)."""
    seconds: float = 0.0
    error: str | None = None

    @property
    def repaired(self) -> int:
        """Records the repair run carries: fetched again or marked hard-deleted."""
        return self.refetched + self.hard_deleted


@dataclass
class Repair:
    """A repair run: its id, manifest, and what it holds per object."""

    run_id: str
    manifest_uri: str | None = None
    objects: dict[str, RepairedObject] = field(default_factory=dict)
    api_calls: int = 0


def described_fields(client: SalesforceClient, sobject: str) -> list[FieldInfo]:
    """The fields the extractor extracts (queryable, no compound or blob fields)."""
    described = fields_from_describe(client.describe(sobject))
    return [f for f in queryable_fields(described) if f.type.lower() not in SKIPPED_TYPES]


def id_batches(sobject: str, ids: Sequence[str], version: str) -> Iterator[list[str]]:
    """Ids in batches whose ``WHERE Id IN (…)`` leaves room in a REST URL for a group of fields."""
    budget = soql.MAX_REST_QUERY_CHARS // 2
    batch: list[str] = []
    for record_id in ids:
        batch.append(record_id)
        if soql.url_length(soql.select(sobject, ["Id", version], where_ids(batch))) > budget:
            batch.pop()
            yield batch
            batch = [record_id]
    if batch:
        yield batch


def where_ids(ids: Sequence[str]) -> str:
    """``Id IN ('…', '…')``."""
    return f"Id IN ({', '.join(soql.quote(i) for i in ids)})"


class Repairer:
    """Writes repair runs for the differences reconciliation found."""

    def __init__(self, client: SalesforceClient, store: ObjectStore, warehouse: Warehouse, settings: Settings) -> None:
        self.client = client
        self.store = store
        self.warehouse = warehouse
        self.settings = settings

    def repair(self, checks: Checks) -> Repair:
        """One repair run for every object with differences; a failing object is listed, the others go on."""
        writer = RunWriter(self.store, self.settings.lake_bucket, "repair")
        result = Repair(writer.run_id)
        before = self.client.requests_sent
        for name, check in checks.objects.items():
            if check.error or not check.differences:
                continue
            started = time.monotonic()
            done = result.objects[name] = RepairedObject(requested=check.differences)
            try:
                self._object(writer, check, done)
            except SfpipeError as exc:
                log.error("repair of %s failed: %s", name, exc)
                done.error = str(exc)
                writer.failed[name] = str(exc)
            done.seconds = time.monotonic() - started
        result.manifest_uri = writer.commit(self.client.org_id)
        result.api_calls = self.client.requests_sent - before
        return result

    def _object(self, run: RunWriter, check: ObjectCheck, done: RepairedObject) -> None:
        name = check.sobject
        fields = described_fields(self.client, name)
        converter = PageConverter(name, fields)
        names = converter.names
        version = check.version if check.version in names else "Id"
        fetch = sorted(set(check.missing) | set(check.stale))
        hard = set(check.extra)
        if "IsDeleted" in names:
            confirmed, alive = self._deleted_in_salesforce(name, check, set(fetch) | hard)
            hard |= confirmed
            fetch = sorted(set(fetch) | alive)
        writer = run.writer(name, converter)
        started = time.monotonic()
        found: set[str] = set()
        try:
            for batch in id_batches(name, fetch, version):
                for records in self._fetch(name, names, batch, version):
                    table = converter.from_records(records, where=" (repair)")
                    found.update(str(i) for i in table.column("Id").to_pylist())
                    writer.write(table)
        except BaseException:
            writer.abort()
            raise
        done.vanished = sorted(set(fetch) - found)
        hard |= set(done.vanished)
        run.add(name, writer, fields, converter, hard_deleted=sorted(hard), seconds=time.monotonic() - started)
        done.refetched = writer.rows
        done.hard_deleted = len(hard)
        log.info("%s: repair fetched %d records again and marks %d hard-deleted", name, done.refetched, len(hard))

    def _fetch(self, sobject: str, names: list[str], ids: list[str], version: str) -> Iterator[list[dict[str, Any]]]:
        where = where_ids(ids)
        query = soql.select(sobject, names, where)
        if soql.fits_url(query):
            for page in self.client.query_pages(query, include_deleted=True):
                yield page.records
            return
        groups = soql.column_groups(sobject, names, where, keys=["Id", version])
        yield from joined_pages(self.client, sobject, groups, where, version)

    def _deleted_in_salesforce(self, sobject: str, check: ObjectCheck, known: set[str]) -> tuple[set[str], set[str]]:
        """From ``sobjects/X/deleted``: (hard-deleted Ids alive in the raw layer, soft-deleted Ids alive there)."""
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        try:
            deleted = self.client.deleted(sobject, now - DELETED_DAYS, now)
        except SalesforceFatalError as exc:
            log.info("%s: no replication API answer for deletes (%s)", sobject, exc)
            return set(), set()
        listed = sorted({i for i, _ in deleted.records} - known)
        if not listed:
            return set(), set()
        rows = RawSide(self.warehouse, sobject).rows_by_id(listed)
        believed_alive = sorted(i for i, r in rows.items() if not r.hard_deleted and not r.is_deleted)
        if not believed_alive:
            return set(), set()
        present: set[str] = set()
        for batch in id_batches(sobject, believed_alive, check.version):
            for page in self.client.query_pages(soql.select(sobject, ["Id"], where_ids(batch)), include_deleted=True):
                present.update(str(r["Id"]) for r in page.records)
        gone = set(believed_alive) - present
        if gone or present:
            log.info("%s: sobjects/X/deleted lists %d records the raw layer holds alive: %d hard-deleted, %d to fetch",
                     sobject, len(believed_alive), len(gone), len(present))  # fmt: skip
        return gone, present
