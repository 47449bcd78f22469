"""``sobjects/X/updated`` and ``sobjects/X/deleted``: the replication API's windows of changed Ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sfpipe_simulator.errors import ApiError
from sfpipe_simulator.metadata import ObjectDef
from sfpipe_simulator.runtime import Runtime
from sfpipe_simulator.soql import SoqlError, parse_datetime_literal
from sfpipe_simulator.store import PURGED_TABLE, q, sf_datetime, utc_naive

MAX_IDS = 600_000
UPDATED_DAYS = 30
DELETED_DAYS = 15


def _moment(name: str, value: str | None) -> datetime:
    if not value:
        raise ApiError(400, "MISSING_ARGUMENT", f"{name} parameter is required (an ISO 8601 dateTime)")
    try:
        return parse_datetime_literal(value.strip().replace(" ", "+"))
    except SoqlError:
        raise ApiError(400, "INVALID_REPLICATION_DATE", f"{name}: invalid dateTime: {value}") from None


def _window(rt: Runtime, start_text: str | None, end_text: str | None, days: int) -> tuple[datetime, datetime]:
    start, end = _moment("start", start_text), _moment("end", end_text)
    now = rt.clock.now()
    if end <= start:
        raise ApiError(400, "INVALID_REPLICATION_DATE", "end must be after start")
    if start < now - timedelta(days=days):
        raise ApiError(400, "INVALID_REPLICATION_DATE", f"start date cannot be more than {days} days ago")
    end = min(end, now).replace(second=0, microsecond=0)
    return start, max(end, start)


def updated_records(rt: Runtime, obj: ObjectDef, start_text: str | None, end_text: str | None) -> dict[str, Any]:
    """Ids of records created or changed in ``[start, end)`` (latestDateCovered is minute-aligned)."""
    start, end = _window(rt, start_text, end_text, UPDATED_DAYS)
    where = "SystemModstamp >= ? AND SystemModstamp < ?"
    if obj.has_is_deleted:
        where += " AND NOT IsDeleted"
    with rt.store.reader() as cur:
        rows = cur.execute(f"SELECT Id FROM {q(obj.table)} WHERE {where} ORDER BY Id LIMIT {MAX_IDS + 1}",
                           [utc_naive(start), utc_naive(end)]).fetchall()  # fmt: skip
    if len(rows) > MAX_IDS:
        raise ApiError(400, "EXCEEDED_ID_LIMIT", f"record limit reached: more than {MAX_IDS} ids")
    return {"ids": [r[0] for r in rows], "latestDateCovered": sf_datetime(end.astimezone(UTC))}


def deleted_records(rt: Runtime, obj: ObjectDef, start_text: str | None, end_text: str | None) -> dict[str, Any]:
    """Ids and deletion times of records deleted in ``[start, end)`` (the recycle bin keeps 15 days)."""
    start, end = _window(rt, start_text, end_text, DELETED_DAYS)
    earliest = (rt.clock.now() - timedelta(days=DELETED_DAYS)).replace(second=0, microsecond=0)
    records: list[dict[str, str]] = []
    if obj.has_is_deleted:
        # in the recycle bin, or purged from it (hard-deleted) within the window
        with rt.store.reader() as cur:
            rows = cur.execute(
                f"SELECT Id, SystemModstamp AS deleted_at FROM {q(obj.table)} WHERE IsDeleted AND SystemModstamp >= ? "
                f"AND SystemModstamp < ? UNION ALL SELECT Id, deleted_at FROM {PURGED_TABLE} WHERE entity = ? "
                f"AND deleted_at >= ? AND deleted_at < ? ORDER BY deleted_at, Id LIMIT {MAX_IDS + 1}",
                [utc_naive(start), utc_naive(end), obj.name, utc_naive(start), utc_naive(end)],
            ).fetchall()
        if len(rows) > MAX_IDS:
            raise ApiError(400, "EXCEEDED_ID_LIMIT", f"record limit reached: more than {MAX_IDS} ids")
        records = [{"id": r[0], "deletedDate": sf_datetime(r[1])} for r in rows]
    return {
        "deletedRecords": records,
        "earliestDateAvailable": sf_datetime(earliest.astimezone(UTC)),
        "latestDateCovered": sf_datetime(end.astimezone(UTC)),
    }
