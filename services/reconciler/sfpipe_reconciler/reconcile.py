"""Reconciliation: does the raw layer hold exactly the records Salesforce holds, at the same versions?

Per object, both sides are cut into buckets (the last characters of the Id) and each bucket is
summarised by a count and a checksum of ``(Id, SystemModstamp)``; only buckets that differ are
opened, and their rows compared Id by Id. The result per object is three lists: **missing**
(Salesforce has the record, the raw layer does not), **extra** (the raw layer has a live record
Salesforce no longer has: hard-deleted) and **stale** (the raw layer has an older version).
Rows the raw layer holds at a *newer* version than the source listing (loaded after the
listing's snapshot) are counted as ``ahead``, and records Salesforce changed at or after the end
of the object's last extract window (the next extract's work) as ``pending``: neither is a
difference.

Two passes, chosen per object:

- **full**: an Id-only listing of the whole object (one Bulk API 2.0 job, or a REST page
  inside a composite call for a small object) against every live raw row. Run the first time,
  then at least every ``SFPIPE_RECONCILE_FULL_HOURS``, and whenever a recent pass finds a count
  it cannot explain.
- **recent**: only what can have changed since the last clean comparison. A record whose
  SystemModstamp is older than that comparison's snapshot minus ``SFPIPE_RECONCILE_MARGIN_SECONDS``
  (the longest a transaction may commit after its SystemModstamp) was already compared, and can
  since only have moved to a newer version or left the org. So the pass lists the Ids at or
  after that point (with their versions, bucket by bucket as above) and *counts* the records
  before it; a hard delete among old records shows as a count that is lower in Salesforce, and
  sends the object to a full pass. Both queries of every object travel five to a ``composite``
  call: a handful of API calls for the whole org.

Formula fields do not move SystemModstamp; no comparison of versions can see them change. The
formula pass (:mod:`sfpipe_reconciler.formula`) refreshes them instead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from sfpipe.adapters.storage import ObjectStore
from sfpipe.adapters.warehouse.base import Warehouse
from sfpipe.config import Settings
from sfpipe.errors import SfpipeError
from sfpipe.ids import new_run_id
from sfpipe.salesforce import soql
from sfpipe.salesforce.client import SalesforceClient
from sfpipe_reconciler import rawside, record
from sfpipe_reconciler.buckets import Bucket, differing, width_for
from sfpipe_reconciler.listing import Listing, epoch_ms
from sfpipe_reconciler.rawside import RawSide
from sfpipe_reconciler.source import Query, Source

log = logging.getLogger(__name__)

Mode = Literal["auto", "full", "recent"]
SMALL_OBJECT_ROWS = 1_500
"""Objects with at most this many raw rows are listed over REST inside composite calls, not by a Bulk job."""
SAMPLE = 20


@dataclass
class ObjectCheck:
    """What reconciliation found for one object."""

    sobject: str
    mode: str
    snapshot_at: datetime
    since: datetime | None = None
    source_rows: int = 0
    warehouse_rows: int = 0
    buckets: int = 0
    buckets_differing: int = 0
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    ahead: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    """Records changed at or after the end of the last extract window: the next extract's, not a difference."""
    complete_to: datetime | None = None
    """Where the raw layer is meant to be complete: the end of the object's last extract window."""
    api: str = "composite"
    api_calls: float = 0.0
    seconds: float = 0.0
    error: str | None = None
    note: str = ""
    version: str = "SystemModstamp"
    in_scope: int = 0
    """Live raw rows in the comparison's scope (all of them in a full pass)."""
    crossing: int = 0
    """Listed records the raw layer holds below ``since`` (stale ones that crossed into the window)."""
    source_versions: dict[str, int | None] = field(default_factory=dict, repr=False)
    """Versions the source listed for the missing and stale Ids (what a repair must reach)."""

    @property
    def differences(self) -> int:
        """Missing, extra and stale records."""
        return len(self.missing) + len(self.extra) + len(self.stale)

    @property
    def clean(self) -> bool:
        """Checked, and nothing differs."""
        return self.error is None and self.differences == 0

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary (samples of the Ids)."""
        return {
            "mode": self.mode, "since": self.since.isoformat() if self.since else None,
            "snapshot_at": self.snapshot_at.isoformat(), "source_rows": self.source_rows,
            "warehouse_rows": self.warehouse_rows, "buckets": self.buckets,
            "buckets_differing": self.buckets_differing, "missing": len(self.missing), "extra": len(self.extra),
            "stale": len(self.stale), "ahead": len(self.ahead), "pending": len(self.pending), "api": self.api,
            "complete_to": self.complete_to.isoformat() if self.complete_to else None,
            "api_calls": round(self.api_calls, 1), "seconds": round(self.seconds, 3), "error": self.error,
            "note": self.note, "sample": {"missing": self.missing[:SAMPLE], "extra": self.extra[:SAMPLE],
                                          "stale": self.stale[:SAMPLE]},
        }  # fmt: skip


@dataclass
class Checks:
    """One reconciliation of several objects."""

    run_id: str
    started_at: datetime
    objects: dict[str, ObjectCheck] = field(default_factory=dict)
    api_calls: int = 0
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds per phase: where the lake, Salesforce and the warehouse spent the time."""

    @property
    def differences(self) -> int:
        """Missing, extra and stale records over every object."""
        return sum(c.differences for c in self.objects.values())

    @property
    def failed(self) -> dict[str, str]:
        """Objects that could not be compared, and why."""
        return {n: c.error for n, c in self.objects.items() if c.error}


