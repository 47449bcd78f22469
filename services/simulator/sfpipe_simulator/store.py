"""The org's state: one DuckDB table per object plus the ordered change log, in one database.

Readers (REST pages, Bulk jobs, the truth export) each take their own cursor and see a
consistent snapshot through DuckDB's MVCC; writers (the REST API and the live activity) go
one at a time through :meth:`OrgStore.transaction`, which gives every transaction a commit
number and a commit timestamp, bumps the audit fields, and appends one change-log row per
changed record in the same DuckDB transaction — so the log can never disagree with the
tables. Times are kept as naive UTC ``TIMESTAMP`` columns; record audit times have
Salesforce's one-second precision, commit timestamps millisecond precision.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from sfpipe_simulator.ids import decode_number, make_id
from sfpipe_simulator.metadata import OBJECTS, STANDARD_OBJECTS, FieldDef, ObjectDef, get_object

log = logging.getLogger(__name__)

RETENTION = timedelta(hours=72)
CHANGES_TABLE = "_changes"
PURGED_TABLE = "_purged"
"""Records removed from the recycle bin (hard-deleted): ``sobjects/X/deleted`` still lists them for 15 days."""
CHANGE_TYPES = ("CREATE", "UPDATE", "DELETE", "UNDELETE")
AUDIT_FIELDS = frozenset({"LastModifiedDate", "LastModifiedById", "SystemModstamp"})

_DUCK_TYPES = {
    "boolean": "BOOLEAN",
    "int": "BIGINT",
    "long": "BIGINT",
    "double": "DOUBLE",
    "currency": "DOUBLE",
    "percent": "DOUBLE",
    "date": "DATE",
    "datetime": "TIMESTAMP",
    "time": "TIME",
}


def q(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def duck_type(f: FieldDef) -> str:
    """The DuckDB column type of a stored field."""
    return _DUCK_TYPES.get(f.type, "VARCHAR")


def utc_naive(moment: datetime) -> datetime:
    """An aware datetime as naive UTC (how the store keeps times)."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def sf_datetime(moment: datetime) -> str:
    """Salesforce's REST datetime text (``2024-01-02T03:04:05.000+0000``)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def json_value(value: Any) -> Any:
    """A stored value as it appears in JSON (REST records, change-log values)."""
    if isinstance(value, datetime):
        return sf_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


class Clock:
    """The simulator's notion of now: real UTC time, plus an offset the admin API can advance."""

    def __init__(self) -> None:
        self.offset = timedelta(0)
        self._lock = threading.Lock()
        self._last = datetime.min.replace(tzinfo=UTC)

    def now(self) -> datetime:
        """Now (aware UTC)."""
        return datetime.now(UTC) + self.offset

    def today(self) -> date:
        """Today's date in UTC (what date literals are relative to)."""
        return self.now().date()

    def advance(self, seconds: float) -> None:
        """Move simulated time forward."""
        with self._lock:
            self.offset += timedelta(seconds=seconds)

    def commit_time(self) -> datetime:
        """A commit timestamp at millisecond precision that never goes backwards."""
        with self._lock:
            moment = self.now()
            moment = moment.replace(microsecond=(moment.microsecond // 1000) * 1000)
            if moment < self._last:
                moment = self._last
            self._last = moment
            return moment


@dataclass(frozen=True)
class ChangeEvent:
    """One entry of the ordered change log (the source of the CDC stream).

    ``replay_id`` is the log position (unique, increasing by one per event); ``commit_number``
    is shared by the events of one transaction and increases per transaction.
    """

    replay_id: int
    commit_number: int
    transaction_key: str
    sequence_number: int
    commit_timestamp: datetime
    entity: str
    change_type: str
    change_origin: str
    commit_user: str
    record_ids: tuple[str, ...]
    changed_fields: tuple[str, ...]
    nulled_fields: tuple[str, ...]
    diff_fields: tuple[str, ...]
    values: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (times in ISO 8601 with milliseconds)."""
        return {
            "replay_id": self.replay_id,
            "commit_number": self.commit_number,
            "transaction_key": self.transaction_key,
            "sequence_number": self.sequence_number,
            "commit_timestamp": self.commit_timestamp.isoformat(timespec="milliseconds"),
            "entity": self.entity,
            "change_type": self.change_type,
            "change_origin": self.change_origin,
            "commit_user": self.commit_user,
            "record_ids": list(self.record_ids),
            "changed_fields": list(self.changed_fields),
            "nulled_fields": list(self.nulled_fields),
            "diff_fields": list(self.diff_fields),
            "values": self.values,
        }


_CHANGE_COLUMNS = (
    "replay_id, commit_number, transaction_key, sequence_number, commit_timestamp, entity, change_type, "
    "change_origin, commit_user, record_ids, changed_fields, nulled_fields, diff_fields, payload"
)


class ChangeLog:
    """Read side of the change log: positions, reads from a position, waiting for news."""

    def __init__(self, store: OrgStore) -> None:
        self._store = store
        self._cond = threading.Condition()
        self.last_replay_id = 0
        self.last_commit_number = 0
        self.first_replay_id = 1

    def _published(self, replay_id: int, commit_number: int) -> None:
        with self._cond:
            self.last_replay_id = replay_id
            self.last_commit_number = commit_number
            self._cond.notify_all()

    def latest(self) -> int:
        """The replay id of the newest event (0 when the log is empty)."""
        return self.last_replay_id

    def earliest(self) -> int:
        """The oldest replay id still retained."""
        return self.first_replay_id

    def wait(self, after: int, timeout: float) -> bool:
        """Block until an event newer than ``after`` exists (True) or the timeout passes (False)."""
        with self._cond:
            return self._cond.wait_for(lambda: self.last_replay_id > after, timeout=timeout)

    def read(self, after: int = 0, limit: int = 1_000, entities: set[str] | None = None) -> list[ChangeEvent]:
        """Events with ``replay_id > after`` in log order (at most ``limit``)."""
        sql = f"SELECT {_CHANGE_COLUMNS} FROM {CHANGES_TABLE} WHERE replay_id > ?"
        params: list[Any] = [after]
        if entities:
            sql += f" AND entity IN ({', '.join('?' for _ in entities)})"
            params.extend(sorted(entities))
        sql += " ORDER BY replay_id LIMIT ?"
        params.append(int(limit))
        with self._store.reader() as cur:
            rows = cur.execute(sql, params).fetchall()
        return [_event_from_row(r) for r in rows]

    def purge(self, now: datetime) -> int:
        """Drop events older than the retention window (72 hours of simulated time)."""
        cutoff = utc_naive(now - RETENTION)
        with self._store.write_lock, self._store.reader() as cur:
            removed = cur.execute(
                f"DELETE FROM {CHANGES_TABLE} WHERE commit_timestamp < ? RETURNING replay_id", [cutoff]
            ).fetchall()
            if removed:
                self.first_replay_id = max(r[0] for r in removed) + 1
        return len(removed)


def _event_from_row(row: tuple[Any, ...]) -> ChangeEvent:
    return ChangeEvent(
        replay_id=row[0],
        commit_number=row[1],
        transaction_key=row[2],
        sequence_number=row[3],
        commit_timestamp=row[4].replace(tzinfo=UTC),
        entity=row[5],
        change_type=row[6],
        change_origin=row[7],
        commit_user=row[8],
        record_ids=tuple(row[9]),
        changed_fields=tuple(row[10]),
        nulled_fields=tuple(row[11]),
        diff_fields=tuple(row[12]),
        values=json.loads(row[13]),
    )


@dataclass
class _PendingEvent:
    entity: str
    change_type: str
    record_id: str
    changed: list[str]
    nulled: list[str]
    values: dict[str, Any]


@dataclass
class Tx:
    """One write transaction: reads see its own writes; events are logged at commit."""

    store: OrgStore
    cursor: duckdb.DuckDBPyConnection
    commit_number: int
    commit_timestamp: datetime
    origin: str
    user_id: str
    events: list[_PendingEvent] = field(default_factory=list)
    started_at: datetime | None = None
    """When the transaction began, if long before its commit (a late commit): its records carry that time."""

    @property
    def stamp(self) -> datetime:
        """Audit time of this transaction's records (second precision, naive UTC).

        Salesforce stamps records when the transaction does its work, not when it commits: a
        transaction that commits late leaves records whose SystemModstamp is older than the commit.
        """
        moment = self.started_at if self.started_at is not None else self.commit_timestamp
        return utc_naive(moment).replace(microsecond=0)

    def fetch(self, obj: ObjectDef, record_id: str) -> dict[str, Any] | None:
        """A record's stored values (any deletion state), or None."""
        names = [f.name for f in obj.stored_fields]
        row = self.cursor.execute(
            f"SELECT {', '.join(q(n) for n in names)} FROM {q(obj.table)} WHERE Id = ?", [record_id]
        ).fetchone()
        return dict(zip(names, row, strict=True)) if row else None

    def select(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        """Any read inside the transaction."""
        return self.cursor.execute(sql, params or []).fetchall()

    def new_id(self, obj: ObjectDef) -> tuple[str, int]:
        """The next Id of an object and its record number (autonumbers use it too)."""
        number = self.store.allocate(obj.name)
        return make_id(obj.key_prefix, self.store.pod, number), number

    def insert(self, obj: ObjectDef, values: dict[str, Any]) -> None:
        """Insert a record; audit fields are set here, one CREATE event is logged."""
        row = dict(values)
        stamp = self.stamp
        if obj.has_created_date:
            row.setdefault("CreatedDate", stamp)
            row.setdefault("CreatedById", self.user_id)
        if obj.has_last_modified:
            row["LastModifiedDate"] = stamp
            row["LastModifiedById"] = self.user_id
        row["SystemModstamp"] = stamp
        if obj.has_is_deleted:
            row.setdefault("IsDeleted", False)
        cols = [f.name for f in obj.stored_fields if f.name in row]
        self.cursor.execute(
            f"INSERT INTO {q(obj.table)} ({', '.join(q(c) for c in cols)}) VALUES ({', '.join('?' for _ in cols)})",
            [row[c] for c in cols],
        )
        present = {c: row[c] for c in cols if row[c] is not None}
        self.events.append(_PendingEvent(obj.name, "CREATE", row["Id"], sorted(present), [], present))

    def update(self, obj: ObjectDef, record_id: str, changes: dict[str, Any], *, event: bool = True,
               current: dict[str, Any] | None = None) -> list[str]:  # fmt: skip
        """Set fields that differ from their stored values; log an UPDATE with what changed.

        ``current`` (the stored row, when the caller already read it in this transaction) saves a read.
        """
        current = current if current is not None else self.fetch(obj, record_id)
        if current is None:
            msg = f"{obj.name} {record_id} does not exist"
            raise KeyError(msg)
        diff = {k: v for k, v in changes.items() if current.get(k) != v and k not in AUDIT_FIELDS}
        if not diff:
            return []
        stamp = self.stamp
        row = dict(diff)
        if obj.has_last_modified:
            row["LastModifiedDate"] = stamp
            row["LastModifiedById"] = self.user_id
        row["SystemModstamp"] = stamp
        self.cursor.execute(
            f"UPDATE {q(obj.table)} SET {', '.join(f'{q(k)} = ?' for k in row)} WHERE Id = ?",
            [*row.values(), record_id],
        )
        if event:
            visible = {k: v for k, v in row.items()
                       if k != "SystemModstamp" and (k != "LastModifiedById" or current.get(k) != v)}  # fmt: skip
            nulled = sorted(k for k, v in diff.items() if v is None)
            self.events.append(_PendingEvent(obj.name, "UPDATE", record_id, sorted(visible), nulled, visible))
        return sorted(diff)

    def purge(self, obj: ObjectDef, record_id: str, deleted_at: datetime, *, event: bool) -> None:
        """Remove a record for good (emptied from the recycle bin, or hard-deleted).

        queryAll no longer returns it; ``sobjects/X/deleted`` lists it with ``deleted_at`` for 15
        days. ``event``: log a DELETE (a live record hard-deleted now); a record already in the
        recycle bin had its DELETE logged when it was deleted.
        """
        self.cursor.execute(f"DELETE FROM {q(obj.table)} WHERE Id = ?", [record_id])
        self.cursor.execute(f"INSERT INTO {PURGED_TABLE} VALUES (?, ?, ?)",
                            [obj.name, record_id, utc_naive(deleted_at)])
        if event:
            self.events.append(_PendingEvent(obj.name, "DELETE", record_id, [], [], {}))

    def set_deleted(self, obj: ObjectDef, record_id: str, deleted: bool) -> None:
        """Soft-delete or undelete a record (bumps its audit fields), logging DELETE or UNDELETE."""
        stamp = self.stamp
        row: dict[str, Any] = {"IsDeleted": deleted, "SystemModstamp": stamp}
        if obj.has_last_modified:
            row["LastModifiedDate"] = stamp
            row["LastModifiedById"] = self.user_id
        self.cursor.execute(
            f"UPDATE {q(obj.table)} SET {', '.join(f'{q(k)} = ?' for k in row)} WHERE Id = ?",
            [*row.values(), record_id],
        )
        if deleted:
            self.events.append(_PendingEvent(obj.name, "DELETE", record_id, [], [], {}))
        else:
            current = self.fetch(obj, record_id) or {}
            present = {k: v for k, v in current.items() if v is not None}
            self.events.append(_PendingEvent(obj.name, "UNDELETE", record_id, sorted(present), [], present))


class OrgStore:
    """The DuckDB database of one simulated org."""

    def __init__(self, path: Path | None, pod: str, clock: Clock, memory_limit: str = "1GB") -> None:
        self.path = path
        self.pod = pod
        self.clock = clock
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            for stale in (path, path.with_suffix(path.suffix + ".wal")):
                stale.unlink(missing_ok=True)
        self._db = duckdb.connect(str(path) if path else ":memory:")
        self._db.execute("SET GLOBAL TimeZone = 'UTC'")
        self._db.execute(f"SET GLOBAL memory_limit = '{memory_limit}'")
        self._db.execute("SET GLOBAL preserve_insertion_order = true")
        self.write_lock = threading.RLock()
        self._counter_lock = threading.Lock()
        self._numbers: dict[str, int] = {}
        self.changes = ChangeLog(self)
        self._commit_number = 0
        self._replay_id = 0
        self.counts_at_load: dict[str, int] = {}
        self.objects: tuple[str, ...] = STANDARD_OBJECTS

    # ------------------------------------------------------------------ setup

    def create_tables(self, objects: tuple[str, ...] | None = None) -> None:
        """Empty tables for the org's objects (default: the standard ones), the change log and the purge log."""
        if objects is not None:
            self.objects = tuple(o.name for o in OBJECTS if o.name in objects)
        with self.reader() as cur:
            for obj in self.object_defs():
                cols = ", ".join(f"{q(f.name)} {duck_type(f)}" for f in obj.stored_fields)
                cur.execute(f"CREATE OR REPLACE TABLE {q(obj.table)} ({cols})")
            cur.execute(
                f"""CREATE OR REPLACE TABLE {CHANGES_TABLE} (
                    replay_id BIGINT, commit_number BIGINT, transaction_key VARCHAR, sequence_number INTEGER,
                    commit_timestamp TIMESTAMP, entity VARCHAR, change_type VARCHAR, change_origin VARCHAR,
                    commit_user VARCHAR, record_ids VARCHAR[], changed_fields VARCHAR[], nulled_fields VARCHAR[],
                    diff_fields VARCHAR[], payload VARCHAR)"""
            )
            cur.execute(f"CREATE OR REPLACE TABLE {PURGED_TABLE} (entity VARCHAR, Id VARCHAR, deleted_at TIMESTAMP)")

    def object_defs(self) -> tuple[ObjectDef, ...]:
        """The definitions of the org's objects, parents first."""
        return tuple(o for o in OBJECTS if o.name in self.objects)

    def has_object(self, name: str) -> bool:
        """Whether the org has this object (optional custom objects exist only when generated)."""
        return name in self.objects

    def load_parquet(self, folder: Path) -> dict[str, int]:
        """Fill the tables from a generated org's Parquet files; returns rows per object."""
        marker = folder / "_org.json"
        generated = tuple(json.loads(marker.read_text()).get("files", {})) if marker.exists() else None
        self.create_tables(generated or STANDARD_OBJECTS)
        counts: dict[str, int] = {}
        with self.reader() as cur:
            for obj in self.object_defs():
                pattern = str(folder / obj.name / "*.parquet").replace("'", "''")
                cols = ", ".join(f"CAST({q(f.name)} AS {duck_type(f)})" for f in obj.stored_fields)
                cur.execute(f"INSERT INTO {q(obj.table)} SELECT {cols} FROM read_parquet('{pattern}')")
                counts[obj.name] = cur.execute(f"SELECT count(*) FROM {q(obj.table)}").fetchone()[0]  # type: ignore[index]
            cur.execute("CHECKPOINT")
        self._init_numbers()
        self.counts_at_load = counts
        return counts

    def _init_numbers(self) -> None:
        with self.reader() as cur:
            for obj in self.object_defs():
                top = cur.execute(f"SELECT max(Id) FROM {q(obj.table)}").fetchone()
                self._numbers[obj.name] = decode_number(top[0]) if top and top[0] else 0

    def allocate(self, name: str) -> int:
        """The next record number of an object."""
        with self._counter_lock:
            self._numbers[name] = self._numbers.get(name, 0) + 1
            return self._numbers[name]

    def peek_number(self, name: str) -> int:
        """The highest record number of an object allocated so far."""
        with self._counter_lock:
            return self._numbers.get(name, 0)

    def close(self) -> None:
        """Close the database."""
        with contextlib.suppress(duckdb.Error):
            self._db.close()

    # ------------------------------------------------------------------ access

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        """The database connection (take a ``cursor()`` of it; never run statements on it directly)."""
        return self._db

    @contextlib.contextmanager
    def reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor of its own (DuckDB allows one open result per connection)."""
        cur = self._db.cursor()
        try:
            yield cur
        finally:
            cur.close()

    @contextlib.contextmanager
    def transaction(self, origin: str, user_id: str, *, started_at: datetime | None = None) -> Iterator[Tx]:
        """One serialized write transaction with its commit number and change-log entries.

        ``started_at`` (a late commit): the records carry that time; the change log still has
        the real commit time.
        """
        with self.write_lock, self.reader() as cur:
            commit_number = self._commit_number + 1
            tx = Tx(self, cur, commit_number, self.clock.commit_time(), origin, user_id, started_at=started_at)
            cur.execute("BEGIN TRANSACTION")
            try:
                yield tx
                last = self._write_events(tx)
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            if tx.events:
                self._commit_number = commit_number
                self._replay_id = last
                self.changes._published(last, commit_number)

    def _write_events(self, tx: Tx) -> int:
        if not tx.events:
            return self._replay_id
        key = hashlib.sha256(f"{self.pod}:{tx.commit_number}".encode()).hexdigest()
        transaction_key = f"{key[:8]}-{key[8:12]}-{key[12:16]}-{key[16:20]}-{key[20:32]}"
        ts = utc_naive(tx.commit_timestamp)
        rows: list[tuple[Any, ...]] = []
        replay = self._replay_id
        for seq, ev in enumerate(tx.events, start=1):
            replay += 1
            payload = json.dumps({k: json_value(v) for k, v in ev.values.items()}, separators=(",", ":"))
            rows.append(
                (replay, tx.commit_number, transaction_key, seq, ts, ev.entity, ev.change_type, tx.origin,
                 tx.user_id, [ev.record_id], ev.changed, ev.nulled, [], payload)
            )  # fmt: skip
        row_marks = "(" + ", ".join("?" for _ in range(14)) + ")"
        tx.cursor.execute(f"INSERT INTO {CHANGES_TABLE} VALUES {', '.join(row_marks for _ in rows)}",
                          [value for row in rows for value in row])  # fmt: skip
        return replay

    # ------------------------------------------------------------------ reads used by the API

    def count(self, name: str, include_deleted: bool = True) -> int:
        """Rows of an object."""
        obj = get_object(name)
        assert obj is not None
        where = "" if include_deleted or not obj.has_is_deleted else " WHERE NOT IsDeleted"
        with self.reader() as cur:
            row = cur.execute(f"SELECT count(*) FROM {q(obj.table)}{where}").fetchone()
        return int(row[0]) if row else 0

    def exists(self, obj: ObjectDef, record_id: str) -> tuple[bool, bool]:
        """(exists, is deleted) of a record."""
        deleted = "IsDeleted" if obj.has_is_deleted else "FALSE"
        with self.reader() as cur:
            row = cur.execute(f"SELECT {deleted} FROM {q(obj.table)} WHERE Id = ?", [record_id]).fetchone()
        return (row is not None, bool(row[0]) if row else False)

    def truth_reader(self, obj: ObjectDef, cur: duckdb.DuckDBPyConnection, batch_rows: int = 100_000
                     ) -> pa.RecordBatchReader:  # fmt: skip
        """Every row of an object (soft-deleted ones included) in Id order, with Arrow types from describe."""
        cols = ", ".join(q(f.name) for f in obj.stored_fields)
        reader = cur.sql(f"SELECT {cols} FROM {q(obj.table)} ORDER BY Id").to_arrow_reader(batch_rows)
        schema = obj.arrow_schema()

        def batches() -> Iterator[pa.RecordBatch]:
            for batch in reader:
                arrays = [col if col.type == f.type else col.cast(f.type) for col, f in zip(batch.columns, schema,
                                                                                             strict=True)]
                yield pa.RecordBatch.from_arrays(arrays, schema=schema)

        return pa.RecordBatchReader.from_batches(schema, batches())
