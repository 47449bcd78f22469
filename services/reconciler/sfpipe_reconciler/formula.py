"""The formula pass: formula fields change without SystemModstamp, so they are refreshed on their own.

A formula that reads another record (``TEXT(Account.Industry)``) or the date changes its value
while the record itself does not change: no new SystemModstamp, no change event, nothing an
incremental sync or a version comparison can see (airbyte #26765). The pass reads, per object,
``Id``, ``IsDeleted``, the version field and the fields describe marks ``calculated`` — a narrow
listing, one Bulk job — and compares it in a local table with the same columns of the raw layer.
Only rows whose formula values differ, at the *same* version, are written: a lake run of kind
``formula`` with just those columns, which the loader merges into the stored rows (an equal
version may replace; the other columns keep their values).

Rows whose versions differ are left out on purpose: a newer source version is the next
extract's (or a repair's), and a partial row must never move a record's version, or the record's
other columns would look current when they are not.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from sfpipe import raw
from sfpipe.adapters.storage import ObjectStore
from sfpipe.adapters.warehouse.base import Warehouse
from sfpipe.config import Settings
from sfpipe.errors import SfpipeError
from sfpipe.salesforce import soql
from sfpipe.salesforce.client import SalesforceClient
from sfpipe.salesforce.errors import BulkJobFailedError, SalesforceFatalError
from sfpipe.salesforce.types import FieldInfo
from sfpipe_extractor.bulk import BulkReader
from sfpipe_extractor.convert import PageConverter
from sfpipe_reconciler.lakerun import RunWriter
from sfpipe_reconciler.listing import Listing
from sfpipe_reconciler.rawside import LIVE
from sfpipe_reconciler.repair import described_fields
from sfpipe_reconciler.source import NO_FALLBACK

log = logging.getLogger(__name__)


@dataclass
class FormulaObject:
    """What the pass did for one object."""

    fields: list[str] = field(default_factory=list)
    compared: int = 0
    refreshed: int = 0
    seconds: float = 0.0
    error: str | None = None


@dataclass
class FormulaRun:
    """One formula pass: its lake run (if anything changed) and what it did per object."""

    run_id: str
    manifest_uri: str | None = None
    objects: dict[str, FormulaObject] = field(default_factory=dict)
    api_calls: int = 0


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class FormulaRefresher:
    """Refreshes formula fields of objects, writing only the rows whose formula values moved."""

    def __init__(self, client: SalesforceClient, store: ObjectStore, warehouse: Warehouse, settings: Settings,
                 scratch: Path | None = None) -> None:  # fmt: skip
        self.client = client
        self.store = store
        self.warehouse = warehouse
        self.settings = settings
        self.scratch = scratch or Path(settings.home) / "tmp"

    def refresh(self, objects: list[str]) -> FormulaRun:
        """One formula run for the objects that have formula fields."""
        writer = RunWriter(self.store, self.settings.lake_bucket, "formula")
        run = FormulaRun(writer.run_id)
        before = self.client.requests_sent
        with Listing(self.scratch) as local:
            for name in objects:
                started = time.monotonic()
                done = FormulaObject()
                try:
                    self._object(writer, local.con, name, done)
                except SfpipeError as exc:
                    log.error("formula refresh of %s failed: %s", name, exc)
                    done.error = str(exc)
                    writer.failed[name] = str(exc)
                done.seconds = time.monotonic() - started
                if done.fields or done.error:
                    run.objects[name] = done
        if any(o.refreshed for o in run.objects.values()):
            run.manifest_uri = writer.commit(self.client.org_id)
        run.api_calls = self.client.requests_sent - before
        return run

    def _object(self, run: RunWriter, con: duckdb.DuckDBPyConnection, name: str, done: FormulaObject) -> None:
        schema = self.warehouse.table_schema(raw.raw_ref(name))
        if schema is None:
            return
        described = described_fields(self.client, name)
        formulas = [f for f in described if f.calculated and f.name in schema.names]
        if not formulas:
            return
        done.fields = [f.name for f in formulas]
        names = {f.name for f in described}
        version = raw.version_field([f.name for f in described])
        keys = [f for f in described if f.name in ("Id", "IsDeleted", version)]
        selected: list[FieldInfo] = [*keys, *formulas]
        converter = PageConverter(name, selected)
        columns = converter.names
        con.register("_shape", converter.schema.empty_table())
        try:
            con.execute("CREATE OR REPLACE TABLE src AS SELECT * FROM _shape")
        finally:
            con.unregister("_shape")
        con.execute("CREATE OR REPLACE TABLE wh AS SELECT * FROM src WHERE FALSE")
        query = soql.select(name, columns)
        for batch in self._source(name, query, converter):
            _insert(con, "src", batch)
        live = ", ".join(f"`{c}`" for c in columns if c in names)
        for batch in self.warehouse.query_batches(f"SELECT {live} FROM {raw.raw_ref(name).sql} WHERE {LIVE}"):
            _insert(con, "wh", batch.cast(converter.schema) if batch.schema != converter.schema else batch)
        done.compared = int(con.execute("SELECT count(*) FROM src").fetchall()[0][0])
        moved = " OR ".join(f"s.{_q(f.name)} IS DISTINCT FROM w.{_q(f.name)}" for f in formulas)
        changed: pa.Table = con.sql(
            f"SELECT {', '.join(f's.{_q(c)}' for c in columns)} FROM src s JOIN wh w ON s.Id = w.Id "
            f"AND s.{_q(version)} = w.{_q(version)} WHERE {moved} ORDER BY s.Id"
        ).to_arrow_table()
        if changed.num_rows == 0:
            log.info("%s: formula fields %s are current", name, ", ".join(done.fields))
            return
        writer = run.writer(name, converter)
        try:
            writer.write(changed.cast(converter.schema))
        except BaseException:
            writer.abort()
            raise
        run.add(name, writer, selected, converter)
        done.refreshed = writer.rows
        log.info("%s: %d records' formula fields changed without a new %s", name, done.refreshed, version)

    def _source(self, name: str, query: str, converter: PageConverter) -> Iterator[pa.RecordBatch]:
        """The narrow listing: one Bulk job, or REST pages when Bulk refuses the object."""
        try:
            job = self.client.create_query_job(query, include_deleted=True)
        except (BulkJobFailedError, SalesforceFatalError) as exc:
            if isinstance(exc, NO_FALLBACK):
                raise
            log.info("%s: Bulk refused the formula listing (%s); reading it over REST", name, exc)
            for page in self.client.query_pages(query, include_deleted=True):
                if page.records:
                    yield from converter.from_records(page.records, where=" (formula)").to_batches()
            return
        try:
            self.client.wait_for_query_job(job.id, first_poll=0.2)
            yield from BulkReader(self.client, converter, max_records=None, readers=1).batches(job.id)
        finally:
            self.client.delete_query_job(job.id)


def _insert(con: duckdb.DuckDBPyConnection, table: str, batch: pa.RecordBatch | pa.Table) -> None:
    con.register("_incoming", batch)
    try:
        con.execute(f"INSERT INTO {table} SELECT * FROM _incoming")
    finally:
        con.unregister("_incoming")
