"""Building SOQL text: field lists, datetime literals, half-open time windows.

SOQL datetime literals are documented to the second (``2024-01-02T03:04:05Z``), so every
bound written here is a whole second; a window's lower bound is rounded down so that a
rounded window never loses a record, only re-reads one.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

# Salesforce answers "414 URI Too Long" a little above 16 KiB of URL: keep URL-encoded REST queries under this.
MAX_REST_QUERY_CHARS = 15_000


def soql_datetime(value: datetime) -> str:
    """A SOQL datetime literal in UTC, to the second (rounded down)."""
    if value.tzinfo is None:
        msg = f"{value!r} has no time zone; SOQL windows need aware datetimes"
        raise ValueError(msg)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def floor_second(value: datetime) -> datetime:
    """The datetime rounded down to a whole second."""
    return value.replace(microsecond=0)


def ceil_second(value: datetime) -> datetime:
    """The datetime rounded up to a whole second."""
    return value if value.microsecond == 0 else value.replace(microsecond=0) + timedelta(seconds=1)


def quote(value: str) -> str:
    """A SOQL string literal, with backslashes and quotes escaped."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def window_clause(cursor: str, start: datetime | None, end: datetime | None) -> str:
    """``cursor >= start AND cursor < end`` (either side may be open)."""
    parts = []
    if start is not None:
        parts.append(f"{cursor} >= {soql_datetime(floor_second(start))}")
    if end is not None:
        parts.append(f"{cursor} < {soql_datetime(ceil_second(end))}")
    return " AND ".join(parts)


def select(
    sobject: str,
    fields: Iterable[str],
    where: str = "",
    *,
    order_by: str | None = None,
    limit: int | None = None,
) -> str:
    """``SELECT f1, f2 FROM X [WHERE …] [ORDER BY …] [LIMIT n]``."""
    names = list(fields)
    if not names:
        msg = f"no fields to select from {sobject}"
        raise ValueError(msg)
    text = f"SELECT {', '.join(names)} FROM {sobject}"
    if where:
        text += f" WHERE {where}"
    if order_by:
        text += f" ORDER BY {order_by}"
    if limit is not None:
        text += f" LIMIT {int(limit)}"
    return text


def count(sobject: str, where: str = "") -> str:
    """``SELECT COUNT() FROM X [WHERE …]`` (the answer is ``totalSize``)."""
    text = f"SELECT COUNT() FROM {sobject}"
    if where:
        text += f" WHERE {where}"
    return text