class Reconciler:
    """Compares objects between Salesforce and the raw layer."""

    def __init__(
        self,
        client: SalesforceClient,
        warehouse: Warehouse,
        settings: Settings,
        *,
        store: ObjectStore | None = None,
        scratch: Path | None = None,
    ) -> None:
        self.client = client
        self.warehouse = warehouse
        self.settings = settings
        self.store = store
        self.scratch = scratch or Path(settings.home) / "tmp"

    # ------------------------------------------------------------------ entry point

    def check(
        self,
        objects: Sequence[str],
        mode: Mode = "auto",
        run_id: str | None = None,
        complete_to: Mapping[str, datetime | None] | None = None,
    ) -> Checks:
        """Compare the named objects; failures of one object are reported, not raised.

        ``complete_to``: per object, the end of the extract window the raw layer is loaded to
        (default: the window of the object's committed watermark, when a lake is given).
        """
        started = time.monotonic()
        checks = Checks(run_id or new_run_id(), datetime.now(UTC))
        calls_before = self.client.requests_sent
        clock = _Clock(checks.timings)
        record.ensure_table(self.warehouse)
        clock.lap("ops tables")
        baselines = record.baselines(self.warehouse, objects) if mode != "full" else {}
        clock.lap("baselines")
        source = Source(self.client)
        margin = timedelta(seconds=self.settings.reconcile_margin_seconds)
        full_every = timedelta(hours=self.settings.reconcile_full_hours)
        ends: dict[str, datetime | None] = dict(complete_to or {})
        unknown = [n for n in objects if n not in ends]
        if unknown:
            with ThreadPoolExecutor(max_workers=8) as pool:
                ends.update(zip(unknown, pool.map(self._window_end, unknown), strict=True))
        clock.lap("watermarks")
        with Listing(self.scratch) as listing:
            sides: dict[str, RawSide] = {}
            recent: dict[str, ObjectCheck] = {}
            full: dict[str, ObjectCheck] = {}
            snapshot = datetime.now(UTC)
            for name in objects:
                side = RawSide(self.warehouse, name)
                if not side.exists:
                    checks.objects[name] = ObjectCheck(name, "none", snapshot, error="no raw table: not loaded yet")
                    continue
                sides[name] = side
                end = ends.get(name)
                base = baselines.get(name)
                use_full = (mode == "full" or base is None or base.last_full is None
                            or (mode == "auto" and snapshot - base.last_full >= full_every))  # fmt: skip
                if use_full or base is None:
                    full[name] = ObjectCheck(name, "full", snapshot, version=side.version, complete_to=end)
                else:
                    since = soql.floor_second(base.last_clean - margin)
                    recent[name] = ObjectCheck(name, "recent", snapshot, since=since, version=side.version,
                                               complete_to=end)  # fmt: skip
            clock.lap("raw tables")
            if recent:
                self._recent(recent, sides, source, listing, full, clock)
            if full:
                self._full(full, sides, source, listing)
                clock.lap("full pass")
            checks.objects.update(recent)
            checks.objects.update(full)
            for name, check in checks.objects.items():
                check.api_calls = source.calls_by_object.get(name, 0.0)
        checks.objects = {n: checks.objects[n] for n in objects if n in checks.objects}
        checks.api_calls = self.client.requests_sent - calls_before
        checks.seconds = time.monotonic() - started
        return checks

    def _window_end(self, sobject: str) -> datetime | None:
        """The end of the object's last committed extract window (its watermark document), if a lake is known."""
        if self.store is None:
            return None
        from sfpipe_extractor.state import read_state

        try:
            state, _ = read_state(self.store, self.settings.state_bucket, sobject)
        except SfpipeError as exc:
            log.warning("%s: cannot read its watermark (%s); comparing every record", sobject, exc)
            return None
        return state.window_to if state is not None else None

    # ------------------------------------------------------------------ the recent pass

    def _recent(self, checks: dict[str, ObjectCheck], sides: dict[str, RawSide], source: Source,
                listing: Listing, full: dict[str, ObjectCheck], clock: _Clock) -> None:  # fmt: skip
        queries: list[Query] = []
        for name, check in checks.items():
            assert check.since is not None
            listing.reset(name)
            since = soql.soql_datetime(check.since)
            queries.append(Query(f"{name}:changed", soql.select(name, ["Id", check.version],
                                 f"{check.version} >= {since}"), listing=(name, check.version)))  # fmt: skip
            queries.append(Query(f"{name}:older", soql.count(name, f"{check.version} < {since}")))
        try:
            answers = source.run(queries, listing)
        except SfpipeError as exc:
            for check in checks.values():
                check.error = f"listing changes failed: {exc}"
            return
        clock.lap("salesforce")
        for name, check in checks.items():
            changed, older = answers[f"{name}:changed"], answers[f"{name}:older"]
            check.error = changed.error or older.error
        ready = {n: c for n, c in checks.items() if not c.error}
        try:
            self._compare_all(ready, sides, listing)
        except SfpipeError as exc:
            for check in ready.values():
                check.error = str(exc)
            return
        finally:
            clock.lap("compare")
        for name, check in list(ready.items()):
            if check.error:
                continue
            source_older = answers[f"{name}:older"].total
            raw_older = check.warehouse_rows - check.in_scope - check.crossing
            check.source_rows = answers[f"{name}:changed"].total + source_older
            if source_older != raw_older:
                # a record older than the window left the org (or came back): only a full pass can say which
                log.info("%s: %d records before %s in Salesforce, %d in the raw layer; comparing every record",
                         name, source_older, check.since, raw_older)  # fmt: skip
                full[name] = ObjectCheck(name, "full", check.snapshot_at, version=check.version,
                                         complete_to=check.complete_to,
                                         note=f"recent pass: {source_older} older records in Salesforce, "
                                              f"{raw_older} in the raw layer")  # fmt: skip
                del checks[name]

    # ------------------------------------------------------------------ the full pass

    def _full(self, checks: dict[str, ObjectCheck], sides: dict[str, RawSide], source: Source,
              listing: Listing) -> None:  # fmt: skip
        sizes = rawside.stats(self.warehouse, {n: (sides[n], None) for n in checks})
        small = [n for n in checks if sizes[n].total <= SMALL_OBJECT_ROWS]
        if small:
            queries = []
            for name in small:
                listing.reset(name)
                queries.append(Query(f"{name}:all", soql.select(name, ["Id", checks[name].version]),
                                     listing=(name, checks[name].version)))  # fmt: skip
            try:
                answers = source.run(queries, listing)
            except SfpipeError as exc:
                answers = {}
                for name in small:
                    checks[name].error = f"listing failed: {exc}"
            for name in small:
                answer = answers.get(f"{name}:all")
                if answer is not None and answer.error:
                    checks[name].error = answer.error
        for name, check in checks.items():
            if check.error or name in small:
                continue
            started = time.monotonic()
            try:
                check.snapshot_at = datetime.now(UTC)
                _, check.api = source.list_object(name, check.version, listing)
            except SfpipeError as exc:
                check.error = str(exc)
            check.seconds = time.monotonic() - started
        ready = {n: c for n, c in checks.items() if not c.error}
        try:
            self._compare_all(ready, sides, listing)
        except SfpipeError as exc:
            for check in ready.values():
                check.error = str(exc)
        for name, check in ready.items():
            check.source_rows = listing.count(name)

    # ------------------------------------------------------------------ comparing

    def _compare_all(self, checks: dict[str, ObjectCheck], sides: dict[str, RawSide], listing: Listing) -> None:
        """Compare several objects: their raw counts and bucket summaries each come in one query."""
        if not checks:
            return
        counts = rawside.stats(self.warehouse, {n: (sides[n], c.since) for n, c in checks.items()})
        widths = {}
        for name, check in checks.items():
            check.warehouse_rows, check.in_scope = counts[name].total, counts[name].in_scope
            listed = listing.count(name)
            if listed or check.in_scope:  # both sides empty in scope: nothing to compare
                widths[name] = width_for(max(listed, check.in_scope), self.settings.reconcile_bucket_rows)
        theirs = rawside.summaries(self.warehouse, {n: (sides[n], w, checks[n].since) for n, w in widths.items()})
        for name, check in checks.items():
            if name not in widths:
                continue
            started = time.monotonic()
            try:
                check.crossing = self._compare(check, sides[name], listing, widths[name], theirs[name])
            except SfpipeError as exc:
                check.error = str(exc)
            check.seconds += time.monotonic() - started

    def _compare(self, check: ObjectCheck, side: RawSide, listing: Listing, width: int,
                 theirs: dict[str, Bucket]) -> int:  # fmt: skip
        """Compare one object in scope; returns how many listed records the raw layer holds below ``since``."""
        name = check.sobject
        since = check.since
        ours = listing.summary(name, width)
        check.buckets = len(set(ours) | set(theirs))
        keys = differing(ours, theirs)
        check.buckets_differing = len(keys)
        if not keys:
            return 0
        src = listing.rows_in(name, width, keys)
        wh = side.rows_in(width, keys, since)
        elsewhere = side.rows_by_id(sorted(i for i in src if i not in wh))
        snapshot_ms = epoch_ms(check.snapshot_at) or 0
        complete_ms = epoch_ms(check.complete_to)
        crossing = 0
        for record_id, version in sorted(src.items()):
            pending = complete_ms is not None and version is not None and version >= complete_ms
            if record_id in wh:
                theirs_version = wh[record_id].version_ms
            else:
                row = elsewhere.get(record_id)
                if row is None or row.hard_deleted:
                    (check.pending if pending else check.missing).append(record_id)
                    check.source_versions[record_id] = version
                    continue
                crossing += 1
                theirs_version = row.version_ms
            if _older(theirs_version, version):
                (check.pending if pending else check.stale).append(record_id)
                check.source_versions[record_id] = version
            elif _older(version, theirs_version):
                check.ahead.append(record_id)
        for record_id, live in sorted(wh.items()):
            if record_id in src:
                continue
            if _at_or_after(live.version_ms, snapshot_ms) or _at_or_after(live.ingested_ms, snapshot_ms):
                # changed after the listing's snapshot, or reached the warehouse after it (through CDC, say)
                # from a transaction the listing may not have seen committed: the next pass decides
                check.ahead.append(record_id)
            else:
                check.extra.append(record_id)
        return crossing


class _Clock:
    """Laps of a reconciliation, into ``Checks.timings``."""

    def __init__(self, into: dict[str, float]) -> None:
        self.into = into
        self.last = time.monotonic()

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.into[name] = round(self.into.get(name, 0.0) + now - self.last, 3)
        self.last = now


def _older(a: int | None, b: int | None) -> bool:
    """Whether version ``a`` is older than ``b`` (a missing version is the oldest)."""
    if a == b:
        return False
    if a is None:
        return True
    if b is None:
        return False
    return a < b


def _at_or_after(value: int | None, moment: int) -> bool:
    """Whether epoch milliseconds ``value`` (None: unknown) are at or after ``moment``."""
    return value is not None and value >= moment
